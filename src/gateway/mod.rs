//! The gateway's entry: the WebSocket upgrade at `/`, which starts one connection actor (in
//! the `spacebar-actors` crate) per socket; and, in `identify`, what sessions need from the
//! database to authenticate and say READY; in `members`, the answers to REQUEST_GUILD_MEMBERS;
//! in `voice`, the channel an op 4 asks to join.

mod identify;
mod members;
mod voice;

use std::collections::HashMap;

use actix_web::web::{Data, Payload, Query};
use actix_web::{HttpRequest, HttpResponse};
use actix_web_actors::ws;
use spacebar_actors::registry::Presences;
use spacebar_actors::session::{Compression, ConnectParams, Connection, Encoding};

use crate::http::urls::PublicUrls;
use crate::http::DEFAULT_API_VERSION;
use crate::state::AppState;

/// `GET /?v=9&encoding=json&compress=zlib-stream` with a WebSocket upgrade.
pub async fn upgrade(
    req: HttpRequest,
    stream: Payload,
    query: Query<HashMap<String, String>>,
    state: Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    // A draining cluster node takes no new sessions: the balancer tries another node.
    if state.cluster.is_some() && state.node.is_draining() {
        return Ok(HttpResponse::ServiceUnavailable().finish());
    }
    let api_version = match query.get("v") {
        None => DEFAULT_API_VERSION,
        // An unparseable version becomes 0, which the session refuses with 4012.
        Some(v) => v.parse().unwrap_or(0),
    };
    let compression = match query.get("compress").map(String::as_str) {
        Some("zlib-stream") => Compression::ZlibStream,
        Some("zstd-stream") => Compression::ZstdStream,
        // Anything else gets uncompressed frames: never a close.
        _ => Compression::None,
    };
    let encoding = match query.get("encoding").map(String::as_str) {
        None | Some("json") => Some(Encoding::Json),
        Some("etf") => Some(Encoding::Etf),
        Some(_) => None,
    };
    let params = ConnectParams {
        api_version,
        compression,
        encoding,
        gateway_url: PublicUrls::of(&req, &state.config()).node_gateway,
    };
    let max_frame = state.config().gateway.max_frame_bytes;
    let connection = Connection::new(
        state.clone().into_inner(),
        state.tree.clone(),
        state.sessions.clone(),
        params,
    );
    ws::WsResponseBuilder::new(connection, &req, stream)
        .frame_size(max_frame)
        .start()
}

/// Whom a large guild's GUILD_CREATE lists: the members `online`, and the user it goes to
/// whatever their status.
pub fn listed_in_large(online: &Presences, user_id: i64) -> Vec<i64> {
    online
        .others
        .iter()
        .map(|(user_id, _)| *user_id)
        .chain([user_id])
        .collect()
}
