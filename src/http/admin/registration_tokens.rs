//! `/_spacebar/admin/registration-tokens`: `POST` (optionally `{"expires_in": seconds}`) makes
//! a token that lets one account register while registration is closed; `GET` lists them;
//! `DELETE /…/{token}` revokes one.

use actix_web::http::StatusCode;
use actix_web::web::{self, Path};
use actix_web::HttpResponse;
use chrono::{Duration, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Operator;
use crate::db::registration_tokens::RegistrationToken;
use crate::http::error::ApiError;
use crate::http::json::Json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/registration-tokens", web::post().to(create))
        .route("/registration-tokens", web::get().to(list))
        .route("/registration-tokens/{token}", web::delete().to(revoke));
}

fn view(token: &RegistrationToken) -> Value {
    json!({
        "token": token.token,
        "created_by": token.created_by.map(|id| id.to_string()),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
    })
}

#[derive(Debug, Default, Deserialize)]
struct Create {
    expires_in: Option<u32>,
}

async fn create(operator: Operator, body: Option<Json<Create>>) -> Result<HttpResponse, ApiError> {
    let expires_in = body.and_then(|Json(body)| body.expires_in);
    let token = RegistrationToken {
        token: Alphanumeric.sample_string(&mut rand::rng(), 32),
        created_by: Some(operator.user.id),
        created_at: Utc::now(),
        expires_at: expires_in.map(|seconds| Utc::now() + Duration::seconds(seconds.into())),
    };
    let mut conn = operator.state.pool.get().await?;
    token.insert(&mut conn).await?;
    operator.log(
        "create registration token",
        token
            .expires_at
            .map_or("never expires".into(), |at| format!("expires {at}")),
    );
    Ok(HttpResponse::build(StatusCode::CREATED).json(view(&token)))
}

async fn list(operator: Operator) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    let tokens = RegistrationToken::all(&mut conn).await?;
    Ok(HttpResponse::Ok().json(tokens.iter().map(view).collect::<Vec<_>>()))
}

async fn revoke(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    if !RegistrationToken::revoke(&mut conn, &path).await? {
        return Err(ApiError::NotFound);
    }
    operator.log("revoke registration token", "");
    Ok(HttpResponse::NoContent().finish())
}
