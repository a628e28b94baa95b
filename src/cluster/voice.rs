//! Guild voice states through the guild's owner (docs/cluster.md, "Ownership").
//!
//! Every voice change (op 4 joins, leaves and flag changes, the REST moderator changes, Go
//! Live) goes to the guild's owner as [`OwnerCommand::Voice`]; its guild actor decides as a
//! single node does (permissions, limits, stage rules), places the room and makes the token
//! (relayed to the room's node by `Admissions`). What it decided is written to `voice:{guild}`
//! (fenced: only while `own:g:{guild}` still names it under its epoch) and then published:
//! VOICE_STATE_UPDATEs on `g:{guild}`, a session's own events (VOICE_SERVER_UPDATE, STREAM_*)
//! on its user's `u:{user}`, where only nodes holding that user's sessions hear them. Reads
//! (GUILD_CREATE, the REST voice states) come from that hash on any node.
//!
//! A node that takes a guild's lease reads the hash first ([`Rebuild`]): states of sessions on
//! nodes that left the registry end (everyone hears them leave), the others get a fresh token
//! for their room where it is served now. Every third of a lease the owner also ends the states
//! of sessions whose node died since ([`Sweep`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use futures_util::future::BoxFuture;
use redis::Script;
use serde_json::Value;
use spacebar_actors::guild::voice::{
    Decide, Decided, Notice, Rebuild, Sweep, UpdateVoice, VoiceChange, VoiceError, VoiceOwner,
    VoiceState,
};
use spacebar_actors::interest::Topic;
use spacebar_actors::sync;
use spacebar_actors::voice::RoomKey;
use tokio::sync::mpsc;

use super::envelope::{Body, OwnerAnswer, OwnerCommand};
use super::keys;
use super::nodes;
use super::ownership::{self, Ownership};
use super::placement::Placement;
use crate::state::AppState;

/// Writes the changed states if `KEYS[1]` (the guild's lease) still holds `ARGV[1]`
/// (`node:epoch`): then pairs of user id and state (empty: gone). 1 if written, else 0.
const WRITE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
return 1
";

/// One decision on its way to Redis and the other nodes.
struct Write {
    epoch: u64,
    decided: Decided,
}

/// This node's side of guild voice states in a cluster.
pub struct VoiceStates {
    ownership: Arc<Ownership>,
    /// Where rooms are placed; also this node's id, Redis, publisher and timings.
    placement: Arc<Placement>,
    writes: mpsc::UnboundedSender<Write>,
    /// Until [`VoiceStates::run`]: the decisions to write and tell.
    written: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
    /// The epoch under which each guild owned here had its states taken over (one lock per
    /// guild: a take-over waiting for a lapsed room holds up no other guild's commands).
    rebuilt: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<u64>>>>,
}

impl VoiceStates {
    pub(super) fn new(ownership: Arc<Ownership>, placement: Arc<Placement>) -> Self {
        let (writes, written) = mpsc::unbounded_channel();
        Self {
            ownership,
            placement,
            writes,
            written: Mutex::new(Some(written)),
            rebuilt: Mutex::default(),
        }
    }

    /// What the guild actors decide through (see [`VoiceOwner`]).
    pub(super) fn owner(self: &Arc<Self>, state: Weak<AppState>) -> Arc<dyn VoiceOwner> {
        Arc::new(Owner {
            voice: self.clone(),
            state,
        })
    }

    /// The voice states of `guild_ids` as their owners keep them, by guild (guilds with nobody
    /// in voice left out).
    pub async fn read(&self, guild_ids: &[i64]) -> redis::RedisResult<HashMap<i64, Vec<Value>>> {
        if guild_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for &guild_id in guild_ids {
            pipe.hgetall(keys::voice_states(guild_id));
        }
        let found: Vec<HashMap<String, Vec<u8>>> =
            pipe.query_async(&mut self.placement.redis.clone()).await?;
        Ok(guild_ids
            .iter()
            .zip(found)
            .map(|(&guild_id, states)| {
                let states: Vec<Value> = decode(states)
                    .iter()
                    .map(|state| state.to_json(guild_id))
                    .collect();
                (guild_id, states)
            })
            .filter(|(_, states)| !states.is_empty())
            .collect())
    }

    /// Writes and tells each decision in turn; every third of a lease takes over the states of
    /// guilds newly owned here and ends those of sessions on nodes that died.
    pub(super) async fn run(self: Arc<Self>, state: Weak<AppState>) {
        let Some(mut written) = sync::lock(&self.written).take() else {
            return;
        };
        let writer = self.clone();
        tokio::spawn(async move {
            while let Some(write) = written.recv().await {
                writer.write(write).await;
            }
        });
        let mut ticks = tokio::time::interval(self.placement.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            let live =
                match nodes::live(&mut self.placement.redis.clone(), self.placement.beat).await {
                    Ok(live) => Arc::new(live.into_iter().map(|n| n.id).collect::<HashSet<_>>()),
                    Err(error) => {
                        tracing::warn!(%error, "voice states: the node registry did not answer");
                        continue;
                    }
                };
            let owned = self.ownership.owned_guilds();
            let owned_ids: HashSet<i64> = owned.iter().map(|(guild_id, _)| *guild_id).collect();
            sync::lock(&self.rebuilt).retain(|guild_id, _| owned_ids.contains(guild_id));
            for (guild_id, epoch) in owned {
                self.take_over(&state, guild_id, epoch).await;
                let live = live.clone();
                state.tree.guilds.do_send(Sweep { guild_id, live });
            }
        }
    }

    /// The decision goes to Redis (if this node still owns the guild under `epoch`), then to
    /// the other nodes.
    async fn write(&self, Write { epoch, decided }: Write) {
        let guild_id = decided.guild_id;
        let script = Script::new(WRITE);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys::own_guild(guild_id))
            .key(keys::voice_states(guild_id))
            .arg(format!("{}:{epoch}", self.placement.node_id));
        for (user_id, voice_state) in &decided.states {
            let encoded = match voice_state.as_ref().map(rmp_serde::to_vec_named) {
                Some(Ok(encoded)) => encoded,
                Some(Err(error)) => {
                    tracing::error!(%error, "a voice state did not encode");
                    continue;
                }
                None => Vec::new(),
            };
            invocation.arg(user_id).arg(encoded);
        }
        let mut redis = self.placement.redis.clone();
        let written = invocation.invoke_async::<i64>(&mut redis);
        match tokio::time::timeout(self.placement.ttl / 3, written).await {
            Ok(Ok(1)) => {}
            Ok(Ok(_)) => {
                tracing::warn!(
                    guild_id,
                    "voice states not kept: the guild has another owner"
                );
                return;
            }
            Ok(Err(error)) => tracing::warn!(%error, guild_id, "voice states not kept"),
            Err(_) => tracing::warn!(guild_id, "voice states not kept: Redis timed out"),
        }
        self.tell(decided);
    }

    /// VOICE_STATE_UPDATEs to the guild's channel, a session's own events to its user's.
    fn tell(&self, decided: Decided) {
        let guild_id = decided.guild_id;
        let (states, own): (Vec<Notice>, Vec<Notice>) = decided
            .notices
            .into_iter()
            .partition(|n| matches!(n, Notice::State(_)));
        let mut by_user: HashMap<i64, Vec<Notice>> = HashMap::new();
        for notice in own {
            let Notice::Session { session_id, .. } = &notice else {
                continue;
            };
            match decided.sessions.get(session_id) {
                Some(user_id) => by_user.entry(*user_id).or_default().push(notice),
                None => {
                    tracing::warn!(guild_id, %session_id, "a voice event for a session of nobody")
                }
            }
        }
        let channels = [(keys::channel(Topic::Guild(guild_id)), states)]
            .into_iter()
            .chain(
                by_user
                    .into_iter()
                    .map(|(user_id, notices)| (keys::channel(Topic::User(user_id)), notices)),
            );
        for (channel, notices) in channels {
            if !notices.is_empty() {
                let body = Body::VoiceNotices { guild_id, notices };
                self.placement.publisher.publish(vec![channel], body);
            }
        }
    }

    /// Takes over `guild_id`'s voice states from its last owner, once per epoch (see the
    /// module's comment).
    async fn take_over(&self, state: &AppState, guild_id: i64, epoch: u64) {
        let guild = sync::lock(&self.rebuilt)
            .entry(guild_id)
            .or_default()
            .clone();
        let mut rebuilt = guild.lock().await;
        if *rebuilt == epoch {
            return;
        }
        let mut redis = self.placement.redis.clone();
        let live: HashSet<String> = match nodes::live(&mut redis, self.placement.beat).await {
            Ok(live) => live.into_iter().map(|n| n.id).collect(),
            Err(error) => {
                tracing::warn!(%error, guild_id, "voice states not taken over: no node registry");
                return;
            }
        };
        let found: HashMap<String, Vec<u8>> = match redis::cmd("HGETALL")
            .arg(keys::voice_states(guild_id))
            .query_async(&mut redis)
            .await
        {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, guild_id, "voice states not read: taken over later");
                return;
            }
        };
        let (kept, gone): (Vec<VoiceState>, Vec<VoiceState>) = decode(found)
            .into_iter()
            .partition(|s| s.node.as_deref().is_none_or(|node| live.contains(node)));
        let channels: HashSet<i64> = kept.iter().map(|s| s.channel_id).collect();
        let mut endpoints = HashMap::new();
        for channel_id in channels {
            let room = RoomKey::Guild {
                guild_id,
                channel_id,
            };
            match self.placement.place(&state.tree.admissions, &room).await {
                Ok(endpoint) => {
                    endpoints.insert(channel_id, endpoint);
                }
                Err(error) => tracing::warn!(%error, %room, "a taken-over voice room not placed"),
            }
        }
        if !kept.is_empty() || !gone.is_empty() {
            tracing::info!(
                guild_id,
                epoch,
                kept = kept.len(),
                gone = gone.len(),
                "voice states taken over"
            );
        }
        let rebuild = Rebuild {
            guild_id,
            kept,
            gone,
            endpoints,
        };
        if state.tree.guilds.send(rebuild).await.is_ok() {
            *rebuilt = epoch;
        }
    }
}

/// The states a hash holds (one that does not decode is left out, and logged).
fn decode(found: HashMap<String, Vec<u8>>) -> Vec<VoiceState> {
    found
        .into_values()
        .filter_map(|bytes| match rmp_serde::from_slice(&bytes) {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::warn!(%error, "a kept voice state did not decode");
                None
            }
        })
        .collect()
}

/// The guild actors' way to the owner (see [`VoiceOwner`]).
struct Owner {
    voice: Arc<VoiceStates>,
    state: Weak<AppState>,
}

impl VoiceOwner for Owner {
    fn decide(&self, update: UpdateVoice) -> BoxFuture<'static, Result<Option<Value>, VoiceError>> {
        let state = self.state.clone();
        let node = self.voice.placement.node_id.clone();
        Box::pin(async move {
            let Some(state) = state.upgrade() else {
                return Err(VoiceError::NotConnected);
            };
            let Some(cluster) = &state.cluster else {
                return Err(VoiceError::NotConnected);
            };
            let UpdateVoice {
                guild_id,
                user_id,
                mut change,
            } = update;
            if let VoiceChange::Join(join) = &mut change {
                join.node = Some(node);
            }
            let command = OwnerCommand::Voice { user_id, change };
            match ownership::ask(&state, cluster, guild_id, command).await {
                Ok(OwnerAnswer::Voice(result)) => result,
                Ok(answer) => {
                    tracing::warn!(guild_id, ?answer, "the guild's owner did not decide");
                    Err(VoiceError::NotConnected)
                }
                Err(error) => {
                    tracing::warn!(guild_id, %error, "the guild's owner did not decide");
                    Err(VoiceError::NotConnected)
                }
            }
        })
    }

    fn owns(&self, guild_id: i64) -> bool {
        self.voice.ownership.owns(guild_id).is_some()
    }

    fn decided(&self, decided: Decided) {
        let Some(epoch) = self.voice.ownership.owns(decided.guild_id) else {
            return;
        };
        let _ = self.voice.writes.send(Write { epoch, decided });
    }
}

/// Carries out a voice change as the guild's owner: the states are taken over first (if this
/// node just became the owner), a join's or a move's room is placed (so the token reaches its
/// node), then the guild's actor decides.
pub(super) async fn carry_out(
    state: &AppState,
    guild_id: i64,
    user_id: i64,
    mut change: VoiceChange,
) -> Result<Option<Value>, VoiceError> {
    if let Some(cluster) = &state.cluster {
        let voice = &cluster.voice;
        if let Some(epoch) = cluster.ownership.owns(guild_id) {
            voice.take_over(state, guild_id, epoch).await;
        }
        let channel = match &change {
            VoiceChange::Join(join) => Some(join.channel.channel_id),
            VoiceChange::Moderate(moderation) => moderation.channel.flatten().map(|c| c.channel_id),
            _ => None,
        };
        if let Some(channel_id) = channel {
            let room = RoomKey::Guild {
                guild_id,
                channel_id,
            };
            match cluster.placement.place(&state.tree.admissions, &room).await {
                Ok(endpoint) => match &mut change {
                    VoiceChange::Join(join) => join.endpoint = endpoint,
                    VoiceChange::Moderate(moderation) => moderation.endpoint = Some(endpoint),
                    _ => {}
                },
                Err(error) => tracing::warn!(%error, %room, "a voice room was not placed"),
            }
        }
    }
    let update = UpdateVoice {
        guild_id,
        user_id,
        change,
    };
    state
        .tree
        .guilds
        .send(Decide(update))
        .await
        .unwrap_or(Err(VoiceError::NotConnected))
}
