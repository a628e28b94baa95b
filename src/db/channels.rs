//! The `channels` and `permission_overwrites` tables.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::guilds::{Guild, GuildWithMember};
use super::members::Member;
use super::roles::Role;
use super::schema::{channel_recipients, channels, guilds, members, permission_overwrites};
use crate::permissions::{Overwrite, OverwriteKind};
use spacebar_actors::guild::voice::VoiceChannel;

/// Rows to one multi-row INSERT: well under PostgreSQL's 65,535 values a statement for a
/// table of a few dozen columns.
pub const ROWS_PER_INSERT: usize = 500;

/// Discord's channel types used here.
pub mod kind {
    pub const GUILD_TEXT: i32 = 0;
    pub const DM: i32 = 1;
    pub const GUILD_VOICE: i32 = 2;
    pub const GROUP_DM: i32 = 3;
    pub const GUILD_CATEGORY: i32 = 4;
    pub const GUILD_ANNOUNCEMENT: i32 = 5;
    pub const GUILD_STAGE_VOICE: i32 = 13;
    pub const GUILD_FORUM: i32 = 15;

    pub fn is_guild(kind: i32) -> bool {
        !matches!(kind, DM | GROUP_DM)
    }

    pub fn is_voice(kind: i32) -> bool {
        matches!(kind, GUILD_VOICE | GUILD_STAGE_VOICE)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable, AsChangeset)]
#[diesel(table_name = channels, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct Channel {
    pub id: i64,
    pub kind: i32,
    pub guild_id: Option<i64>,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub position: i32,
    pub parent_id: Option<i64>,
    pub nsfw: bool,
    pub bitrate: Option<i32>,
    pub user_limit: Option<i32>,
    pub rate_limit_per_user: i32,
    pub owner_id: Option<i64>,
    pub icon: Option<String>,
    pub last_message_id: Option<i64>,
    pub last_pin_timestamp: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(
    Debug, Clone, Copy, Queryable, Selectable, Insertable, AsChangeset, serde::Deserialize,
)]
#[diesel(table_name = permission_overwrites, check_for_backend(diesel::pg::Pg))]
pub struct OverwriteRow {
    pub channel_id: i64,
    pub target_id: i64,
    pub kind: i32,
    pub allow: i64,
    pub deny: i64,
}

impl OverwriteRow {
    /// The overwrites among `rows` that belong to `channel_id`, as the permission algorithm
    /// takes them.
    pub fn of_channel(rows: &[OverwriteRow], channel_id: i64) -> Vec<Overwrite> {
        rows.iter()
            .filter(|o| o.channel_id == channel_id)
            .map(OverwriteRow::overwrite)
            .collect()
    }

    pub fn overwrite(&self) -> Overwrite {
        Overwrite {
            id: self.target_id,
            kind: if self.kind == 1 {
                OverwriteKind::Member
            } else {
                OverwriteKind::Role
            },
            allow: self.allow as u64,
            deny: self.deny as u64,
        }
    }
}

/// A channel with what deciding a user's access to it takes: for a guild channel its guild
/// (with the user's membership and the roles) and its overwrites, for a DM its recipients.
pub struct ChannelWithAccess {
    pub channel: Channel,
    pub guild: Option<GuildWithMember>,
    pub overwrites: Vec<OverwriteRow>,
    pub recipients: Vec<i64>,
}

impl Channel {
    /// The channel `id` with what deciding `user_id`'s access to it takes, in one statement.
    pub async fn with_access(
        conn: &mut AsyncPgConnection,
        id: i64,
        user_id: i64,
    ) -> QueryResult<Option<ChannelWithAccess>> {
        use diesel::dsl::sql;
        use diesel::sql_types::{Array, BigInt, Json};
        type Row = (
            Channel,
            Option<Guild>,
            Option<Member>,
            serde_json::Value,
            serde_json::Value,
            Vec<i64>,
        );
        let found: Option<Row> = channels::table
            .left_join(guilds::table)
            .left_join(
                members::table.on(members::guild_id
                    .nullable()
                    .eq(channels::guild_id)
                    .and(members::user_id.eq(user_id))),
            )
            .filter(channels::id.eq(id))
            .select((
                Channel::as_select(),
                Option::<Guild>::as_select(),
                Option::<Member>::as_select(),
                Role::of_guild_json(),
                sql::<Json>(
                    "(SELECT coalesce(json_agg(o), '[]') FROM permission_overwrites o \
                     WHERE o.channel_id = channels.id)",
                ),
                sql::<Array<BigInt>>(
                    "ARRAY(SELECT r.user_id FROM channel_recipients r \
                     WHERE r.channel_id = channels.id)",
                ),
            ))
            .first(conn)
            .await
            .optional()?;
        let Some((channel, guild, member, roles, overwrites, recipients)) = found else {
            return Ok(None);
        };
        let guild = guild
            .map(|guild| GuildWithMember::read(guild, member, roles))
            .transpose()?;
        Ok(Some(ChannelWithAccess {
            channel,
            guild,
            overwrites: super::rows_from_json(overwrites)?,
            recipients,
        }))
    }

    /// This channel as a place to join voice in, if it is a voice or stage channel of
    /// `guild_id`.
    pub fn voice_in(&self, guild_id: i64) -> Option<VoiceChannel> {
        (self.guild_id == Some(guild_id) && kind::is_voice(self.kind)).then(|| VoiceChannel {
            channel_id: self.id,
            user_limit: self.user_limit.and_then(|limit| u32::try_from(limit).ok()),
            stage: self.kind == kind::GUILD_STAGE_VOICE,
        })
    }

    /// A new channel with defaults for its kind.
    pub fn new(id: i64, kind: i32, guild_id: Option<i64>, name: Option<String>) -> Self {
        Self {
            id,
            kind,
            guild_id,
            name,
            topic: None,
            position: 0,
            parent_id: None,
            nsfw: false,
            bitrate: kind::is_voice(kind).then_some(64_000),
            user_limit: kind::is_voice(kind).then_some(0),
            rate_limit_per_user: 0,
            owner_id: None,
            icon: None,
            last_message_id: None,
            last_pin_timestamp: None,
            created_at: Utc::now(),
        }
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Channel>> {
        channels::table
            .find(id)
            .select(Channel::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// The channels of several guilds, in position order.
    pub async fn of_guilds(
        conn: &mut AsyncPgConnection,
        guild_ids: &[i64],
    ) -> QueryResult<Vec<Channel>> {
        channels::table
            .filter(channels::guild_id.eq_any(guild_ids))
            .order((channels::position.asc(), channels::id.asc()))
            .select(Channel::as_select())
            .load(conn)
            .await
    }

    /// The DMs and group DMs `user_id` is a recipient of.
    pub async fn private_of(
        conn: &mut AsyncPgConnection,
        user_id: i64,
    ) -> QueryResult<Vec<Channel>> {
        channels::table
            .inner_join(channel_recipients::table)
            .filter(channel_recipients::user_id.eq(user_id))
            .select(Channel::as_select())
            .load(conn)
            .await
    }

    /// Inserts `channels` a few hundred rows to a statement (a statement takes at most 65,535
    /// values), parents before their children.
    pub async fn insert_all(conn: &mut AsyncPgConnection, channels: &[Channel]) -> QueryResult<()> {
        for rows in channels.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(channels::table)
                .values(rows)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(channels::table)
            .values(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn save(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::update(channels::table.find(self.id))
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
        diesel::delete(channels::table.find(id))
            .execute(conn)
            .await
            .map(drop)
    }

    pub async fn set_last_message(
        conn: &mut AsyncPgConnection,
        id: i64,
        message_id: i64,
    ) -> QueryResult<()> {
        Self::last_message_update(id, message_id)
            .execute(conn)
            .await
            .map(drop)
    }

    /// The UPDATE [`Channel::set_last_message`] runs, to run with others as one statement.
    pub fn last_message_update(id: i64, message_id: i64) -> impl super::Statement {
        diesel::update(channels::table.find(id)).set(channels::last_message_id.eq(message_id))
    }

    pub async fn add_recipient(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        user_id: i64,
    ) -> QueryResult<()> {
        diesel::insert_into(channel_recipients::table)
            .values((
                channel_recipients::channel_id.eq(channel_id),
                channel_recipients::user_id.eq(user_id),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await
            .map(drop)
    }

    /// Takes a user out of a private channel; whether they were in it.
    pub async fn remove_recipient(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        user_id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(channel_recipients::table.find((channel_id, user_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }

    /// Recipients of DMs and group DMs.
    pub async fn recipients(
        conn: &mut AsyncPgConnection,
        channel_ids: &[i64],
    ) -> QueryResult<Vec<(i64, i64)>> {
        channel_recipients::table
            .filter(channel_recipients::channel_id.eq_any(channel_ids))
            .select((channel_recipients::channel_id, channel_recipients::user_id))
            .load(conn)
            .await
    }
}

impl OverwriteRow {
    pub async fn of_channels(
        conn: &mut AsyncPgConnection,
        channel_ids: &[i64],
    ) -> QueryResult<Vec<OverwriteRow>> {
        permission_overwrites::table
            .filter(permission_overwrites::channel_id.eq_any(channel_ids))
            .select(OverwriteRow::as_select())
            .load(conn)
            .await
    }

    /// Inserts the new overwrites `rows`, a few hundred to a statement.
    pub async fn insert_all(
        conn: &mut AsyncPgConnection,
        rows: &[OverwriteRow],
    ) -> QueryResult<()> {
        for rows in rows.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(permission_overwrites::table)
                .values(rows)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    pub async fn upsert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::insert_into(permission_overwrites::table)
            .values(self)
            .on_conflict((
                permission_overwrites::channel_id,
                permission_overwrites::target_id,
            ))
            .do_update()
            .set(self)
            .execute(conn)
            .await
            .map(drop)
    }

    /// Makes `rows` the channel's whole set of overwrites: those not among them go.
    pub async fn replace(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        rows: &[OverwriteRow],
    ) -> QueryResult<()> {
        let kept: Vec<i64> = rows.iter().map(|r| r.target_id).collect();
        diesel::delete(
            permission_overwrites::table
                .filter(permission_overwrites::channel_id.eq(channel_id))
                .filter(permission_overwrites::target_id.ne_all(kept)),
        )
        .execute(conn)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        // One statement for them all; `rows` names each target once.
        use diesel::upsert::excluded;
        diesel::insert_into(permission_overwrites::table)
            .values(rows)
            .on_conflict((
                permission_overwrites::channel_id,
                permission_overwrites::target_id,
            ))
            .do_update()
            .set((
                permission_overwrites::kind.eq(excluded(permission_overwrites::kind)),
                permission_overwrites::allow.eq(excluded(permission_overwrites::allow)),
                permission_overwrites::deny.eq(excluded(permission_overwrites::deny)),
            ))
            .execute(conn)
            .await
            .map(drop)
    }

    /// Removes one overwrite; whether it existed.
    pub async fn delete(
        conn: &mut AsyncPgConnection,
        channel_id: i64,
        target_id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(permission_overwrites::table.find((channel_id, target_id)))
            .execute(conn)
            .await
            .map(|n| n > 0)
    }
}
