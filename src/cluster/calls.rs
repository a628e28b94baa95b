//! DM and group-DM calls in cluster mode: each call has one owner node, named by the lease
//! `own:c:{channel}` (see `super::lease`), taken by the first node that needs the call (a join,
//! a ring) and given up when the call ends. Every node's calls actor carries a change from its
//! sessions to the owner ([`Body::CallCommand`] on the owner's `n:{node}`; a node that no
//! longer owns the call passes it on to the one that does), the owner publishes the call's
//! events once to each recipient's `u:{user}` ([`Body::CallDispatch`]), and what concerns one
//! session (its voice admission, VOICE_SERVER_UPDATE, STREAM_* events) goes to that session's
//! node ([`Body::CallSeat`]).
//!
//! The owner stores the call (participants with their session and node, who is rung) under
//! `call:{channel}` after each change, only while it holds the lease at its epoch (one script
//! compares the lease first), and only the owner deletes it, with the lease, when the call
//! ends. When the owner dies its lease lapses; a node whose sessions are in the call takes it
//! (a higher epoch), reads the stored call and drops the participants whose node left the
//! registry: the others hear them leave, or CALL_DELETE if nobody is left.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use actix::Addr;
use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use serde_json::Value;
use spacebar_actors::call::{
    Adopt, CallBus, Calls, Disown, Owned, OwnerCall, Prune, SeatCall, SeatedElsewhere, StoredCall,
    UseBus,
};
use spacebar_actors::interest::Topic;
use spacebar_actors::{sync, EventName};
use tokio::sync::mpsc;

use super::envelope::Body;
use super::keys;
use super::lease::{self, Lease};
use super::nodes;
use super::publisher::Publisher;
use crate::state::AppState;

/// Writes the call (ARGV[2], for ARGV[3] ms) at KEYS[2] if the lease at KEYS[1] still holds
/// ARGV[1] (`node_id:epoch`): 1; else 0.
const SAVE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Deletes the call at KEYS[2] and its lease at KEYS[1] if the lease still holds ARGV[1].
const END: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2], KEYS[1])
  return 1
end
return 0
";

/// How long a stored call outlives its last write (a call nobody is left to take over).
const STORED_FOR: Duration = Duration::from_secs(24 * 3600);

/// How many times a command is passed on to the owner before it is dropped (the lease moved
/// while it travelled).
const HOPS: u8 = 2;

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("stored call: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// What this node's queue of call work holds, in order.
enum Job {
    /// A change for the call's owner.
    ToOwner {
        channel_id: i64,
        command: OwnerCall,
        hops: u8,
    },
    /// The owner's call as it is now (`None`: ended), the `number`th store asked for.
    Store {
        channel_id: i64,
        call: Option<StoredCall>,
        number: u64,
    },
}

/// Where the owner of a call was found.
enum Found {
    There {
        node_id: String,
        epoch: u64,
    },
    /// This node took the call: its lease, what the last owner stored, the live nodes.
    Took(Lease, Option<StoredCall>, HashSet<String>),
    /// Held by a node that is gone, or taken meanwhile: look again soon.
    NotYet,
}

/// This node's part in owning calls.
pub struct CallOwners {
    redis: ConnectionManager,
    node_id: Arc<str>,
    ttl: Duration,
    beat: Duration,
    publisher: Publisher,
    leases: lease::Held<i64>,
    jobs: mpsc::UnboundedSender<Job>,
    /// Until [`CallOwners::run`]: the queue's receiving end.
    queue: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// The number of the last store asked for, by call: only the last one is written.
    stores: Mutex<HashMap<i64, u64>>,
    numbers: AtomicU64,
    /// Stopping gracefully: gave its calls up, takes none any more.
    leaving: AtomicBool,
}

impl CallOwners {
    pub(super) fn new(
        redis: ConnectionManager,
        node_id: Arc<str>,
        ttl: Duration,
        beat: Duration,
        publisher: Publisher,
    ) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        Self {
            redis,
            node_id,
            ttl,
            beat,
            publisher,
            leases: Mutex::default(),
            jobs,
            queue: Mutex::new(Some(queue)),
            stores: Mutex::default(),
            numbers: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
        }
    }

    /// Whether this node may act as the owner of `channel_id`'s call now.
    fn owns(&self, channel_id: i64) -> bool {
        sync::lock(&self.leases)
            .get(&channel_id)
            .is_some_and(Lease::is_valid)
    }

    /// Hands the calls actor its way to the other nodes, and works for it until the server
    /// is gone: its queue in order, and every third of a lease the leases and the owners.
    pub(super) fn run(self: &Arc<Self>, state: &Weak<AppState>) {
        let Some(queue) = sync::lock(&self.queue).take() else {
            return;
        };
        if let Some(state) = state.upgrade() {
            state.tree.calls.do_send(UseBus {
                node_id: self.node_id.clone(),
                bus: self.clone(),
            });
        }
        tokio::spawn(self.clone().serve(state.clone(), queue));
        tokio::spawn(self.clone().watch(state.clone()));
    }

    async fn serve(
        self: Arc<Self>,
        state: Weak<AppState>,
        mut queue: mpsc::UnboundedReceiver<Job>,
    ) {
        while let Some(job) = queue.recv().await {
            let Some(calls) = state.upgrade().map(|state| state.tree.calls.clone()) else {
                return;
            };
            match job {
                Job::ToOwner {
                    channel_id,
                    command,
                    hops,
                } => self.route(&calls, channel_id, command, hops).await,
                Job::Store {
                    channel_id,
                    call,
                    number,
                } => self.store(&calls, channel_id, call, number).await,
            }
        }
    }

    /// Carries `command` to the owner of the call: this node's actor if it owns it or takes
    /// it (free), else the owner's node channel. A holder that is gone keeps the call until
    /// its lease lapses: the command waits for that.
    async fn route(&self, calls: &Addr<Calls>, channel_id: i64, command: OwnerCall, hops: u8) {
        let deadline = Instant::now() + self.ttl + self.beat * 3;
        loop {
            if self.owns(channel_id) {
                return calls.do_send(Owned {
                    channel_id,
                    command,
                });
            }
            match self.find(channel_id).await {
                Ok(Found::There { node_id, epoch }) => {
                    let body = Body::CallCommand {
                        channel_id,
                        epoch,
                        hops,
                        command,
                    };
                    return self
                        .publisher
                        .publish(vec![keys::node_channel(&node_id)], body);
                }
                Ok(Found::Took(lease, stored, live)) => {
                    tracing::info!(
                        channel_id,
                        epoch = lease.epoch(),
                        "this node owns the call now"
                    );
                    sync::lock(&self.leases).insert(channel_id, lease);
                    calls.do_send(Adopt {
                        channel_id,
                        stored,
                        live,
                    });
                    return calls.do_send(Owned {
                        channel_id,
                        command,
                    });
                }
                Ok(Found::NotYet) => {}
                Err(error) => tracing::warn!(%error, channel_id, "a call's owner was not found"),
            }
            if Instant::now() > deadline {
                tracing::warn!(channel_id, "a call's change was dropped: no owner in time");
                return;
            }
            tokio::time::sleep(self.ttl / 10).await;
        }
    }

    /// Who owns the call; a free call is taken by this node (with what was stored of it).
    async fn find(&self, channel_id: i64) -> Result<Found, CallError> {
        let mut redis = self.redis.clone();
        let key = keys::own_call(channel_id);
        let live: HashSet<String> = nodes::live(&mut redis, self.beat)
            .await?
            .into_iter()
            .map(|node| node.id)
            .collect();
        match lease::holder(&mut redis, &key).await? {
            Some((node_id, epoch)) if *node_id != *self.node_id && live.contains(&node_id) => {
                Ok(Found::There { node_id, epoch })
            }
            // Held by a node that is gone (or by this one, no longer valid): it lapses.
            Some(_) => Ok(Found::NotYet),
            None if self.leaving.load(Ordering::Acquire) => Ok(Found::NotYet),
            None => {
                let Some(lease) = lease::acquire(&mut redis, &key, &self.node_id, self.ttl).await?
                else {
                    return Ok(Found::NotYet);
                };
                match self.read(&mut redis, channel_id).await {
                    Ok(stored) => Ok(Found::Took(lease, stored, live)),
                    Err(error) => {
                        lease::release(&mut redis, &lease).await?;
                        Err(error.into())
                    }
                }
            }
        }
    }

    /// What the last owner stored of the call.
    async fn read(
        &self,
        redis: &mut ConnectionManager,
        channel_id: i64,
    ) -> Result<Option<StoredCall>, RedisError> {
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(keys::call(channel_id))
            .query_async(redis)
            .await?;
        Ok(bytes.and_then(|bytes| match rmp_serde::from_slice(&bytes) {
            Ok(stored) => Some(stored),
            Err(error) => {
                tracing::error!(%error, channel_id, "a stored call did not decode: it starts over");
                None
            }
        }))
    }

    /// Writes the call as its owner has it (or deletes it with the lease, ended), if this is
    /// the last store asked for and this node still holds the lease at its epoch.
    async fn store(
        &self,
        calls: &Addr<Calls>,
        channel_id: i64,
        call: Option<StoredCall>,
        number: u64,
    ) {
        if sync::lock(&self.stores).get(&channel_id) != Some(&number) {
            return;
        }
        let lease = sync::lock(&self.leases)
            .get(&channel_id)
            .filter(|lease| lease.is_valid())
            .cloned();
        if let Some(lease) = lease {
            let ended = call.is_none();
            match self.write(&lease, channel_id, call).await {
                Ok(true) if ended => lease::forget_held(&self.leases, channel_id, &lease),
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(channel_id, "this node lost the call's lease");
                    lease::forget_held(&self.leases, channel_id, &lease);
                    calls.do_send(Disown { channel_id });
                }
                Err(error) => tracing::warn!(%error, channel_id, "a call was not stored"),
            }
        }
        let mut stores = sync::lock(&self.stores);
        if stores.get(&channel_id) == Some(&number) {
            stores.remove(&channel_id);
        }
    }

    /// The fenced write: whether the lease was still this node's at its epoch.
    async fn write(
        &self,
        lease: &Lease,
        channel_id: i64,
        call: Option<StoredCall>,
    ) -> Result<bool, CallError> {
        let mut redis = self.redis.clone();
        let script = match &call {
            Some(_) => Script::new(SAVE),
            None => Script::new(END),
        };
        let mut invocation = script.key(lease.key());
        invocation.key(keys::call(channel_id)).arg(lease.value());
        if let Some(call) = &call {
            let millis = u64::try_from(STORED_FOR.as_millis()).unwrap_or(u64::MAX);
            invocation.arg(rmp_serde::to_vec_named(call)?).arg(millis);
        }
        let written: i64 = invocation.invoke_async(&mut redis).await?;
        Ok(written == 1)
    }

    /// Every third of a lease: renews this node's calls' leases, has the calls it owns drop
    /// the participants of nodes that are gone, and takes over the calls its sessions are in
    /// whose owner's lease lapsed.
    async fn watch(self: Arc<Self>, state: Weak<AppState>) {
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(calls) = state.upgrade().map(|state| state.tree.calls.clone()) else {
                return;
            };
            if self.leaving.load(Ordering::Acquire) {
                return;
            }
            self.renew(&calls).await;
            let mut redis = self.redis.clone();
            match nodes::live(&mut redis, self.beat).await {
                // A registry that lacks this very node is no judge of who is gone.
                Ok(live) if live.iter().any(|node| *node.id == *self.node_id) => {
                    calls.do_send(Prune {
                        live: live.into_iter().map(|node| node.id).collect(),
                    });
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "calls: the node registry did not answer"),
            }
            let seated = calls.send(SeatedElsewhere).await.unwrap_or_default();
            for channel_id in seated {
                if self.owns(channel_id) {
                    continue;
                }
                let key = keys::own_call(channel_id);
                if let Ok(None) = lease::holder(&mut redis, &key).await {
                    tracing::warn!(channel_id, "a call's owner is gone: taking the call over");
                    let _ = self.jobs.send(Job::ToOwner {
                        channel_id,
                        command: OwnerCall::TakeOver,
                        hops: 0,
                    });
                }
            }
        }
    }

    /// Renews the leases of the calls this node owns; a lost one is no longer acted on.
    async fn renew(&self, calls: &Addr<Calls>) {
        let held: Vec<(i64, Lease)> = sync::lock(&self.leases)
            .iter()
            .map(|(channel_id, lease)| (*channel_id, lease.clone()))
            .collect();
        let renewals = held.into_iter().map(|(channel_id, lease)| async move {
            if !lease::renew_held(&self.leases, &self.redis, channel_id, lease, self.ttl).await {
                tracing::warn!(channel_id, "this node lost the call's lease");
                calls.do_send(Disown { channel_id });
            }
        });
        join_all(renewals).await;
    }

    /// Another node sent a change for the owner of `channel_id`'s call (found at `epoch`):
    /// carried out here if this node owns the call now, else passed on to the owner.
    pub(super) fn received(
        &self,
        calls: &Addr<Calls>,
        channel_id: i64,
        epoch: u64,
        hops: u8,
        command: OwnerCall,
    ) {
        if self.owns(channel_id) {
            return calls.do_send(Owned {
                channel_id,
                command,
            });
        }
        if hops >= HOPS {
            return tracing::warn!(channel_id, epoch, "a call's change found no owner: dropped");
        }
        let _ = self.jobs.send(Job::ToOwner {
            channel_id,
            command,
            hops: hops + 1,
        });
    }

    /// Gives up every call's lease (a graceful stop): the nodes of their other participants
    /// take them over from what is stored, without waiting for a lapse.
    pub(super) async fn release_all(&self) {
        self.leaving.store(true, Ordering::Release);
        if !lease::release_held(&self.leases, &self.redis, self.ttl / 3).await {
            tracing::warn!("giving up this node's calls timed out: they lapse instead");
        }
    }
}

impl CallBus for CallOwners {
    fn to_owner(&self, channel_id: i64, command: OwnerCall) {
        let job = Job::ToOwner {
            channel_id,
            command,
            hops: 0,
        };
        if self.jobs.send(job).is_err() {
            tracing::warn!(channel_id, "calls: the queue is gone (stopping)");
        }
    }

    fn tell(&self, users: &[i64], event: EventName, d: &Value) {
        let channels = users
            .iter()
            .map(|user_id| keys::channel(Topic::User(*user_id)))
            .collect();
        let body = Body::CallDispatch {
            event,
            d: d.clone(),
        };
        self.publisher.publish(channels, body);
    }

    fn to_seat(&self, node: &str, command: SeatCall) {
        self.publisher
            .publish(vec![keys::node_channel(node)], Body::CallSeat(command));
    }

    fn store(&self, channel_id: i64, call: Option<StoredCall>) {
        let number = self.numbers.fetch_add(1, Ordering::Relaxed);
        sync::lock(&self.stores).insert(channel_id, number);
        let job = Job::Store {
            channel_id,
            call,
            number,
        };
        if self.jobs.send(job).is_err() {
            tracing::warn!(channel_id, "calls: the queue is gone (stopping)");
        }
    }
}
