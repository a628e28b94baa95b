//! The `application_commands` table: an application's commands, global (`guild_id` null) or
//! of one guild.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::application_commands;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = application_commands, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Command {
    pub id: i64,
    pub application_id: i64,
    pub guild_id: Option<i64>,
    pub kind: i32,
    pub name: String,
    pub description: String,
    pub options: serde_json::Value,
    pub default_member_permissions: Option<String>,
    pub dm_permission: bool,
    pub nsfw: bool,
    pub version: i64,
}

impl Command {
    /// The commands of an application in one place (`None`: its global ones), oldest first.
    pub async fn of(
        conn: &mut AsyncPgConnection,
        application_id: i64,
        guild_id: Option<i64>,
    ) -> QueryResult<Vec<Command>> {
        let query = application_commands::table
            .filter(application_commands::application_id.eq(application_id))
            .select(Command::as_select())
            .order(application_commands::id.asc())
            .into_boxed();
        match guild_id {
            Some(guild_id) => query.filter(application_commands::guild_id.eq(guild_id)),
            None => query.filter(application_commands::guild_id.is_null()),
        }
        .load(conn)
        .await
    }

    /// Every command usable in a guild: its own, and the global ones of `applications`.
    pub async fn usable_in(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        applications: &[i64],
    ) -> QueryResult<Vec<Command>> {
        application_commands::table
            .filter(application_commands::application_id.eq_any(applications))
            .filter(
                application_commands::guild_id
                    .eq(guild_id)
                    .or(application_commands::guild_id.is_null()),
            )
            .select(Command::as_select())
            .order(application_commands::id.asc())
            .load(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Command>> {
        application_commands::table
            .find(id)
            .select(Command::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Inserts the command, or replaces the one of the same kind and name in the same place
    /// (keeping its id); the command as stored.
    pub async fn upsert(&self, conn: &mut AsyncPgConnection) -> QueryResult<Command> {
        let existing = Self::of(conn, self.application_id, self.guild_id)
            .await?
            .into_iter()
            .find(|c| c.kind == self.kind && c.name == self.name);
        match existing {
            Some(existing) => {
                let replaced = Command {
                    id: existing.id,
                    ..self.clone()
                };
                replaced.save(conn).await?;
                Ok(replaced)
            }
            None => {
                diesel::insert_into(application_commands::table)
                    .values(self)
                    .execute(conn)
                    .await?;
                Ok(self.clone())
            }
        }
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(application_commands::table.find(self.id))
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
        diesel::delete(application_commands::table.find(id))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Deletes the application's commands in one place but `keep`.
    pub async fn delete_others(
        conn: &mut AsyncPgConnection,
        application_id: i64,
        guild_id: Option<i64>,
        keep: &[i64],
    ) -> QueryResult<Vec<Command>> {
        let gone: Vec<Command> = Self::of(conn, application_id, guild_id)
            .await?
            .into_iter()
            .filter(|c| !keep.contains(&c.id))
            .collect();
        let ids: Vec<i64> = gone.iter().map(|c| c.id).collect();
        diesel::delete(application_commands::table.filter(application_commands::id.eq_any(&ids)))
            .execute(conn)
            .await?;
        Ok(gone)
    }
}
