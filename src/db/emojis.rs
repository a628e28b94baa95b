//! The `emojis` table: a guild's custom emojis (the image is `emojis/{id}` in storage).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::emojis;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = emojis, check_for_backend(diesel::pg::Pg))]
pub struct Emoji {
    pub id: i64,
    pub guild_id: i64,
    pub name: String,
    pub user_id: Option<i64>,
    pub animated: bool,
    pub available: bool,
    pub roles: Vec<i64>,
    pub created_at: DateTime<Utc>,
}

impl Emoji {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(emojis::table)
            .values(self)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// A guild's emojis, oldest first.
    pub async fn of_guild(conn: &mut AsyncPgConnection, guild_id: i64) -> QueryResult<Vec<Emoji>> {
        emojis::table
            .filter(emojis::guild_id.eq(guild_id))
            .order(emojis::id)
            .select(Emoji::as_select())
            .load(conn)
            .await
    }

    /// The emojis of several guilds (for READY and GUILD_CREATE).
    pub async fn of_guilds(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
    ) -> QueryResult<Vec<Emoji>> {
        emojis::table
            .filter(emojis::guild_id.eq_any(guild_ids))
            .order(emojis::id)
            .select(Emoji::as_select())
            .load(conn)
            .await
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        id: i64,
    ) -> QueryResult<Option<Emoji>> {
        emojis::table
            .find(id)
            .filter(emojis::guild_id.eq(guild_id))
            .select(Emoji::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(emojis::table.find(self.id))
            .set((emojis::name.eq(&self.name), emojis::roles.eq(&self.roles)))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Whether there was such an emoji.
    pub async fn delete(conn: &mut AsyncPgConnection, guild_id: i64, id: i64) -> QueryResult<bool> {
        diesel::delete(emojis::table.find(id).filter(emojis::guild_id.eq(guild_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
