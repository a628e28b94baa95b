//! `GET /gateway` and `GET /gateway/bot`: where the gateway is (discord.js asks only the latter).

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::authorization::Authenticated;
use super::error::ApiError;
use super::urls::PublicUrls;
use crate::db::members::Member;
use crate::state::AppState;

/// IDENTIFYs a bot may start per day, as Discord reports it.
const SESSION_START_LIMIT: u32 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/gateway", web::get().to(gateway))
        .route("/gateway/bot", web::get().to(gateway_bot));
}

async fn gateway(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let urls = PublicUrls::of(&req, &state.config());
    HttpResponse::Ok().json(json!({ "url": gateway_url(&state, urls) }))
}

/// This node's own gateway, unless it is draining: then the balancer's, which sends the
/// client to another node.
fn gateway_url(state: &AppState, urls: PublicUrls) -> String {
    match state.node.is_draining() {
        true => urls.gateway,
        false => urls.node_gateway,
    }
}

/// The shards recommended are as many as the bot's guilds need (`gateway.max_guilds_per_shard`
/// each; more on one shard closes IDENTIFY with 4011).
async fn gateway_bot(
    req: HttpRequest,
    Authenticated { state, session }: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let config = state.config();
    let urls = PublicUrls::of(&req, &config);
    let mut conn = state.pool.get().await?;
    let guilds = Member::of_user(&mut conn, session.user.id).await?.len();
    let shards = guilds.div_ceil(config.gateway.max_guilds_per_shard).max(1);
    Ok(HttpResponse::Ok().json(json!({
        "url": gateway_url(&state, urls),
        "shards": shards,
        "session_start_limit": {
            "total": SESSION_START_LIMIT,
            "remaining": SESSION_START_LIMIT,
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        },
    })))
}
