//! Cluster mode: several nodes behind a balancer act as one instance, sharing one PostgreSQL
//! (the truth) and one Redis (the bus). Off unless `cluster.redis_url` is set.
//!
//! A node delivers what it commits to its own sessions at once, as a single process does, and
//! publishes it once to the channel of the guild or user it concerns (`publisher`); the other
//! nodes listening there (those with a session that needs it, `subscriber`) deliver it to
//! theirs (`inbox`). Each node beats in a registry of the live nodes and holds a snowflake
//! worker number of its own (`nodes`). Channels and keys are named in `keys`; what travels is an
//! [`envelope::Envelope`]. docs/cluster.md tells the whole design and what each failure does.

pub mod calls;
mod envelope;
pub mod handoff;
mod inbox;
pub mod keys;
pub mod lease;
pub mod nodes;
pub mod ownership;
pub mod placement;
mod presence;
mod publisher;
mod subscriber;
pub mod voice;

pub use envelope::{Body, OwnerAnswer, OwnerCommand};

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion};
use spacebar_actors::guild::voice::DecideThrough;
use spacebar_actors::interest::{Interest, Topic};
use spacebar_actors::presence::Board;
use spacebar_actors::session::handover::Handover;
use tokio::sync::{mpsc, oneshot};

use crate::config::ClusterConfig;
use crate::events::{Event, Route};
use crate::state::AppState;
use calls::CallOwners;
use handoff::Handoffs;
use nodes::{Heartbeat, NodeEntry};
use ownership::Ownership;
use placement::Placement;
use presence::Presences;
use publisher::Publisher;
use subscriber::{Gap, Listening};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.redis_url: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(
        "cluster: every snowflake worker number is leased by a live node (at most {} nodes)",
        crate::snowflake::NODES
    )]
    NoWorkerNumber,
}

/// How long a Redis command may take before it counts as failed (the client's default, half a
/// second, takes a busy machine's pause for an outage; a failed publish makes sessions start
/// over).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What arrives for the inbox: messages, and the gaps recovery finds.
type Received = (
    mpsc::Receiver<redis::PushInfo>,
    mpsc::UnboundedReceiver<Gap>,
);

/// This node's part in the cluster.
pub struct Cluster {
    node_id: Arc<str>,
    /// Commands: shared rate limits, the node registry. One multiplexed connection that
    /// reconnects by itself.
    pub redis: ConnectionManager,
    publisher: Publisher,
    listening: Listening,
    /// Until [`Cluster::listen`]: what the subscriber connection receives, and the gaps
    /// recovery finds.
    inbox: std::sync::Mutex<Option<Received>>,
    overflowed: Arc<AtomicBool>,
    /// The snowflake worker number this node leased.
    worker: u16,
    beat: Duration,
    /// Until [`Cluster::listen`]: the heartbeat, which then runs until the node leaves.
    heartbeat: std::sync::Mutex<Option<Heartbeat>>,
    leave: mpsc::Sender<oneshot::Sender<()>>,
    presences: Arc<Presences>,
    handoffs: Arc<Handoffs>,
    /// The guilds this node owns, and commands to the owners of others.
    pub ownership: Arc<Ownership>,
    /// Where voice rooms are served.
    pub placement: Arc<Placement>,
    /// The DM calls this node owns, and the way to the owners of others.
    calls: Arc<CallOwners>,
    /// Guild voice states, decided by each guild's owner.
    pub voice: Arc<voice::VoiceStates>,
}

impl Cluster {
    /// Connects to Redis (two connections: commands and publishing, and the subscriber),
    /// leases a snowflake worker number, and starts publishing and subscribing on the current
    /// runtime.
    pub async fn connect(config: &ClusterConfig, node_id: Arc<str>) -> Result<Self, ClusterError> {
        // RESP3: messages arrive as pushes, and the manager resubscribes after a reconnect.
        let info = config.redis_url.as_str().into_connection_info()?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))?;
        let commands = ConnectionManagerConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut redis = ConnectionManager::new_with_config(client.clone(), commands).await?;
        let beat = Duration::from_millis(config.heartbeat_ms);
        let worker = nodes::lease_worker(&mut redis, &node_id, beat)
            .await?
            .ok_or(ClusterError::NoWorkerNumber)?;
        tracing::info!(node_id = %node_id, worker, "joined the cluster");
        let overflowed = Arc::new(AtomicBool::new(false));
        let (push, inbox) = Listening::inbox(overflowed.clone());
        let subscriber = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_push_sender(push)
            .set_automatic_resubscription();
        let subscriber = ConnectionManager::new_with_config(client, subscriber).await?;
        let (gaps, found) = mpsc::unbounded_channel();
        let (leave, leaving) = mpsc::channel(1);
        let heartbeat = Heartbeat {
            redis: redis.clone(),
            node_id: node_id.clone(),
            worker,
            beat,
            leaving,
        };
        let publisher = Publisher::start(redis.clone(), node_id.clone());
        // A node that does not hear the every-node channel would miss configuration changes
        // and bans made meanwhile: it is not part of the cluster before it does. Nor before it
        // hears its own, where other nodes ask it for its sessions, ask it as a guild's owner
        // and place voice rooms on it.
        let listening = Listening::start(subscriber, gaps);
        listening.hear(keys::EVERY_NODE.to_owned()).await;
        listening.hear(keys::node_channel(&node_id)).await;
        let ownership = Arc::new(Ownership::new(
            redis.clone(),
            node_id.clone(),
            Duration::from_millis(config.lease_ms),
            publisher.clone(),
        ));
        let placement = Arc::new(Placement::new(
            node_id.clone(),
            redis.clone(),
            publisher.clone(),
            beat,
            Duration::from_millis(config.lease_ms),
        ));
        let calls = Arc::new(CallOwners::new(
            redis.clone(),
            node_id.clone(),
            Duration::from_millis(config.lease_ms),
            beat,
            publisher.clone(),
        ));
        let voice = Arc::new(voice::VoiceStates::new(
            ownership.clone(),
            placement.clone(),
        ));
        Ok(Self {
            calls,
            handoffs: Arc::new(Handoffs::new(
                redis.clone(),
                node_id.clone(),
                publisher.clone(),
                nodes::lifetime_ms(beat),
            )),
            ownership,
            placement,
            voice,
            presences: Arc::new(Presences::start(
                redis.clone(),
                node_id.clone(),
                publisher.clone(),
            )),
            publisher,
            listening,
            node_id,
            redis,
            inbox: std::sync::Mutex::new(Some((inbox, found))),
            overflowed,
            worker,
            beat,
            heartbeat: std::sync::Mutex::new(Some(heartbeat)),
            leave,
        })
    }

    /// This node's name among the others.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Where guild actors and the session registry say what they need to hear.
    pub fn interest(&self) -> Arc<dyn Interest> {
        Arc::new(self.listening.clone())
    }

    /// The snowflake worker number this node holds (0 to `snowflake::NODES` - 1).
    pub fn worker(&self) -> u16 {
        self.worker
    }

    /// Where the session registry shares this node's part of its users' presences.
    pub fn board(&self) -> Arc<dyn Board> {
        self.presences.clone()
    }

    /// Starts handing what arrives to this node's sessions and beating in the node registry
    /// (once the server's state exists).
    pub fn listen(&self, state: Weak<AppState>) {
        if let Some(heartbeat) = spacebar_actors::sync::lock(&self.heartbeat).take() {
            tokio::spawn(heartbeat.run(state.clone()));
            let ownership = self
                .ownership
                .clone()
                .run(state.clone(), self.listening.clone());
            tokio::spawn(ownership);
            if let Some(state) = state.upgrade() {
                state.tree.admissions.relay_through(self.placement.relay());
                let owner = self.voice.owner(Arc::downgrade(&state));
                state.tree.guilds.do_send(DecideThrough(owner));
            }
            tokio::spawn(self.placement.clone().run(state.clone()));
            self.calls.run(&state);
            tokio::spawn(self.voice.clone().run(state.clone()));
        }
        let Some((inbox, gaps)) = spacebar_actors::sync::lock(&self.inbox).take() else {
            return;
        };
        let receiving = inbox::Inbox {
            state,
            node_id: self.node_id.clone(),
            listening: self.listening.clone(),
            overflowed: self.overflowed.clone(),
        };
        tokio::spawn(receiving.run(inbox, gaps));
    }

    /// Gives up the guilds this node owns, takes it out of the registry and gives its worker
    /// number back (a graceful stop).
    pub async fn leave(&self) {
        self.ownership.release_all().await;
        self.calls.release_all().await;
        let (done, left) = oneshot::channel();
        if self.leave.send(done).await.is_ok() {
            let _ = left.await;
        }
    }

    /// The live nodes, this one among them.
    pub async fn nodes(&self) -> redis::RedisResult<Vec<NodeEntry>> {
        nodes::live(&mut self.redis.clone(), self.beat).await
    }

    /// Whether Redis answers a PING `within`.
    pub async fn reachable(&self, within: Duration) -> bool {
        let mut redis = self.redis.clone();
        let ping = redis::cmd("PING");
        let answered = tokio::time::timeout(within, ping.exec_async(&mut redis)).await;
        matches!(answered, Ok(Ok(())))
    }

    /// Where sessions move between nodes (RESUME elsewhere, drain).
    pub fn handoffs(&self) -> Arc<Handoffs> {
        self.handoffs.clone()
    }

    /// Leaves the sessions a stopping node still holds in Redis, resumable by any node for
    /// `lifetime`.
    pub async fn park(&self, sessions: &[Handover], lifetime: Duration) -> redis::RedisResult<()> {
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.handoffs.park(sessions, lifetime_ms).await
    }

    /// Another node asked for a session of this one's: the answer.
    fn answer(&self, reply_to: &str, request_id: u64, handover: Option<Handover>) {
        self.handoffs.answer(reply_to, request_id, handover);
    }

    /// Another node answered a question of this one's.
    fn answered(&self, request_id: u64, handover: Option<Handover>) {
        self.handoffs.answered(request_id, handover);
    }

    /// Asks node `node_id` to drain.
    pub fn drain(&self, node_id: &str) {
        self.publisher
            .publish(vec![keys::node_channel(node_id)], Body::Drain);
    }

    /// Publishes `body` once to each of `topics`' channels.
    pub fn publish(&self, topics: impl IntoIterator<Item = Topic>, body: Body) {
        let channels = topics.into_iter().map(keys::channel).collect();
        self.publisher.publish(channels, body);
    }

    /// Publishes `body` to every node.
    pub fn publish_to_all(&self, body: Body) {
        self.publisher
            .publish(vec![keys::EVERY_NODE.to_owned()], body);
    }

    /// Publishes an event to the channels of those it concerns.
    pub fn publish_event(&self, event: &Event) {
        let topics = match event.route() {
            Route::Guild { guild_id, .. } => vec![Topic::Guild(guild_id)],
            Route::Users(users) => users.into_iter().map(Topic::User).collect(),
            Route::Joiner { user_id, .. } => vec![Topic::User(user_id)],
            Route::Nobody => Vec::new(),
        };
        if !topics.is_empty() {
            self.publish(topics, Body::Event(event.clone()));
        }
    }
}
