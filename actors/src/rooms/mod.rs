//! Rooms: the standalone audio/video rooms service (no Discord accounts), on the same SFU as
//! voice. A participant joins with a room token whose [`Grants`] say what they may do; the
//! signalling protocol is docs/rooms.md.
//!
//! [`Rooms`] (the registry of live rooms, one per node) starts a [`room::LiveRoom`] on a room's
//! first join; the room owns its participants and, through `media`, their publish and
//! subscribe peer connections on the room's media loop (voice's, `crate::voice::media_loop`).
//! [`api`] is what the rooms API sees: the shapes, the messages, and the ports it implements
//! ([`RoomDirectory`], [`RoomObserver`]). [`signal`] is the socket's wire.

pub mod api;
pub mod grants;
mod media;
pub mod registry;
pub mod room;
pub mod signal;

pub use api::{
    CloseRoom, Configure, MuteTrack, Nobody, Occupancy, ParticipantInfo, Participants,
    RemoveParticipant, RoomDirectory, RoomError, RoomEvent, RoomLimits, RoomObserver, RoomPorts,
    RoomSettings, SendData, TrackInfo, TrackKind, UpdateParticipant,
};
pub use grants::{Grants, Source};
pub use registry::{Join, Joining, LiveRooms, Rooms, Seat};
pub use room::{Left, LiveRoom, Signal};
pub use signal::{Code, Request, ToClient};
