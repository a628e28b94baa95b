//! `/guilds/{guild_id}/bans/*` (BAN_MEMBERS): list bans, get one, ban, unban.
//!
//! A ban works on members and non-members alike. A member must be outranked by the caller (so
//! never the owner); they lose their membership, and what they wrote in the guild within the
//! chosen window (`delete_message_seconds`, or the older `delete_message_days`) goes in the
//! same transaction. A banned user cannot join again until the ban is lifted.

use actix_web::web::{self, Bytes, Query};
use actix_web::HttpResponse;
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::members::{query_number, removed, require_outranks, within};
use crate::audit::{action, clean_reason, Audit};
use crate::db::bans::{Ban, Cursor};
use crate::db::members::Member;
use crate::db::users::User;
use crate::events::{Change, ChannelScope, Event, Scoped};
use crate::http::access::GuildAccess;
use crate::http::error::{existed, ApiError, Unknown};
use crate::http::extractors::{path, Conn, Id, InGuild};
use crate::http::snowflake;
use crate::permissions::bits;
use crate::wire::guild::id;
use crate::wire::user::PublicUser;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/bans", web::get().to(list))
        .route("/guilds/{guild_id}/bans/{user_id}", web::get().to(get))
        .route("/guilds/{guild_id}/bans/{user_id}", web::put().to(ban))
        .route("/guilds/{guild_id}/bans/{user_id}", web::delete().to(unban));
}

/// The longest message-deletion window: seven days.
const MAX_DELETE_SECONDS: i64 = 604_800;
#[derive(Debug, Deserialize)]
pub struct ListBans {
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// `GET /guilds/{guild_id}/bans?limit=1..1000&before=&after=`: `[{reason, user}]` by user id.
pub async fn list(caller: InGuild, query: Query<ListBans>) -> Result<HttpResponse, ApiError> {
    let guild_id = caller.access.guild.id;
    let limit = query_number("limit", query.limit.as_deref(), 1000, 1, 1000)?;
    let cursor = match (query.after.as_deref(), query.before.as_deref()) {
        (Some(after), _) => Cursor::After(snowflake("after", after)?),
        (None, Some(before)) => Cursor::Before(snowflake("before", before)?),
        (None, None) => Cursor::After(0),
    };
    let mut conn = moderator(&caller.access, caller.conn).await?;
    let bans: Vec<Value> = Ban::page(&mut conn, guild_id, cursor, limit)
        .await?
        .iter()
        .map(|(ban, user)| body(ban, user))
        .collect();
    Ok(HttpResponse::Ok().json(bans))
}

/// `GET /guilds/{guild_id}/bans/{user_id}`: `{reason, user}` or 10026.
pub async fn get(caller: InGuild, user_id: Id<path::User>) -> Result<HttpResponse, ApiError> {
    let guild_id = caller.access.guild.id;
    let mut conn = moderator(&caller.access, caller.conn).await?;
    let (ban, user) = banned(&mut conn, guild_id, user_id.get()).await?;
    Ok(HttpResponse::Ok().json(body(&ban, &user)))
}

#[derive(Debug, Default, Deserialize)]
pub struct BanBody {
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    delete_message_seconds: Option<i64>,
    /// The older form, in days (0–7).
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    delete_message_days: Option<i64>,
    reason: Option<String>,
}

/// `PUT /guilds/{guild_id}/bans/{user_id}`: 204. The body is optional; the reason comes from
/// `X-Audit-Log-Reason` (URL-encoded, as libraries send it) or the body.
pub async fn ban(
    caller: InGuild<Audit>,
    user_id: Id<path::User>,
    bytes: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (session, access, conn) = (caller.session, caller.access, caller.conn);
    let (guild_id, user_id) = (access.guild.id, user_id.get());
    let body: BanBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        BanBody::default()
    } else {
        crate::http::json::parse(&bytes)?
    };
    let window = deletion_window(&body)?;
    let audit = Audit {
        reason: (caller.audit.reason).or_else(|| body.reason.as_deref().and_then(clean_reason)),
    };

    let mut conn = conn.get().await?;
    access.require(bits::BAN_MEMBERS)?;
    let user = User::find(&mut conn, user_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::User))?;
    if user_id == access.guild.owner_id {
        return Err(ApiError::MissingPermissions);
    }
    if let Some(member) = Member::find(&mut conn, guild_id, user_id).await? {
        require_outranks(&access, &member)?;
    }
    let ban = Ban::new(guild_id, user_id, audit.reason.clone());
    let mut change = Change::new(&caller.state);
    let kind = action::MEMBER_BAN_ADD;
    change.audit(audit.entry(
        &caller.state,
        guild_id,
        session.user.id,
        kind,
        Some(user_id),
    ));
    let since = Utc::now() - window;
    let (was_member, deleted) = change
        .commit(&mut conn, async |conn| {
            ban.upsert(conn).await?;
            let was_member = Member::delete(conn, guild_id, user_id).await?;
            let deleted = if window > Duration::zero() {
                Ban::delete_messages_since(conn, guild_id, user_id, since).await?
            } else {
                Vec::new()
            };
            Ok((was_member, deleted))
        })
        .await?;
    tracing::info!(
        guild_id,
        user_id,
        by = session.user.id,
        messages = deleted.len(),
        "user banned"
    );
    // Committed: what follows goes out at once, in this order.
    if was_member {
        for event in removed(guild_id, &user) {
            change.emit(event);
        }
    }
    change.emit(Event::GuildBanAdd {
        guild_id,
        user: json!(PublicUser::from(&user)),
    });
    let files = deleted.iter().map(|(c, _, a)| (*c, a.clone()));
    crate::http::channels::remove_files(&caller.state, files).await;
    let deleted = deleted.into_iter().map(|(c, m, _)| (c, m)).collect();
    for event in messages_deleted(guild_id, deleted) {
        change.emit(event);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /guilds/{guild_id}/bans/{user_id}`: 204, or 10026 when there is no such ban.
pub async fn unban(
    caller: InGuild<Audit>,
    user_id: Id<path::User>,
) -> Result<HttpResponse, ApiError> {
    let (guild_id, user_id) = (caller.access.guild.id, user_id.get());
    let by = caller.session.user.id;
    let mut conn = moderator(&caller.access, caller.conn).await?;
    let (_, user) = banned(&mut conn, guild_id, user_id).await?;
    let mut change = Change::new(&caller.state);
    let kind = action::MEMBER_BAN_REMOVE;
    change.audit(
        caller
            .audit
            .entry(&caller.state, guild_id, by, kind, Some(user_id)),
    );
    change.emit(Event::GuildBanRemove {
        guild_id,
        user: json!(PublicUser::from(&user)),
    });
    change
        .commit(&mut conn, async |conn| {
            existed(Ban::delete(conn, guild_id, user_id).await?, Unknown::Ban)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The connection of a caller with BAN_MEMBERS in the guild.
async fn moderator(access: &GuildAccess, conn: Conn) -> Result<crate::db::Pooled, ApiError> {
    access.require(bits::BAN_MEMBERS)?;
    conn.get().await
}

/// The ban of `user_id` with its user, or 10026.
async fn banned(
    conn: &mut crate::db::Connection,
    guild_id: i64,
    user_id: i64,
) -> Result<(Ban, User), ApiError> {
    Ban::find_with_user(conn, guild_id, user_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Ban))
}

/// A ban as Discord lists it.
fn body(ban: &Ban, user: &User) -> Value {
    json!({ "reason": ban.reason, "user": PublicUser::from(user) })
}

/// How far back the banned user's messages go: `delete_message_seconds` (0–604800) wins over
/// the legacy `delete_message_days` (0–7).
fn deletion_window(body: &BanBody) -> Result<Duration, ApiError> {
    let (field, value, max, unit) = match (body.delete_message_seconds, body.delete_message_days) {
        (Some(seconds), _) => ("delete_message_seconds", seconds, MAX_DELETE_SECONDS, 1),
        (None, Some(days)) => ("delete_message_days", days, 7, 86_400),
        (None, None) => return Ok(Duration::zero()),
    };
    let value = within(field, value, 0, max)?;
    Ok(Duration::seconds(value * unit))
}

/// MESSAGE_DELETE_BULK per channel for the messages a ban took with it.
fn messages_deleted(guild_id: i64, mut deleted: Vec<(i64, i64)>) -> Vec<Event> {
    deleted.sort_unstable();
    deleted
        .chunk_by(|a, b| a.0 == b.0)
        .filter_map(|chunk| {
            let (channel_id, _) = *chunk.first()?;
            let data = json!({
                "ids": chunk.iter().map(|(_, m)| id(*m)).collect::<Vec<_>>(),
                "channel_id": id(channel_id),
                "guild_id": id(guild_id),
            });
            let scope = ChannelScope {
                guild_id: Some(guild_id),
                channel_id,
                recipients: Vec::new(),
            };
            Some(Event::MessageDeleteBulk(Scoped { scope, data }))
        })
        .collect()
}
