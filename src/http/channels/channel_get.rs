//! `GET /channels/{channel_id}`: a channel the caller can see.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use super::body;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::server::AppState;

pub async fn get(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    Ok(HttpResponse::Ok().json(body(&mut conn, &access, session.user.id).await?))
}
