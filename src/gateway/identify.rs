//! IDENTIFY → READY: authenticates the token and builds READY, READY_SUPPLEMENTAL and (for
//! bots) one GUILD_CREATE per guild, in a constant number of queries however many guilds the
//! account is in.

use spacebar_actors::EventName;
use std::collections::{HashMap, HashSet};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use spacebar_actors::guild::voice::GetVoiceStates;
use spacebar_actors::intents::{self, allowed_privileged, bits as intent_bits, Shard};
use spacebar_actors::presence::{self, Aggregate, Platform, Presence, Status};
use spacebar_actors::registry::{GetPresences, Presences};
use spacebar_actors::session::backend::{BackendError, MembersRequest};
use spacebar_actors::session::handover::Handover;
use spacebar_actors::session::protocol::CLIENT_STATE_V2;
use spacebar_actors::session::{
    Identified, IdentifyError, IdentifyRequest, SessionBackend, VoiceTarget,
};
use spacebar_actors::voice::RoomKey;
use spacebar_actors::Dispatch;

use crate::cluster::Cluster;
use crate::credentials::authenticate;
use crate::db::applications::Application;
use crate::db::channels::{Channel, OverwriteRow};
use crate::db::emojis::Emoji;
use crate::db::guilds::Guild;
use crate::db::members::Member;
use crate::db::read_states::ReadState;
use crate::db::relationships::{kind as relationship_kind, Relationship};
use crate::db::roles::Role;
use crate::db::stickers::Sticker;
use crate::db::users::User;
use crate::db::Connection;
use crate::state::AppState;
use crate::wire::guild::{self, id, GuildSnapshot};
use crate::wire::user::{PrivateUser, PublicUser};
use crate::wire::{expression, settings};

impl AppState {
    /// A session another node holds: described (`release: false`) or taken over; on a single
    /// process there is no other node.
    fn handover(
        &self,
        session_id: String,
        release: bool,
    ) -> BoxFuture<'static, Result<Option<Handover>, BackendError>> {
        let handoffs = self.cluster.as_ref().map(Cluster::handoffs);
        Box::pin(async move {
            let Some(handoffs) = handoffs else {
                return Ok(None);
            };
            let found = match release {
                true => handoffs.release(&session_id).await,
                false => handoffs.locate(&session_id).await,
            };
            found.map_err(BackendError::new)
        })
    }
}

/// The version of the client API this server's READY follows, as Discord reports it.
const API_CODE_VERSION: u32 = 1;

impl SessionBackend for AppState {
    fn authenticate(&self, token: String) -> BoxFuture<'static, Result<i64, IdentifyError>> {
        let pool = self.pool.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let mut conn = pool.get().await.map_err(IdentifyError::internal)?;
            let session = authenticate(&mut conn, &tokens, &token)
                .await
                .map_err(IdentifyError::internal)?;
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
        let registry = self.tree.sessions.clone();
        let guild_actors = self.tree.guilds.clone();
        let max_guilds_per_shard = self.config().gateway.max_guilds_per_shard;
        let handoffs = self.cluster.as_ref().map(Cluster::handoffs);
        let voice = self.cluster.as_ref().map(|c| c.voice.clone());
        Box::pin(async move {
            let mut conn = pool.get().await.map_err(IdentifyError::internal)?;
            let session = authenticate(&mut conn, &tokens, &request.token)
                .await
                .map_err(IdentifyError::internal)?
                .ok_or(IdentifyError::AuthenticationFailed)?;
            let user = &session.user;
            let (application, intents) = if user.bot {
                // A bot's application shares its id; its flags allow the privileged intents.
                let flags = Application::find(&mut conn, user.id)
                    .await
                    .map_err(IdentifyError::internal)?
                    .map_or(0, |app| app.flags);
                let allowed = intents::ALL & !(intents::PRIVILEGED & !allowed_privileged(flags));
                let intents = match request.intents {
                    Some(asked) if asked & !allowed != 0 => {
                        return Err(IdentifyError::DisallowedIntents)
                    }
                    Some(asked) => asked,
                    // No intents: everything the application may have.
                    None => allowed,
                };
                // Discord's limit of guilds per shard: a bot above it must shard (or more).
                let on_shard = Member::of_user(&mut conn, user.id)
                    .await
                    .map_err(IdentifyError::internal)?
                    .iter()
                    .filter(|m| request.shard.is_none_or(|s| s.owns_guild(m.guild_id)))
                    .count();
                if on_shard > max_guilds_per_shard {
                    return Err(IdentifyError::ShardingRequired);
                }
                (Some(flags), intents)
            } else {
                // People hear everything, whatever intents they send.
                (None, intents::ALL)
            };
            let loading = Loading {
                shard: request.shard,
                // A bot's GUILD_CREATE lists every member only with GUILD_PRESENCES, as on
                // Discord, and only of guilds that are not large (of the others, who is online).
                members_up_to: (user.bot && intents & intent_bits::GUILD_PRESENCES != 0)
                    .then(|| i64::try_from(request.large_threshold).unwrap_or(250)),
            };
            let mut world = World::load(&mut conn, user, &loading)
                .await
                .map_err(IdentifyError::internal)?;
            let large = loading
                .members_up_to
                .map_or_else(Vec::new, |threshold| world.large_guilds(threshold));
            // Who of them is online, and the user's other sessions: one message, no query.
            let online = registry
                .send(GetPresences {
                    user_id: user.id,
                    of: world.friends(),
                })
                .await
                .map_err(IdentifyError::internal)?;
            // A bot with GUILD_PRESENCES: who of the members its GUILD_CREATEs list is online,
            // and who of the large guilds' members is (only they are listed there).
            let mut of = world.listed_members();
            if !large.is_empty() {
                of.extend(
                    Member::users_of_guilds(&mut conn, &large)
                        .await
                        .map_err(IdentifyError::internal)?,
                );
                of.sort_unstable();
                of.dedup();
            }
            let members_online = if of.is_empty() {
                Presences::default()
            } else {
                registry
                    .send(GetPresences { user_id: 0, of })
                    .await
                    .map_err(IdentifyError::internal)?
            };
            if !large.is_empty() {
                let listed = super::listed_in_large(&members_online, user.id);
                world
                    .list_among(&mut conn, &large, &listed)
                    .await
                    .map_err(IdentifyError::internal)?;
            }
            // Who is in voice: the guild actors hold it; one message, no query. Only sessions
            // with GUILD_VOICE_STATES hear of voice states, as on Discord.
            let hears_voice = intents & intent_bits::GUILD_VOICE_STATES != 0;
            let voice_guilds: Vec<i64> = world
                .guilds
                .iter()
                .filter(|_| hears_voice)
                .map(|g| g.id)
                .collect();
            // In a cluster, as each guild's owner keeps them (this node may hear none yet).
            let voice_states = match &voice {
                Some(voice) => voice
                    .read(&voice_guilds)
                    .await
                    .map_err(IdentifyError::internal)?,
                None => guild_actors
                    .send(GetVoiceStates {
                        guild_ids: voice_guilds,
                    })
                    .await
                    .map_err(IdentifyError::internal)?,
            };
            let live = Live {
                members_online,
                voice_states,
            };
            let mut identified = world
                .identified(
                    user,
                    session.session_id,
                    &request,
                    application,
                    &online,
                    &live,
                )
                .map_err(IdentifyError::internal)?;
            identified.intents = intents;
            // Where a RESUME reaching another node finds it. Without the record it cannot
            // resume elsewhere: worth a warning, not a refusal.
            if let Some(handoffs) = handoffs {
                if let Err(error) = handoffs.settle(&request.session_id).await {
                    tracing::warn!(%error, "the session's home was not recorded");
                }
            }
            Ok(identified)
        })
    }

    fn locate(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, Result<Option<Handover>, BackendError>> {
        self.handover(session_id, false)
    }

    fn release(
        &self,
        session_id: String,
    ) -> BoxFuture<'static, Result<Option<Handover>, BackendError>> {
        self.handover(session_id, true)
    }

    fn request_members(
        &self,
        user_id: i64,
        request: MembersRequest,
    ) -> BoxFuture<'static, Result<Vec<std::sync::Arc<Dispatch>>, BackendError>> {
        super::members::request_members(
            self.pool.clone(),
            self.tree.sessions.clone(),
            user_id,
            request,
        )
    }

    fn voice_target(
        &self,
        user_id: i64,
        guild_id: i64,
        channel_id: i64,
    ) -> BoxFuture<'static, Result<Option<VoiceTarget>, BackendError>> {
        super::voice::voice_target(self.pool.clone(), user_id, guild_id, channel_id)
    }

    fn call_recipients(
        &self,
        user_id: i64,
        channel_id: i64,
    ) -> BoxFuture<'static, Result<Option<Vec<i64>>, BackendError>> {
        super::voice::call_recipients(self.pool.clone(), user_id, channel_id)
    }

    fn place_room(
        &self,
        room: RoomKey,
    ) -> BoxFuture<'static, Result<Option<String>, BackendError>> {
        let Some(cluster) = &self.cluster else {
            return Box::pin(std::future::ready(Ok(None)));
        };
        let (placement, admissions) = (cluster.placement.clone(), self.tree.admissions.clone());
        Box::pin(async move {
            let endpoint = placement.place(&admissions, &room).await;
            endpoint.map(Some).map_err(BackendError::new)
        })
    }
}

/// What the actors know of the account's guilds now, asked for without a query.
struct Live {
    /// For a bot with GUILD_PRESENCES: who of the members its GUILD_CREATEs list is online.
    members_online: Presences,
    /// The voice states of each guild with anyone in voice.
    voice_states: HashMap<i64, Vec<Value>>,
}

impl Live {
    fn voice_states(&self, guild_id: i64) -> Vec<Value> {
        self.voice_states
            .get(&guild_id)
            .cloned()
            .unwrap_or_default()
    }
}

/// What of the account's world a session asks for.
struct Loading {
    /// Only this shard's guilds (and DMs on shard 0 only).
    shard: Option<Shard>,
    /// Every member of guilds with at most this many, for a bot's GUILD_CREATE (of larger
    /// ones, those online: [`World::list_among`]); `None`: only the bot's own member.
    members_up_to: Option<i64>,
}

/// One guild's rows. READY sorts what it loads by guild first, so building each guild's part
/// scans only that guild's channels and overwrites, not every guild's (which grows with the
/// square of the guilds an account is in).
#[derive(Default)]
struct GuildRows {
    roles: Vec<Role>,
    channels: Vec<Channel>,
    overwrites: Vec<OverwriteRow>,
    emojis: Vec<Emoji>,
    stickers: Vec<Sticker>,
    /// Members with users, of guilds not large, for bots' GUILD_CREATE.
    members: Vec<(Member, User)>,
}

/// The rows of a guild nothing was loaded for.
static NO_ROWS: GuildRows = GuildRows {
    roles: Vec::new(),
    channels: Vec::new(),
    overwrites: Vec::new(),
    emojis: Vec::new(),
    stickers: Vec::new(),
    members: Vec::new(),
};

/// Puts each row into its guild's bucket; rows of no guild (`None`) are dropped.
fn sort_by_guild<T>(
    rows: Vec<T>,
    guild_of: impl Fn(&T) -> Option<i64>,
    bucket: impl Fn(&mut GuildRows) -> &mut Vec<T>,
    into: &mut HashMap<i64, GuildRows>,
) {
    for row in rows {
        if let Some(guild_id) = guild_of(&row) {
            bucket(into.entry(guild_id).or_default()).push(row);
        }
    }
}

/// Everything READY tells an account about, loaded at once.
struct World {
    guilds: Vec<Guild>,
    /// Every guild of the account, of any shard (who hears its presence).
    all_guild_ids: Vec<i64>,
    per_guild: HashMap<i64, GuildRows>,
    memberships: HashMap<i64, Member>,
    member_counts: HashMap<i64, i64>,
    /// Guilds whose GUILD_CREATE lists members (in their `GuildRows::members`): all of them,
    /// or in a large guild those online.
    listed: HashSet<i64>,
    private_channels: Vec<Channel>,
    recipients: Vec<(i64, i64)>,
    relationships: Vec<Relationship>,
    users: HashMap<i64, User>,
    read_states: Vec<ReadState>,
}

impl World {
    async fn load(
        conn: &mut Connection,
        user: &User,
        loading: &Loading,
    ) -> diesel::QueryResult<Self> {
        let mut guilds = Guild::of_user(conn, user.id).await?;
        let all_guild_ids = guilds.iter().map(|g| g.id).collect();
        if let Some(shard) = loading.shard {
            guilds.retain(|g| shard.owns_guild(g.id));
        }
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
        let listed: Vec<i64> = match loading.members_up_to {
            Some(threshold) => member_counts
                .iter()
                .filter(|(_, n)| **n <= threshold)
                .map(|(g, _)| *g)
                .collect(),
            None => Vec::new(),
        };
        let members = if listed.is_empty() {
            Vec::new()
        } else {
            Member::of_guilds_with_users(conn, &listed, None).await?
        };
        let listed = listed.into_iter().collect();
        // Events of no guild go to shard 0 only; so do the DMs READY lists.
        let private_channels = if loading.shard.is_none_or(|shard| shard.id() == 0) {
            Channel::private_of(conn, user.id).await?
        } else {
            Vec::new()
        };
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
        let emojis = Emoji::of_guilds(conn, &guild_ids).await?;
        let stickers = Sticker::of_guilds(conn, &guild_ids).await?;
        let guild_of_channel: HashMap<i64, i64> = channels
            .iter()
            .filter_map(|c| Some((c.id, c.guild_id?)))
            .collect();
        let mut per_guild = HashMap::new();
        let into = &mut per_guild;
        sort_by_guild(
            overwrites,
            |o| guild_of_channel.get(&o.channel_id).copied(),
            |g| &mut g.overwrites,
            into,
        );
        sort_by_guild(roles, |r| Some(r.guild_id), |g| &mut g.roles, into);
        sort_by_guild(channels, |c| c.guild_id, |g| &mut g.channels, into);
        sort_by_guild(emojis, |e| Some(e.guild_id), |g| &mut g.emojis, into);
        sort_by_guild(stickers, |s| Some(s.guild_id), |g| &mut g.stickers, into);
        sort_by_guild(members, |(m, _)| Some(m.guild_id), |g| &mut g.members, into);
        Ok(Self {
            guilds,
            all_guild_ids,
            per_guild,
            memberships,
            member_counts,
            listed,
            private_channels,
            recipients,
            relationships,
            users,
            read_states,
        })
    }

    /// The guilds with more members than `threshold`.
    fn large_guilds(&self, threshold: i64) -> Vec<i64> {
        self.member_counts
            .iter()
            .filter(|(_, n)| **n > threshold)
            .map(|(g, _)| *g)
            .collect()
    }

    /// Lists in the GUILD_CREATEs of `guilds` (large ones) their members among `users` only.
    async fn list_among(
        &mut self,
        conn: &mut Connection,
        guilds: &[i64],
        users: &[i64],
    ) -> diesel::QueryResult<()> {
        let members = Member::of_guilds_with_users(conn, guilds, Some(users)).await?;
        let into = &mut self.per_guild;
        sort_by_guild(members, |(m, _)| Some(m.guild_id), |g| &mut g.members, into);
        self.listed.extend(guilds);
        Ok(())
    }

    /// The users of the members loaded for bots' GUILD_CREATEs.
    fn listed_members(&self) -> Vec<i64> {
        self.per_guild
            .values()
            .flat_map(|rows| rows.members.iter().map(|(m, _)| m.user_id))
            .collect()
    }

    /// The account's friends (relationship type 1).
    fn friends(&self) -> Vec<i64> {
        self.relationships
            .iter()
            .filter(|r| r.kind == relationship_kind::FRIEND)
            .map(|r| r.other_id)
            .collect()
    }

    /// What the account knows of one guild: the channels it may see, its membership; for a
    /// bot, the members its GUILD_CREATE lists (all, or only its own) and the presences of
    /// those online.
    fn snapshot<'a>(&'a self, guild: &'a Guild, user: &User, live: &Live) -> GuildSnapshot<'a> {
        let me = self.memberships.get(&guild.id);
        let count = self.member_counts.get(&guild.id).copied().unwrap_or(0);
        let rows = self.per_guild.get(&guild.id).unwrap_or(&NO_ROWS);
        let mut snapshot = GuildSnapshot::new(
            guild,
            &rows.roles,
            &rows.channels,
            &rows.overwrites,
            me,
            count,
        );
        snapshot.emojis = rows
            .emojis
            .iter()
            .map(|e| expression::emoji(e, None))
            .collect();
        snapshot.stickers = rows
            .stickers
            .iter()
            .map(|s| expression::sticker(s, None))
            .collect();
        snapshot.voice_states = live.voice_states(guild.id);
        if !user.bot {
            return snapshot;
        }
        snapshot.members = if self.listed.contains(&guild.id) {
            let in_guild: HashSet<i64> = rows.members.iter().map(|(m, _)| m.user_id).collect();
            snapshot.presences = live
                .members_online
                .others
                .iter()
                .filter(|(user_id, _)| in_guild.contains(user_id))
                .map(|(user_id, presence)| presence.to_json(*user_id, Some(guild.id)))
                .collect();
            rows.members
                .iter()
                .map(|(m, u)| guild::member(m, Some(u)))
                .collect()
        } else {
            me.map(|m| guild::member(m, Some(user)))
                .into_iter()
                .collect()
        };
        snapshot
    }

    fn identified(
        &self,
        user: &User,
        auth_session_id: i64,
        request: &IdentifyRequest,
        application_flags: Option<i64>,
        online: &Presences,
        live: &Live,
    ) -> Result<Identified, serde_json::Error> {
        let large = i64::try_from(request.large_threshold).unwrap_or(250);
        let snapshots: Vec<_> = self
            .guilds
            .iter()
            .map(|g| self.snapshot(g, user, live))
            .collect();
        let mut followups = Vec::new();
        let guilds: Vec<Value> = if user.bot {
            // Bots learn their guilds one GUILD_CREATE at a time (discord.js waits for each).
            for snapshot in &snapshots {
                followups.push(Dispatch::new(
                    EventName::GuildCreate,
                    &snapshot.classic(large),
                )?);
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
        followups.push(Dispatch::new(
            EventName::ReadySupplemental,
            &self.supplemental(online, live),
        )?);
        let presence = initial_presence(user, request);
        let mut ready = self.ready(user, auth_session_id, request, &presence, online);
        ready["guilds"] = Value::Array(guilds);
        if let Some(flags) = application_flags {
            // discord.js reads the application from READY; a bot's application shares its id.
            ready["application"] = json!({ "id": id(user.id), "flags": flags });
        }
        Ok(Identified {
            user_id: user.id,
            bot: user.bot,
            // Set by the caller, which checked them against the application.
            intents: intents::ALL,
            login_id: auth_session_id,
            guild_ids: self.guilds.iter().map(|g| g.id).collect(),
            ready,
            followups,
            presence,
            presence_guilds: self.all_guild_ids.clone(),
            friends: self.friends(),
        })
    }

    /// `merged_presences.friends` lists the friends who are online; `.guilds` stays empty
    /// per guild (the registry does not know who is in which guild). `guilds[].voice_states`
    /// says who is in voice (Fermi offers voice only when it is there).
    fn supplemental(&self, online: &Presences, live: &Live) -> Value {
        let per_guild = |_: &Guild| json!([]);
        let friends: Vec<Value> = online
            .others
            .iter()
            .map(|(user_id, presence)| merged_presence(*user_id, presence))
            .collect();
        json!({
            "guilds": self.guilds.iter().map(|g| json!({ "id": id(g.id), "voice_states": live.voice_states(g.id), "embedded_activities": [] })).collect::<Vec<_>>(),
            "merged_members": self.guilds.iter().map(per_guild).collect::<Vec<_>>(),
            "merged_presences": { "guilds": self.guilds.iter().map(per_guild).collect::<Vec<_>>(), "friends": friends },
            "lazy_private_channels": [],
            "disclose": [],
        })
    }

    fn ready(
        &self,
        user: &User,
        auth_session_id: i64,
        request: &IdentifyRequest,
        presence: &Presence,
        online: &Presences,
    ) -> Value {
        let user_settings = settings::merged(&user.settings);
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
        // This session first, then the user's other live ones.
        let mut sessions = vec![json!({
            "session_id": request.session_id,
            "status": presence.status.as_str(),
            "activities": presence.activities,
            "client_info": { "client": property("browser"), "os": property("os"), "version": 0 },
        })];
        sessions.extend(online.sessions.iter().map(|(session_id, other)| {
            json!({
                "session_id": session_id.as_ref(),
                "status": other.status.as_str(),
                "activities": other.activities,
                "client_info": { "client": other.platform.as_str(), "os": "unknown", "version": 0 },
            })
        }));
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
            "presences": online.others.iter().map(|(user_id, presence)| presence.to_json(*user_id, None)).collect::<Vec<_>>(),
            "session_id": request.session_id,
            "session_type": "normal",
            "resume_gateway_url": request.gateway_url,
            "read_state": { "entries": read_states, "partial": false, "version": 0 },
            "user_guild_settings": { "entries": [], "partial": false, "version": 0 },
            "sessions": sessions,
            "country_code": "US",
            "analytics_token": "",
            "auth_session_id_hash": crate::db::auth_sessions::id_hash(auth_session_id),
            "friend_suggestion_count": 0,
            "api_code_version": API_CODE_VERSION,
            "experiments": [],
            "guild_experiments": [],
            "connected_accounts": [],
            "consents": { "personalization": { "consented": false } },
            "geo_ordered_rtc_regions": [],
            "tutorial": null,
        });
        // The shard asked for, echoed as Discord does (discord.py's sharded clients read it).
        if let Some(shard) = request.shard {
            ready["shard"] = json!([shard.id(), shard.count()]);
        }
        ready
    }
}

/// The session's presence at IDENTIFY: its `presence` if valid, else the user settings'
/// status.
fn initial_presence(user: &User, request: &IdentifyRequest) -> Presence {
    let platform = Platform::from_properties(&request.properties);
    let asked = request.presence.as_ref().and_then(presence::parse_update);
    let (status, activities) = asked.unwrap_or_else(|| {
        let settings = settings::merged(&user.settings);
        let status = settings["status"].as_str().and_then(Status::parse);
        (status.unwrap_or(Status::Online), Vec::new())
    });
    Presence {
        status,
        activities,
        platform,
    }
}

/// A presence in READY_SUPPLEMENTAL's `merged_presences`.
fn merged_presence(user_id: i64, presence: &Aggregate) -> Value {
    let mut d = presence.to_json(user_id, None);
    if let Some(fields) = d.as_object_mut() {
        fields.remove("user");
        fields.insert("user_id".into(), id(user_id).into());
    }
    d
}
