//! `DELETE /channels/{channel_id}`: deletes a guild channel (MANAGE_CHANNELS); for a group DM
//! the caller leaves it; a DM is closed for the caller only (it stays, with its history, and
//! opening it again finds the same channel). CHANNEL_DELETE to those who could see it.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use spacebar_actors::guild::{Audience, StateChange};
use spacebar_actors::EventName;

use diesel_async::AsyncConnection;

use crate::audit::{action, changes, Audit};
use crate::db::channels::{kind, Channel};
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::server::AppState;
use crate::wire::guild;

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    let Some(guild_id) = access.channel.guild_id else {
        let body = super::body(&mut conn, &access, session.user.id).await?;
        if access.channel.kind == kind::GROUP_DM {
            super::recipients::remove(&state, &mut conn, &access, session.user.id).await?;
        } else {
            state.user_event(session.user.id, EventName::ChannelDelete, &body)?;
        }
        return Ok(HttpResponse::Ok().json(body));
    };
    access.require(bits::MANAGE_CHANNELS)?;
    let files = crate::db::messages::Message::attachments_in_channel(&mut conn, channel_id).await?;
    let body = guild::channel(&access.channel, &access.overwrites);
    let noise = crate::http::guilds::CHANNEL_NOISE;
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::CHANNEL_DELETE,
            Some(channel_id),
        )
        .changes(changes(Some(&body), None, noise));
    conn.transaction(async |conn| {
        Channel::delete(conn, channel_id).await?;
        entry.write(conn).await
    })
    .await?;
    state.audit_logged(&entry)?;
    super::remove_files(&state, files).await;
    // Delivered to those who could see it, then forgotten.
    state.guild_event(
        guild_id,
        EventName::ChannelDelete,
        &body,
        Audience::Channel(channel_id),
        Vec::new(),
    )?;
    state.guild_changed(guild_id, vec![StateChange::ChannelRemoved { channel_id }]);
    Ok(HttpResponse::Ok().json(body))
}
