//! `GET /gateway` and `GET /gateway/bot`: where the gateway is (discord.js asks only the latter).

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::authorization::Authenticated;
use super::urls::PublicUrls;
use crate::server::AppState;

/// IDENTIFYs a bot may start per day, as Discord reports it.
const SESSION_START_LIMIT: u32 = 1000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/gateway", web::get().to(gateway))
        .route("/gateway/bot", web::get().to(gateway_bot));
}

async fn gateway(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let urls = PublicUrls::of(&req, &state.config());
    HttpResponse::Ok().json(json!({ "url": urls.gateway }))
}

async fn gateway_bot(req: HttpRequest, state: Data<AppState>, _: Authenticated) -> HttpResponse {
    let urls = PublicUrls::of(&req, &state.config());
    HttpResponse::Ok().json(json!({
        "url": urls.gateway,
        "shards": 1,
        "session_start_limit": {
            "total": SESSION_START_LIMIT,
            "remaining": SESSION_START_LIMIT,
            "reset_after": 86_400_000,
            "max_concurrency": 1,
        },
    }))
}
