//! The `room_events` table: every room's event log, read by cursor (the id).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::schema::room_events;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = room_events, check_for_backend(diesel::pg::Pg))]
pub struct RoomEventRow {
    pub id: i64,
    pub room_id: String,
    pub api_key: Option<String>,
    pub event: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

impl RoomEventRow {
    /// Appends an event to a room's log; the row, with its cursor.
    pub async fn append(
        conn: &mut AsyncPgConnection,
        room_id: &str,
        api_key: Option<&str>,
        event: &str,
        payload: &Value,
    ) -> QueryResult<Self> {
        diesel::insert_into(room_events::table)
            .values((
                room_events::room_id.eq(room_id),
                room_events::api_key.eq(api_key),
                room_events::event.eq(event),
                room_events::payload.eq(payload),
            ))
            .returning(Self::as_returning())
            .get_result(conn)
            .await
    }

    /// The events of a room `api_key` made after the cursor `after`, oldest first, at most
    /// `limit`.
    pub async fn after(
        conn: &mut AsyncPgConnection,
        room_id: &str,
        api_key: &str,
        after: i64,
        limit: i64,
    ) -> QueryResult<Vec<Self>> {
        room_events::table
            .filter(room_events::room_id.eq(room_id))
            .filter(room_events::api_key.eq(api_key))
            .filter(room_events::id.gt(after))
            .order(room_events::id)
            .limit(limit)
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Deletes events older than `days`; how many.
    pub async fn expire(conn: &mut AsyncPgConnection, days: u32) -> QueryResult<usize> {
        let before = Utc::now() - chrono::Duration::days(days.into());
        diesel::delete(room_events::table.filter(room_events::created_at.lt(before)))
            .execute(conn)
            .await
    }
}
