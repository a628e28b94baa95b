//! `/guilds/{guild_id}/emojis`: a guild's custom emojis. Creating takes a data URL image (PNG,
//! JPEG, WebP or GIF, at most `cdn.max_emoji_bytes`), stored as `emojis/{id}`; animated GIFs
//! make animated emojis. Creating needs CREATE_GUILD_EXPRESSIONS or MANAGE_GUILD_EXPRESSIONS,
//! changing and deleting MANAGE_GUILD_EXPRESSIONS. Every change sends GUILD_EMOJIS_UPDATE
//! with the whole list; a deleted emoji's file is removed.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use chrono::Utc;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::{json, Value};
use spacebar_actors::guild::Audience;

use crate::audit::{action, changes, Audit, Entry};
use crate::db::emojis::Emoji;
use crate::db::users::User;
use crate::db::Connection;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::Json;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::server::AppState;
use crate::storage::Key;
use crate::wire::expression;
use crate::wire::guild::id;

pub fn configure(cfg: &mut web::ServiceConfig) {
    const EMOJIS: &str = "/guilds/{guild_id}/emojis";
    const EMOJI: &str = "/guilds/{guild_id}/emojis/{emoji_id}";
    cfg.route(EMOJIS, web::get().to(list))
        .route(EMOJIS, web::post().to(create))
        .route(EMOJI, web::get().to(get))
        .route(EMOJI, web::patch().to(modify))
        .route(EMOJI, web::delete().to(delete));
}

/// The guild's emojis with their creators.
pub async fn rendered(conn: &mut Connection, guild_id: i64) -> Result<Vec<Value>, ApiError> {
    let emojis = Emoji::of_guild(conn, guild_id).await?;
    let creators: Vec<i64> = emojis.iter().filter_map(|e| e.user_id).collect();
    let users = User::find_many(conn, &creators).await?;
    Ok(emojis
        .iter()
        .map(|e| {
            let creator = users.iter().find(|u| Some(u.id) == e.user_id);
            expression::emoji(e, creator)
        })
        .collect())
}

async fn list(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    Ok(HttpResponse::Ok().json(rendered(&mut conn, guild_id).await?))
}

async fn get(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let emoji_id = snowflake("emoji_id", &path.1)?;
    let mut conn = state.pool.get().await?;
    GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    let emoji = Emoji::find(&mut conn, guild_id, emoji_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Emoji))?;
    let creator = match emoji.user_id {
        Some(user_id) => User::find(&mut conn, user_id).await?,
        None => None,
    };
    Ok(HttpResponse::Ok().json(expression::emoji(&emoji, creator.as_ref())))
}

#[derive(Debug, Deserialize)]
pub struct CreateEmoji {
    name: String,
    image: String,
    #[serde(default, deserialize_with = "crate::http::ids::list")]
    roles: Vec<i64>,
}

async fn create(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<String>,
    Json(body): Json<CreateEmoji>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    if access.permissions() & (bits::CREATE_GUILD_EXPRESSIONS | bits::MANAGE_GUILD_EXPRESSIONS) == 0
    {
        return Err(ApiError::MissingPermissions);
    }
    let name = check_name(&body.name)?;
    let roles = known_roles(&access, body.roles);
    let count = Emoji::of_guild(&mut conn, guild_id).await?.len();
    if u64::try_from(count).unwrap_or(u64::MAX) >= state.config().limits.guild_max_emojis {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30008,
            message: "Maximum number of emojis reached",
        });
    }
    let emoji_id = state.snowflakes.next();
    let max = state.cdn.config.max_emoji_bytes;
    let (_, info) = state
        .cdn
        .store_data_url("image", &body.image, max, |_| Key::emoji(emoji_id))
        .await?;
    let emoji = Emoji {
        id: emoji_id,
        guild_id,
        name,
        user_id: Some(session.user.id),
        animated: info.animated,
        available: true,
        roles,
        created_at: Utc::now(),
    };
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::EMOJI_CREATE,
            Some(emoji_id),
        )
        .changes(emoji_changes(None, Some(&emoji)));
    let saved = conn
        .transaction(async |conn| {
            emoji.insert(conn).await?;
            entry.write(conn).await
        })
        .await;
    if let Err(error) = saved {
        if let Some(key) = Key::emoji(emoji_id) {
            state.cdn.remove(&key).await;
        }
        return Err(error.into());
    }
    state.audit_logged(&entry)?;
    publish(&state, &mut conn, guild_id).await?;
    Ok(HttpResponse::Created().json(expression::emoji(&emoji, Some(&session.user))))
}

#[derive(Debug, Deserialize)]
pub struct ModifyEmoji {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    roles: Option<Vec<i64>>,
}

async fn modify(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
    Json(body): Json<ModifyEmoji>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let emoji_id = snowflake("emoji_id", &path.1)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_GUILD_EXPRESSIONS)?;
    let mut emoji = Emoji::find(&mut conn, guild_id, emoji_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Emoji))?;
    let before = emoji.clone();
    if let Some(name) = body.name {
        emoji.name = check_name(&name)?;
    }
    if let Some(roles) = body.roles {
        emoji.roles = known_roles(&access, roles);
    }
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::EMOJI_UPDATE,
            Some(emoji_id),
        )
        .changes(emoji_changes(Some(&before), Some(&emoji)));
    conn.transaction(async |conn| {
        emoji.save(conn).await?;
        entry.write(conn).await
    })
    .await?;
    state.audit_logged(&entry)?;
    publish(&state, &mut conn, guild_id).await?;
    Ok(HttpResponse::Ok().json(expression::emoji(&emoji, None)))
}

async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path.0)?;
    let emoji_id = snowflake("emoji_id", &path.1)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    access.require(bits::MANAGE_GUILD_EXPRESSIONS)?;
    let emoji = Emoji::find(&mut conn, guild_id, emoji_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Emoji))?;
    let entry = audit
        .entry(
            &state,
            guild_id,
            session.user.id,
            action::EMOJI_DELETE,
            Some(emoji_id),
        )
        .changes(emoji_changes(Some(&emoji), None));
    let deleted = Entry::with_deletion(std::slice::from_ref(&entry), &mut conn, |conn| {
        Box::pin(Emoji::delete(conn, guild_id, emoji_id))
    })
    .await?;
    if !deleted {
        return Err(ApiError::Unknown(Unknown::Emoji));
    }
    state.audit_logged(&entry)?;
    if let Some(key) = Key::emoji(emoji_id) {
        state.cdn.remove(&key).await;
    }
    publish(&state, &mut conn, guild_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// GUILD_EMOJIS_UPDATE `{guild_id, emojis}` to the guild.
async fn publish(state: &AppState, conn: &mut Connection, guild_id: i64) -> Result<(), ApiError> {
    let data = json!({ "guild_id": id(guild_id), "emojis": rendered(conn, guild_id).await? });
    state.guild_event(
        guild_id,
        "GUILD_EMOJIS_UPDATE",
        &data,
        Audience::Guild,
        Vec::new(),
    )
}

/// An emoji's audit log changes (its name and roles).
fn emoji_changes(old: Option<&Emoji>, new: Option<&Emoji>) -> Vec<Value> {
    let (old, new) = (
        old.map(|e| expression::emoji(e, None)),
        new.map(|e| expression::emoji(e, None)),
    );
    let skip = ["require_colons", "managed", "animated", "available"];
    changes(old.as_ref(), new.as_ref(), &skip)
}

/// Emoji names: 2 to 32 letters, digits and underscores.
fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let valid = (2..=32).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(name.to_string())
    } else {
        Err(FormErrors::field(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 2 and 32 in length, letters, digits and underscores.",
        )
        .into())
    }
}

/// Of `roles`, those that are roles of the guild.
fn known_roles(access: &GuildAccess, roles: Vec<i64>) -> Vec<i64> {
    roles
        .into_iter()
        .filter(|r| access.roles.iter().any(|role| role.id == *r))
        .collect()
}
