//! The member sidebar of op 14 / op 37 (GUILD_MEMBER_LIST_UPDATE): who can see a channel,
//! grouped by their highest hoisted role while online, then "online", then "offline", each
//! group sorted by display name. A list is kept per watched channel; after every change the new
//! list is compared with the old one and subscribers get the difference as DELETE / INSERT /
//! UPDATE operations, so their copy stays exact without a new snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use super::state::{GuildState, StateChange};
use crate::permissions::bits::VIEW_CHANNEL;

/// Lists with more members than this leave offline members out, as Discord's do.
const OFFLINE_SHOWN_UP_TO: usize = 1000;

/// What the sidebar shows of each member, beyond what permissions need: their member object
/// (with `user`) and, for those not offline, their presence.
#[derive(Debug, Default)]
pub struct Roster {
    pub members: HashMap<i64, Arc<Value>>,
    pub presences: HashMap<i64, Arc<Value>>,
}

impl Roster {
    /// Keeps the roster current with a change to the guild.
    pub fn apply(&mut self, change: &StateChange) {
        match change {
            StateChange::Member {
                user_id, member, ..
            } => {
                self.members.insert(*user_id, member.clone());
            }
            StateChange::MemberRemoved { user_id } => {
                self.members.remove(user_id);
            }
            StateChange::Presence { user_id, presence } => match presence {
                Some(presence) => {
                    self.presences.insert(*user_id, presence.clone());
                }
                None => {
                    self.presences.remove(user_id);
                }
            },
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    Role(i64),
    Online,
    Offline,
}

impl Group {
    fn id(self) -> String {
        match self {
            Self::Role(id) => id.to_string(),
            Self::Online => "online".into(),
            Self::Offline => "offline".into(),
        }
    }
}

/// One row of the sidebar.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Group {
        group: Group,
        count: usize,
    },
    Member {
        user_id: i64,
        member: Arc<Value>,
        presence: Option<Arc<Value>>,
    },
}

/// What identifies a row across two versions of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Group(Group),
    Member(i64),
}

impl Item {
    fn key(&self) -> Key {
        match self {
            Self::Group { group, .. } => Key::Group(*group),
            Self::Member { user_id, .. } => Key::Member(*user_id),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Group { group, count } => {
                json!({ "group": { "id": group.id(), "count": count } })
            }
            Self::Member {
                user_id,
                member,
                presence,
            } => {
                let mut member = Value::clone(member);
                member["presence"] = match presence {
                    Some(presence) => Value::clone(presence),
                    None => json!({
                        "user": { "id": user_id.to_string() },
                        "status": "offline",
                        "activities": [],
                        "client_status": {},
                    }),
                };
                json!({ "member": member })
            }
        }
    }
}

/// One channel's sidebar as its subscribers hold it.
#[derive(Debug, Default, PartialEq)]
pub struct MemberList {
    pub items: Vec<Item>,
    /// Members who can see the channel, and how many of them are online.
    pub member_count: usize,
    pub online_count: usize,
}

/// A change to a list, as GUILD_MEMBER_LIST_UPDATE's `ops` carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Sync { from: usize, to: usize },
    Delete(usize),
    Insert(usize, Item),
    Update(usize, Item),
}

impl MemberList {
    /// The sidebar of `channel_id` as the guild is now.
    pub fn build(state: &GuildState, roster: &Roster, channel_id: i64) -> Self {
        let visible = state.members_with(Some(channel_id), VIEW_CHANNEL);
        let offline_shown = visible.len() <= OFFLINE_SHOWN_UP_TO;
        // Hoisted roles, highest first: the order of their groups.
        let mut hoisted: Vec<(i32, i64)> = state
            .hoisted
            .iter()
            .filter_map(|id| state.roles.get(id))
            .map(|role| (role.position, role.id))
            .collect();
        hoisted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let rank: HashMap<Group, usize> = hoisted
            .iter()
            .map(|(_, id)| Group::Role(*id))
            .chain([Group::Online, Group::Offline])
            .enumerate()
            .map(|(rank, group)| (group, rank))
            .collect();

        let mut rows: Vec<(usize, String, i64, Group)> = Vec::with_capacity(visible.len());
        let mut online_count = 0;
        for &user_id in &visible {
            let Some(member) = roster.members.get(&user_id) else {
                continue;
            };
            let online = roster.presences.contains_key(&user_id);
            let group = if online {
                online_count += 1;
                let roles = state.members.get(&user_id).map_or(&[][..], Vec::as_slice);
                hoisted
                    .iter()
                    .find(|(_, id)| roles.contains(id))
                    .map_or(Group::Online, |(_, id)| Group::Role(*id))
            } else if offline_shown {
                Group::Offline
            } else {
                continue;
            };
            let order = rank.get(&group).copied().unwrap_or(usize::MAX);
            rows.push((order, display_name(member), user_id, group));
        }
        rows.sort();

        let mut items = Vec::with_capacity(rows.len() + rank.len());
        let mut current: Option<(usize, Group)> = None; // index of the group's header
        for (_, _, user_id, group) in rows {
            if current.is_none_or(|(_, g)| g != group) {
                current = Some((items.len(), group));
                items.push(Item::Group { group, count: 0 });
            }
            if let Some((header, _)) = current {
                if let Some(Item::Group { count, .. }) = items.get_mut(header) {
                    *count += 1;
                }
            }
            items.push(Item::Member {
                user_id,
                member: roster.members.get(&user_id).cloned().unwrap_or_default(),
                presence: roster.presences.get(&user_id).cloned(),
            });
        }
        Self {
            items,
            member_count: visible.len(),
            online_count,
        }
    }

    /// The operations that turn `self` into `new`, in the order a client applies them: deletes
    /// (highest index first, on the old list), then inserts (lowest first, at their final
    /// places), then updates of rows that stayed but changed. Rows that keep their relative
    /// order (the longest run of them) stay put; others are deleted and inserted again.
    pub fn diff(&self, new: &MemberList) -> Vec<Op> {
        let old = &self.items;
        let new_index: HashMap<Key, usize> = new
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| (item.key(), index))
            .collect();
        let common: Vec<(usize, usize)> = old
            .iter()
            .enumerate()
            .filter_map(|(index, item)| new_index.get(&item.key()).map(|&to| (index, to)))
            .collect();
        let kept = longest_increasing(&common);
        let kept_new: HashSet<usize> = kept.iter().map(|&(_, to)| to).collect();
        let kept_old: HashSet<usize> = kept.iter().map(|&(from, _)| from).collect();

        let mut ops: Vec<Op> = (0..old.len())
            .rev()
            .filter(|index| !kept_old.contains(index))
            .map(Op::Delete)
            .collect();
        for (index, item) in new.items.iter().enumerate() {
            if !kept_new.contains(&index) {
                ops.push(Op::Insert(index, item.clone()));
            }
        }
        for (from, to) in kept {
            if old.get(from) != new.items.get(to) {
                if let Some(item) = new.items.get(to) {
                    ops.push(Op::Update(to, item.clone()));
                }
            }
        }
        ops
    }

    /// Whether a diff changes nothing the subscribers see (the counts included).
    pub fn same_counts(&self, other: &MemberList) -> bool {
        self.member_count == other.member_count && self.online_count == other.online_count
    }

    /// GUILD_MEMBER_LIST_UPDATE's `d` for list `id` of `guild_id` carrying `ops`.
    pub fn update(&self, guild_id: i64, id: &str, ops: &[Op]) -> Value {
        let groups: Vec<Value> = self
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Group { group, count } => Some(json!({ "id": group.id(), "count": count })),
                Item::Member { .. } => None,
            })
            .collect();
        let ops: Vec<Value> = ops
            .iter()
            .map(|op| match op {
                Op::Sync { from, to } => {
                    let end = (*to + 1).min(self.items.len());
                    let items = self.items.get(*from..end).unwrap_or_default();
                    json!({
                        "op": "SYNC",
                        "range": [from, to],
                        "items": items.iter().map(Item::to_json).collect::<Vec<_>>(),
                    })
                }
                Op::Delete(index) => json!({ "op": "DELETE", "index": index }),
                Op::Insert(index, item) => {
                    json!({ "op": "INSERT", "index": index, "item": item.to_json() })
                }
                Op::Update(index, item) => {
                    json!({ "op": "UPDATE", "index": index, "item": item.to_json() })
                }
            })
            .collect();
        json!({
            "guild_id": guild_id.to_string(),
            "id": id,
            "member_count": self.member_count,
            "online_count": self.online_count,
            "groups": groups,
            "ops": ops,
        })
    }
}

/// The list's id as Discord makes it: "everyone" for a channel whose overwrites say nothing
/// about VIEW_CHANNEL, else a hash of those overwrites, so channels that the same people can
/// see share an id.
pub fn list_id(state: &GuildState, channel_id: i64) -> String {
    let mut lines: Vec<String> = Vec::new();
    for overwrite in state.channels.get(&channel_id).into_iter().flatten() {
        if overwrite.allow & VIEW_CHANNEL != 0 {
            lines.push(format!("allow:{}", overwrite.id));
        }
        if overwrite.deny & VIEW_CHANNEL != 0 {
            lines.push(format!("deny:{}", overwrite.id));
        }
    }
    if lines.is_empty() {
        return "everyone".into();
    }
    lines.sort();
    // FNV-1a: stable across runs and builds (the standard hasher is not).
    let hash = lines.join(",").bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash.to_string()
}

/// The name the sidebar sorts by: the nickname, else the global name, else the username.
fn display_name(member: &Value) -> String {
    fn text(value: Option<&Value>) -> Option<&str> {
        value.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    let user = member.get("user");
    text(member.get("nick"))
        .or_else(|| text(user.and_then(|u| u.get("global_name"))))
        .or_else(|| text(user.and_then(|u| u.get("username"))))
        .unwrap_or("")
        .to_lowercase()
}

/// The longest subsequence of `pairs` (in order) whose second elements increase.
fn longest_increasing(pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    // tails[k]: index into `pairs` of the smallest tail of an increasing run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; pairs.len()];
    for (i, &(_, value)) in pairs.iter().enumerate() {
        let length = tails.partition_point(|&t| pairs.get(t).is_some_and(|p| p.1 < value));
        previous[i] = length.checked_sub(1).and_then(|k| tails.get(k).copied());
        if length == tails.len() {
            tails.push(i);
        } else if let Some(tail) = tails.get_mut(length) {
            *tail = i;
        }
    }
    let mut run = Vec::with_capacity(tails.len());
    let mut at = tails.last().copied();
    while let Some(i) = at {
        if let Some(pair) = pairs.get(i) {
            run.push(*pair);
        }
        at = previous.get(i).copied().flatten();
    }
    run.reverse();
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{Overwrite, OverwriteKind, RoleRank};

    const GUILD: i64 = 100;
    const MODS: i64 = 200;

    fn member(user_id: i64, name: &str) -> Arc<Value> {
        Arc::new(json!({ "user": { "id": user_id.to_string(), "username": name }, "nick": null }))
    }

    fn guild(members: &[(i64, &str, bool, bool)]) -> (GuildState, Roster) {
        let mut state = GuildState {
            guild_id: GUILD,
            owner_id: 1,
            ..GuildState::default()
        };
        for (id, position) in [(GUILD, 0), (MODS, 5)] {
            let permissions = if id == GUILD { VIEW_CHANNEL } else { 0 };
            state.roles.insert(
                id,
                RoleRank {
                    id,
                    permissions,
                    position,
                },
            );
        }
        state.hoisted.insert(MODS);
        state.channels.insert(1, Vec::new());
        let mut roster = Roster::default();
        for &(user_id, name, online, moderator) in members {
            let roles = if moderator { vec![MODS] } else { Vec::new() };
            state.members.insert(user_id, roles);
            roster.members.insert(user_id, member(user_id, name));
            if online {
                roster
                    .presences
                    .insert(user_id, Arc::new(json!({ "status": "online" })));
            }
        }
        (state, roster)
    }

    fn keys(list: &MemberList) -> Vec<String> {
        list.items
            .iter()
            .map(|item| match item {
                Item::Group { group, count } => format!("{}:{count}", group.id()),
                Item::Member { user_id, .. } => user_id.to_string(),
            })
            .collect()
    }

    fn apply(old: &MemberList, ops: &[Op]) -> Vec<Item> {
        let mut items = old.items.clone();
        for op in ops {
            match op {
                Op::Delete(index) => {
                    items.remove(*index);
                }
                Op::Insert(index, item) => items.insert(*index, item.clone()),
                Op::Update(index, item) => items[*index] = item.clone(),
                Op::Sync { .. } => unreachable!(),
            }
        }
        items
    }

    #[test]
    fn members_are_grouped_by_hoisted_role_then_online_then_offline_by_name() {
        let (state, roster) = guild(&[
            (10, "zed", true, false),
            (11, "Amy", true, false),
            (12, "bob", false, false),
            (13, "mod", true, true),
            (14, "offmod", false, true),
        ]);
        let list = MemberList::build(&state, &roster, 1);
        assert_eq!(
            keys(&list),
            [
                "200:1",
                "13",
                "online:2",
                "11",
                "10",
                "offline:2",
                "12",
                "14"
            ]
        );
        assert_eq!((list.member_count, list.online_count), (5, 3));
    }

    #[test]
    fn members_who_cannot_see_the_channel_are_not_listed() {
        let (mut state, roster) = guild(&[(10, "a", true, false), (13, "mod", true, true)]);
        let hidden = Overwrite {
            id: GUILD,
            kind: OverwriteKind::Role,
            allow: 0,
            deny: VIEW_CHANNEL,
        };
        let shown = Overwrite {
            id: MODS,
            kind: OverwriteKind::Role,
            allow: VIEW_CHANNEL,
            deny: 0,
        };
        state.channels.insert(2, vec![hidden, shown]);
        assert_eq!(
            keys(&MemberList::build(&state, &roster, 2)),
            ["200:1", "13"]
        );
        assert_eq!(list_id(&state, 1), "everyone");
        let id = list_id(&state, 2);
        assert_ne!(id, "everyone");
        state.channels.insert(3, vec![shown, hidden]);
        assert_eq!(list_id(&state, 3), id, "the same overwrites, the same list");
    }

    #[test]
    fn a_diff_applied_to_the_old_list_gives_the_new_one() {
        // Every sequence of single changes a guild sees: joins, leaves, presence, roles.
        let people: Vec<(i64, String)> = (10..40).map(|id| (id, format!("user{id:02}"))).collect();
        let mut seed = 7_u64;
        let mut next = move |bound: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % bound
        };
        let (mut state, mut roster) = guild(&[]);
        let mut list = MemberList::build(&state, &roster, 1);
        for _ in 0..500 {
            let (user_id, name) = &people[next(people.len() as u64) as usize];
            let change = match next(4) {
                0 => StateChange::Member {
                    user_id: *user_id,
                    roles: Vec::new(),
                    timed_out_until: None,
                    member: member(*user_id, name),
                },
                1 => StateChange::MemberRemoved { user_id: *user_id },
                2 => StateChange::Presence {
                    user_id: *user_id,
                    presence: (next(2) == 0).then(|| Arc::new(json!({ "status": "idle" }))),
                },
                _ => StateChange::Member {
                    user_id: *user_id,
                    roles: vec![MODS],
                    timed_out_until: None,
                    member: member(*user_id, name),
                },
            };
            roster.apply(&change);
            state.apply(change);
            let new = MemberList::build(&state, &roster, 1);
            let ops = list.diff(&new);
            assert_eq!(apply(&list, &ops), new.items);
            assert!(ops.len() <= 6, "one change moves one member: {ops:?}");
            list = new;
        }
    }

    #[test]
    fn a_member_coming_online_changes_only_what_changed() {
        let (state, mut roster) = guild(&[(10, "a", true, false), (11, "b", false, false)]);
        let old = MemberList::build(&state, &roster, 1);
        roster
            .presences
            .insert(11, Arc::new(json!({ "status": "online" })));
        let new = MemberList::build(&state, &roster, 1);
        let ops = old.diff(&new);
        let names: Vec<String> = ops
            .iter()
            .map(|op| match op {
                Op::Delete(i) => format!("DELETE {i}"),
                Op::Insert(i, _) => format!("INSERT {i}"),
                Op::Update(i, _) => format!("UPDATE {i}"),
                Op::Sync { .. } => "SYNC".into(),
            })
            .collect();
        // online:1, a, offline:1, b  →  online:2, a, b: b stays where it lands.
        assert_eq!(names, ["DELETE 2", "UPDATE 0", "UPDATE 2"]);
    }
}
