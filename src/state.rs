//! [`AppState`]: what every handler and every gateway session shares, created once per
//! server, and everything it does.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use spacebar_actors::guild::voice::{
    GetVoiceState, GetVoiceStates, UpdateVoice, VoiceChange, VoiceError,
};
use spacebar_actors::interest::Topic;
use spacebar_actors::registry::{Friendship, LoginsEnded, UserChanged};
use spacebar_actors::session::SessionConfig;
use spacebar_actors::sync;
use spacebar_actors::Tree;

use crate::cdn::Cdn;
use crate::cluster::nodes::ThisNode;
use crate::cluster::{Body, Cluster};
use crate::config::{Applies, Config, ConfigError};
use crate::credentials::TokenSigner;
use crate::db::instance_bans::InstanceBan;
use crate::db::instance_config::StoredKey;
use crate::db::{self, Pool};
use crate::error::Error;
use crate::events::{self, Event};
use crate::http::rate_limits::RateLimiter;
use crate::metrics::Metrics;
use crate::request_threads::RequestThreads;
use crate::rooms::{RoomTokens, Webhooks};
use crate::snowflake::Snowflakes;

/// What every handler and every gateway session shares. Created once per server.
pub struct AppState {
    /// The configuration in effect; operators change parts of it at run time (see
    /// [`AppState::config`]).
    pub live_config: RwLock<Arc<Config>>,
    /// Addresses banned from the instance (kept in the database, checked on every request).
    pub banned_ips: RwLock<HashSet<IpAddr>>,
    pub rate_limiter: RateLimiter,
    pub pool: Pool,
    pub tokens: Arc<TokenSigner>,
    /// Signs and checks room tokens (the rooms service).
    pub room_tokens: RoomTokens,
    /// Sends rooms' webhooks (fed by their event log).
    pub room_webhooks: Webhooks,
    pub snowflakes: Snowflakes,
    pub tree: Tree,
    pub metrics: Metrics,
    pub sessions: Arc<SessionConfig>,
    /// File storage, image variants and URL signing.
    pub cdn: Cdn,
    /// This node's part in a cluster; `None` for a single process.
    pub cluster: Option<Cluster>,
    /// This node as the node registry describes it.
    pub node: ThisNode,
    /// Where requests' database work runs, apart from the gateway's connections.
    pub request_threads: RequestThreads,
}

impl AppState {
    /// Runs `work` (decoding and storing uploaded images, which wait their turn on the CDN's
    /// image workers for as long as someone's uploads keep them busy) with no database
    /// connection held: `conn`, which checked who asks and what they may do, goes back to the
    /// pool first, and a fresh one for the write comes back with `work`'s result. A route's
    /// image fields all go through here, so no client can hold the pool by sending images.
    pub async fn unheld<T, E: From<db::PoolError>>(
        &self,
        conn: db::Pooled,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<(T, db::Pooled), E> {
        drop(conn);
        let done = work.await?;
        Ok((done, self.pool.get().await?))
    }

    /// The configuration in effect now.
    pub fn config(&self) -> Arc<Config> {
        // Writers only swap the Arc.
        sync::read(&self.live_config).clone()
    }

    /// Puts configuration changes (`{"section.key": value}`) in effect, here and on every
    /// other node.
    pub fn change_config(
        &self,
        changes: serde_json::Map<String, Value>,
    ) -> Result<(), ConfigError> {
        self.change_config_here(&changes)?;
        if let Some(cluster) = &self.cluster {
            cluster.publish_to_all(Body::ConfigChanged { changes });
        }
        Ok(())
    }

    /// Puts configuration changes in effect on this node.
    pub fn change_config_here(
        &self,
        changes: &serde_json::Map<String, Value>,
    ) -> Result<(), ConfigError> {
        let changed = self.config().with_changes(changes)?;
        *sync::write(&self.live_config) = Arc::new(changed);
        Ok(())
    }

    /// Whether `ip` is banned from the instance.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        sync::read(&self.banned_ips).contains(&ip)
    }

    /// Reads again what operators keep in the database and every node applies: the
    /// configuration changes that apply at once, and the instance's banned addresses (after
    /// this node may have missed another's change of them).
    pub async fn reload_shared(&self) -> Result<(), Error> {
        let mut conn = self.pool.get().await?;
        let stored = StoredKey::all(&mut conn).await?;
        let banned = InstanceBan::banned_ips(&mut conn).await?;
        drop(conn);
        let live = stored
            .into_iter()
            .filter(|(key, _)| Config::applies(key) == Applies::Now)
            .collect();
        if let Err(error) = self.change_config_here(&live) {
            tracing::error!(%error, "the stored configuration was refused");
        }
        *sync::write(&self.banned_ips) = banned;
        Ok(())
    }

    /// Bans or unbans an address, on every node.
    pub fn set_banned(&self, ip: IpAddr, banned: bool) {
        self.ban_here(ip, banned);
        if let Some(cluster) = &self.cluster {
            cluster.publish_to_all(Body::Banned { ip, banned });
        }
    }

    /// Bans or unbans an address on this node.
    pub fn ban_here(&self, ip: IpAddr, banned: bool) {
        let mut set = sync::write(&self.banned_ips);
        if banned {
            set.insert(ip);
        } else {
            set.remove(&ip);
        }
    }

    /// Tells an event (see [`events::deliver`]); a write's events go through its
    /// [`events::Change`] instead, which calls this once the write committed.
    pub fn publish(&self, event: &Event) {
        events::deliver(&self.tree, event);
        if let Some(cluster) = &self.cluster {
            cluster.publish_event(event);
        }
    }

    /// Logins ended: the gateway sessions opened with them close with 4004. `login_id: None`
    /// ends every login of the user but `keep`.
    pub fn logins_ended(&self, user_id: i64, login_id: Option<i64>, keep: Option<i64>) {
        self.tree.sessions.do_send(LoginsEnded {
            user_id,
            login_id,
            keep,
        });
        if let Some(cluster) = &self.cluster {
            let body = Body::LoginsEnded {
                user_id,
                login_id,
                keep,
            };
            cluster.publish([Topic::User(user_id)], body);
        }
    }

    /// What others see of a user changed: their friends, on every node, hear PRESENCE_UPDATE
    /// with `user`, the public user object.
    pub fn user_changed(&self, user_id: i64, user: Value, friends: Vec<i64>) {
        if let Some(cluster) = &self.cluster {
            for &friend in &friends {
                let body = Body::UserChanged {
                    user_id,
                    user: user.clone(),
                };
                cluster.publish([Topic::User(friend)], body);
            }
        }
        self.tree.sessions.do_send(UserChanged {
            user_id,
            user,
            friends,
        });
    }

    /// Two users became friends, or stopped being friends: whether each hears the other's
    /// presence (sent after the RELATIONSHIP_* events already told).
    pub fn friendship(&self, a: i64, b: i64, friends: bool) {
        let users = [a, b];
        self.tree.sessions.do_send(Friendship { users, friends });
        if let Some(cluster) = &self.cluster {
            let body = Body::Friendship { users, friends };
            cluster.publish(users.map(Topic::User), body);
        }
    }

    /// A member's voice state in a guild, if they are in voice there (the guild's actor holds
    /// voice states; the database never sees them).
    pub async fn voice_state(&self, guild_id: i64, user_id: i64) -> Result<Option<Value>, Error> {
        if self.cluster.is_none() {
            return self
                .tree
                .guilds
                .send(GetVoiceState { guild_id, user_id })
                .await
                .map_err(Error::from);
        }
        let user_id = user_id.to_string();
        let states = self.voice_states(guild_id).await?;
        Ok(states.into_iter().find(|s| s["user_id"] == *user_id))
    }

    /// Everyone in voice in a guild: in a cluster, as the guild's owner keeps them in Redis.
    pub async fn voice_states(&self, guild_id: i64) -> Result<Vec<Value>, Error> {
        let mut found = match &self.cluster {
            Some(cluster) => cluster.voice.read(&[guild_id]).await?,
            None => self
                .tree
                .guilds
                .send(GetVoiceStates {
                    guild_ids: vec![guild_id],
                })
                .await
                .map_err(Error::from)?,
        };
        Ok(found.remove(&guild_id).unwrap_or_default())
    }

    /// Changes a member's live voice state (the guild's actor tells the guild and the voice
    /// connection): the state after it, or why there was none to change.
    pub async fn voice_change(
        &self,
        guild_id: i64,
        user_id: i64,
        change: VoiceChange,
    ) -> Result<Result<Option<Value>, VoiceError>, Error> {
        self.tree
            .guilds
            .send(UpdateVoice {
                guild_id,
                user_id,
                change,
            })
            .await
            .map_err(Error::from)
    }
}
