//! `/gifs/*`: the GIF picker. No GIF provider is configured, so every answer is empty, in the
//! shape clients expect: `GET /gifs` lists providers (Fermi's call, an array), Spacebar's
//! `/gifs/trending` is `{categories, gifs}`, `/gifs/trending-gifs` and `/gifs/search` arrays
//! of GIFs.

use actix_web::web::{self, Query};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/gifs", web::get().to(nothing))
        .route("/gifs/trending-gifs", web::get().to(nothing))
        .route("/gifs/search", web::get().to(search))
        .route("/gifs/trending", web::get().to(trending));
}

async fn nothing(_: Authenticated) -> HttpResponse {
    empty()
}

fn empty() -> HttpResponse {
    HttpResponse::Ok().json(json!([]))
}

async fn trending(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "categories": [], "gifs": [] }))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

/// Spacebar requires `q`.
async fn search(_: Authenticated, query: Query<SearchQuery>) -> Result<HttpResponse, ApiError> {
    if query.q.is_none() {
        return Err(FormErrors::field("q", "BASE_TYPE_REQUIRED", "This field is required").into());
    }
    Ok(empty())
}
