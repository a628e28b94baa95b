//! A guild's emojis and stickers as clients see them.

use serde_json::{json, Value};

use crate::db::emojis::Emoji;
use crate::db::stickers::Sticker;
use crate::db::users::User;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

/// Discord's sticker type for a guild's own stickers.
const GUILD_STICKER: i32 = 2;

pub fn emoji(emoji: &Emoji, creator: Option<&User>) -> Value {
    let mut value = json!({
        "id": id(emoji.id),
        "name": emoji.name,
        "roles": emoji.roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
        "require_colons": true,
        "managed": false,
        "animated": emoji.animated,
        "available": emoji.available,
    });
    if let Some(user) = creator {
        value["user"] = serde_json::to_value(PublicUser::from(user)).unwrap_or_default();
    }
    value
}

pub fn sticker(sticker: &Sticker, creator: Option<&User>) -> Value {
    let mut value = json!({
        "id": id(sticker.id),
        "name": sticker.name,
        "description": sticker.description,
        "tags": sticker.tags,
        "type": GUILD_STICKER,
        "format_type": sticker.format_type,
        "available": sticker.available,
        "guild_id": id(sticker.guild_id),
    });
    if let Some(user) = creator {
        value["user"] = serde_json::to_value(PublicUser::from(user)).unwrap_or_default();
    }
    value
}
