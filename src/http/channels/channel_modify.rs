//! `PATCH /channels/{channel_id}`: a guild channel's settings (MANAGE_CHANNELS) and its whole
//! set of overwrites (MANAGE_ROLES too), or a group DM's name. CHANNEL_UPDATE to those who can
//! see it.

use actix_web::HttpResponse;
use serde::Deserialize;

use super::{check_channel_name, OverwriteBody};
use crate::audit::{action, changes, Audit};
use crate::db::channels::{kind, Channel, OverwriteRow};
use crate::events::{Change, ChannelChange, Event};
use crate::http::access::{require_grantable, ChannelAccess};
use crate::http::error::ApiError;
use crate::http::extractors::InChannel;
use crate::http::json::Json;
use crate::permissions::bits;
use crate::wire::guild;

#[derive(Debug, Deserialize)]
pub struct ModifyChannel {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    topic: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    position: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    parent_id: Option<Option<i64>>,
    nsfw: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    rate_limit_per_user: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    bitrate: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    user_limit: Option<i64>,
    #[serde(default)]
    permission_overwrites: Option<Vec<OverwriteBody>>,
}

pub async fn modify(
    caller: InChannel<Audit>,
    Json(body): Json<ModifyChannel>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access;
    let (channel_id, user_id) = (access.channel.id, caller.session.user.id);
    let mut conn = caller.conn.get().await?;
    let mut channel = access.channel.clone();
    if access.guild.is_some() {
        access.require(bits::MANAGE_CHANNELS)?;
    } else if channel.kind != kind::GROUP_DM {
        return Err(ApiError::MissingPermissions);
    }
    let overwrites = match (&body.permission_overwrites, &access.guild) {
        (Some(asked), Some(_)) => {
            access.require(bits::MANAGE_ROLES)?;
            let rows = OverwriteBody::rows(asked, channel_id)?;
            require_grantable(access.permissions, &rows)?;
            Some(rows)
        }
        _ => None,
    };
    if let Some(name) = body.name {
        channel.name = Some(check_channel_name(&name, channel.kind)?);
    }
    if let Some(topic) = body.topic {
        if let Some(topic) = &topic {
            crate::http::limits::channel_topic(topic)?;
        }
        channel.topic = topic;
    }
    if let Some(position) = body.position.and_then(|p| i32::try_from(p).ok()) {
        channel.position = position;
    }
    if let Some(parent_id) = body.parent_id {
        if let (Some(parent_id), Some(guild_id)) = (parent_id, channel.guild_id) {
            // A category has no parent.
            let fits = |p: &Channel| {
                p.kind == kind::GUILD_CATEGORY && channel.kind != kind::GUILD_CATEGORY
            };
            let invalid = (
                "parent_id",
                "CHANNEL_PARENT_INVALID",
                "Not a category of this guild.",
            );
            super::require_guild_channel(&mut conn, guild_id, parent_id, fits, invalid).await?;
        }
        channel.parent_id = parent_id;
    }
    channel.nsfw = body.nsfw.unwrap_or(channel.nsfw);
    if let Some(slowmode) = body.rate_limit_per_user {
        channel.rate_limit_per_user = i32::try_from(slowmode.clamp(0, 21_600)).unwrap_or(0);
    }
    if kind::is_voice(channel.kind) {
        channel.bitrate = body
            .bitrate
            .and_then(|b| i32::try_from(b.clamp(8_000, 384_000)).ok())
            .or(channel.bitrate);
        channel.user_limit = body
            .user_limit
            .and_then(|u| i32::try_from(u.clamp(0, 99)).ok())
            .or(channel.user_limit);
    }
    match channel.guild_id {
        Some(guild_id) => {
            let overwrites_now = overwrites.as_deref().unwrap_or(&access.overwrites);
            let body = guild::channel(&channel, overwrites_now);
            let before = guild::channel(&access.channel, &access.overwrites);
            let noise = crate::http::guilds::CHANNEL_NOISE;
            let entry = caller
                .audit
                .entry(
                    &caller.state,
                    guild_id,
                    user_id,
                    action::CHANNEL_UPDATE,
                    Some(channel_id),
                )
                .changes(changes(Some(&before), Some(&body), noise));
            let mut change = Change::audited(&caller.state, entry);
            change.emit(Event::ChannelUpdate(ChannelChange {
                scope: access.scope(),
                overwrites: overwrites
                    .as_ref()
                    .map(|rows| rows.iter().map(OverwriteRow::overwrite).collect()),
                channel: body.clone(),
            }));
            change
                .commit(&mut conn, async |conn| {
                    channel.save(conn).await?;
                    if let Some(rows) = &overwrites {
                        OverwriteRow::replace(conn, channel_id, rows).await?;
                    }
                    Ok(())
                })
                .await?;
            Ok(HttpResponse::Ok().json(body))
        }
        None => {
            channel.save(&mut conn).await?;
            let updated = ChannelAccess { channel, ..access };
            let body = super::body(&mut conn, &updated, user_id).await?;
            caller.state.publish(&Event::ChannelUpdate(ChannelChange {
                scope: updated.scope(),
                overwrites: None,
                channel: body.clone(),
            }));
            Ok(HttpResponse::Ok().json(body))
        }
    }
}
