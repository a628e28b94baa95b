//! `PUT/DELETE /channels/{channel_id}/permissions/{overwrite_id}` (MANAGE_ROLES): a role's or
//! member's overwrite. Nobody may grant in a channel what they do not have there themselves.
//! CHANNEL_UPDATE to those who can see the channel afterwards.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use spacebar_actors::guild::{Audience, StateChange};

use super::OverwriteBody;
use crate::db::channels::OverwriteRow;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::http::json::Json;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::server::AppState;
use crate::wire::guild;

pub async fn put(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
    Json(body): Json<OverwriteBody>,
) -> Result<HttpResponse, ApiError> {
    let (channel_id, target_id) = (
        snowflake("channel_id", &path.0)?,
        snowflake("overwrite_id", &path.1)?,
    );
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    access.guild()?;
    access.require(bits::MANAGE_ROLES)?;
    let row = body.row_for(channel_id, target_id)?;
    let granted = access.permissions;
    if (row.allow as u64 | row.deny as u64) & !granted != 0 {
        return Err(ApiError::MissingPermissions);
    }
    row.upsert(&mut conn).await?;
    let mut overwrites: Vec<OverwriteRow> = access
        .overwrites
        .iter()
        .filter(|o| o.target_id != target_id)
        .copied()
        .collect();
    overwrites.push(row);
    changed(&state, &access, overwrites)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (channel_id, target_id) = (
        snowflake("channel_id", &path.0)?,
        snowflake("overwrite_id", &path.1)?,
    );
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    access.guild()?;
    access.require(bits::MANAGE_ROLES)?;
    if !OverwriteRow::delete(&mut conn, channel_id, target_id).await? {
        return Err(ApiError::Unknown(Unknown::Overwrite));
    }
    let overwrites = access
        .overwrites
        .iter()
        .filter(|o| o.target_id != target_id)
        .copied()
        .collect();
    changed(&state, &access, overwrites)?;
    Ok(HttpResponse::NoContent().finish())
}

fn changed(
    state: &AppState,
    access: &ChannelAccess,
    overwrites: Vec<OverwriteRow>,
) -> Result<(), ApiError> {
    let channel = &access.channel;
    let guild_id = channel.guild_id.unwrap_or_default();
    let body = guild::channel(channel, &overwrites);
    let change = StateChange::Channel {
        channel_id: channel.id,
        overwrites: overwrites.iter().map(OverwriteRow::overwrite).collect(),
    };
    state.guild_event(
        guild_id,
        "CHANNEL_UPDATE",
        &body,
        Audience::Channel(channel.id),
        vec![change],
    )
}
