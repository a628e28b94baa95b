//! The `relationships` table, stored from each side: (user, other, type).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::relationships;

/// Relationship types, from the owning user's side.
pub mod kind {
    pub const FRIEND: i32 = 1;
    pub const BLOCKED: i32 = 2;
    pub const INCOMING: i32 = 3;
    pub const OUTGOING: i32 = 4;
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = relationships, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Relationship {
    pub user_id: i64,
    pub other_id: i64,
    pub kind: i32,
    pub nickname: Option<String>,
    pub since: DateTime<Utc>,
}

impl Relationship {
    pub fn new(user_id: i64, other_id: i64, kind: i32) -> Self {
        Self {
            user_id,
            other_id,
            kind,
            nickname: None,
            since: Utc::now(),
        }
    }

    pub async fn of_user(
        conn: &mut AsyncPgConnection,
        user_id: i64,
    ) -> QueryResult<Vec<Relationship>> {
        relationships::table
            .filter(relationships::user_id.eq(user_id))
            .select(Relationship::as_select())
            .load(conn)
            .await
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        other_id: i64,
    ) -> QueryResult<Option<Relationship>> {
        relationships::table
            .find((user_id, other_id))
            .select(Relationship::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Inserts or replaces this side of the relationship.
    pub async fn upsert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(relationships::table)
            .values(self)
            .on_conflict((relationships::user_id, relationships::other_id))
            .do_update()
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Removes this side; whether it existed.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        other_id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(relationships::table.find((user_id, other_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
