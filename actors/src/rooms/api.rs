//! What the rooms service's server side (the rooms API, webhooks, the event log) sees of the live
//! rooms: the shapes it reads, the messages it sends the [`super::Rooms`] registry, and the two
//! ports it implements — [`RoomDirectory`] (which rooms exist, with what settings) and
//! [`RoomObserver`] (what happened in them).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::grants::{Grants, Source};

/// A room's settings, as the rooms API stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    /// Shown to participants (`joined`'s `room.name`); the room id when empty.
    pub name: String,
    /// 0 = the node's limit only.
    pub max_participants: u32,
    /// How long the room lives on once the last participant left.
    pub empty_timeout: Duration,
    pub metadata: String,
}

impl Default for RoomSettings {
    /// A room made by the first join of a token that names it (as LiveKit does).
    fn default() -> Self {
        Self {
            name: String::new(),
            max_participants: 0,
            empty_timeout: Duration::from_secs(300),
            metadata: String::new(),
        }
    }
}

/// Audio, video, or data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Video,
    Data,
}

/// A published track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Unique in the room: `TR_` and random letters.
    pub sid: String,
    pub kind: TrackKind,
    pub source: Source,
    pub muted: bool,
    /// As `webrtc` names it (`audio/opus`, `video/VP8`).
    pub codec: String,
}

/// A participant in a live room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub grants: Grants,
    /// Unix milliseconds.
    pub joined_at_ms: u64,
    pub tracks: Vec<TrackInfo>,
}

/// Why a request about a live room failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("the room is not live")]
    NoRoom,
    #[error("no such participant")]
    NoParticipant,
    #[error("no such track")]
    NoTrack,
    #[error("the room is full")]
    Full,
    #[error("the node holds as many rooms as it may")]
    TooManyRooms,
    #[error("the room directory failed: {0}")]
    Directory(String),
}

/// What happens in rooms, in order per room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RoomEvent {
    RoomStarted,
    RoomFinished,
    ParticipantJoined(ParticipantInfo),
    ParticipantLeft(ParticipantInfo),
    TrackPublished {
        participant: String,
        track: TrackInfo,
    },
    TrackUnpublished {
        participant: String,
        track: TrackInfo,
    },
}

/// Told of every [`RoomEvent`] (the rooms API implements it: the event log and webhooks).
/// Called from the room's actor: it must not block.
pub trait RoomObserver: Send + Sync + 'static {
    fn observe(&self, room: &str, event: RoomEvent);
}

/// Which rooms exist (the rooms API implements it over its database).
pub trait RoomDirectory: Send + Sync + 'static {
    /// The settings of room `room`, `None` if nobody created it.
    fn lookup(&self, room: &str) -> BoxFuture<'static, Result<Option<RoomSettings>, RoomError>>;
}

/// The node's own bounds on rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Live rooms on this node.
    pub max_rooms: usize,
    /// Participants in one room, whatever its `max_participants` says.
    pub max_participants: u32,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            max_rooms: 1_000,
            max_participants: 500,
        }
    }
}

/// What the registry is started with.
#[derive(Clone)]
pub struct RoomPorts {
    pub directory: Arc<dyn RoomDirectory>,
    pub observer: Arc<dyn RoomObserver>,
    pub limits: RoomLimits,
}

/// No directory (every room a token names is made on its first join) and nobody observing.
impl Default for RoomPorts {
    fn default() -> Self {
        Self {
            directory: Arc::new(Nobody),
            observer: Arc::new(Nobody),
            limits: RoomLimits::default(),
        }
    }
}

/// The empty directory and the deaf observer.
pub struct Nobody;

impl RoomDirectory for Nobody {
    fn lookup(&self, _: &str) -> BoxFuture<'static, Result<Option<RoomSettings>, RoomError>> {
        Box::pin(async { Ok(None) })
    }
}

impl RoomObserver for Nobody {
    fn observe(&self, _: &str, _: RoomEvent) {}
}

/// Everyone in a live room, hidden participants included; empty if it is not live.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<ParticipantInfo>")]
pub struct Participants {
    pub room: String,
}

/// Disconnects a participant (`error` 4007, then a close); whether they were there.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct RemoveParticipant {
    pub room: String,
    pub identity: String,
}

/// Mutes or unmutes a participant's published track.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RoomError>")]
pub struct MuteTrack {
    pub room: String,
    pub identity: String,
    pub track_sid: String,
    pub muted: bool,
}

/// Changes a participant's metadata and/or grants, at once (a lost grant stops what it allowed).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RoomError>")]
pub struct UpdateParticipant {
    pub room: String,
    pub identity: String,
    pub metadata: Option<String>,
    pub grants: Option<Grants>,
}

/// Sends data to a room's participants (`to` empty: everyone), as from `from` (`None`: the
/// server).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RoomError>")]
pub struct SendData {
    pub room: String,
    pub from: Option<String>,
    pub payload: serde_json::Value,
    pub to: Vec<String>,
    pub reliable: bool,
}

/// Disconnects everyone (`error` 4008) and ends the room; whether it was live.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct CloseRoom {
    pub room: String,
}

/// Creates or updates a room's settings: a live room applies them at once (`room-updated`); a
/// room that is not live keeps nothing (the directory is asked when it starts).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Configure {
    pub room: String,
    pub settings: RoomSettings,
}

/// How many visible participants each live room of `rooms` holds (rooms not live are left out).
#[derive(Message, Debug, Clone)]
#[rtype(result = "std::collections::HashMap<String, u32>")]
pub struct Occupancy {
    pub rooms: Vec<String>,
}
