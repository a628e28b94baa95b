//! What a guild's emojis and stickers ("expressions") share: listing, getting, modifying and
//! deleting one, the audit entries, the GUILD_EMOJIS_UPDATE / GUILD_STICKERS_UPDATE event with
//! the whole list, and who may change one. Only creating them (a data URL image for an emoji, a
//! multipart upload for a sticker) and their fields differ; those stay in `emojis.rs` and
//! `stickers.rs`.
//!
//! Permissions: creating needs CREATE_GUILD_EXPRESSIONS or MANAGE_GUILD_EXPRESSIONS; changing
//! or deleting one needs MANAGE_GUILD_EXPRESSIONS, or CREATE_GUILD_EXPRESSIONS for one's own.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use diesel::QueryResult;
use diesel_async::AsyncConnection;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use spacebar_actors::guild::Audience;
use spacebar_actors::EventName;

use crate::audit::{changes, Audit, Entry};
use crate::db::users::User;
use crate::db::Connection;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::http::snowflake;
use crate::permissions::bits;
use crate::server::AppState;
use crate::storage::Key;
use crate::wire::guild::id;

/// A kind of guild expression: its table, its wire shape and its names.
pub(super) trait Expression: Clone + Send + Sync + Sized + 'static {
    /// The error for a missing one (10014 Unknown Emoji, 10060 Unknown Sticker).
    const UNKNOWN: Unknown;
    /// The event sent with the whole list after every change, and the list's field in it.
    const EVENT: EventName;
    const LIST_FIELD: &'static str;
    /// The id's name in the route (`emoji_id`), for its error.
    const PATH_ID: &'static str;
    const UPDATE_ACTION: i32;
    const DELETE_ACTION: i32;
    /// Fields of the wire shape that audit log changes leave out.
    const UNAUDITED: &'static [&'static str];

    fn creator(&self) -> Option<i64>;
    fn render(&self, creator: Option<&User>) -> Value;
    /// Where its image is stored.
    fn key(id: i64) -> Option<Key>;

    fn of_guild(conn: &mut Connection, guild_id: i64) -> BoxFuture<'_, QueryResult<Vec<Self>>>;
    fn find(
        conn: &mut Connection,
        guild_id: i64,
        id: i64,
    ) -> BoxFuture<'_, QueryResult<Option<Self>>>;
    fn save<'c>(&'c self, conn: &'c mut Connection) -> BoxFuture<'c, QueryResult<()>>;
    /// Whether there was such a one.
    fn delete(conn: &mut Connection, guild_id: i64, id: i64) -> BoxFuture<'_, QueryResult<bool>>;
}

/// The guild's expressions of one kind, with their creators.
pub async fn rendered<E: Expression>(
    conn: &mut Connection,
    guild_id: i64,
) -> Result<Vec<Value>, ApiError> {
    let all = E::of_guild(conn, guild_id).await?;
    let creators: Vec<i64> = all.iter().filter_map(E::creator).collect();
    let users = User::find_many(conn, &creators).await?;
    Ok(all
        .iter()
        .map(|e| e.render(users.iter().find(|u| Some(u.id) == e.creator())))
        .collect())
}

pub(super) async fn list<E: Expression>(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    Ok(HttpResponse::Ok().json(rendered::<E>(&mut conn, guild_id).await?))
}

pub(super) async fn get<E: Expression>(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let expression_id = snowflake(E::PATH_ID, &path.1)?;
    let mut conn = state.pool.get().await?;
    GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    let expression = E::find(&mut conn, guild_id, expression_id)
        .await?
        .ok_or(ApiError::Unknown(E::UNKNOWN))?;
    let creator = match expression.creator() {
        Some(user_id) => User::find(&mut conn, user_id).await?,
        None => None,
    };
    Ok(HttpResponse::Ok().json(expression.render(creator.as_ref())))
}

/// 50013 unless the caller may create expressions.
pub(super) fn require_create(access: &GuildAccess) -> Result<(), ApiError> {
    let create = bits::CREATE_GUILD_EXPRESSIONS | bits::MANAGE_GUILD_EXPRESSIONS;
    if access.permissions() & create == 0 {
        return Err(ApiError::MissingPermissions);
    }
    Ok(())
}

/// The expression, if the caller may change it (50013 otherwise, 10014/10060 if missing).
async fn changeable<E: Expression>(
    conn: &mut Connection,
    access: &GuildAccess,
    expression_id: i64,
) -> Result<E, ApiError> {
    let permissions = access.permissions();
    let manage = permissions & bits::MANAGE_GUILD_EXPRESSIONS != 0;
    if !manage && permissions & bits::CREATE_GUILD_EXPRESSIONS == 0 {
        return Err(ApiError::MissingPermissions);
    }
    let expression = E::find(conn, access.guild.id, expression_id)
        .await?
        .ok_or(ApiError::Unknown(E::UNKNOWN))?;
    if !manage && expression.creator() != Some(access.member.user_id) {
        return Err(ApiError::MissingPermissions);
    }
    Ok(expression)
}

/// PATCH: `apply` makes the change the body asks for (or a 400); the rest is shared.
pub(super) async fn modify<E: Expression>(
    state: &AppState,
    user_id: i64,
    audit: Audit,
    path: &(String, String),
    apply: impl FnOnce(&GuildAccess, &mut E) -> Result<(), ApiError>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let expression_id = snowflake(E::PATH_ID, &path.1)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, user_id).await?;
    let mut expression: E = changeable(&mut conn, &access, expression_id).await?;
    let before = expression.clone();
    apply(&access, &mut expression)?;
    let entry = audit
        .entry(
            state,
            guild_id,
            user_id,
            E::UPDATE_ACTION,
            Some(expression_id),
        )
        .changes(audit_changes(Some(&before), Some(&expression)));
    conn.transaction(async |conn| {
        expression.save(conn).await?;
        entry.write(conn).await
    })
    .await?;
    state.audit_logged(&entry)?;
    publish::<E>(state, &mut conn, guild_id).await?;
    Ok(HttpResponse::Ok().json(expression.render(None)))
}

pub(super) async fn delete<E: Expression>(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let expression_id = snowflake(E::PATH_ID, &path.1)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    let expression: E = changeable(&mut conn, &access, expression_id).await?;
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            E::DELETE_ACTION,
            Some(expression_id),
        )
        .changes(audit_changes(Some(&expression), None));
    let deleted = Entry::with_deletion(std::slice::from_ref(&entry), &mut conn, |conn| {
        E::delete(conn, guild_id, expression_id)
    })
    .await?;
    if !deleted {
        return Err(ApiError::Unknown(E::UNKNOWN));
    }
    state.audit_logged(&entry)?;
    if let Some(key) = E::key(expression_id) {
        state.cdn.remove(&key).await;
    }
    publish::<E>(&state, &mut conn, guild_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GUILD_EMOJIS_UPDATE `{guild_id, emojis}` (or the stickers') to the guild.
pub(super) async fn publish<E: Expression>(
    state: &AppState,
    conn: &mut Connection,
    guild_id: i64,
) -> Result<(), ApiError> {
    let mut data = json!({ "guild_id": id(guild_id) });
    data[E::LIST_FIELD] = rendered::<E>(conn, guild_id).await?.into();
    state.guild_event(guild_id, E::EVENT, &data, Audience::Guild, Vec::new())
}

/// An expression's audit log changes.
pub(super) fn audit_changes<E: Expression>(old: Option<&E>, new: Option<&E>) -> Vec<Value> {
    let (old, new) = (old.map(|e| e.render(None)), new.map(|e| e.render(None)));
    changes(old.as_ref(), new.as_ref(), E::UNAUDITED)
}
