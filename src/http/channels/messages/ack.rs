//! `POST /channels/{channel_id}/messages/{message_id}/ack`: the caller has read the channel up
//! to this message. The body may be empty or `{token, manual, mention_count}`. Answers
//! `{"token": null}`; MESSAGE_ACK to the caller's own sessions only.

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

use crate::db::read_states::ReadState;
use crate::events::{Event, ToUser};
use crate::http::error::ApiError;
use crate::http::extractors::{path, Id, InChannel};
use crate::http::read_states::ack_event;

#[derive(Debug, Default, Deserialize)]
pub struct AckBody {
    /// A client marking a channel unread sets this, with the mentions it wants to see again.
    #[serde(default)]
    manual: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    mention_count: Option<i64>,
}

pub async fn ack(
    caller: InChannel,
    message_id: Id<path::Message>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (channel_id, message_id) = (caller.access.channel.id, message_id.get());
    // Bots and older clients post nothing at all.
    let body: AckBody = if body.iter().all(u8::is_ascii_whitespace) {
        AckBody::default()
    } else {
        crate::http::json::parse(&body)?
    };
    let user_id = caller.session.user.id;
    let mut conn = caller.conn.get().await?;
    ReadState::ack(&mut conn, user_id, channel_id, message_id).await?;
    let mut event = ack_event(channel_id, message_id);
    if body.manual == Some(true) {
        event["manual"] = true.into();
        event["mention_count"] = body.mention_count.unwrap_or(0).into();
    }
    caller.state.publish(&Event::MessageAck(ToUser {
        user_id,
        data: event,
    }));
    Ok(HttpResponse::Ok().json(json!({ "token": null })))
}
