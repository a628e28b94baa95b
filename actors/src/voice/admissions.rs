//! Who may open a voice connection to which room, and with what mute and deaf flags.
//!
//! Written by the main gateway's voice-state handling, read by the voice gateway. Each admitted
//! (room, user) pair has a `watch` channel of its flags, so a server mute applied over REST
//! reaches the media path without a message per packet: the forwarding task reads the latest
//! value. A dismissal (leaving, moving, being disconnected) sends `None`.
//!
//! In cluster mode a room may be served by another node than the one whose session joined it
//! (see `docs/cluster.md`, "Voice placement"): each admission to such a room, and each change
//! to it, is also sent to that node ([`Relay`]), whose own table then holds the seat its voice
//! gateway redeems ([`Admissions::apply`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

/// The room a voice connection belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

impl RoomKey {
    /// The room whose node serves this one: a Go Live stream is served beside the voice room
    /// its streamer is in (`guild:{g}:{c}:{u}` → the guild channel, `call:{c}:{u}` → the call).
    pub fn host(&self) -> Self {
        let Self::Stream { stream_key } = self else {
            return self.clone();
        };
        let parts: Vec<&str> = stream_key.split(':').collect();
        let id = |i: usize| parts.get(i).and_then(|p| p.parse::<i64>().ok());
        match (parts.first(), id(1), id(2)) {
            (Some(&"guild"), Some(guild_id), Some(channel_id)) => Self::Guild {
                guild_id,
                channel_id,
            },
            (Some(&"call"), Some(channel_id), _) => Self::Call { channel_id },
            _ => self.clone(),
        }
    }
}

/// A participant's mute and deaf state, as the voice state says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The node that admitted it, when that is another node (cluster mode).
    origin: Option<Arc<str>>,
}

impl Seat {
    fn new(
        server_id: String,
        session_id: String,
        token: String,
        flags: Flags,
        origin: Option<Arc<str>>,
    ) -> Self {
        Self {
            server_id,
            session_id,
            token,
            redeemed: false,
            flags: watch::channel(Some(flags)).0,
            origin,
        }
    }
}

/// An admission, or a change to one, on its way to the node that serves its room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SeatChange {
    Admit {
        server_id: String,
        user_id: i64,
        session_id: String,
        room: RoomKey,
        flags: Flags,
        token: String,
    },
    Flags {
        room: RoomKey,
        user_id: i64,
        flags: Flags,
    },
    Dismiss {
        room: RoomKey,
        user_id: i64,
    },
}

/// Carries [`SeatChange`]s to the node serving their room (cluster mode).
pub trait Relay: Send + Sync {
    fn send(&self, node: &str, change: SeatChange);
}

/// Rooms served by other nodes (cluster mode only).
#[derive(Default)]
struct Elsewhere {
    relay: OnceLock<Arc<dyn Relay>>,
    /// Host room ([`RoomKey::host`]) → the node serving it.
    rooms: Mutex<HashMap<RoomKey, Arc<str>>>,
    /// Woken by every admission, for an IDENTIFY that came before its admission did.
    admitted: Notify,
}

/// The shared table of admissions; cheap to clone.
#[derive(Clone, Default)]
pub struct Admissions {
    seats: Arc<Mutex<HashMap<(RoomKey, i64), Seat>>>,
    elsewhere: Arc<Elsewhere>,
}

impl Admissions {
    fn seats(&self) -> MutexGuard<'_, HashMap<(RoomKey, i64), Seat>> {
        crate::sync::lock(&self.seats)
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomKey, Arc<str>>> {
        crate::sync::lock(&self.elsewhere.rooms)
    }

    /// Cluster mode: admissions to rooms served by other nodes go there through `relay`.
    pub fn relay_through(&self, relay: Arc<dyn Relay>) {
        let _ = self.elsewhere.relay.set(relay);
    }

    /// Where `room` (a host room) is served: by node `node`, or (`None`) here. Admissions to it
    /// from now on follow.
    pub fn served_by(&self, room: &RoomKey, node: Option<Arc<str>>) {
        match node {
            Some(node) => self.rooms().insert(room.clone(), node),
            None => self.rooms().remove(room),
        };
    }

    /// The rooms served by other nodes with someone admitted here, by node; the others are
    /// forgotten.
    pub fn served_elsewhere(&self) -> Vec<(RoomKey, Arc<str>)> {
        let seated: std::collections::HashSet<RoomKey> =
            self.seats().keys().map(|(room, _)| room.host()).collect();
        let mut rooms = self.rooms();
        rooms.retain(|room, _| seated.contains(room));
        rooms
            .iter()
            .map(|(room, node)| (room.clone(), node.clone()))
            .collect()
    }

    /// Whether anyone is admitted to `room` (a host room) or its streams.
    pub fn is_seated(&self, room: &RoomKey) -> bool {
        self.seats().keys().any(|(seat, _)| seat.host() == *room)
    }

    /// Ends every admission made by another node for which `live` is false (that node is
    /// gone, and its sessions with it).
    pub fn dismiss_unless_from(&self, live: impl Fn(&str) -> bool) {
        self.seats().retain(|_, seat| {
            let orphan = seat.origin.as_deref().is_some_and(|origin| !live(origin));
            if orphan {
                seat.flags.send_replace(None);
            }
            !orphan
        });
    }

    /// Ends every admission to `room` (a host room) and its streams: this node no longer
    /// serves it.
    pub fn dismiss_room(&self, room: &RoomKey) {
        self.seats().retain(|(seat_room, _), seat| {
            let inside = seat_room.host() == *room;
            if inside {
                seat.flags.send_replace(None);
            }
            !inside
        });
    }

    /// Sends `change` on to the node serving its room, if that is another node.
    fn relay(&self, room: &RoomKey, change: impl FnOnce() -> SeatChange) {
        let Some(relay) = self.elsewhere.relay.get() else {
            return;
        };
        let node = self.rooms().get(&room.host()).cloned();
        if let Some(node) = node {
            relay.send(&node, change());
        }
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
        self.relay(&room, || SeatChange::Admit {
            server_id: server_id.clone(),
            user_id,
            session_id: session_id.clone(),
            room: room.clone(),
            flags,
            token: token.clone(),
        });
        let seat = Seat::new(server_id, session_id, token.clone(), flags, None);
        self.seat(room, user_id, seat);
        token
    }

    fn seat(&self, room: RoomKey, user_id: i64, seat: Seat) {
        if let Some(old) = self.seats().insert((room, user_id), seat) {
            old.flags.send_replace(None);
        }
        self.elsewhere.admitted.notify_waiters();
    }

    /// Applies a change another node (`origin`) made to an admission to a room served here.
    pub fn apply(&self, origin: &str, change: SeatChange) {
        match change {
            SeatChange::Admit {
                server_id,
                user_id,
                session_id,
                room,
                flags,
                token,
            } => {
                let seat = Seat::new(server_id, session_id, token, flags, Some(origin.into()));
                self.seat(room, user_id, seat);
            }
            SeatChange::Flags {
                room,
                user_id,
                flags,
            } => self.change_flags(&room, user_id, flags),
            SeatChange::Dismiss { room, user_id } => self.unseat(&room, user_id),
        }
    }

    /// Updates an admitted participant's flags (self or server mute/deaf).
    pub fn set_flags(&self, room: &RoomKey, user_id: i64, flags: Flags) {
        self.relay(room, || SeatChange::Flags {
            room: room.clone(),
            user_id,
            flags,
        });
        self.change_flags(room, user_id, flags);
    }

    fn change_flags(&self, room: &RoomKey, user_id: i64, flags: Flags) {
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
        self.relay(room, || SeatChange::Dismiss {
            room: room.clone(),
            user_id,
        });
        self.unseat(room, user_id);
    }

    fn unseat(&self, room: &RoomKey, user_id: i64) {
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

    /// [`Self::redeem`], waiting up to `patience` for the admission to arrive: in cluster mode
    /// the client may be quicker than the admission its node sent here.
    pub async fn redeem_within(
        &self,
        server_id: &str,
        user_id: i64,
        session_id: &str,
        token: &str,
        patience: Duration,
    ) -> Option<Admission> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Listening before looking: an admission between the two still wakes this.
            let admitted = self.elsewhere.admitted.notified();
            tokio::pin!(admitted);
            admitted.as_mut().enable();
            if let Some(admission) = self.redeem(server_id, user_id, session_id, token) {
                return Some(admission);
            }
            tokio::time::timeout_at(deadline, admitted).await.ok()?;
        }
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
    fn a_stream_is_served_beside_its_voice_room() {
        let stream = |key: &str| RoomKey::Stream {
            stream_key: key.into(),
        };
        assert_eq!(stream("guild:1:2:7").host(), room());
        assert_eq!(stream("call:5:7").host(), RoomKey::Call { channel_id: 5 });
        assert_eq!(stream("junk").host(), stream("junk"));
    }

    /// Relays straight into another node's table.
    struct Wire(Admissions);

    impl Relay for Wire {
        fn send(&self, node: &str, change: SeatChange) {
            assert_eq!(node, "b");
            self.0.apply("a", change);
        }
    }

    #[actix::test]
    async fn admissions_to_a_room_served_elsewhere_are_redeemed_there() {
        let (here, there) = (Admissions::default(), Admissions::default());
        here.relay_through(Arc::new(Wire(there.clone())));
        here.served_by(&room(), Some("b".into()));
        let token = here.admit("1".into(), 7, "s".into(), room(), Flags::default());
        let patience = Duration::from_millis(50);
        let admission = there.redeem_within("1", 7, "s", &token, patience).await;
        let Some(admission) = admission else {
            unreachable!("the admission was relayed")
        };
        let muted = Flags {
            mute: true,
            ..Flags::default()
        };
        here.set_flags(&room(), 7, muted);
        assert_eq!(*admission.flags.borrow(), Some(muted));
        assert_eq!(here.served_elsewhere(), vec![(room(), "b".into())]);
        // The admitting node is gone: its admissions end where the room is served.
        there.dismiss_unless_from(|origin| origin != "a");
        assert_eq!(*admission.flags.borrow(), None);
        assert!(!there.is_seated(&room()));
        // Nobody is admitted here any more: the placement is forgotten.
        here.dismiss(&room(), 7);
        assert!(here.served_elsewhere().is_empty());
    }

    #[actix::test]
    async fn an_identify_waits_for_an_admission_on_its_way() {
        let admissions = Admissions::default();
        let token = "0".repeat(32);
        let arriving = admissions.clone();
        let admit = SeatChange::Admit {
            server_id: "1".into(),
            user_id: 7,
            session_id: "s".into(),
            room: room(),
            flags: Flags::default(),
            token: token.clone(),
        };
        actix::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            arriving.apply("a", admit);
        });
        let patience = Duration::from_secs(5);
        let redeemed = admissions
            .redeem_within("1", 7, "s", &token, patience)
            .await;
        assert!(redeemed.is_some());
        let late = admissions
            .redeem_within("1", 7, "s", &token, Duration::ZERO)
            .await;
        assert!(late.is_none(), "a token is good once");
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
