//! The `bans` table, and the purge of a banned user's recent messages that comes with a ban.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{bans, messages, users};
use super::users::User;
use crate::snowflake::snowflake_at;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = bans, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Ban {
    pub guild_id: i64,
    pub user_id: i64,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which end of a guild's ban list a page starts from (by user id).
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// The first bans, or those with user ids above this one.
    After(i64),
    /// The last bans with user ids below this one.
    Before(i64),
}

impl Ban {
    pub fn new(guild_id: i64, user_id: i64, reason: Option<String>) -> Self {
        Self {
            guild_id,
            user_id,
            reason,
            created_at: Utc::now(),
        }
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<Option<Ban>> {
        bans::table
            .find((guild_id, user_id))
            .select(Ban::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Whether `user_id` is banned from `guild_id`.
    pub async fn exists(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<bool> {
        Ok(Self::find(conn, guild_id, user_id).await?.is_some())
    }

    /// A ban with its user.
    pub async fn find_with_user(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<Option<(Ban, User)>> {
        bans::table
            .inner_join(users::table)
            .filter(bans::guild_id.eq(guild_id))
            .filter(bans::user_id.eq(user_id))
            .select((Ban::as_select(), User::as_select()))
            .first(conn)
            .await
            .optional()
    }

    /// At most `limit` bans of a guild with their users, in user id order.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        cursor: Cursor,
        limit: i64,
    ) -> QueryResult<Vec<(Ban, User)>> {
        let query = bans::table
            .inner_join(users::table)
            .filter(bans::guild_id.eq(guild_id))
            .select((Ban::as_select(), User::as_select()))
            .limit(limit);
        match cursor {
            Cursor::After(after) => {
                query
                    .filter(bans::user_id.gt(after))
                    .order(bans::user_id.asc())
                    .load(conn)
                    .await
            }
            Cursor::Before(before) => {
                // The `limit` closest below `before`, handed back in ascending order.
                let mut page: Vec<(Ban, User)> = query
                    .filter(bans::user_id.lt(before))
                    .order(bans::user_id.desc())
                    .load(conn)
                    .await?;
                page.reverse();
                Ok(page)
            }
        }
    }

    /// Records the ban; banning again only replaces the reason.
    pub async fn upsert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(bans::table)
            .values(self)
            .on_conflict((bans::guild_id, bans::user_id))
            .do_update()
            .set(bans::reason.eq(&self.reason))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Lifts a ban; whether there was one.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        user_id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(bans::table.find((guild_id, user_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Deletes what `author_id` wrote in the guild since `since` (message ids are snowflakes, so
    /// "newer than" is "id at or above the first snowflake of that millisecond"). Returns the
    /// deleted messages as (channel id, message id, attachments).
    pub async fn delete_messages_since(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        author_id: i64,
        since: DateTime<Utc>,
    ) -> QueryResult<Vec<(i64, i64, serde_json::Value)>> {
        diesel::delete(
            messages::table
                .filter(messages::guild_id.eq(guild_id))
                .filter(messages::author_id.eq(author_id))
                .filter(messages::id.ge(snowflake_at(since))),
        )
        .returning((messages::channel_id, messages::id, messages::attachments))
        .get_results(conn)
        .await
    }
}
