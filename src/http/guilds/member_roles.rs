//! `PUT/DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}`: give or take one role
//! (MANAGE_ROLES, a role below the caller's highest). 204; GUILD_MEMBER_UPDATE when it changed
//! anything.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;

use diesel_async::AsyncConnection;

use super::members::{audited, find, require_assignable, updated};
use crate::audit::{Audit, Entry};
use crate::db::members::Member;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::http::snowflake;
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
        web::put().to(add),
    )
    .route(
        "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
        web::delete().to(remove),
    );
}

pub async fn add(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    set(state, session.user.id, &audit, &path, true).await
}

pub async fn remove(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    set(state, session.user.id, &audit, &path, false).await
}

async fn set(
    state: Data<AppState>,
    caller: i64,
    audit: &Audit,
    path: &(String, String, String),
    give: bool,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let user_id = snowflake("user_id", &path.1)?;
    let role_id = snowflake("role_id", &path.2)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, caller).await?;
    require_assignable(&access, &[role_id])?;
    let (mut member, user) = find(&mut conn, guild_id, user_id).await?;
    if member.roles.contains(&role_id) == give {
        return Ok(HttpResponse::NoContent().finish());
    }
    let before = member.clone();
    if give {
        member.roles.push(role_id);
    } else {
        member.roles.retain(|r| *r != role_id);
    }
    let entries = audited(&state, audit, &access, &before, &member);
    // One statement each, so two moderators changing roles at once both count.
    let roles = conn
        .transaction(async |conn| {
            let roles = if give {
                Member::add_role(conn, guild_id, user_id, role_id).await?
            } else {
                Member::remove_role(conn, guild_id, user_id, role_id).await?
            };
            if roles.is_some() {
                Entry::write_all(&entries, conn).await?;
            }
            Ok::<_, diesel::result::Error>(roles)
        })
        .await?;
    member.roles = roles.ok_or(ApiError::Unknown(Unknown::Member))?;
    state.audit_logged_all(&entries)?;
    updated(&state, &member, &user)?;
    Ok(HttpResponse::NoContent().finish())
}
