//! `GET /applications/{application_id}` (its owner only; 10002 for anyone else), and
//! `GET /applications/@me` = `GET /oauth2/applications/@me`: a bot's own application, which
//! discord.py loads at login.

use actix_web::web::Data;
use actix_web::HttpResponse;

use super::{body, Owned};
use crate::db::applications::Application;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::state::AppState;

pub async fn get(state: Data<AppState>, Owned(app): Owned) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(body(&mut conn, &app).await?))
}

pub async fn me(Authenticated { state, session }: Authenticated) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    // A person's token has no application of its own.
    let app = Application::of_bot(&mut conn, session.user.id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Application))?;
    Ok(HttpResponse::Ok().json(body(&mut conn, &app).await?))
}
