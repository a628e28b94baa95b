//! The `guilds` table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::members::Member;
use super::roles::Role;
use super::schema::{guilds, members};
use super::users::Order;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable, AsChangeset)]
#[diesel(table_name = guilds, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Guild {
    pub id: i64,
    pub name: String,
    pub icon: Option<String>,
    pub banner: Option<String>,
    pub splash: Option<String>,
    pub description: Option<String>,
    pub owner_id: i64,
    pub afk_channel_id: Option<i64>,
    pub afk_timeout: i32,
    pub system_channel_id: Option<i64>,
    pub rules_channel_id: Option<i64>,
    pub verification_level: i32,
    pub default_message_notifications: i32,
    pub explicit_content_filter: i32,
    pub mfa_level: i32,
    pub nsfw_level: i32,
    pub premium_tier: i32,
    pub preferred_locale: String,
    pub features: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A guild with what deciding a user's access to it takes: their membership, if any, and the
/// guild's roles (in position order).
pub struct GuildWithMember {
    pub guild: Guild,
    pub member: Option<Member>,
    pub roles: Vec<Role>,
}

impl GuildWithMember {
    /// The guild and membership a statement read, with the roles it read as
    /// [`Role::of_guild_json`].
    pub fn read(
        guild: Guild,
        member: Option<Member>,
        roles: serde_json::Value,
    ) -> QueryResult<Self> {
        Ok(Self {
            guild,
            member,
            roles: super::rows_from_json(roles)?,
        })
    }
}

impl Guild {
    /// The guild `id` with `user_id`'s membership and the guild's roles, in one statement.
    pub async fn with_member(
        conn: &mut AsyncPgConnection,
        id: i64,
        user_id: i64,
    ) -> QueryResult<Option<GuildWithMember>> {
        let found: Option<(Guild, Option<Member>, serde_json::Value)> = guilds::table
            .left_join(
                members::table.on(members::guild_id
                    .eq(guilds::id)
                    .and(members::user_id.eq(user_id))),
            )
            .filter(guilds::id.eq(id))
            .select((
                Guild::as_select(),
                Option::<Member>::as_select(),
                Role::of_guild_json(),
            ))
            .first(conn)
            .await
            .optional()?;
        found
            .map(|(guild, member, roles)| GuildWithMember::read(guild, member, roles))
            .transpose()
    }

    /// A new guild with Discord's defaults.
    pub fn new(id: i64, name: String, owner_id: i64) -> Self {
        Self {
            id,
            name,
            icon: None,
            banner: None,
            splash: None,
            description: None,
            owner_id,
            afk_channel_id: None,
            afk_timeout: 300,
            system_channel_id: None,
            rules_channel_id: None,
            verification_level: 0,
            default_message_notifications: 0,
            explicit_content_filter: 0,
            mfa_level: 0,
            nsfw_level: 0,
            premium_tier: 0,
            preferred_locale: "en-US".into(),
            features: Vec::new(),
            created_at: Utc::now(),
        }
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Guild>> {
        guilds::table
            .find(id)
            .select(Guild::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Every guild `user_id` is a member of, oldest membership first.
    pub async fn of_user(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<Guild>> {
        guilds::table
            .inner_join(members::table)
            .filter(members::user_id.eq(user_id))
            .order(members::joined_at.asc())
            .select(Guild::as_select())
            .load(conn)
            .await
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(guilds::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Writes every column of `self` back.
    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(guilds::table.find(self.id))
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// A page of every guild, by id, after and/or before the given ids.
    pub async fn page(
        conn: &mut AsyncPgConnection,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
        order: Order,
    ) -> QueryResult<Vec<Guild>> {
        let mut query = guilds::table.select(Guild::as_select()).into_boxed();
        if let Some(after) = after {
            query = query.filter(guilds::id.gt(after));
        }
        if let Some(before) = before {
            query = query.filter(guilds::id.lt(before));
        }
        query = match order {
            Order::Ascending => query.order(guilds::id.asc()),
            Order::Descending => query.order(guilds::id.desc()),
        };
        query.limit(limit).load(conn).await
    }

    /// The guilds `user_id` owns.
    pub async fn owned_by(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<i64>> {
        guilds::table
            .filter(guilds::owner_id.eq(user_id))
            .select(guilds::id)
            .load(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
        diesel::delete(guilds::table.find(id))
            .execute(conn)
            .await
            .map(drop)
    }
}
