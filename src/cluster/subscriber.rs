//! Listening: one subscriber connection per node, subscribed to the channels of the guilds and
//! users this node holds sessions for (the guild actors and the session registry say which,
//! through [`Interest`]), and to the channel every node hears.
//!
//! Pub/sub is at most once, so each channel's messages are numbered: a listener that sees a
//! number skipped, or learns after a reconnect that the counter moved past what it saw, knows
//! it missed something, and the sessions that depended on that channel start over.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind};
use spacebar_actors::interest::{Interest, Topic};
use spacebar_actors::sync;
use tokio::sync::{mpsc, oneshot};

use super::keys;

/// Messages received and not yet handled; past it, the node stops trusting what it heard and
/// checks every channel (see [`Listening::recover`]).
pub(super) const INBOX: usize = 65_536;

/// What a channel's listener knows.
#[derive(Default)]
struct Heard {
    /// The number of the last message seen, if any was.
    last: Option<u64>,
}

/// What recovery found missed.
pub(super) enum Gap {
    /// `topic`'s listeners may have missed events, some time before the moment given.
    Topic(Topic, SystemTime),
    /// Recovery is done: what every node applies (configuration, bans) may have been missed.
    Shared,
}

/// The channels this node listens to, shared by the task that subscribes and the one that
/// reads what arrives.
#[derive(Default)]
pub(super) struct Channels {
    heard: Mutex<HashMap<String, Heard>>,
    /// Channels whose SUBSCRIBE failed: retried when Redis answers again.
    pending: Mutex<HashSet<String>>,
    recovering: AtomicBool,
}

impl Channels {
    /// Notes message `seq` on `channel`: whether one was missed before it. Messages of a
    /// channel no longer listened to are dropped (`None`).
    pub(super) fn arrived(&self, channel: &str, seq: u64) -> Option<bool> {
        let mut heard = sync::lock(&self.heard);
        let known = heard.get_mut(channel)?;
        // A counter that went back means Redis restarted: what happened between is unknown.
        let missed = known.last.is_some_and(|last| seq != last + 1);
        known.last = Some(seq);
        Some(missed)
    }
}

enum Control {
    Watch(String, oneshot::Sender<()>),
    Unwatch(String),
}

/// The node's listening side: where guilds and sessions say what they need.
#[derive(Clone)]
pub(super) struct Listening {
    control: mpsc::UnboundedSender<Control>,
    pub(super) channels: Arc<Channels>,
    subscriber: ConnectionManager,
    /// Where recovery reports what it found missed (the inbox acts on it).
    gaps: mpsc::UnboundedSender<Gap>,
}

impl Listening {
    /// Starts the task that subscribes and unsubscribes, in the order asked, on the current
    /// runtime. Gaps found go to `gaps`.
    pub(super) fn start(subscriber: ConnectionManager, gaps: mpsc::UnboundedSender<Gap>) -> Self {
        let (control, orders) = mpsc::unbounded_channel();
        let listening = Self {
            control,
            channels: Arc::default(),
            subscriber: subscriber.clone(),
            gaps,
        };
        tokio::spawn(listening.clone().obey(orders));
        listening
    }

    /// Starts hearing a channel for as long as the node runs (the one every node hears, the
    /// node's own); resolves once it does.
    pub(super) async fn hear(&self, channel: String) {
        let (done, subscribed) = oneshot::channel();
        let _ = self.control.send(Control::Watch(channel, done));
        let _ = subscribed.await;
    }

    async fn obey(self, mut orders: mpsc::UnboundedReceiver<Control>) {
        let mut redis = self.subscriber.clone();
        while let Some(order) = orders.recv().await {
            match order {
                Control::Watch(channel, done) => {
                    sync::lock(&self.channels.heard).insert(channel.clone(), Heard::default());
                    if let Err(error) = redis.subscribe(&channel).await {
                        tracing::warn!(%error, %channel, "subscribing failed: retried later");
                        sync::lock(&self.channels.pending).insert(channel);
                        self.recover();
                    }
                    let _ = done.send(());
                }
                Control::Unwatch(channel) => {
                    sync::lock(&self.channels.heard).remove(&channel);
                    sync::lock(&self.channels.pending).remove(&channel);
                    if let Err(error) = redis.unsubscribe(&channel).await {
                        tracing::warn!(%error, %channel, "unsubscribing failed");
                    }
                }
            }
        }
    }

    /// The guilds and users this node listens to.
    pub(super) fn topics(&self) -> Vec<Topic> {
        let heard = sync::lock(&self.channels.heard);
        heard
            .keys()
            .filter_map(|channel| keys::topic(channel))
            .collect()
    }

    /// After the subscriber connection dropped (or the inbox overflowed): once Redis answers,
    /// subscribes what failed, then compares each channel's counter with the last message
    /// seen; every channel that moved on has lost messages. Runs once at a time.
    pub(super) fn recover(&self) {
        if self.channels.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        let (channels, mut redis) = (self.channels.clone(), self.subscriber.clone());
        let gaps = self.gaps.clone();
        tokio::spawn(async move {
            // Answering means reconnected, and the manager resubscribed before anything else.
            while redis::cmd("PING").exec_async(&mut redis).await.is_err() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let pending: Vec<String> = sync::lock(&channels.pending).drain().collect();
            for channel in pending {
                if redis.subscribe(&channel).await.is_err() {
                    sync::lock(&channels.pending).insert(channel.clone());
                }
                // It was not heard for a while: its listeners may have missed anything.
                if let Some(topic) = keys::topic(&channel) {
                    let _ = gaps.send(Gap::Topic(topic, SystemTime::now()));
                }
            }
            let seen: Vec<(String, Option<u64>)> = sync::lock(&channels.heard)
                .iter()
                .filter(|(channel, _)| keys::topic(channel).is_some())
                .map(|(channel, heard)| (channel.clone(), heard.last))
                .collect();
            for chunk in seen.chunks(512) {
                let names: Vec<String> = chunk.iter().map(|(c, _)| keys::sequence(c)).collect();
                let now: Vec<Option<u64>> =
                    match redis::cmd("MGET").arg(&names).query_async(&mut redis).await {
                        Ok(now) => now,
                        // Unknown: assume the worst.
                        Err(_) => vec![Some(u64::MAX); chunk.len()],
                    };
                for ((channel, last), now) in chunk.iter().zip(now) {
                    let now = now.unwrap_or(0);
                    if now == last.unwrap_or(0) {
                        continue;
                    }
                    if let Some(topic) = keys::topic(channel) {
                        let _ = gaps.send(Gap::Topic(topic, SystemTime::now()));
                    }
                    // Told once: the next message is numbered from here (unless one came since).
                    if let Some(heard) = sync::lock(&channels.heard).get_mut(channel) {
                        if heard.last == *last {
                            heard.last = Some(now);
                        }
                    }
                }
            }
            let _ = gaps.send(Gap::Shared);
            channels.recovering.store(false, Ordering::Release);
        });
    }

    /// The push sender for the subscriber connection: hands messages to the inbox without
    /// waiting; a full inbox, or a dropped connection, starts recovery.
    pub(super) fn inbox(
        overflowed: Arc<AtomicBool>,
    ) -> (
        impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static,
        mpsc::Receiver<PushInfo>,
    ) {
        let (sender, receiver) = mpsc::channel(INBOX);
        let push = move |info: PushInfo| {
            if matches!(info.kind, PushKind::Message | PushKind::Disconnection)
                && sender.try_send(info).is_err()
            {
                overflowed.store(true, Ordering::Release);
            }
            Ok(())
        };
        (push, receiver)
    }
}

impl Interest for Listening {
    fn shared(&self) -> bool {
        true
    }

    fn watch(&self, topic: Topic) -> BoxFuture<'static, ()> {
        let (done, subscribed) = oneshot::channel();
        let _ = self
            .control
            .send(Control::Watch(keys::channel(topic), done));
        Box::pin(async move {
            let _ = subscribed.await;
        })
    }

    fn unwatch(&self, topic: Topic) {
        let _ = self.control.send(Control::Unwatch(keys::channel(topic)));
    }
}
