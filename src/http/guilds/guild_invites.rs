//! `GET /guilds/{guild_id}/invites` (MANAGE_GUILD): every usable invite of the guild, with
//! its metadata.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;

use crate::db::invites::Invite;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::invites::describe_all;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/invites", web::get().to(list));
}

pub async fn list(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_GUILD)?;
    let invites = Invite::of_guild(&mut conn, guild_id).await?;
    Ok(HttpResponse::Ok().json(describe_all(&mut conn, &access.guild, &invites).await?))
}
