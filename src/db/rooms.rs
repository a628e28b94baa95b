//! The `rooms` table: rooms made through the rooms API or by guests and users.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::rooms;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rooms, check_for_backend(diesel::pg::Pg))]
pub struct Room {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub guests: bool,
    pub max_participants: i32,
    pub empty_timeout_secs: i32,
    pub metadata: String,
    pub api_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What an update may set: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = rooms)]
pub struct RoomChanges {
    pub name: Option<String>,
    pub public: Option<bool>,
    pub guests: Option<bool>,
    pub max_participants: Option<i32>,
    pub empty_timeout_secs: Option<i32>,
    pub metadata: Option<String>,
}

impl Room {
    /// Inserts the room unless there are `max_rooms` already (checked in the same statement's
    /// transaction, under a lock, so racing creations cannot pass it together); whether it was
    /// inserted. `Err(UniqueViolation)` when the id is taken.
    pub async fn insert_within(
        &self,
        conn: &mut AsyncPgConnection,
        max_rooms: u32,
    ) -> QueryResult<bool> {
        use diesel_async::AsyncConnection;
        conn.transaction(async |conn| {
            // One creation at a time counts: a transaction-scoped advisory lock.
            diesel::sql_query("SELECT pg_advisory_xact_lock(7210010001)")
                .execute(conn)
                .await?;
            let count: i64 = rooms::table.count().get_result(conn).await?;
            if count >= i64::from(max_rooms) {
                return Ok(false);
            }
            diesel::insert_into(rooms::table)
                .values(self)
                .execute(conn)
                .await?;
            Ok(true)
        })
        .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<Self>> {
        rooms::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// A page of rooms by id, after `after`, made by `api_key` (every room when `None`).
    pub async fn page(
        conn: &mut AsyncPgConnection,
        api_key: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<Self>> {
        let mut query = rooms::table
            .order(rooms::id)
            .limit(limit)
            .select(Self::as_select())
            .into_boxed();
        if let Some(key) = api_key {
            query = query.filter(rooms::api_key.eq(key));
        }
        if let Some(after) = after {
            query = query.filter(rooms::id.gt(after));
        }
        query.load(conn).await
    }

    /// Public rooms, newest first, at most `limit`.
    pub async fn public(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<Self>> {
        rooms::table
            .filter(rooms::public)
            .order((rooms::created_at.desc(), rooms::id))
            .limit(limit)
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Applies `changes`; the room after them, if it exists.
    pub async fn update(
        conn: &mut AsyncPgConnection,
        id: &str,
        changes: &RoomChanges,
    ) -> QueryResult<Option<Self>> {
        diesel::update(rooms::table.find(id))
            .set(changes)
            .returning(Self::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Deletes a room; whether it existed.
    pub async fn delete(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<bool> {
        diesel::delete(rooms::table.find(id))
            .execute(conn)
            .await
            .map(|deleted| deleted > 0)
    }

    /// Rooms made by a guest or a user (no API key) longer ago than their `empty_timeout`, at
    /// most `limit`.
    pub async fn keyless_past_timeout(
        conn: &mut AsyncPgConnection,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        rooms::table
            .filter(rooms::api_key.is_null())
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "rooms.created_at + rooms.empty_timeout_secs * interval '1 second' < now()",
            ))
            .select(rooms::id)
            .limit(limit)
            .load(conn)
            .await
    }

    /// Deletes a room made by a guest or a user (no API key); whether there was one.
    pub async fn delete_keyless(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<bool> {
        diesel::delete(rooms::table.find(id).filter(rooms::api_key.is_null()))
            .execute(conn)
            .await
            .map(|deleted| deleted > 0)
    }
}

impl Room {
    /// Lays `changes` over the room (before it is first stored).
    pub fn apply(&mut self, changes: RoomChanges) {
        let RoomChanges {
            name,
            public,
            guests,
            max_participants,
            empty_timeout_secs,
            metadata,
        } = changes;
        self.name = name.unwrap_or(std::mem::take(&mut self.name));
        self.public = public.unwrap_or(self.public);
        self.guests = guests.unwrap_or(self.guests);
        self.max_participants = max_participants.unwrap_or(self.max_participants);
        self.empty_timeout_secs = empty_timeout_secs.unwrap_or(self.empty_timeout_secs);
        self.metadata = metadata.unwrap_or(std::mem::take(&mut self.metadata));
    }
}
