//! `GET /version`: which server software this is and its version, `{server, version}` as the
//! Rust Spacebar server symfonia answers it. chorus asks it first to tell servers apart; this
//! server names itself `spacebar`, the software whose API it serves.

use actix_web::web;
use actix_web::HttpResponse;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/version", web::get().to(version));
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "server": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
