//! `PUT/DELETE /channels/{channel_id}/permissions/{overwrite_id}` (MANAGE_ROLES): a role's or
//! member's overwrite. Nobody may grant in a channel what they do not have there themselves.
//! CHANNEL_UPDATE to those who can see the channel afterwards.

use actix_web::HttpResponse;
use serde_json::json;

use super::OverwriteBody;
use crate::audit::{action, changes, Audit, Entry};
use crate::db::channels::OverwriteRow;
use crate::events::{Change, ChannelChange, Event};
use crate::http::access::{require_grantable, ChannelAccess};
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{path, Id, InChannel};
use crate::http::json::Json;
use crate::permissions::bits;
use crate::wire::guild;

pub async fn put(
    caller: InChannel<Audit>,
    target_id: Id<path::Overwrite>,
    Json(body): Json<OverwriteBody>,
) -> Result<HttpResponse, ApiError> {
    let access = managed(&caller)?;
    let target_id = target_id.get();
    let row = body.row_for(access.channel.id, target_id)?;
    require_grantable(access.permissions, std::slice::from_ref(&row))?;
    let old = access.overwrites.iter().find(|o| o.target_id == target_id);
    let kind = match old {
        Some(_) => action::CHANNEL_OVERWRITE_UPDATE,
        None => action::CHANNEL_OVERWRITE_CREATE,
    };
    let entry = audited(&caller, kind, old, Some(&row));
    let mut change = Change::audited(&caller.state, entry);
    change.emit(changed(access, target_id, Some(row)));
    let mut conn = caller.conn.get().await?;
    change
        .commit(&mut conn, async |conn| Ok(row.upsert(conn).await?))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    caller: InChannel<Audit>,
    target_id: Id<path::Overwrite>,
) -> Result<HttpResponse, ApiError> {
    let access = managed(&caller)?;
    let (channel_id, target_id) = (access.channel.id, target_id.get());
    let old = access.overwrites.iter().find(|o| o.target_id == target_id);
    let entry = audited(&caller, action::CHANNEL_OVERWRITE_DELETE, old, None);
    let mut change = Change::audited(&caller.state, entry);
    change.emit(changed(access, target_id, None));
    let mut conn = caller.conn.get().await?;
    // No overwrite, no deletion: the entry and the event go with the rollback.
    change
        .commit(&mut conn, async |conn| {
            match OverwriteRow::delete(conn, channel_id, target_id).await? {
                true => Ok(()),
                false => Err(ApiError::Unknown(Unknown::Overwrite)),
            }
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The guild channel whose overwrites the caller may manage (MANAGE_ROLES).
fn managed(caller: &InChannel<Audit>) -> Result<&ChannelAccess, ApiError> {
    caller.access.guild()?;
    caller.access.require(bits::MANAGE_ROLES)?;
    Ok(&caller.access)
}

/// The caller's audit log entry for an overwrite: the channel as target, the overwrite in
/// `options`.
fn audited(
    caller: &InChannel<Audit>,
    kind: i32,
    old: Option<&OverwriteRow>,
    new: Option<&OverwriteRow>,
) -> Entry {
    let (state, audit, access) = (&caller.state, &caller.audit, &caller.access);
    let user_id = caller.session.user.id;
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

/// CHANNEL_UPDATE of the channel with the overwrite for `target_id` now `row`, or gone.
fn changed(access: &ChannelAccess, target_id: i64, row: Option<OverwriteRow>) -> Event {
    let overwrites: Vec<OverwriteRow> = access
        .overwrites
        .iter()
        .filter(|o| o.target_id != target_id)
        .copied()
        .chain(row)
        .collect();
    Event::ChannelUpdate(ChannelChange {
        scope: access.scope(),
        overwrites: Some(overwrites.iter().map(OverwriteRow::overwrite).collect()),
        channel: guild::channel(&access.channel, &overwrites),
    })
}
