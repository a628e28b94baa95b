//! `/voice/regions`: the voice regions a client may pick. This server carries voice itself,
//! on its own port, so there is one region: itself.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/voice/regions", web::get().to(list));
}

/// The one region, in Discord's voice region shape (also `GET /guilds/{id}/regions`).
pub fn regions() -> Value {
    json!([{
        "id": "spacebar",
        "name": "spacebar",
        "optimal": true,
        "deprecated": false,
        "custom": false,
    }])
}

/// `GET /voice/regions` (no authentication needed, as on Discord).
pub async fn list() -> HttpResponse {
    HttpResponse::Ok().json(regions())
}
