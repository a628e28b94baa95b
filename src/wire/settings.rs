//! The user-settings object. Clients (Fermi, discord.py) expect every key, so the stored
//! changes are always laid over the complete set of defaults.

use serde_json::{json, Map, Value};

use crate::http::error::{ApiError, FormErrors};
use crate::http::limits;

/// Every setting with its default, as Discord and Spacebar send them.
pub fn defaults() -> Value {
    json!({
        "afk_timeout": 3600,
        "allow_accessibility_detection": true,
        "animate_emoji": true,
        "animate_stickers": 0,
        "contact_sync_enabled": false,
        "convert_emoticons": false,
        "custom_status": null,
        "default_guilds_restricted": false,
        "detect_platform_accounts": false,
        "developer_mode": true,
        "disable_games_tab": true,
        "enable_tts_command": false,
        "explicit_content_filter": 0,
        "friend_discovery_flags": 0,
        "friend_source_flags": { "all": true },
        "gateway_connected": false,
        "gif_auto_play": true,
        "guild_folders": [],
        "guild_positions": [],
        "inline_attachment_media": true,
        "inline_embed_media": true,
        "locale": "en-US",
        "message_display_compact": false,
        "native_phone_integration_enabled": true,
        "render_embeds": true,
        "render_reactions": true,
        "restricted_guilds": [],
        "show_current_game": true,
        "status": "online",
        "stream_notifications_enabled": false,
        "theme": "dark",
        "timezone_offset": 0,
        "view_nsfw_guilds": true
    })
}

/// The complete settings object: the defaults with the user's stored changes laid over them.
pub fn merged(stored: &Value) -> Value {
    let mut settings = defaults();
    if let (Some(all), Some(changes)) = (settings.as_object_mut(), stored.as_object()) {
        for (key, value) in changes {
            all.insert(key.clone(), value.clone());
        }
    }
    settings
}

/// Checks a PATCH body: each key must be a known setting and keep its kind of value (a setting
/// whose default is null takes anything). Returns the stored changes with the patch applied.
pub fn apply_patch(stored: &Value, patch: &Map<String, Value>) -> Result<Value, ApiError> {
    let defaults = defaults();
    let mut errors = FormErrors::default();
    let mut changes = stored.as_object().cloned().unwrap_or_default();
    for (key, value) in patch {
        match defaults.get(key) {
            None => errors.add(key, "BASE_TYPE_INVALID", "Unknown setting."),
            Some(default) if !same_kind(default, value) => {
                errors.add(key, "BASE_TYPE_INVALID", "Wrong type for this setting.")
            }
            Some(_) => {
                changes.insert(key.clone(), value.clone());
            }
        }
    }
    errors.into_result()?;
    check_limits(patch)?;
    Ok(Value::Object(changes))
}

/// Discord's limits on the settings that hold text; and, since the object is stored and sent
/// whole, on the size of any one setting.
fn check_limits(patch: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(Value::String(locale)) = patch.get("locale") {
        limits::locale("locale", locale)?;
    }
    if let Some(status) = patch.get("custom_status") {
        limits::custom_status(status)?;
    }
    for (key, value) in patch {
        if value.to_string().len() > MAX_SETTING_BYTES {
            return Err(FormErrors::field(
                key,
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {MAX_SETTING_BYTES} or fewer in length."),
            )
            .into());
        }
    }
    Ok(())
}

/// The most one setting may take, as JSON: room for a guild_folders list of a few hundred guilds.
const MAX_SETTING_BYTES: usize = 16 * 1024;

fn same_kind(default: &Value, value: &Value) -> bool {
    match default {
        Value::Null => true,
        Value::Bool(_) => value.is_boolean(),
        Value::Number(_) => value.is_number(),
        Value::String(_) => value.is_string(),
        Value::Array(_) => value.is_array(),
        Value::Object(_) => value.is_object(),
    }
}
