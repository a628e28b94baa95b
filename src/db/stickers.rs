//! The `stickers` table: a guild's stickers (the image is `stickers/{id}` in storage).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::stickers;

/// Discord's sticker format types.
pub mod format {
    pub const PNG: i32 = 1;
    pub const APNG: i32 = 2;
    pub const GIF: i32 = 4;
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = stickers, check_for_backend(diesel::pg::Pg))]
pub struct Sticker {
    pub id: i64,
    pub guild_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub tags: String,
    pub format_type: i32,
    pub available: bool,
    pub user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl Sticker {
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(stickers::table)
            .values(self)
            .execute(conn)
            .await
            .map(|_| ())
    }

    pub async fn of_guild(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
    ) -> QueryResult<Vec<Sticker>> {
        stickers::table
            .filter(stickers::guild_id.eq(guild_id))
            .order(stickers::id)
            .select(Sticker::as_select())
            .load(conn)
            .await
    }

    pub async fn of_guilds(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
    ) -> QueryResult<Vec<Sticker>> {
        stickers::table
            .filter(stickers::guild_id.eq_any(guild_ids))
            .order(stickers::id)
            .select(Sticker::as_select())
            .load(conn)
            .await
    }

    pub async fn find(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        id: i64,
    ) -> QueryResult<Option<Sticker>> {
        stickers::table
            .find(id)
            .filter(stickers::guild_id.eq(guild_id))
            .select(Sticker::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(stickers::table.find(self.id))
            .set((
                stickers::name.eq(&self.name),
                stickers::description.eq(&self.description),
                stickers::tags.eq(&self.tags),
            ))
            .execute(conn)
            .await
            .map(|_| ())
    }

    pub async fn delete(conn: &mut AsyncPgConnection, guild_id: i64, id: i64) -> QueryResult<bool> {
        diesel::delete(
            stickers::table
                .find(id)
                .filter(stickers::guild_id.eq(guild_id)),
        )
        .execute(conn)
        .await
        .map(|n| n > 0)
    }
}
