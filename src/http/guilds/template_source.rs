//! A template's `serialized_source_guild`: a guild's settings, roles and channels with their
//! ids replaced by small numbers (@everyone is 0), as Discord serialises them; and the
//! [`Blueprint`] of a new guild made from one, with fresh ids.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::guild_create::Blueprint;
use crate::db::channels::{Channel, OverwriteRow};
use crate::db::guilds::Guild;
use crate::db::roles::Role;
use crate::http::error::ApiError;
use crate::permissions::ALL;
use crate::snowflake::Snowflakes;

/// A channel's role overwrites a template keeps (a guild has at most 250 roles; a template
/// founding guilds need not copy that many per channel).
const MAX_OVERWRITES: usize = 100;

#[derive(Debug, Serialize, Deserialize)]
pub struct Source {
    name: String,
    description: Option<String>,
    region: Option<String>,
    verification_level: i32,
    default_message_notifications: i32,
    explicit_content_filter: i32,
    preferred_locale: String,
    afk_timeout: i32,
    roles: Vec<SourceRole>,
    channels: Vec<SourceChannel>,
    afk_channel_id: Option<i64>,
    system_channel_id: Option<i64>,
    system_channel_flags: i64,
    icon_hash: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SourceRole {
    id: i64,
    name: String,
    color: i32,
    hoist: bool,
    mentionable: bool,
    permissions: String,
    unicode_emoji: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SourceChannel {
    id: i64,
    #[serde(rename = "type")]
    kind: i32,
    name: Option<String>,
    position: i32,
    topic: Option<String>,
    bitrate: Option<i32>,
    user_limit: Option<i32>,
    nsfw: bool,
    rate_limit_per_user: i32,
    parent_id: Option<i64>,
    permission_overwrites: Vec<SourceOverwrite>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SourceOverwrite {
    id: i64,
    #[serde(rename = "type")]
    kind: i32,
    allow: String,
    deny: String,
}

impl Source {
    /// The guild as a template keeps it: roles bots manage, and overwrites of single
    /// members, are left out, as Discord leaves them out.
    pub fn of(
        guild: &Guild,
        roles: &[Role],
        channels: &[Channel],
        overwrites: &[OverwriteRow],
    ) -> Self {
        let mut kept: Vec<&Role> = roles
            .iter()
            .filter(|r| r.guild_id == guild.id && !r.managed)
            .collect();
        // @everyone (position 0, the guild's id) first, then upwards.
        kept.sort_by_key(|r| (r.id != guild.id, r.position, r.id));
        let role_numbers: HashMap<i64, i64> =
            kept.iter().zip(0..).map(|(r, n)| (r.id, n)).collect();
        let mut ordered: Vec<&Channel> = channels.iter().collect();
        // Categories first, so that a new guild inserts each parent before its children.
        ordered.sort_by_key(|c| (c.parent_id.is_some(), c.position, c.id));
        let channel_numbers: HashMap<i64, i64> =
            ordered.iter().zip(1..).map(|(c, n)| (c.id, n)).collect();
        let number = |id: Option<i64>| id.and_then(|id| channel_numbers.get(&id).copied());
        Self {
            name: guild.name.clone(),
            description: guild.description.clone(),
            region: None,
            verification_level: guild.verification_level,
            default_message_notifications: guild.default_message_notifications,
            explicit_content_filter: guild.explicit_content_filter,
            preferred_locale: guild.preferred_locale.clone(),
            afk_timeout: guild.afk_timeout,
            roles: kept
                .iter()
                .zip(0..)
                .map(|(r, id)| SourceRole {
                    id,
                    name: r.name.clone(),
                    color: r.color,
                    hoist: r.hoist,
                    mentionable: r.mentionable,
                    permissions: r.permissions.to_string(),
                    unicode_emoji: r.unicode_emoji.clone(),
                })
                .collect(),
            channels: ordered
                .iter()
                .map(|c| SourceChannel {
                    id: channel_numbers.get(&c.id).copied().unwrap_or_default(),
                    kind: c.kind,
                    name: c.name.clone(),
                    position: c.position,
                    topic: c.topic.clone(),
                    bitrate: c.bitrate,
                    user_limit: c.user_limit,
                    nsfw: c.nsfw,
                    rate_limit_per_user: c.rate_limit_per_user,
                    parent_id: number(c.parent_id),
                    permission_overwrites: overwrites
                        .iter()
                        .filter(|o| {
                            o.channel_id == c.id
                                && o.kind == 0
                                && role_numbers.contains_key(&o.target_id)
                        })
                        .take(MAX_OVERWRITES)
                        .filter_map(|o| {
                            Some(SourceOverwrite {
                                id: *role_numbers.get(&o.target_id)?,
                                kind: 0,
                                allow: o.allow.to_string(),
                                deny: o.deny.to_string(),
                            })
                        })
                        .collect(),
                })
                .collect(),
            afk_channel_id: number(guild.afk_channel_id),
            system_channel_id: number(guild.system_channel_id),
            // Guilds keep no system channel flags yet: all of them are on (0), as
            // `wire::guild` says.
            system_channel_flags: 0,
            icon_hash: None,
        }
    }

    /// A new guild named `name`, owned by `owner_id`, laid out as the template says.
    pub fn blueprint(&self, ids: &Snowflakes, name: String, owner_id: i64) -> Blueprint {
        let mut guild = Guild::new(ids.next(), name, owner_id);
        guild.description = self.description.clone();
        guild.verification_level = self.verification_level;
        guild.default_message_notifications = self.default_message_notifications;
        guild.explicit_content_filter = self.explicit_content_filter;
        guild.preferred_locale = self.preferred_locale.clone();
        guild.afk_timeout = self.afk_timeout;
        let mut role_ids = HashMap::new();
        let roles: Vec<Role> = self
            .roles
            .iter()
            .zip(0..)
            .map(|(r, position)| {
                // The first role is @everyone, which shares the guild's id.
                let id = if position == 0 { guild.id } else { ids.next() };
                role_ids.insert(r.id, id);
                let mut role = Role::new(id, guild.id, r.name.clone(), bits(&r.permissions));
                role.position = position;
                role.color = r.color;
                role.hoist = r.hoist;
                role.mentionable = r.mentionable;
                role.unicode_emoji = r.unicode_emoji.clone();
                role
            })
            .collect();
        let channel_ids: HashMap<i64, i64> =
            self.channels.iter().map(|c| (c.id, ids.next())).collect();
        let new_id = |id: Option<i64>| id.and_then(|id| channel_ids.get(&id).copied());
        let mut channels = Vec::new();
        let mut overwrites = Vec::new();
        for source in &self.channels {
            let Some(id) = new_id(Some(source.id)) else {
                continue;
            };
            let mut channel = Channel::new(id, source.kind, Some(guild.id), source.name.clone());
            channel.position = source.position;
            channel.topic = source.topic.clone();
            channel.bitrate = source.bitrate;
            channel.user_limit = source.user_limit;
            channel.nsfw = source.nsfw;
            channel.rate_limit_per_user = source.rate_limit_per_user;
            channel.parent_id = new_id(source.parent_id);
            channels.push(channel);
            overwrites.extend(source.permission_overwrites.iter().filter_map(|o| {
                Some(OverwriteRow {
                    channel_id: id,
                    target_id: *role_ids.get(&o.id)?,
                    kind: 0,
                    allow: bits(&o.allow) as i64,
                    deny: bits(&o.deny) as i64,
                })
            }));
        }
        guild.afk_channel_id = new_id(self.afk_channel_id);
        guild.system_channel_id = new_id(self.system_channel_id);
        Blueprint {
            guild,
            roles,
            channels,
            overwrites,
        }
    }

    pub fn to_json(&self) -> Result<serde_json::Value, ApiError> {
        Ok(serde_json::to_value(self)?)
    }

    /// A stored source (written by [`Source::of`]).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ApiError> {
        Ok(Self::deserialize(value)?)
    }
}

/// A permission bitfield of a template, limited to the bits that exist.
fn bits(text: &str) -> u64 {
    text.parse::<u64>().unwrap_or(0) & ALL
}
