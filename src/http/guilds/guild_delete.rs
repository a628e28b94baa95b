//! `DELETE /guilds/{guild_id}` (bots) and `POST /guilds/{guild_id}/delete` (clients): only the
//! owner; everything in the guild goes with it. GUILD_DELETE to every member.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use crate::db::guilds::Guild;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::server::AppState;

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    if !access.is_owner() {
        return Err(ApiError::MissingPermissions);
    }
    // The cascade removes roles, channels, members, messages, invites and bans with it.
    Guild::delete(&mut conn, guild_id).await?;
    state.guild_deleted(guild_id)?;
    Ok(HttpResponse::NoContent().finish())
}
