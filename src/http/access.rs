//! Who may do what. Routes load the guild or channel they name together with the caller's
//! membership here, and check Discord's permissions (see `permissions`) before touching
//! anything: a non-member gets 10004/10003, someone who may not see a channel 50001, someone
//! lacking a permission 50013.

use spacebar_actors::permissions::{self, bits, Member as Rank, Overwrite, RoleRank};

use super::error::{ApiError, Unknown};
use crate::db::channels::{kind, Channel, OverwriteRow};
use crate::db::guilds::{Guild, GuildWithMember};
use crate::db::members::Member;
use crate::db::roles::Role;
use crate::db::Connection;
use crate::events::{ChannelScope, Scoped};

/// What recipients of a DM or group DM may do there.
const PRIVATE_CHANNEL: u64 = bits::VIEW_CHANNEL
    | bits::SEND_MESSAGES
    | bits::READ_MESSAGE_HISTORY
    | bits::ADD_REACTIONS
    | bits::EMBED_LINKS
    | bits::ATTACH_FILES
    | bits::USE_EXTERNAL_EMOJIS
    | bits::MENTION_EVERYONE
    | bits::CONNECT
    | bits::SPEAK
    | bits::STREAM
    | bits::USE_VAD;

/// A guild, its roles, and the caller's membership in it.
pub struct GuildAccess {
    pub guild: Guild,
    pub roles: Vec<Role>,
    pub member: Member,
    ranks: Vec<RoleRank>,
}

impl GuildAccess {
    /// The guild `guild_id` as `user_id` sees it; 10004 if it does not exist or they are not in it.
    pub async fn load(
        conn: &mut Connection,
        guild_id: i64,
        user_id: i64,
    ) -> Result<Self, ApiError> {
        Guild::with_member(conn, guild_id, user_id)
            .await?
            .and_then(Self::of)
            .ok_or(ApiError::Unknown(Unknown::Guild))
    }

    /// The access a guild read with the caller's membership gives; `None` for a non-member.
    fn of(found: GuildWithMember) -> Option<Self> {
        let member = found.member?;
        let ranks = ranks(&found.roles, &member.roles);
        Some(Self {
            guild: found.guild,
            roles: found.roles,
            member,
            ranks,
        })
    }

    /// The caller as the permission algorithm sees them (a timeout counts).
    pub fn rank(&self) -> Rank<'_> {
        Rank {
            timed_out: self.member.timed_out(),
            ..self.rank_of(self.member.user_id, &self.ranks)
        }
    }

    /// Another member (with their `ranks`, from [`GuildAccess::ranks_of`]) for hierarchy checks.
    pub fn rank_of<'a>(&self, user_id: i64, ranks: &'a [RoleRank]) -> Rank<'a> {
        Rank {
            user_id,
            guild_id: self.guild.id,
            owner_id: self.guild.owner_id,
            everyone: self
                .roles
                .iter()
                .find(|r| r.id == self.guild.id)
                .map_or(0, |r| r.permissions as u64),
            roles: ranks,
            timed_out: false,
        }
    }

    /// The ranks of the roles with these ids.
    pub fn ranks_of(&self, role_ids: &[i64]) -> Vec<RoleRank> {
        ranks(&self.roles, role_ids)
    }

    pub fn is_owner(&self) -> bool {
        self.guild.owner_id == self.member.user_id
    }

    /// Guild-wide permissions.
    pub fn permissions(&self) -> u64 {
        self.rank().base()
    }

    /// 50013 unless the caller has every bit of `wanted` guild-wide.
    pub fn require(&self, wanted: u64) -> Result<(), ApiError> {
        require(self.permissions(), wanted)
    }

    /// 50013 unless the caller outranks a role at `position` (the owner outranks all).
    pub fn require_above_role(&self, position: i32) -> Result<(), ApiError> {
        if self.rank().outranks_role(position) {
            Ok(())
        } else {
            Err(ApiError::MissingPermissions)
        }
    }

    /// The caller's permissions in one of this guild's channels.
    pub fn in_channel(&self, overwrites: &[OverwriteRow]) -> u64 {
        let overwrites: Vec<Overwrite> = overwrites.iter().map(OverwriteRow::overwrite).collect();
        self.rank().in_channel(&overwrites)
    }

    /// The caller's permissions in the channel `channel_id`, picking its overwrites out of
    /// those of several channels.
    pub fn in_channel_among(&self, channel_id: i64, overwrites: &[OverwriteRow]) -> u64 {
        let own: Vec<Overwrite> = overwrites
            .iter()
            .filter(|o| o.channel_id == channel_id)
            .map(OverwriteRow::overwrite)
            .collect();
        self.rank().in_channel(&own)
    }
}

/// A channel and the caller's permissions in it.
pub struct ChannelAccess {
    pub channel: Channel,
    /// Set for guild channels.
    pub guild: Option<GuildAccess>,
    pub overwrites: Vec<OverwriteRow>,
    /// Recipients, for DMs and group DMs.
    pub recipients: Vec<i64>,
    pub permissions: u64,
}

impl ChannelAccess {
    /// The channel `channel_id` as `user_id` sees it: 10003 if it does not exist (or is in a
    /// guild they are not in), 50001 if they may not see it.
    pub async fn load(
        conn: &mut Connection,
        channel_id: i64,
        user_id: i64,
    ) -> Result<Self, ApiError> {
        let found = Channel::with_access(conn, channel_id, user_id)
            .await?
            .ok_or(ApiError::Unknown(Unknown::Channel))?;
        let channel = found.channel;
        let access = match channel.guild_id {
            Some(_) => {
                // Not being in the guild hides its channels.
                let guild = found
                    .guild
                    .and_then(GuildAccess::of)
                    .ok_or(ApiError::Unknown(Unknown::Channel))?;
                let permissions = guild.in_channel(&found.overwrites);
                Self {
                    channel,
                    guild: Some(guild),
                    overwrites: found.overwrites,
                    recipients: Vec::new(),
                    permissions,
                }
            }
            None => {
                let permissions = if found.recipients.contains(&user_id) {
                    PRIVATE_CHANNEL
                } else {
                    0
                };
                Self {
                    channel,
                    guild: None,
                    overwrites: Vec::new(),
                    recipients: found.recipients,
                    permissions,
                }
            }
        };
        if access.permissions & bits::VIEW_CHANNEL == 0 {
            return Err(ApiError::MissingAccess);
        }
        Ok(access)
    }

    /// 50013 unless the caller has every bit of `wanted` here.
    pub fn require(&self, wanted: u64) -> Result<(), ApiError> {
        require(self.permissions, wanted)
    }

    /// The guild access, or 50003 ("Cannot execute action on a DM channel").
    pub fn guild(&self) -> Result<&GuildAccess, ApiError> {
        self.guild.as_ref().ok_or(ApiError::Plain {
            status: actix_web::http::StatusCode::FORBIDDEN,
            code: 50003,
            message: "Cannot execute action on a DM channel",
        })
    }

    /// Whether the caller is a guild member under a timeout.
    pub fn timed_out(&self) -> bool {
        self.guild.as_ref().is_some_and(|g| g.member.timed_out())
    }

    /// Where this channel's events go (see [`ChannelScope`]).
    pub fn scope(&self) -> ChannelScope {
        ChannelScope {
            guild_id: self.channel.guild_id,
            channel_id: self.channel.id,
            recipients: self.recipients.clone(),
        }
    }

    /// An event of this channel with `data`.
    pub fn scoped(&self, data: serde_json::Value) -> Scoped {
        Scoped {
            scope: self.scope(),
            data,
        }
    }

    pub fn is_text(&self) -> bool {
        !kind::is_voice(self.channel.kind) && self.channel.kind != kind::GUILD_CATEGORY
    }
}

fn ranks(roles: &[Role], role_ids: &[i64]) -> Vec<RoleRank> {
    roles
        .iter()
        .filter(|r| role_ids.contains(&r.id))
        .map(Role::rank)
        .collect()
}

/// 50013 unless the caller holds every bit the `overwrites` allow or deny, `granted` being their
/// permissions where the overwrites apply: nobody hands out, or takes away, what they do not hold.
/// Every way of writing overwrites checks them here (creating a channel, PUT of one overwrite).
pub fn require_grantable(granted: u64, overwrites: &[OverwriteRow]) -> Result<(), ApiError> {
    let asked = overwrites
        .iter()
        .fold(0, |bits, o| bits | o.allow as u64 | o.deny as u64);
    require(granted, asked)
}

fn require(granted: u64, wanted: u64) -> Result<(), ApiError> {
    if permissions::has(granted, wanted) {
        Ok(())
    } else {
        Err(ApiError::MissingPermissions)
    }
}
