//! `PUT/DELETE /guilds/{guild_id}/members/{user_id}/roles/{role_id}`: give or take one role
//! (MANAGE_ROLES, a role below the caller's highest). 204; GUILD_MEMBER_UPDATE when it changed
//! anything.

use actix_web::http::Method;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::members::{audited, find, require_assignable, updated};
use crate::audit::Audit;
use crate::db::members::Member;
use crate::events::Change;
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{path, Id, InGuild};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
        web::put().to(set),
    )
    .route(
        "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
        web::delete().to(set),
    );
}

/// PUT gives the role, DELETE takes it.
pub async fn set(
    req: HttpRequest,
    caller: InGuild<Audit>,
    user_id: Id<path::User>,
    role_id: Id<path::Role>,
) -> Result<HttpResponse, ApiError> {
    let give = req.method() == Method::PUT;
    let InGuild { access, conn, .. } = caller;
    let (guild_id, user_id, role_id) = (access.guild.id, user_id.get(), role_id.get());
    let mut conn = conn.get().await?;
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
    let mut change = Change::new(&caller.state);
    for entry in audited(&caller.state, &caller.audit, &access, &before, &member) {
        change.audit(entry);
    }
    // One statement each, so two moderators changing roles at once both count.
    member.roles = change
        .commit(&mut conn, async |conn| {
            let roles = if give {
                Member::add_role(conn, guild_id, user_id, role_id).await?
            } else {
                Member::remove_role(conn, guild_id, user_id, role_id).await?
            };
            // No member (they left meanwhile): nothing changed, nothing to record.
            roles.ok_or(ApiError::Unknown(Unknown::Member))
        })
        .await?;
    change.emit(updated(&member, &user));
    Ok(HttpResponse::NoContent().finish())
}
