//! Cluster mode: several nodes behind a balancer act as one instance, sharing one PostgreSQL
//! (the truth) and one Redis (the bus). Off unless `cluster.redis_url` is set.
//!
//! A node delivers what it commits to its own sessions at once, as a single process does, and
//! publishes it once to the channel of the guild or user it concerns (`publisher`); the other
//! nodes listening there (those with a session that needs it, `subscriber`) deliver it to
//! theirs (`inbox`). Channels and keys are named in `keys`; what travels is an
//! [`envelope::Envelope`]. docs/cluster.md tells the whole design and what each failure does.

mod envelope;
mod inbox;
pub mod keys;
mod presence;
mod publisher;
mod subscriber;

pub use envelope::Body;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion};
use spacebar_actors::interest::{Interest, Topic};
use spacebar_actors::presence::Board;
use tokio::sync::mpsc;

use crate::config::ClusterConfig;
use crate::events::{Event, Route};
use crate::state::AppState;
use presence::Presences;
use publisher::Publisher;
use subscriber::Listening;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster.redis_url: {0}")]
    Redis(#[from] redis::RedisError),
}

/// This node's part in the cluster.
pub struct Cluster {
    node_id: Arc<str>,
    /// Commands: shared rate limits, the node registry. One multiplexed connection that
    /// reconnects by itself.
    pub redis: ConnectionManager,
    publisher: Publisher,
    listening: Listening,
    /// Until [`Cluster::listen`]: what the subscriber connection receives.
    inbox: std::sync::Mutex<Option<mpsc::Receiver<redis::PushInfo>>>,
    overflowed: Arc<AtomicBool>,
    presences: Arc<Presences>,
}

impl Cluster {
    /// Connects to Redis (two connections: commands and publishing, and the subscriber) and
    /// starts publishing and subscribing on the current runtime.
    pub async fn connect(config: &ClusterConfig, node_id: &str) -> Result<Self, ClusterError> {
        // RESP3: messages arrive as pushes, and the manager resubscribes after a reconnect.
        let info = config.redis_url.as_str().into_connection_info()?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3))?;
        let redis = ConnectionManager::new(client.clone()).await?;
        let overflowed = Arc::new(AtomicBool::new(false));
        let (push, inbox) = Listening::inbox(overflowed.clone());
        let subscriber = ConnectionManagerConfig::new()
            .set_push_sender(push)
            .set_automatic_resubscription();
        let subscriber = ConnectionManager::new_with_config(client, subscriber).await?;
        let node_id: Arc<str> = node_id.into();
        let publisher = Publisher::start(redis.clone(), node_id.clone());
        Ok(Self {
            presences: Arc::new(Presences::start(
                redis.clone(),
                node_id.clone(),
                publisher.clone(),
            )),
            publisher,
            listening: Listening::start(subscriber),
            node_id,
            redis,
            inbox: std::sync::Mutex::new(Some(inbox)),
            overflowed,
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

    /// Where the session registry shares this node's part of its users' presences.
    pub fn board(&self) -> Arc<dyn Board> {
        self.presences.clone()
    }

    /// Starts handing what arrives to this node's sessions (once the server's state exists).
    pub fn listen(&self, state: Weak<AppState>) {
        let Some(inbox) = spacebar_actors::sync::lock(&self.inbox).take() else {
            return;
        };
        let receiving = inbox::Inbox {
            state,
            node_id: self.node_id.clone(),
            listening: self.listening.clone(),
            overflowed: self.overflowed.clone(),
        };
        tokio::spawn(receiving.run(inbox));
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
