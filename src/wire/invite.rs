//! Invites as clients see them: the invite object (with its metadata) and the INVITE_CREATE /
//! INVITE_DELETE payloads.

use serde_json::{json, Value};

use crate::db::channels::Channel;
use crate::db::guilds::Guild;
use crate::db::invites::Invite;
use crate::db::users::User;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

/// Discord's invite types: this server makes guild invites only.
const GUILD_INVITE: i32 = 0;

/// The part of a guild someone who is not in it yet may see.
fn partial_guild(guild: &Guild) -> Value {
    json!({
        "id": id(guild.id),
        "name": guild.name,
        "icon": guild.icon,
        "splash": guild.splash,
        "banner": guild.banner,
        "description": guild.description,
        "features": guild.features,
        "verification_level": guild.verification_level,
        "vanity_url_code": null,
        "nsfw_level": guild.nsfw_level,
        "nsfw": false,
        "premium_subscription_count": 0,
    })
}

/// The invite object with its metadata (`uses`, `max_uses`, `max_age`, `temporary`,
/// `created_at`).
pub fn invite(invite: &Invite, guild: &Guild, channel: &Channel, inviter: Option<&User>) -> Value {
    let mut value = common(invite, inviter);
    value["guild"] = partial_guild(guild);
    value["channel"] = json!({
        "id": id(channel.id),
        "name": channel.name,
        "type": channel.kind,
    });
    value
}

/// INVITE_CREATE's payload.
pub fn created(invite: &Invite, inviter: Option<&User>) -> Value {
    common(invite, inviter)
}

/// What the invite object and INVITE_CREATE share: both name the channel by `channel_id`, as
/// Spacebar's invites do for clients written against it (the invite object has `channel` too).
fn common(invite: &Invite, inviter: Option<&User>) -> Value {
    let mut value = json!({
        "code": invite.code,
        "type": GUILD_INVITE,
        "guild_id": id(invite.guild_id),
        "channel_id": id(invite.channel_id),
        "uses": invite.uses,
        "max_uses": invite.max_uses,
        "max_age": invite.max_age,
        "temporary": invite.temporary,
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
    });
    if let Some(user) = inviter {
        value["inviter"] = serde_json::to_value(PublicUser::from(user)).unwrap_or_default();
    }
    value
}

/// INVITE_DELETE's payload.
pub fn deleted(invite: &Invite) -> Value {
    json!({
        "code": invite.code,
        "guild_id": id(invite.guild_id),
        "channel_id": id(invite.channel_id),
    })
}
