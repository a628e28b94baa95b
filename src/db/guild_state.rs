//! Loading a guild's state for its actor: roles, members' roles, channels' overwrites.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use spacebar_actors::guild::{GuildState, GuildStore, StoreError};

use super::channels::{Channel, OverwriteRow};
use super::guilds::Guild;
use super::members::Member;
use super::roles::Role;
use super::{Connection, Pool};
use crate::error::Error;
use crate::wire::guild as wire;

/// The guild actors' view of the database.
pub struct DbGuildStore {
    pub pool: Pool,
}

impl GuildStore for DbGuildStore {
    fn load(&self, guild_id: i64) -> BoxFuture<'static, Result<GuildState, StoreError>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let loaded = async {
                let mut conn = pool.get().await?;
                Ok::<_, Error>(load(&mut conn, guild_id).await?)
            };
            loaded.await.map_err(StoreError::new)
        })
    }

    fn members(
        &self,
        guild_id: i64,
    ) -> BoxFuture<'static, Result<HashMap<i64, Arc<Value>>, StoreError>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            let loaded = async {
                let mut conn = pool.get().await?;
                Ok::<_, Error>(Member::with_name_prefix(&mut conn, guild_id, "", None).await?)
            };
            let members = loaded.await.map_err(StoreError::new)?;
            Ok(members
                .iter()
                .map(|(member, user)| (member.user_id, Arc::new(wire::member(member, Some(user)))))
                .collect())
        })
    }
}

/// One consistent snapshot (a read-only transaction) of what the actor needs.
pub async fn load(conn: &mut Connection, guild_id: i64) -> diesel::QueryResult<GuildState> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let Some(guild) = Guild::find(conn, guild_id).await? else {
                return Ok(GuildState {
                    guild_id,
                    ..GuildState::default()
                });
            };
            let roles = Role::of_guild(conn, guild_id).await?;
            let members = Member::roles_of_guild(conn, guild_id).await?;
            let channels = Channel::of_guilds(conn, &[guild_id]).await?;
            let channel_ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
            let overwrites = OverwriteRow::of_channels(conn, &channel_ids).await?;
            let mut by_channel: HashMap<i64, Vec<_>> =
                channel_ids.iter().map(|id| (*id, Vec::new())).collect();
            for row in &overwrites {
                by_channel
                    .entry(row.channel_id)
                    .or_default()
                    .push(row.overwrite());
            }
            Ok(GuildState {
                guild_id,
                owner_id: guild.owner_id,
                roles: roles.iter().map(|r| (r.id, r.rank())).collect(),
                hoisted: roles.iter().filter(|r| r.hoist).map(|r| r.id).collect(),
                timeouts: members
                    .iter()
                    .filter_map(|(user_id, _, until)| {
                        Some((*user_id, until.as_ref()?.timestamp_millis()))
                    })
                    .collect(),
                members: members
                    .into_iter()
                    .map(|(user_id, roles, _)| (user_id, roles))
                    .collect(),
                channels: by_channel,
            })
        })
        .await
}
