//! The `users` table.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::relationships::Relationship;
use super::schema::{auth_sessions, members, relationships, users};

#[diesel::declare_sql_function]
extern "SQL" {
    fn lower(text: Text) -> Text;
}

/// What [`User::anonymise`] did: the account as it now is, the guilds it left and the
/// relationships (both sides) it no longer has.
pub struct Anonymised {
    pub user: User,
    pub left_guilds: Vec<i64>,
    pub relationships: Vec<Relationship>,
}

/// The discriminator a deleted account goes by, as on Discord; its name is "Deleted User"
/// and eight hex digits (Discord's shape, which tells deleted accounts apart).
const DELETED_DISCRIMINATOR: &str = "0000";

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub username: String,
    pub discriminator: String,
    pub global_name: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub avatar: Option<String>,
    pub banner: Option<String>,
    pub bio: String,
    pub pronouns: String,
    pub accent_color: Option<i32>,
    pub bot: bool,
    pub system: bool,
    pub verified: bool,
    pub mfa_enabled: bool,
    pub flags: i64,
    pub public_flags: i64,
    pub premium_type: i32,
    pub rights: i64,
    pub disabled: bool,
    pub deleted: bool,
    pub date_of_birth: Option<NaiveDate>,
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub id: i64,
    pub username: String,
    pub discriminator: String,
    pub global_name: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub rights: i64,
    pub date_of_birth: Option<NaiveDate>,
}

/// A partial update; `None` leaves a column as it is.
#[derive(Debug, Default, PartialEq, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub username: Option<String>,
    pub discriminator: Option<String>,
    pub global_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub password_hash: Option<Option<String>>,
    pub bio: Option<String>,
    pub pronouns: Option<String>,
    pub accent_color: Option<Option<i32>>,
    pub settings: Option<serde_json::Value>,
    pub rights: Option<i64>,
    pub disabled: Option<bool>,
    pub deleted: Option<bool>,
    pub avatar: Option<Option<String>>,
    pub banner: Option<Option<String>>,
}

/// Which way a page of rows runs, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

impl User {
    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .filter(users::deleted.eq(false))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// A user, deleted or not (operators see accounts half-way through deletion).
    pub async fn find_any(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The account named `username#discriminator`.
    pub async fn find_by_tag(
        conn: &mut AsyncPgConnection,
        username: &str,
        discriminator: &str,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::username.eq(username))
            .filter(users::discriminator.eq(discriminator))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// A page of every account, by id, after and/or before the given ids.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
        order: Order,
    ) -> QueryResult<Vec<User>> {
        let mut query = users::table.select(User::as_select()).into_boxed();
        if let Some(after) = after {
            query = query.filter(users::id.gt(after));
        }
        if let Some(before) = before {
            query = query.filter(users::id.lt(before));
        }
        query = match order {
            Order::Ascending => query.order(users::id.asc()),
            Order::Descending => query.order(users::id.desc()),
        };
        query.limit(limit).load(conn).await
    }

    /// Deletes an account the way Discord does when its owner asks, all in one transaction:
    /// what identified the person is cleared (it becomes "Deleted User 1a2b3c4d" #0000,
    /// without avatar, banner or bio; its e-mail address and password go, so the address may
    /// register again), its relationships, memberships and logins end, and its messages stay,
    /// written by that "Deleted User".
    pub async fn anonymise(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Anonymised> {
        conn.transaction(async |conn| {
            let user = diesel::update(users::table.find(id))
                .set((
                    users::deleted.eq(true),
                    users::username.eq(format!("Deleted User {:08x}", rand::random::<u32>())),
                    users::discriminator.eq(DELETED_DISCRIMINATOR),
                    users::global_name.eq(None::<String>),
                    users::avatar.eq(None::<String>),
                    users::banner.eq(None::<String>),
                    users::bio.eq(""),
                    users::pronouns.eq(""),
                    users::accent_color.eq(None::<i32>),
                    users::email.eq(None::<String>),
                    users::password_hash.eq(None::<String>),
                ))
                .returning(User::as_returning())
                .get_result(conn)
                .await?;
            let relationships = diesel::delete(
                relationships::table.filter(
                    relationships::user_id
                        .eq(id)
                        .or(relationships::other_id.eq(id)),
                ),
            )
            .returning(Relationship::as_returning())
            .get_results(conn)
            .await?;
            let left_guilds: Vec<i64> =
                diesel::delete(members::table.filter(members::user_id.eq(id)))
                    .returning(members::guild_id)
                    .get_results(conn)
                    .await?;
            diesel::delete(auth_sessions::table.filter(auth_sessions::user_id.eq(id)))
                .execute(conn)
                .await?;
            Ok(Anonymised {
                user,
                left_guilds,
                relationships,
            })
        })
        .await
    }

    /// Deletes the account row; what still refers to it goes with it (the schema cascades).
    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
        diesel::delete(users::table.find(id))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// An account's rights.
    pub async fn rights_of(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<i64>> {
        users::table
            .find(id)
            .select(users::rights)
            .first(conn)
            .await
            .optional()
    }

    /// Several users at once.
    pub async fn find_many(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::id.eq_any(ids))
            .select(User::as_select())
            .load(conn)
            .await
    }

    /// The account an e-mail address (stored lower-cased) belongs to.
    pub async fn find_by_email(
        conn: &mut AsyncPgConnection,
        email: &str,
    ) -> QueryResult<Option<User>> {
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The user behind a login session, if both still exist.
    pub async fn find_by_session(
        conn: &mut AsyncPgConnection,
        user_id: i64,
        session_id: i64,
    ) -> QueryResult<Option<User>> {
        users::table
            .inner_join(auth_sessions::table)
            .filter(auth_sessions::id.eq(session_id))
            .filter(users::id.eq(user_id))
            .filter(users::deleted.eq(false))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Discriminators already used with `username`, compared case-insensitively.
    pub async fn taken_discriminators(
        conn: &mut AsyncPgConnection,
        username: &str,
    ) -> QueryResult<Vec<String>> {
        users::table
            .filter(lower(users::username).eq(username.to_lowercase()))
            .select(users::discriminator)
            .load(conn)
            .await
    }

    /// Like [`User::taken_discriminators`], leaving out one account (the one renaming itself).
    pub async fn taken_discriminators_by_others(
        conn: &mut AsyncPgConnection,
        username: &str,
        user_id: i64,
    ) -> QueryResult<Vec<String>> {
        users::table
            .filter(lower(users::username).eq(username.to_lowercase()))
            .filter(users::id.ne(user_id))
            .select(users::discriminator)
            .load(conn)
            .await
    }

    pub async fn insert(conn: &mut AsyncPgConnection, user: &NewUser) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(user)
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn update(
        conn: &mut AsyncPgConnection,
        id: i64,
        changes: &UserChanges,
    ) -> QueryResult<User> {
        if *changes == UserChanges::default() {
            // No column to set is no UPDATE at all (diesel refuses one): the user as stored.
            return users::table
                .find(id)
                .select(User::as_select())
                .get_result(conn)
                .await;
        }
        diesel::update(users::table.find(id))
            .set(changes)
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }
}
