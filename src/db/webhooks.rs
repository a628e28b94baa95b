//! The `webhooks` table: a guild channel's webhooks (the avatar is `avatars/{id}/{hash}`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::webhooks;

/// Discord's webhook types made here.
pub mod kind {
    pub const INCOMING: i32 = 1;
    pub const APPLICATION: i32 = 3;
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = webhooks, check_for_backend(diesel::pg::Pg))]
pub struct Webhook {
    pub id: i64,
    pub kind: i32,
    pub guild_id: i64,
    pub channel_id: i64,
    pub user_id: Option<i64>,
    pub name: String,
    pub avatar: Option<String>,
    pub token: String,
    pub application_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// What a change may set: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = webhooks)]
pub struct WebhookChanges {
    pub name: Option<String>,
    pub avatar: Option<Option<String>>,
    pub channel_id: Option<i64>,
}

impl Webhook {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(webhooks::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Webhook>> {
        webhooks::table
            .find(id)
            .select(Webhook::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// A channel's webhooks, oldest first.
    pub async fn of_channel(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
    ) -> QueryResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::channel_id.eq(channel_id))
            .order(webhooks::id)
            .select(Webhook::as_select())
            .load(conn)
            .await
    }

    /// A guild's webhooks, oldest first.
    pub async fn of_guild(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
    ) -> QueryResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::guild_id.eq(guild_id))
            .order(webhooks::id)
            .select(Webhook::as_select())
            .load(conn)
            .await
    }

    /// Those of `ids` that belong to `guild_id` (the audit log names them).
    pub async fn of_guild_among(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        ids: &[i64],
    ) -> QueryResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::guild_id.eq(guild_id))
            .filter(webhooks::id.eq_any(ids))
            .select(Webhook::as_select())
            .load(conn)
            .await
    }

    /// Applies `changes`; the webhook as it is now, if it still exists.
    pub async fn update(
        conn: &mut AsyncPgConnection,
        id: i64,
        changes: &WebhookChanges,
    ) -> QueryResult<Option<Webhook>> {
        if changes.name.is_none() && changes.avatar.is_none() && changes.channel_id.is_none() {
            return Self::find(conn, id).await;
        }
        diesel::update(webhooks::table.find(id))
            .set(changes)
            .returning(Webhook::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    /// Deletes it; whether it was there.
    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
        diesel::delete(webhooks::table.find(id))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
