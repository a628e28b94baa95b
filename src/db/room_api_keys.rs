//! The `room_api_keys` table: applications' keys to the rooms API (see `rooms::keys`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::room_api_keys;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_api_keys, check_for_backend(diesel::pg::Pg))]
pub struct RoomApiKey {
    pub id: String,
    pub name: String,
    pub secret_sha256: Vec<u8>,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl RoomApiKey {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(room_api_keys::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<Self>> {
        room_api_keys::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Every key, oldest first.
    pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Self>> {
        room_api_keys::table
            .order((room_api_keys::created_at, room_api_keys::id))
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Deletes a key (its rooms stay, keyless); whether it existed.
    pub async fn revoke(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<bool> {
        diesel::delete(room_api_keys::table.find(id))
            .execute(conn)
            .await
            .map(|deleted| deleted > 0)
    }
}
