//! `POST /applications` (CREATE_APPLICATIONS right): a new application owned by the caller,
//! without a bot until `POST /applications/{id}/bot`. `GET /applications`: the caller's own.

use actix_web::HttpResponse;
use rand::RngCore;
use serde::Deserialize;

use super::{body, human_only};
use crate::db::applications::Application;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::rights;

#[derive(Debug, Deserialize)]
pub struct CreateApplication {
    name: String,
}

pub async fn create(
    Authenticated { state, session }: Authenticated,
    Json(request): Json<CreateApplication>,
) -> Result<HttpResponse, ApiError> {
    let user = &session.user;
    human_only(user)?;
    ApiError::require(user.rights, rights::CREATE_APPLICATIONS)?;
    let name = request.name.trim().to_string();
    if !(2..=32).contains(&name.chars().count()) {
        return Err(FormErrors::field(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 2 and 32 in length.",
        )
        .into());
    }
    let app = Application::new(state.snowflakes.next(), name, user.id, verify_key());
    let mut conn = state.pool.get().await?;
    app.insert(&mut conn).await?;
    tracing::info!(
        application_id = app.id,
        owner_id = user.id,
        "application created"
    );
    Ok(HttpResponse::Created().json(body(&mut conn, &app).await?))
}

pub async fn list(
    Authenticated { state, session }: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let mut bodies = Vec::new();
    for app in Application::of_owner(&mut conn, session.user.id).await? {
        bodies.push(body(&mut conn, &app).await?);
    }
    Ok(HttpResponse::Ok().json(bodies))
}

/// Discord's verify key is the hex of an Ed25519 public key for interaction signatures; this
/// server sends no interactions yet, so a random key of the same shape stands in.
fn verify_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
