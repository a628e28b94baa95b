//! `POST /channels/{channel_id}/typing` (SEND_MESSAGES): TYPING_START to those who can see it.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use serde_json::json;
use spacebar_actors::guild::Audience;
use spacebar_actors::EventName;

use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::server::AppState;
use crate::wire::guild::{self, id};

pub async fn typing(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    access.require(bits::SEND_MESSAGES)?;
    let mut event = json!({
        "channel_id": id(channel_id),
        "user_id": id(session.user.id),
        "timestamp": chrono::Utc::now().timestamp(),
    });
    match &access.guild {
        Some(guild_access) => {
            event["guild_id"] = id(guild_access.guild.id).into();
            event["member"] = guild::member(&guild_access.member, Some(&session.user));
            state.guild_event(
                guild_access.guild.id,
                EventName::TypingStart,
                &event,
                Audience::Channel(channel_id),
                Vec::new(),
            )?;
        }
        None => {
            for recipient in &access.recipients {
                state.user_event(*recipient, EventName::TypingStart, &event)?;
            }
        }
    }
    Ok(HttpResponse::NoContent().finish())
}
