//! Voice and video.
//!
//! Two halves meet here. The signalling half lives in the main gateway: op 4 puts a user's
//! voice state in a room (a guild voice channel, a DM or group call, a Go Live stream), and
//! answers with VOICE_SERVER_UPDATE carrying a one-time token. The media half is the voice
//! gateway and the SFU (room and transport actors): its IDENTIFY redeems that token.
//!
//! [`Admissions`] is the only thing the two halves share: the signalling half admits, updates
//! mute/deaf flags and dismisses; the media half redeems and watches the flags (a dismissal
//! reads as `None`, and the media half hangs up).

pub mod admissions;

pub use admissions::{Admission, Admissions, Flags, RoomKey};
