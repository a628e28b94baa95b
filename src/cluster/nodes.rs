//! Which nodes are alive, and who makes which snowflakes.
//!
//! Every `cluster.heartbeat_ms` a node writes its entry (`node:{id}`, a hash that expires after
//! [`MISSED_BEATS`] beats) and its beat time in the `nodes` sorted set; readers take a node
//! whose last beat is older than that for dead, and each beat sweeps such entries out of the
//! set. A graceful stop removes the node at once.
//!
//! Snowflakes tell their makers apart by 10 bits; two nodes with the same bits would make the
//! same ids in the same millisecond. So a node leases a free number at start (`worker:{n}`,
//! `SET NX PX`), renews it with each beat, and does not start when every number is held.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult, Script, Value};
use serde::Serialize;
use spacebar_actors::registry::{SessionCount, SessionIds};
use spacebar_actors::voice::{self, ActiveRooms};
use tokio::sync::{mpsc, oneshot};

use super::keys;
use super::publisher::unix_ms;
use crate::config::Config;
use crate::snowflake;
use crate::state::AppState;

/// Beats a node may miss before the others take it for dead.
const MISSED_BEATS: u64 = 3;

/// A node as the registry lists it.
#[derive(Debug, Serialize)]
pub struct NodeEntry {
    pub id: String,
    /// Where it listens.
    pub http_address: String,
    /// `cluster.advertise_url` (empty if not set).
    pub advertise_url: String,
    /// When it started (Unix ms; shown as a date).
    #[serde(rename = "started_at", serialize_with = "as_rfc3339")]
    pub started_ms: u64,
    /// Its gateway sessions (at its last beat, in a cluster).
    pub sessions: u64,
    /// Where its voice gateway and media are reached (VOICE_SERVER_UPDATE's `endpoint`:
    /// `host[:port]/voice`, from `advertise_url`, else the HTTP address).
    pub voice_endpoint: String,
    /// The voice rooms it holds.
    pub voice_rooms: u64,
    /// How busy it is, for placing voice rooms: see [`Usage::load`].
    pub load: u64,
    /// Stopping: telling its sessions to reconnect elsewhere.
    pub draining: bool,
}

impl NodeEntry {
    /// Where the node's HTTP API is reached: `cluster.advertise_url`, else its HTTP address.
    pub fn base_url(&self) -> String {
        match self.advertise_url.trim_end_matches('/') {
            "" => format!("http://{}", self.http_address),
            advertised => advertised.to_owned(),
        }
    }
}

/// What a node carries now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub sessions: usize,
    pub voice_rooms: usize,
    /// Voice peer connections (one per participant who selected a protocol).
    pub voice_transports: usize,
}

/// What one voice peer connection weighs against one gateway session: it decrypts, forwards
/// and encrypts a media stream (tens of packets a second), where a session mostly waits.
const TRANSPORT_WEIGHT: usize = 10;

impl Usage {
    /// What this node carries now.
    pub async fn of(state: &AppState) -> Self {
        let sessions = state.tree.sessions.send(SessionCount).await.unwrap_or(0);
        Self::with_sessions(state, sessions).await
    }

    /// What this node carries now, its gateway sessions counted already (the heartbeat lists
    /// them to renew their records).
    pub async fn with_sessions(state: &AppState, sessions: usize) -> Self {
        Self {
            sessions,
            voice_rooms: state.tree.voice.rooms.send(ActiveRooms).await.unwrap_or(0),
            voice_transports: state.tree.voice.live_transports(),
        }
    }

    /// The load a node reports: gateway sessions plus each voice peer connection weighted
    /// [`TRANSPORT_WEIGHT`]. Placement puts a new voice room on the less loaded of two nodes.
    pub fn load(&self) -> usize {
        self.sessions
            .saturating_add(self.voice_transports.saturating_mul(TRANSPORT_WEIGHT))
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// This node, as it describes itself to the registry (and, alone, to the admin API).
pub struct ThisNode {
    pub id: Arc<str>,
    http_address: SocketAddr,
    advertise_url: String,
    voice_endpoint: String,
    started_ms: u64,
    draining: AtomicBool,
    /// Notified when an operator asks this node to drain (the server then stops gracefully).
    drain_asked: Arc<tokio::sync::Notify>,
}

impl ThisNode {
    pub fn new(id: Arc<str>, http_address: SocketAddr, advertise_url: &str) -> Self {
        Self {
            id,
            http_address,
            advertise_url: advertise_url.to_owned(),
            voice_endpoint: match advertise_url {
                "" => voice::endpoint(&format!("ws://{http_address}")),
                advertised => voice::endpoint(advertised),
            },
            started_ms: unix_ms(),
            draining: AtomicBool::new(false),
            drain_asked: Arc::default(),
        }
    }

    /// Asks the server to drain and stop (as SIGTERM does).
    pub fn ask_to_drain(&self) {
        self.drain_asked.notify_one();
    }

    /// What the server waits on for [`ask_to_drain`](Self::ask_to_drain).
    pub fn drain_asked(&self) -> Arc<tokio::sync::Notify> {
        self.drain_asked.clone()
    }

    /// From now on the node says it is stopping.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Stopping: it takes no new gateway connections.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Where this node's voice gateway and media are reached.
    pub fn voice_endpoint(&self) -> &str {
        &self.voice_endpoint
    }

    pub fn entry(&self, usage: Usage) -> NodeEntry {
        NodeEntry {
            id: self.id.to_string(),
            http_address: self.http_address.to_string(),
            advertise_url: self.advertise_url.clone(),
            started_ms: self.started_ms,
            sessions: count(usage.sessions),
            voice_endpoint: self.voice_endpoint.clone(),
            voice_rooms: count(usage.voice_rooms),
            load: count(usage.load()),
            draining: self.is_draining(),
        }
    }
}

fn as_rfc3339<S: serde::Serializer>(unix_ms: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    let ms = i64::try_from(*unix_ms).unwrap_or(0);
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Uploads through one node must be served by the others: files kept in a directory of this
/// node's own are not.
pub fn warn_if_private_storage(config: &Config) {
    if config.storage.backend == "fs" {
        tracing::warn!(
            dir = %config.storage.data_dir.join("files").display(),
            "cluster mode with storage.backend = \"fs\": files uploaded through one node must be \
             served by every other; use storage.backend = \"s3\", or a storage.data_dir every \
             node mounts"
        );
    }
}

/// How long an entry or a lease outlives the beat that wrote it.
pub(super) fn lifetime_ms(beat: Duration) -> u64 {
    u64::try_from(beat.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_mul(MISSED_BEATS)
}

/// Takes the first free snowflake worker number for `node_id`, for [`MISSED_BEATS`] beats;
/// `None` when every number is held.
pub(super) async fn lease_worker(
    redis: &mut ConnectionManager,
    node_id: &str,
    beat: Duration,
) -> RedisResult<Option<u16>> {
    for n in 0..snowflake::NODES {
        let set: Value = redis::cmd("SET")
            .arg(keys::worker(n))
            .arg(node_id)
            .arg("NX")
            .arg("PX")
            .arg(lifetime_ms(beat))
            .query_async(redis)
            .await?;
        if set != Value::Nil {
            return Ok(u16::try_from(n).ok());
        }
    }
    Ok(None)
}

/// Extends the lease if this node holds it, takes it back if it lapsed (Redis restarted, or
/// was unreachable longer than the lease): 1; 0 when another node holds it now.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// What keeps this node in the registry, until it leaves.
pub(super) struct Heartbeat {
    pub(super) redis: ConnectionManager,
    pub(super) node_id: Arc<str>,
    pub(super) worker: u16,
    pub(super) beat: Duration,
    /// A graceful stop asks to leave here, and hears when it has.
    pub(super) leaving: mpsc::Receiver<oneshot::Sender<()>>,
}

impl Heartbeat {
    /// Beats until the node leaves or the server is gone.
    pub(super) async fn run(mut self, state: Weak<AppState>) {
        let mut ticks = tokio::time::interval(self.beat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let Some(strong) = state.upgrade() else { return };
                    let sessions = strong.tree.sessions.send(SessionIds).await.unwrap_or_default();
                    let entry = strong.node.entry(Usage::with_sessions(&strong, sessions.len()).await);
                    drop(strong);
                    // A beat that hangs (Redis stopped) must not delay the next one for long.
                    match tokio::time::timeout(self.beat, self.beat(&entry, &sessions)).await {
                        Ok(Ok(dead)) => {
                            for node_id in dead {
                                tracing::warn!(%node_id, "a node died: sweeping up after it");
                                tokio::spawn(super::presence::sweep_after(state.clone(), node_id));
                            }
                        }
                        Ok(Err(error)) => tracing::warn!(%error, "cluster heartbeat failed"),
                        Err(_) => tracing::warn!("cluster heartbeat timed out"),
                    }
                }
                left = self.leaving.recv() => {
                    if let Some(done) = left {
                        match tokio::time::timeout(self.beat, self.leave()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => tracing::warn!(%error, "could not leave the node registry"),
                            Err(_) => tracing::warn!("leaving the node registry timed out"),
                        }
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Writes this node's entry, renews its leases and its sessions' records, and takes
    /// dead nodes out of the registry: those this node took out, to sweep up after.
    async fn beat(&self, entry: &NodeEntry, sessions: &[Arc<str>]) -> RedisResult<Vec<String>> {
        let mut redis = self.redis.clone();
        let now = unix_ms();
        let lifetime = lifetime_ms(self.beat);
        let key = keys::node(&self.node_id);
        let mut pipe = redis::pipe();
        let fields = [
            ("http_address", entry.http_address.clone()),
            ("advertise_url", entry.advertise_url.clone()),
            ("started_ms", entry.started_ms.to_string()),
            ("sessions", entry.sessions.to_string()),
            ("voice_endpoint", entry.voice_endpoint.clone()),
            ("voice_rooms", entry.voice_rooms.to_string()),
            ("load", entry.load.to_string()),
            ("draining", u8::from(entry.draining).to_string()),
        ];
        pipe.hset_multiple(&key, &fields)
            .ignore()
            .pexpire(&key, i64::try_from(lifetime).unwrap_or(i64::MAX))
            .ignore()
            .zadd(keys::NODES, &*self.node_id, now)
            .ignore();
        // Its sessions' records live as long as its entry.
        for session_id in sessions {
            pipe.pexpire(
                keys::session(session_id),
                i64::try_from(lifetime).unwrap_or(i64::MAX),
            )
            .ignore();
        }
        pipe.exec_async(&mut redis).await?;
        // The dead: the node that takes one out of the set sweeps up after it.
        let dead: Vec<String> = redis
            .zrangebyscore(
                keys::NODES,
                "-inf",
                format!("({}", now.saturating_sub(lifetime)),
            )
            .await?;
        let mut swept = Vec::new();
        for node_id in dead {
            let removed: i64 = redis.zrem(keys::NODES, &node_id).await?;
            if removed == 1 {
                swept.push(node_id);
            }
        }
        let renewed: i64 = Script::new(RENEW)
            .key(keys::worker(u64::from(self.worker)))
            .arg(&*self.node_id)
            .arg(lifetime)
            .invoke_async(&mut redis)
            .await?;
        if renewed == 0 {
            tracing::error!(
                worker = self.worker,
                "another node holds this node's snowflake worker number: ids may collide; \
                 restart this node"
            );
        }
        Ok(swept)
    }

    async fn leave(&self) -> RedisResult<()> {
        let mut redis = self.redis.clone();
        redis::pipe()
            .del(keys::node(&self.node_id))
            .ignore()
            .zrem(keys::NODES, &*self.node_id)
            .ignore()
            .exec_async(&mut redis)
            .await?;
        let worker = keys::worker(u64::from(self.worker));
        super::lease::delete_if(&mut redis, &worker, &self.node_id).await
    }
}

/// The live nodes: those that beat within the last [`MISSED_BEATS`] beats.
pub(super) async fn live(
    redis: &mut ConnectionManager,
    beat: Duration,
) -> RedisResult<Vec<NodeEntry>> {
    let since = unix_ms().saturating_sub(lifetime_ms(beat));
    let ids: Vec<String> = redis.zrangebyscore(keys::NODES, since, "+inf").await?;
    let mut nodes = Vec::with_capacity(ids.len());
    for id in ids {
        let fields: HashMap<String, String> = redis.hgetall(keys::node(&id)).await?;
        // Gone since (it left, or its entry expired).
        if fields.is_empty() {
            continue;
        }
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        nodes.push(NodeEntry {
            id,
            http_address: field("http_address"),
            advertise_url: field("advertise_url"),
            started_ms: field("started_ms").parse().unwrap_or(0),
            sessions: field("sessions").parse().unwrap_or(0),
            voice_endpoint: field("voice_endpoint"),
            voice_rooms: field("voice_rooms").parse().unwrap_or(0),
            load: field("load").parse().unwrap_or(0),
            draining: field("draining") == "1",
        });
    }
    Ok(nodes)
}
