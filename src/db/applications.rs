//! The `applications` table: developer applications and the bot users they own. A bot user
//! shares its application's id, so a bot token names its application too.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{applications, users};
use super::users::NewUser;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = applications, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Application {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub icon: Option<String>,
    pub owner_id: i64,
    pub bot_user_id: Option<i64>,
    pub bot_public: bool,
    pub bot_require_code_grant: bool,
    pub verify_key: String,
    pub flags: i64,
    pub created_at: DateTime<Utc>,
}

impl Application {
    /// A new application without a bot, public as Discord's are by default.
    pub fn new(id: i64, name: String, owner_id: i64, verify_key: String) -> Self {
        Self {
            id,
            name,
            description: String::new(),
            icon: None,
            owner_id,
            bot_user_id: None,
            bot_public: true,
            bot_require_code_grant: false,
            verify_key,
            flags: 0,
            created_at: Utc::now(),
        }
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Application>> {
        applications::table
            .find(id)
            .select(Application::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The applications `owner_id` made, oldest first.
    pub async fn of_owner(
        conn: &mut AsyncPgConnection,
        owner_id: i64,
    ) -> QueryResult<Vec<Application>> {
        applications::table
            .filter(applications::owner_id.eq(owner_id))
            .order(applications::id.asc())
            .select(Application::as_select())
            .load(conn)
            .await
    }

    /// The application whose bot user is `bot_user_id`.
    pub async fn of_bot(
        conn: &mut AsyncPgConnection,
        bot_user_id: i64,
    ) -> QueryResult<Option<Application>> {
        applications::table
            .filter(applications::bot_user_id.eq(bot_user_id))
            .select(Application::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
        diesel::delete(applications::table.find(id))
            .execute(conn)
            .await
            .map(drop)
    }

    /// The applications of these bot users.
    pub async fn of_bots(
        conn: &mut AsyncPgConnection,
        bot_user_ids: &[i64],
    ) -> QueryResult<Vec<Application>> {
        applications::table
            .filter(applications::bot_user_id.eq_any(bot_user_ids))
            .select(Application::as_select())
            .load(conn)
            .await
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(applications::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn set_flags(conn: &mut AsyncPgConnection, id: i64, flags: i64) -> QueryResult<()> {
        diesel::update(applications::table.find(id))
            .set(applications::flags.eq(flags))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Creates the application's bot user (`user.id` must be the application's id) and links
    /// it. The `users` insert lives here because only an application makes bot accounts: they
    /// are verified, have no password and carry the `bot` flag no registration can set.
    pub async fn create_bot(
        &self,
        conn: &mut AsyncPgConnection,
        user: &NewUser,
    ) -> QueryResult<()> {
        diesel::insert_into(users::table)
            .values((user, users::bot.eq(true), users::verified.eq(true)))
            .execute(conn)
            .await?;
        diesel::update(applications::table.find(self.id))
            .set(applications::bot_user_id.eq(user.id))
            .execute(conn)
            .await
            .map(drop)
    }
}
