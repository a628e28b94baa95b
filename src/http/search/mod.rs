//! Message search: `GET /guilds/{guild_id}/messages/search` (every channel of the guild the
//! caller may read the history of) and `GET /channels/{channel_id}/messages/search` (one
//! channel, a DM too). Discord's answer: `{total_results, messages: [[message]], …}`, each hit
//! a one-element list with `hit: true` and without `reactions`. `total_results` is exact up to
//! `db::search::COUNTED` matches and PostgreSQL's estimate past that (by relevance, at most
//! the `db::search::RANKED` newest matches, the ones ranked). Content of only punctuation finds
//! nothing. A search runs at most 3 s; past that it is Discord's 202 `{code: 110000,
//! retry_after}` ("index not yet available"), which clients answer by asking again later.
//! PostgreSQL's full-text search does the matching (`db::search`); the filters' syntax is in
//! [`query`].

mod query;

use std::collections::HashMap;

use actix_web::web::{self, Path, Query};
use actix_web::HttpResponse;
use serde_json::{json, Value};

use crate::db::channels::{Channel, OverwriteRow};
use crate::db::search::{self, Filter, Order, Scope};
use crate::db::Connection;
use crate::http::access::{ChannelAccess, GuildAccess};
use crate::http::authorization::Authenticated;
use crate::http::channels::messages::{render, Reader};
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::state::AppState;
use query::{Search, SortBy};

/// What a channel's messages need to be found: seeing the channel and reading its history.
const READ: u64 = bits::VIEW_CHANNEL | bits::READ_MESSAGE_HISTORY;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/messages/search", web::get().to(guild))
        .route(
            "/channels/{channel_id}/messages/search",
            web::get().to(channel),
        );
}

/// The query string as its pairs, so that filters can repeat.
type Pairs = Query<Vec<(String, String)>>;

async fn guild(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
    query: Pairs,
) -> Result<HttpResponse, ApiError> {
    let guild_id = snowflake("guild_id", &path)?;
    let search = Search::parse(&query)?;
    let mut conn = state.pool.get().await?;
    let access = GuildAccess::load(&mut conn, guild_id, session.user.id).await?;
    let channels = Channel::of_guilds(&mut conn, &[guild_id]).await?;
    let ids: Vec<i64> = channels.iter().map(|c| c.id).collect();
    let overwrites = OverwriteRow::of_channels(&mut conn, &ids).await?;
    let readable: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| access.in_channel_among(*id, &overwrites) & READ == READ)
        .collect();
    // Channels asked for that the caller may not read are left out, as Discord does.
    let only = if !search.channel_ids.is_empty() {
        Some(
            search
                .channel_ids
                .iter()
                .copied()
                .filter(|id| readable.contains(id))
                .collect(),
        )
    } else if readable.len() < ids.len() {
        Some(readable)
    } else {
        None
    };
    let reader = Reader::reading(&mut conn, &session.user, true).await?;
    find(
        &state,
        &mut conn,
        reader,
        &search,
        Scope::Guild(guild_id),
        only,
    )
    .await
}

async fn channel(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
    query: Pairs,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    let search = Search::parse(&query)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    if access.permissions & READ != READ {
        return Err(ApiError::MissingAccess);
    }
    let reader = Reader::of(&mut conn, &session.user, &access).await?;
    let scope = Scope::Channel(channel_id);
    find(&state, &mut conn, reader, &search, scope, None).await
}

/// The page of matches `search` asks for, in `scope` (and only in the channels `only`), as
/// `reader` sees them, in Discord's answer.
async fn find(
    state: &AppState,
    conn: &mut Connection,
    reader: Reader,
    search: &Search,
    scope: Scope,
    only: Option<Vec<i64>>,
) -> Result<HttpResponse, ApiError> {
    if only.as_ref().is_some_and(Vec::is_empty) {
        return Ok(HttpResponse::Ok().json(answer(0, Vec::new())));
    }
    let words = match search.content() {
        Some(content) => {
            let lexemes = search::words(conn, content).await?;
            // Content with nothing searchable in it (`!!`) matches no message.
            if lexemes.is_empty() {
                return Ok(HttpResponse::Ok().json(answer(0, Vec::new())));
            }
            Some(query::words_query(&lexemes)?)
        }
        None => None,
    };
    let own_only = (!reader.sees_content).then_some(reader.user_id);
    let filter = Filter {
        scope,
        channels: only,
        query: search.vector_query(words.as_deref(), own_only),
        min_id: search.min_id,
        max_id: search.max_id,
    };
    let order = match (search.sort_by, words) {
        (SortBy::Relevance, Some(words)) => Order::Relevance {
            words,
            reversed: search.oldest_first,
        },
        _ if search.oldest_first => Order::Oldest,
        _ => Order::Newest,
    };
    let Some((page, total)) =
        search::find(conn, &filter, &order, search.offset, search.limit).await?
    else {
        return Ok(not_yet());
    };
    let hits = render_page(state, conn, reader, &page).await?;
    Ok(HttpResponse::Ok().json(answer(total, hits)))
}

/// The messages `page` in its order, each as Discord returns a hit.
async fn render_page(
    state: &AppState,
    conn: &mut Connection,
    reader: Reader,
    page: &[i64],
) -> Result<Vec<Value>, ApiError> {
    let messages = search::messages(conn, page).await?;
    let mut rendered: HashMap<i64, Value> = HashMap::new();
    for mut value in render(state, conn, reader, &messages).await? {
        let id = value["id"].as_str().and_then(|id| id.parse().ok());
        if let (Some(id), Some(fields)) = (id, value.as_object_mut()) {
            fields.remove("reactions");
            fields.insert("hit".into(), Value::Bool(true));
            rendered.insert(id, value);
        }
    }
    // A message deleted since it matched is left out.
    Ok(page
        .iter()
        .filter_map(|id| rendered.remove(id))
        .map(|value| Value::Array(vec![value]))
        .collect())
}

/// Discord's answer while its index cannot answer yet (202, "try again in `retry_after`
/// seconds"), given when a search runs past its time: clients wait and ask again.
fn not_yet() -> HttpResponse {
    HttpResponse::Accepted().json(json!({
        "message": "Index not yet available. Try again later",
        "code": 110000,
        "documents_indexed": 0,
        "retry_after": 3,
    }))
}

fn answer(total: usize, hits: Vec<Value>) -> Value {
    json!({
        "total_results": total,
        "messages": hits,
        "analytics_id": format!("{:032x}", rand::random::<u128>()),
        "doing_deep_historical_index": false,
        "threads": [],
        "members": [],
    })
}
