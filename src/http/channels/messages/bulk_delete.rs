//! `POST /channels/{channel_id}/messages/bulk-delete` `{messages: [ids]}` (MANAGE_MESSAGES, guild
//! channels only): 2 to 100 ids (50016 otherwise), none older than two weeks (50034). Ids that
//! name no message of the channel are ignored, as Discord does. 204; MESSAGE_DELETE_BULK with
//! the ids that went.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::{Duration, Utc};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::json;

use super::{event_ids, files};
use crate::audit::{action, Audit};
use crate::db::messages::Message;
use crate::events::{Change, Event};
use crate::http::error::ApiError;
use crate::http::extractors::InChannel;
use crate::http::json::Json;
use crate::permissions::bits;
use crate::wire::guild::id;

/// Discord's bounds on one bulk delete.
const MIN_MESSAGES: usize = 2;
const MAX_MESSAGES: usize = 100;
/// Older messages must be deleted one by one.
const MAX_AGE_DAYS: i64 = 14;

#[derive(Debug, Deserialize)]
pub struct BulkDelete {
    #[serde(deserialize_with = "crate::http::ids::list")]
    messages: Vec<i64>,
}

pub async fn bulk_delete(
    caller: InChannel<Audit>,
    Json(body): Json<BulkDelete>,
) -> Result<HttpResponse, ApiError> {
    let access = &caller.access;
    let channel_id = access.channel.id;
    let guild_id = access.guild()?.guild.id;
    access.require(bits::MANAGE_MESSAGES)?;
    // The instance may allow fewer per call than Discord, never more.
    let max = usize::try_from(caller.state.config().limits.message_max_bulk_delete)
        .unwrap_or(MAX_MESSAGES)
        .min(MAX_MESSAGES);
    if !(MIN_MESSAGES..=max).contains(&body.messages.len()) {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50016,
            message: "Provided too few or too many messages to delete. Must provide at least 2 and fewer than 100 messages to delete.",
        });
    }
    let oldest = Utc::now() - Duration::days(MAX_AGE_DAYS);
    if body
        .messages
        .iter()
        .any(|id| crate::snowflake::timestamp(*id) < oldest)
    {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50034,
            message: "You can only bulk delete messages that are under 14 days old.",
        });
    }
    let mut ids = body.messages;
    ids.sort_unstable();
    ids.dedup();
    let kind = action::MESSAGE_BULK_DELETE;
    let entry = caller.audit.entry(
        &caller.state,
        guild_id,
        caller.session.user.id,
        kind,
        Some(channel_id),
    );
    let mut conn = caller.conn.get().await?;
    // The entry is written only if something went, so it is no part of a `Change` up front.
    let (removed, entry) = conn
        .transaction(async |conn| {
            let removed = Message::delete_many(conn, channel_id, &ids).await?;
            let entry = (!removed.is_empty())
                .then(|| entry.options(json!({ "count": removed.len().to_string() })));
            if let Some(entry) = &entry {
                entry.write(conn).await?;
            }
            Ok::<_, diesel::result::Error>((removed, entry))
        })
        .await?;
    let mut change = Change::new(&caller.state);
    if let Some(entry) = &entry {
        change.emit(entry.event());
    }
    change.remove_files(
        removed
            .iter()
            .flat_map(|(_, attachments)| files::keys_of(channel_id, attachments)),
    );
    let mut deleted: Vec<i64> = removed.into_iter().map(|(id, _)| id).collect();
    if !deleted.is_empty() {
        deleted.sort_unstable();
        let mut event = event_ids(access);
        event["ids"] = deleted.into_iter().map(id).collect();
        change.emit(Event::MessageDeleteBulk(access.scoped(event)));
    }
    change.publish().await;
    Ok(HttpResponse::NoContent().finish())
}
