//! `GET /guilds/{guild_id}/invites` (MANAGE_GUILD): every usable invite of the guild, with
//! its metadata.

use actix_web::web;
use actix_web::HttpResponse;

use crate::db::invites::Invite;
use crate::http::error::ApiError;
use crate::http::extractors::InGuild;
use crate::http::invites::describe_all;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/invites", web::get().to(list));
}

pub async fn list(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let (access, mut conn) = super::managed(caller).await?;
    let invites = Invite::of_guild(&mut conn, access.guild.id).await?;
    Ok(HttpResponse::Ok().json(describe_all(&mut conn, &access.guild, &invites).await?))
}
