//! Guilds, channels, roles and members as clients see them.

use serde_json::{json, Map, Value};

use crate::db::channels::{Channel, OverwriteRow};
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::wire::user::PublicUser;
use spacebar_actors::permissions::bits::VIEW_CHANNEL;
use spacebar_actors::permissions::{Member as Rank, RoleRank};

/// Snowflakes travel as strings.
pub fn id(id: i64) -> String {
    id.to_string()
}

pub fn opt_id(id: Option<i64>) -> Option<String> {
    id.map(|id| id.to_string())
}

pub fn role(role: &Role) -> Value {
    let mut tags = Map::new();
    if let Some(bot_id) = role.bot_id {
        tags.insert("bot_id".into(), id(bot_id).into());
    }
    json!({
        "id": id(role.id),
        "name": role.name,
        "color": role.color,
        "hoist": role.hoist,
        "position": role.position,
        "permissions": role.permissions.to_string(),
        "managed": role.managed,
        "mentionable": role.mentionable,
        "icon": role.icon,
        "unicode_emoji": role.unicode_emoji,
        "flags": 0,
        "tags": tags,
    })
}

pub fn overwrite(row: &OverwriteRow) -> Value {
    json!({
        "id": id(row.target_id),
        "type": row.kind,
        "allow": row.allow.to_string(),
        "deny": row.deny.to_string(),
    })
}

/// A guild channel with its overwrites (`overwrites` may hold other channels' too).
pub fn channel(channel: &Channel, overwrites: &[OverwriteRow]) -> Value {
    let own: Vec<Value> = overwrites
        .iter()
        .filter(|o| o.channel_id == channel.id)
        .map(overwrite)
        .collect();
    let mut value = json!({
        "id": id(channel.id),
        "type": channel.kind,
        "guild_id": opt_id(channel.guild_id),
        "name": channel.name,
        "topic": channel.topic,
        "position": channel.position,
        "parent_id": opt_id(channel.parent_id),
        "nsfw": channel.nsfw,
        "rate_limit_per_user": channel.rate_limit_per_user,
        "permission_overwrites": own,
        "last_message_id": opt_id(channel.last_message_id),
        "last_pin_timestamp": channel.last_pin_timestamp,
        "flags": 0,
    });
    if crate::db::channels::kind::is_voice(channel.kind) {
        value["bitrate"] = channel.bitrate.into();
        value["user_limit"] = channel.user_limit.into();
        value["rtc_region"] = Value::Null;
    }
    value
}

/// A DM or group DM with its recipients (the other users).
pub fn private_channel(channel: &Channel, recipients: &[&User]) -> Value {
    json!({
        "id": id(channel.id),
        "type": channel.kind,
        "name": channel.name,
        "icon": channel.icon,
        "owner_id": opt_id(channel.owner_id),
        "last_message_id": opt_id(channel.last_message_id),
        "recipients": recipients.iter().map(|u| PublicUser::from(*u)).collect::<Vec<_>>(),
        "recipient_ids": recipients.iter().map(|u| id(u.id)).collect::<Vec<_>>(),
        "flags": 0,
    })
}

/// A member; with `user` it carries the user object, as most events do. Fermi reads a
/// top-level `id`, discord.py reads `flags`.
pub fn member(member: &Member, user: Option<&User>) -> Value {
    let mut value = json!({
        "id": id(member.user_id),
        "guild_id": id(member.guild_id),
        "nick": member.nick,
        "avatar": member.avatar,
        "roles": member.roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
        "joined_at": member.joined_at,
        "premium_since": member.premium_since,
        "deaf": member.deaf,
        "mute": member.mute,
        "pending": member.pending,
        "flags": member.flags,
        "communication_disabled_until": member.communication_disabled_until,
    });
    if let Some(user) = user {
        value["user"] = serde_json::to_value(PublicUser::from(user)).unwrap_or_default();
    }
    value
}

/// The guild object's own fields (what CLIENT_STATE_V2 calls `properties`).
pub fn properties(guild: &Guild) -> Value {
    json!({
        "id": id(guild.id),
        "name": guild.name,
        "icon": guild.icon,
        "splash": guild.splash,
        "discovery_splash": null,
        "banner": guild.banner,
        "description": guild.description,
        "owner_id": id(guild.owner_id),
        "afk_channel_id": opt_id(guild.afk_channel_id),
        "afk_timeout": guild.afk_timeout,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": guild.verification_level,
        "default_message_notifications": guild.default_message_notifications,
        "explicit_content_filter": guild.explicit_content_filter,
        "features": guild.features,
        "mfa_level": guild.mfa_level,
        "application_id": null,
        "system_channel_id": opt_id(guild.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": opt_id(guild.rules_channel_id),
        "public_updates_channel_id": null,
        "safety_alerts_channel_id": null,
        "max_presences": null,
        "max_members": 25_000_000,
        "max_video_channel_users": 25,
        "vanity_url_code": null,
        "premium_tier": guild.premium_tier,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": false,
        "preferred_locale": guild.preferred_locale,
        "nsfw_level": guild.nsfw_level,
        "nsfw": false,
    })
}

/// The classic guild object (REST, and GUILD_UPDATE).
pub fn guild(guild: &Guild, roles: &[Role]) -> Value {
    let mut value = properties(guild);
    value["roles"] = roles
        .iter()
        .filter(|r| r.guild_id == guild.id)
        .map(role)
        .collect();
    value["emojis"] = json!([]);
    value["stickers"] = json!([]);
    value
}

/// Everything a session learns about a guild it is in (GUILD_CREATE, READY's `guilds`).
pub struct GuildSnapshot<'a> {
    pub guild: &'a Guild,
    pub roles: &'a [Role],
    /// The channels the member can see, with their overwrites.
    pub channels: Vec<&'a Channel>,
    pub overwrites: &'a [OverwriteRow],
    pub member_count: i64,
    pub me: Option<&'a Member>,
    /// Members to include (GUILD_CREATE for bots), with their users.
    pub members: Vec<Value>,
    /// The presences of those of them who are online.
    pub presences: Vec<Value>,
    pub emojis: Vec<Value>,
    pub stickers: Vec<Value>,
    /// Who is in its voice channels (from the guild's actor, which holds them).
    pub voice_states: Vec<Value>,
}

impl<'a> GuildSnapshot<'a> {
    /// What the member `me` knows of a guild: only the channels they may see.
    pub fn new(
        guild: &'a Guild,
        roles: &'a [Role],
        channels: &'a [Channel],
        overwrites: &'a [OverwriteRow],
        me: Option<&'a Member>,
        member_count: i64,
    ) -> Self {
        let ranks: Vec<RoleRank> = roles
            .iter()
            .filter(|r| r.guild_id == guild.id && me.is_some_and(|m| m.roles.contains(&r.id)))
            .map(Role::rank)
            .collect();
        let everyone = roles
            .iter()
            .find(|r| r.id == guild.id)
            .map_or(0, |r| r.permissions as u64);
        let rank = Rank {
            user_id: me.map_or(0, |m| m.user_id),
            guild_id: guild.id,
            owner_id: guild.owner_id,
            everyone,
            roles: &ranks,
            timed_out: me.is_some_and(Member::timed_out),
        };
        let channels = channels
            .iter()
            .filter(|c| c.guild_id == Some(guild.id))
            .filter(|c| {
                rank.in_channel(&OverwriteRow::of_channel(overwrites, c.id)) & VIEW_CHANNEL != 0
            })
            .collect();
        Self {
            guild,
            roles,
            channels,
            overwrites,
            member_count,
            me,
            members: Vec::new(),
            presences: Vec::new(),
            emojis: Vec::new(),
            stickers: Vec::new(),
            voice_states: Vec::new(),
        }
    }

    fn channels(&self) -> Vec<Value> {
        self.channels
            .iter()
            .map(|c| channel(c, self.overwrites))
            .collect()
    }

    /// The classic shape bots and chorus read.
    pub fn classic(&self, large_threshold: i64) -> Value {
        let mut value = guild(self.guild, self.roles);
        let extra = json!({
            "joined_at": self.me.map(|m| m.joined_at),
            "large": self.member_count > large_threshold,
            "unavailable": false,
            "member_count": self.member_count,
            "voice_states": self.voice_states,
            "members": self.members,
            "channels": self.channels(),
            "threads": [],
            "presences": self.presences,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": true,
            "emojis": self.emojis,
            "stickers": self.stickers,
        });
        merge(&mut value, extra);
        value
    }

    /// The CLIENT_STATE_V2 shape Fermi asks for.
    pub fn client_state_v2(&self, large_threshold: i64) -> Value {
        json!({
            "id": id(self.guild.id),
            "properties": properties(self.guild),
            "channels": self.channels(),
            "threads": [],
            "stickers": self.stickers,
            "emojis": self.emojis,
            "roles": self.roles.iter().filter(|r| r.guild_id == self.guild.id).map(role).collect::<Vec<_>>(),
            "member_count": self.member_count,
            "joined_at": self.me.map(|m| m.joined_at),
            "large": self.member_count > large_threshold,
            "lazy": true,
            "data_mode": "full",
            "version": 0,
            "premium_subscription_count": 0,
            // Fermi finds its own member here in a live GUILD_CREATE.
            "members": self.members,
            "voice_states": self.voice_states,
            "activity_instances": [],
            "guild_scheduled_events": [],
            "stage_instances": [],
        })
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
