//! `GET /channels/{channel_id}`: a channel the caller can see.

use actix_web::HttpResponse;

use super::body;
use crate::http::error::ApiError;
use crate::http::extractors::InChannel;

pub async fn get(caller: InChannel) -> Result<HttpResponse, ApiError> {
    let mut conn = caller.conn.get().await?;
    let body = body(&mut conn, &caller.access, caller.session.user.id).await?;
    Ok(HttpResponse::Ok().json(body))
}
