//! `/guilds/{guild_id}/roles/*`: list, get, create, modify, reorder and delete roles.
//!
//! Everything that changes a role needs MANAGE_ROLES and the hierarchy: nobody touches a role
//! at or above their own highest role (the owner excepted; ADMINISTRATOR does not lift this),
//! nor grants or takes permission bits they lack themselves. A new role starts at position 1,
//! just above @everyone, so its creator can manage it.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use spacebar_actors::guild::{Audience, StateChange};
use spacebar_actors::EventName;

use crate::audit::{action, changes, Audit};
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::Connection;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::Json;
use crate::http::limits;
use crate::http::snowflake;
use crate::permissions::{bits, ALL};
use crate::rights;
use crate::server::AppState;
use crate::storage::{ImageArea, Key};
use crate::wire::guild;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/roles", web::get().to(list))
        .route("/guilds/{guild_id}/roles", web::post().to(create))
        .route("/guilds/{guild_id}/roles", web::patch().to(reorder))
        .route("/guilds/{guild_id}/roles/{role_id}", web::get().to(get))
        .route(
            "/guilds/{guild_id}/roles/{role_id}",
            web::patch().to(modify),
        )
        .route(
            "/guilds/{guild_id}/roles/{role_id}",
            web::delete().to(delete),
        );
}

/// `GET /guilds/{guild_id}/roles`: every role, @everyone included, in position order.
pub async fn list(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    let roles: Vec<_> = access.roles.iter().map(guild::role).collect();
    Ok(HttpResponse::Ok().json(roles))
}

/// `GET /guilds/{guild_id}/roles/{role_id}`.
pub async fn get(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (guild_id, role_id) = ids(&path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    Ok(HttpResponse::Ok().json(guild::role(find(&access, role_id)?)))
}

/// A role's fields as clients send them (create and modify); absent fields stay as they are.
#[derive(Debug, Deserialize)]
pub struct RoleBody {
    name: Option<String>,
    /// A number, a numeric string, or "" (none).
    #[serde(default, deserialize_with = "crate::http::ids::permissions")]
    permissions: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    color: Option<i64>,
    hoist: Option<bool>,
    mentionable: Option<bool>,
    #[serde(default, deserialize_with = "super::members::present")]
    unicode_emoji: Option<Option<String>>,
    /// A data URL, or null to clear.
    #[serde(default, deserialize_with = "super::members::present")]
    icon: Option<Option<String>>,
}

/// `POST /guilds/{guild_id}/roles`: a new role at position 1, the others moved up one.
pub async fn create(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<String>,
    Json(mut body): Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    ApiError::require(session.user.rights, rights::CREATE_ROLES)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_ROLES)?;
    // @everyone does not count against the limit.
    let existing = access.roles.iter().filter(|r| r.id != guild_id).count();
    if u64::try_from(existing).unwrap_or(u64::MAX) >= state.config().limits.guild_max_roles {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30005,
            message: "Maximum number of guild roles reached",
        });
    }
    let mut role = Role::new(state.snowflakes.next(), guild_id, "new role".into(), 0);
    role.position = 1;
    let icon = body.icon.take();
    apply(&access, &mut role, body)?;
    let role_id = role.id;
    let icon_key = |hash: &str| Key::image(ImageArea::RoleIcon, role_id, hash);
    let (icon, mut conn) = state
        .unheld(conn, state.cdn.image_field("icon", icon, icon_key))
        .await?;
    if let Some(Some(hash)) = icon {
        role.icon = Some(hash);
    }
    let created = guild::role(&role);
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::ROLE_CREATE,
            Some(role_id),
        )
        .changes(changes(None, Some(&created), ROLE_NOISE));
    let saved = conn
        .transaction(async |conn| {
            Role::shift_up_from(conn, guild_id, 1).await?;
            role.insert(conn).await?;
            entry.write(conn).await
        })
        .await;
    if saved.is_err() {
        let icon = role.icon.as_deref();
        state.cdn.settle_image(false, None, icon, icon_key).await;
    }
    saved?;
    state.audit_logged(&entry)?;
    event(&state, EventName::GuildRoleCreate, &role)?;
    moved(&state, &mut conn, &access).await?;
    Ok(HttpResponse::Ok().json(guild::role(&role)))
}

/// `PATCH /guilds/{guild_id}/roles/{role_id}`: the role after the change.
pub async fn modify(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
    Json(mut body): Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (guild_id, role_id) = ids(&path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_ROLES)?;
    let mut role = find(&access, role_id)?.clone();
    access.require_above_role(role.position)?;
    let icon = body.icon.take();
    apply(&access, &mut role, body)?;
    let icon_key = |hash: &str| Key::image(ImageArea::RoleIcon, role_id, hash);
    let old_icon = role.icon.clone();
    let (new_icon, mut conn) = state
        .unheld(conn, state.cdn.image_field("icon", icon, icon_key))
        .await?;
    if let Some(new_icon) = &new_icon {
        role.icon.clone_from(new_icon);
    }
    let before = find(&access, role_id).map(guild::role)?;
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::ROLE_UPDATE,
            Some(role_id),
        )
        .changes(changes(
            Some(&before),
            Some(&guild::role(&role)),
            ROLE_NOISE,
        ));
    let saved = conn
        .transaction(async |conn| {
            role.save(conn).await?;
            entry.write(conn).await
        })
        .await;
    if let Some(new_icon) = &new_icon {
        state
            .cdn
            .settle_image(
                saved.is_ok(),
                old_icon.as_deref(),
                new_icon.as_deref(),
                icon_key,
            )
            .await;
    }
    saved?;
    state.audit_logged(&entry)?;
    event(&state, EventName::GuildRoleUpdate, &role)?;
    Ok(HttpResponse::Ok().json(guild::role(&role)))
}

#[derive(Debug, Deserialize)]
pub struct RoleMove {
    #[serde(deserialize_with = "crate::http::ids::required")]
    id: i64,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    position: Option<i64>,
}

/// `PATCH /guilds/{guild_id}/roles` `[{id, position}]`: moves roles, then numbers them all
/// 1, 2, 3 … from the bottom (@everyone stays at 0). Answers every role.
pub async fn reorder(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
    Json(moves): Json<Vec<RoleMove>>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_ROLES)?;
    // (sort key, role): positions doubled, so a moved role lands just above the role already
    // at its new place when it moves up, and just below when it moves down.
    let mut order: Vec<(i64, i64, &Role)> = access
        .roles
        .iter()
        .filter(|r| r.id != guild_id)
        .map(|r| (2 * i64::from(r.position), r.id, r))
        .collect();
    for (index, step) in moves.iter().enumerate() {
        // @everyone is always at the bottom; clients send it along with the rest.
        if step.id == guild_id {
            continue;
        }
        let Some(entry) = order.iter_mut().find(|(_, id, _)| *id == step.id) else {
            return Err(FormErrors::field(
                &format!("{index}.id"),
                "ROLE_INVALID",
                "Unknown role in this guild.",
            )
            .into());
        };
        let Some(position) = step.position else {
            continue;
        };
        let role = entry.2;
        let from = i64::from(role.position);
        if position == from {
            continue;
        }
        // Neither where it is nor where it goes may be at or above the caller's highest role.
        access.require_above_role(role.position)?;
        access.require_above_role(i32::try_from(position).unwrap_or(i32::MAX))?;
        entry.0 = 2 * position + if position > from { 1 } else { -1 };
    }
    order.sort_by_key(|(key, id, _)| (*key, *id));
    let changed: Vec<Role> = order
        .iter()
        .zip(1..)
        .filter(|((_, _, role), position)| role.position != *position)
        .map(|((_, _, role), position)| Role {
            position,
            ..(*role).clone()
        })
        .collect();
    conn.transaction(async |conn| {
        for role in &changed {
            role.save(conn).await?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await?;
    for role in &changed {
        event(&state, EventName::GuildRoleUpdate, role)?;
    }
    let roles: Vec<_> = Role::of_guild(&mut conn, guild_id)
        .await?
        .iter()
        .map(guild::role)
        .collect();
    Ok(HttpResponse::Ok().json(roles))
}

/// `DELETE /guilds/{guild_id}/roles/{role_id}`: 204; every member loses the role with it.
pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (guild_id, role_id) = ids(&path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_ROLES)?;
    let role = find(&access, role_id)?;
    if role.id == guild_id || role.managed {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50028,
            message: "Invalid Role",
        });
    }
    access.require_above_role(role.position)?;
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::ROLE_DELETE,
            Some(role_id),
        )
        .changes(changes(Some(&guild::role(role)), None, ROLE_NOISE));
    conn.transaction(async |conn| {
        Member::remove_role_everywhere(conn, guild_id, role_id).await?;
        Role::delete(conn, role_id).await?;
        entry.write(conn).await
    })
    .await?;
    state.audit_logged(&entry)?;
    if let Some(key) = role
        .icon
        .as_deref()
        .and_then(|hash| Key::image(ImageArea::RoleIcon, role_id, hash))
    {
        state.cdn.remove(&key).await;
    }
    let data = serde_json::json!({
        "guild_id": guild::id(guild_id),
        "role_id": guild::id(role_id),
    });
    state.guild_event(
        guild_id,
        EventName::GuildRoleDelete,
        &data,
        Audience::Guild,
        vec![StateChange::RoleRemoved { role_id }],
    )?;
    Ok(HttpResponse::NoContent().finish())
}

/// What a role's audit log changes leave out (not settings of the role itself).
const ROLE_NOISE: &[&str] = &["position", "managed", "tags"];

fn ids(path: &(String, String)) -> Result<(i64, i64), ApiError> {
    Ok((
        snowflake("guild_id", &path.0)?,
        snowflake("role_id", &path.1)?,
    ))
}

fn find(access: &GuildAccess, role_id: i64) -> Result<&Role, ApiError> {
    access
        .roles
        .iter()
        .find(|r| r.id == role_id)
        .ok_or(ApiError::Unknown(Unknown::Role))
}

/// Writes the body's fields into `role`, refusing permission bits the caller lacks.
fn apply(access: &GuildAccess, role: &mut Role, body: RoleBody) -> Result<(), ApiError> {
    let mut errors = FormErrors::default();
    // @everyone keeps its name.
    if let Some(name) = body.name.filter(|_| role.id != access.guild.id) {
        let name = name.trim();
        match name.chars().count() {
            0 => {}
            1..=100 => role.name = name.to_string(),
            _ => errors.add(
                "name",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ),
        }
    }
    if let Some(color) = body.color {
        match i32::try_from(color) {
            Ok(color) if (0..=0xFF_FFFF).contains(&color) => role.color = color,
            _ => errors.add(
                "color",
                "NUMBER_TYPE_MAX",
                "int value should be between 0 and 16777215.",
            ),
        }
    }
    errors.into_result()?;
    if let Some(permissions) = body.permissions {
        let wanted = permissions as u64 & ALL;
        let changed = wanted ^ role.permissions as u64;
        if changed & !access.permissions() != 0 {
            return Err(ApiError::MissingPermissions);
        }
        role.permissions = wanted as i64;
    }
    role.hoist = body.hoist.unwrap_or(role.hoist);
    role.mentionable = body.mentionable.unwrap_or(role.mentionable);
    if let Some(emoji) = body.unicode_emoji {
        if let Some(emoji) = &emoji {
            // One emoji: a few code points, however many it is joined from.
            limits::chars("unicode_emoji", emoji, 0..=32)?;
        }
        role.unicode_emoji = emoji.filter(|e| !e.is_empty());
    }
    Ok(())
}

/// GUILD_ROLE_CREATE/UPDATE `{guild_id, role}`, keeping the guild actor's roles current.
fn event(state: &AppState, name: EventName, role: &Role) -> Result<(), ApiError> {
    let data =
        serde_json::json!({ "guild_id": guild::id(role.guild_id), "role": guild::role(role) });
    state.guild_event(
        role.guild_id,
        name,
        &data,
        Audience::Guild,
        vec![role.change()],
    )
}

/// GUILD_ROLE_UPDATE for every role whose position changed since `access` was loaded.
async fn moved(
    state: &AppState,
    conn: &mut Connection,
    access: &GuildAccess,
) -> Result<(), ApiError> {
    for role in Role::of_guild(conn, access.guild.id).await? {
        let before = access.roles.iter().find(|r| r.id == role.id);
        if before.is_some_and(|r| r.position != role.position) {
            event(state, EventName::GuildRoleUpdate, &role)?;
        }
    }
    Ok(())
}
