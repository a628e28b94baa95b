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
use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{event_ids, event_message, find, limit, message_change, History};
use crate::audit::{action, Audit, Entry};
use crate::db::channels::Channel;
use crate::db::messages::{kind, Message};
use crate::db::{Connection, Pooled};
use crate::events::{Change, Event};
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::{path, Id, InChannel};
use crate::permissions::bits;
use crate::rights;
use crate::state::AppState;
use crate::wire::message as wire;

/// A pin or unpin the caller may make (MANAGE_MESSAGES in a guild, anyone in a DM), with its
/// audit log entry (guild channels only: the author as target, the channel and message in
/// `options`).
struct Pinning {
    state: Data<AppState>,
    user_id: i64,
    conn: Pooled,
    access: ChannelAccess,
    message: Message,
    entry: Option<Entry>,
}

impl Pinning {
    async fn load(
        caller: InChannel<Audit>,
        message_id: Id<path::Message>,
        kind: i32,
    ) -> Result<Self, ApiError> {
        let (access, user) = (caller.access, caller.session.user);
        ApiError::require(user.rights, rights::PIN_MESSAGES)?;
        if access.guild.is_some() {
            access.require(bits::MANAGE_MESSAGES)?;
        }
        let mut conn = caller.conn.get().await?;
        let message = find(&mut conn, &access, message_id.get()).await?;
        let entry = access.guild.as_ref().map(|guild| {
            let options = json!({
                "channel_id": crate::wire::guild::id(access.channel.id),
                "message_id": crate::wire::guild::id(message.id),
            });
            let (guild_id, user_id) = (guild.guild.id, guild.member.user_id);
            let target = message.author_or_webhook();
            (caller.audit)
                .entry(&caller.state, guild_id, user_id, kind, target)
                .options(options)
        });
        Ok(Self {
            state: caller.state,
            user_id: user.id,
            conn,
            access,
            message,
            entry,
        })
    }

    /// What a pin or unpin that happened owes, once committed: its audit entry, MESSAGE_UPDATE
    /// of the message, MESSAGE_CREATE of the pin's `notice`, CHANNEL_PINS_UPDATE.
    async fn tell(
        mut self,
        notice: Option<&Message>,
        last_pin_timestamp: Option<DateTime<Utc>>,
    ) -> Result<(), ApiError> {
        let mut change = Change::new(&self.state);
        // The entry went with the pin (only if it happened); its event is still owed.
        if let Some(entry) = &self.entry {
            change.emit(entry.event());
        }
        let access = &self.access;
        let updated = event_message(&self.state, &mut self.conn, access, &self.message).await?;
        change.emit(Event::MessageUpdate(message_change(
            access,
            &self.message,
            updated,
        )));
        if let Some(notice) = notice {
            let created = event_message(&self.state, &mut self.conn, access, notice).await?;
            change.emit(Event::MessageCreate(message_change(
                access, notice, created,
            )));
        }
        let mut event = event_ids(access);
        event["last_pin_timestamp"] = json!(last_pin_timestamp);
        change.emit(Event::ChannelPinsUpdate(access.scoped(event)));
        change.publish().await;
        Ok(())
    }
}

/// `PUT` (`PIN`) and `DELETE` of a pin.
pub async fn set<const PIN: bool>(
    caller: InChannel<Audit>,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let kind = if PIN {
        action::MESSAGE_PIN
    } else {
        action::MESSAGE_UNPIN
    };
    let pinning = Pinning::load(caller, message_id, kind).await?;
    if PIN {
        pin(pinning).await?;
    } else {
        unpin(pinning).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

async fn pin(mut pinning: Pinning) -> Result<(), ApiError> {
    let message = &pinning.message;
    if kind::is_system(message.kind) {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50021,
            message: "Cannot execute action on a system message",
        });
    }
    if message.pinned {
        return Ok(());
    }
    let channel_id = pinning.access.channel.id;
    let pinned = Message::count_pinned(&mut pinning.conn, channel_id).await?;
    if u64::try_from(pinned).unwrap_or(u64::MAX) >= pinning.state.config().limits.channel_max_pins {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30003,
            message: "Maximum number of pins reached",
        });
    }
    let guild_id = pinning.access.channel.guild_id;
    let mut notice = Message::new(
        pinning.state.snowflakes.next(),
        channel_id,
        guild_id,
        pinning.user_id,
    );
    notice.kind = kind::CHANNEL_PINNED_MESSAGE;
    notice.message_reference = Some(wire::reference(message.id, channel_id, guild_id));
    let (message_id, entry) = (message.id, &pinning.entry);
    let changed = pinning
        .conn
        .transaction(async |conn| {
            // Someone else may have pinned it meanwhile: then there is nothing to announce.
            if !Message::set_pinned(conn, message_id, true).await? {
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
        pinning.message.pinned = true;
        let at = notice.created_at;
        pinning.tell(Some(&notice), Some(at)).await?;
    }
    Ok(())
}

async fn unpin(mut pinning: Pinning) -> Result<(), ApiError> {
    let channel_id = pinning.access.channel.id;
    let (message_id, entry) = (pinning.message.id, &pinning.entry);
    let unpinned = pinning
        .conn
        .transaction(async |conn| {
            if !Message::set_pinned(conn, message_id, false).await? {
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
    if let Some(latest) = unpinned {
        pinning.message.pinned = false;
        pinning.tell(None, latest).await?;
    }
    Ok(())
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

impl History {
    /// The channel's pins, newest pin first, with when each was pinned.
    async fn pins(&mut self) -> Result<Vec<(Message, DateTime<Utc>)>, ApiError> {
        Ok(newest_first(&mut self.conn, self.access.channel.id).await?)
    }
}

pub async fn list(caller: InChannel) -> Result<HttpResponse, ApiError> {
    let Some(mut history) = History::load(caller).await? else {
        return Ok(HttpResponse::Ok().json([(); 0]));
    };
    let messages: Vec<Message> = history.pins().await?.into_iter().map(|(m, _)| m).collect();
    Ok(HttpResponse::Ok().json(history.render(&messages).await?))
}

#[derive(Debug, Deserialize)]
pub struct PagesQuery {
    before: Option<String>,
    limit: Option<String>,
}

pub async fn list_pages(
    caller: InChannel,
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
    let Some(mut history) = History::load(caller).await? else {
        return Ok(HttpResponse::Ok().json(json!({ "items": [], "has_more": false })));
    };
    let mut pins: Vec<(Message, DateTime<Utc>)> = history
        .pins()
        .await?
        .into_iter()
        .filter(|(_, at)| before.is_none_or(|before| *at < before))
        .collect();
    let has_more = pins.len() > limit;
    pins.truncate(limit);
    let (messages, times): (Vec<Message>, Vec<DateTime<Utc>>) = pins.into_iter().unzip();
    let rendered = history.render(&messages).await?;
    let items: Vec<Value> = rendered
        .into_iter()
        .zip(times)
        .map(|(message, pinned_at)| json!({ "pinned_at": pinned_at, "message": message }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "has_more": has_more })))
}
