//! `/guilds/{guild_id}/voice-states/{@me|user_id}`: a member's voice state, and in stage
//! channels suppressing, unsuppressing and requests to speak; `/guilds/{guild_id}/regions`.
//! Also what `PATCH /members/{id}` does to a member in voice (server mute and deafen, moving,
//! disconnecting). Voice states live in the guild's actor (`actors/src/guild/voice.rs`), never
//! in the database.

use actix_web::http::StatusCode;
use actix_web::web::{self, Path};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use spacebar_actors::guild::voice::{Moderation, VoiceChange, VoiceChannel, VoiceError};

use super::members::{present, target};
use crate::audit::{action, Audit, Entry};
use crate::db::channels::kind;
use crate::db::Connection;
use crate::http::access::{ChannelAccess, GuildAccess};
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::InGuild;
use crate::http::json::Json;
use crate::http::voice;
use crate::permissions::bits;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/guilds/{guild_id}/voice-states/{user_id}",
        web::get().to(get),
    )
    .route(
        "/guilds/{guild_id}/voice-states/{user_id}",
        web::patch().to(modify),
    )
    .route("/guilds/{guild_id}/regions", web::get().to(regions));
}

/// `GET /guilds/{guild_id}/voice-states/{user_id}` (`@me` too): 10065 when not in voice.
pub async fn get(caller: InGuild, path: Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let guild_id = caller.access.guild.id;
    let user_id = target("user_id", &path.1, caller.session.user.id)?;
    let voice_state = caller
        .state
        .voice_state(guild_id, user_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::VoiceState))?;
    Ok(HttpResponse::Ok().json(voice_state))
}

#[derive(Debug, Deserialize)]
pub struct ModifyVoiceState {
    #[serde(deserialize_with = "crate::http::ids::required")]
    channel_id: i64,
    suppress: Option<bool>,
    /// Oneself only; `null` withdraws the request.
    #[serde(default, deserialize_with = "present")]
    request_to_speak_timestamp: Option<Option<DateTime<Utc>>>,
}

/// `PATCH /guilds/{guild_id}/voice-states/{user_id}` (`@me` too), in a stage channel the
/// member is in (10065 otherwise; 50024 for a channel that is not a stage). Anyone may
/// suppress themselves; lifting it needs MUTE_MEMBERS, as does anything done to another
/// member; asking to speak needs REQUEST_TO_SPEAK.
pub async fn modify(
    caller: InGuild,
    path: Path<(String, String)>,
    Json(body): Json<ModifyVoiceState>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = caller.access.guild.id;
    let InGuild { session, conn, .. } = caller;
    let user_id = target("user_id", &path.1, session.user.id)?;
    let mut conn = conn.get().await?;
    let access = ChannelAccess::load(&mut conn, body.channel_id, session.user.id).await?;
    if access.channel.guild_id != Some(guild_id) {
        return Err(ApiError::Unknown(Unknown::Channel));
    }
    if access.channel.kind != kind::GUILD_STAGE_VOICE {
        return Err(ApiError::wrong_channel_type());
    }
    let oneself = user_id == session.user.id;
    if !oneself || body.suppress == Some(false) {
        access.require(bits::MUTE_MEMBERS)?;
    }
    let request_to_speak_timestamp = match body.request_to_speak_timestamp {
        Some(_) if !oneself => return Err(ApiError::MissingPermissions),
        Some(Some(asked)) => {
            access.require(bits::REQUEST_TO_SPEAK)?;
            Some(Some(asked.to_rfc3339()))
        }
        other => other.map(|_| None),
    };
    let moderation = Moderation {
        suppress: body.suppress,
        request_to_speak_timestamp,
        expected_channel: Some(body.channel_id),
        ..Moderation::default()
    };
    match caller
        .state
        .voice_change(guild_id, user_id, VoiceChange::Moderate(moderation))
        .await?
    {
        Ok(_) => Ok(HttpResponse::NoContent().finish()),
        Err(_) => Err(ApiError::Unknown(Unknown::VoiceState)),
    }
}

/// `GET /guilds/{guild_id}/regions`: the voice regions, for members.
pub async fn regions(_member: InGuild) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(voice::regions()))
}

/// 40032, for moving or disconnecting a member who is in no voice channel.
fn not_connected() -> ApiError {
    ApiError::Plain {
        status: StatusCode::BAD_REQUEST,
        code: 40032,
        message: "Target user is not connected to voice.",
    }
}

/// Where `PATCH /members/{id}`'s `channel_id` sends a member, checked before anything is
/// written: MOVE_MEMBERS, and for a move CONNECT in a voice channel of the guild; the member
/// must be in voice (40032). `Some(None)` disconnects.
pub async fn move_target(
    state: &AppState,
    conn: &mut Connection,
    access: &GuildAccess,
    user_id: i64,
    channel_id: Option<i64>,
) -> Result<Option<VoiceChannel>, ApiError> {
    let guild_id = access.guild.id;
    access.require(bits::MOVE_MEMBERS)?;
    let destination = match channel_id {
        Some(channel_id) => {
            let target = ChannelAccess::load(conn, channel_id, access.member.user_id).await?;
            let destination = target
                .channel
                .voice_in(guild_id)
                .ok_or_else(ApiError::wrong_channel_type)?;
            target.require(bits::CONNECT)?;
            Some(destination)
        }
        None => None,
    };
    if state.voice_state(guild_id, user_id).await?.is_none() {
        return Err(not_connected());
    }
    Ok(destination)
}

/// The audit log entry of a move (MEMBER_MOVE, with the channel) or a disconnect
/// (MEMBER_DISCONNECT); like Discord's, with a count and no target.
pub fn move_entry(
    state: &AppState,
    audit: &Audit,
    access: &GuildAccess,
    destination: Option<VoiceChannel>,
) -> Entry {
    let (guild_id, caller) = (access.guild.id, access.member.user_id);
    match destination {
        Some(channel) => audit
            .entry(state, guild_id, caller, action::MEMBER_MOVE, None)
            .options(json!({ "channel_id": channel.channel_id.to_string(), "count": "1" })),
        None => audit
            .entry(state, guild_id, caller, action::MEMBER_DISCONNECT, None)
            .options(json!({ "count": "1" })),
    }
}

/// After a member change committed: their live voice state follows (server mute and deafen,
/// a move or a disconnect). Someone not in voice gets theirs at their next join.
pub async fn member_changed(
    state: &AppState,
    guild_id: i64,
    user_id: i64,
    moderation: Moderation,
) -> Result<(), ApiError> {
    match state
        .voice_change(guild_id, user_id, VoiceChange::Moderate(moderation))
        .await?
    {
        Ok(_) | Err(VoiceError::NotConnected) => {}
        Err(error) => {
            tracing::warn!(%error, guild_id, user_id, "voice state did not follow a member change")
        }
    }
    Ok(())
}
