//! `PUT/DELETE /channels/{channel_id}/permissions/{overwrite_id}` (MANAGE_ROLES): a role's or
//! member's overwrite. Nobody may grant in a channel what they do not have there themselves.
//! CHANNEL_UPDATE to those who can see the channel afterwards.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use spacebar_actors::guild::{Audience, StateChange};
use spacebar_actors::EventName;

use diesel_async::AsyncConnection;
use serde_json::json;

use super::OverwriteBody;
use crate::audit::{action, changes, Audit, Entry};
use crate::db::channels::OverwriteRow;
use crate::http::access::{require_grantable, ChannelAccess};
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
    audit: Audit,
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
    require_grantable(access.permissions, std::slice::from_ref(&row))?;
    let old = access.overwrites.iter().find(|o| o.target_id == target_id);
    let kind = match old {
        Some(_) => action::CHANNEL_OVERWRITE_UPDATE,
        None => action::CHANNEL_OVERWRITE_CREATE,
    };
    let entry = audited(
        &state,
        &audit,
        &access,
        session.user.id,
        kind,
        old,
        Some(&row),
    );
    conn.transaction(async |conn| {
        row.upsert(conn).await?;
        entry.write(conn).await
    })
    .await?;
    state.audit_logged(&entry)?;
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
    audit: Audit,
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
    let old = access.overwrites.iter().find(|o| o.target_id == target_id);
    let kind = action::CHANNEL_OVERWRITE_DELETE;
    let entry = audited(&state, &audit, &access, session.user.id, kind, old, None);
    let deleted = Entry::with_deletion(std::slice::from_ref(&entry), &mut conn, |conn| {
        Box::pin(OverwriteRow::delete(conn, channel_id, target_id))
    })
    .await?;
    if !deleted {
        return Err(ApiError::Unknown(Unknown::Overwrite));
    }
    state.audit_logged(&entry)?;
    let overwrites = access
        .overwrites
        .iter()
        .filter(|o| o.target_id != target_id)
        .copied()
        .collect();
    changed(&state, &access, overwrites)?;
    Ok(HttpResponse::NoContent().finish())
}

/// An overwrite's audit log entry: the channel as target, the overwrite in `options`.
fn audited(
    state: &AppState,
    audit: &Audit,
    access: &ChannelAccess,
    user_id: i64,
    kind: i32,
    old: Option<&OverwriteRow>,
    new: Option<&OverwriteRow>,
) -> Entry {
    let channel = &access.channel;
    let guild_id = channel.guild_id.unwrap_or_default();
    let Some(row) = new.or(old) else {
        return audit.entry(state, guild_id, user_id, kind, Some(channel.id));
    };
    let mut options = json!({ "id": guild::id(row.target_id), "type": row.kind.to_string() });
    let role = access
        .guild
        .as_ref()
        .and_then(|g| g.roles.iter().find(|r| r.id == row.target_id));
    if let Some(role) = role {
        options["role_name"] = role.name.clone().into();
    }
    let (old, new) = (old.map(guild::overwrite), new.map(guild::overwrite));
    // A new overwrite lists its id and type too, as Discord does.
    let skip: &[&str] = if kind == action::CHANNEL_OVERWRITE_UPDATE {
        &["type"]
    } else {
        &[]
    };
    let mut listed = changes(old.as_ref(), new.as_ref(), skip);
    if kind != action::CHANNEL_OVERWRITE_UPDATE {
        let (key, value) = if new.is_some() {
            ("new_value", new.as_ref())
        } else {
            ("old_value", old.as_ref())
        };
        let id = value.and_then(|v| v.get("id")).cloned().unwrap_or_default();
        listed.insert(0, json!({ "key": "id", key: id }));
    }
    audit
        .entry(state, guild_id, user_id, kind, Some(channel.id))
        .changes(listed)
        .options(options)
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
        EventName::ChannelUpdate,
        &body,
        Audience::Channel(channel.id),
        vec![change],
    )
}
