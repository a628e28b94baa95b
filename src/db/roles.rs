//! The `roles` table. The @everyone role shares its guild's id.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::roles;
use crate::permissions::RoleRank;

#[derive(
    Debug, Clone, Queryable, Selectable, Identifiable, Insertable, AsChangeset, serde::Deserialize,
)]
#[diesel(table_name = roles, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Role {
    pub id: i64,
    pub guild_id: i64,
    pub name: String,
    pub color: i32,
    pub hoist: bool,
    pub position: i32,
    pub permissions: i64,
    pub managed: bool,
    pub mentionable: bool,
    pub icon: Option<String>,
    pub unicode_emoji: Option<String>,
    pub bot_id: Option<i64>,
}

impl Role {
    pub fn new(id: i64, guild_id: i64, name: String, permissions: u64) -> Self {
        Self {
            id,
            guild_id,
            name,
            color: 0,
            hoist: false,
            position: 0,
            permissions: permissions as i64,
            managed: false,
            mentionable: false,
            icon: None,
            unicode_emoji: None,
            bot_id: None,
        }
    }

    /// The role as the permission algorithm (and the guild actor's mirror) needs it.
    pub fn rank(&self) -> RoleRank {
        RoleRank {
            id: self.id,
            permissions: self.permissions as u64,
            position: self.position,
        }
    }

    /// The roles of the guild a query on `guilds` reads, as one JSON array in position order:
    /// read in the same statement as the guild (see `GuildWithMember::read`).
    pub fn of_guild_json() -> diesel::expression::SqlLiteral<diesel::sql_types::Json> {
        diesel::dsl::sql(
            "(SELECT coalesce(json_agg(r ORDER BY r.position, r.id), '[]') \
             FROM roles r WHERE r.guild_id = guilds.id)",
        )
    }

    pub async fn of_guild(conn: &mut AsyncPgConnection, guild_id: i64) -> QueryResult<Vec<Role>> {
        Self::of_guilds(conn, &[guild_id]).await
    }

    /// The roles of several guilds, in position order.
    pub async fn of_guilds(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
    ) -> QueryResult<Vec<Role>> {
        roles::table
            .filter(roles::guild_id.eq_any(guild_ids))
            .order((roles::position.asc(), roles::id.asc()))
            .select(Role::as_select())
            .load(conn)
            .await
    }

    /// Inserts `roles`, a few hundred rows to a statement.
    pub async fn insert_all(conn: &mut AsyncPgConnection, roles: &[Role]) -> QueryResult<()> {
        for rows in roles.chunks(super::channels::ROWS_PER_INSERT) {
            diesel::insert_into(roles::table)
                .values(rows)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(roles::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(roles::table.find(self.id))
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Moves every role of a guild at `position` or above (not @everyone) one place up, to
    /// make room there.
    pub async fn shift_up_from(
        conn: &mut AsyncPgConnection,
        guild_id: i64,
        position: i32,
    ) -> QueryResult<()> {
        diesel::update(
            roles::table
                .filter(roles::guild_id.eq(guild_id))
                .filter(roles::id.ne(guild_id))
                .filter(roles::position.ge(position)),
        )
        .set(roles::position.eq(roles::position + 1))
        .execute(conn)
        .await
        .map(drop)
    }

    /// Whether there was such a role.
    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
        diesel::delete(roles::table.find(id))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
