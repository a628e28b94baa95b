//! Instance discovery: `/.well-known/spacebar` and `/.well-known/spacebar/client`.

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::urls::PublicUrls;
use super::{API_VERSIONS, DEFAULT_API_VERSION};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/spacebar", web::get().to(spacebar))
        .route("/.well-known/spacebar/client", web::get().to(client));
}

/// Where the API is.
async fn spacebar(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let urls = PublicUrls::of(&req, &state.config());
    HttpResponse::Ok().json(json!({ "api": urls.api() }))
}

/// Everything a client needs to connect (Fermi appends `/api/v9` to `api.baseUrl`).
async fn client(req: HttpRequest, state: Data<AppState>) -> HttpResponse {
    let urls = PublicUrls::of(&req, &state.config());
    let active: Vec<String> = API_VERSIONS.iter().map(u8::to_string).collect();
    HttpResponse::Ok().json(json!({
        "api": {
            "baseUrl": urls.base,
            "apiVersions": { "default": DEFAULT_API_VERSION.to_string(), "active": active },
        },
        "cdn": { "baseUrl": urls.base },
        "gateway": {
            "baseUrl": urls.gateway,
            "encoding": ["json", "etf"],
            "compression": ["zlib-stream", "zstd-stream", null],
        },
        "admin": { "baseUrl": urls.base },
    }))
}
