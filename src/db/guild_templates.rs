//! The `guild_templates` table: at most one template per guild, found by its code.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::schema::guild_templates as templates;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = templates, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Template {
    pub code: String,
    pub guild_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub usage_count: i32,
    pub creator_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The guild as it was when made or last synced (Discord's `serialized_source_guild`).
    pub source: Value,
}

impl Template {
    pub async fn find(conn: &mut AsyncPgConnection, code: &str) -> QueryResult<Option<Self>> {
        templates::table
            .find(code)
            .select(Self::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn of_guild(conn: &mut AsyncPgConnection, guild_id: i64) -> QueryResult<Vec<Self>> {
        templates::table
            .filter(templates::guild_id.eq(guild_id))
            .select(Self::as_select())
            .load(conn)
            .await
    }

    /// Stores a new template; false when the guild already has one.
    pub async fn insert_new(&self, conn: &mut AsyncPgConnection) -> QueryResult<bool> {
        diesel::insert_into(templates::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(|n| n == 1)
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(templates::table.find(&self.code))
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn delete(conn: &mut AsyncPgConnection, code: &str) -> QueryResult<()> {
        diesel::delete(templates::table.find(code))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Someone made a guild from it.
    pub async fn count_use(conn: &mut AsyncPgConnection, code: &str) -> QueryResult<()> {
        diesel::update(templates::table.find(code))
            .set(templates::usage_count.eq(templates::usage_count + 1))
            .execute(conn)
            .await
            .map(drop)
    }
}
