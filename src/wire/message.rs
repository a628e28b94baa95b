//! Messages, reactions and emojis as clients see them.

use serde_json::{json, Value};

use crate::db::messages::Message;
use crate::db::reactions::ReactionCount;
use crate::db::users::User;
use crate::wire::guild::{id, opt_id};
use crate::wire::user::PublicUser;

/// Discord's message object. Routes add what depends on the moment: `guild_id` and `member` in
/// events, `nonce` for the sender, `referenced_message` for replies.
pub fn message(
    message: &Message,
    author: Value,
    mentions: &[&User],
    reactions: &[&ReactionCount],
) -> Value {
    let mut value = json!({
        "id": id(message.id),
        "channel_id": id(message.channel_id),
        "author": author,
        "content": message.content,
        "timestamp": message.created_at,
        "edited_timestamp": message.edited_at,
        "tts": message.tts,
        "mention_everyone": message.mention_everyone,
        "mentions": mentions.iter().map(|u| PublicUser::from(*u)).collect::<Vec<_>>(),
        "mention_roles": message.mention_roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
        "attachments": message.attachments,
        "embeds": message.embeds,
        "components": message.components,
        "pinned": message.pinned,
        "type": message.kind,
        "flags": message.flags,
    });
    if let Some(guild_id) = message.guild_id {
        value["guild_id"] = id(guild_id).into();
    }
    if let Some(webhook_id) = message.webhook_id {
        value["webhook_id"] = id(webhook_id).into();
    }
    if !reactions.is_empty() {
        value["reactions"] = reactions.iter().map(|r| reaction(r)).collect();
    }
    if let Some(metadata) = &message.interaction_metadata {
        // The older `interaction` field, which discord.py and discord.js still read.
        value["interaction"] = json!({
            "id": metadata["id"],
            "type": metadata["type"],
            "name": metadata["name"],
            "user": metadata["user"],
        });
        value["interaction_metadata"] = metadata.clone();
        if let Some(application_id) = metadata.get("application_id") {
            value["application_id"] = application_id.clone();
        }
    }
    if let Some(reference) = &message.message_reference {
        let mut reference = reference.clone();
        if let Some(fields) = reference.as_object_mut() {
            // 0 = a reply (or a pin notice); forwards (1) are not made here.
            fields.entry("type").or_insert(json!(0));
        }
        value["message_reference"] = reference;
    }
    value
}

/// Who wrote a message, as its `author`: the user (`user`, loaded by the caller), or for a
/// webhook's message a bot user made of the webhook's id and the name and avatar it was sent
/// with, as Discord shows it. `None` when the user is gone.
pub fn author(message: &Message, user: Option<&User>) -> Option<Value> {
    match (message.author_id, message.webhook_id, &message.webhook_name) {
        (None, Some(webhook_id), Some(name)) => Some(json!({
            "id": id(webhook_id),
            "username": name,
            "global_name": null,
            "avatar": message.webhook_avatar,
            "discriminator": "0000",
            "public_flags": 0,
            "flags": 0,
            "bot": true,
        })),
        _ => user.map(|user| json!(PublicUser::from(user))),
    }
}

/// A reply's or pin notice's `message_reference` as stored: snowflakes as strings.
pub fn reference(message_id: i64, channel_id: i64, guild_id: Option<i64>) -> Value {
    let mut value = json!({
        "message_id": id(message_id),
        "channel_id": id(channel_id),
    });
    if let Some(guild_id) = guild_id {
        value["guild_id"] = id(guild_id).into();
    }
    value
}

/// The message a reference names, read back from the stored JSON.
pub fn referenced_id(message: &Message) -> Option<i64> {
    message
        .message_reference
        .as_ref()?
        .get("message_id")?
        .as_str()?
        .parse()
        .ok()
}

/// A partial emoji: `{id, name}`, `id` null for unicode emojis.
pub fn emoji(emoji_id: Option<i64>, name: &str) -> Value {
    json!({ "id": opt_id(emoji_id), "name": name })
}

pub fn reaction(reaction: &ReactionCount) -> Value {
    json!({
        "count": reaction.count,
        "count_details": { "burst": 0, "normal": reaction.count },
        "me": reaction.me,
        "me_burst": false,
        "burst_colors": [],
        "burst_count": 0,
        "burst_me": false,
        "emoji": emoji(reaction.emoji_id, &reaction.emoji_name),
    })
}
