//! The guild widget: `GET/PATCH /guilds/{guild_id}/widget` (MANAGE_GUILD) turn it on and
//! name its invite channel; `GET /guilds/{guild_id}/widget.json` needs no login and shows,
//! while it is on, the guild's name and the voice channels anyone may join (403 50004 while
//! it is off). Online members are not listed: no presence leaves the gateway here.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::channels::{kind, Channel, OverwriteRow};
use crate::db::guild_widgets::Widget;
use crate::db::guilds::Guild;
use crate::db::roles::Role;
use crate::http::channels::require_guild_channel;
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{path, Id, InGuild};
use crate::http::json::Json;
use crate::permissions::{bits, Member as Rank};
use crate::state::AppState;
use crate::wire::guild::{id, opt_id};

fn settings(widget: &Widget) -> Value {
    json!({ "enabled": widget.enabled, "channel_id": opt_id(widget.channel_id) })
}

pub async fn get(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let (access, mut conn) = super::managed(caller).await?;
    let widget = Widget::of_guild(&mut conn, access.guild.id).await?;
    Ok(HttpResponse::Ok().json(settings(&widget)))
}

#[derive(Debug, Deserialize)]
pub struct PatchWidget {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    channel_id: Option<Option<i64>>,
}

pub async fn patch(
    caller: InGuild,
    Json(body): Json<PatchWidget>,
) -> Result<HttpResponse, ApiError> {
    let (access, mut conn) = super::managed(caller).await?;
    let guild_id = access.guild.id;
    let mut widget = Widget::of_guild(&mut conn, guild_id).await?;
    if let Some(channel_id) = body.channel_id {
        if let Some(channel_id) = channel_id {
            // The invite goes to a channel one can be in: not a category.
            let fits = |c: &Channel| c.kind != kind::GUILD_CATEGORY;
            let invalid = (
                "channel_id",
                "CHANNEL_INVALID",
                "Unknown channel in this guild.",
            );
            require_guild_channel(&mut conn, guild_id, channel_id, fits, invalid).await?;
        }
        widget.channel_id = channel_id;
    }
    widget.enabled = body.enabled.unwrap_or(widget.enabled);
    widget.save(&mut conn).await?;
    Ok(HttpResponse::Ok().json(settings(&widget)))
}

/// `GET /guilds/{guild_id}/widget.json`, for anyone.
pub async fn public(
    state: Data<AppState>,
    guild_id: Id<path::Guild>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = guild_id.get();
    let mut conn = state.pool.get().await?;
    let guild = Guild::find(&mut conn, guild_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Guild))?;
    if !Widget::of_guild(&mut conn, guild_id).await?.enabled {
        return Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 50004,
            message: "Widget Disabled",
        });
    }
    let everyone = Role::of_guild(&mut conn, guild_id)
        .await?
        .iter()
        .find(|r| r.id == guild_id)
        .map_or(0, |r| r.permissions as u64);
    let nobody = Rank {
        user_id: 0,
        guild_id,
        owner_id: guild.owner_id,
        everyone,
        roles: &[],
        timed_out: false,
    };
    let channels = Channel::of_guilds(&mut conn, &[guild_id]).await?;
    let ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
    let overwrites = OverwriteRow::of_channels(&mut conn, &ids).await?;
    let joinable = bits::VIEW_CHANNEL | bits::CONNECT;
    let listed: Vec<Value> = channels
        .iter()
        .filter(|c| kind::is_voice(c.kind))
        .filter(|c| {
            nobody.in_channel(&OverwriteRow::of_channel(&overwrites, c.id)) & joinable == joinable
        })
        .map(|c| json!({ "id": id(c.id), "name": c.name, "position": c.position }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "id": id(guild.id),
        "name": guild.name,
        "instant_invite": null,
        "channels": listed,
        "members": [],
        "presence_count": 0,
    })))
}
