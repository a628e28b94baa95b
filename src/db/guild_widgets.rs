//! The `guild_widgets` table: whether a guild's widget is on, and its invite channel.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::guild_widgets as widgets;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = widgets, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Widget {
    pub guild_id: i64,
    pub enabled: bool,
    pub channel_id: Option<i64>,
}

impl Widget {
    /// The guild's widget settings, or Discord's default (off, no channel).
    pub async fn of_guild(conn: &mut AsyncPgConnection, guild_id: i64) -> QueryResult<Self> {
        let found = widgets::table
            .find(guild_id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()?;
        Ok(found.unwrap_or(Self {
            guild_id,
            enabled: false,
            channel_id: None,
        }))
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(widgets::table)
            .values(self)
            .on_conflict(widgets::guild_id)
            .do_update()
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }
}
