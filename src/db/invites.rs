//! The `invites` table. An invite is spent when `max_uses` (0 = unlimited) is reached or
//! `expires_at` (none = never) has passed; spent invites are deleted when someone finds one.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::invites;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = invites, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Invite {
    pub code: String,
    pub guild_id: i64,
    pub channel_id: i64,
    pub inviter_id: Option<i64>,
    pub max_age: i32,
    pub max_uses: i32,
    pub uses: i32,
    pub temporary: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Invite {
    /// Whether the invite can still be used at `now`.
    pub fn is_valid(&self, now: DateTime<Utc>) -> bool {
        (self.max_uses == 0 || self.uses < self.max_uses)
            && self.expires_at.is_none_or(|at| at > now)
    }

    pub async fn find(conn: &mut AsyncPgConnection, code: &str) -> QueryResult<Option<Invite>> {
        invites::table
            .find(code)
            .select(Invite::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// A usable invite to `channel_id` by `inviter_id` with exactly these settings (what a
    /// non-`unique` create hands back instead of a new code).
    pub async fn find_reusable(
        conn: &mut AsyncPgConnection,
        like: &Invite,
    ) -> QueryResult<Option<Invite>> {
        let candidates: Vec<Invite> = invites::table
            .filter(invites::channel_id.eq(like.channel_id))
            .filter(invites::inviter_id.eq(like.inviter_id))
            .filter(invites::max_age.eq(like.max_age))
            .filter(invites::max_uses.eq(like.max_uses))
            .filter(invites::temporary.eq(like.temporary))
            .order(invites::created_at.desc())
            .select(Invite::as_select())
            .load(conn)
            .await?;
        let now = Utc::now();
        Ok(candidates.into_iter().find(|i| i.is_valid(now)))
    }

    pub async fn of_channel(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
    ) -> QueryResult<Vec<Invite>> {
        invites::table
            .filter(invites::channel_id.eq(channel_id))
            .order(invites::created_at.asc())
            .select(Invite::as_select())
            .load(conn)
            .await
    }

    pub async fn of_guild(conn: &mut AsyncPgConnection, guild_id: i64) -> QueryResult<Vec<Invite>> {
        invites::table
            .filter(invites::guild_id.eq(guild_id))
            .order(invites::created_at.asc())
            .select(Invite::as_select())
            .load(conn)
            .await
    }

    /// Inserts unless the code is taken; whether it was inserted.
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<bool> {
        diesel::insert_into(invites::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Counts one use, only while the invite is still usable: the check and the increment are
    /// one statement, so two joiners cannot both take an invite's last use. The invite after
    /// the use, or `None` when it is spent or gone.
    pub async fn use_once(conn: &mut AsyncPgConnection, code: &str) -> QueryResult<Option<Invite>> {
        diesel::update(
            invites::table
                .find(code)
                .filter(
                    invites::max_uses
                        .eq(0)
                        .or(invites::uses.lt(invites::max_uses)),
                )
                .filter(
                    invites::expires_at
                        .is_null()
                        .or(invites::expires_at.gt(diesel::dsl::now)),
                ),
        )
        .set(invites::uses.eq(invites::uses + 1))
        .returning(Invite::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes an invite; whether it existed.
    pub async fn delete(conn: &mut AsyncPgConnection, code: &str) -> QueryResult<bool> {
        diesel::delete(invites::table.find(code))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
