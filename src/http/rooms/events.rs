//! `GET /rooms/api/rooms/{room}/events?after=<cursor>&limit=` — a room's event log, oldest
//! first, after the cursor (an event's `id`; 0 or none: from the start): every event its
//! webhooks carried, kept `rooms.event_log_days`, so an integrator whose endpoint was down reads
//! what it missed. `{events, next}`: `next` is the cursor to ask after next time. Only the
//! application that made the room reads its log (another's reads as empty).

use actix_web::web::{self, Path, Query};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

use super::Application;
use crate::db::room_events::RoomEventRow;
use crate::http::error::{ApiError, FormErrors};
use crate::rooms::events::view;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/{room}/events", web::get().to(list));
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
}

async fn list(
    app: Application,
    path: Path<String>,
    query: Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FormErrors::default();
    let after = match query.after.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .unwrap_or_else(|| {
                errors.add("after", "NUMBER_TYPE_COERCE", "Must be an event id.");
                0
            }),
    };
    let limit = match query.limit.as_deref() {
        None => 100,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .unwrap_or_else(|| {
                errors.add(
                    "limit",
                    "NUMBER_TYPE_MAX",
                    "Must be a number from 1 to 1000.",
                );
                100
            }),
    };
    errors.into_result()?;
    let mut conn = app.state.pool.get().await?;
    let rows = RoomEventRow::after(&mut conn, &path, &app.key.id, after, limit).await?;
    drop(conn);
    let next = rows.last().map_or(after, |row| row.id);
    let events: Vec<_> = rows.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next": next.to_string() })))
}
