//! `/guilds/{guild_id}/emojis`: a guild's custom emojis. Creating takes a data URL image (PNG,
//! JPEG, WebP or GIF, at most `cdn.max_emoji_bytes`), stored as `emojis/{id}`; animated GIFs
//! make animated emojis. What emojis share with stickers (permissions, get, modify, delete,
//! GUILD_EMOJIS_UPDATE with the whole list) is in `expressions.rs`.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use chrono::Utc;
use diesel::QueryResult;
use diesel_async::AsyncConnection;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use spacebar_actors::EventName;

use super::expressions::{self, Expression};
use crate::audit::{action, Audit};
use crate::db::emojis::Emoji;
use crate::db::users::User;
use crate::db::Connection;
use crate::http::access::GuildAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::Json;
use crate::http::snowflake;
use crate::server::AppState;
use crate::storage::Key;
use crate::wire::expression;

pub fn configure(cfg: &mut web::ServiceConfig) {
    const EMOJIS: &str = "/guilds/{guild_id}/emojis";
    const EMOJI: &str = "/guilds/{guild_id}/emojis/{emoji_id}";
    cfg.route(EMOJIS, web::get().to(expressions::list::<Emoji>))
        .route(EMOJIS, web::post().to(create))
        .route(EMOJI, web::get().to(expressions::get::<Emoji>))
        .route(EMOJI, web::patch().to(modify))
        .route(EMOJI, web::delete().to(expressions::delete::<Emoji>));
}

impl Expression for Emoji {
    const UNKNOWN: Unknown = Unknown::Emoji;
    const EVENT: EventName = EventName::GuildEmojisUpdate;
    const LIST_FIELD: &'static str = "emojis";
    const PATH_ID: &'static str = "emoji_id";
    const UPDATE_ACTION: i32 = action::EMOJI_UPDATE;
    const DELETE_ACTION: i32 = action::EMOJI_DELETE;
    const UNAUDITED: &'static [&'static str] =
        &["require_colons", "managed", "animated", "available"];

    fn creator(&self) -> Option<i64> {
        self.user_id
    }

    fn render(&self, creator: Option<&User>) -> Value {
        expression::emoji(self, creator)
    }

    fn key(id: i64) -> Option<Key> {
        Key::emoji(id)
    }

    fn of_guild(conn: &mut Connection, guild_id: i64) -> BoxFuture<'_, QueryResult<Vec<Self>>> {
        Box::pin(Emoji::of_guild(conn, guild_id))
    }

    fn find(
        conn: &mut Connection,
        guild_id: i64,
        id: i64,
    ) -> BoxFuture<'_, QueryResult<Option<Self>>> {
        Box::pin(Emoji::find(conn, guild_id, id))
    }

    fn save<'c>(&'c self, conn: &'c mut Connection) -> BoxFuture<'c, QueryResult<()>> {
        Box::pin(Emoji::save(self, conn))
    }

    fn delete(conn: &mut Connection, guild_id: i64, id: i64) -> BoxFuture<'_, QueryResult<bool>> {
        Box::pin(Emoji::delete(conn, guild_id, id))
    }
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
    expressions::require_create(&access)?;
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
    let stored = state
        .cdn
        .store_data_url("image", &body.image, max, |_| Key::emoji(emoji_id));
    let ((_, info), mut conn) = state.unheld(conn, stored).await?;
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
        .changes(expressions::audit_changes(None, Some(&emoji)));
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
    expressions::publish::<Emoji>(&state, &mut conn, guild_id).await?;
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
    expressions::modify(
        &state,
        session.user.id,
        audit,
        &path,
        |access, emoji: &mut Emoji| {
            if let Some(name) = body.name {
                emoji.name = check_name(&name)?;
            }
            if let Some(roles) = body.roles {
                emoji.roles = known_roles(access, roles);
            }
            Ok(())
        },
    )
    .await
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
