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

/// The counter that numbers a channel's messages (so a listener can tell it missed one).
pub fn sequence(channel: &str) -> String {
    format!("seq:{channel}")
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
