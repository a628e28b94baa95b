//! The `relationships` table, stored from each side: (user, other, type).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{relationships, users};
use super::users::User;

#[diesel::declare_sql_function]
extern "SQL" {
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

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

    /// Both sides between `user_id` and `other_id`: (`user_id`'s, `other_id`'s).
    pub async fn pair(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        other_id: i64,
    ) -> QueryResult<(Option<Relationship>, Option<Relationship>)> {
        let rows: Vec<Relationship> = relationships::table
            .filter(
                relationships::user_id
                    .eq(user_id)
                    .and(relationships::other_id.eq(other_id))
                    .or(relationships::user_id
                        .eq(other_id)
                        .and(relationships::other_id.eq(user_id))),
            )
            .select(Relationship::as_select())
            .load(conn)
            .await?;
        let mut mine = None;
        let mut theirs = None;
        for row in rows {
            if row.user_id == user_id {
                mine = Some(row);
            } else {
                theirs = Some(row);
            }
        }
        Ok((mine, theirs))
    }

    /// How many friends and pending requests `user_id` has (blocks do not count).
    pub async fn count_social(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<i64> {
        relationships::table
            .filter(relationships::user_id.eq(user_id))
            .filter(relationships::kind.ne(kind::BLOCKED))
            .count()
            .get_result(conn)
            .await
    }

    /// Whether either of the two users blocked the other.
    pub async fn blocked_between(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        other_id: i64,
    ) -> QueryResult<bool> {
        let (mine, theirs) = Self::pair(conn, user_id, other_id).await?;
        Ok([mine, theirs]
            .iter()
            .flatten()
            .any(|r| r.kind == kind::BLOCKED))
    }

    /// Which of `others` are `user_id`'s friends.
    pub async fn friends_among(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        others: &[i64],
    ) -> QueryResult<Vec<i64>> {
        relationships::table
            .filter(relationships::user_id.eq(user_id))
            .filter(relationships::other_id.eq_any(others))
            .filter(relationships::kind.eq(kind::FRIEND))
            .select(relationships::other_id)
            .load(conn)
            .await
    }

    /// The users a friend request by tag may name: `username` (any case) with `discriminator`,
    /// or every user of that name when no discriminator is given (at most two, enough to tell
    /// whether the name alone is unambiguous).
    pub async fn tag_candidates(
        conn: &mut AsyncPgConnection,
        username: &str,
        discriminator: Option<&str>,
    ) -> QueryResult<Vec<User>> {
        let mut query = users::table
            .filter(lower(users::username).eq(username.to_lowercase()))
            .filter(users::deleted.eq(false))
            .select(User::as_select())
            .limit(2)
            .into_boxed();
        if let Some(discriminator) = discriminator {
            query = query.filter(users::discriminator.eq(discriminator.to_string()));
        }
        query.load(conn).await
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
