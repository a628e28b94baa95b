//! `GET/PATCH /guilds/{guild_id}/welcome-screen`: what a newcomer is shown (Fermi asks at
//! every GUILD_CREATE). Reading a disabled one, and every change, needs MANAGE_GUILD; a
//! description holds at most 140 characters, the list at most 5 channels of the guild, each
//! described in at most 50, with an emoji name of at most 32.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::channels::Channel;
use crate::db::guild_welcome_screens::WelcomeScreen;
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::InGuild;
use crate::http::json::Json;
use crate::permissions::bits;

const MAX_DESCRIPTION: usize = 140;
const MAX_CHANNELS: usize = 5;
const MAX_CHANNEL_DESCRIPTION: usize = 50;
/// An emoji's name, as Discord bounds it.
const MAX_EMOJI_NAME: usize = 32;

pub async fn get(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let mut conn = caller.conn.get().await?;
    let screen = WelcomeScreen::of_guild(&mut conn, caller.access.guild.id).await?;
    if !screen.enabled {
        caller.access.require(bits::MANAGE_GUILD)?;
    }
    Ok(HttpResponse::Ok().json(wire(&screen)))
}

/// Discord's welcome screen object, with Spacebar's `enabled` (Fermi reads it).
fn wire(screen: &WelcomeScreen) -> Value {
    json!({
        "enabled": screen.enabled,
        "description": screen.description,
        "welcome_channels": screen.welcome_channels,
    })
}

#[derive(Debug, Deserialize)]
pub struct PatchScreen {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    description: Option<Option<String>>,
    /// `null` empties the list.
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    welcome_channels: Option<Option<Vec<WelcomeChannel>>>,
}

#[derive(Debug, Deserialize)]
pub struct WelcomeChannel {
    #[serde(deserialize_with = "crate::http::ids::required")]
    channel_id: i64,
    description: String,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    emoji_id: Option<i64>,
    emoji_name: Option<String>,
}

pub async fn patch(
    caller: InGuild,
    Json(body): Json<PatchScreen>,
) -> Result<HttpResponse, ApiError> {
    let (access, mut conn) = super::managed(caller).await?;
    let guild_id = access.guild.id;
    let mut screen = WelcomeScreen::of_guild(&mut conn, guild_id).await?;
    let mut errors = FormErrors::default();
    if let Some(description) = body.description {
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
        {
            errors.add(
                "description",
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {MAX_DESCRIPTION} or fewer in length."),
            );
        }
        screen.description = description;
    }
    if let Some(channels) = body.welcome_channels {
        let channels = channels.unwrap_or_default();
        if channels.len() > MAX_CHANNELS {
            errors.add(
                "welcome_channels",
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {MAX_CHANNELS} or fewer in length."),
            );
        }
        let in_guild = Channel::of_guilds(&mut conn, &[guild_id]).await?;
        for (index, channel) in channels.iter().enumerate().take(MAX_CHANNELS) {
            let at = index.to_string();
            if !in_guild.iter().any(|c| c.id == channel.channel_id) {
                errors.add_at(
                    &["welcome_channels", &at, "channel_id"],
                    "CHANNEL_INVALID",
                    "Unknown channel in this guild.",
                );
            }
            let length = channel.description.chars().count();
            if !(1..=MAX_CHANNEL_DESCRIPTION).contains(&length) {
                errors.add_at(
                    &["welcome_channels", &at, "description"],
                    "BASE_TYPE_BAD_LENGTH",
                    format!("Must be between 1 and {MAX_CHANNEL_DESCRIPTION} in length."),
                );
            }
            if channel
                .emoji_name
                .as_ref()
                .is_some_and(|name| name.chars().count() > MAX_EMOJI_NAME)
            {
                errors.add_at(
                    &["welcome_channels", &at, "emoji_name"],
                    "BASE_TYPE_MAX_LENGTH",
                    format!("Must be {MAX_EMOJI_NAME} or fewer in length."),
                );
            }
        }
        screen.welcome_channels = channels
            .iter()
            .map(|c| {
                json!({
                    "channel_id": c.channel_id.to_string(),
                    "description": c.description,
                    "emoji_id": c.emoji_id.map(|id| id.to_string()),
                    "emoji_name": c.emoji_name,
                })
            })
            .collect();
    }
    errors.into_result()?;
    screen.enabled = body.enabled.unwrap_or(screen.enabled);
    screen.save(&mut conn).await?;
    Ok(HttpResponse::Ok().json(wire(&screen)))
}
