//! What a gateway session needs from the server, as a trait the server implements: the session
//! actor speaks the protocol, the backend knows the accounts and builds READY.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::guild::voice::VoiceChannel;
use crate::intents::Shard;
use crate::session::handover::Handover;
use crate::voice::RoomKey;

use crate::Dispatch;

/// An IDENTIFY, checked for shape, for the backend to authenticate and answer.
#[derive(Debug, Clone)]
pub struct IdentifyRequest {
    pub token: String,
    pub session_id: String,
    /// `ws://host[:port]` of the connection, for READY's `resume_gateway_url`.
    pub gateway_url: String,
    pub api_version: u8,
    pub capabilities: u64,
    /// The intents asked for (checked against [`crate::intents::ALL`]); `None` when IDENTIFY
    /// had none, as user clients send.
    pub intents: Option<u64>,
    /// IDENTIFY's `shard`, checked: READY holds only this shard's guilds.
    pub shard: Option<Shard>,
    /// Guilds with more members than this are "large" (50 to 250).
    pub large_threshold: usize,
    pub properties: Value,
    pub presence: Option<Value>,
}

/// A successful IDENTIFY: who the session belongs to, the complete `d` of READY, and the
/// dispatches that follow it (READY_SUPPLEMENTAL, and a bot's GUILD_CREATEs).
#[derive(Debug)]
pub struct Identified {
    pub user_id: i64,
    /// A bot account: without MESSAGE_CONTENT it gets messages in guilds without content.
    pub bot: bool,
    /// The intents that apply: a bot's, checked against its application (all it may have when
    /// it sent none); [`crate::intents::ALL`] for a person, whatever they sent.
    pub intents: u64,
    /// The login session the token belongs to: when it ends, so does the gateway session.
    pub login_id: i64,
    /// The guilds whose events the session should hear (of its shard only).
    pub guild_ids: Vec<i64>,
    pub ready: Value,
    pub followups: Vec<std::sync::Arc<crate::Dispatch>>,
    /// The session's presence: IDENTIFY's, else the status of the user's settings.
    pub presence: crate::presence::Presence,
    /// Every guild the user is in, of any shard, and their friends: who hears their presence.
    pub presence_guilds: Vec<i64>,
    pub friends: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    /// The token is not valid (closes with 4004).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A bot asked for a privileged intent its application is not allowed (closes with 4014).
    #[error("disallowed intents")]
    DisallowedIntents,
    /// A bot has more guilds on this connection's shard than one shard may hold (closes with
    /// 4011: identify with more shards).
    #[error("sharding required")]
    ShardingRequired,
    /// Anything else (closes with 4000); the error is logged, never sent.
    #[error("identify failed: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl IdentifyError {
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }
}

/// REQUEST_GUILD_MEMBERS (op 8), checked for shape: which members of one guild to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersRequest {
    pub guild_id: i64,
    pub selection: MemberSelection,
    /// Whether each chunk carries the presences of its members who are online.
    pub presences: bool,
    /// Echoed in every chunk; `None` when absent or invalid (not a string, over 32 bytes).
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberSelection {
    /// Members whose username or nickname starts with `prefix`, ignoring case: at most `limit`
    /// (1 to 100), or every member when `limit` is `None` (an empty query with limit 0).
    Query { prefix: String, limit: Option<u32> },
    /// These users (at most 100); those who are not members come back in `not_found`.
    UserIds(Vec<i64>),
}

impl MembersRequest {
    /// Whether this asks for the whole member list (`query: "", limit: 0`).
    pub fn is_everyone(&self) -> bool {
        matches!(self.selection, MemberSelection::Query { limit: None, .. })
    }

    /// Whether this lists members unfiltered (an empty query, any limit): only sessions with
    /// the GUILD_MEMBERS intent may.
    pub fn lists_members(&self) -> bool {
        matches!(&self.selection, MemberSelection::Query { prefix, .. } if prefix.is_empty())
    }
}

/// A guild voice channel a member asked to join with op 4, as the database has it.
#[derive(Debug, Clone)]
pub struct VoiceTarget {
    pub channel: VoiceChannel,
    /// The member's server mute and deafen.
    pub mute: bool,
    pub deaf: bool,
    /// The member object (with `user`) voice states carry.
    pub member: Arc<Value>,
}

/// A backend failure outside IDENTIFY (closes the connection with 4000; logged, never sent).
#[derive(Debug, thiserror::Error)]
#[error("backend failed: {0}")]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

pub trait SessionBackend: Send + Sync + 'static {
    /// Checks a token (RESUME): the user it belongs to.
    fn authenticate(&self, token: String) -> BoxFuture<'static, Result<i64, IdentifyError>>;

    fn identify(
        &self,
        request: IdentifyRequest,
    ) -> BoxFuture<'static, Result<Identified, IdentifyError>>;

    /// REQUEST_GUILD_MEMBERS from `user_id`: the GUILD_MEMBERS_CHUNK dispatches that answer it
    /// (up to 1,000 members each), or none when the user is not in the guild.
    fn request_members(
        &self,
        user_id: i64,
        request: MembersRequest,
    ) -> BoxFuture<'static, Result<Vec<Arc<Dispatch>>, BackendError>>;

    /// Op 4 from `user_id` naming a channel of a guild: the channel, if it is a voice or stage
    /// channel of that guild and the user is a member (`None` otherwise: the join is ignored).
    /// Permissions and the user limit are the guild actor's to check.
    fn voice_target(
        &self,
        user_id: i64,
        guild_id: i64,
        channel_id: i64,
    ) -> BoxFuture<'static, Result<Option<VoiceTarget>, BackendError>>;

    /// Op 4 joining `room` (a guild channel or a call), once the join was looked up: in cluster
    /// mode, places the room on a node (where it is already served, else a lightly loaded one)
    /// and answers that node's voice endpoint (`host[:port]/voice`); `None` on a single node
    /// (the session's own gateway serves it).
    fn place_room(&self, room: RoomKey)
        -> BoxFuture<'static, Result<Option<String>, BackendError>>;

    /// Op 4 from `user_id` naming a channel without a guild: the channel's recipients (the
    /// user among them) if it is a DM or group DM they are in (`None` otherwise: ignored).
    fn call_recipients(
        &self,
        user_id: i64,
        channel_id: i64,
    ) -> BoxFuture<'static, Result<Option<Vec<i64>>, BackendError>>;

    /// Cluster mode, a RESUME of a session this node does not hold: what it is, from the node
    /// that holds it or from what a drained node left in Redis (`None`: no one has it). The
    /// home node keeps it until [`release`](Self::release).
    fn locate(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, Result<Option<Handover>, BackendError>>;

    /// Takes the session [`locate`](Self::locate) found from its home node, with what it kept:
    /// it ends there and this node is its home from now on (`None`: it was gone meanwhile).
    fn release(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, Result<Option<Handover>, BackendError>>;
}
