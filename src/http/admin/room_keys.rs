//! `/_spacebar/admin/rooms/keys`: applications' API keys to the rooms service. `POST`
//! `{name, webhook_url?}` makes one and answers its secret and webhook secret, the only time
//! they are shown; `GET` lists keys (no secrets); `DELETE /…/{id}` revokes one at once (its
//! rooms stay, with no key).

use actix_web::http::StatusCode;
use actix_web::web::{self, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Operator;
use crate::db::room_api_keys::RoomApiKey;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::rooms::keys::{self, KeyError, NewKey};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/keys", web::post().to(create))
        .route("/rooms/keys", web::get().to(list))
        .route("/rooms/keys/{id}", web::delete().to(revoke));
}

/// A key as listed: never its secrets.
fn view(key: &RoomApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "webhook_url": key.webhook_url,
        "created_by": key.created_by.map(|id| id.to_string()),
        "created_at": key.created_at,
    })
}

/// A key just made: its view with both secrets.
fn created_view(new: &NewKey) -> Value {
    let mut view = view(&new.key);
    view["secret"] = new.secret.clone().into();
    view["webhook_secret"] = new.key.webhook_secret.clone().into();
    view
}

#[derive(Debug, Deserialize)]
struct Create {
    name: String,
    webhook_url: Option<String>,
}

async fn create(operator: Operator, Json(body): Json<Create>) -> Result<HttpResponse, ApiError> {
    keys::check(&body.name, body.webhook_url.as_deref()).map_err(|error| {
        let (field, code) = match error {
            KeyError::Name => ("name", "BASE_TYPE_BAD_LENGTH"),
            KeyError::WebhookUrl => ("webhook_url", "URL_TYPE_INVALID_URL"),
        };
        FormErrors::field(field, code, error.to_string())
    })?;
    let new = keys::generate(body.name, body.webhook_url, Some(operator.user.id));
    let mut conn = operator.state.pool.get().await?;
    new.key.insert(&mut conn).await?;
    operator.log("create rooms API key", &new.key.id);
    Ok(HttpResponse::build(StatusCode::CREATED).json(created_view(&new)))
}

async fn list(operator: Operator) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    let keys = RoomApiKey::all(&mut conn).await?;
    Ok(HttpResponse::Ok().json(keys.iter().map(view).collect::<Vec<_>>()))
}

async fn revoke(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    if !RoomApiKey::revoke(&mut conn, &path).await? {
        return Err(ApiError::NotFound);
    }
    operator.log("revoke rooms API key", path.as_str());
    Ok(HttpResponse::NoContent().finish())
}
