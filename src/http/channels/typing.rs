//! `POST /channels/{channel_id}/typing` (SEND_MESSAGES): TYPING_START to those who can see it.

use actix_web::HttpResponse;
use serde_json::json;

use crate::events::Event;
use crate::http::error::ApiError;
use crate::http::extractors::InChannel;
use crate::permissions::bits;
use crate::wire::guild::{self, id};

pub async fn typing(caller: InChannel) -> Result<HttpResponse, ApiError> {
    let InChannel {
        session, access, ..
    } = caller;
    access.require(bits::SEND_MESSAGES)?;
    let mut event = json!({
        "channel_id": id(access.channel.id),
        "user_id": id(session.user.id),
        "timestamp": chrono::Utc::now().timestamp(),
    });
    if let Some(guild_access) = &access.guild {
        event["guild_id"] = id(guild_access.guild.id).into();
        event["member"] = guild::member(&guild_access.member, Some(&session.user));
    }
    caller
        .state
        .publish(&Event::TypingStart(access.scoped(event)));
    Ok(HttpResponse::NoContent().finish())
}
