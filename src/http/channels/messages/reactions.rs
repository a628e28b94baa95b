//! Reactions on a message. The emoji in the path is URL-encoded: a unicode emoji itself
//! (`%F0%9F%91%8D`), or a custom one as `name:id`.
//!
//! - `PUT …/reactions/{emoji}/@me` (READ_MESSAGE_HISTORY, and ADD_REACTIONS for an emoji not on
//!   the message yet): 204, idempotent; MESSAGE_REACTION_ADD.
//! - `DELETE …/reactions/{emoji}/@me`, `DELETE …/reactions/{emoji}/{user_id}` (someone else's:
//!   MANAGE_MESSAGES): 204; MESSAGE_REACTION_REMOVE.
//! - `GET …/reactions/{emoji}?limit=&after=`: who reacted, by user id.
//! - `DELETE …/reactions` (MANAGE_MESSAGES): MESSAGE_REACTION_REMOVE_ALL.
//! - `DELETE …/reactions/{emoji}` (MANAGE_MESSAGES): MESSAGE_REACTION_REMOVE_EMOJI.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::HttpResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use spacebar_actors::EventName;

use super::{event_ids, find, limit, publish, snowflake_param};
use crate::db::messages::Message;
use crate::db::reactions::Reaction;
use crate::db::Connection;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::rights;
use crate::server::AppState;
use crate::wire::guild::{self, id, opt_id};
use crate::wire::message::emoji as wire_emoji;
use crate::wire::user::PublicUser;

/// An emoji named in a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji {
    /// The custom emoji's id, or the unicode emoji itself.
    pub key: String,
    pub id: Option<i64>,
    pub name: String,
}

impl Emoji {
    /// Parses `name:id` (or `a:name:id`) or a unicode emoji; 10014 for anything else.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let unknown = || ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 10014,
            message: "Unknown Emoji",
        };
        if let Some((name, emoji_id)) = text.rsplit_once(':') {
            let name = name.strip_prefix("a:").unwrap_or(name);
            let emoji_id = emoji_id.parse::<i64>().ok().filter(|id| *id > 0);
            let name_ok = (2..=32).contains(&name.chars().count())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return match emoji_id {
                Some(emoji_id) if name_ok => Ok(Self {
                    key: emoji_id.to_string(),
                    id: Some(emoji_id),
                    name: name.to_string(),
                }),
                _ => Err(unknown()),
            };
        }
        // Unicode emojis: a few code points (ZWJ sequences, flags, keycaps), never plain text.
        // Keycaps are the one place ASCII appears (`1️⃣`, `#️⃣`).
        let count = text.chars().count();
        let looks_like_emoji = (1..=32).contains(&count)
            && !text.is_ascii()
            && text.chars().all(|c| !c.is_whitespace() && !c.is_control())
            && text
                .chars()
                .filter(char::is_ascii)
                .all(|c| c.is_ascii_digit() || c == '#' || c == '*');
        if looks_like_emoji {
            Ok(Self {
                key: text.to_string(),
                id: None,
                name: text.to_string(),
            })
        } else {
            Err(unknown())
        }
    }

    fn wire(&self) -> Value {
        wire_emoji(self.id, &self.name)
    }
}

/// The channel and message a reaction route names, after the checks every one shares.
struct Target {
    access: ChannelAccess,
    message: Message,
}

impl Target {
    async fn load(
        conn: &mut Connection,
        user_id: i64,
        channel: &str,
        message: &str,
    ) -> Result<Self, ApiError> {
        let channel_id = snowflake("channel_id", channel)?;
        let message_id = snowflake("message_id", message)?;
        let access = ChannelAccess::load(conn, channel_id, user_id).await?;
        let message = find(conn, &access, message_id).await?;
        Ok(Self { access, message })
    }

    /// `{channel_id, guild_id, message_id}`, what every reaction event starts with.
    fn event(&self) -> Value {
        let mut event = event_ids(&self.access);
        event["message_id"] = id(self.message.id).into();
        event
    }

    /// A single reaction's event: `{…, user_id, emoji, burst, type}`.
    fn reaction_event(&self, emoji: &Emoji, user_id: i64) -> Value {
        let mut event = self.event();
        event["user_id"] = id(user_id).into();
        event["emoji"] = emoji.wire();
        event["burst"] = false.into();
        event["type"] = 0.into();
        event
    }
}

pub async fn add(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let user = &session.user;
    ApiError::require(user.rights, rights::SELF_ADD_REACTIONS)?;
    let emoji = Emoji::parse(&path.2)?;
    let mut conn = state.pool.get().await?;
    let target = Target::load(&mut conn, user.id, &path.0, &path.1).await?;
    target.access.require(bits::READ_MESSAGE_HISTORY)?;
    let on_message = Reaction::emoji_keys(&mut conn, target.message.id).await?;
    // Joining a reaction needs no ADD_REACTIONS, unless a timeout forbids reacting at all.
    if target.access.timed_out() {
        target.access.require(bits::ADD_REACTIONS)?;
    }
    if !on_message.contains(&emoji.key) {
        target.access.require(bits::ADD_REACTIONS)?;
        let max = state.config().limits.message_max_reactions;
        if u64::try_from(on_message.len()).unwrap_or(u64::MAX) >= max {
            return Err(ApiError::Plain {
                status: StatusCode::BAD_REQUEST,
                code: 30010,
                message: "Maximum number of reactions reached",
            });
        }
    }
    let reaction = Reaction {
        message_id: target.message.id,
        user_id: user.id,
        emoji_key: emoji.key.clone(),
        emoji_id: emoji.id,
        emoji_name: emoji.name.clone(),
        created_at: Utc::now(),
    };
    if reaction.add(&mut conn).await? {
        let mut event = target.reaction_event(&emoji, user.id);
        event["message_author_id"] = opt_id(target.message.author_or_webhook()).into();
        event["burst_colors"] = Value::Array(Vec::new());
        if let Some(guild) = &target.access.guild {
            event["member"] = guild::member(&guild.member, Some(user));
        }
        publish(
            &state,
            &target.access,
            EventName::MessageReactionAdd,
            &event,
        )?;
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let me = session.user.id;
    let emoji = Emoji::parse(&path.2)?;
    let mut conn = state.pool.get().await?;
    let target = Target::load(&mut conn, me, &path.0, &path.1).await?;
    let user_id = match path.3.as_str() {
        "@me" => me,
        other => snowflake("user_id", other)?,
    };
    if user_id != me {
        target.access.guild()?;
        target.access.require(bits::MANAGE_MESSAGES)?;
    }
    if Reaction::remove(&mut conn, target.message.id, &emoji.key, user_id).await? {
        let event = target.reaction_event(&emoji, user_id);
        publish(
            &state,
            &target.access,
            EventName::MessageReactionRemove,
            &event,
        )?;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    limit: Option<String>,
    after: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub async fn users(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String, String)>,
    query: Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(query.limit.as_deref(), 25, 100)?;
    let after = snowflake_param("after", query.after.as_deref())?.unwrap_or(0);
    let emoji = Emoji::parse(&path.2)?;
    let mut conn = state.pool.get().await?;
    let target = Target::load(&mut conn, session.user.id, &path.0, &path.1).await?;
    target.access.require(bits::READ_MESSAGE_HISTORY)?;
    // Type 1 asks for super reactions, which nobody can make here.
    if query.kind.as_deref().is_some_and(|kind| kind.trim() == "1") {
        return Ok(HttpResponse::Ok().json([(); 0]));
    }
    let users = Reaction::users(&mut conn, target.message.id, &emoji.key, after, limit).await?;
    let users: Vec<PublicUser> = users.iter().map(PublicUser::from).collect();
    Ok(HttpResponse::Ok().json(users))
}

pub async fn remove_all(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let target = Target::load(&mut conn, session.user.id, &path.0, &path.1).await?;
    target.access.guild()?;
    target.access.require(bits::MANAGE_MESSAGES)?;
    if Reaction::remove_all(&mut conn, target.message.id).await? {
        let event = target.event();
        publish(
            &state,
            &target.access,
            EventName::MessageReactionRemoveAll,
            &event,
        )?;
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove_emoji(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let emoji = Emoji::parse(&path.2)?;
    let mut conn = state.pool.get().await?;
    let target = Target::load(&mut conn, session.user.id, &path.0, &path.1).await?;
    target.access.guild()?;
    target.access.require(bits::MANAGE_MESSAGES)?;
    if Reaction::remove_emoji(&mut conn, target.message.id, &emoji.key).await? {
        let mut event = target.event();
        event["emoji"] = emoji.wire();
        publish(
            &state,
            &target.access,
            EventName::MessageReactionRemoveEmoji,
            &event,
        )?;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emojis_are_unicode_or_name_and_id() {
        let thumbs = Emoji::parse("👍").unwrap();
        assert_eq!((thumbs.key.as_str(), thumbs.id), ("👍", None));
        let family = Emoji::parse("👨‍👩‍👧‍👦").unwrap();
        assert_eq!(family.name, "👨‍👩‍👧‍👦");
        assert!(Emoji::parse("1️⃣").is_ok());
        let custom = Emoji::parse("party_blob:123456789").unwrap();
        assert_eq!(
            (custom.key.as_str(), custom.id, custom.name.as_str()),
            ("123456789", Some(123456789), "party_blob")
        );
        assert_eq!(Emoji::parse("a:spin:42").unwrap().name, "spin");
        for bad in ["", "hello", "x:1", "blob:", "blob:abc", "👍 x", "1"] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }
}
