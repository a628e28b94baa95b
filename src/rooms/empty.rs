//! Rooms a guest or user opened (`POST /rooms/new`) are deleted once they have stood empty for
//! their `empty_timeout` (`rooms.default_empty_timeout_secs`), so the public list does not fill
//! with dead rooms. One that was joined is deleted when its live room ends (see
//! [`super::events`]); this sweep deletes those nobody joined, and those whose node stopped
//! while people were in them. An application's rooms stay until the application deletes them.

use std::time::Duration;

use spacebar_actors::rooms::api::Occupancy;

use crate::config::RoomsConfig;
use crate::db::rooms::Room;
use crate::state::AppState;

/// Rooms looked at per sweep; the rest wait for the next.
const PER_SWEEP: i64 = 500;

/// How often to sweep: half the default timeout, from a second to a minute, so a room goes
/// soon after its timeout without the sweep running needlessly often.
pub fn period(config: &RoomsConfig) -> Duration {
    Duration::from_secs(u64::from(config.default_empty_timeout_secs / 2).clamp(1, 60))
}

/// Deletes the rooms guests or users opened longer ago than their `empty_timeout` that are
/// live nowhere; how many.
pub async fn sweep(state: &AppState) -> Result<usize, crate::error::Error> {
    let mut conn = state.pool.get().await?;
    let old = Room::keyless_past_timeout(&mut conn, PER_SWEEP).await?;
    drop(conn);
    if old.is_empty() {
        return Ok(0);
    }
    // A live room ends on its own once it has been empty that long, and is deleted then.
    let live = state
        .tree
        .rooms
        .send(Occupancy { rooms: old.clone() })
        .await?;
    let mut idle = Vec::new();
    for room in old.into_iter().filter(|room| !live.contains_key(room)) {
        if !served_elsewhere(state, &room).await {
            idle.push(room);
        }
    }
    let mut deleted = 0;
    if !idle.is_empty() {
        let mut conn = state.pool.get().await?;
        for room in &idle {
            deleted += usize::from(Room::delete_keyless(&mut conn, room).await?);
        }
    }
    Ok(deleted)
}

/// Whether another node serves `room` (cluster mode), or where it is cannot be told: only the
/// node serving a room knows whether it is empty.
async fn served_elsewhere(state: &AppState, room: &str) -> bool {
    let Some(cluster) = &state.cluster else {
        return false;
    };
    match cluster.placement.rooms_node(room).await {
        Ok(node) => node.is_some_and(|node| !node.here),
        Err(error) => {
            tracing::warn!(%error, room, "an empty room's node was not found; kept for now");
            true
        }
    }
}
