//! `/guilds/{guild_id}/members/*`: list members, get one, modify one (nick, roles, voice mute
//! and deafen, timeout), modify oneself (`@me`, and the old `@me/nick`), and kick. Also what
//! other routes do when someone joins or leaves a guild, or a member changes.
//!
//! The hierarchy, as Discord has it: nicknames, timeouts and kicks need the caller to outrank
//! the member (nobody outranks the owner; the owner outranks everyone); roles given or taken
//! need to sit below the caller's highest role. ADMINISTRATOR grants permissions, not rank.

use actix_web::web::{self, Path, Query};
use actix_web::HttpResponse;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use spacebar_actors::guild::voice::Moderation;
use std::collections::HashSet;
use std::sync::Arc;

use super::{snapshot, voice_states};
use crate::audit::{action, changes, Audit, Entry};
use crate::db::members::Member;
use crate::db::users::User;
use crate::db::{Connection, Pooled};
use crate::events::{Change, Event, MemberChange};
use crate::http::access::GuildAccess;
use crate::http::error::{existed, ApiError, FormErrors, Unknown};
use crate::http::extractors::{path, Id, InGuild};
use crate::http::json::Json;
use crate::http::limits;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::state::AppState;
use crate::storage::Key;
use crate::wire::guild;
use crate::wire::user::PublicUser;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/members", web::get().to(list))
        .route(
            "/guilds/{guild_id}/members/@me/nick",
            web::patch().to(modify_own_nick),
        )
        .route("/guilds/{guild_id}/members/{user_id}", web::get().to(get))
        .route(
            "/guilds/{guild_id}/members/{user_id}",
            web::patch().to(modify),
        )
        .route(
            "/guilds/{guild_id}/members/{user_id}",
            web::delete().to(kick),
        );
}

/// The longest timeout Discord allows.
const MAX_TIMEOUT_DAYS: i64 = 28;

#[derive(Debug, Deserialize)]
pub struct ListMembers {
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /guilds/{guild_id}/members?limit=1..1000&after=`: members by user id.
pub async fn list(caller: InGuild, query: Query<ListMembers>) -> Result<HttpResponse, ApiError> {
    let guild_id = caller.access.guild.id;
    let limit = query_number("limit", query.limit.as_deref(), 1, 1, 1000)?;
    let after = match query.after.as_deref() {
        Some(after) => snowflake("after", after)?,
        None => 0,
    };
    let mut conn = caller.conn.get().await?;
    let members: Vec<_> = Member::page(&mut conn, guild_id, after, limit)
        .await?
        .iter()
        .map(|(m, u)| guild::member(m, Some(u)))
        .collect();
    Ok(HttpResponse::Ok().json(members))
}

/// `GET /guilds/{guild_id}/members/{user_id}` (`@me` too).
pub async fn get(caller: InGuild, path: Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let user_id = target("user_id", &path.1, caller.session.user.id)?;
    let mut conn = caller.conn.get().await?;
    let (member, user) = find(&mut conn, caller.access.guild.id, user_id).await?;
    Ok(HttpResponse::Ok().json(guild::member(&member, Some(&user))))
}

#[derive(Debug, Deserialize)]
pub struct ModifyMember {
    /// `null` or `""` resets the nickname.
    #[serde(default, deserialize_with = "present")]
    nick: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    roles: Option<Vec<i64>>,
    mute: Option<bool>,
    deaf: Option<bool>,
    /// `null` ends a timeout.
    #[serde(default, deserialize_with = "present")]
    communication_disabled_until: Option<Option<DateTime<Utc>>>,
    /// The member's own guild avatar: a data URL, or null (only on oneself).
    #[serde(default, deserialize_with = "present")]
    avatar: Option<Option<String>>,
    /// Move the member (in voice) to this voice channel; `null` disconnects them.
    #[serde(default, deserialize_with = "crate::http::ids::nullable")]
    channel_id: Option<Option<i64>>,
}

/// A field that may be absent (`None`) or `null` (`Some(None)`).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /guilds/{guild_id}/members/{user_id}` (and `@me`): the member after the change.
pub async fn modify(
    caller: InGuild<Audit>,
    path: Path<(String, String)>,
    Json(body): Json<ModifyMember>,
) -> Result<HttpResponse, ApiError> {
    let user_id = target("user_id", &path.1, caller.session.user.id)?;
    let conn = caller.conn.get().await?;
    let (member, user) = change(
        &caller.state,
        conn,
        &caller.access,
        &caller.audit,
        user_id,
        body,
    )
    .await?;
    Ok(HttpResponse::Ok().json(guild::member(&member, Some(&user))))
}

#[derive(Debug, Deserialize)]
pub struct ModifyNick {
    #[serde(default)]
    nick: Option<String>,
}

/// `PATCH /guilds/{guild_id}/members/@me/nick` (the old route): `{nick}` back.
pub async fn modify_own_nick(
    caller: InGuild<Audit>,
    Json(body): Json<ModifyNick>,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let conn = conn.get().await?;
    let body = ModifyMember {
        nick: Some(body.nick),
        roles: None,
        mute: None,
        deaf: None,
        communication_disabled_until: None,
        avatar: None,
        channel_id: None,
    };
    let (member, _) = change(
        &caller.state,
        conn,
        &access,
        &caller.audit,
        session.user.id,
        body,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "nick": member.nick })))
}

/// `DELETE /guilds/{guild_id}/members/{user_id}`: kick (KICK_MEMBERS, outranking the member).
pub async fn kick(
    caller: InGuild<Audit>,
    user_id: Id<path::User>,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let (guild_id, user_id) = (access.guild.id, user_id.get());
    let mut conn = conn.get().await?;
    access.require(bits::KICK_MEMBERS)?;
    let (member, user) = find(&mut conn, guild_id, user_id).await?;
    require_outranks(&access, &member)?;
    let mut change = Change::new(&caller.state);
    let kind = action::MEMBER_KICK;
    change.audit(caller.audit.entry(
        &caller.state,
        guild_id,
        session.user.id,
        kind,
        Some(user_id),
    ));
    for event in removed(guild_id, &user) {
        change.emit(event);
    }
    change
        .commit(&mut conn, async |conn| {
            existed(
                Member::delete(conn, guild_id, user_id).await?,
                Unknown::Member,
            )
        })
        .await?;
    tracing::info!(guild_id, user_id, by = session.user.id, "member kicked");
    Ok(HttpResponse::NoContent().finish())
}

/// Applies a member change with every check it needs, saves it and tells the guild.
async fn change(
    state: &AppState,
    mut conn: Pooled,
    access: &GuildAccess,
    audit: &Audit,
    user_id: i64,
    body: ModifyMember,
) -> Result<(Member, User), ApiError> {
    let (mut member, user) = find(&mut conn, access.guild.id, user_id).await?;
    let before = member.clone();
    let is_self = user_id == access.member.user_id;
    if let Some(nick) = body.nick {
        let nick = check_nick(nick)?;
        if nick != member.nick {
            if is_self {
                if !crate::permissions::has(access.permissions(), bits::CHANGE_NICKNAME) {
                    access.require(bits::MANAGE_NICKNAMES)?;
                }
            } else {
                access.require(bits::MANAGE_NICKNAMES)?;
                require_outranks(access, &member)?;
            }
            member.nick = nick;
        }
    }
    if let Some(roles) = body.roles {
        // Permission first, then bounded before any work; sets keep the work linear in what
        // was sent.
        access.require(bits::MANAGE_ROLES)?;
        let max = usize::try_from(state.config().limits.guild_max_roles).unwrap_or(usize::MAX);
        limits::items("roles", &roles, max)?;
        let mut kept = HashSet::new();
        // @everyone is every member's already; clients sometimes send it along.
        let wanted: Vec<i64> = roles
            .into_iter()
            .filter(|id| *id != access.guild.id && kept.insert(*id))
            .collect();
        let current: HashSet<i64> = member.roles.iter().copied().collect();
        let existing: HashSet<i64> = access.roles.iter().map(|r| r.id).collect();
        // Roles the member kept but that no longer exist go silently.
        let changed: Vec<i64> = wanted
            .iter()
            .filter(|id| !current.contains(id))
            .chain(
                member
                    .roles
                    .iter()
                    .filter(|id| !kept.contains(id) && existing.contains(id)),
            )
            .copied()
            .collect();
        if !changed.is_empty() {
            require_assignable(access, &changed)?;
        }
        member.roles = wanted;
    }
    for (wanted, current, bit) in [
        (body.mute, &mut member.mute, bits::MUTE_MEMBERS),
        (body.deaf, &mut member.deaf, bits::DEAFEN_MEMBERS),
    ] {
        if let Some(wanted) = wanted.filter(|w| *w != *current) {
            access.require(bit)?;
            *current = wanted;
        }
    }
    if let Some(until) = body.communication_disabled_until {
        let now = Utc::now();
        let until = until.filter(|until| *until > now);
        if until.is_some() || member.communication_disabled_until.is_some_and(|t| t > now) {
            access.require(bits::MODERATE_MEMBERS)?;
            require_outranks(access, &member)?;
            // Administrators cannot be timed out, as on Discord.
            let ranks = access.ranks_of(&member.roles);
            let admin = access.rank_of(user_id, &ranks).base() & bits::ADMINISTRATOR != 0;
            if admin && until.is_some() {
                return Err(ApiError::MissingPermissions);
            }
        }
        if until.is_some_and(|until| until > now + Duration::days(MAX_TIMEOUT_DAYS)) {
            return Err(FormErrors::field(
                "communication_disabled_until",
                "BASE_TYPE_BAD_TIMESTAMP",
                format!("A timeout cannot be longer than {MAX_TIMEOUT_DAYS} days."),
            )
            .into());
        }
        member.communication_disabled_until = until;
    }
    // Checked before anything is written: a move of someone not in voice changes nothing.
    let destination = match body.channel_id {
        Some(channel_id) => {
            Some(voice_states::move_target(state, &mut conn, access, user_id, channel_id).await?)
        }
        None => None,
    };
    let guild_id = access.guild.id;
    let avatar_key = |hash: &str| Key::member_avatar(guild_id, user_id, hash);
    let old_avatar = member.avatar.clone();
    let new_avatar = match body.avatar {
        Some(_) if !is_self => return Err(ApiError::MissingPermissions),
        avatar => state.cdn.image_field("avatar", avatar, avatar_key),
    };
    let (new_avatar, mut conn) = state.unheld(conn, new_avatar).await?;
    if let Some(new_avatar) = &new_avatar {
        member.avatar.clone_from(new_avatar);
    }
    let mut change = Change::new(state);
    for entry in audited(state, audit, access, &before, &member) {
        change.audit(entry);
    }
    if let Some(to) = destination {
        change.audit(voice_states::move_entry(state, audit, access, to));
    }
    // Before the voice change: the guild actor then knows the member as they are now.
    change.emit(updated(&member, &user));
    let saved = change
        .commit(&mut conn, async |conn| Ok(member.save(conn).await?))
        .await;
    if let Some(new_avatar) = &new_avatar {
        let (old, new) = (old_avatar.as_deref(), new_avatar.as_deref());
        state
            .cdn
            .settle_image(saved.is_ok(), old, new, avatar_key)
            .await;
    }
    saved?;
    let voice_changed = member.mute != before.mute || member.deaf != before.deaf;
    // A timeout takes its member out of voice, as on Discord (and keeps them out: no CONNECT).
    let timed_out = member.timed_out() && !before.timed_out();
    if voice_changed || destination.is_some() || timed_out {
        let moderation = Moderation {
            mute: Some(member.mute),
            deaf: Some(member.deaf),
            channel: if timed_out { Some(None) } else { destination },
            ..Moderation::default()
        };
        voice_states::member_changed(state, guild_id, user_id, moderation).await?;
    }
    Ok((member, user))
}

/// The audit log entries of a member change by the caller: MEMBER_UPDATE for the nickname,
/// voice and timeout, MEMBER_ROLE_UPDATE (`$add`/`$remove`) for roles; none for nothing.
pub fn audited(
    state: &AppState,
    audit: &Audit,
    access: &GuildAccess,
    before: &Member,
    after: &Member,
) -> Vec<Entry> {
    let (guild_id, caller, target) = (access.guild.id, access.member.user_id, Some(after.user_id));
    let mut entries = Vec::new();
    let skip = ["roles", "avatar", "joined_at", "premium_since", "pending"];
    let (old, new) = (guild::member(before, None), guild::member(after, None));
    let listed = changes(Some(&old), Some(&new), &skip);
    if !listed.is_empty() {
        let entry = audit.entry(state, guild_id, caller, action::MEMBER_UPDATE, target);
        entries.push(entry.changes(listed));
    }
    let named = |ids: Vec<&i64>| -> Value {
        ids.into_iter()
            .map(|id| {
                let name = access
                    .roles
                    .iter()
                    .find(|r| r.id == *id)
                    .map(|r| r.name.clone());
                json!({ "id": guild::id(*id), "name": name })
            })
            .collect()
    };
    let added: Vec<&i64> = after
        .roles
        .iter()
        .filter(|r| !before.roles.contains(r))
        .collect();
    let removed: Vec<&i64> = before
        .roles
        .iter()
        .filter(|r| !after.roles.contains(r))
        .collect();
    let mut roles = Vec::new();
    if !added.is_empty() {
        roles.push(json!({ "key": "$add", "new_value": named(added) }));
    }
    if !removed.is_empty() {
        roles.push(json!({ "key": "$remove", "new_value": named(removed) }));
    }
    if !roles.is_empty() {
        let entry = audit.entry(state, guild_id, caller, action::MEMBER_ROLE_UPDATE, target);
        entries.push(entry.changes(roles));
    }
    entries
}

/// Nicknames are 1–32 characters; empty means none.
fn check_nick(nick: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(nick) = nick.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if nick.chars().count() > 32 {
        return Err(FormErrors::field(
            "nick",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 32 in length.",
        )
        .into());
    }
    Ok(Some(nick))
}

/// `@me` is the caller; anything else must be a snowflake.
pub fn target(field: &str, text: &str, caller: i64) -> Result<i64, ApiError> {
    if text == "@me" {
        Ok(caller)
    } else {
        snowflake(field, text)
    }
}

/// A member of the guild with their user, or 10007.
pub async fn find(
    conn: &mut Connection,
    guild_id: i64,
    user_id: i64,
) -> Result<(Member, User), ApiError> {
    Member::find_with_user(conn, guild_id, user_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Member))
}

/// 50013 unless the caller outranks `member` (so never for the owner, nor for oneself).
pub fn require_outranks(access: &GuildAccess, member: &Member) -> Result<(), ApiError> {
    let ranks = access.ranks_of(&member.roles);
    if access
        .rank()
        .outranks(&access.rank_of(member.user_id, &ranks))
    {
        Ok(())
    } else {
        Err(ApiError::MissingPermissions)
    }
}

/// Checks that the caller may give or take each of `role_ids`: MANAGE_ROLES, roles of this
/// guild (10011; @everyone cannot be given), not managed by an integration, and below the
/// caller's highest role.
pub fn require_assignable(access: &GuildAccess, role_ids: &[i64]) -> Result<(), ApiError> {
    access.require(bits::MANAGE_ROLES)?;
    for id in role_ids {
        let role = access
            .roles
            .iter()
            .find(|r| r.id == *id && r.id != access.guild.id)
            .ok_or(ApiError::Unknown(Unknown::Role))?;
        if role.managed {
            return Err(ApiError::MissingPermissions);
        }
        access.require_above_role(role.position)?;
    }
    Ok(())
}

/// GUILD_MEMBER_UPDATE for a changed member, keeping the guild actor's roles current.
pub fn updated(member: &Member, user: &User) -> Event {
    Event::GuildMemberUpdate(member_change(member, user))
}

/// A member as their events carry them: their object (with `user`), and what the guild actor
/// keeps of them (their roles for permissions, the object for the member list).
pub fn member_change(member: &Member, user: &User) -> MemberChange {
    MemberChange {
        guild_id: member.guild_id,
        user_id: member.user_id,
        roles: member.roles.clone(),
        timed_out_until: member
            .communication_disabled_until
            .map(|until| until.timestamp_millis()),
        member: Arc::new(guild::member(member, Some(user))),
    }
}

/// Someone joined (their membership committed): GUILD_MEMBER_ADD to the guild, GUILD_CREATE to
/// the joiner's sessions, which start hearing the guild. The member event goes first, so the
/// guild actor knows the member when their sessions subscribe.
pub async fn joined(
    state: &AppState,
    conn: &mut Connection,
    guild_id: i64,
    user: &User,
) -> Result<(), ApiError> {
    let access = GuildAccess::load(conn, guild_id, user.id).await?;
    state.publish(&Event::GuildMemberAdd(member_change(&access.member, user)));
    state.publish(&snapshot::guild_create(state, conn, &access).await?);
    Ok(())
}

/// Someone is no longer a member (kicked, banned, or left): GUILD_MEMBER_REMOVE to the guild,
/// whose actor lets their sessions go, and GUILD_DELETE to their own sessions. To emit once
/// their membership is deleted.
pub fn removed(guild_id: i64, user: &User) -> [Event; 2] {
    [
        Event::GuildMemberRemove {
            guild_id,
            user_id: user.id,
            user: json!(PublicUser::from(user)),
        },
        Event::GuildLeft {
            guild_id,
            user_id: user.id,
        },
    ]
}

/// A whole number from the query string within `min..=max`, `default` when absent, with
/// Discord's form errors otherwise.
pub fn query_number(
    field: &str,
    text: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let value: i64 = text.trim().parse().map_err(|_| {
        FormErrors::field(
            field,
            "NUMBER_TYPE_COERCE",
            format!("Value \"{text}\" is not int."),
        )
    })?;
    within(field, value, min, max)
}

/// `value` if it is within `min..=max`, with Discord's form errors otherwise.
pub fn within(field: &str, value: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    if value < min {
        return Err(FormErrors::field(
            field,
            "NUMBER_TYPE_MIN",
            format!("int value should be greater than or equal to {min}."),
        )
        .into());
    }
    if value > max {
        return Err(FormErrors::field(
            field,
            "NUMBER_TYPE_MAX",
            format!("int value should be less than or equal to {max}."),
        )
        .into());
    }
    Ok(value)
}
