//! Pins: `PUT/DELETE /channels/{channel_id}/pins/{message_id}` (and the same under
//! `/channels/{channel_id}/messages/pins/`): MANAGE_MESSAGES in guilds, anyone in a DM; at most
//! `limits.channel_max_pins` per channel (30003). Pinning posts Discord's CHANNEL_PINNED_MESSAGE
//! notice (type 6, naming the pin in `message_reference`); both answer 204 and send
//! MESSAGE_UPDATE and CHANNEL_PINS_UPDATE. `GET /channels/{channel_id}/pins` lists the pins newest
//! pinned first; `GET /channels/{channel_id}/messages/pins?before=&limit=` pages them as
//! `{items: [{pinned_at, message}], has_more}`.
//!
//! The table keeps no pin time, so a pin's time is its notice's: the notice's id is a snowflake
//! minted at the moment of the pin.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::{json, Value};
use spacebar_actors::EventName;

use super::{
    event_ids, event_message, find, limit, publish, publish_message, render, Pooled, Reader,
};
use crate::audit::{action, Audit, Entry};
use crate::db::channels::Channel;
use crate::db::messages::{kind, Message};
use crate::db::Connection;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::snowflake;
use crate::permissions::bits;
use crate::rights;
use crate::server::AppState;
use crate::wire::message as wire;

/// A pin's or unpin's audit log entry (guild channels only): the author as target, the
/// channel and message in `options`.
fn audited(
    state: &AppState,
    audit: &Audit,
    access: &ChannelAccess,
    message: &Message,
    kind: i32,
) -> Option<Entry> {
    let guild = access.guild.as_ref()?;
    let options = json!({
        "channel_id": crate::wire::guild::id(access.channel.id),
        "message_id": crate::wire::guild::id(message.id),
    });
    let (guild_id, user_id) = (guild.guild.id, guild.member.user_id);
    let entry = audit.entry(state, guild_id, user_id, kind, message.author_or_webhook());
    Some(entry.options(options))
}

/// The caller may pin and unpin here: MANAGE_MESSAGES in a guild, anyone in a DM.
async fn load(
    state: &AppState,
    session: &crate::credentials::Session,
    path: &(String, String),
) -> Result<(Pooled, ChannelAccess, Message), ApiError> {
    let channel_id = snowflake("channel_id", &path.0)?;
    let message_id = snowflake("message_id", &path.1)?;
    ApiError::require(session.user.rights, rights::PIN_MESSAGES)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    if access.guild.is_some() {
        access.require(bits::MANAGE_MESSAGES)?;
    }
    let message = find(&mut conn, &access, message_id).await?;
    Ok((conn, access, message))
}

pub async fn pin(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, access, mut message) = load(&state, &session, &path).await?;
    let entry = audited(&state, &audit, &access, &message, action::MESSAGE_PIN);
    if kind::is_system(message.kind) {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50021,
            message: "Cannot execute action on a system message",
        });
    }
    if message.pinned {
        return Ok(HttpResponse::NoContent().finish());
    }
    let pinned = Message::count_pinned(&mut conn, access.channel.id).await?;
    if u64::try_from(pinned).unwrap_or(u64::MAX) >= state.config().limits.channel_max_pins {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30003,
            message: "Maximum number of pins reached",
        });
    }
    let channel_id = access.channel.id;
    let guild_id = access.channel.guild_id;
    let mut notice = Message::new(
        state.snowflakes.next(),
        channel_id,
        guild_id,
        session.user.id,
    );
    notice.kind = kind::CHANNEL_PINNED_MESSAGE;
    notice.message_reference = Some(wire::reference(message.id, channel_id, guild_id));
    let changed = conn
        .transaction(async |conn| {
            // Someone else may have pinned it meanwhile: then there is nothing to announce.
            if !Message::set_pinned(conn, message.id, true).await? {
                return Ok::<_, diesel::result::Error>(false);
            }
            notice.insert(conn).await?;
            Channel::set_last_message(conn, channel_id, notice.id).await?;
            Message::set_last_pin_timestamp(conn, channel_id, Some(notice.created_at)).await?;
            Entry::write_all(entry.as_slice(), conn).await?;
            Ok(true)
        })
        .await?;
    if changed {
        state.audit_logged_all(entry.as_slice())?;
        message.pinned = true;
        publish_message(
            &state,
            &access,
            EventName::MessageUpdate,
            &message,
            &event_message(&state, &mut conn, &access, &message).await?,
        )?;
        publish_message(
            &state,
            &access,
            EventName::MessageCreate,
            &notice,
            &event_message(&state, &mut conn, &access, &notice).await?,
        )?;
        pins_update(&state, &access, Some(notice.created_at))?;
    }
    Ok(HttpResponse::NoContent().finish())
}

pub async fn unpin(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, access, mut message) = load(&state, &session, &path).await?;
    let entry = audited(&state, &audit, &access, &message, action::MESSAGE_UNPIN);
    let channel_id = access.channel.id;
    let unpinned = conn
        .transaction(async |conn| {
            if !Message::set_pinned(conn, message.id, false).await? {
                return Ok::<_, diesel::result::Error>(None);
            }
            // The channel's last pin time is now that of the newest pin left, if any.
            let latest = newest_first(conn, channel_id)
                .await?
                .first()
                .map(|(_, at)| *at);
            Message::set_last_pin_timestamp(conn, channel_id, latest).await?;
            Entry::write_all(entry.as_slice(), conn).await?;
            Ok(Some(latest))
        })
        .await?;
    if unpinned.is_some() {
        state.audit_logged_all(entry.as_slice())?;
    }
    if let Some(latest) = unpinned {
        message.pinned = false;
        publish_message(
            &state,
            &access,
            EventName::MessageUpdate,
            &message,
            &event_message(&state, &mut conn, &access, &message).await?,
        )?;
        pins_update(&state, &access, latest)?;
    }
    Ok(HttpResponse::NoContent().finish())
}

fn pins_update(
    state: &AppState,
    access: &ChannelAccess,
    last_pin_timestamp: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    let mut event = event_ids(access);
    event["last_pin_timestamp"] = json!(last_pin_timestamp);
    publish(state, access, EventName::ChannelPinsUpdate, &event)
}

/// A channel's pins with when each was pinned, newest pin first. A pin whose notice was deleted
/// counts as pinned when it was sent.
async fn newest_first(
    conn: &mut Connection,
    channel_id: i64,
) -> diesel::QueryResult<Vec<(Message, DateTime<Utc>)>> {
    let pinned = Message::pinned(conn, channel_id).await?;
    let ids: Vec<i64> = pinned.iter().map(|m| m.id).collect();
    let times = Message::pin_times(conn, channel_id, &ids).await?;
    let mut pins: Vec<(Message, DateTime<Utc>)> = pinned
        .into_iter()
        .map(|m| {
            let at = times.get(&m.id).copied().unwrap_or(m.created_at);
            (m, at)
        })
        .collect();
    pins.sort_by_key(|(message, at)| std::cmp::Reverse((*at, message.id)));
    Ok(pins)
}

/// The channel and the caller's right to read its history; `None` when they may see the
/// channel but not its history (they get an empty list, as with messages).
async fn readable(
    state: &AppState,
    user_id: i64,
    channel: &str,
) -> Result<(Pooled, Option<ChannelAccess>), ApiError> {
    let channel_id = snowflake("channel_id", channel)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, user_id).await?;
    let readable = access.permissions & bits::READ_MESSAGE_HISTORY != 0;
    Ok((conn, readable.then_some(access)))
}

pub async fn list(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, access) = readable(&state, session.user.id, &path).await?;
    let Some(access) = access else {
        return Ok(HttpResponse::Ok().json([(); 0]));
    };
    let messages: Vec<Message> = newest_first(&mut conn, access.channel.id)
        .await?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let reader = Reader::of(&mut conn, &session.user, &access).await?;
    Ok(HttpResponse::Ok().json(render(&state, &mut conn, reader, &messages).await?))
}

#[derive(Debug, Deserialize)]
pub struct PagesQuery {
    before: Option<String>,
    limit: Option<String>,
}

pub async fn list_pages(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
    query: Query<PagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = usize::try_from(limit(query.limit.as_deref(), 50, 50)?).unwrap_or(50);
    let before = match query.before.as_deref() {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    FormErrors::field(
                        "before",
                        "DATE_TYPE_PARSE",
                        format!("Could not parse {text}. Should be ISO8601."),
                    )
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let (mut conn, access) = readable(&state, session.user.id, &path).await?;
    let Some(access) = access else {
        return Ok(HttpResponse::Ok().json(json!({ "items": [], "has_more": false })));
    };
    let mut pins: Vec<(Message, DateTime<Utc>)> = newest_first(&mut conn, access.channel.id)
        .await?
        .into_iter()
        .filter(|(_, at)| before.is_none_or(|before| *at < before))
        .collect();
    let has_more = pins.len() > limit;
    pins.truncate(limit);
    let (messages, times): (Vec<Message>, Vec<DateTime<Utc>>) = pins.into_iter().unzip();
    let reader = Reader::of(&mut conn, &session.user, &access).await?;
    let rendered = render(&state, &mut conn, reader, &messages).await?;
    let items: Vec<Value> = rendered
        .into_iter()
        .zip(times)
        .map(|(message, pinned_at)| json!({ "pinned_at": pinned_at, "message": message }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "has_more": has_more })))
}
