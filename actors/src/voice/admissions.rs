//! Who may open a voice connection to which room, and with what mute and deaf flags.
//!
//! Written by the main gateway's voice-state handling, read by the voice gateway. Each admitted
//! (room, user) pair has a `watch` channel of its flags, so a server mute applied over REST
//! reaches the media path without a message per packet: the forwarding task reads the latest
//! value. A dismissal (leaving, moving, being disconnected) sends `None`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use tokio::sync::watch;

/// The room a voice connection belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RoomKey {
    /// A guild voice (or stage) channel.
    Guild { guild_id: i64, channel_id: i64 },
    /// A DM or group DM call.
    Call { channel_id: i64 },
    /// A Go Live stream: `guild:{g}:{c}:{u}` or `call:{c}:{u}`; its only publisher is the streamer.
    Stream { stream_key: String },
}

impl fmt::Display for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Guild {
                guild_id,
                channel_id,
            } => write!(f, "guild:{guild_id}:{channel_id}"),
            Self::Call { channel_id } => write!(f, "call:{channel_id}"),
            Self::Stream { stream_key } => write!(f, "stream:{stream_key}"),
        }
    }
}

/// A participant's mute and deaf state, as the voice state says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// Server mute (MUTE_MEMBERS).
    pub mute: bool,
    /// Server deafen (DEAFEN_MEMBERS).
    pub deaf: bool,
    pub self_mute: bool,
    pub self_deaf: bool,
    /// Suppressed: no SPEAK in the channel, or in a stage channel's audience.
    pub suppress: bool,
}

impl Flags {
    /// Whether this participant's audio is forwarded to the others.
    pub fn forwards_audio(&self) -> bool {
        !(self.mute || self.self_mute || self.suppress)
    }

    /// Whether the others' audio is forwarded to this participant.
    pub fn hears(&self) -> bool {
        !(self.deaf || self.self_deaf)
    }
}

/// What IDENTIFY on the voice gateway gets for a valid token.
#[derive(Debug)]
pub struct Admission {
    pub user_id: i64,
    pub session_id: String,
    pub room: RoomKey,
    /// The latest flags; `None` once the user has left the room.
    pub flags: watch::Receiver<Option<Flags>>,
}

/// One admitted participant.
struct Seat {
    server_id: String,
    session_id: String,
    token: String,
    /// Set once IDENTIFY has used the token: it is good for one connection.
    redeemed: bool,
    flags: watch::Sender<Option<Flags>>,
}

/// The shared table of admissions; cheap to clone.
#[derive(Clone, Default)]
pub struct Admissions {
    seats: Arc<Mutex<HashMap<(RoomKey, i64), Seat>>>,
}

impl Admissions {
    fn seats(&self) -> MutexGuard<'_, HashMap<(RoomKey, i64), Seat>> {
        crate::sync::lock(&self.seats)
    }

    /// Admits `user_id` to `room` (replacing an earlier admission there, whose connection is
    /// told to hang up) and returns the one-time token for VOICE_SERVER_UPDATE.
    /// `server_id` is what the client will send as IDENTIFY's `server_id`: the guild id, the
    /// call's channel id, or the stream's `rtc_server_id`.
    pub fn admit(
        &self,
        server_id: String,
        user_id: i64,
        session_id: String,
        room: RoomKey,
        flags: Flags,
    ) -> String {
        let token = format!("{:032x}", rand::rng().random::<u128>());
        let (sender, _) = watch::channel(Some(flags));
        let seat = Seat {
            server_id,
            session_id,
            token: token.clone(),
            redeemed: false,
            flags: sender,
        };
        if let Some(old) = self.seats().insert((room, user_id), seat) {
            old.flags.send_replace(None);
        }
        token
    }

    /// Updates an admitted participant's flags (self or server mute/deaf).
    pub fn set_flags(&self, room: &RoomKey, user_id: i64, flags: Flags) {
        if let Some(seat) = self.seats().get(&(room.clone(), user_id)) {
            seat.flags.send_if_modified(|current| {
                let changed = *current != Some(flags);
                *current = Some(flags);
                changed
            });
        }
    }

    /// Ends an admission: the user left or moved, or was disconnected by a moderator.
    pub fn dismiss(&self, room: &RoomKey, user_id: i64) {
        if let Some(seat) = self.seats().remove(&(room.clone(), user_id)) {
            seat.flags.send_replace(None);
        }
    }

    /// Redeems a token at the voice gateway's IDENTIFY: the admission whose server, user,
    /// session and token all match and whose token is unused.
    pub fn redeem(
        &self,
        server_id: &str,
        user_id: i64,
        session_id: &str,
        token: &str,
    ) -> Option<Admission> {
        let mut seats = self.seats();
        let ((room, _), seat) = seats.iter_mut().find(|((_, user), seat)| {
            *user == user_id
                && !seat.redeemed
                && seat.server_id == server_id
                && seat.session_id == session_id
                && seat.token == token
        })?;
        seat.redeemed = true;
        Some(Admission {
            user_id,
            session_id: seat.session_id.clone(),
            room: room.clone(),
            flags: seat.flags.subscribe(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomKey {
        RoomKey::Guild {
            guild_id: 1,
            channel_id: 2,
        }
    }

    #[test]
    fn a_token_is_good_for_one_identify_with_matching_details() {
        let admissions = Admissions::default();
        let token = admissions.admit("1".into(), 7, "s".into(), room(), Flags::default());
        assert!(admissions.redeem("1", 7, "other", &token).is_none());
        assert!(admissions.redeem("9", 7, "s", &token).is_none());
        assert!(admissions.redeem("1", 8, "s", &token).is_none());
        let admission = admissions.redeem("1", 7, "s", &token);
        assert_eq!(admission.map(|a| a.room), Some(room()));
        assert!(admissions.redeem("1", 7, "s", &token).is_none());
    }

    #[test]
    fn flags_and_dismissal_reach_the_connection() {
        let admissions = Admissions::default();
        let token = admissions.admit("1".into(), 7, "s".into(), room(), Flags::default());
        let Some(admission) = admissions.redeem("1", 7, "s", &token) else {
            unreachable!("the token was just issued")
        };
        let muted = Flags {
            mute: true,
            ..Flags::default()
        };
        admissions.set_flags(&room(), 7, muted);
        assert_eq!(*admission.flags.borrow(), Some(muted));
        assert!(!muted.forwards_audio());
        admissions.dismiss(&room(), 7);
        assert_eq!(*admission.flags.borrow(), None);
    }
}
