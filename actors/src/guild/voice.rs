//! A guild's voice states: who is in which of its voice channels, with which mute and deafen
//! flags. As on Discord they live in memory only, owned by the guild actor, which checks each
//! join against the permissions it already holds, keeps [`Admissions`] in step (a token for
//! each entry, new flags, a dismissal on leaving) and says what the sessions must hear.
//!
//! Decisions: a member without SPEAK in the channel joins `suppress`ed (they hear, the voice
//! gateway forwards nothing of theirs), and so does everyone joining a stage channel until a
//! moderator, or they themselves with MUTE_MEMBERS, lifts it. A refused join (no CONNECT or
//! VIEW_CHANNEL, a full channel) changes nothing and sends nothing, as on Discord.

use crate::event_name::EventName;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::Message;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::state::GuildState;
use super::stream::{Ended, Stream, StreamChange, Streams};
use crate::permissions::{self, bits};
use crate::voice::{Admissions, Flags, RoomKey};

/// A guild voice or stage channel, as a join or a move needs to know it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct VoiceChannel {
    pub channel_id: i64,
    /// At most this many may be in it (MOVE_MEMBERS goes past); `None`: no limit.
    pub user_limit: Option<u32>,
    pub stage: bool,
}

/// One member's voice state (in cluster mode also kept in Redis by the guild's owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoiceState {
    pub user_id: i64,
    pub session_id: Arc<str>,
    pub channel_id: i64,
    /// Where the session's voice connection goes (`host[:port]/voice`).
    pub endpoint: String,
    pub mute: bool,
    pub deaf: bool,
    pub self_mute: bool,
    pub self_deaf: bool,
    pub self_video: bool,
    pub self_stream: bool,
    pub suppress: bool,
    pub request_to_speak_timestamp: Option<String>,
    /// The member object (with `user`) the dispatches carry.
    pub member: Arc<Value>,
    /// Cluster mode: the node holding the session (its state goes when that node dies).
    #[serde(default)]
    pub node: Option<Arc<str>>,
}

impl VoiceState {
    /// Discord's voice state object.
    pub fn to_json(&self, guild_id: i64) -> Value {
        json!({
            "guild_id": guild_id.to_string(),
            "channel_id": self.channel_id.to_string(),
            "user_id": self.user_id.to_string(),
            "member": &*self.member,
            "session_id": &*self.session_id,
            "deaf": self.deaf,
            "mute": self.mute,
            "self_deaf": self.self_deaf,
            "self_mute": self.self_mute,
            "self_stream": self.self_stream,
            "self_video": self.self_video,
            "suppress": self.suppress,
            "request_to_speak_timestamp": self.request_to_speak_timestamp,
        })
    }

    /// The same state with `channel_id: null`: what others hear when it ends.
    fn left_json(&self, guild_id: i64) -> Value {
        let mut d = self.to_json(guild_id);
        d["channel_id"] = Value::Null;
        d
    }

    pub fn flags(&self) -> Flags {
        Flags {
            mute: self.mute,
            deaf: self.deaf,
            self_mute: self.self_mute,
            self_deaf: self.self_deaf,
            suppress: self.suppress,
        }
    }
}

/// An op 4 that names a channel, checked against the database by the session's backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Join {
    pub session_id: Arc<str>,
    pub endpoint: String,
    pub channel: VoiceChannel,
    pub self_mute: bool,
    pub self_deaf: bool,
    pub self_video: bool,
    /// The member's server mute and deafen, as stored.
    pub mute: bool,
    pub deaf: bool,
    pub member: Arc<Value>,
    /// Cluster mode: the node holding the session (set on the way to the guild's owner).
    #[serde(default)]
    pub node: Option<Arc<str>>,
}

/// A moderator's (or for stage channels, the member's own) change over REST; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Moderation {
    pub mute: Option<bool>,
    pub deaf: Option<bool>,
    /// Move to this channel, or (`Some(None)`) disconnect.
    #[serde(default, with = "double_option")]
    pub channel: Option<Option<VoiceChannel>>,
    pub suppress: Option<bool>,
    #[serde(default, with = "double_option")]
    pub request_to_speak_timestamp: Option<Option<String>>,
    /// The change applies only if the user is in this channel (the voice-states routes).
    pub expected_channel: Option<i64>,
    /// Cluster mode: where the room a move goes to is served (`host[:port]/voice`), as the
    /// guild's owner placed it; `None`: where the member's room is served now.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// A field that may be absent (keep it), `Some(None)` (clear it) or set, as it travels to the
/// guild's owner: plainly, `Some(None)` would come back as `None`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_ref().map(|inner| (inner,)).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Ok(Option::<(Option<T>,)>::deserialize(deserializer)?.map(|(inner,)| inner))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VoiceChange {
    /// Op 4 with a channel: join, move there, or change one's own flags.
    Join(Join),
    /// Op 4 with `channel_id: null`.
    Leave,
    /// This session is done with voice in this guild (it ended, or joined voice elsewhere):
    /// its voice state, if it still has it, goes.
    SessionLeft {
        session_id: Arc<str>,
    },
    Moderate(Moderation),
    /// Go Live (ops 18, 19, 20, 22).
    Stream(StreamChange),
}

/// A change to a member's voice state in a guild; answered with the state after it (`None`:
/// not in voice).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<Value>, VoiceError>")]
pub struct UpdateVoice {
    pub guild_id: i64,
    pub user_id: i64,
    pub change: VoiceChange,
}

/// Every voice state of these guilds (for READY and GUILD_CREATE), by guild; guilds without
/// anyone in voice are left out.
#[derive(Message, Debug, Clone)]
#[rtype(result = "HashMap<i64, Vec<Value>>")]
pub struct GetVoiceStates {
    pub guild_ids: Vec<i64>,
}

/// One member's voice state in a guild, if they are in voice there.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Option<Value>")]
pub struct GetVoiceState {
    pub guild_id: i64,
    pub user_id: i64,
}

/// One guild's voice states (what the registry asks each guild actor for [`GetVoiceStates`]).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<Value>")]
pub struct VoiceStatesOf;

/// Cluster mode: only the guild's owner node decides its voice states (docs/cluster.md,
/// "Ownership"); the app's cluster implements this, the guild registry and actors use it.
pub trait VoiceOwner: Send + Sync {
    /// Has the guild's owner (this node or another) carry `update` out: its answer.
    fn decide(&self, update: UpdateVoice) -> BoxFuture<'static, Result<Option<Value>, VoiceError>>;

    /// Whether this node decides `guild_id`'s voice states now.
    fn owns(&self, guild_id: i64) -> bool;

    /// This node, as the owner, changed voice states: they are kept (in Redis) and every
    /// other node's sessions hear the notices.
    fn decided(&self, decided: Decided);
}

/// What the owner of a guild decided, for [`VoiceOwner::decided`].
#[derive(Debug)]
pub struct Decided {
    pub guild_id: i64,
    /// The states that changed, by user (`None`: no longer in voice).
    pub states: Vec<(i64, Option<VoiceState>)>,
    pub notices: Vec<Notice>,
    /// Whose session each session id is (the [`Notice::Session`]s go to their user's nodes).
    pub sessions: HashMap<Arc<str>, i64>,
}

/// Cluster mode: voice decisions go through `owner` from now on.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct DecideThrough(pub Arc<dyn VoiceOwner>);

/// The guild's owner carries out `0` (cluster mode: this node owns the guild now).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<Value>, VoiceError>")]
pub struct Decide(pub UpdateVoice);

/// What the guild's owner decided, as another node's sessions hear it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Heard {
    pub guild_id: i64,
    pub notices: Vec<Notice>,
}

/// This node just became the guild's owner: the voice states its last owner kept (`kept`, with
/// their rooms' endpoints as placed again, by channel) are its own now; those of sessions on
/// nodes that are gone (`gone`) end.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Rebuild {
    pub guild_id: i64,
    pub kept: Vec<VoiceState>,
    pub gone: Vec<VoiceState>,
    pub endpoints: HashMap<i64, String>,
}

/// The owner's periodic check: voice states of sessions on nodes not in `live` end.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Sweep {
    pub guild_id: i64,
    pub live: Arc<HashSet<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum VoiceError {
    /// The user is not in a voice channel (of this guild, or the one named).
    #[error("not connected to voice")]
    NotConnected,
    /// No CONNECT or VIEW_CHANNEL there, or not a member.
    #[error("no access to the voice channel")]
    MissingAccess,
    #[error("the voice channel is full")]
    Full,
    /// No such stream (op 19, 20 or 22 naming a stream that is not live).
    #[error("no such stream")]
    NoStream,
}

/// What the sessions must hear after a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Notice {
    /// VOICE_STATE_UPDATE for the guild.
    State(Value),
    /// An event for one session only (VOICE_SERVER_UPDATE, the STREAM_* events).
    Session {
        session_id: Arc<str>,
        event: EventName,
        d: Value,
    },
}

/// The voice states of one guild.
pub struct VoiceStates {
    guild_id: i64,
    admissions: Admissions,
    states: HashMap<i64, VoiceState>,
    /// Live streams, by streamer.
    streams: Streams,
}

impl VoiceStates {
    pub fn new(guild_id: i64, admissions: Admissions) -> Self {
        Self {
            guild_id,
            admissions,
            states: HashMap::new(),
            streams: Streams::default(),
        }
    }

    fn room(&self, channel_id: i64) -> RoomKey {
        RoomKey::Guild {
            guild_id: self.guild_id,
            channel_id,
        }
    }

    pub fn get(&self, user_id: i64) -> Option<Value> {
        self.states.get(&user_id).map(|s| s.to_json(self.guild_id))
    }

    /// Whether nobody is in voice.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn all(&self) -> Vec<Value> {
        self.states
            .values()
            .map(|s| s.to_json(self.guild_id))
            .collect()
    }

    /// One member's state, as kept.
    pub fn state(&self, user_id: i64) -> Option<&VoiceState> {
        self.states.get(&user_id)
    }

    /// Whose session each voice state's session is.
    pub fn sessions(&self) -> HashMap<Arc<str>, i64> {
        self.states
            .values()
            .map(|s| (s.session_id.clone(), s.user_id))
            .collect()
    }

    /// Drops every state and stream without a word or a dismissal: another node decides them
    /// now (cluster mode), and its admissions are the ones in force.
    pub fn forget(&mut self) {
        self.states.clear();
        self.streams = Streams::default();
    }

    /// Takes over the states a guild's last owner kept (see [`Rebuild`]): those of `gone`
    /// sessions end, the others get a fresh admission to their room where it is served now
    /// (after a null endpoint: their connection to the last one is over). Streams did not
    /// survive the last owner.
    pub fn rebuild(&mut self, rebuild: Rebuild) -> Vec<Notice> {
        self.forget();
        let mut notices: Vec<Notice> = rebuild
            .gone
            .iter()
            .map(|state| Notice::State(state.left_json(self.guild_id)))
            .collect();
        for mut state in rebuild.kept {
            if let Some(endpoint) = rebuild.endpoints.get(&state.channel_id) {
                endpoint.clone_into(&mut state.endpoint);
            }
            if std::mem::take(&mut state.self_stream) {
                notices.push(Notice::State(state.to_json(self.guild_id)));
            }
            notices.push(Notice::Session {
                session_id: state.session_id.clone(),
                event: EventName::VoiceServerUpdate,
                d: json!({ "token": null, "guild_id": self.guild_id.to_string(), "endpoint": null }),
            });
            notices.push(self.admit(&state));
            self.states.insert(state.user_id, state);
        }
        notices
    }

    /// The states of sessions on nodes not in `live` end.
    pub fn sweep(&mut self, live: &HashSet<String>) -> Vec<Notice> {
        let orphans: Vec<i64> = self
            .states
            .values()
            .filter(|s| s.node.as_deref().is_some_and(|node| !live.contains(node)))
            .map(|s| s.user_id)
            .collect();
        orphans
            .into_iter()
            .flat_map(|user_id| self.disconnect(user_id))
            .collect()
    }

    pub fn apply(
        &mut self,
        guild: &GuildState,
        user_id: i64,
        change: VoiceChange,
    ) -> Result<(Option<Value>, Vec<Notice>), VoiceError> {
        match change {
            VoiceChange::Join(join) => self.join(guild, user_id, join),
            VoiceChange::Leave => Ok((None, self.leave(user_id, |_| true))),
            VoiceChange::SessionLeft { session_id } => {
                Ok((None, self.leave(user_id, |s| s.session_id == session_id)))
            }
            VoiceChange::Moderate(moderation) => self.moderate(guild, user_id, moderation),
            VoiceChange::Stream(StreamChange::Create {
                session_id,
                channel_id,
            }) => self.go_live(guild, user_id, session_id, channel_id),
            VoiceChange::Stream(StreamChange::Watch {
                session_id,
                streamer,
            }) => self.watch(user_id, session_id, streamer),
            VoiceChange::Stream(StreamChange::Delete) => {
                let notices = self.end_stream(user_id, Ended::Stopped);
                if notices.is_empty() {
                    return Err(VoiceError::NoStream);
                }
                Ok((self.get(user_id), notices))
            }
            VoiceChange::Stream(StreamChange::Paused { paused }) => {
                let notices = self
                    .streams
                    .set_paused(user_id, paused)
                    .ok_or(VoiceError::NoStream)?;
                Ok((self.get(user_id), notices))
            }
        }
    }

    fn go_live(
        &mut self,
        guild: &GuildState,
        user_id: i64,
        session_id: Arc<str>,
        channel_id: i64,
    ) -> Result<(Option<Value>, Vec<Notice>), VoiceError> {
        let allowed = guild.channel_permissions(user_id, channel_id);
        let state = self
            .states
            .get(&user_id)
            .filter(|s| s.channel_id == channel_id && s.session_id == session_id)
            .ok_or(VoiceError::NotConnected)?;
        if !permissions::has(allowed, bits::STREAM) {
            return Err(VoiceError::MissingAccess);
        }
        let endpoint = state.endpoint.clone();
        // Going live again replaces the last stream.
        let mut notices = self.end_stream(user_id, Ended::Stopped);
        let key = Stream::key(self.guild_id, channel_id, user_id);
        let started = self
            .streams
            .start(key, (user_id, session_id), &endpoint, &self.admissions);
        let d = self.states.get_mut(&user_id).map(|state| {
            state.self_stream = true;
            state.to_json(self.guild_id)
        });
        notices.extend(d.clone().map(Notice::State));
        notices.extend(started);
        Ok((d, notices))
    }

    fn watch(
        &mut self,
        user_id: i64,
        session_id: Arc<str>,
        streamer: i64,
    ) -> Result<(Option<Value>, Vec<Notice>), VoiceError> {
        let streaming_in = self
            .states
            .get(&streamer)
            .map(|s| s.channel_id)
            .ok_or(VoiceError::NoStream)?;
        let viewer = self
            .states
            .get(&user_id)
            .filter(|s| s.channel_id == streaming_in && s.session_id == session_id)
            .ok_or(VoiceError::NotConnected)?;
        let endpoint = viewer.endpoint.clone();
        let notices = self
            .streams
            .watch(streamer, (user_id, session_id), &endpoint, &self.admissions)
            .ok_or(VoiceError::NoStream)?;
        Ok((self.get(user_id), notices))
    }

    /// Ends `user_id`'s stream, if they have one: the watchers hear STREAM_DELETE and the
    /// guild that they no longer stream.
    fn end_stream(&mut self, user_id: i64, why: Ended) -> Vec<Notice> {
        let mut notices = self.streams.end(user_id, why, &self.admissions);
        if notices.is_empty() {
            return notices;
        }
        if let Some(state) = self.states.get_mut(&user_id) {
            state.self_stream = false;
            notices.push(Notice::State(state.to_json(self.guild_id)));
        }
        notices
    }

    /// The user left their channel (for another, or for none): their stream ends, and they
    /// stop watching any.
    fn left_channel(&mut self, user_id: i64) -> Vec<Notice> {
        let mut notices = self.streams.unwatch_all(user_id, &self.admissions);
        notices.extend(self.end_stream(user_id, Ended::StreamerLeft));
        notices
    }

    fn join(
        &mut self,
        guild: &GuildState,
        user_id: i64,
        join: Join,
    ) -> Result<(Option<Value>, Vec<Notice>), VoiceError> {
        let channel = join.channel;
        let allowed = guild.channel_permissions(user_id, channel.channel_id);
        if !permissions::has(allowed, bits::VIEW_CHANNEL | bits::CONNECT) {
            return Err(VoiceError::MissingAccess);
        }
        let previous = self.states.get(&user_id);
        let moving = previous.is_none_or(|p| p.channel_id != channel.channel_id);
        if moving && self.full(channel, allowed) {
            return Err(VoiceError::Full);
        }
        let state = VoiceState {
            user_id,
            session_id: join.session_id,
            channel_id: channel.channel_id,
            endpoint: join.endpoint,
            mute: join.mute,
            deaf: join.deaf,
            self_mute: join.self_mute,
            self_deaf: join.self_deaf,
            self_video: join.self_video,
            // A stream belongs to a connection to this channel; the Go Live half keeps it.
            self_stream: previous.is_some_and(|p| !moving && p.self_stream),
            suppress: suppressed(channel, allowed),
            request_to_speak_timestamp: None,
            member: join.member,
            node: join.node,
        };
        // A new connection is due when the channel or the session changed, or when the client
        // asks again for exactly what it has (it is reconnecting its voice connection); a
        // change of its own flags only updates them.
        let left = previous.filter(|_| moving).map(|p| p.channel_id);
        let reconnect = previous.is_none_or(|p| {
            moving
                || p.session_id != state.session_id
                || (p.flags() == state.flags() && p.self_video == state.self_video)
        });
        let mut notices = Vec::new();
        if let Some(channel_id) = left {
            self.admissions.dismiss(&self.room(channel_id), user_id);
            notices.extend(self.left_channel(user_id));
        }
        Ok(self.settle(state, reconnect, notices))
    }

    /// Keeps `state` as the member's voice state and says so to the guild: a state whose
    /// client must connect anew (a join, a move, a reconnect) gets a fresh admission, any
    /// other only new flags. Answers with the state's JSON, made once.
    fn settle(
        &mut self,
        state: VoiceState,
        connects: bool,
        mut notices: Vec<Notice>,
    ) -> (Option<Value>, Vec<Notice>) {
        let d = state.to_json(self.guild_id);
        notices.push(Notice::State(d.clone()));
        if connects {
            notices.push(self.admit(&state));
        } else {
            self.admissions
                .set_flags(&self.room(state.channel_id), state.user_id, state.flags());
        }
        self.states.insert(state.user_id, state);
        (Some(d), notices)
    }

    /// Whether `channel` has no room for one more (who may move members goes past the limit).
    fn full(&self, channel: VoiceChannel, allowed: u64) -> bool {
        let Some(limit) = channel.user_limit.filter(|l| *l > 0) else {
            return false;
        };
        let inside = self
            .states
            .values()
            .filter(|s| s.channel_id == channel.channel_id)
            .count();
        inside >= usize::try_from(limit).unwrap_or(usize::MAX)
            && !permissions::has(allowed, bits::MOVE_MEMBERS)
    }

    /// A token for the state's session, and the VOICE_SERVER_UPDATE that carries it.
    fn admit(&self, state: &VoiceState) -> Notice {
        let token = self.admissions.admit(
            self.guild_id.to_string(),
            state.user_id,
            state.session_id.to_string(),
            self.room(state.channel_id),
            state.flags(),
        );
        Notice::Session {
            session_id: state.session_id.clone(),
            event: EventName::VoiceServerUpdate,
            d: json!({
                "token": token,
                "guild_id": self.guild_id.to_string(),
                "endpoint": state.endpoint,
            }),
        }
    }

    /// Who is in `channel_id`.
    fn inside(&self, channel_id: i64) -> Vec<i64> {
        self.states
            .values()
            .filter(|s| s.channel_id == channel_id)
            .map(|s| s.user_id)
            .collect()
    }

    /// The node serving `channel_id`'s room is gone (`None`: its participants hear a null
    /// endpoint), or serves it at `endpoint` now (each gets a new token for it).
    pub fn room_moved(&mut self, channel_id: i64, endpoint: Option<&str>) -> Vec<Notice> {
        let inside = self.inside(channel_id);
        let mut notices = Vec::with_capacity(inside.len());
        for user_id in inside {
            let Some(state) = self.states.get_mut(&user_id) else {
                continue;
            };
            let Some(endpoint) = endpoint else {
                notices.push(Notice::Session {
                    session_id: state.session_id.clone(),
                    event: EventName::VoiceServerUpdate,
                    d: json!({
                        "token": null,
                        "guild_id": self.guild_id.to_string(),
                        "endpoint": null,
                    }),
                });
                continue;
            };
            endpoint.clone_into(&mut state.endpoint);
            let state = state.clone();
            notices.push(self.admit(&state));
        }
        notices
    }

    /// Ends the user's voice state if `which` says so.
    fn leave(&mut self, user_id: i64, which: impl Fn(&VoiceState) -> bool) -> Vec<Notice> {
        match self.states.get(&user_id).filter(|s| which(s)) {
            Some(_) => self.disconnect(user_id),
            None => Vec::new(),
        }
    }

    fn disconnect(&mut self, user_id: i64) -> Vec<Notice> {
        let mut notices = self.left_channel(user_id);
        if let Some(state) = self.states.remove(&user_id) {
            self.admissions
                .dismiss(&self.room(state.channel_id), user_id);
            notices.push(Notice::State(state.left_json(self.guild_id)));
        }
        notices
    }

    fn moderate(
        &mut self,
        guild: &GuildState,
        user_id: i64,
        moderation: Moderation,
    ) -> Result<(Option<Value>, Vec<Notice>), VoiceError> {
        let Some(state) = self.states.get(&user_id) else {
            return Err(VoiceError::NotConnected);
        };
        if moderation
            .expected_channel
            .is_some_and(|c| c != state.channel_id)
        {
            return Err(VoiceError::NotConnected);
        }
        let mut state = state.clone();
        match moderation.channel {
            Some(None) => return Ok((None, self.disconnect(user_id))),
            Some(Some(channel)) if channel.channel_id != state.channel_id => {
                let allowed = guild.channel_permissions(user_id, channel.channel_id);
                self.admissions
                    .dismiss(&self.room(state.channel_id), user_id);
                state.channel_id = channel.channel_id;
                state.suppress = suppressed(channel, allowed);
                state.self_stream = false;
                state.request_to_speak_timestamp = None;
                if let Some(endpoint) = moderation.endpoint {
                    state.endpoint = endpoint;
                }
            }
            _ => {}
        }
        let moved = self
            .states
            .get(&user_id)
            .is_some_and(|before| before.channel_id != state.channel_id);
        if let Some(mute) = moderation.mute {
            state.mute = mute;
        }
        if let Some(deaf) = moderation.deaf {
            state.deaf = deaf;
        }
        if let Some(suppress) = moderation.suppress {
            state.suppress = suppress;
        }
        if let Some(asked) = moderation.request_to_speak_timestamp {
            state.request_to_speak_timestamp = asked;
        }
        let notices = if moved {
            self.left_channel(user_id)
        } else {
            Vec::new()
        };
        // The moved member's client connects anew, to the new room.
        Ok(self.settle(state, moved, notices))
    }

    /// A member's object changed (nickname, roles …).
    pub fn member_changed(&mut self, user_id: i64, member: Arc<Value>) {
        if let Some(state) = self.states.get_mut(&user_id) {
            state.member = member;
        }
    }

    /// A member left the guild: they leave its voice channel too.
    pub fn member_removed(&mut self, user_id: i64) -> Vec<Notice> {
        self.disconnect(user_id)
    }

    /// A channel was deleted: everyone in it is disconnected.
    pub fn channel_removed(&mut self, channel_id: i64) -> Vec<Notice> {
        self.inside(channel_id)
            .into_iter()
            .flat_map(|user_id| self.disconnect(user_id))
            .collect()
    }

    /// The guild is gone: every voice connection hangs up (nobody is left to tell).
    pub fn clear(&mut self) {
        let users: Vec<i64> = self.states.keys().copied().collect();
        for user_id in users {
            self.disconnect(user_id);
        }
    }
}

/// Whether a member joins `channel` suppressed: always in a stage channel (the audience
/// listens until invited to speak), and without SPEAK anywhere.
fn suppressed(channel: VoiceChannel, allowed: u64) -> bool {
    channel.stage || !permissions::has(allowed, bits::SPEAK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::RoleRank;

    const GUILD: i64 = 100;
    const OWNER: i64 = 1;

    /// A guild whose @everyone may see, connect and speak, with two voice channels (10, 11).
    fn guild() -> GuildState {
        let mut guild = GuildState {
            guild_id: GUILD,
            owner_id: OWNER,
            ..GuildState::default()
        };
        let everyone = bits::VIEW_CHANNEL | bits::CONNECT | bits::SPEAK;
        guild.roles.insert(
            GUILD,
            RoleRank {
                id: GUILD,
                permissions: everyone,
                position: 0,
            },
        );
        for user_id in [OWNER, 2, 3] {
            guild.members.insert(user_id, Vec::new());
        }
        guild.channels.insert(10, Vec::new());
        guild.channels.insert(11, Vec::new());
        guild
    }

    fn join(user_id: i64, channel_id: i64, user_limit: Option<u32>) -> VoiceChange {
        VoiceChange::Join(Join {
            session_id: format!("s{user_id}").into(),
            endpoint: "host/voice".into(),
            channel: VoiceChannel {
                channel_id,
                user_limit,
                stage: false,
            },
            self_mute: false,
            self_deaf: false,
            self_video: false,
            mute: false,
            deaf: false,
            member: Arc::new(json!({})),
            node: None,
        })
    }

    /// The token in the VOICE_SERVER_UPDATE among `notices`.
    fn token(notices: &[Notice]) -> String {
        notices
            .iter()
            .find_map(|n| match n {
                Notice::Session { event, d, .. } if *event == EventName::VoiceServerUpdate => {
                    d["token"].as_str().map(str::to_string)
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_disconnect_survives_the_trip_to_the_owner() {
        let moderation = Moderation {
            channel: Some(None),
            request_to_speak_timestamp: Some(None),
            ..Moderation::default()
        };
        let bytes = serde_json::to_vec(&moderation).unwrap();
        let back: Moderation = serde_json::from_slice(&bytes).unwrap();
        assert!(matches!(back.channel, Some(None)));
        assert_eq!(back.request_to_speak_timestamp, Some(None));
        assert_eq!(back.mute, None);
    }

    #[test]
    fn a_full_channel_admits_only_who_may_move_members() {
        let (guild, admissions) = (guild(), Admissions::default());
        let mut voice = VoiceStates::new(GUILD, admissions);
        assert!(voice.apply(&guild, 2, join(2, 10, Some(1))).is_ok());
        assert_eq!(
            voice.apply(&guild, 3, join(3, 10, Some(1))).map(|_| ()),
            Err(VoiceError::Full)
        );
        assert!(voice.apply(&guild, OWNER, join(OWNER, 10, Some(1))).is_ok());
        assert_eq!(voice.all().len(), 2);
    }

    #[test]
    fn a_moved_room_tells_its_participants_a_null_endpoint_then_the_new_one() {
        let (guild, admissions) = (guild(), Admissions::default());
        let mut voice = VoiceStates::new(GUILD, admissions.clone());
        for (user_id, channel_id) in [(2, 10), (3, 10), (OWNER, 11)] {
            assert!(voice
                .apply(&guild, user_id, join(user_id, channel_id, None))
                .is_ok());
        }
        let endpoints = |notices: &[Notice]| -> Vec<Value> {
            notices
                .iter()
                .map(|n| match n {
                    Notice::Session { d, .. } => d["endpoint"].clone(),
                    Notice::State(d) => panic!("no state changes: {d}"),
                })
                .collect()
        };
        let gone = voice.room_moved(10, None);
        assert_eq!(endpoints(&gone), vec![Value::Null; 2]);
        let moved = voice.room_moved(10, Some("elsewhere/voice"));
        assert_eq!(endpoints(&moved), vec![json!("elsewhere/voice"); 2]);
        // Each with a token for the room where it is served now.
        for notice in &moved {
            let Notice::Session { session_id, d, .. } = notice else {
                unreachable!("checked above")
            };
            let user_id = if &**session_id == "s2" { 2 } else { 3 };
            let token = d["token"].as_str().unwrap_or_default();
            assert!(admissions
                .redeem("100", user_id, session_id, token)
                .is_some());
        }
    }

    #[test]
    fn a_move_ends_the_old_rooms_admission_and_admits_to_the_new_one() {
        let (guild, admissions) = (guild(), Admissions::default());
        let mut voice = VoiceStates::new(GUILD, admissions.clone());
        let (_, notices) = voice.apply(&guild, 2, join(2, 10, None)).unwrap();
        let first = admissions.redeem("100", 2, "s2", &token(&notices)).unwrap();
        let to = VoiceChannel {
            channel_id: 11,
            user_limit: None,
            stage: false,
        };
        let moderation = Moderation {
            channel: Some(Some(to)),
            ..Moderation::default()
        };
        let (state, notices) = voice
            .apply(&guild, 2, VoiceChange::Moderate(moderation))
            .unwrap();
        assert_eq!(state.unwrap()["channel_id"], "11");
        assert_eq!(*first.flags.borrow(), None);
        let second = admissions.redeem("100", 2, "s2", &token(&notices)).unwrap();
        assert_eq!(
            second.room,
            RoomKey::Guild {
                guild_id: GUILD,
                channel_id: 11
            }
        );
    }
}
