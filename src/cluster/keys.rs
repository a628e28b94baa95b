//! Every Redis key and pub/sub channel the nodes share, named in one place (docs/cluster.md
//! describes what each holds).

use spacebar_actors::interest::Topic;

/// Every node listens here: configuration changes, instance bans.
pub const EVERY_NODE: &str = "all";

/// The pub/sub channel of a guild's or a user's events.
pub fn channel(topic: Topic) -> String {
    match topic {
        Topic::Guild(id) => format!("g:{id}"),
        Topic::User(id) => format!("u:{id}"),
    }
}

/// Whose events a channel carries (none for [`EVERY_NODE`]).
pub fn topic(channel: &str) -> Option<Topic> {
    let (kind, id) = channel.split_once(':')?;
    let id = id.parse().ok()?;
    match kind {
        "g" => Some(Topic::Guild(id)),
        "u" => Some(Topic::User(id)),
        _ => None,
    }
}

/// A user's presence: each node's part of it (what its sessions of theirs show, when that
/// lapses) by node id, and `v`, the number of its last change (see `super::presence`).
pub fn presence(user_id: i64) -> String {
    format!("pres:{user_id}")
}

/// What every user's presence key matches (to SCAN them).
pub fn presence_pattern() -> &'static str {
    "pres:*"
}

/// The user whose presence a key holds.
pub fn presence_user(key: &str) -> Option<i64> {
    key.strip_prefix("pres:")?.parse().ok()
}

/// The counter that numbers a channel's messages (so a listener can tell it missed one).
pub fn sequence(channel: &str) -> String {
    format!("seq:{channel}")
}

/// A rate-limit bucket's counter: `bucket` names the caller, and the route unless it is the
/// caller's global bucket.
pub fn rate_limit(bucket: &str) -> String {
    format!("rl:{bucket}")
}

/// The node registry: a sorted set of node ids scored by their last heartbeat (Unix ms).
pub const NODES: &str = "nodes";

/// A node's registry entry (a hash; it expires when the node stops beating).
pub fn node(node_id: &str) -> String {
    format!("node:{node_id}")
}

/// The lease on snowflake worker number `n`: the id of the node holding it.
pub fn worker(n: u64) -> String {
    format!("worker:{n}")
}

/// The lease on a guild's serialised state (voice states, member lists, Go Live streams):
/// `node_id:epoch` of its owner (see `super::lease`).
pub fn own_guild(guild_id: i64) -> String {
    format!("own:g:{guild_id}")
}

/// The lease on a voice room (`room` names it: a guild's voice channel, a DM call).
pub fn own_room(room: &str) -> String {
    format!("own:v:{room}")
}

/// The lease on a rooms-service room (`/rooms/ws`), by its id.
pub fn own_rooms_room(room: &str) -> String {
    format!("own:r:{room}")
}

/// The lease on a DM or group-DM call (`super::calls`): `node_id:epoch` of its owner.
pub fn own_call(channel_id: i64) -> String {
    format!("own:c:{channel_id}")
}

/// A DM or group-DM call as its owner stored it for the next one (MessagePack).
pub fn call(channel_id: i64) -> String {
    format!("call:{channel_id}")
}

/// The counter that numbers the owners of the object leased at `lease_key` (the fencing
/// token; see `super::lease`).
pub fn epoch(lease_key: &str) -> String {
    format!("epoch:{lease_key}")
}

/// A node's own pub/sub channel: requests to it alone (commands to an owner, handoffs).
pub fn node_channel(node_id: &str) -> String {
    format!("n:{node_id}")
}

/// A gateway session's record: the id of its home node, or empty once its node drained.
pub fn session(session_id: &str) -> String {
    format!("sess:{session_id}")
}

/// A session a drained node left behind: its state and the dispatches it kept (MessagePack).
pub fn session_buffer(session_id: &str) -> String {
    format!("sessbuf:{session_id}")
}

/// A guild's voice states as its owner keeps them: a hash of user id → the state
/// (MessagePack, with the session's node), written only under the owner's lease.
pub fn voice_states(guild_id: i64) -> String {
    format!("voice:{guild_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_names_its_topic() {
        for topic in [Topic::Guild(1 << 60), Topic::User(7)] {
            assert_eq!(super::topic(&channel(topic)), Some(topic));
        }
        assert_eq!(super::topic(EVERY_NODE), None);
        assert_eq!(super::topic("g:x"), None);
    }
}
