//! `/guilds/{guild_id}/stickers`: a guild's stickers. Creating is multipart (`name`, `tags`,
//! `description`, `file`: a PNG, APNG or GIF of at most `cdn.max_sticker_bytes`), stored as
//! `stickers/{id}`. What stickers share with emojis (permissions, get, modify, delete,
//! GUILD_STICKERS_UPDATE with the whole list) is in `expressions.rs`.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::expressions::{self, stored_in, Expression};
use crate::audit::{action, Audit};
use crate::cdn::imaging::Format;
use crate::db::stickers::{format, Sticker};
use crate::db::users::User;
use crate::events::Event;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::extractors::{path, Id, InGuild};
use crate::http::json::Json;
use crate::storage::Key;
use crate::wire::expression;

/// Discord's bound on a guild's stickers at the highest boost level.
const MAX_STICKERS: usize = 60;

pub fn configure(cfg: &mut web::ServiceConfig) {
    const STICKERS: &str = "/guilds/{guild_id}/stickers";
    const STICKER: &str = "/guilds/{guild_id}/stickers/{sticker_id}";
    cfg.route(STICKERS, web::get().to(expressions::list::<Sticker>))
        .route(STICKERS, web::post().to(create))
        .route(STICKER, web::get().to(expressions::get::<Sticker>))
        .route(STICKER, web::patch().to(modify))
        .route(STICKER, web::delete().to(expressions::delete::<Sticker>));
}

impl Expression for Sticker {
    const UNKNOWN: Unknown = Unknown::Sticker;
    type Path = path::Sticker;
    const CREATE_ACTION: i32 = action::STICKER_CREATE;
    const UPDATE_ACTION: i32 = action::STICKER_UPDATE;
    const DELETE_ACTION: i32 = action::STICKER_DELETE;
    /// Discord lists name, tags, description, format and availability.
    const UNAUDITED: &'static [&'static str] = &["type"];

    fn event(guild_id: i64, stickers: Vec<Value>) -> Event {
        Event::GuildStickersUpdate { guild_id, stickers }
    }

    fn render(&self, creator: Option<&User>) -> Value {
        expression::sticker(self, creator)
    }

    fn key(id: i64) -> Option<Key> {
        Key::sticker(id)
    }

    stored_in!(Sticker);
}

/// The parts of a sticker upload.
#[derive(Default)]
struct StickerForm {
    name: Option<String>,
    description: Option<String>,
    tags: Option<String>,
    file: Option<Bytes>,
}

async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    max_file: usize,
) -> Result<StickerForm, ApiError> {
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let mut form = StickerForm::default();
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|_| ApiError::InvalidJson)?;
        let name = part.name().unwrap_or_default().to_string();
        let limit = if name == "file" { max_file } else { 4096 };
        let mut bytes = BytesMut::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| ApiError::TooLarge)?;
            if bytes.len() + chunk.len() > limit {
                return Err(if name == "file" {
                    crate::cdn::check_size("file", limit + 1, limit)
                        .err()
                        .map_or(ApiError::TooLarge, ApiError::from)
                } else {
                    ApiError::TooLarge
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || Some(String::from_utf8_lossy(&bytes).trim().to_string());
        match name.as_str() {
            "name" => form.name = text(),
            "description" => form.description = text(),
            "tags" => form.tags = text(),
            "file" => form.file = Some(bytes.clone().freeze()),
            _ => {}
        }
    }
    Ok(form)
}

async fn create(
    req: HttpRequest,
    caller: InGuild<Audit>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let guild_id = caller.access.guild.id;
    // Permission first, then the file (the extractor holds no connection while it comes).
    expressions::require_create(&caller.access)?;
    let form = read_form(&req, payload, caller.state.cdn.config.max_sticker_bytes).await?;
    let mut errors = FormErrors::default();
    let name = form.name.unwrap_or_default();
    check_fields(
        &mut errors,
        Some(&name),
        form.tags.as_deref().or(Some("")),
        form.description.as_deref(),
    );
    let file = form.file.unwrap_or_default();
    let checked = caller
        .state
        .cdn
        .checked_image("file", file.clone())
        .await
        .ok();
    let format_type = match checked {
        Some(info) if info.format == Format::Png && info.animated => format::APNG,
        Some(info) if info.format == Format::Png => format::PNG,
        Some(info) if info.format == Format::Gif => format::GIF,
        _ => {
            errors.add(
                "file",
                "STICKER_INVALID",
                "Sticker must be a PNG, APNG or GIF.",
            );
            0
        }
    };
    errors.into_result()?;
    let mut conn = caller.conn.get().await?;
    if Sticker::of_guild(&mut conn, guild_id).await?.len() >= MAX_STICKERS {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30039,
            message: "Maximum number of stickers reached",
        });
    }
    let sticker = Sticker {
        id: caller.state.snowflakes.next(),
        guild_id,
        name,
        description: form.description.filter(|d| !d.is_empty()),
        tags: form.tags.unwrap_or_default(),
        format_type,
        available: true,
        user_id: Some(caller.session.user.id),
        created_at: Utc::now(),
    };
    let key = Key::sticker(sticker.id).ok_or(ApiError::Unknown(Unknown::Sticker))?;
    let put = async { caller.state.cdn.storage.put(&key, file).await };
    let ((), mut conn) = caller
        .state
        .unheld(conn, async { put.await.map_err(ApiError::internal) })
        .await?;
    let creator = &caller.session.user;
    expressions::insert(
        &caller.state,
        &mut conn,
        &caller.audit,
        creator.id,
        &sticker,
    )
    .await?;
    Ok(HttpResponse::Ok().json(expression::sticker(&sticker, Some(creator))))
}

#[derive(Debug, Deserialize)]
pub struct ModifySticker {
    name: Option<String>,
    description: Option<String>,
    tags: Option<String>,
}

async fn modify(
    caller: InGuild<Audit>,
    sticker_id: Id<path::Sticker>,
    Json(body): Json<ModifySticker>,
) -> Result<HttpResponse, ApiError> {
    expressions::modify(caller, sticker_id, |_, sticker: &mut Sticker| {
        let mut errors = FormErrors::default();
        check_fields(
            &mut errors,
            body.name.as_deref(),
            body.tags.as_deref(),
            body.description.as_deref(),
        );
        errors.into_result()?;
        if let Some(name) = body.name {
            sticker.name = name.trim().to_string();
        }
        if let Some(tags) = body.tags {
            sticker.tags = tags;
        }
        if let Some(description) = body.description {
            sticker.description = Some(description).filter(|d| !d.is_empty());
        }
        Ok(())
    })
    .await
}

/// Discord's bounds: name 2–30, tags 1–200 (when given), description up to 100.
fn check_fields(
    errors: &mut FormErrors,
    name: Option<&str>,
    tags: Option<&str>,
    description: Option<&str>,
) {
    let bad = |text: Option<&str>, range: std::ops::RangeInclusive<usize>| {
        text.is_some_and(|t| !range.contains(&t.trim().chars().count()))
    };
    if bad(name, 2..=30) {
        errors.add(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 2 and 30 in length.",
        );
    }
    if bad(tags, 1..=200) {
        errors.add(
            "tags",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 200 in length.",
        );
    }
    if bad(description, 0..=100) {
        errors.add(
            "description",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 0 and 100 in length.",
        );
    }
}
