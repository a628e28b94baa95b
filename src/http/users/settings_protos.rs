//! `GET/PATCH /users/@me/settings-proto/{1,2}`: Discord's settings protos (1 preloaded, 2
//! frecency) as opaque base64, `{"settings": "…"}`, stored as sent; a PATCH reaches the
//! user's sessions as USER_SETTINGS_PROTO_UPDATE. Spacebar's JSON variant,
//! `…/{1,2}/json` with `{"settings": {…}}` (Fermi keeps its favourites there), is kept
//! beside it: a PATCH lays the given top-level keys over the stored ones, as Spacebar does.
//! Both are bounded by [`MAX_SETTINGS_BYTES`]. The path's type is 1 or 2 (the routes match
//! nothing else).

use crate::events::{Event, ToUser};
use actix_web::web::Path;
use actix_web::HttpResponse;
use base64::Engine;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::db::settings_protos::SettingsProto;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::state::AppState;

/// The largest settings kept, in bytes of base64 (or of JSON text for the JSON variant).
pub const MAX_SETTINGS_BYTES: usize = 100_000;

pub async fn get(
    Authenticated { state, session }: Authenticated,
    path: Path<i16>,
) -> Result<HttpResponse, ApiError> {
    let stored = stored(&state, session.user.id, *path).await?;
    Ok(HttpResponse::Ok().json(json!({ "settings": stored.proto })))
}

async fn stored(state: &AppState, user_id: i64, kind: i16) -> Result<SettingsProto, ApiError> {
    let mut conn = state.pool.get().await?;
    Ok(SettingsProto::get(&mut conn, user_id, kind, false).await?)
}

#[derive(Debug, Deserialize)]
pub struct ProtoPatch {
    settings: String,
}

pub async fn patch(
    Authenticated { state, session }: Authenticated,
    path: Path<i16>,
    Json(body): Json<ProtoPatch>,
) -> Result<HttpResponse, ApiError> {
    let kind = *path;
    check_size(body.settings.len())?;
    if base64::engine::general_purpose::STANDARD
        .decode(&body.settings)
        .is_err()
    {
        return Err(
            FormErrors::field("settings", "BASE_TYPE_INVALID", "Must be valid base64.").into(),
        );
    }
    let mut stored = stored(&state, session.user.id, kind).await?;
    stored.proto = body.settings;
    stored.save_proto(&mut *state.pool.get().await?).await?;
    state.publish(&Event::UserSettingsProtoUpdate(ToUser {
        user_id: session.user.id,
        data: json!({ "settings": { "proto": stored.proto, "type": kind }, "partial": false }),
    }));
    Ok(HttpResponse::Ok().json(json!({ "settings": stored.proto, "out_of_date": false })))
}

pub async fn get_json(
    Authenticated { state, session }: Authenticated,
    path: Path<i16>,
) -> Result<HttpResponse, ApiError> {
    let stored = stored(&state, session.user.id, *path).await?;
    Ok(HttpResponse::Ok().json(json!({ "settings": stored.json })))
}

#[derive(Debug, Deserialize)]
pub struct JsonPatch {
    settings: Map<String, Value>,
}

pub async fn patch_json(
    Authenticated { state, session }: Authenticated,
    path: Path<i16>,
    Json(body): Json<JsonPatch>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, kind) = (session.user.id, *path);
    let mut conn = state.pool.get().await?;
    let merged = conn
        .transaction(async |conn| {
            let mut stored = SettingsProto::get(conn, user_id, kind, true).await?;
            let mut merged = match stored.json {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            merged.extend(body.settings);
            stored.json = Value::Object(merged);
            check_size(serde_json::to_vec(&stored.json)?.len())?;
            stored.save_json(conn).await?;
            Ok::<_, ApiError>(stored.json)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "settings": merged, "out_of_date": false })))
}

fn check_size(bytes: usize) -> Result<(), ApiError> {
    if bytes > MAX_SETTINGS_BYTES {
        return Err(FormErrors::field(
            "settings",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_SETTINGS_BYTES} or fewer in length."),
        )
        .into());
    }
    Ok(())
}
