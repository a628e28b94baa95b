//! The `interactions` table: commands invoked (and components pressed), and how the
//! application answered.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::interactions;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = interactions, check_for_backend(diesel::pg::Pg))]
pub struct Interaction {
    pub id: i64,
    pub application_id: i64,
    pub kind: i32,
    pub token: String,
    pub user_id: i64,
    pub guild_id: Option<i64>,
    pub channel_id: i64,
    pub data: serde_json::Value,
    pub message_id: Option<i64>,
    pub nonce: Option<String>,
    pub response_type: Option<i32>,
    pub original_message_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl Interaction {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(interactions::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Self>> {
        interactions::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The interaction of an application with this token.
    pub async fn by_token(
        conn: &mut AsyncPgConnection,
        application_id: i64,
        token: &str,
    ) -> QueryResult<Option<Self>> {
        interactions::table
            .filter(interactions::token.eq(token))
            .filter(interactions::application_id.eq(application_id))
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The message the answer made (`@original`).
    pub async fn set_original(
        conn: &mut AsyncPgConnection,
        id: i64,
        message_id: i64,
    ) -> QueryResult<()> {
        diesel::update(interactions::table.find(id))
            .set(interactions::original_message_id.eq(message_id))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Forgets an answer that failed, so the application may answer again.
    pub async fn unrespond(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
        diesel::update(interactions::table.find(id))
            .set(interactions::response_type.eq(None::<i32>))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Records the application's answer, once: false when it had already answered.
    pub async fn respond(
        conn: &mut AsyncPgConnection,
        id: i64,
        response_type: i32,
        original_message_id: Option<i64>,
    ) -> QueryResult<bool> {
        diesel::update(
            interactions::table
                .find(id)
                .filter(interactions::response_type.is_null()),
        )
        .set((
            interactions::response_type.eq(response_type),
            interactions::original_message_id.eq(original_message_id),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
    }
}
