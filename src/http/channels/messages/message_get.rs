//! `GET /channels/{channel_id}/messages?limit=&before=&after=&around=` (newest first; limit 1 to
//! 100, 50 by default; `[]` without READ_MESSAGE_HISTORY) and
//! `GET /channels/{channel_id}/messages/{message_id}`.

use actix_web::web::Query;
use actix_web::HttpResponse;
use serde::Deserialize;

use super::{find, limit, render_one, snowflake_param, History};
use crate::db::messages::{Message, Page};
use crate::http::error::ApiError;
use crate::http::extractors::{path, Id, InChannel};

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    limit: Option<String>,
    before: Option<String>,
    after: Option<String>,
    around: Option<String>,
}

pub async fn list(caller: InChannel, query: Query<HistoryQuery>) -> Result<HttpResponse, ApiError> {
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
    let Some(mut history) = History::load(caller).await? else {
        return Ok(HttpResponse::Ok().json([(); 0]));
    };
    let channel_id = history.access.channel.id;
    let messages = Message::page(&mut history.conn, channel_id, page, limit).await?;
    Ok(HttpResponse::Ok().json(history.render(&messages).await?))
}

pub async fn get(
    caller: InChannel,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let Some(mut history) = History::load(caller).await? else {
        return Err(ApiError::MissingAccess);
    };
    let message = find(&mut history.conn, &history.access, message_id.get()).await?;
    let one = render_one(&history.state, &mut history.conn, history.reader, message).await?;
    Ok(HttpResponse::Ok().json(one))
}
