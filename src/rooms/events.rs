//! Every room's event log, and the webhooks it feeds. What happens in a room (it started,
//! someone joined, a track was published…) is recorded here: written to `room_events`, whose id
//! is the cursor integrators read the log by, then sent as a signed webhook (see [`webhooks`]).
//! Writing first means a webhook carries its cursor, and an integrator whose endpoint was down
//! reads what it missed from the log after the last id it saw.
//!
//! Recording never waits: events go through a bounded channel to one writer task, so a room
//! actor is never held up by the database. Should the writer fall that far behind, events are
//! dropped and logged.
//!
//! [`webhooks`]: super::webhooks

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use spacebar_actors::rooms::api::{RoomEvent, RoomObserver};
use tokio::sync::mpsc;

use super::empty;
use super::webhooks::Target;
use crate::db::room_api_keys::RoomApiKey;
use crate::db::room_events::RoomEventRow;
use crate::db::rooms::Room;
use crate::state::AppState;

/// Events waiting for the writer.
const BACKLOG: usize = 10_000;
/// How often events older than `rooms.event_log_days` are deleted.
const EXPIRE_EVERY: Duration = Duration::from_secs(3600);

/// One event of a room.
#[derive(Debug)]
struct Recorded {
    room: String,
    event: &'static str,
    payload: Value,
}

/// Where events are recorded; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    sender: mpsc::Sender<Recorded>,
}

/// The writer's end, started once the server's state exists ([`EventLogWriter::run`]).
pub struct EventLogWriter {
    receiver: mpsc::Receiver<Recorded>,
}

/// An event log and its writer.
pub fn event_log() -> (EventLog, EventLogWriter) {
    let (sender, receiver) = mpsc::channel(BACKLOG);
    (EventLog { sender }, EventLogWriter { receiver })
}

impl EventLog {
    /// Records `event` of `room`, with `payload`'s fields (an object) beside the common ones.
    pub fn record(&self, room: &str, event: &'static str, payload: Value) {
        let recorded = Recorded {
            room: room.to_string(),
            event,
            payload,
        };
        if let Err(error) = self.sender.try_send(recorded) {
            tracing::warn!(room, event, %error, "room event dropped: the event log is behind");
        }
    }
}

/// What the live rooms report goes into the log (with the room's API key looked up).
impl RoomObserver for EventLog {
    fn observe(&self, room: &str, event: RoomEvent) {
        let (name, payload) = match event {
            RoomEvent::RoomStarted => ("room_started", json!({})),
            RoomEvent::RoomFinished => ("room_finished", json!({})),
            RoomEvent::ParticipantJoined(participant) => {
                ("participant_joined", json!({ "participant": participant }))
            }
            RoomEvent::ParticipantLeft(participant) => {
                ("participant_left", json!({ "participant": participant }))
            }
            RoomEvent::TrackPublished { participant, track } => (
                "track_published",
                json!({ "participant": { "identity": participant }, "track": track }),
            ),
            RoomEvent::TrackUnpublished { participant, track } => (
                "track_unpublished",
                json!({ "participant": { "identity": participant }, "track": track }),
            ),
        };
        self.record(room, name, payload);
    }
}

/// An event as the log and the webhooks show it: `{id, event, room, created_at, …payload}`.
pub fn view(row: &RoomEventRow) -> Value {
    let mut view = json!({
        "id": row.id.to_string(),
        "event": row.event,
        "room": row.room_id,
        "created_at": row.created_at,
    });
    if let (Some(view), Value::Object(payload)) = (view.as_object_mut(), &row.payload) {
        for (key, value) in payload {
            view.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    view
}

impl EventLogWriter {
    /// Writes events until the server's state is gone, ages the log out hourly, and deletes
    /// the rooms guests and users left empty ([`empty`]).
    pub fn run(mut self, state: Weak<AppState>) {
        actix_web::rt::spawn(async move {
            let mut expiry = actix_web::rt::time::interval(EXPIRE_EVERY);
            let Some(period) = state.upgrade().map(|s| empty::period(&s.config().rooms)) else {
                return;
            };
            let mut sweeping = actix_web::rt::time::interval(period);
            // The API key of each live room, read when it starts and kept until it finishes:
            // an application that deletes its room (which ends it) still gets `room_finished`,
            // written after the room's row is gone.
            let mut keys = HashMap::new();
            loop {
                tokio::select! {
                    recorded = self.receiver.recv() => {
                        let (Some(recorded), Some(state)) = (recorded, state.upgrade()) else {
                            return;
                        };
                        if let Err(error) = write(&state, &mut keys, &recorded).await {
                            tracing::warn!(room = %recorded.room, event = recorded.event, %error,
                                "room event not recorded");
                        }
                    }
                    _ = expiry.tick() => {
                        let Some(state) = state.upgrade() else { return };
                        if let Err(error) = expire(&state).await {
                            tracing::warn!(%error, "room events not expired");
                        }
                    }
                    _ = sweeping.tick() => {
                        let Some(state) = state.upgrade() else { return };
                        match empty::sweep(&state).await {
                            Ok(0) => {}
                            Ok(deleted) => tracing::info!(deleted, "empty rooms deleted"),
                            Err(error) => tracing::warn!(%error, "empty rooms not swept"),
                        }
                    }
                }
            }
        });
    }
}

async fn write(
    state: &AppState,
    keys: &mut HashMap<String, Option<String>>,
    recorded: &Recorded,
) -> Result<(), crate::error::Error> {
    let mut conn = state.pool.get().await?;
    let api_key = match keys.get(&recorded.room) {
        Some(key) => key.clone(),
        None => Room::find(&mut conn, &recorded.room)
            .await?
            .and_then(|room| room.api_key),
    };
    if recorded.event == "room_finished" {
        keys.remove(&recorded.room);
    } else {
        keys.insert(recorded.room.clone(), api_key.clone());
    }
    let row = RoomEventRow::append(
        &mut conn,
        &recorded.room,
        api_key.as_deref(),
        recorded.event,
        &recorded.payload,
    )
    .await?;
    let key = match &api_key {
        Some(id) => RoomApiKey::find(&mut conn, id).await?,
        None => None,
    };
    if recorded.event == "room_finished" {
        // A room a guest or user opened is gone once it ends (an application's stays until
        // the application deletes it).
        Room::delete_keyless(&mut conn, &recorded.room).await?;
    }
    drop(conn);
    let config = state.config();
    let target = key
        .and_then(|key| {
            key.webhook_url.map(|url| Target {
                url,
                secret: key.webhook_secret,
            })
        })
        .or_else(|| {
            let rooms = &config.rooms;
            (!rooms.webhook_url.is_empty()).then(|| Target {
                url: rooms.webhook_url.clone(),
                secret: rooms.webhook_secret.clone(),
            })
        });
    if let Some(target) = target {
        let body = Bytes::from(view(&row).to_string());
        state.room_webhooks.send(target, body, &config.rooms);
    }
    Ok(())
}

async fn expire(state: &AppState) -> Result<(), crate::error::Error> {
    let mut conn = state.pool.get().await?;
    let days = state.config().rooms.event_log_days;
    let expired = RoomEventRow::expire(&mut conn, days).await?;
    if expired > 0 {
        tracing::info!(expired, "room events aged out");
    }
    Ok(())
}
