//! The `reactions` table: one row per user, message and emoji. `emoji_key` is a custom emoji's
//! id, or the unicode emoji itself.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{reactions, users};
use super::users::User;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reactions, check_for_backend(diesel::pg::Pg))]
pub struct Reaction {
    pub message_id: i64,
    pub user_id: i64,
    pub emoji_key: String,
    pub emoji_id: Option<i64>,
    pub emoji_name: String,
    pub created_at: DateTime<Utc>,
}

/// One emoji on one message: how many reacted with it and whether the reader did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    pub message_id: i64,
    pub emoji_id: Option<i64>,
    pub emoji_name: String,
    pub count: i64,
    pub me: bool,
}

impl Reaction {
    /// Adds the reaction; whether it is new.
    pub async fn add(&self, conn: &mut AsyncPgConnection) -> QueryResult<bool> {
        diesel::insert_into(reactions::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Removes one user's reaction; whether there was one.
    pub async fn remove(
        conn: &mut AsyncPgConnection,
        message_id: i64,
        emoji_key: &str,
        user_id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(reactions::table.find((message_id, emoji_key, user_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Removes every reaction with one emoji; whether there were any.
    pub async fn remove_emoji(
        conn: &mut AsyncPgConnection,
        message_id: i64,
        emoji_key: &str,
    ) -> QueryResult<bool> {
        diesel::delete(
            reactions::table
                .filter(reactions::message_id.eq(message_id))
                .filter(reactions::emoji_key.eq(emoji_key)),
        )
        .execute(conn)
        .await
        .map(|n| n > 0)
    }

    /// Removes every reaction on a message; whether there were any.
    pub async fn remove_all(conn: &mut AsyncPgConnection, message_id: i64) -> QueryResult<bool> {
        diesel::delete(reactions::table.filter(reactions::message_id.eq(message_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// The distinct emojis on a message.
    pub async fn emoji_keys(
        conn: &mut AsyncPgConnection,
        message_id: i64,
    ) -> QueryResult<HashSet<String>> {
        reactions::table
            .filter(reactions::message_id.eq(message_id))
            .select(reactions::emoji_key)
            .distinct()
            .load::<String>(conn)
            .await
            .map(|keys| keys.into_iter().collect())
    }

    /// Who reacted with an emoji, by user id after `after`, at most `limit`.
    pub async fn users(
        conn: &mut AsyncPgConnection,
        message_id: i64,
        emoji_key: &str,
        after: i64,
        limit: i64,
    ) -> QueryResult<Vec<User>> {
        reactions::table
            .inner_join(users::table.on(users::id.eq(reactions::user_id)))
            .filter(reactions::message_id.eq(message_id))
            .filter(reactions::emoji_key.eq(emoji_key))
            .filter(reactions::user_id.gt(after))
            .order(reactions::user_id.asc())
            .limit(limit)
            .select(User::as_select())
            .load(conn)
            .await
    }

    /// The reactions on several messages as `reader` sees them, each message's emojis in the
    /// order they were first used.
    pub async fn counts(
        conn: &mut AsyncPgConnection,
        message_ids: &[i64],
        reader: i64,
    ) -> QueryResult<Vec<ReactionCount>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        type Group = (
            i64,
            String,
            Option<i64>,
            Option<String>,
            i64,
            Option<DateTime<Utc>>,
        );
        let mut groups: Vec<Group> = reactions::table
            .filter(reactions::message_id.eq_any(message_ids))
            .group_by((
                reactions::message_id,
                reactions::emoji_key,
                reactions::emoji_id,
            ))
            .select((
                reactions::message_id,
                reactions::emoji_key,
                reactions::emoji_id,
                min(reactions::emoji_name),
                count_star(),
                min(reactions::created_at),
            ))
            .load(conn)
            .await?;
        groups.sort_by_key(|group| (group.0, group.5));
        let mine: HashSet<(i64, String)> = reactions::table
            .filter(reactions::message_id.eq_any(message_ids))
            .filter(reactions::user_id.eq(reader))
            .select((reactions::message_id, reactions::emoji_key))
            .load::<(i64, String)>(conn)
            .await?
            .into_iter()
            .collect();
        Ok(groups
            .into_iter()
            .map(
                |(message_id, key, emoji_id, name, count, _)| ReactionCount {
                    message_id,
                    emoji_id,
                    emoji_name: name.unwrap_or_default(),
                    count,
                    me: mine.contains(&(message_id, key)),
                },
            )
            .collect())
    }
}
