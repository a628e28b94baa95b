//! What travels between nodes: an [`Envelope`] in MessagePack (`rmp-serde`), published once per
//! channel. On the wire a message is two MessagePack values back to back: the channel's
//! sequence number (added by the publishing script, atomically with the publish) and the
//! envelope.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use spacebar_actors::call::{OwnerCall, SeatCall};
use spacebar_actors::guild::voice::{Notice, VoiceChange, VoiceError};
use spacebar_actors::presence::Aggregate;
use spacebar_actors::session::handover::Handover;
use spacebar_actors::voice::SeatChange;
use spacebar_actors::EventName;

use super::placement::Placed;

use crate::events::Event;

/// The envelope format; a node refuses envelopes of another version rather than misreading them.
pub const VERSION: u8 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u8,
    /// The node that published it (which delivered it to its own sessions already).
    pub origin: String,
    pub body: Body,
}

/// What happened.
#[derive(Debug, Serialize, Deserialize)]
pub enum Body {
    /// A dispatch, with the state changes it carries: each node delivers it to its sessions.
    Event(Event),
    /// Logins ended (logout, password change, ban, account deletion): their sessions close.
    LoginsEnded {
        user_id: i64,
        login_id: Option<i64>,
        keep: Option<i64>,
    },
    /// Two users became friends or stopped being friends (whose presence each hears).
    Friendship { users: [i64; 2], friends: bool },
    /// The publisher could not publish some of this channel's messages (its queue was full, or
    /// Redis was away) since `at_ms` (Unix milliseconds): whoever listened before then may
    /// have missed them. `everything`: too many channels to name, sent on the channel every
    /// node hears: every session may have missed something.
    Lost { at_ms: u64, everything: bool },
    /// An operator changed the configuration (`{"section.key": value}`, the keys that apply at
    /// once): every node puts them in effect.
    ConfigChanged {
        changes: serde_json::Map<String, serde_json::Value>,
    },
    /// An address was banned from the instance, or unbanned.
    Banned { ip: IpAddr, banned: bool },
    /// A user's presence over every node changed (or is shown to someone new), numbered
    /// `version`: whoever hears the channel it came on (a guild's members, a friend, the
    /// user's own sessions) hears it, unless they heard a later one.
    Presence {
        user_id: i64,
        presence: Aggregate,
        version: u64,
    },
    /// What others see of a user changed (name, avatar …): the friend whose channel it came on
    /// hears PRESENCE_UPDATE with the new user object.
    UserChanged {
        user_id: i64,
        user: serde_json::Value,
    },
    /// To a session's home node: what the session is (`release: false`), or hand it over
    /// (`release: true`); answered with [`Body::HandoffAnswer`] on `reply_to`'s channel.
    HandoffRequest {
        session_id: String,
        release: bool,
        reply_to: String,
        request_id: u64,
    },
    /// The answer to [`Body::HandoffRequest`] number `request_id` (`None`: not here).
    HandoffAnswer {
        request_id: u64,
        handover: Option<Handover>,
    },
    /// To a node: drain (stop taking connections, hand its sessions over, stop).
    Drain,
    /// On a node's own channel: the sender placed `room` on this node, holding its lease
    /// (`own:v:{room}`, `own:r:{room}`) at `epoch` in this node's name; this node renews it
    /// while the room is in use.
    Host { room: Placed, epoch: u64 },
    /// On a node's own channel: an admission to a room this node serves, or a change to one.
    Seat(SeatChange),
    /// Sent on the owner's node channel (`n:{node}`): a command for the owner of a guild's
    /// serialised state. `epoch`: the lease epoch the asker found; an owner that no longer
    /// holds the lease under it answers [`OwnerAnswer::NotOwner`]. The answer goes to
    /// `asker`'s node channel, numbered `request`.
    OwnerCommand {
        guild_id: i64,
        epoch: u64,
        asker: String,
        request: u64,
        command: OwnerCommand,
    },
    /// Sent on the asker's node channel: the owner's answer to its request `request`.
    OwnerAnswer { request: u64, answer: OwnerAnswer },
    /// Sent on a call owner's node channel: a change for the owner of the DM call of
    /// `channel_id` (`super::calls`), whose lease the sender found at `epoch`. A node that does
    /// not own the call passes it on to the owner it finds (`hops`: how often it was).
    CallCommand {
        channel_id: i64,
        epoch: u64,
        hops: u8,
        command: OwnerCall,
    },
    /// On a recipient's `u:` channel: a call's dispatch (CALL_*, its VOICE_STATE_UPDATE),
    /// from the call's owner.
    CallDispatch {
        event: EventName,
        d: serde_json::Value,
    },
    /// On a participant's node channel: what the call's owner has that node do for the
    /// participant's session there.
    CallSeat(SeatCall),
    /// What a guild's owner decided about its voice states: VOICE_STATE_UPDATEs on `g:{guild}`,
    /// a session's own events (VOICE_SERVER_UPDATE, STREAM_*) on its user's `u:{user}`; each
    /// node delivers them to its sessions there.
    VoiceNotices { guild_id: i64, notices: Vec<Notice> },
}

/// What one node asks of the owner of a guild's serialised state (`super::ownership`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OwnerCommand {
    /// A change to a member's voice state (op 4, a moderator's REST change, Go Live): decided
    /// by the owner's guild actor.
    Voice { user_id: i64, change: VoiceChange },
}

/// The owner's answer to an [`OwnerCommand`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OwnerAnswer {
    /// This node does not own the guild (any more, or under that epoch): ask again.
    NotOwner,
    /// The voice state after an [`OwnerCommand::Voice`], or why it was refused.
    Voice(Result<Option<serde_json::Value>, VoiceError>),
    /// The owner could not carry it out (why, for the log).
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("sequence number: {0}")]
    Sequence(#[from] rmp::decode::NumValueReadError<std::io::Error>),
    #[error("envelope: {0}")]
    Envelope(#[from] rmp_serde::decode::Error),
    #[error("envelope version {0}, this node speaks {VERSION}")]
    Version(u8),
}

impl Envelope {
    pub fn new(origin: &str, body: Body) -> Self {
        Self {
            v: VERSION,
            origin: origin.to_owned(),
            body,
        }
    }

    /// The envelope as published (without the sequence number, which the script puts first).
    /// Structs are written as maps, so optional fields cannot shift.
    pub fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// A message as received: its sequence number and envelope.
    pub fn decode(mut message: &[u8]) -> Result<(u64, Self), DecodeError> {
        let seq: u64 = rmp::decode::read_int(&mut message)?;
        let envelope: Self = rmp_serde::from_slice(message)?;
        if envelope.v != VERSION {
            return Err(DecodeError::Version(envelope.v));
        }
        Ok((seq, envelope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ToUser;

    #[test]
    fn an_envelope_survives_the_trip() {
        let event = Event::InteractionSuccess(ToUser {
            user_id: 7,
            data: serde_json::json!({ "id": "1", "nonce": null, "n": 1.5, "list": [1, "a"] }),
        });
        let bytes = Envelope::new("node-a", Body::Event(event))
            .encode()
            .unwrap();
        // What the publishing script sends: the sequence number, then the envelope.
        let mut message = Vec::new();
        rmp::encode::write_uint(&mut message, 42).unwrap();
        message.extend_from_slice(&bytes);
        let (seq, envelope) = Envelope::decode(&message).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(envelope.origin, "node-a");
        let Body::Event(Event::InteractionSuccess(to)) = envelope.body else {
            panic!("{:?}", envelope.body)
        };
        assert_eq!(to.user_id, 7);
        assert_eq!(to.data["list"][1], "a");
        assert_eq!(to.data["n"], 1.5);
        assert!(to.data["nonce"].is_null());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Envelope::decode(b"").is_err());
        assert!(Envelope::decode(&[0x01, 0xc1, 0xff]).is_err());
    }
}
