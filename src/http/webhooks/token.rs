//! `GET`/`PATCH`/`DELETE /webhooks/{webhook_id}/{token}`: the webhook, for whoever holds its
//! token (no login). Its creator is not shown, and it cannot be moved to another channel.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{by_token, change, remove, webhook_id, Patch};
use crate::audit::Audit;
use crate::db::webhooks::Webhook;
use crate::db::Connection;
use crate::http::error::{ApiError, Unknown};
use crate::http::json::Json;
use crate::http::urls::PublicUrls;
use crate::state::AppState;
use crate::wire::webhook::{self as wire, Shown};

/// The webhook the path names, if the token is its own.
async fn webhook(conn: &mut Connection, path: &(String, String)) -> Result<Webhook, ApiError> {
    by_token(conn, webhook_id(&path.0)?, &path.1)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Webhook))
}

fn shown(req: &HttpRequest, state: &AppState, webhook: &Webhook) -> HttpResponse {
    let api = PublicUrls::of(req, &state.config()).api();
    HttpResponse::Ok().json(wire::webhook(webhook, Shown::ByToken, &api))
}

pub async fn get(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let webhook = webhook(&mut conn, &path).await?;
    Ok(shown(&req, &state, &webhook))
}

/// What the token may change: no `channel_id` (Discord ignores it here).
#[derive(Debug, Deserialize)]
pub struct ModifyByToken {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::guilds::members::present")]
    avatar: Option<Option<String>>,
}

pub async fn modify(
    req: HttpRequest,
    state: Data<AppState>,
    audit: Audit,
    path: Path<(String, String)>,
    Json(body): Json<ModifyByToken>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let webhook = webhook(&mut conn, &path).await?;
    let patch = Patch {
        name: body.name,
        avatar: body.avatar,
        channel_id: None,
    };
    let (webhook, _) = change(&state, conn, &audit, None, webhook, patch).await?;
    Ok(shown(&req, &state, &webhook))
}

pub async fn delete(
    state: Data<AppState>,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let webhook = webhook(&mut conn, &path).await?;
    remove(&state, &mut conn, &audit, None, &webhook).await?;
    Ok(HttpResponse::NoContent().finish())
}
