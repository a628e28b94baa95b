//! A channel's messages: `/channels/{channel_id}/messages/*` (history, sending, editing,
//! deleting, reactions, acks) and `/channels/{channel_id}/pins/*`. Guild channels and DMs alike:
//! [`ChannelAccess`] decides who may do what, and its scope who hears about it.

mod ack;
mod bulk_delete;
mod embeds;
pub mod files;
mod mentions;
mod message_create;
mod message_delete;
mod message_get;
mod message_modify;
mod pins;
mod reactions;
pub mod write;

use std::collections::{HashMap, HashSet};

use actix_web::web::{self, Data};
use serde_json::Value;
use spacebar_actors::intents::{allowed_privileged, bits as intent_bits};

use crate::db::applications::Application;
use crate::db::members::Member;
use crate::db::messages::{kind, Message};
use crate::db::reactions::{Reaction, ReactionCount};
use crate::db::users::User;
use crate::db::{Connection, Pooled};
use crate::events::MessageChange;
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::extractors::{path, Id, InChannel};
use crate::permissions::bits;
use crate::state::AppState;
use crate::wire::guild::{self, id};
use crate::wire::message as wire;

pub fn configure(cfg: &mut web::ServiceConfig) {
    const MESSAGES: &str = "/channels/{channel_id}/messages";
    const MESSAGE: &str = "/channels/{channel_id}/messages/{message_id}";
    const REACTIONS: &str = "/channels/{channel_id}/messages/{message_id}/reactions";
    const EMOJI: &str = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}";
    const USER_REACTION: &str =
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}";
    cfg.route(MESSAGES, web::get().to(message_get::list))
        .route(MESSAGES, web::post().to(message_create::create))
        .route(
            "/channels/{channel_id}/messages/bulk-delete",
            web::post().to(bulk_delete::bulk_delete),
        )
        // Before `{message_id}`, which would otherwise claim `pins` as a (bad) snowflake.
        .route(
            "/channels/{channel_id}/messages/pins",
            web::get().to(pins::list_pages),
        )
        .route(
            "/channels/{channel_id}/messages/pins/{message_id}",
            web::put().to(pins::set::<true>),
        )
        .route(
            "/channels/{channel_id}/messages/pins/{message_id}",
            web::delete().to(pins::set::<false>),
        )
        .route(MESSAGE, web::get().to(message_get::get))
        .route(MESSAGE, web::patch().to(message_modify::modify))
        .route(MESSAGE, web::delete().to(message_delete::delete))
        .route(
            "/channels/{channel_id}/messages/{message_id}/ack",
            web::post().to(ack::ack),
        )
        .route(REACTIONS, web::delete().to(reactions::remove_all))
        .route(EMOJI, web::get().to(reactions::users))
        .route(EMOJI, web::delete().to(reactions::remove_emoji))
        .route(
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            web::put().to(reactions::add),
        )
        .route(USER_REACTION, web::delete().to(reactions::remove))
        .route("/channels/{channel_id}/pins", web::get().to(pins::list))
        .route(
            "/channels/{channel_id}/pins/{message_id}",
            web::put().to(pins::set::<true>),
        )
        .route(
            "/channels/{channel_id}/pins/{message_id}",
            web::delete().to(pins::set::<false>),
        );
}

/// The message a route names, in a channel the caller can see, with the connection they were
/// checked on.
pub struct Target<A = ()> {
    /// The caller's context ([`InChannel`]), carried on for the handler.
    pub state: Data<AppState>,
    pub audit: A,
    pub user: User,
    pub access: ChannelAccess,
    pub message: Message,
    pub conn: Pooled,
}

impl<A> Target<A> {
    /// 10008 if the channel has no such message.
    pub async fn load(
        caller: InChannel<A>,
        message_id: Id<path::Message>,
    ) -> Result<Self, ApiError> {
        let mut conn = caller.conn.get().await?;
        let message = find(&mut conn, &caller.access, message_id.get()).await?;
        Ok(Self {
            state: caller.state,
            audit: caller.audit,
            user: caller.session.user,
            access: caller.access,
            message,
            conn,
        })
    }
}

/// Someone reading a channel's history, with the connection they were checked on.
struct History {
    state: Data<AppState>,
    conn: Pooled,
    access: ChannelAccess,
    reader: Reader,
}

impl History {
    /// `None` when they may see the channel but not read its history (READ_MESSAGE_HISTORY).
    async fn load(caller: InChannel) -> Result<Option<Self>, ApiError> {
        if caller.access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
            return Ok(None);
        }
        let mut conn = caller.conn.get().await?;
        let reader = Reader::of(&mut conn, &caller.session.user, &caller.access).await?;
        Ok(Some(Self {
            state: caller.state,
            conn,
            access: caller.access,
            reader,
        }))
    }

    /// Messages as they read them (see [`render`]).
    async fn render(&mut self, messages: &[Message]) -> Result<Vec<Value>, ApiError> {
        render(&self.state, &mut self.conn, self.reader, messages).await
    }
}

/// The message `message_id` of the channel, or 10008 (also when it is in another channel, or
/// ephemeral).
pub async fn find(
    conn: &mut Connection,
    access: &ChannelAccess,
    message_id: i64,
) -> Result<Message, ApiError> {
    Message::find_in_history(conn, access.channel.id, message_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Message))
}

/// MESSAGE_CREATE's or MESSAGE_UPDATE's payload: `data` (how the event carries `message`) for
/// whoever sees the channel; its author and the users it mentions get it whole, also where bots
/// without MESSAGE_CONTENT get it blank.
pub fn message_change(access: &ChannelAccess, message: &Message, data: Value) -> MessageChange {
    MessageChange {
        scope: access.scope(),
        subjects: message
            .author_id
            .into_iter()
            .chain(message.mentions.iter().copied())
            .collect(),
        message: data,
    }
}

/// `{channel_id, guild_id}` (no `guild_id` in DMs): how message events name their channel.
pub fn event_ids(access: &ChannelAccess) -> Value {
    let mut value = serde_json::json!({ "channel_id": id(access.channel.id) });
    if let Some(guild_id) = access.channel.guild_id {
        value["guild_id"] = id(guild_id).into();
    }
    value
}

/// Who reads messages over REST: whose reactions count as `me`, and whether they may read what
/// others wrote.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub user_id: i64,
    /// False for a bot whose application lacks the MESSAGE_CONTENT intent, reading a guild
    /// channel: as on Discord, messages neither by it nor mentioning it come without content.
    pub sees_content: bool,
}

impl Reader {
    /// Events: one copy for everybody, with content (the gateway redacts per session).
    pub const EVERYONE: Reader = Reader {
        user_id: 0,
        sees_content: true,
    };

    pub async fn of(
        conn: &mut Connection,
        user: &User,
        access: &ChannelAccess,
    ) -> Result<Self, ApiError> {
        Self::reading(conn, user, access.guild.is_some()).await
    }

    /// `user` reading a guild's channels (`in_guild`) or their DMs.
    pub async fn reading(
        conn: &mut Connection,
        user: &User,
        in_guild: bool,
    ) -> Result<Self, ApiError> {
        let sees_content = if user.bot && in_guild {
            // A bot's application shares its id; its flags allow the privileged intents.
            let flags = Application::find(conn, user.id)
                .await?
                .map_or(0, |a| a.flags);
            allowed_privileged(flags) & intent_bits::MESSAGE_CONTENT != 0
        } else {
            true
        };
        Ok(Self {
            user_id: user.id,
            sees_content,
        })
    }

    fn sees(&self, message: &Message) -> bool {
        self.sees_content
            || message.author_id == Some(self.user_id)
            || message.mentions.contains(&self.user_id)
    }
}

/// One message as `reader` sees it (see [`render`]).
pub async fn render_one(
    state: &AppState,
    conn: &mut Connection,
    reader: Reader,
    message: Message,
) -> Result<Value, ApiError> {
    let mut rendered = render(state, conn, reader, &[message]).await?;
    rendered.pop().ok_or(ApiError::Unknown(Unknown::Message))
}

/// Messages as `reader` sees them (whether they reacted is theirs), with the message each
/// reply answers (`null` once that is gone, and never one of another channel).
pub async fn render(
    state: &AppState,
    conn: &mut Connection,
    reader: Reader,
    messages: &[Message],
) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let replied_ids: Vec<i64> = messages
        .iter()
        .filter(|m| m.kind == kind::REPLY)
        .filter_map(wire::referenced_id)
        .collect();
    let replied = if replied_ids.is_empty() {
        Vec::new()
    } else {
        let channel_ids: HashSet<i64> = messages.iter().map(|m| m.channel_id).collect();
        let channel_ids: Vec<i64> = channel_ids.into_iter().collect();
        Message::find_many(conn, &channel_ids, &replied_ids).await?
    };
    let user_ids: HashSet<i64> = messages
        .iter()
        .chain(&replied)
        .flat_map(|m| m.author_id.into_iter().chain(m.mentions.iter().copied()))
        .collect();
    let user_ids: Vec<i64> = user_ids.into_iter().collect();
    let users = User::find_many(conn, &user_ids).await?;
    let users: HashMap<i64, &User> = users.iter().map(|u| (u.id, u)).collect();
    let message_ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    let counts = Reaction::counts(conn, &message_ids, reader.user_id).await?;
    Ok(assemble(state, reader, messages, &replied, &users, &counts))
}

/// [`render`] once everything is read: the messages replied to, the users named (authors and
/// mentions) and the reactions.
fn assemble(
    state: &AppState,
    reader: Reader,
    messages: &[Message],
    replied: &[Message],
    users: &HashMap<i64, &User>,
    counts: &[ReactionCount],
) -> Vec<Value> {
    let plain = |message: &Message, reactions: &[&ReactionCount]| {
        // Authors are kept by a foreign key; one missing is a message deleted meanwhile.
        let author = wire::author(
            message,
            message.author_id.and_then(|a| users.get(&a).copied()),
        )?;
        let mentions: Vec<&User> = message
            .mentions
            .iter()
            .filter_map(|id| users.get(id).copied())
            .collect();
        let mut value = wire::message(message, author, &mentions, reactions);
        state.cdn.sign_attachments(&mut value["attachments"]);
        Some(value)
    };
    messages
        .iter()
        .filter_map(|message| {
            let reactions: Vec<&ReactionCount> = counts
                .iter()
                .filter(|c| c.message_id == message.id)
                .collect();
            let mut value = plain(message, &reactions)?;
            if message.kind == kind::REPLY {
                value["referenced_message"] = wire::referenced_id(message)
                    .and_then(|id| {
                        replied
                            .iter()
                            .find(|r| r.id == id && r.channel_id == message.channel_id)
                    })
                    .and_then(|r| plain(r, &[]))
                    .unwrap_or(Value::Null);
            }
            if !reader.sees(message) {
                value = crate::events::without_content(&value);
            }
            Some(value)
        })
        .collect()
}

/// One message as MESSAGE_CREATE and MESSAGE_UPDATE carry it: in guild channels with the
/// author's `member` (without `user`), as Discord sends it.
pub async fn event_message(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    message: &Message,
) -> Result<Value, ApiError> {
    let mut value = render(state, conn, Reader::EVERYONE, std::slice::from_ref(message))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::Unknown(Unknown::Message))?;
    // `me` differs per reader, and one event goes to all: reactions travel in their own events.
    if let Some(fields) = value.as_object_mut() {
        fields.remove("reactions");
    }
    with_member(conn, access, message, value).await
}

/// MESSAGE_CREATE's message (as [`event_message`] makes it) for a message `author` just sent,
/// made of what the send holds: the author, the users it mentions, the message it replies to. It
/// has no reactions yet; only the users of the message replied to may need reading.
pub async fn sent_message_event(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    message: &Message,
    author: &User,
    mentioned: &[User],
    replied: Option<&Message>,
) -> Result<Value, ApiError> {
    let mut users: HashMap<i64, &User> = std::iter::once(author)
        .chain(mentioned)
        .map(|u| (u.id, u))
        .collect();
    // The replied message shows its author and whom it mentions.
    let mut unknown: Vec<i64> = replied
        .into_iter()
        .flat_map(|r| r.author_id.into_iter().chain(r.mentions.iter().copied()))
        .filter(|id| !users.contains_key(id))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    let read = if unknown.is_empty() {
        Vec::new()
    } else {
        User::find_many(conn, &unknown).await?
    };
    users.extend(read.iter().map(|u| (u.id, u)));
    let value = assemble(
        state,
        Reader::EVERYONE,
        std::slice::from_ref(message),
        replied.map(std::slice::from_ref).unwrap_or_default(),
        &users,
        &[],
    )
    .pop()
    .ok_or(ApiError::Unknown(Unknown::Message))?;
    with_member(conn, access, message, value).await
}

/// A message event's message with its author's `member` in guild channels (without `user`),
/// as Discord sends it.
async fn with_member(
    conn: &mut Connection,
    access: &ChannelAccess,
    message: &Message,
    mut value: Value,
) -> Result<Value, ApiError> {
    if let Some(guild) = &access.guild {
        // A webhook is no member: its messages come without one.
        let member = match message.author_id {
            Some(author_id) if guild.member.user_id == author_id => Some(guild.member.clone()),
            Some(author_id) => Member::find(conn, guild.guild.id, author_id).await?,
            None => None,
        };
        if let Some(member) = member {
            value["member"] = guild::member(&member, None);
        }
    }
    Ok(value)
}

/// A `limit` query parameter: `default` when absent, else 1 to `max` (50035 otherwise).
pub fn limit(text: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let error = |code: &str, message: String| FormErrors::field("limit", code, message).into();
    match text.trim().parse::<i64>() {
        Err(_) => Err(error(
            "NUMBER_TYPE_COERCE",
            format!("Value \"{text}\" is not int."),
        )),
        Ok(n) if n < 1 => Err(error(
            "NUMBER_TYPE_MIN",
            "int value should be greater than or equal to 1.".into(),
        )),
        Ok(n) if n > max => Err(error(
            "NUMBER_TYPE_MAX",
            format!("int value should be less than or equal to {max}."),
        )),
        Ok(n) => Ok(n),
    }
}

/// An optional snowflake query parameter.
pub fn snowflake_param(field: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|text| crate::http::snowflake(field, text))
        .transpose()
}
