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
//!
//! A rooms-service room (`/rooms/ws`) is placed the same way under its own lease, `own:r:{room}`
//! ([`Placed::Rooms`]): a token names its node's socket, a socket on another node is sent
//! there, and the lease is renewed while the room is live on its node. Nobody watches such a
//! room from elsewhere: when its node dies the lease lapses and the next token or join places
//! it anew.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use spacebar_actors::rooms::api::{CloseRoom, Occupancy};
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
    #[error("no live node to serve the room")]
    NoNode,
    /// Held by a node that is gone, and not lapsed in time.
    #[error("room {0} is held by a node that is gone")]
    Unsettled(String),
}

/// What a lease places on one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Placed {
    /// A voice room (`own:v:{room}`).
    Voice(RoomKey),
    /// A rooms-service room, by id (`own:r:{room}`).
    Rooms(String),
}

impl Placed {
    fn lease_key(&self) -> String {
        match self {
            Self::Voice(room) => keys::own_room(&room.to_string()),
            Self::Rooms(room) => keys::own_rooms_room(room),
        }
    }
}

impl fmt::Display for Placed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Voice(room) => write!(f, "voice room {room}"),
            Self::Rooms(room) => write!(f, "room {room}"),
        }
    }
}

/// The node serving a rooms-service room.
#[derive(Debug, Clone)]
pub struct RoomsNode {
    /// It is this node.
    pub here: bool,
    /// Its signalling socket (`ws(s)://…/rooms/ws`).
    pub socket: String,
    /// Its HTTP base URL, for the rooms API.
    pub base: String,
}

impl RoomsNode {
    fn of(node: &NodeEntry, this: &str) -> Self {
        let base = node.base_url();
        Self {
            here: node.id == this,
            socket: format!("{}/rooms/ws", ws_scheme(&base)),
            base,
        }
    }
}

/// `url` with its HTTP scheme made the WebSocket one.
fn ws_scheme(url: &str) -> String {
    match url.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some(("http", rest)) => format!("ws://{rest}"),
        _ => url.to_owned(),
    }
}

/// A room served here.
struct Hosted {
    lease: Lease,
    /// Since when nobody has been admitted to it.
    empty_since: Option<Instant>,
}

/// This node's side of voice placement.
pub struct Placement {
    pub(super) node_id: Arc<str>,
    pub(super) redis: ConnectionManager,
    pub(super) publisher: Publisher,
    pub(super) beat: Duration,
    pub(super) ttl: Duration,
    hosted: Mutex<HashMap<Placed, Hosted>>,
    /// Lost rooms being placed again (one task each).
    moving: Mutex<HashSet<RoomKey>>,
    /// Draining: rooms are no longer placed here (before the registry says so).
    leaving: AtomicBool,
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
            leaving: AtomicBool::new(false),
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
        let node = self.locate(&Placed::Voice(room.clone())).await?;
        Ok(self.settle(admissions, room, &node))
    }

    /// Places the rooms-service room `room` (see the module's comment): the node serving it.
    pub async fn place_rooms(&self, room: &str) -> Result<RoomsNode, PlaceError> {
        let node = self.locate(&Placed::Rooms(room.to_owned())).await?;
        Ok(RoomsNode::of(&node, &self.node_id))
    }

    /// The live node serving the rooms-service room `room`, if one does (without placing it).
    pub async fn rooms_node(&self, room: &str) -> Result<Option<RoomsNode>, PlaceError> {
        let mut redis = self.redis.clone();
        let key = Placed::Rooms(room.to_owned()).lease_key();
        let Some((holder, _)) = lease::holder(&mut redis, &key).await? else {
            return Ok(None);
        };
        let live = nodes::live(&mut redis, self.beat).await?;
        Ok(live
            .iter()
            .find(|n| n.id == holder)
            .map(|node| RoomsNode::of(node, &self.node_id)))
    }

    /// The live node serving `placed`: its lease's holder, or else the node this one places it
    /// on (see the module's comment).
    async fn locate(&self, placed: &Placed) -> Result<NodeEntry, PlaceError> {
        let mut redis = self.redis.clone();
        let key = placed.lease_key();
        // A holder that is gone keeps the room until its lease lapses: exactly one node
        // serves a room, so the join waits for that.
        let deadline = Instant::now() + self.ttl + self.beat;
        loop {
            let mut live = nodes::live(&mut redis, self.beat).await?;
            if self.leaving.load(Ordering::Acquire) {
                live.retain(|n| *n.id != *self.node_id);
            }
            match lease::holder(&mut redis, &key).await? {
                // A draining holder gives its rooms up soon: then the room is placed anew.
                Some((holder, _)) => {
                    if let Some(node) = live.into_iter().find(|n| n.id == holder && !n.draining) {
                        return Ok(node);
                    }
                }
                None => {
                    let node = choose(&live).ok_or(PlaceError::NoNode)?;
                    if let Some(lease) =
                        lease::acquire(&mut redis, &key, &node.id, self.ttl).await?
                    {
                        tracing::info!(%placed, node = %node.id, epoch = lease.epoch(), "room placed");
                        self.host(placed, &node.id, lease);
                        let id = node.id.clone();
                        return live
                            .into_iter()
                            .find(|n| n.id == id)
                            .ok_or(PlaceError::NoNode);
                    }
                    // Another join won the race: its choice is read next.
                    continue;
                }
            }
            if Instant::now() > deadline {
                return Err(PlaceError::Unsettled(placed.to_string()));
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
    fn host(&self, room: &Placed, node: &str, lease: Lease) {
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
    pub(super) fn hosted_at(&self, room: Placed, epoch: u64) {
        let lease = Lease::adopt(room.lease_key(), &self.node_id, epoch);
        self.adopt(room, lease);
    }

    fn adopt(&self, room: Placed, lease: Lease) {
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
                self.give_up(&state).await;
            }
            self.renew(&state).await;
            match nodes::live(&mut self.redis.clone(), self.beat).await {
                Ok(live) => self.watch(&state, &live).await,
                Err(error) => {
                    tracing::warn!(%error, "voice placement: the node registry did not answer")
                }
            }
        }
    }

    /// Renews the lease of each room served here; gives up those not in use (nobody admitted
    /// to a voice room, a rooms-service room not live here), and stops serving those whose
    /// lease is lost (another node may serve them now).
    async fn renew(self: &Arc<Self>, state: &Arc<AppState>) {
        let rooms: Vec<(Placed, Hosted)> = sync::lock(&self.hosted).drain().collect();
        let live = live_rooms(state, &rooms).await;
        let mut redis = self.redis.clone();
        for (room, mut hosted) in rooms {
            let in_use = match &room {
                Placed::Voice(voice) => state.tree.admissions.is_seated(voice),
                Placed::Rooms(id) => live.contains_key(id),
            };
            if in_use {
                hosted.empty_since = None;
            } else if hosted
                .empty_since
                .get_or_insert_with(Instant::now)
                .elapsed()
                > EMPTY_FOR
            {
                if let Err(error) = lease::release(&mut redis, &hosted.lease).await {
                    tracing::warn!(%error, %room, "a room's lease was not released");
                }
                continue;
            }
            let renewed = lease::renew(&mut redis, &mut hosted.lease, self.ttl).await;
            let keep = match renewed {
                Ok(renewed) => renewed,
                Err(error) => {
                    tracing::warn!(%error, %room, "a room's lease was not renewed");
                    hosted.lease.is_valid()
                }
            };
            if !keep {
                tracing::warn!(%room, "room lease lost: no longer served here");
                self.stop_serving(state, &room);
                continue;
            }
            // Placed here again meanwhile: the newer lease stays.
            sync::lock(&self.hosted).entry(room).or_insert(hosted);
        }
    }

    /// This node is draining: it stops serving its rooms and gives their leases up, so the
    /// nodes of their participants place them elsewhere at once.
    pub async fn give_up(self: &Arc<Self>, state: &Arc<AppState>) {
        self.leaving.store(true, Ordering::Release);
        let rooms: Vec<(Placed, Hosted)> = sync::lock(&self.hosted).drain().collect();
        let mut redis = self.redis.clone();
        for (room, hosted) in rooms {
            tracing::info!(%room, "draining: room given up");
            // Released first: placed again, it goes elsewhere at once.
            if let Err(error) = lease::release(&mut redis, &hosted.lease).await {
                tracing::warn!(%error, %room, "a room's lease was not released");
            }
            self.stop_serving(state, &room);
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
            let key = Placed::Voice(room.clone()).lease_key();
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

    /// This node no longer serves `room`: its connections here end. A voice room is placed
    /// again for its participants whose tokens this node made (as a guild's owner, or for a
    /// call): they hear a null endpoint, then the new one.
    fn stop_serving(self: &Arc<Self>, state: &Arc<AppState>, room: &Placed) {
        match room {
            Placed::Voice(voice) => {
                state.tree.admissions.dismiss_room(voice);
                if sync::lock(&self.moving).insert(voice.clone()) {
                    tokio::spawn(self.clone().replace(Arc::downgrade(state), voice.clone()));
                }
            }
            Placed::Rooms(id) => state.tree.rooms.do_send(CloseRoom { room: id.clone() }),
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

/// The rooms-service rooms among `rooms` that are live here (with their visible participants).
async fn live_rooms(state: &AppState, rooms: &[(Placed, Hosted)]) -> HashMap<String, u32> {
    let rooms: Vec<String> = rooms
        .iter()
        .filter_map(|(room, _)| match room {
            Placed::Rooms(id) => Some(id.clone()),
            Placed::Voice(_) => None,
        })
        .collect();
    if rooms.is_empty() {
        return HashMap::new();
    }
    state
        .tree
        .rooms
        .send(Occupancy { rooms })
        .await
        .unwrap_or_default()
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
