//! Guild ownership: one node in the cluster owns each guild's serialised state (voice states,
//! member lists, Go Live streams), by a lease on `own:g:{guild}` (see `super::lease`).
//!
//! A node claims the guilds it hears (those it has sessions, member lists or voice in) whose
//! lease is free, renews the ones it owns every third of `cluster.lease_ms`, and gives up those
//! it no longer hears, so another node that does can take them. Commands from other nodes
//! reach the owner on its node channel (`n:{node}`, [`Body::OwnerCommand`]) naming the epoch
//! they found; the owner answers on the asker's channel, or says it is not the owner under that
//! epoch, and the asker looks again.
//!
//! A node that cannot reach Redis for a lease's lifetime fences itself: it stops acting as
//! owner (its leases were not renewed, so Redis may give them to another node), and it tells its
//! gateway clients to reconnect (op 7): a node cut off from the bus hears nothing from the
//! others, and `/readyz` sends the clients to a node that does.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis::RedisError;
use spacebar_actors::interest::Topic;
use spacebar_actors::registry::ReconnectAll;
use spacebar_actors::sync;
use tokio::sync::oneshot;

use super::envelope::{Body, OwnerAnswer, OwnerCommand};
use super::lease::{self, Lease};
use super::publisher::Publisher;
use super::subscriber::Listening;
use super::{keys, Cluster};
use crate::state::AppState;

/// How long an asker waits for the owner's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Lease keys read at once when looking for free guilds to claim.
const CLAIM_CHUNK: usize = 512;

/// Who owns a guild's serialised state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node, under this epoch.
    Here(u64),
    There {
        node_id: String,
        epoch: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("the guild's owner did not answer in time")]
    Timeout,
    /// The lease is held (by this node in Redis, but not renewed in time; or it moved twice
    /// while asked): nobody acts as owner at this moment.
    #[error("no node acts as the guild's owner just now")]
    Unavailable,
}

/// This node's leases, and the questions it asked other owners.
pub struct Ownership {
    redis: ConnectionManager,
    node_id: Arc<str>,
    ttl: Duration,
    publisher: Publisher,
    leases: Mutex<HashMap<i64, Lease>>,
    asked: Mutex<HashMap<u64, oneshot::Sender<OwnerAnswer>>>,
    requests: AtomicU64,
    /// Stopping gracefully: gave its guilds up, takes none any more.
    leaving: AtomicBool,
}

impl Ownership {
    pub(super) fn new(
        redis: ConnectionManager,
        node_id: Arc<str>,
        ttl: Duration,
        publisher: Publisher,
    ) -> Self {
        Self {
            redis,
            node_id,
            ttl,
            publisher,
            leases: Mutex::default(),
            asked: Mutex::default(),
            requests: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
        }
    }

    /// The epoch under which this node owns `guild_id` now, if it may act as its owner.
    pub fn owns(&self, guild_id: i64) -> Option<u64> {
        let leases = sync::lock(&self.leases);
        let lease = leases.get(&guild_id)?;
        lease.is_valid().then(|| lease.epoch())
    }

    /// The guilds this node owns now, with their epochs.
    pub fn owned_guilds(&self) -> Vec<(i64, u64)> {
        let leases = sync::lock(&self.leases);
        leases
            .iter()
            .filter(|(_, lease)| lease.is_valid())
            .map(|(guild_id, lease)| (*guild_id, lease.epoch()))
            .collect()
    }

    /// How many guilds this node owns now.
    pub fn owned(&self) -> usize {
        let leases = sync::lock(&self.leases);
        leases.values().filter(|lease| lease.is_valid()).count()
    }

    /// Who owns `guild_id`; a free guild is taken by this node.
    pub async fn owner(&self, guild_id: i64) -> Result<Owner, OwnerError> {
        if let Some(epoch) = self.owns(guild_id) {
            return Ok(Owner::Here(epoch));
        }
        let key = keys::own_guild(guild_id);
        let mut redis = self.redis.clone();
        match lease::holder(&mut redis, &key).await? {
            Some((node_id, _)) if *node_id == *self.node_id => Err(OwnerError::Unavailable),
            Some((node_id, epoch)) => Ok(Owner::There { node_id, epoch }),
            None if self.leaving.load(Ordering::Acquire) => Err(OwnerError::Unavailable),
            None => match lease::acquire(&mut redis, &key, &self.node_id, self.ttl).await? {
                Some(lease) => Ok(Owner::Here(self.took(guild_id, lease))),
                // Taken meanwhile: by whom is for the next look.
                None => Err(OwnerError::Unavailable),
            },
        }
    }

    fn took(&self, guild_id: i64, lease: Lease) -> u64 {
        let epoch = lease.epoch();
        tracing::info!(guild_id, epoch, "this node owns the guild now");
        sync::lock(&self.leases).insert(guild_id, lease);
        epoch
    }

    /// The owner's answer to request `request` arrived.
    pub(super) fn answered(&self, request: u64, answer: OwnerAnswer) {
        if let Some(asker) = sync::lock(&self.asked).remove(&request) {
            let _ = asker.send(answer);
        }
    }

    /// Sends `command` to `node_id`, the owner under `epoch`, and waits for its answer.
    async fn ask_there(
        &self,
        node_id: &str,
        guild_id: i64,
        epoch: u64,
        command: OwnerCommand,
    ) -> Result<OwnerAnswer, OwnerError> {
        let request = self.requests.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        sync::lock(&self.asked).insert(request, answer);
        let body = Body::OwnerCommand {
            guild_id,
            epoch,
            asker: self.node_id.to_string(),
            request,
            command,
        };
        self.publisher
            .publish(vec![keys::node_channel(node_id)], body);
        let answer = tokio::time::timeout(ASK_TIMEOUT, answered).await;
        sync::lock(&self.asked).remove(&request);
        match answer {
            Ok(Ok(answer)) => Ok(answer),
            _ => Err(OwnerError::Timeout),
        }
    }

    /// Every third of a lease: checks that Redis answers (fencing this node when it has not
    /// for a lease's lifetime), renews the leases of guilds this node still hears, gives up the
    /// others, and claims the free guilds it hears.
    pub(super) async fn run(self: Arc<Self>, state: Weak<AppState>, listening: Listening) {
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reachable_until = lease::valid_until(Instant::now(), self.ttl);
        let mut fenced = false;
        loop {
            ticks.tick().await;
            if state.strong_count() == 0 || self.leaving.load(Ordering::Acquire) {
                return;
            }
            let sent = Instant::now();
            let mut redis = self.redis.clone();
            let ping = redis::cmd("PING");
            if let Ok(Ok(())) =
                tokio::time::timeout(self.ttl / 3, ping.exec_async(&mut redis)).await
            {
                reachable_until = lease::valid_until(sent, self.ttl);
                if std::mem::take(&mut fenced) {
                    tracing::info!("Redis answers again: this node may own guilds again");
                }
            } else {
                if !fenced && Instant::now() >= reachable_until {
                    fenced = true;
                    self.fence(&state).await;
                }
                // What would follow needs Redis too.
                continue;
            }
            let heard: HashSet<i64> = listening
                .topics()
                .into_iter()
                .filter_map(|topic| match topic {
                    Topic::Guild(guild_id) => Some(guild_id),
                    Topic::User(_) => None,
                })
                .collect();
            self.renew(&heard).await;
            if let Err(error) = self.claim(&heard).await {
                tracing::warn!(%error, "claiming free guilds failed");
            }
        }
    }

    /// This node could not reach Redis for a lease's lifetime: it owns nothing, and its
    /// clients go where the others can hear them.
    async fn fence(&self, state: &Weak<AppState>) {
        let owned = std::mem::take(&mut *sync::lock(&self.leases)).len();
        let Some(state) = state.upgrade() else { return };
        let told = state.tree.sessions.send(ReconnectAll).await.unwrap_or(0);
        tracing::error!(
            owned,
            sessions = told,
            "Redis unreachable for a lease's lifetime: this node stops owning guilds and its \
             sessions reconnect elsewhere"
        );
    }

    /// Renews the leases of the guilds in `heard`, gives up the others.
    async fn renew(&self, heard: &HashSet<i64>) {
        let held: Vec<(i64, Lease)> = sync::lock(&self.leases)
            .iter()
            .map(|(guild_id, lease)| (*guild_id, lease.clone()))
            .collect();
        let renewals = held.into_iter().map(|(guild_id, lease)| {
            let mut redis = self.redis.clone();
            async move {
                if !heard.contains(&guild_id) {
                    self.forget(guild_id, &lease);
                    let released = lease::release(&mut redis, &lease);
                    if let Ok(Err(error)) = tokio::time::timeout(self.ttl / 3, released).await {
                        tracing::warn!(%error, guild_id, "giving up a guild failed");
                    }
                    return;
                }
                if !lease::renew_held(&self.leases, &redis, guild_id, lease, self.ttl).await {
                    tracing::warn!(guild_id, "this node lost the guild's lease");
                }
            }
        });
        join_all(renewals).await;
    }

    /// Drops `lease` (if still the one held for `guild_id`).
    fn forget(&self, guild_id: i64, lease: &Lease) {
        lease::forget_held(&self.leases, guild_id, lease);
    }

    /// Takes the free leases of the guilds in `heard` that this node does not own.
    async fn claim(&self, heard: &HashSet<i64>) -> Result<(), RedisError> {
        let wanted: Vec<i64> = {
            let leases = sync::lock(&self.leases);
            heard
                .iter()
                .copied()
                .filter(|guild_id| !leases.contains_key(guild_id))
                .collect()
        };
        let mut redis = self.redis.clone();
        for chunk in wanted.chunks(CLAIM_CHUNK) {
            let names: Vec<String> = chunk.iter().map(|&g| keys::own_guild(g)).collect();
            let holders: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&names)
                .query_async(&mut redis)
                .await?;
            let free = chunk
                .iter()
                .zip(holders)
                .filter(|(_, holder)| holder.is_none());
            let claims = free.map(|(&guild_id, _)| {
                let mut redis = self.redis.clone();
                async move {
                    let key = keys::own_guild(guild_id);
                    let taken = lease::acquire(&mut redis, &key, &self.node_id, self.ttl).await;
                    if let Ok(Some(lease)) = taken {
                        self.took(guild_id, lease);
                    }
                }
            });
            join_all(claims).await;
        }
        Ok(())
    }

    /// Gives up every lease (a graceful stop: others take the guilds at once).
    pub(super) async fn release_all(&self) {
        self.leaving.store(true, Ordering::Release);
        if !lease::release_held(&self.leases, &self.redis, self.ttl / 3).await {
            tracing::warn!("giving up this node's guilds timed out: they lapse instead");
        }
    }
}

/// Has the owner of `guild_id` carry out `command`: this node if it owns the guild (or takes
/// it, free), else the owner, over its node channel.
pub async fn ask(
    state: &AppState,
    cluster: &Cluster,
    guild_id: i64,
    command: OwnerCommand,
) -> Result<OwnerAnswer, OwnerError> {
    // Once more if the owner changed between the look and the question.
    for _ in 0..2 {
        let answer = match cluster.ownership.owner(guild_id).await? {
            Owner::Here(_) => return Ok(execute(state, guild_id, command).await),
            Owner::There { node_id, epoch } => {
                let ownership = &cluster.ownership;
                ownership
                    .ask_there(&node_id, guild_id, epoch, command.clone())
                    .await?
            }
        };
        if !matches!(answer, OwnerAnswer::NotOwner) {
            return Ok(answer);
        }
    }
    Err(OwnerError::Unavailable)
}

/// Another node's command, as this node finds it: carried out if this node owns the guild
/// under `epoch`.
pub(super) async fn answer(
    state: &AppState,
    cluster: &Cluster,
    guild_id: i64,
    epoch: u64,
    command: OwnerCommand,
) -> OwnerAnswer {
    if cluster.ownership.owns(guild_id) != Some(epoch) {
        return OwnerAnswer::NotOwner;
    }
    execute(state, guild_id, command).await
}

async fn execute(state: &AppState, guild_id: i64, command: OwnerCommand) -> OwnerAnswer {
    match command {
        OwnerCommand::Voice { user_id, change } => {
            OwnerAnswer::Voice(super::voice::carry_out(state, guild_id, user_id, change).await)
        }
    }
}
