//! `POST /read-states/ack-bulk` `{read_states: [{channel_id, message_id, read_state_type?}]}`:
//! many channels read at once (Fermi's "mark as read"). Channels the caller cannot see are
//! skipped, as are read states of other types (guild events, the notification centre), which
//! are not kept here. 204; one MESSAGE_ACK per channel to the caller's own sessions.

use actix_web::web;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::read_states::ReadState;
use crate::events::{Change, Event, ToUser};
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::Json;
use crate::wire::guild::id;

/// Discord's bound on one bulk ack.
const MAX_READ_STATES: usize = 100;
/// The read state type of a channel.
const CHANNEL: i64 = 0;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/read-states/ack-bulk", web::post().to(ack_bulk));
}

#[derive(Debug, Deserialize)]
pub struct AckBulk {
    read_states: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    #[serde(deserialize_with = "crate::http::ids::required")]
    channel_id: i64,
    #[serde(deserialize_with = "crate::http::ids::required")]
    message_id: i64,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    read_state_type: Option<i64>,
}

/// MESSAGE_ACK's body. `version` only ever grows, so a client can tell a stale ack from a
/// newer one.
pub fn ack_event(channel_id: i64, message_id: i64) -> Value {
    json!({
        "channel_id": id(channel_id),
        "message_id": id(message_id),
        "version": chrono::Utc::now().timestamp_millis(),
    })
}

pub async fn ack_bulk(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<AckBulk>,
) -> Result<HttpResponse, ApiError> {
    if body.read_states.len() > MAX_READ_STATES {
        return Err(FormErrors::field(
            "read_states",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_READ_STATES} or fewer in length."),
        )
        .into());
    }
    let user_id = session.user.id;
    let mut conn = state.pool.get().await?;
    let mut acks = Vec::new();
    for entry in body.read_states {
        if entry.read_state_type.unwrap_or(CHANNEL) != CHANNEL {
            continue;
        }
        match ChannelAccess::load(&mut conn, entry.channel_id, user_id).await {
            Ok(_) => acks.push((entry.channel_id, entry.message_id)),
            Err(ApiError::MissingAccess | ApiError::Unknown(Unknown::Channel)) => {}
            Err(other) => return Err(other),
        }
    }
    let mut change = Change::new(&state);
    for (channel_id, message_id) in &acks {
        change.emit(Event::MessageAck(ToUser {
            user_id,
            data: ack_event(*channel_id, *message_id),
        }));
    }
    change
        .commit(&mut conn, async |conn| {
            for (channel_id, message_id) in &acks {
                ReadState::ack(conn, user_id, *channel_id, *message_id).await?;
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
