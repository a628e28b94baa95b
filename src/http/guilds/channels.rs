//! `/guilds/{guild_id}/channels`: list the channels a member can see, create one
//! (MANAGE_CHANNELS), move several at once (positions and parents).

use actix_web::HttpResponse;
use serde::Deserialize;
use spacebar_actors::permissions::Overwrite;

use crate::audit::{action, changes, Audit};
use crate::db::channels::{kind, Channel, OverwriteRow};
use crate::events::{Change, ChannelChange, ChannelScope, Event};
use crate::http::access::require_grantable;
use crate::http::channels::{check_channel_name, OverwriteBody};
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::InGuild;
use crate::http::json::Json;
use crate::http::limits;
use crate::permissions::bits;
use crate::rights;
use crate::wire::guild;

pub async fn list(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let access = caller.access;
    let mut conn = caller.conn.get().await?;
    let channels = Channel::of_guilds(&mut conn, &[access.guild.id]).await?;
    let ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
    let overwrites = OverwriteRow::of_channels(&mut conn, &ids).await?;
    let visible: Vec<_> = channels
        .iter()
        .filter(|c| access.in_channel_among(c.id, &overwrites) & bits::VIEW_CHANNEL != 0)
        .map(|c| guild::channel(c, &overwrites))
        .collect();
    Ok(HttpResponse::Ok().json(visible))
}

#[derive(Debug, Deserialize)]
pub struct CreateChannel {
    name: String,
    #[serde(
        default,
        rename = "type",
        deserialize_with = "crate::http::ids::optional"
    )]
    kind: Option<i64>,
    topic: Option<String>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    position: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    parent_id: Option<i64>,
    nsfw: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    bitrate: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    user_limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    rate_limit_per_user: Option<i64>,
    #[serde(default)]
    permission_overwrites: Option<Vec<OverwriteBody>>,
}

/// The channel kinds a guild can hold that this server makes.
const CREATABLE: [i32; 5] = [
    kind::GUILD_TEXT,
    kind::GUILD_VOICE,
    kind::GUILD_CATEGORY,
    kind::GUILD_ANNOUNCEMENT,
    kind::GUILD_STAGE_VOICE,
];

pub async fn create(
    caller: InGuild<Audit>,
    Json(body): Json<CreateChannel>,
) -> Result<HttpResponse, ApiError> {
    let access = &caller.access;
    ApiError::require(caller.session.user.rights, rights::CREATE_CHANNELS)?;
    access.require(bits::MANAGE_CHANNELS)?;
    let guild_id = access.guild.id;
    let channel_kind = i32::try_from(body.kind.unwrap_or(0)).unwrap_or(-1);
    if !CREATABLE.contains(&channel_kind) {
        return Err(FormErrors::field(
            "type",
            "BASE_TYPE_CHOICES",
            "Value must be one of 0, 2, 4, 5, 13.",
        )
        .into());
    }
    let name = check_channel_name(&body.name, channel_kind)?;
    if let Some(topic) = &body.topic {
        limits::channel_topic(topic)?;
    }
    let mut conn = caller.conn.get().await?;
    let existing = Channel::of_guilds(&mut conn, &[guild_id]).await?;
    if u64::try_from(existing.len()).unwrap_or(u64::MAX)
        >= caller.state.config().limits.guild_max_channels
    {
        return Err(ApiError::Plain {
            status: actix_web::http::StatusCode::BAD_REQUEST,
            code: 30013,
            message: "Maximum number of guild channels reached",
        });
    }
    if let Some(parent_id) = body.parent_id {
        let parent_ok = existing
            .iter()
            .any(|c| c.id == parent_id && c.kind == kind::GUILD_CATEGORY);
        if !parent_ok || channel_kind == kind::GUILD_CATEGORY {
            return Err(FormErrors::field(
                "parent_id",
                "CHANNEL_PARENT_INVALID",
                "Not a category of this guild.",
            )
            .into());
        }
    }
    let mut channel = Channel::new(
        caller.state.snowflakes.next(),
        channel_kind,
        Some(guild_id),
        Some(name),
    );
    channel.topic = body.topic;
    channel.parent_id = body.parent_id;
    channel.nsfw = body.nsfw.unwrap_or(false);
    channel.position = body
        .position
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or_else(|| existing.iter().map(|c| c.position + 1).max().unwrap_or(0));
    channel.rate_limit_per_user = clamp(body.rate_limit_per_user, 0, 21_600).unwrap_or(0);
    if kind::is_voice(channel_kind) {
        channel.bitrate = clamp(body.bitrate, 8_000, 384_000).or(channel.bitrate);
        channel.user_limit = clamp(body.user_limit, 0, 99).or(channel.user_limit);
    }
    let overwrites = OverwriteBody::rows(
        body.permission_overwrites.as_deref().unwrap_or_default(),
        channel.id,
    )?;
    // The channel is new: what the creator holds guild-wide is what they may hand out in it.
    require_grantable(access.permissions(), &overwrites)?;
    let body = guild::channel(&channel, &overwrites);
    let mut change = Change::audited(
        &caller.state,
        caller
            .audit
            .entry(
                &caller.state,
                guild_id,
                caller.session.user.id,
                action::CHANNEL_CREATE,
                Some(channel.id),
            )
            .changes(changes(None, Some(&body), CHANNEL_NOISE)),
    );
    let mirrored = Some(OverwriteRow::of_channel(&overwrites, channel.id));
    change.emit(Event::ChannelCreate(in_guild(
        &channel,
        mirrored,
        body.clone(),
    )));
    change
        .commit(&mut conn, async |conn| {
            channel.insert(conn).await?;
            Ok(OverwriteRow::replace(conn, channel.id, &overwrites).await?)
        })
        .await?;
    Ok(HttpResponse::Created().json(body))
}

/// What a channel's audit log changes leave out (not settings).
pub const CHANNEL_NOISE: &[&str] = &["last_message_id", "last_pin_timestamp", "rtc_region"];

/// A guild channel's event, with its overwrites for the guild actor when they are new.
fn in_guild(
    channel: &Channel,
    overwrites: Option<Vec<Overwrite>>,
    body: serde_json::Value,
) -> ChannelChange {
    ChannelChange {
        scope: ChannelScope {
            guild_id: channel.guild_id,
            channel_id: channel.id,
            recipients: Vec::new(),
        },
        overwrites,
        channel: body,
    }
}

fn clamp(value: Option<i64>, low: i64, high: i64) -> Option<i32> {
    value.and_then(|v| i32::try_from(v.clamp(low, high)).ok())
}

#[derive(Debug, Deserialize)]
pub struct Move {
    #[serde(deserialize_with = "crate::http::ids::required")]
    id: i64,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    position: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    parent_id: Option<Option<i64>>,
}

/// `PATCH /guilds/{guild_id}/channels`: new positions (and parents) for several channels.
pub async fn reorder(
    caller: InGuild,
    Json(moves): Json<Vec<Move>>,
) -> Result<HttpResponse, ApiError> {
    caller.access.require(bits::MANAGE_CHANNELS)?;
    let mut conn = caller.conn.get().await?;
    let mut channels = Channel::of_guilds(&mut conn, &[caller.access.guild.id]).await?;
    let categories: Vec<i64> = channels
        .iter()
        .filter(|c| c.kind == kind::GUILD_CATEGORY)
        .map(|c| c.id)
        .collect();
    let mut moved = Vec::new();
    for (index, step) in moves.iter().enumerate() {
        let Some(channel) = channels.iter_mut().find(|c| c.id == step.id) else {
            return Err(FormErrors::field(
                &format!("{index}.id"),
                "CHANNEL_INVALID",
                "Unknown channel in this guild.",
            )
            .into());
        };
        if let Some(position) = step.position.and_then(|p| i32::try_from(p).ok()) {
            channel.position = position;
        }
        if let Some(parent) = step.parent_id {
            if parent.is_some_and(|p| !categories.contains(&p))
                || channel.kind == kind::GUILD_CATEGORY && parent.is_some()
            {
                return Err(FormErrors::field(
                    &format!("{index}.parent_id"),
                    "CHANNEL_PARENT_INVALID",
                    "Not a category of this guild.",
                )
                .into());
            }
            channel.parent_id = parent;
        }
        moved.push(channel.clone());
    }
    let ids: Vec<i64> = moved.iter().map(|c| c.id).collect();
    let overwrites = OverwriteRow::of_channels(&mut conn, &ids).await?;
    let mut change = Change::new(&caller.state);
    for channel in &moved {
        let body = guild::channel(channel, &overwrites);
        change.emit(Event::ChannelUpdate(in_guild(channel, None, body)));
    }
    change
        .commit(&mut conn, async |conn| {
            for channel in &moved {
                channel.save(conn).await?;
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
