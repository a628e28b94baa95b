//! `/guilds/{guild_id}/roles/*`: list, get, create, modify, reorder and delete roles.
//!
//! Everything that changes a role needs MANAGE_ROLES and the hierarchy: nobody touches a role
//! at or above their own highest role (the owner excepted; ADMINISTRATOR does not lift this),
//! nor grants or takes permission bits they lack themselves. A new role starts at position 1,
//! just above @everyone, so its creator can manage it.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::Value;

use crate::audit::{action, changes, Audit, Entry};
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::{Connection, Pooled};
use crate::events::{Change, Event, RoleChange};
use crate::http::access::GuildAccess;
use crate::http::error::{existed, ApiError, FormErrors, Unknown};
use crate::http::extractors::{path, Id, InGuild};
use crate::http::json::Json;
use crate::http::limits;
use crate::permissions::{bits, ALL};
use crate::rights;
use crate::state::AppState;
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
pub async fn list(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let roles: Vec<_> = caller.access.roles.iter().map(guild::role).collect();
    Ok(HttpResponse::Ok().json(roles))
}

/// `GET /guilds/{guild_id}/roles/{role_id}`.
pub async fn get(caller: InGuild, role_id: Id<path::Role>) -> Result<HttpResponse, ApiError> {
    let role = find(&caller.access, role_id.get())?;
    Ok(HttpResponse::Ok().json(guild::role(role)))
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
    caller: InGuild<Audit>,
    Json(mut body): Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let guild_id = access.guild.id;
    ApiError::require(session.user.rights, rights::CREATE_ROLES)?;
    let conn = conn.get().await?;
    access.require(bits::MANAGE_ROLES)?;
    // @everyone does not count against the limit.
    let existing = access.roles.iter().filter(|r| r.id != guild_id).count();
    if u64::try_from(existing).unwrap_or(u64::MAX) >= caller.state.config().limits.guild_max_roles {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30005,
            message: "Maximum number of guild roles reached",
        });
    }
    let mut role = Role::new(
        caller.state.snowflakes.next(),
        guild_id,
        "new role".into(),
        0,
    );
    role.position = 1;
    let icon = body.icon.take();
    apply(&access, &mut role, body)?;
    let icon_key = icon_key(role.id);
    let (icon, mut conn) = store_icon(&caller.state, conn, icon, role.id).await?;
    if let Some(Some(hash)) = icon {
        role.icon = Some(hash);
    }
    let created = guild::role(&role);
    let mut change = Change::new(&caller.state);
    let fields = (None, Some(&created));
    let by = session.user.id;
    change.audit(audited(&caller.state, &caller.audit, by, &role, fields));
    change.emit(Event::GuildRoleCreate(changed(&role)));
    let saved = change
        .commit(&mut conn, async |conn| {
            Role::shift_up_from(conn, guild_id, 1).await?;
            Ok(role.insert(conn).await?)
        })
        .await;
    if saved.is_err() {
        let icon = role.icon.as_deref();
        caller
            .state
            .cdn
            .settle_image(false, None, icon, icon_key)
            .await;
    }
    saved?;
    for event in moved(&mut conn, &access).await? {
        change.emit(event);
    }
    Ok(HttpResponse::Ok().json(created))
}

/// `PATCH /guilds/{guild_id}/roles/{role_id}`: the role after the change.
pub async fn modify(
    caller: InGuild<Audit>,
    role_id: Id<path::Role>,
    Json(mut body): Json<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let role_id = role_id.get();
    let conn = conn.get().await?;
    let mut role = manageable(&access, role_id)?.clone();
    let icon = body.icon.take();
    apply(&access, &mut role, body)?;
    let icon_key = icon_key(role_id);
    let old_icon = role.icon.clone();
    let (new_icon, mut conn) = store_icon(&caller.state, conn, icon, role_id).await?;
    if let Some(new_icon) = &new_icon {
        role.icon.clone_from(new_icon);
    }
    let before = find(&access, role_id).map(guild::role)?;
    let mut change = Change::new(&caller.state);
    let after = guild::role(&role);
    let fields = (Some(&before), Some(&after));
    let by = session.user.id;
    change.audit(audited(&caller.state, &caller.audit, by, &role, fields));
    change.emit(Event::GuildRoleUpdate(changed(&role)));
    let saved = change
        .commit(&mut conn, async |conn| Ok(role.save(conn).await?))
        .await;
    if let Some(new_icon) = &new_icon {
        caller
            .state
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
    Ok(HttpResponse::Ok().json(guild::role(&role)))
}

/// Where a role's icon `hash` is stored.
fn icon_key(role_id: i64) -> impl Fn(&str) -> Option<Key> {
    move |hash| Key::image(ImageArea::RoleIcon, role_id, hash)
}

/// Stores the body's `icon` (a data URL, or null to clear) with no connection held: the icon
/// to set, when the body named one.
async fn store_icon(
    state: &AppState,
    conn: Pooled,
    icon: Option<Option<String>>,
    role_id: i64,
) -> Result<(Option<Option<String>>, Pooled), ApiError> {
    let stored = state.cdn.image_field("icon", icon, icon_key(role_id));
    Ok(state.unheld(conn, stored).await?)
}

/// The audit log entry of `user_id`'s write to `role`, with what changed from `before` to
/// `after`: nothing before, a creation; nothing after, a deletion.
fn audited(
    state: &AppState,
    audit: &Audit,
    user_id: i64,
    role: &Role,
    (before, after): (Option<&Value>, Option<&Value>),
) -> Entry {
    let kind = match (before, after) {
        (None, _) => action::ROLE_CREATE,
        (_, None) => action::ROLE_DELETE,
        _ => action::ROLE_UPDATE,
    };
    let entry = audit.entry(state, role.guild_id, user_id, kind, Some(role.id));
    entry.changes(changes(before, after, ROLE_NOISE))
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
    caller: InGuild,
    Json(moves): Json<Vec<RoleMove>>,
) -> Result<HttpResponse, ApiError> {
    let InGuild { access, conn, .. } = caller;
    let guild_id = access.guild.id;
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
    let renumbered: Vec<Role> = order
        .iter()
        .zip(1..)
        .filter(|((_, _, role), position)| role.position != *position)
        .map(|((_, _, role), position)| Role {
            position,
            ..(*role).clone()
        })
        .collect();
    let mut conn = conn.get().await?;
    let mut change = Change::new(&caller.state);
    for role in &renumbered {
        change.emit(Event::GuildRoleUpdate(changed(role)));
    }
    change
        .commit(&mut conn, async |conn| {
            for role in &renumbered {
                role.save(conn).await?;
            }
            Ok(())
        })
        .await?;
    let roles: Vec<_> = Role::of_guild(&mut conn, guild_id)
        .await?
        .iter()
        .map(guild::role)
        .collect();
    Ok(HttpResponse::Ok().json(roles))
}

/// `DELETE /guilds/{guild_id}/roles/{role_id}`: 204; every member loses the role with it.
pub async fn delete(
    caller: InGuild<Audit>,
    role_id: Id<path::Role>,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let (guild_id, role_id) = (access.guild.id, role_id.get());
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
    let mut change = Change::new(&caller.state);
    let before = guild::role(role);
    let fields = (Some(&before), None);
    let by = session.user.id;
    change.audit(audited(&caller.state, &caller.audit, by, role, fields));
    change.emit(Event::GuildRoleDelete { guild_id, role_id });
    change.remove_files(role.icon.as_deref().and_then(icon_key(role_id)));
    let mut conn = conn.get().await?;
    change
        .commit(&mut conn, async |conn| {
            Member::remove_role_everywhere(conn, guild_id, role_id).await?;
            // Deleted meanwhile by another request: no entry, nothing to tell.
            existed(Role::delete(conn, role_id).await?, Unknown::Role)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What a role's audit log changes leave out (not settings of the role itself).
const ROLE_NOISE: &[&str] = &["position", "managed", "tags"];

fn find(access: &GuildAccess, role_id: i64) -> Result<&Role, ApiError> {
    access
        .roles
        .iter()
        .find(|r| r.id == role_id)
        .ok_or(ApiError::Unknown(Unknown::Role))
}

/// A role the caller may change: MANAGE_ROLES, and below their highest role.
fn manageable(access: &GuildAccess, role_id: i64) -> Result<&Role, ApiError> {
    access.require(bits::MANAGE_ROLES)?;
    let role = find(access, role_id)?;
    access.require_above_role(role.position)?;
    Ok(role)
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

/// A role as GUILD_ROLE_CREATE/UPDATE carry it: its object, and its rank for the guild actor.
pub fn changed(role: &Role) -> RoleChange {
    RoleChange {
        guild_id: role.guild_id,
        rank: role.rank(),
        hoist: role.hoist,
        role: guild::role(role),
    }
}

/// GUILD_ROLE_UPDATE for every role whose position changed since `access` was loaded.
pub async fn moved(conn: &mut Connection, access: &GuildAccess) -> Result<Vec<Event>, ApiError> {
    Ok(Role::of_guild(conn, access.guild.id)
        .await?
        .iter()
        .filter(|role| {
            let before = access.roles.iter().find(|r| r.id == role.id);
            before.is_some_and(|r| r.position != role.position)
        })
        .map(|role| Event::GuildRoleUpdate(changed(role)))
        .collect())
}
