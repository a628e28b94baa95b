//! The `guild_welcome_screens` table: a guild's welcome screen (none until first set).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::schema::guild_welcome_screens as screens;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = screens, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct WelcomeScreen {
    pub guild_id: i64,
    pub enabled: bool,
    pub description: Option<String>,
    /// `[{channel_id, description, emoji_id, emoji_name}]`, checked before it was stored.
    pub welcome_channels: Value,
}

impl WelcomeScreen {
    /// The guild's welcome screen, or Discord's empty, disabled one.
    pub async fn of_guild(conn: &mut AsyncPgConnection, guild_id: i64) -> QueryResult<Self> {
        let found = screens::table
            .find(guild_id)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()?;
        Ok(found.unwrap_or(Self {
            guild_id,
            enabled: false,
            description: None,
            welcome_channels: Value::Array(Vec::new()),
        }))
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(screens::table)
            .values(self)
            .on_conflict(screens::guild_id)
            .do_update()
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }
}
