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
use actix_web::web::Query;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::{event_ids, limit, snowflake_param, Target};
use crate::db::reactions::Reaction;
use crate::events::{Event, Scoped};
use crate::http::error::ApiError;
use crate::http::extractors::{path, Id, InChannel};
use crate::permissions::bits;
use crate::rights;
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

/// What every reaction event says about the message.
impl Target {
    /// The message, for a caller who may clear others' reactions from it.
    async fn moderated(caller: InChannel, message_id: Id<path::Message>) -> Result<Self, ApiError> {
        let target = Target::load(caller, message_id).await?;
        target.moderate()?;
        Ok(target)
    }

    /// Clearing others' reactions needs a guild channel and MANAGE_MESSAGES.
    fn moderate(&self) -> Result<(), ApiError> {
        self.access.guild()?;
        self.access.require(bits::MANAGE_MESSAGES)
    }

    /// `event` with `data` to whoever sees the channel.
    fn tell(&self, event: fn(Scoped) -> Event, data: Value) {
        self.state.publish(&event(self.access.scoped(data)));
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

/// The `{emoji}` of the path.
fn path_emoji(req: &HttpRequest) -> Result<Emoji, ApiError> {
    Emoji::parse(req.match_info().get("emoji").unwrap_or_default())
}

pub async fn add(
    req: HttpRequest,
    caller: InChannel,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    ApiError::require(caller.session.user.rights, rights::SELF_ADD_REACTIONS)?;
    let emoji = path_emoji(&req)?;
    let mut target = Target::load(caller, message_id).await?;
    target.access.require(bits::READ_MESSAGE_HISTORY)?;
    let on_message = Reaction::emoji_keys(&mut target.conn, target.message.id).await?;
    // Joining a reaction needs no ADD_REACTIONS, unless a timeout forbids reacting at all.
    if target.access.timed_out() {
        target.access.require(bits::ADD_REACTIONS)?;
    }
    if !on_message.contains(&emoji.key) {
        target.access.require(bits::ADD_REACTIONS)?;
        let max = target.state.config().limits.message_max_reactions;
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
        user_id: target.user.id,
        emoji_key: emoji.key.clone(),
        emoji_id: emoji.id,
        emoji_name: emoji.name.clone(),
        created_at: Utc::now(),
    };
    if reaction.add(&mut target.conn).await? {
        let mut event = target.reaction_event(&emoji, target.user.id);
        event["message_author_id"] = opt_id(target.message.author_or_webhook()).into();
        event["burst_colors"] = Value::Array(Vec::new());
        if let Some(guild) = &target.access.guild {
            event["member"] = guild::member(&guild.member, Some(&target.user));
        }
        target.tell(Event::MessageReactionAdd, event);
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove(
    req: HttpRequest,
    caller: InChannel,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let emoji = path_emoji(&req)?;
    let mut target = Target::load(caller, message_id).await?;
    let me = target.user.id;
    let user_id = match req.match_info().get("user_id") {
        None | Some("@me") => me,
        Some(_) => Id::<path::User>::of(&req)?.get(),
    };
    if user_id != me {
        target.moderate()?;
    }
    if Reaction::remove(&mut target.conn, target.message.id, &emoji.key, user_id).await? {
        let event = target.reaction_event(&emoji, user_id);
        target.tell(Event::MessageReactionRemove, event);
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
    req: HttpRequest,
    caller: InChannel,
    message_id: Id<path::Message>,
    query: Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(query.limit.as_deref(), 25, 100)?;
    let after = snowflake_param("after", query.after.as_deref())?.unwrap_or(0);
    let emoji = path_emoji(&req)?;
    let mut target = Target::load(caller, message_id).await?;
    target.access.require(bits::READ_MESSAGE_HISTORY)?;
    // Type 1 asks for super reactions, which nobody can make here.
    if query.kind.as_deref().is_some_and(|kind| kind.trim() == "1") {
        return Ok(HttpResponse::Ok().json([(); 0]));
    }
    let users = Reaction::users(
        &mut target.conn,
        target.message.id,
        &emoji.key,
        after,
        limit,
    )
    .await?;
    let users: Vec<PublicUser> = users.iter().map(PublicUser::from).collect();
    Ok(HttpResponse::Ok().json(users))
}

pub async fn remove_all(
    caller: InChannel,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let mut target = Target::moderated(caller, message_id).await?;
    if Reaction::remove_all(&mut target.conn, target.message.id).await? {
        target.tell(Event::MessageReactionRemoveAll, target.event());
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove_emoji(
    req: HttpRequest,
    caller: InChannel,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let emoji = path_emoji(&req)?;
    let mut target = Target::moderated(caller, message_id).await?;
    if Reaction::remove_emoji(&mut target.conn, target.message.id, &emoji.key).await? {
        let mut event = target.event();
        event["emoji"] = emoji.wire();
        target.tell(Event::MessageReactionRemoveEmoji, event);
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
