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
            if !loaded {
                loaded = script.prepare_invoke().load_async(&mut redis).await.is_ok();
            }
            let mut pipe = redis::pipe();
            let (lost, since_ms) = self.take_unsent();
            if loaded {
                if let Some(payload) = lost_payload(&self.node_id, &lost, since_ms) {
                    for channel in &lost {
                        publish(&mut pipe, script.get_hash(), channel, &payload);
                    }
                }
                for outgoing in &batch {
                    for channel in &outgoing.channels {
                        publish(&mut pipe, script.get_hash(), channel, &outgoing.payload);
                    }
                }
            }
            let sent = loaded && pipe.exec_async(&mut redis).await.is_ok();
            if !sent {
                // Not known to be published: a restarted Redis also forgot the script.
                loaded = false;
                tracing::warn!("Redis did not take a batch: its listeners will be told");
                {
                    let mut unsent = sync::lock(&self.unsent);
                    unsent.add_since(lost, since_ms);
                    unsent.add(batch.iter().flat_map(|o| o.channels.clone()));
                }
                // Give Redis a moment rather than spinning on a dead connection.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            batch.clear();
        }
    }

    /// The channels to tell they lost messages, taken from the list (a failed batch puts them
    /// back): everything lost is told on the channel every node hears.
    fn take_unsent(&self) -> (Vec<String>, u64) {
        let unsent = std::mem::take(&mut *sync::lock(&self.unsent));
        let since_ms = unsent.since_ms.unwrap_or_else(unix_ms);
        if unsent.everything {
            (vec![keys::EVERY_NODE.to_owned()], since_ms)
        } else {
            (unsent.channels.into_iter().collect(), since_ms)
        }
    }
}

pub(super) fn unix_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The [`Body::Lost`] envelope, if there is anyone to tell.
fn lost_payload(node_id: &str, channels: &[String], at_ms: u64) -> Option<Vec<u8>> {
    if channels.is_empty() {
        return None;
    }
    Envelope::new(node_id, Body::Lost { at_ms })
        .encode()
        .inspect_err(|error| tracing::error!(%error, "a Lost envelope did not encode"))
        .ok()
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
