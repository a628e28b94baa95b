//! What a guild's emojis and stickers ("expressions") share: listing, getting, modifying and
//! deleting one, the audit entries, the GUILD_EMOJIS_UPDATE / GUILD_STICKERS_UPDATE event with
//! the whole list, and who may change one. Only creating them (a data URL image for an emoji, a
//! multipart upload for a sticker) and their fields differ; those stay in `emojis.rs` and
//! `stickers.rs`.
//!
//! Permissions: creating needs CREATE_GUILD_EXPRESSIONS or MANAGE_GUILD_EXPRESSIONS; changing
//! or deleting one needs MANAGE_GUILD_EXPRESSIONS, or CREATE_GUILD_EXPRESSIONS for one's own.

use actix_web::web::Data;
use actix_web::HttpResponse;
use diesel::QueryResult;
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::audit::{changes, Audit, Entry};
use crate::db::users::User;
use crate::db::{Connection, Pooled};
use crate::events::{Change, Event};
use crate::http::access::GuildAccess;
use crate::http::error::{existed, ApiError, Unknown};
use crate::http::extractors::{Id, InGuild, Segment};
use crate::permissions::bits;
use crate::state::AppState;
use crate::storage::Key;

/// A kind of guild expression: its table, its wire shape and its names.
pub(super) trait Expression: Clone + Send + Sync + Sized + 'static {
    /// The error for a missing one (10014 Unknown Emoji, 10060 Unknown Sticker).
    const UNKNOWN: Unknown;
    /// The segment of its routes that names one (`{emoji_id}`).
    type Path: Segment;
    const CREATE_ACTION: i32;
    const UPDATE_ACTION: i32;
    const DELETE_ACTION: i32;
    /// Fields of the wire shape that audit log changes leave out.
    const UNAUDITED: &'static [&'static str];

    /// The event that tells the guild its whole `list` after every change.
    fn event(guild_id: i64, list: Vec<Value>) -> Event;
    fn render(&self, creator: Option<&User>) -> Value;
    /// Where its image is stored.
    fn key(id: i64) -> Option<Key>;

    fn id(&self) -> i64;
    fn guild_id(&self) -> i64;
    fn creator(&self) -> Option<i64>;
    fn of_guild(conn: &mut Connection, guild_id: i64) -> BoxFuture<'_, QueryResult<Vec<Self>>>;
    fn find(
        conn: &mut Connection,
        guild_id: i64,
        id: i64,
    ) -> BoxFuture<'_, QueryResult<Option<Self>>>;
    fn insert<'c>(&'c self, conn: &'c mut Connection) -> BoxFuture<'c, QueryResult<()>>;
    fn save<'c>(&'c self, conn: &'c mut Connection) -> BoxFuture<'c, QueryResult<()>>;
    /// Whether there was such a one.
    fn delete(conn: &mut Connection, guild_id: i64, id: i64) -> BoxFuture<'_, QueryResult<bool>>;
}

/// The half of [`Expression`] both tables share: their fields and queries go by the same names.
macro_rules! stored_in {
    ($table:ident) => {
        fn id(&self) -> i64 {
            self.id
        }

        fn guild_id(&self) -> i64 {
            self.guild_id
        }

        fn creator(&self) -> Option<i64> {
            self.user_id
        }

        fn of_guild(
            conn: &mut crate::db::Connection,
            guild_id: i64,
        ) -> futures_util::future::BoxFuture<'_, diesel::QueryResult<Vec<Self>>> {
            Box::pin($table::of_guild(conn, guild_id))
        }

        fn find(
            conn: &mut crate::db::Connection,
            guild_id: i64,
            id: i64,
        ) -> futures_util::future::BoxFuture<'_, diesel::QueryResult<Option<Self>>> {
            Box::pin($table::find(conn, guild_id, id))
        }

        fn insert<'c>(
            &'c self,
            conn: &'c mut crate::db::Connection,
        ) -> futures_util::future::BoxFuture<'c, diesel::QueryResult<()>> {
            Box::pin($table::insert(self, conn))
        }

        fn save<'c>(
            &'c self,
            conn: &'c mut crate::db::Connection,
        ) -> futures_util::future::BoxFuture<'c, diesel::QueryResult<()>> {
            Box::pin($table::save(self, conn))
        }

        fn delete(
            conn: &mut crate::db::Connection,
            guild_id: i64,
            id: i64,
        ) -> futures_util::future::BoxFuture<'_, diesel::QueryResult<bool>> {
            Box::pin($table::delete(conn, guild_id, id))
        }
    };
}
pub(super) use stored_in;

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

pub(super) async fn list<E: Expression>(caller: InGuild) -> Result<HttpResponse, ApiError> {
    let mut conn = caller.conn.get().await?;
    Ok(HttpResponse::Ok().json(rendered::<E>(&mut conn, caller.access.guild.id).await?))
}

pub(super) async fn get<E: Expression>(
    caller: InGuild,
    expression_id: Id<E::Path>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = caller.conn.get().await?;
    let expression = E::find(&mut conn, caller.access.guild.id, expression_id.get())
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

/// An expression the caller may change (50013 otherwise, 10014/10060 if missing), with what
/// changing it needs.
struct Changeable<E> {
    /// The caller's context ([`InGuild`]), carried on for the write.
    state: Data<AppState>,
    audit: Audit,
    user_id: i64,
    access: GuildAccess,
    conn: Pooled,
    expression: E,
}

impl<E: Expression> Changeable<E> {
    async fn load(caller: InGuild<Audit>, expression_id: Id<E::Path>) -> Result<Self, ApiError> {
        let access = caller.access;
        let permissions = access.permissions();
        let manage = permissions & bits::MANAGE_GUILD_EXPRESSIONS != 0;
        if !manage && permissions & bits::CREATE_GUILD_EXPRESSIONS == 0 {
            return Err(ApiError::MissingPermissions);
        }
        let mut conn = caller.conn.get().await?;
        let expression = E::find(&mut conn, access.guild.id, expression_id.get())
            .await?
            .ok_or(ApiError::Unknown(E::UNKNOWN))?;
        if !manage && expression.creator() != Some(access.member.user_id) {
            return Err(ApiError::MissingPermissions);
        }
        Ok(Self {
            state: caller.state,
            audit: caller.audit,
            user_id: caller.session.user.id,
            access,
            conn,
            expression,
        })
    }
}

/// POST, once the image is stored: saves the new one with its audit entry and tells the guild;
/// if the save fails, the image goes again.
pub(super) async fn insert<E: Expression>(
    state: &AppState,
    conn: &mut Connection,
    audit: &Audit,
    user_id: i64,
    expression: &E,
) -> Result<(), ApiError> {
    let mut change = Change::audited(
        state,
        Step::Created(expression).entry(state, audit, user_id),
    );
    let saved = change
        .commit(conn, async |conn| Ok(expression.insert(conn).await?))
        .await;
    if let Err(error) = saved {
        if let Some(key) = E::key(expression.id()) {
            state.cdn.remove(&key).await;
        }
        return Err(error);
    }
    publish::<E>(&mut change, conn, expression.guild_id()).await
}

/// PATCH: `apply` makes the change the body asks for (or a 400); the rest is shared.
pub(super) async fn modify<E: Expression>(
    caller: InGuild<Audit>,
    expression_id: Id<E::Path>,
    apply: impl FnOnce(&GuildAccess, &mut E) -> Result<(), ApiError>,
) -> Result<HttpResponse, ApiError> {
    let Changeable {
        state,
        audit,
        user_id,
        access,
        mut conn,
        expression: before,
    } = Changeable::<E>::load(caller, expression_id).await?;
    let mut after = before.clone();
    apply(&access, &mut after)?;
    let mut change = Change::new(&state);
    let step = Step::Changed {
        before: &before,
        after: &after,
    };
    change.audit(step.entry(&state, &audit, user_id));
    change
        .commit(&mut conn, async |conn| Ok(after.save(conn).await?))
        .await?;
    publish::<E>(&mut change, &mut conn, access.guild.id).await?;
    Ok(HttpResponse::Ok().json(after.render(None)))
}

pub(super) async fn delete<E: Expression>(
    caller: InGuild<Audit>,
    expression_id: Id<E::Path>,
) -> Result<HttpResponse, ApiError> {
    let mut target = Changeable::<E>::load(caller, expression_id).await?;
    let (guild_id, id) = (target.access.guild.id, target.expression.id());
    let entry =
        Step::Deleted(&target.expression).entry(&target.state, &target.audit, target.user_id);
    let mut change = Change::audited(&target.state, entry);
    change.remove_files(E::key(id));
    change
        .commit(&mut target.conn, async |conn| {
            // Deleted meanwhile by another request: no entry, nothing to tell.
            existed(E::delete(conn, guild_id, id).await?, E::UNKNOWN)
        })
        .await?;
    publish::<E>(&mut change, &mut target.conn, guild_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// After the commit: GUILD_EMOJIS_UPDATE `{guild_id, emojis}` (or the stickers') to the guild.
async fn publish<E: Expression>(
    change: &mut Change<'_>,
    conn: &mut Connection,
    guild_id: i64,
) -> Result<(), ApiError> {
    change.emit(E::event(guild_id, rendered::<E>(conn, guild_id).await?));
    Ok(())
}

/// What a write did to one expression, for its audit log entry.
enum Step<'a, E> {
    Created(&'a E),
    Changed { before: &'a E, after: &'a E },
    Deleted(&'a E),
}

impl<E: Expression> Step<'_, E> {
    /// Its audit log entry by `user_id`, with the fields that changed.
    fn entry(self, state: &AppState, audit: &Audit, user_id: i64) -> Entry {
        let (action, about, old, new) = match self {
            Step::Created(new) => (E::CREATE_ACTION, new, None, Some(new)),
            Step::Changed { before, after } => (E::UPDATE_ACTION, after, Some(before), Some(after)),
            Step::Deleted(old) => (E::DELETE_ACTION, old, Some(old), None),
        };
        let (old, new) = (old.map(|e| e.render(None)), new.map(|e| e.render(None)));
        audit
            .entry(state, about.guild_id(), user_id, action, Some(about.id()))
            .changes(changes(old.as_ref(), new.as_ref(), E::UNAUDITED))
    }
}
