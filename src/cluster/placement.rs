//! Voice-room placement: each voice room (a guild channel's, a call's) is served by exactly one
//! live node, whichever node its participants' sessions are on.
//!
//! The lease `own:v:{room}` names the room's node. An op 4 join reads it: a live holder keeps
//! the room; otherwise the joining node picks the less loaded of two random live nodes and
//! takes the lease in that node's name (`SET NX`: of two racing joins one wins, and the other
//! reads the winner's choice). The chosen node hears so on its own channel ([`Body::Host`]) and
//! renews the lease while anyone is admitted to the room, so the lease lapses when that node
//! dies. VOICE_SERVER_UPDATE names the room node's voice endpoint, and admissions to the room
//! follow it there ([`Body::Seat`], see `Admissions`).
//!
//! Every third of a lease, each node checks the rooms its participants are in elsewhere: one
//! whose lease lapsed, or whose node left the registry, is lost. Its participants here hear
//! VOICE_SERVER_UPDATE with a null endpoint, then, once the room is placed again, the new
//! endpoint and a new token.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use redis::aio::ConnectionManager;
use spacebar_actors::sync;
use spacebar_actors::voice::{Admissions, Relay, RoomKey, RoomMoved, SeatChange};

use super::envelope::Body;
use super::keys;
use super::lease::{self, Lease};
use super::nodes::{self, NodeEntry};
use super::publisher::Publisher;
use crate::state::AppState;

/// How long a voice gateway IDENTIFY waits for its admission to arrive from the node that
/// admitted it.
pub const ADMISSION_PATIENCE: Duration = Duration::from_secs(5);

/// How long a room served here may have nobody admitted before its lease is given up (an
/// admission may still be on its way just after placing).
const EMPTY_FOR: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("no live node to serve voice")]
    NoNode,
    /// Held by a node that is gone, and not lapsed in time.
    #[error("voice room {0} is held by a node that is gone")]
    Unsettled(String),
}

/// A room served here.
struct Hosted {
    lease: Lease,
    /// Since when nobody has been admitted to it.
    empty_since: Option<Instant>,
}

/// This node's side of voice placement.
pub struct Placement {
    node_id: Arc<str>,
    redis: ConnectionManager,
    publisher: Publisher,
    beat: Duration,
    ttl: Duration,
    hosted: Mutex<HashMap<RoomKey, Hosted>>,
    /// Lost rooms being placed again (one task each).
    moving: Mutex<HashSet<RoomKey>>,
}

impl Placement {
    pub(super) fn new(
        node_id: Arc<str>,
        redis: ConnectionManager,
        publisher: Publisher,
        beat: Duration,
        ttl: Duration,
    ) -> Self {
        Self {
            node_id,
            redis,
            publisher,
            beat,
            ttl,
            hosted: Mutex::default(),
            moving: Mutex::default(),
        }
    }

    /// Where admissions to rooms served by other nodes go: those nodes' own channels.
    pub(super) fn relay(&self) -> Arc<dyn Relay> {
        Arc::new(NodeRelay(self.publisher.clone()))
    }

    /// Places `room` (see the module's comment) and answers its node's voice endpoint;
    /// admissions to it go there from now on.
    pub async fn place(
        &self,
        admissions: &Admissions,
        room: &RoomKey,
    ) -> Result<String, PlaceError> {
        let mut redis = self.redis.clone();
        let key = keys::own_room(&room.to_string());
        // A holder that is gone keeps the room until its lease lapses: exactly one node
        // serves a room, so the join waits for that.
        let deadline = Instant::now() + self.ttl + self.beat;
        loop {
            let live = nodes::live(&mut redis, self.beat).await?;
            match lease::holder(&mut redis, &key).await? {
                // A draining holder gives its rooms up soon: then the room is placed anew.
                Some((holder, _)) => {
                    if let Some(node) = live.iter().find(|n| n.id == holder && !n.draining) {
                        return Ok(self.settle(admissions, room, node));
                    }
                }
                None => {
                    let node = choose(&live).ok_or(PlaceError::NoNode)?;
                    if let Some(lease) =
                        lease::acquire(&mut redis, &key, &node.id, self.ttl).await?
                    {
                        tracing::info!(%room, node = %node.id, epoch = lease.epoch(), "voice room placed");
                        self.host(room, &node.id, lease);
                        return Ok(self.settle(admissions, room, node));
                    }
                    // Another join won the race: its choice is read next.
                    continue;
                }
            }
            if Instant::now() > deadline {
                return Err(PlaceError::Unsettled(room.to_string()));
            }
            tokio::time::sleep(self.ttl / 10).await;
        }
    }

    /// Admissions to `room` go to `node` (nowhere else if it is this one); its endpoint.
    fn settle(&self, admissions: &Admissions, room: &RoomKey, node: &NodeEntry) -> String {
        let elsewhere = (*node.id != *self.node_id).then(|| Arc::from(node.id.as_str()));
        admissions.served_by(room, elsewhere);
        node.voice_endpoint.clone()
    }

    /// `node` serves `room` now, under `lease`: this node renews it, or tells that node to.
    fn host(&self, room: &RoomKey, node: &str, lease: Lease) {
        if node == &*self.node_id {
            return self.adopt(room.clone(), lease);
        }
        let body = Body::Host {
            room: room.clone(),
            epoch: lease.epoch(),
        };
        self.publisher.publish(vec![keys::node_channel(node)], body);
    }

    /// Another node placed `room` here at `epoch`.
    pub(super) fn hosted_at(&self, room: RoomKey, epoch: u64) {
        let key = keys::own_room(&room.to_string());
        let lease = Lease::adopt(key, &self.node_id, epoch);
        self.adopt(room, lease);
    }

    fn adopt(&self, room: RoomKey, lease: Lease) {
        let hosted = Hosted {
            lease,
            empty_since: None,
        };
        sync::lock(&self.hosted).insert(room, hosted);
    }

    /// Renews the leases of the rooms served here and watches the rooms served elsewhere,
    /// every third of a lease, until the server is gone.
    pub(super) async fn run(self: Arc<Self>, state: Weak<AppState>) {
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            if state.node.is_draining() {
                self.give_up(&state.tree.admissions).await;
            }
            self.renew(&state.tree.admissions).await;
            match nodes::live(&mut self.redis.clone(), self.beat).await {
                Ok(live) => self.watch(&state, &live).await,
                Err(error) => {
                    tracing::warn!(%error, "voice placement: the node registry did not answer")
                }
            }
        }
    }

    /// Renews the lease of each room served here; gives up those nobody is admitted to, and
    /// stops serving those whose lease is lost (another node may serve them now).
    async fn renew(&self, admissions: &Admissions) {
        let rooms: Vec<(RoomKey, Hosted)> = sync::lock(&self.hosted).drain().collect();
        let mut redis = self.redis.clone();
        for (room, mut hosted) in rooms {
            if admissions.is_seated(&room) {
                hosted.empty_since = None;
            } else if hosted
                .empty_since
                .get_or_insert_with(Instant::now)
                .elapsed()
                > EMPTY_FOR
            {
                if let Err(error) = lease::release(&mut redis, &hosted.lease).await {
                    tracing::warn!(%error, %room, "a voice room's lease was not released");
                }
                continue;
            }
            let renewed = lease::renew(&mut redis, &mut hosted.lease, self.ttl).await;
            let keep = match renewed {
                Ok(renewed) => renewed,
                Err(error) => {
                    tracing::warn!(%error, %room, "a voice room's lease was not renewed");
                    hosted.lease.is_valid()
                }
            };
            if !keep {
                tracing::warn!(%room, "voice room lease lost: no longer served here");
                admissions.dismiss_room(&room);
                continue;
            }
            // Placed here again meanwhile: the newer lease stays.
            sync::lock(&self.hosted).entry(room).or_insert(hosted);
        }
    }

    /// This node is draining: it stops serving its rooms and gives their leases up, so the
    /// nodes of their participants place them elsewhere at once.
    pub async fn give_up(&self, admissions: &Admissions) {
        let rooms: Vec<(RoomKey, Hosted)> = sync::lock(&self.hosted).drain().collect();
        let mut redis = self.redis.clone();
        for (room, hosted) in rooms {
            tracing::info!(%room, "draining: voice room given up");
            admissions.dismiss_room(&room);
            if let Err(error) = lease::release(&mut redis, &hosted.lease).await {
                tracing::warn!(%error, %room, "a voice room's lease was not released");
            }
        }
    }

    /// Admissions from nodes that are gone end; rooms served by such nodes, or whose lease
    /// lapsed, are placed again.
    async fn watch(self: &Arc<Self>, state: &Arc<AppState>, live: &[NodeEntry]) {
        let admissions = &state.tree.admissions;
        let alive: HashSet<&str> = live.iter().map(|n| n.id.as_str()).collect();
        let serving: HashSet<&str> = live
            .iter()
            .filter(|n| !n.draining)
            .map(|n| n.id.as_str())
            .collect();
        admissions.dismiss_unless_from(|origin| alive.contains(origin));
        let mut redis = self.redis.clone();
        for (room, node) in admissions.served_elsewhere() {
            let key = keys::own_room(&room.to_string());
            let holder = match lease::holder(&mut redis, &key).await {
                Ok(holder) => holder,
                Err(error) => {
                    tracing::warn!(%error, "voice placement: a room's lease did not answer");
                    return;
                }
            };
            let served = holder.is_some_and(|(holder, _)| *holder == *node);
            if served && serving.contains(&*node) {
                continue;
            }
            if sync::lock(&self.moving).insert(room.clone()) {
                tracing::warn!(%room, %node, "voice room lost with its node: placing it again");
                tokio::spawn(self.clone().replace(Arc::downgrade(state), room));
            }
        }
    }

    /// `room`'s node is gone: its participants here hear a null endpoint, then the new one.
    async fn replace(self: Arc<Self>, state: Weak<AppState>, room: RoomKey) {
        if let Some(state) = state.upgrade() {
            moved(&state, &room, None);
        }
        loop {
            let Some(state) = state.upgrade() else { break };
            match self.place(&state.tree.admissions, &room).await {
                Ok(endpoint) => {
                    moved(&state, &room, Some(endpoint));
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, %room, "a lost voice room was not placed again")
                }
            }
            drop(state);
            tokio::time::sleep(self.ttl / 3).await;
        }
        sync::lock(&self.moving).remove(&room);
    }
}

/// Tells the guild's or the calls' actor that `room` moved.
fn moved(state: &AppState, room: &RoomKey, endpoint: Option<String>) {
    let moved = RoomMoved {
        room: room.clone(),
        endpoint,
    };
    match room {
        RoomKey::Guild { .. } => state.tree.guilds.do_send(moved),
        RoomKey::Call { .. } => state.tree.calls.do_send(moved),
        RoomKey::Stream { .. } => {}
    }
}

/// The less loaded of two random live nodes that are not draining.
fn choose(live: &[NodeEntry]) -> Option<&NodeEntry> {
    let open: Vec<&NodeEntry> = live.iter().filter(|n| !n.draining).collect();
    open.choose_multiple(&mut rand::rng(), 2)
        .min_by_key(|n| (n.load, n.voice_rooms))
        .copied()
}

/// Sends admissions over the serving node's own channel.
struct NodeRelay(Publisher);

impl Relay for NodeRelay {
    fn send(&self, node: &str, change: SeatChange) {
        self.0
            .publish(vec![keys::node_channel(node)], Body::Seat(change));
    }
}
