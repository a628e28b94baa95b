//! What a guild actor knows of its guild: enough to decide who may see each dispatch. Loaded
//! from the database (through [`super::GuildStore`]) and kept current by the changes that come
//! with each published event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::permissions::{self, Member, Overwrite, RoleRank};

#[derive(Debug, Clone, Default)]
pub struct GuildState {
    pub guild_id: i64,
    pub owner_id: i64,
    /// Every role, @everyone (whose id is the guild's) included.
    pub roles: HashMap<i64, RoleRank>,
    /// Members and their role ids.
    pub members: HashMap<i64, Vec<i64>>,
    /// Members with a timeout, and when it ends (Unix milliseconds). Checked against the clock
    /// at each use, so a timeout ends on time with nothing written.
    pub timeouts: HashMap<i64, i64>,
    /// Channels and their overwrites.
    pub channels: HashMap<i64, Vec<Overwrite>>,
    /// Roles shown apart in the member list.
    pub hoisted: HashSet<i64>,
}

/// A change to the guild, applied before the event that comes with it is delivered.
#[derive(Debug, Clone)]
pub enum StateChange {
    /// A member joined or changed: their roles, when their timeout ends (Unix milliseconds),
    /// and their member object (with `user`) for the member list.
    Member {
        user_id: i64,
        roles: Vec<i64>,
        timed_out_until: Option<i64>,
        member: Arc<Value>,
    },
    MemberRemoved {
        user_id: i64,
    },
    Role {
        rank: RoleRank,
        hoist: bool,
    },
    RoleRemoved {
        role_id: i64,
    },
    Channel {
        channel_id: i64,
        overwrites: Vec<Overwrite>,
    },
    ChannelRemoved {
        channel_id: i64,
    },
    Owner {
        user_id: i64,
    },
    /// A user's presence as others see it (`{user, status, activities, client_status}`);
    /// `None` when they went offline.
    Presence {
        user_id: i64,
        presence: Option<Arc<Value>>,
    },
}

impl GuildState {
    pub fn apply(&mut self, change: StateChange) {
        match change {
            StateChange::Member {
                user_id,
                roles,
                timed_out_until,
                ..
            } => {
                self.members.insert(user_id, roles);
                match timed_out_until {
                    Some(until) => self.timeouts.insert(user_id, until),
                    None => self.timeouts.remove(&user_id),
                };
            }
            StateChange::MemberRemoved { user_id } => {
                self.members.remove(&user_id);
                self.timeouts.remove(&user_id);
            }
            StateChange::Role { rank, hoist } => {
                self.roles.insert(rank.id, rank);
                if hoist {
                    self.hoisted.insert(rank.id);
                } else {
                    self.hoisted.remove(&rank.id);
                }
            }
            StateChange::RoleRemoved { role_id } => {
                self.roles.remove(&role_id);
                self.hoisted.remove(&role_id);
                for roles in self.members.values_mut() {
                    roles.retain(|id| *id != role_id);
                }
            }
            StateChange::Channel {
                channel_id,
                overwrites,
            } => {
                self.channels.insert(channel_id, overwrites);
            }
            StateChange::ChannelRemoved { channel_id } => {
                self.channels.remove(&channel_id);
            }
            StateChange::Owner { user_id } => self.owner_id = user_id,
            // The member list's business (see `member_list::Roster`).
            StateChange::Presence { .. } => {}
        }
    }

    /// `user_id` as a member with resolved roles, if they are one; `roles` is scratch space.
    fn member<'a>(&self, user_id: i64, roles: &'a mut Vec<RoleRank>) -> Option<Member<'a>> {
        let role_ids = self.members.get(&user_id)?;
        roles.clear();
        roles.extend(role_ids.iter().filter_map(|id| self.roles.get(id)).copied());
        Some(Member {
            user_id,
            guild_id: self.guild_id,
            owner_id: self.owner_id,
            everyone: self.roles.get(&self.guild_id).map_or(0, |r| r.permissions),
            roles,
            timed_out: self
                .timeouts
                .get(&user_id)
                .is_some_and(|&until| until > now_millis()),
        })
    }

    /// The member's guild-wide permissions (0 for a non-member).
    pub fn base_permissions(&self, user_id: i64) -> u64 {
        let mut roles = Vec::new();
        self.member(user_id, &mut roles).map_or(0, |m| m.base())
    }

    /// The member's permissions in a channel (0 for a non-member or an unknown channel).
    pub fn channel_permissions(&self, user_id: i64, channel_id: i64) -> u64 {
        let Some(overwrites) = self.channels.get(&channel_id) else {
            return 0;
        };
        let mut roles = Vec::new();
        self.member(user_id, &mut roles)
            .map_or(0, |m| m.in_channel(overwrites))
    }

    /// The members allowed `wanted` in a channel, or guild-wide when `channel_id` is `None`.
    pub fn members_with(&self, channel_id: Option<i64>, wanted: u64) -> HashSet<i64> {
        self.members
            .keys()
            .copied()
            .filter(|&user_id| {
                let granted = match channel_id {
                    Some(channel_id) => self.channel_permissions(user_id, channel_id),
                    None => self.base_permissions(user_id),
                };
                permissions::has(granted, wanted)
            })
            .collect()
    }
}

/// The clock, in Unix milliseconds.
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::bits::{READ_MESSAGE_HISTORY, SEND_MESSAGES, VIEW_CHANNEL};

    #[test]
    fn a_timeout_masks_permissions_until_it_ends() {
        let mut state = GuildState {
            guild_id: 1,
            owner_id: 2,
            ..GuildState::default()
        };
        let everyone = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY;
        state.apply(StateChange::Role {
            rank: RoleRank {
                id: 1,
                permissions: everyone,
                position: 0,
            },
            hoist: false,
        });
        state.apply(StateChange::Channel {
            channel_id: 10,
            overwrites: Vec::new(),
        });
        let member = |timed_out_until| StateChange::Member {
            user_id: 3,
            roles: Vec::new(),
            timed_out_until,
            member: Arc::default(),
        };
        state.apply(member(Some(now_millis() + 60_000)));
        assert_eq!(
            state.base_permissions(3),
            VIEW_CHANNEL | READ_MESSAGE_HISTORY
        );
        assert!(!state.members_with(Some(10), SEND_MESSAGES).contains(&3));
        // One that has passed masks nothing, with no change applied.
        state.apply(member(Some(now_millis() - 1)));
        assert_eq!(state.channel_permissions(3, 10), everyone);
        state.apply(member(None));
        assert_eq!(state.base_permissions(3), everyone);
    }
}
