//! IDENTIFY → READY: authenticates the token and builds READY, READY_SUPPLEMENTAL and (for
//! bots) one GUILD_CREATE per guild, in a constant number of queries however many guilds the
//! account is in.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use spacebar_actors::session::{Identified, IdentifyError, IdentifyRequest, SessionBackend};
use spacebar_actors::Dispatch;

use crate::credentials::authenticate;
use crate::db::channels::{Channel, OverwriteRow};
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::read_states::ReadState;
use crate::db::relationships::Relationship;
use crate::db::roles::Role;
use crate::db::users::User;
use crate::db::Connection;
use crate::server::AppState;
use crate::wire::guild::{self, id, GuildSnapshot};
use crate::wire::settings;
use crate::wire::user::{PrivateUser, PublicUser};

/// The version of the client API this server's READY follows, as Discord reports it.
const API_CODE_VERSION: u32 = 1;
/// IDENTIFY capability: guilds in READY in the CLIENT_STATE_V2 shape (Fermi).
const CLIENT_STATE_V2: u64 = 1 << 10;

impl SessionBackend for AppState {
    fn authenticate(&self, token: String) -> BoxFuture<'static, Result<i64, IdentifyError>> {
        let pool = self.pool.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| IdentifyError::Internal(e.to_string()))?;
            let session = authenticate(&mut conn, &tokens, &token)
                .await
                .map_err(|e| IdentifyError::Internal(e.to_string()))?;
            session
                .map(|s| s.user.id)
                .ok_or(IdentifyError::AuthenticationFailed)
        })
    }

    fn identify(
        &self,
        request: IdentifyRequest,
    ) -> BoxFuture<'static, Result<Identified, IdentifyError>> {
        let pool = self.pool.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let internal =
                |error: &dyn std::fmt::Display| IdentifyError::Internal(error.to_string());
            let mut conn = pool.get().await.map_err(|e| internal(&e))?;
            let session = authenticate(&mut conn, &tokens, &request.token)
                .await
                .map_err(|e| internal(&e))?
                .ok_or(IdentifyError::AuthenticationFailed)?;
            let world = World::load(&mut conn, &session.user)
                .await
                .map_err(|e| internal(&e))?;
            world
                .identified(&session.user, session.session_id, &request)
                .map_err(|e| internal(&e))
        })
    }
}

/// Everything READY tells an account about, loaded at once.
struct World {
    guilds: Vec<Guild>,
    roles: Vec<Role>,
    channels: Vec<Channel>,
    overwrites: Vec<OverwriteRow>,
    memberships: HashMap<i64, Member>,
    member_counts: HashMap<i64, i64>,
    /// Members with users, of small guilds, for bots' GUILD_CREATE.
    members: Vec<(Member, User)>,
    private_channels: Vec<Channel>,
    recipients: Vec<(i64, i64)>,
    relationships: Vec<Relationship>,
    users: HashMap<i64, User>,
    read_states: Vec<ReadState>,
}

impl World {
    async fn load(conn: &mut Connection, user: &User) -> diesel::QueryResult<Self> {
        let guilds = Guild::of_user(conn, user.id).await?;
        let guild_ids: Vec<i64> = guilds.iter().map(|g| g.id).collect();
        let roles = Role::of_guilds(conn, &guild_ids).await?;
        let channels = Channel::of_guilds(conn, &guild_ids).await?;
        let channel_ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
        let overwrites = OverwriteRow::of_channels(conn, &channel_ids).await?;
        let memberships = Member::of_user(conn, user.id)
            .await?
            .into_iter()
            .map(|m| (m.guild_id, m))
            .collect();
        let member_counts: HashMap<i64, i64> = Member::counts(conn, &guild_ids)
            .await?
            .into_iter()
            .collect();
        let members = if user.bot {
            let small: Vec<i64> = member_counts
                .iter()
                .filter(|(_, n)| **n <= 250)
                .map(|(g, _)| *g)
                .collect();
            Member::of_guilds_with_users(conn, &small).await?
        } else {
            Vec::new()
        };
        let private_channels = Channel::private_of(conn, user.id).await?;
        let private_ids: Vec<i64> = private_channels.iter().map(|c| c.id).collect();
        let recipients = Channel::recipients(conn, &private_ids).await?;
        let relationships = Relationship::of_user(conn, user.id).await?;
        let mut others: Vec<i64> = recipients
            .iter()
            .map(|(_, u)| *u)
            .chain(relationships.iter().map(|r| r.other_id))
            .collect();
        others.retain(|other| *other != user.id);
        others.sort_unstable();
        others.dedup();
        let users = User::find_many(conn, &others)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let read_states = ReadState::of_user(conn, user.id).await?;
        Ok(Self {
            guilds,
            roles,
            channels,
            overwrites,
            memberships,
            member_counts,
            members,
            private_channels,
            recipients,
            relationships,
            users,
            read_states,
        })
    }

    /// What the account knows of one guild: the channels it may see, its membership.
    fn snapshot<'a>(&'a self, guild: &'a Guild) -> GuildSnapshot<'a> {
        let me = self.memberships.get(&guild.id);
        let count = self.member_counts.get(&guild.id).copied().unwrap_or(0);
        let mut snapshot = GuildSnapshot::new(
            guild,
            &self.roles,
            &self.channels,
            &self.overwrites,
            me,
            count,
        );
        snapshot.members = self
            .members
            .iter()
            .filter(|(m, _)| m.guild_id == guild.id)
            .map(|(m, u)| guild::member(m, Some(u)))
            .collect();
        snapshot
    }

    fn identified(
        &self,
        user: &User,
        auth_session_id: i64,
        request: &IdentifyRequest,
    ) -> Result<Identified, serde_json::Error> {
        let large = i64::try_from(request.large_threshold).unwrap_or(250);
        let snapshots: Vec<_> = self.guilds.iter().map(|g| self.snapshot(g)).collect();
        let mut followups = Vec::new();
        let guilds: Vec<Value> = if user.bot {
            // Bots learn their guilds one GUILD_CREATE at a time (discord.js waits for each).
            for snapshot in &snapshots {
                followups.push(Dispatch::new("GUILD_CREATE", &snapshot.classic(large))?);
            }
            self.guilds
                .iter()
                .map(|g| json!({ "id": id(g.id), "unavailable": true }))
                .collect()
        } else if request.capabilities & CLIENT_STATE_V2 != 0 {
            snapshots.iter().map(|s| s.client_state_v2(large)).collect()
        } else {
            snapshots.iter().map(|s| s.classic(large)).collect()
        };
        followups.push(Dispatch::new("READY_SUPPLEMENTAL", &self.supplemental())?);
        let mut ready = self.ready(user, auth_session_id, request);
        ready["guilds"] = Value::Array(guilds);
        Ok(Identified {
            user_id: user.id,
            login_id: auth_session_id,
            guild_ids: self.guilds.iter().map(|g| g.id).collect(),
            ready,
            followups,
        })
    }

    fn supplemental(&self) -> Value {
        let per_guild = |_: &Guild| json!([]);
        json!({
            "guilds": self.guilds.iter().map(|g| json!({ "id": id(g.id), "voice_states": [], "embedded_activities": [] })).collect::<Vec<_>>(),
            "merged_members": self.guilds.iter().map(per_guild).collect::<Vec<_>>(),
            "merged_presences": { "guilds": self.guilds.iter().map(per_guild).collect::<Vec<_>>(), "friends": [] },
            "lazy_private_channels": [],
            "disclose": [],
        })
    }

    fn ready(&self, user: &User, auth_session_id: i64, request: &IdentifyRequest) -> Value {
        let user_settings = settings::merged(&user.settings);
        let status = request
            .presence
            .as_ref()
            .and_then(|presence| presence.get("status").cloned())
            .unwrap_or_else(|| user_settings["status"].clone());
        let property = |name: &str| request.properties.get(name).cloned().unwrap_or(Value::Null);
        let merged_members: Vec<Value> = self
            .guilds
            .iter()
            .map(|g| {
                self.memberships
                    .get(&g.id)
                    .map(|m| json!([guild::member(m, None)]))
                    .unwrap_or_else(|| json!([]))
            })
            .collect();
        let private_channels: Vec<Value> = self
            .private_channels
            .iter()
            .map(|c| {
                let others: Vec<&User> = self
                    .recipients
                    .iter()
                    .filter(|(channel, other)| *channel == c.id && *other != user.id)
                    .filter_map(|(_, other)| self.users.get(other))
                    .collect();
                guild::private_channel(c, &others)
            })
            .collect();
        let relationships: Vec<Value> = self
            .relationships
            .iter()
            .filter_map(|r| {
                let other = self.users.get(&r.other_id)?;
                Some(json!({ "id": id(r.other_id), "type": r.kind, "nickname": r.nickname, "since": r.since, "user": PublicUser::from(other) }))
            })
            .collect();
        let read_states: Vec<Value> = self
            .read_states
            .iter()
            .map(|r| json!({ "id": id(r.channel_id), "last_message_id": r.last_message_id.map(id), "mention_count": r.mention_count, "last_pin_timestamp": null }))
            .collect();
        let mut ready = json!({
            "v": request.api_version,
            "user": PrivateUser::from(user),
            "user_settings": user_settings,
            "user_settings_proto": null,
            "relationships": relationships,
            "private_channels": private_channels,
            "guilds": [],
            "guild_join_requests": [],
            "merged_members": merged_members,
            "users": self.users.values().map(PublicUser::from).collect::<Vec<_>>(),
            "presences": [],
            "session_id": request.session_id,
            "session_type": "normal",
            "resume_gateway_url": request.gateway_url,
            "read_state": { "entries": read_states, "partial": false, "version": 0 },
            "user_guild_settings": { "entries": [], "partial": false, "version": 0 },
            "sessions": [{
                "session_id": request.session_id,
                "status": status,
                "activities": [],
                "client_info": { "client": property("browser"), "os": property("os"), "version": 0 },
            }],
            "country_code": "US",
            "analytics_token": "",
            "auth_session_id_hash": auth_session_hash(auth_session_id),
            "friend_suggestion_count": 0,
            "api_code_version": API_CODE_VERSION,
            "experiments": [],
            "guild_experiments": [],
            "connected_accounts": [],
            "consents": { "personalization": { "consented": false } },
            "geo_ordered_rtc_regions": [],
            "tutorial": null,
        });
        if user.bot {
            // discord.js reads the application from READY; a bot's application shares its id.
            ready["application"] = json!({ "id": id(user.id), "flags": 0 });
        }
        ready
    }
}

/// An opaque, stable name for the login session (clients compare it, never decode it).
fn auth_session_hash(auth_session_id: i64) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    auth_session_id.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}
