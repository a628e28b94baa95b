//! `/guilds/{guild_id}/emojis`: a guild's custom emojis. Creating takes a data URL image (PNG,
//! JPEG, WebP or GIF, at most `cdn.max_emoji_bytes`), stored as `emojis/{id}`; animated GIFs
//! make animated emojis. What emojis share with stickers (permissions, get, modify, delete,
//! GUILD_EMOJIS_UPDATE with the whole list) is in `expressions.rs`.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::HttpResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::expressions::{self, stored_in, Expression};
use crate::audit::{action, Audit};
use crate::db::emojis::Emoji;
use crate::db::users::User;
use crate::events::Event;
use crate::http::access::GuildAccess;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::extractors::{path, Id, InGuild};
use crate::http::json::Json;
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
    type Path = path::Emoji;
    const CREATE_ACTION: i32 = action::EMOJI_CREATE;
    const UPDATE_ACTION: i32 = action::EMOJI_UPDATE;
    const DELETE_ACTION: i32 = action::EMOJI_DELETE;
    const UNAUDITED: &'static [&'static str] =
        &["require_colons", "managed", "animated", "available"];

    fn event(guild_id: i64, emojis: Vec<Value>) -> Event {
        Event::GuildEmojisUpdate { guild_id, emojis }
    }

    fn render(&self, creator: Option<&User>) -> Value {
        expression::emoji(self, creator)
    }

    fn key(id: i64) -> Option<Key> {
        Key::emoji(id)
    }

    stored_in!(Emoji);
}

#[derive(Debug, Deserialize)]
pub struct CreateEmoji {
    name: String,
    image: String,
    #[serde(default, deserialize_with = "crate::http::ids::list")]
    roles: Vec<i64>,
}

async fn create(
    caller: InGuild<Audit>,
    Json(body): Json<CreateEmoji>,
) -> Result<HttpResponse, ApiError> {
    let access = &caller.access;
    expressions::require_create(access)?;
    let name = check_name(&body.name)?;
    let roles = known_roles(access, body.roles);
    let guild_id = access.guild.id;
    let mut conn = caller.conn.get().await?;
    let count = Emoji::of_guild(&mut conn, guild_id).await?.len();
    if u64::try_from(count).unwrap_or(u64::MAX) >= caller.state.config().limits.guild_max_emojis {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30008,
            message: "Maximum number of emojis reached",
        });
    }
    let emoji_id = caller.state.snowflakes.next();
    let max = caller.state.cdn.config.max_emoji_bytes;
    let stored = caller
        .state
        .cdn
        .store_data_url("image", &body.image, max, |_| Key::emoji(emoji_id));
    let ((_, info), mut conn) = caller.state.unheld(conn, stored).await?;
    let emoji = Emoji {
        id: emoji_id,
        guild_id,
        name,
        user_id: Some(caller.session.user.id),
        animated: info.animated,
        available: true,
        roles,
        created_at: Utc::now(),
    };
    let creator = &caller.session.user;
    expressions::insert(&caller.state, &mut conn, &caller.audit, creator.id, &emoji).await?;
    Ok(HttpResponse::Created().json(expression::emoji(&emoji, Some(creator))))
}

#[derive(Debug, Deserialize)]
pub struct ModifyEmoji {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::ids::optional_list")]
    roles: Option<Vec<i64>>,
}

async fn modify(
    caller: InGuild<Audit>,
    emoji_id: Id<path::Emoji>,
    Json(body): Json<ModifyEmoji>,
) -> Result<HttpResponse, ApiError> {
    expressions::modify(caller, emoji_id, |access, emoji: &mut Emoji| {
        if let Some(name) = body.name {
            emoji.name = check_name(&name)?;
        }
        if let Some(roles) = body.roles {
            emoji.roles = known_roles(access, roles);
        }
        Ok(())
    })
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
