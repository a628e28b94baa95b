//! Publishing: one queue per node, drained in order by one task over one connection, so what a
//! node publishes reaches every listener in the order it was published (a permission change
//! before the message it governs). Each message is numbered per channel by a script that
//! increments the channel's counter and publishes in one step.
//!
//! The queue is bounded in bytes. What cannot be published (queue full, Redis away) is not
//! retried — it would arrive out of order — but remembered by channel, and once Redis answers
//! again each such channel gets a [`Body::Lost`] so its listeners start over.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::envelope::{Body, Envelope};
use super::keys;
use spacebar_actors::sync;

/// Increments the channel's counter and publishes the sequence number and the envelope together.
/// Counters expire a day after their last message (a channel quiet that long restarts at 1,
/// which listeners take as "may have missed something").
const PUBLISH: &str = r"
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('PUBLISH', ARGV[1], cmsgpack.pack(seq) .. ARGV[2])
return seq
";

/// How long a batch that has not gone out waits for Redis before it counts as lost.
const HOLD: Duration = Duration::from_secs(30);
/// Messages taken from the queue and sent as one pipeline.
const BATCH: usize = 256;
/// The most bytes waiting to be published; past it, messages are dropped (and their channels
/// told they lost something).
const QUEUE_BYTES: usize = 64 << 20;
/// The most channels remembered as having lost messages; past it, every node is told that
/// every channel may have.
const LOST_CHANNELS: usize = 10_000;

/// One envelope for one or more channels.
struct Outgoing {
    channels: Vec<String>,
    payload: Bytes,
}

/// The channels whose listeners must be told they lost messages.
#[derive(Default)]
struct Unsent {
    channels: HashSet<String>,
    /// Too many to remember: everything may have been lost.
    everything: bool,
    /// When the first of them was lost (Unix milliseconds).
    since_ms: Option<u64>,
}

impl Unsent {
    fn add(&mut self, channels: impl IntoIterator<Item = String>) {
        self.add_since(channels, unix_ms());
    }

    /// Puts back what a failed batch was to tell.
    fn merge(&mut self, other: Unsent) {
        if other.channels.is_empty() && !other.everything {
            return;
        }
        if other.everything {
            self.everything = true;
            self.channels.clear();
        }
        self.add_since(other.channels, other.since_ms.unwrap_or_else(unix_ms));
    }

    /// A [`Body::Lost`] for each channel that lost messages (one on the channel every node
    /// hears when there were too many to name).
    fn markers(&self, node_id: &str) -> Vec<(String, Vec<u8>)> {
        let at_ms = self.since_ms.unwrap_or_else(unix_ms);
        let marker = |everything| {
            Envelope::new(node_id, Body::Lost { at_ms, everything })
                .encode()
                .inspect_err(|error| tracing::error!(%error, "a Lost envelope did not encode"))
                .ok()
        };
        if self.everything {
            let all = keys::EVERY_NODE.to_owned();
            return marker(true)
                .map(|payload| vec![(all, payload)])
                .unwrap_or_default();
        }
        match marker(false) {
            Some(payload) if !self.channels.is_empty() => self
                .channels
                .iter()
                .map(|channel| (channel.clone(), payload.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn add_since(&mut self, channels: impl IntoIterator<Item = String>, at_ms: u64) {
        self.since_ms = Some(self.since_ms.map_or(at_ms, |since| since.min(at_ms)));
        for channel in channels {
            if self.channels.len() >= LOST_CHANNELS {
                self.everything = true;
                self.channels.clear();
                return;
            }
            if !self.everything {
                self.channels.insert(channel);
            }
        }
    }
}

#[derive(Clone)]
pub(super) struct Publisher {
    queue: mpsc::UnboundedSender<Outgoing>,
    queued_bytes: Arc<AtomicUsize>,
    unsent: Arc<Mutex<Unsent>>,
    node_id: Arc<str>,
}

impl Publisher {
    /// Starts the publishing task on the current runtime.
    pub(super) fn start(redis: ConnectionManager, node_id: Arc<str>) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let publisher = Self {
            queue,
            queued_bytes: Arc::default(),
            unsent: Arc::default(),
            node_id,
        };
        tokio::spawn(publisher.clone().drain(redis, receiver));
        publisher
    }

    /// Queues `body` for each of `channels` (encoded once).
    pub(super) fn publish(&self, channels: Vec<String>, body: Body) {
        if channels.is_empty() {
            return;
        }
        let payload = match Envelope::new(&self.node_id, body).encode() {
            Ok(payload) => Bytes::from(payload),
            Err(error) => {
                tracing::error!(%error, "an envelope did not encode");
                return;
            }
        };
        let size = payload.len() * channels.len();
        let queued = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if queued + size > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            tracing::error!("the cluster bus is behind: messages dropped, their listeners told");
            sync::lock(&self.unsent).add(channels);
            return;
        }
        let outgoing = Outgoing { channels, payload };
        if let Err(mpsc::error::SendError(outgoing)) = self.queue.send(outgoing) {
            // The task is gone (the server is stopping).
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            sync::lock(&self.unsent).add(outgoing.channels);
        }
    }

    /// Publishes what is queued, in order, a batch per round trip.
    async fn drain(
        self,
        mut redis: ConnectionManager,
        mut queue: mpsc::UnboundedReceiver<Outgoing>,
    ) {
        let script = redis::Script::new(PUBLISH);
        let mut loaded = false;
        let mut batch = Vec::with_capacity(BATCH);
        while queue.recv_many(&mut batch, BATCH).await > 0 {
            let size: usize = batch
                .iter()
                .map(|o| o.payload.len() * o.channels.len())
                .sum();
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            // Until the script is loaded nothing of the batch has gone out: it can wait for
            // Redis, in order, rather than be lost (for a while: then it counts as lost).
            let waiting = tokio::time::Instant::now();
            while !loaded && waiting.elapsed() < HOLD {
                loaded = script.prepare_invoke().load_async(&mut redis).await.is_ok();
                if !loaded {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            let mut pipe = redis::pipe();
            let lost = self.take_unsent();
            if loaded {
                for (channel, payload) in lost.markers(&self.node_id) {
                    publish(&mut pipe, script.get_hash(), &channel, &payload);
                }
                for outgoing in &batch {
                    for channel in &outgoing.channels {
                        publish(&mut pipe, script.get_hash(), channel, &outgoing.payload);
                    }
                }
            }
            let sent = loaded && pipe.exec_async(&mut redis).await.is_ok();
            if !sent {
                // Not known to be published (a timed-out batch may still run): not sent again,
                // which could repeat it out of order. A restarted Redis forgot the script too.
                loaded = false;
                tracing::warn!("Redis did not take a batch: its listeners will be told");
                {
                    let mut unsent = sync::lock(&self.unsent);
                    unsent.merge(lost);
                    unsent.add(batch.iter().flat_map(|o| o.channels.clone()));
                }
                // Give Redis a moment rather than spinning on a dead connection.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            batch.clear();
        }
    }

    /// The channels to tell they lost messages, taken from the list (a failed batch puts them
    /// back).
    fn take_unsent(&self) -> Unsent {
        std::mem::take(&mut *sync::lock(&self.unsent))
    }
}

pub(super) fn unix_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn publish(pipe: &mut redis::Pipeline, hash: &str, channel: &str, payload: &[u8]) {
    pipe.cmd("EVALSHA")
        .arg(hash)
        .arg(1)
        .arg(keys::sequence(channel))
        .arg(channel)
        .arg(payload)
        .ignore();
}
