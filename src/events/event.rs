//! What happened, as one typed value per gateway dispatch. From an [`Event`] alone follow its
//! name (and with it the intent a session needs, see `spacebar_actors::intents::required`), who
//! hears it, and the [`StateChange`]s that keep the guild actor's mirror of permissions current:
//! each by an exhaustive `match`, so a new kind of event says all three or does not compile.
//!
//! An event is plain data (`Serialize + Deserialize`, no actor addresses): it is what a node
//! will hand to the others in cluster mode. Object bodies (a channel, a message, a member) are
//! the JSON the `wire` module renders, made once by the handler that committed the change.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spacebar_actors::guild::{Audience, StateChange};
use spacebar_actors::permissions::{bits, Overwrite, RoleRank};
use spacebar_actors::{Dispatch, EventName};

use crate::wire::guild::id;

/// Where a channel's events go: in a guild, to the members who can see the channel; in a DM or
/// group DM, to each of `recipients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelScope {
    pub guild_id: Option<i64>,
    pub channel_id: i64,
    /// For private channels: who hears it (in a guild: unused).
    pub recipients: Vec<i64>,
}

/// An event of one channel with its payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scoped {
    pub scope: ChannelScope,
    pub data: Value,
}

/// A channel created, changed or deleted: its body, and its overwrites for the guild actor
/// when they are new (`None`: unchanged, so a write racing this one is not undone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelChange {
    pub scope: ChannelScope,
    pub overwrites: Option<Vec<Overwrite>>,
    pub channel: Value,
}

/// A message created or edited. Its author and the users it mentions get it whole; bots without
/// MESSAGE_CONTENT get it without what people wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageChange {
    pub scope: ChannelScope,
    pub subjects: Vec<i64>,
    pub message: Value,
}

/// A message only one user sees (an application's ephemeral answer): to their sessions alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ephemeral {
    pub user_id: i64,
    pub guild_id: Option<i64>,
    pub message: Value,
}

/// A role created or changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleChange {
    pub guild_id: i64,
    pub rank: RoleRank,
    pub hoist: bool,
    pub role: Value,
}

/// A member joined or changed: what permissions and the member list need, and their object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberChange {
    pub guild_id: i64,
    pub user_id: i64,
    pub roles: Vec<i64>,
    /// When their timeout ends (Unix milliseconds).
    pub timed_out_until: Option<i64>,
    pub member: Arc<Value>,
}

/// An event for one user's sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToUser {
    pub user_id: i64,
    pub data: Value,
}

/// An application command created, changed or deleted: a guild's to the guild, a global one to
/// the application's bot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandChange {
    pub guild_id: Option<i64>,
    pub bot_id: Option<i64>,
    pub command: Value,
}

/// A joined guild's GUILD_CREATE for the sessions to which it is large: `large: true`, only
/// who is online listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LargeGuild {
    pub member_count: usize,
    pub guild: Value,
    pub client_state_v2: Value,
}

/// One gateway dispatch, before it is serialised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    GuildUpdate {
        guild_id: i64,
        /// The new owner, when it changed (unchanged, it is not sent: a racing transfer is
        /// not undone in the guild actor's mirror).
        new_owner: Option<i64>,
        guild: Value,
    },
    /// The guild is gone: its members hear GUILD_DELETE and its actor lets them go.
    GuildDelete {
        guild_id: i64,
    },
    /// A user joined a guild: their sessions start hearing it, GUILD_CREATE first.
    GuildJoined {
        guild_id: i64,
        user_id: i64,
        guild: Value,
        /// The same guild in the CLIENT_STATE_V2 shape.
        client_state_v2: Value,
        /// The guild as it is to sessions whose IDENTIFY `large_threshold` is below its member
        /// count, when some may be and some not.
        large: Option<LargeGuild>,
    },
    /// A user is no longer in a guild: GUILD_DELETE to their sessions.
    GuildLeft {
        guild_id: i64,
        user_id: i64,
    },
    GuildRoleCreate(RoleChange),
    GuildRoleUpdate(RoleChange),
    GuildRoleDelete {
        guild_id: i64,
        role_id: i64,
    },
    GuildMemberAdd(MemberChange),
    GuildMemberUpdate(MemberChange),
    GuildMemberRemove {
        guild_id: i64,
        user_id: i64,
        /// The user object.
        user: Value,
    },
    GuildBanAdd {
        guild_id: i64,
        user: Value,
    },
    GuildBanRemove {
        guild_id: i64,
        user: Value,
    },
    GuildEmojisUpdate {
        guild_id: i64,
        emojis: Vec<Value>,
    },
    GuildStickersUpdate {
        guild_id: i64,
        stickers: Vec<Value>,
    },
    GuildAuditLogEntryCreate {
        guild_id: i64,
        entry: Value,
    },
    WebhooksUpdate {
        guild_id: i64,
        channel_id: i64,
    },
    InviteCreate {
        guild_id: i64,
        invite: Value,
    },
    InviteDelete {
        guild_id: i64,
        invite: Value,
    },
    ChannelCreate(ChannelChange),
    ChannelUpdate(ChannelChange),
    ChannelDelete(ChannelChange),
    ChannelPinsUpdate(Scoped),
    ChannelRecipientAdd(ToUser),
    ChannelRecipientRemove(ToUser),
    MessageCreate(MessageChange),
    MessageUpdate(MessageChange),
    EphemeralMessageCreate(Ephemeral),
    EphemeralMessageUpdate(Ephemeral),
    MessageDelete(Scoped),
    MessageDeleteBulk(Scoped),
    MessageReactionAdd(Scoped),
    MessageReactionRemove(Scoped),
    MessageReactionRemoveAll(Scoped),
    MessageReactionRemoveEmoji(Scoped),
    TypingStart(Scoped),
    MessageAck(ToUser),
    RelationshipAdd(ToUser),
    RelationshipRemove(ToUser),
    UserUpdate(ToUser),
    UserSettingsUpdate(ToUser),
    UserSettingsProtoUpdate(ToUser),
    /// An interaction for the bot that handles it (in a guild: on that guild's shard), or the
    /// receipt for the user who made it.
    InteractionCreate {
        user_id: i64,
        guild_id: Option<i64>,
        data: Value,
    },
    /// The bot answered an interaction in time, or did not: to the user who made it.
    InteractionSuccess(ToUser),
    InteractionFailure(ToUser),
    ApplicationCommandCreate(CommandChange),
    ApplicationCommandUpdate(CommandChange),
    ApplicationCommandDelete(CommandChange),
}

/// Who hears a dispatch.
pub enum Route {
    /// Members of a guild (the guild actor applies `changes` first, and `after` once it
    /// delivered: what the audience was found by); `deleted`: the guild is gone.
    Guild {
        guild_id: i64,
        audience: Audience,
        changes: Vec<StateChange>,
        after: Vec<StateChange>,
        deleted: bool,
    },
    /// Every session of these users.
    Users(Vec<i64>),
    /// A user's sessions start hearing a guild, then get the dispatch.
    Joiner { guild_id: i64, user_id: i64 },
    /// No one: the event changed no one's view (a private channel's scope with no recipients).
    Nobody,
}

impl Event {
    /// Its name on the wire.
    pub fn name(&self) -> EventName {
        use EventName as N;
        match self {
            Event::GuildUpdate { .. } => N::GuildUpdate,
            Event::GuildDelete { .. } | Event::GuildLeft { .. } => N::GuildDelete,
            Event::GuildJoined { .. } => N::GuildCreate,
            Event::GuildRoleCreate(_) => N::GuildRoleCreate,
            Event::GuildRoleUpdate(_) => N::GuildRoleUpdate,
            Event::GuildRoleDelete { .. } => N::GuildRoleDelete,
            Event::GuildMemberAdd(_) => N::GuildMemberAdd,
            Event::GuildMemberUpdate(_) => N::GuildMemberUpdate,
            Event::GuildMemberRemove { .. } => N::GuildMemberRemove,
            Event::GuildBanAdd { .. } => N::GuildBanAdd,
            Event::GuildBanRemove { .. } => N::GuildBanRemove,
            Event::GuildEmojisUpdate { .. } => N::GuildEmojisUpdate,
            Event::GuildStickersUpdate { .. } => N::GuildStickersUpdate,
            Event::GuildAuditLogEntryCreate { .. } => N::GuildAuditLogEntryCreate,
            Event::WebhooksUpdate { .. } => N::WebhooksUpdate,
            Event::InviteCreate { .. } => N::InviteCreate,
            Event::InviteDelete { .. } => N::InviteDelete,
            Event::ChannelCreate(_) => N::ChannelCreate,
            Event::ChannelUpdate(_) => N::ChannelUpdate,
            Event::ChannelDelete(_) => N::ChannelDelete,
            Event::ChannelPinsUpdate(_) => N::ChannelPinsUpdate,
            Event::ChannelRecipientAdd(_) => N::ChannelRecipientAdd,
            Event::ChannelRecipientRemove(_) => N::ChannelRecipientRemove,
            Event::MessageCreate(_) => N::MessageCreate,
            Event::MessageUpdate(_) => N::MessageUpdate,
            Event::EphemeralMessageCreate(_) => N::MessageCreate,
            Event::EphemeralMessageUpdate(_) => N::MessageUpdate,
            Event::MessageDelete(_) => N::MessageDelete,
            Event::MessageDeleteBulk(_) => N::MessageDeleteBulk,
            Event::MessageReactionAdd(_) => N::MessageReactionAdd,
            Event::MessageReactionRemove(_) => N::MessageReactionRemove,
            Event::MessageReactionRemoveAll(_) => N::MessageReactionRemoveAll,
            Event::MessageReactionRemoveEmoji(_) => N::MessageReactionRemoveEmoji,
            Event::TypingStart(_) => N::TypingStart,
            Event::MessageAck(_) => N::MessageAck,
            Event::RelationshipAdd(_) => N::RelationshipAdd,
            Event::RelationshipRemove(_) => N::RelationshipRemove,
            Event::UserUpdate(_) => N::UserUpdate,
            Event::UserSettingsUpdate(_) => N::UserSettingsUpdate,
            Event::UserSettingsProtoUpdate(_) => N::UserSettingsProtoUpdate,
            Event::InteractionCreate { .. } => N::InteractionCreate,
            Event::InteractionSuccess(_) => N::InteractionSuccess,
            Event::InteractionFailure(_) => N::InteractionFailure,
            Event::ApplicationCommandCreate(_) => N::ApplicationCommandCreate,
            Event::ApplicationCommandUpdate(_) => N::ApplicationCommandUpdate,
            Event::ApplicationCommandDelete(_) => N::ApplicationCommandDelete,
        }
    }

    /// Who hears it, and what the guild actor must know first.
    pub fn route(&self) -> Route {
        let guild = |guild_id: i64, audience: Audience| Route::Guild {
            guild_id,
            audience,
            changes: Vec::new(),
            after: Vec::new(),
            deleted: false,
        };
        let with = |guild_id: i64, audience: Audience, changes: Vec<StateChange>| Route::Guild {
            guild_id,
            audience,
            changes,
            after: Vec::new(),
            deleted: false,
        };
        match self {
            Event::GuildUpdate {
                guild_id,
                new_owner,
                ..
            } => with(
                *guild_id,
                Audience::Guild,
                new_owner
                    .iter()
                    .map(|&user_id| StateChange::Owner { user_id })
                    .collect(),
            ),
            Event::GuildDelete { guild_id } => Route::Guild {
                guild_id: *guild_id,
                audience: Audience::Guild,
                changes: Vec::new(),
                after: Vec::new(),
                deleted: true,
            },
            Event::GuildJoined {
                guild_id, user_id, ..
            } => Route::Joiner {
                guild_id: *guild_id,
                user_id: *user_id,
            },
            Event::GuildRoleCreate(role) | Event::GuildRoleUpdate(role) => with(
                role.guild_id,
                Audience::Guild,
                vec![StateChange::Role {
                    rank: role.rank,
                    hoist: role.hoist,
                }],
            ),
            Event::GuildRoleDelete { guild_id, role_id } => with(
                *guild_id,
                Audience::Guild,
                vec![StateChange::RoleRemoved { role_id: *role_id }],
            ),
            Event::GuildMemberAdd(member) | Event::GuildMemberUpdate(member) => with(
                member.guild_id,
                Audience::Guild,
                vec![StateChange::Member {
                    user_id: member.user_id,
                    roles: member.roles.clone(),
                    timed_out_until: member.timed_out_until,
                    member: member.member.clone(),
                }],
            ),
            Event::GuildMemberRemove {
                guild_id, user_id, ..
            } => with(
                *guild_id,
                Audience::Guild,
                vec![StateChange::MemberRemoved { user_id: *user_id }],
            ),
            Event::GuildBanAdd { guild_id, .. } | Event::GuildBanRemove { guild_id, .. } => {
                guild(*guild_id, Audience::Permission(bits::BAN_MEMBERS))
            }
            Event::GuildEmojisUpdate { guild_id, .. }
            | Event::GuildStickersUpdate { guild_id, .. } => guild(*guild_id, Audience::Guild),
            Event::GuildAuditLogEntryCreate { guild_id, .. } => {
                guild(*guild_id, Audience::Permission(bits::VIEW_AUDIT_LOG))
            }
            Event::WebhooksUpdate { guild_id, .. } => {
                guild(*guild_id, Audience::Permission(bits::MANAGE_WEBHOOKS))
            }
            Event::InviteCreate { guild_id, .. } | Event::InviteDelete { guild_id, .. } => {
                guild(*guild_id, Audience::Permission(bits::MANAGE_CHANNELS))
            }
            Event::ChannelCreate(change) | Event::ChannelUpdate(change) => {
                let channel_id = change.scope.channel_id;
                let kept = change
                    .overwrites
                    .iter()
                    .map(|overwrites| StateChange::Channel {
                        channel_id,
                        overwrites: overwrites.clone(),
                    })
                    .collect();
                scoped(&change.scope, kept, Vec::new())
            }
            // Delivered to those who could see it, then forgotten.
            Event::ChannelDelete(change) => {
                let channel_id = change.scope.channel_id;
                scoped(
                    &change.scope,
                    Vec::new(),
                    vec![StateChange::ChannelRemoved { channel_id }],
                )
            }
            Event::MessageCreate(message) | Event::MessageUpdate(message) => {
                scoped(&message.scope, Vec::new(), Vec::new())
            }
            Event::ChannelPinsUpdate(event)
            | Event::MessageDelete(event)
            | Event::MessageDeleteBulk(event)
            | Event::MessageReactionAdd(event)
            | Event::MessageReactionRemove(event)
            | Event::MessageReactionRemoveAll(event)
            | Event::MessageReactionRemoveEmoji(event)
            | Event::TypingStart(event) => scoped(&event.scope, Vec::new(), Vec::new()),
            Event::GuildLeft { user_id, .. } => Route::Users(vec![*user_id]),
            Event::EphemeralMessageCreate(message) | Event::EphemeralMessageUpdate(message) => {
                Route::Users(vec![message.user_id])
            }
            Event::InteractionCreate { user_id, .. } => Route::Users(vec![*user_id]),
            Event::ChannelRecipientAdd(to)
            | Event::ChannelRecipientRemove(to)
            | Event::MessageAck(to)
            | Event::RelationshipAdd(to)
            | Event::RelationshipRemove(to)
            | Event::UserUpdate(to)
            | Event::UserSettingsUpdate(to)
            | Event::UserSettingsProtoUpdate(to)
            | Event::InteractionSuccess(to)
            | Event::InteractionFailure(to) => Route::Users(vec![to.user_id]),
            Event::ApplicationCommandCreate(command)
            | Event::ApplicationCommandUpdate(command)
            | Event::ApplicationCommandDelete(command) => {
                match (command.guild_id, command.bot_id) {
                    (Some(guild_id), _) => guild(guild_id, Audience::Guild),
                    (None, Some(bot_id)) => Route::Users(vec![bot_id]),
                    (None, None) => Route::Nobody,
                }
            }
        }
    }

    /// The guild it happened in, for the sessions' shard and intent filters; `None` in a DM or
    /// the user's own business.
    fn guild_id(&self) -> Option<i64> {
        match self {
            Event::GuildUpdate { guild_id, .. }
            | Event::GuildDelete { guild_id }
            | Event::GuildJoined { guild_id, .. }
            | Event::GuildLeft { guild_id, .. }
            | Event::GuildRoleDelete { guild_id, .. }
            | Event::GuildMemberRemove { guild_id, .. }
            | Event::GuildBanAdd { guild_id, .. }
            | Event::GuildBanRemove { guild_id, .. }
            | Event::GuildEmojisUpdate { guild_id, .. }
            | Event::GuildStickersUpdate { guild_id, .. }
            | Event::GuildAuditLogEntryCreate { guild_id, .. }
            | Event::WebhooksUpdate { guild_id, .. }
            | Event::InviteCreate { guild_id, .. }
            | Event::InviteDelete { guild_id, .. } => Some(*guild_id),
            Event::GuildRoleCreate(role) | Event::GuildRoleUpdate(role) => Some(role.guild_id),
            Event::GuildMemberAdd(member) | Event::GuildMemberUpdate(member) => {
                Some(member.guild_id)
            }
            Event::ChannelCreate(change)
            | Event::ChannelUpdate(change)
            | Event::ChannelDelete(change) => change.scope.guild_id,
            Event::MessageCreate(message) | Event::MessageUpdate(message) => message.scope.guild_id,
            Event::EphemeralMessageCreate(message) | Event::EphemeralMessageUpdate(message) => {
                message.guild_id
            }
            Event::ChannelPinsUpdate(event)
            | Event::MessageDelete(event)
            | Event::MessageDeleteBulk(event)
            | Event::MessageReactionAdd(event)
            | Event::MessageReactionRemove(event)
            | Event::MessageReactionRemoveAll(event)
            | Event::MessageReactionRemoveEmoji(event)
            | Event::TypingStart(event) => event.scope.guild_id,
            Event::InteractionCreate { guild_id, .. } => *guild_id,
            Event::ApplicationCommandCreate(command)
            | Event::ApplicationCommandUpdate(command)
            | Event::ApplicationCommandDelete(command) => command.guild_id,
            Event::ChannelRecipientAdd(_)
            | Event::ChannelRecipientRemove(_)
            | Event::MessageAck(_)
            | Event::RelationshipAdd(_)
            | Event::RelationshipRemove(_)
            | Event::UserUpdate(_)
            | Event::UserSettingsUpdate(_)
            | Event::UserSettingsProtoUpdate(_)
            | Event::InteractionSuccess(_)
            | Event::InteractionFailure(_) => None,
        }
    }

    /// The dispatch, serialised once, with what sessions filter on.
    pub fn dispatch(&self) -> Result<Dispatch, serde_json::Error> {
        let name = self.name();
        let made = match self {
            Event::GuildUpdate { guild, .. } => Dispatch::json(name, guild)?,
            Event::GuildDelete { guild_id } | Event::GuildLeft { guild_id, .. } => {
                Dispatch::json(name, &json!({ "id": id(*guild_id), "unavailable": false }))?
            }
            Event::GuildJoined {
                guild,
                client_state_v2,
                guild_id,
                large,
                ..
            } => {
                let joined = |guild, client_state_v2| -> Result<Dispatch, serde_json::Error> {
                    let shaped = Dispatch::json(name, client_state_v2)?.in_guild(*guild_id);
                    Ok(Dispatch::json(name, guild)?.with_client_state_v2(shaped))
                };
                let made = joined(guild, client_state_v2)?;
                match large {
                    Some(large) => made.with_large(
                        large.member_count,
                        joined(&large.guild, &large.client_state_v2)?.in_guild(*guild_id),
                    ),
                    None => made,
                }
            }
            Event::GuildRoleCreate(role) | Event::GuildRoleUpdate(role) => Dispatch::json(
                name,
                &json!({ "guild_id": id(role.guild_id), "role": role.role }),
            )?,
            Event::GuildRoleDelete { guild_id, role_id } => Dispatch::json(
                name,
                &json!({ "guild_id": id(*guild_id), "role_id": id(*role_id) }),
            )?,
            // About the member: their own sessions hear it even without GUILD_MEMBERS.
            Event::GuildMemberUpdate(member) => {
                Dispatch::json(name, &*member.member)?.about([member.user_id])
            }
            Event::GuildMemberAdd(member) => Dispatch::json(name, &*member.member)?,
            Event::GuildMemberRemove { guild_id, user, .. }
            | Event::GuildBanAdd { guild_id, user }
            | Event::GuildBanRemove { guild_id, user } => {
                Dispatch::json(name, &json!({ "guild_id": id(*guild_id), "user": user }))?
            }
            Event::GuildEmojisUpdate { guild_id, emojis } => Dispatch::json(
                name,
                &json!({ "guild_id": id(*guild_id), "emojis": emojis }),
            )?,
            Event::GuildStickersUpdate { guild_id, stickers } => Dispatch::json(
                name,
                &json!({ "guild_id": id(*guild_id), "stickers": stickers }),
            )?,
            Event::GuildAuditLogEntryCreate { guild_id, entry } => {
                let mut entry = entry.clone();
                entry["guild_id"] = id(*guild_id).into();
                Dispatch::json(name, &entry)?
            }
            Event::WebhooksUpdate {
                guild_id,
                channel_id,
            } => Dispatch::json(
                name,
                &json!({ "guild_id": id(*guild_id), "channel_id": id(*channel_id) }),
            )?,
            Event::InviteCreate { invite, .. } | Event::InviteDelete { invite, .. } => {
                Dispatch::json(name, invite)?
            }
            Event::ChannelCreate(change)
            | Event::ChannelUpdate(change)
            | Event::ChannelDelete(change) => Dispatch::json(name, &change.channel)?,
            Event::MessageCreate(message) | Event::MessageUpdate(message) => {
                let full = Dispatch::json(name, &message.message)?;
                match message.scope.guild_id {
                    Some(_) => full
                        .about(message.subjects.iter().copied())
                        .with_redacted(Dispatch::json(name, &without_content(&message.message))?),
                    None => full,
                }
            }
            Event::ChannelPinsUpdate(event)
            | Event::MessageDelete(event)
            | Event::MessageDeleteBulk(event)
            | Event::MessageReactionAdd(event)
            | Event::MessageReactionRemove(event)
            | Event::MessageReactionRemoveAll(event)
            | Event::MessageReactionRemoveEmoji(event)
            | Event::TypingStart(event) => Dispatch::json(name, &event.data)?,
            Event::InteractionCreate { data, .. } => Dispatch::json(name, data)?,
            Event::EphemeralMessageCreate(message) | Event::EphemeralMessageUpdate(message) => {
                Dispatch::json(name, &message.message)?
            }
            Event::ChannelRecipientAdd(to)
            | Event::ChannelRecipientRemove(to)
            | Event::MessageAck(to)
            | Event::RelationshipAdd(to)
            | Event::RelationshipRemove(to)
            | Event::UserUpdate(to)
            | Event::UserSettingsUpdate(to)
            | Event::UserSettingsProtoUpdate(to)
            | Event::InteractionSuccess(to)
            | Event::InteractionFailure(to) => Dispatch::json(name, &to.data)?,
            Event::ApplicationCommandCreate(command)
            | Event::ApplicationCommandUpdate(command)
            | Event::ApplicationCommandDelete(command) => Dispatch::json(name, &command.command)?,
        };
        Ok(match self.guild_id() {
            Some(guild_id) => made.in_guild(guild_id),
            None => made,
        })
    }
}

/// A private channel's events go to its recipients; a guild channel's to those who see it.
fn scoped(scope: &ChannelScope, changes: Vec<StateChange>, after: Vec<StateChange>) -> Route {
    match scope.guild_id {
        Some(guild_id) => Route::Guild {
            guild_id,
            audience: Audience::Channel(scope.channel_id),
            changes,
            after,
            deleted: false,
        },
        None if scope.recipients.is_empty() => Route::Nobody,
        None => Route::Users(scope.recipients.clone()),
    }
}

/// A message as a bot without MESSAGE_CONTENT sees it (in events and over REST): the fields
/// that hold what people wrote are empty, in the message and in the one it replies to.
pub fn without_content(data: &Value) -> Value {
    let mut data = data.clone();
    let blank = |message: &mut Value| {
        if let Some(fields) = message.as_object_mut() {
            fields.insert("content".into(), Value::String(String::new()));
            for list in ["embeds", "attachments", "components"] {
                fields.insert(list.into(), Value::Array(Vec::new()));
            }
            fields.remove("poll");
        }
    };
    blank(&mut data);
    if let Some(referenced) = data.get_mut("referenced_message") {
        blank(referenced);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_guild(channel_id: i64) -> ChannelScope {
        ChannelScope {
            guild_id: Some(1 << 22),
            channel_id,
            recipients: Vec::new(),
        }
    }

    #[test]
    fn names_and_intents_follow_the_variant() {
        use spacebar_actors::intents::{bits, required};
        let reaction = Event::MessageReactionAdd(Scoped {
            scope: in_guild(9),
            data: json!({}),
        });
        assert_eq!(reaction.name().as_str(), "MESSAGE_REACTION_ADD");
        assert_eq!(
            required(reaction.name(), true),
            Some(bits::GUILD_MESSAGE_REACTIONS)
        );
        let dispatch = reaction.dispatch().unwrap();
        assert_eq!(dispatch.guild_id(), Some(1 << 22));
    }

    #[test]
    fn a_deleted_channel_leaves_the_guild_actor() {
        let deleted = Event::ChannelDelete(ChannelChange {
            scope: in_guild(9),
            overwrites: None,
            channel: json!({ "id": "9" }),
        });
        let Route::Guild {
            audience,
            changes,
            after,
            ..
        } = deleted.route()
        else {
            panic!("a guild channel's event goes to the guild");
        };
        assert!(matches!(audience, Audience::Channel(9)));
        assert!(changes.is_empty(), "its audience is found before it goes");
        assert!(matches!(
            after.as_slice(),
            [StateChange::ChannelRemoved { channel_id: 9 }]
        ));
    }

    #[test]
    fn bots_without_message_content_get_a_blank_copy_of_guild_messages() {
        let message = Event::MessageCreate(MessageChange {
            scope: in_guild(9),
            subjects: vec![5],
            message: json!({ "content": "hi", "embeds": [{}], "referenced_message": {"content": "x"} }),
        });
        let dispatch = message.dispatch().unwrap();
        let redacted = dispatch.redacted().unwrap();
        let blank: Value = serde_json::from_slice(redacted.data()).unwrap();
        assert_eq!(blank["content"], "");
        assert_eq!(blank["embeds"], json!([]));
        assert_eq!(blank["referenced_message"]["content"], "");
        assert_eq!(dispatch.subjects(), &[5]);
    }

    #[test]
    fn an_event_survives_the_trip_between_nodes() {
        let event = Event::GuildRoleUpdate(RoleChange {
            guild_id: 3 << 22,
            rank: RoleRank {
                id: 4,
                permissions: 8,
                position: 1,
            },
            hoist: true,
            role: json!({ "id": "4", "name": "mods" }),
        });
        let bytes = serde_json::to_vec(&event).unwrap();
        let back: Event = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            back.dispatch().unwrap().data(),
            event.dispatch().unwrap().data()
        );
    }
}
