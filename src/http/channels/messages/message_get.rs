//! `GET /channels/{channel_id}/messages?limit=&before=&after=&around=` (newest first; limit 1 to
//! 100, 50 by default; `[]` without READ_MESSAGE_HISTORY) and
//! `GET /channels/{channel_id}/messages/{message_id}`.

use actix_web::web::{Data, Query};
use actix_web::HttpResponse;
use serde::Deserialize;

use super::{find, limit, render, render_one, snowflake_param, Reader};
use crate::db::messages::{Message, Page};
use crate::http::error::ApiError;
use crate::http::extractors::{path, Id, InChannel};
use crate::permissions::bits;
use crate::server::AppState;

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
    around: Option<String>,
}

pub async fn list(
    state: Data<AppState>,
    caller: InChannel,
    query: Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(query.limit.as_deref(), 50, 100)?;
    // Discord reads `around`, then `before`, then `after`, whichever comes first.
    let page = if let Some(around) = snowflake_param("around", query.around.as_deref())? {
        Page::Around(around)
    } else if let Some(before) = snowflake_param("before", query.before.as_deref())? {
        Page::Before(before)
    } else if let Some(after) = snowflake_param("after", query.after.as_deref())? {
        Page::After(after)
    } else {
        Page::Latest
    };
    let InChannel {
        session,
        access,
        conn,
    } = caller;
    if access.require(bits::READ_MESSAGE_HISTORY).is_err() {
        return Ok(HttpResponse::Ok().json([(); 0]));
    }
    let mut conn = conn.get().await?;
    let messages = Message::page(&mut conn, access.channel.id, page, limit).await?;
    let reader = Reader::of(&mut conn, &session.user, &access).await?;
    Ok(HttpResponse::Ok().json(render(&state, &mut conn, reader, &messages).await?))
}

pub async fn get(
    state: Data<AppState>,
    caller: InChannel,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let InChannel {
        session,
        access,
        conn,
    } = caller;
    if access.permissions & bits::READ_MESSAGE_HISTORY == 0 {
        return Err(ApiError::MissingAccess);
    }
    let mut conn = conn.get().await?;
    let message = find(&mut conn, &access, message_id.get()).await?;
    let reader = Reader::of(&mut conn, &session.user, &access).await?;
    let one = render_one(&state, &mut conn, reader, message).await?;
    Ok(HttpResponse::Ok().json(one))
}
