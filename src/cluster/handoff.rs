//! Sessions moving between nodes: a RESUME that reaches a node other than the session's home,
//! and a node draining.
//!
//! Each node records its sessions' home (`sess:{id}` → its node id, renewed with each beat, so
//! a dead node's records lapse). A node asked to resume a session it does not hold asks the
//! home over its node channel (`n:{node}`): first what the session is, then, once a copy here
//! hears what the session hears, to release it with what it kept (see
//! `spacebar_actors::session::handover`). A node that does not answer within [`ASKING`] is taken
//! for dead: the client starts over (op 9). A node that stops leaves each session it still
//! holds in `sessbuf:{id}` and marks its record drained: any node can take it from there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult};
use spacebar_actors::session::handover::Handover;
use spacebar_actors::sync;
use tokio::sync::oneshot;

use super::envelope::Body;
use super::keys;
use super::publisher::{unix_ms, Publisher};

/// How long a node waits for a session's home to answer.
const ASKING: Duration = Duration::from_secs(3);
/// A session record's value once its node drained (its session is in `sessbuf:{id}`).
const DRAINED: &str = "";

/// This node's side of sessions moving between nodes.
pub struct Handoffs {
    redis: ConnectionManager,
    node_id: Arc<str>,
    publisher: Publisher,
    /// How long a session's record outlives the beat that renewed it.
    record_ms: u64,
    next: AtomicU64,
    /// Questions to other nodes waiting for their answer, by number.
    asked: Mutex<HashMap<u64, oneshot::Sender<Option<Handover>>>>,
}

/// Where a session is, as its record says.
enum Home {
    /// Live on this node.
    Node(String),
    /// Left in Redis by a drained node.
    Drained,
}

impl Handoffs {
    pub(super) fn new(
        redis: ConnectionManager,
        node_id: Arc<str>,
        publisher: Publisher,
        record_ms: u64,
    ) -> Self {
        Self {
            redis,
            node_id,
            publisher,
            record_ms,
            next: AtomicU64::new(0),
            asked: Mutex::default(),
        }
    }

    async fn home(&self, session_id: &str) -> RedisResult<Option<Home>> {
        let home: Option<String> = self.redis.clone().get(keys::session(session_id)).await?;
        Ok(home.map(|home| match home.as_str() {
            DRAINED => Home::Drained,
            _ => Home::Node(home),
        }))
    }

    /// What the session is (without what it kept), from its home node or from Redis.
    pub async fn locate(&self, session_id: &str) -> RedisResult<Option<Handover>> {
        match self.home(session_id).await? {
            None => Ok(None),
            Some(Home::Node(home)) if *home == *self.node_id => Ok(None),
            Some(Home::Node(home)) => Ok(self.ask(&home, session_id, false).await),
            Some(Home::Drained) => {
                let parked: Option<Vec<u8>> = self
                    .redis
                    .clone()
                    .get(keys::session_buffer(session_id))
                    .await?;
                Ok(parked.and_then(|bytes| decode(&bytes)))
            }
        }
    }

    /// Takes the session from its home node or from Redis; this node is its home from now on.
    pub async fn release(&self, session_id: &str) -> RedisResult<Option<Handover>> {
        let released = match self.home(session_id).await? {
            None => None,
            Some(Home::Node(home)) if *home == *self.node_id => None,
            Some(Home::Node(home)) => self.ask(&home, session_id, true).await,
            Some(Home::Drained) => {
                let parked: Option<Vec<u8>> = redis::cmd("GETDEL")
                    .arg(keys::session_buffer(session_id))
                    .query_async(&mut self.redis.clone())
                    .await?;
                parked.and_then(|bytes| decode(&bytes))
            }
        };
        if released.is_some() {
            self.settle(session_id).await?;
        }
        Ok(released)
    }

    /// Asks `home` for the session over its node channel; `None` if it does not have it, or
    /// does not answer in time.
    async fn ask(&self, home: &str, session_id: &str, release: bool) -> Option<Handover> {
        // Taken for dead already (see `super::nodes`): no one will answer.
        let beat: Option<u64> = self.redis.clone().zscore(keys::NODES, home).await.ok()?;
        if beat.is_none_or(|at| at + self.record_ms < unix_ms()) {
            return None;
        }
        let request_id = self.next.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        sync::lock(&self.asked).insert(request_id, answer);
        let body = Body::HandoffRequest {
            session_id: session_id.to_owned(),
            release,
            reply_to: self.node_id.to_string(),
            request_id,
        };
        self.publisher.publish(vec![keys::node_channel(home)], body);
        let handover = tokio::time::timeout(ASKING, answered).await;
        sync::lock(&self.asked).remove(&request_id);
        match handover {
            Ok(Ok(handover)) => handover,
            _ => {
                tracing::info!(%home, "the session's home node did not answer: taken for dead");
                None
            }
        }
    }

    /// Another node answered a question of this one's.
    pub(super) fn answered(&self, request_id: u64, handover: Option<Handover>) {
        if let Some(waiting) = sync::lock(&self.asked).remove(&request_id) {
            let _ = waiting.send(handover);
        }
    }

    /// Answers another node's question.
    pub(super) fn answer(&self, reply_to: &str, request_id: u64, handover: Option<Handover>) {
        let body = Body::HandoffAnswer {
            request_id,
            handover,
        };
        self.publisher
            .publish(vec![keys::node_channel(reply_to)], body);
    }

    /// Records this node as the home of a session (that started here, or moved here).
    pub async fn settle(&self, session_id: &str) -> RedisResult<()> {
        redis::cmd("SET")
            .arg(keys::session(session_id))
            .arg(&*self.node_id)
            .arg("PX")
            .arg(self.record_ms)
            .exec_async(&mut self.redis.clone())
            .await
    }

    /// Leaves sessions this node stops with in Redis for `lifetime_ms`: any node can resume
    /// them from there.
    pub(super) async fn park(&self, sessions: &[Handover], lifetime_ms: u64) -> RedisResult<()> {
        let mut pipe = redis::pipe();
        for session in sessions {
            let bytes = match rmp_serde::to_vec_named(session) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::error!(%error, "a session did not encode: it cannot resume");
                    continue;
                }
            };
            pipe.cmd("SET")
                .arg(keys::session_buffer(&session.session_id))
                .arg(bytes)
                .arg("PX")
                .arg(lifetime_ms)
                .ignore()
                .cmd("SET")
                .arg(keys::session(&session.session_id))
                .arg(DRAINED)
                .arg("PX")
                .arg(lifetime_ms)
                .ignore();
        }
        pipe.exec_async(&mut self.redis.clone()).await
    }
}

fn decode(bytes: &[u8]) -> Option<Handover> {
    rmp_serde::from_slice(bytes)
        .inspect_err(|error| tracing::warn!(%error, "a parked session did not decode"))
        .ok()
}
