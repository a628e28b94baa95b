//! Gateway intents and sharding: which dispatches a session hears.
//!
//! A session decides for itself, from the event's name, the guild it happened in (none for DMs
//! and the user's own business) and the users it is about, all of which the [`Dispatch`]
//! carries next to its bytes: filtering never re-serialises anything. Without MESSAGE_CONTENT a
//! bot gets the dispatch's redacted copy, made once by whoever published it.

use std::sync::Arc;

use crate::dispatch::Dispatch;
use crate::event_name::EventName;

/// Discord's intent bits.
pub mod bits {
    pub const GUILDS: u64 = 1 << 0;
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    pub const GUILD_MODERATION: u64 = 1 << 2;
    pub const GUILD_EXPRESSIONS: u64 = 1 << 3;
    pub const GUILD_INTEGRATIONS: u64 = 1 << 4;
    pub const GUILD_WEBHOOKS: u64 = 1 << 5;
    pub const GUILD_INVITES: u64 = 1 << 6;
    pub const GUILD_VOICE_STATES: u64 = 1 << 7;
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
    pub const GUILD_MESSAGE_TYPING: u64 = 1 << 11;
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    pub const DIRECT_MESSAGE_REACTIONS: u64 = 1 << 13;
    pub const DIRECT_MESSAGE_TYPING: u64 = 1 << 14;
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    pub const GUILD_SCHEDULED_EVENTS: u64 = 1 << 16;
    pub const AUTO_MODERATION_CONFIGURATION: u64 = 1 << 20;
    pub const AUTO_MODERATION_EXECUTION: u64 = 1 << 21;
    pub const GUILD_MESSAGE_POLLS: u64 = 1 << 24;
    pub const DIRECT_MESSAGE_POLLS: u64 = 1 << 25;
}

/// Every bit an IDENTIFY may carry: anything above (or a negative value) closes with 4013.
pub const ALL: u64 = (1 << 26) - 1;

/// Intents an application must be allowed (its flags) before its bot may ask for them.
pub const PRIVILEGED: u64 = bits::GUILD_MEMBERS | bits::GUILD_PRESENCES | bits::MESSAGE_CONTENT;

/// Discord's application flags that allow the privileged intents: each intent has a flag and a
/// `_LIMITED` flag, and either allows it.
pub mod app_flags {
    pub const GATEWAY_PRESENCE: i64 = 1 << 12;
    pub const GATEWAY_PRESENCE_LIMITED: i64 = 1 << 13;
    pub const GATEWAY_GUILD_MEMBERS: i64 = 1 << 14;
    pub const GATEWAY_GUILD_MEMBERS_LIMITED: i64 = 1 << 15;
    pub const GATEWAY_MESSAGE_CONTENT: i64 = 1 << 18;
    pub const GATEWAY_MESSAGE_CONTENT_LIMITED: i64 = 1 << 19;
    /// The flags an application's owner may set.
    pub const INTENT_FLAGS: i64 = GATEWAY_PRESENCE
        | GATEWAY_PRESENCE_LIMITED
        | GATEWAY_GUILD_MEMBERS
        | GATEWAY_GUILD_MEMBERS_LIMITED
        | GATEWAY_MESSAGE_CONTENT
        | GATEWAY_MESSAGE_CONTENT_LIMITED;
}

/// The privileged intents an application with `flags` may use.
pub fn allowed_privileged(flags: i64) -> u64 {
    use app_flags::*;
    let mut allowed = 0;
    if flags & (GATEWAY_PRESENCE | GATEWAY_PRESENCE_LIMITED) != 0 {
        allowed |= bits::GUILD_PRESENCES;
    }
    if flags & (GATEWAY_GUILD_MEMBERS | GATEWAY_GUILD_MEMBERS_LIMITED) != 0 {
        allowed |= bits::GUILD_MEMBERS;
    }
    if flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED) != 0 {
        allowed |= bits::MESSAGE_CONTENT;
    }
    allowed
}

/// The intent an event needs, from its name and whether it happened in a guild (else in a DM,
/// or in the user's own business); `None` for events every session gets (READY, USER_UPDATE,
/// RELATIONSHIP_*, MESSAGE_ACK, a DM's CHANNEL_CREATE, INTERACTION_CREATE, …). Exhaustive: a
/// new event name does not compile until it is placed here.
pub fn required(event: EventName, in_guild: bool) -> Option<u64> {
    use bits::*;
    use EventName as E;
    let guild_or_dm = |guild: u64, dm: u64| Some(if in_guild { guild } else { dm });
    match event {
        E::GuildCreate
        | E::GuildUpdate
        | E::GuildDelete
        | E::GuildRoleCreate
        | E::GuildRoleUpdate
        | E::GuildRoleDelete => Some(GUILDS),
        // A DM's channel events go to its recipients whatever their intents.
        E::ChannelCreate | E::ChannelUpdate | E::ChannelDelete => in_guild.then_some(GUILDS),
        E::ChannelPinsUpdate => guild_or_dm(GUILDS, DIRECT_MESSAGES),
        E::GuildMemberAdd | E::GuildMemberUpdate | E::GuildMemberRemove => Some(GUILD_MEMBERS),
        E::GuildAuditLogEntryCreate | E::GuildBanAdd | E::GuildBanRemove => Some(GUILD_MODERATION),
        E::GuildEmojisUpdate | E::GuildStickersUpdate => Some(GUILD_EXPRESSIONS),
        E::WebhooksUpdate => Some(GUILD_WEBHOOKS),
        E::InviteCreate | E::InviteDelete => Some(GUILD_INVITES),
        E::VoiceStateUpdate => Some(GUILD_VOICE_STATES),
        E::PresenceUpdate => Some(GUILD_PRESENCES),
        E::MessageCreate | E::MessageUpdate | E::MessageDelete | E::MessageDeleteBulk => {
            guild_or_dm(GUILD_MESSAGES, DIRECT_MESSAGES)
        }
        E::MessageReactionAdd
        | E::MessageReactionRemove
        | E::MessageReactionRemoveAll
        | E::MessageReactionRemoveEmoji => {
            guild_or_dm(GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS)
        }
        E::TypingStart => guild_or_dm(GUILD_MESSAGE_TYPING, DIRECT_MESSAGE_TYPING),
        // Answers to the session's own requests, its own account, calls and streams it is in.
        E::Ready
        | E::ReadySupplemental
        | E::Resumed
        | E::RateLimited
        | E::GuildMembersChunk
        | E::GuildMemberListUpdate
        | E::ChannelRecipientAdd
        | E::ChannelRecipientRemove
        | E::MessageAck
        | E::VoiceServerUpdate
        | E::StreamCreate
        | E::StreamUpdate
        | E::StreamDelete
        | E::StreamServerUpdate
        | E::CallCreate
        | E::CallUpdate
        | E::CallDelete
        | E::RelationshipAdd
        | E::RelationshipRemove
        | E::UserUpdate
        | E::UserSettingsUpdate
        | E::UserSettingsProtoUpdate
        | E::InteractionCreate
        | E::InteractionSuccess
        | E::InteractionFailure
        | E::ApplicationCommandCreate
        | E::ApplicationCommandUpdate
        | E::ApplicationCommandDelete => None,
    }
}

/// IDENTIFY's `shard: [id, count]`: the guilds `(guild_id >> 22) % count == id`, and on shard
/// 0 everything that happened in no guild (DMs, the user's own events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    id: u64,
    count: u64,
}

impl Shard {
    /// `None` for a shard that cannot be (`count` 0, or `id >= count`): close with 4010.
    pub fn new(id: u64, count: u64) -> Option<Self> {
        (id < count).then_some(Self { id, count })
    }

    pub fn id(self) -> u64 {
        self.id
    }

    pub fn count(self) -> u64 {
        self.count
    }

    pub fn owns_guild(self, guild_id: i64) -> bool {
        (guild_id.unsigned_abs() >> 22) % self.count == self.id
    }

    /// Whether an event of `guild_id` (`None`: of no guild) belongs to this shard.
    pub fn owns(self, guild_id: Option<i64>) -> bool {
        match guild_id {
            Some(guild_id) => self.owns_guild(guild_id),
            None => self.id == 0,
        }
    }
}

/// IDENTIFY's `large_threshold` when it has none (Discord's default).
pub const DEFAULT_LARGE_THRESHOLD: usize = 50;
/// The largest `large_threshold` Discord accepts.
pub const MAX_LARGE_THRESHOLD: usize = 250;

/// What one session hears: its intents and shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    pub user_id: i64,
    /// The intents that apply ([`ALL`] for people, and for bots that sent none).
    pub intents: u64,
    /// Bots without MESSAGE_CONTENT get messages in guilds without their content.
    pub bot: bool,
    pub shard: Option<Shard>,
    /// Identified with CLIENT_STATE_V2: guilds come as `{id, properties, …}`.
    pub client_state_v2: bool,
    /// Guilds of up to this many members whose every presence the session hears (its
    /// IDENTIFY `large_threshold`); of larger ones, only what it asks for. `None`: no
    /// presences (no GUILD_PRESENCES).
    pub presences_up_to: Option<usize>,
    /// Guilds with more members than this are large to the session (its IDENTIFY
    /// `large_threshold`): their GUILD_CREATE lists only who is online.
    #[serde(default = "default_large_threshold")]
    pub large_threshold: usize,
}

fn default_large_threshold() -> usize {
    DEFAULT_LARGE_THRESHOLD
}

impl Filter {
    /// Hears everything: a person's session, unsharded.
    pub fn everything(user_id: i64) -> Self {
        Self {
            user_id,
            intents: ALL,
            bot: false,
            shard: None,
            client_state_v2: false,
            presences_up_to: Some(DEFAULT_LARGE_THRESHOLD),
            large_threshold: DEFAULT_LARGE_THRESHOLD,
        }
    }

    pub fn owns_guild(&self, guild_id: i64) -> bool {
        self.shard.is_none_or(|shard| shard.owns_guild(guild_id))
    }

    /// The dispatch this session gets for `dispatch`: itself, its copy without message
    /// content, or nothing.
    pub fn admit(&self, dispatch: &Arc<Dispatch>) -> Option<Arc<Dispatch>> {
        let dispatch = match dispatch.large() {
            Some((members, large)) if *members > self.large_threshold => large,
            _ => dispatch,
        };
        let guild_id = dispatch.guild_id();
        if self.shard.is_some_and(|shard| !shard.owns(guild_id)) {
            return None;
        }
        let about_me = dispatch.subjects().contains(&self.user_id);
        if let Some(intent) = required(dispatch.event(), guild_id.is_some()) {
            // A member always hears about their own member changes.
            let own_member = about_me && dispatch.event() == EventName::GuildMemberUpdate;
            if self.intents & intent == 0 && !own_member {
                return None;
            }
        }
        if self.bot && self.intents & bits::MESSAGE_CONTENT == 0 && guild_id.is_some() && !about_me
        {
            if let Some(redacted) = dispatch.redacted() {
                return Some(redacted.clone());
            }
        }
        if self.client_state_v2 {
            if let Some(shaped) = dispatch.client_state_v2() {
                return Some(shaped.clone());
            }
        }
        Some(dispatch.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch(event: EventName, guild_id: Option<i64>) -> Arc<Dispatch> {
        let dispatch = Dispatch::from_json(event, "{}".into());
        Arc::new(match guild_id {
            Some(guild_id) => dispatch.in_guild(guild_id),
            None => dispatch,
        })
    }

    #[test]
    fn intents_decide_by_event_and_place() {
        let bot = Filter {
            user_id: 7,
            intents: bits::GUILDS | bits::GUILD_MESSAGES,
            bot: true,
            shard: None,
            client_state_v2: false,
            presences_up_to: None,
            large_threshold: DEFAULT_LARGE_THRESHOLD,
        };
        let guild = Some(1 << 22);
        assert!(bot
            .admit(&dispatch(EventName::MessageCreate, guild))
            .is_some());
        assert!(bot
            .admit(&dispatch(EventName::MessageCreate, None))
            .is_none());
        assert!(bot
            .admit(&dispatch(EventName::TypingStart, guild))
            .is_none());
        assert!(bot
            .admit(&dispatch(EventName::GuildMemberAdd, guild))
            .is_none());
        assert!(bot
            .admit(&dispatch(EventName::ChannelCreate, None))
            .is_some());
        assert!(bot
            .admit(&dispatch(EventName::ChannelCreate, guild))
            .is_some());
        assert!(bot
            .admit(&dispatch(EventName::GuildMembersChunk, guild))
            .is_some());
        assert!(bot.admit(&dispatch(EventName::UserUpdate, None)).is_some());
        let own_update = Arc::new(
            Dispatch::from_json(EventName::GuildMemberUpdate, "{}".into())
                .in_guild(1 << 22)
                .about([7]),
        );
        assert!(bot.admit(&own_update).is_some());
        assert!(Filter { user_id: 8, ..bot }.admit(&own_update).is_none());
    }

    #[test]
    fn bots_without_message_content_get_the_redacted_copy_unless_it_is_theirs() {
        let bot = Filter {
            user_id: 7,
            intents: bits::GUILD_MESSAGES | bits::DIRECT_MESSAGES,
            bot: true,
            shard: None,
            client_state_v2: false,
            presences_up_to: None,
            large_threshold: DEFAULT_LARGE_THRESHOLD,
        };
        let make = |guild_id: Option<i64>, subjects: Vec<i64>| {
            let full = Dispatch::from_json(EventName::MessageCreate, r#"{"content":"hi"}"#.into());
            let full = match guild_id {
                Some(guild_id) => full.in_guild(guild_id),
                None => full,
            };
            let redacted =
                Dispatch::from_json(EventName::MessageCreate, r#"{"content":""}"#.into());
            Arc::new(full.about(subjects).with_redacted(redacted))
        };
        let content = |d: Option<Arc<Dispatch>>| d.map(|d| d.data().clone());
        let redacted = Some(bytes::Bytes::from(r#"{"content":""}"#));
        let full = Some(bytes::Bytes::from(r#"{"content":"hi"}"#));
        assert_eq!(content(bot.admit(&make(Some(5 << 22), vec![1]))), redacted);
        assert_eq!(content(bot.admit(&make(Some(5 << 22), vec![1, 7]))), full);
        assert_eq!(content(bot.admit(&make(None, vec![1]))), full);
        let entitled = Filter {
            intents: bot.intents | bits::MESSAGE_CONTENT,
            ..bot
        };
        assert_eq!(content(entitled.admit(&make(Some(5 << 22), vec![1]))), full);
        let person = Filter { bot: false, ..bot };
        assert_eq!(content(person.admit(&make(Some(5 << 22), vec![1]))), full);
    }

    #[test]
    fn client_state_v2_sessions_get_their_shape() {
        let classic = Dispatch::from_json(EventName::GuildCreate, r#"{"name":"g"}"#.into());
        let shaped = Dispatch::from_json(EventName::GuildCreate, r#"{"properties":{}}"#.into());
        let both = Arc::new(classic.in_guild(1 << 22).with_client_state_v2(shaped));
        let data = |filter: Filter| filter.admit(&both).map(|d| d.data().clone());
        let classic_filter = Filter::everything(7);
        let v2 = Filter {
            client_state_v2: true,
            ..classic_filter
        };
        assert_eq!(data(classic_filter), Some(r#"{"name":"g"}"#.into()));
        assert_eq!(data(v2), Some(r#"{"properties":{}}"#.into()));
        let plain = dispatch(EventName::GuildUpdate, Some(1 << 22));
        assert!(Arc::ptr_eq(&v2.admit(&plain).unwrap(), &plain));
    }

    #[test]
    fn a_guild_larger_than_a_sessions_threshold_comes_as_large() {
        let json = |text: &'static str| Dispatch::from_json(EventName::GuildCreate, text.into());
        let large = json(r#"{"large":true}"#).with_client_state_v2(json(r#"{"v2":true}"#));
        let small = json(r#"{"large":false}"#).with_client_state_v2(json(r#"{"v2":false}"#));
        let joined = Arc::new(
            small
                .in_guild(1 << 22)
                .with_large(60, large.in_guild(1 << 22)),
        );
        let data = |filter: Filter| filter.admit(&joined).map(|d| d.data().clone());
        let fifty = Filter::everything(7);
        let most = Filter {
            large_threshold: MAX_LARGE_THRESHOLD,
            ..fifty
        };
        assert_eq!(data(fifty), Some(r#"{"large":true}"#.into()));
        assert_eq!(data(most), Some(r#"{"large":false}"#.into()));
        let v2 = Filter {
            client_state_v2: true,
            ..fifty
        };
        assert_eq!(data(v2), Some(r#"{"v2":true}"#.into()));
        let sixty = Filter {
            large_threshold: 60,
            ..fifty
        };
        assert_eq!(data(sixty), Some(r#"{"large":false}"#.into()));
    }

    #[test]
    fn shards_split_guilds_and_dms_go_to_shard_zero() {
        assert_eq!(Shard::new(0, 0), None);
        assert_eq!(Shard::new(2, 2), None);
        let (zero, one) = (Shard::new(0, 2).unwrap(), Shard::new(1, 2).unwrap());
        assert!(zero.owns(Some(4 << 22)) && !one.owns(Some(4 << 22)));
        assert!(one.owns(Some(5 << 22)) && !zero.owns(Some(5 << 22)));
        assert!(zero.owns(None) && !one.owns(None));
    }

    #[test]
    fn privileged_intents_follow_application_flags() {
        assert_eq!(allowed_privileged(0), 0);
        assert_eq!(
            allowed_privileged(app_flags::GATEWAY_MESSAGE_CONTENT_LIMITED),
            bits::MESSAGE_CONTENT
        );
        assert_eq!(allowed_privileged(app_flags::INTENT_FLAGS), PRIVILEGED);
    }
}
