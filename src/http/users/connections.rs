//! `GET /users/@me/connections`: accounts on other services linked to this one. This server
//! links none, so the list is empty (clients fetch it when they open a profile or settings).

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::authorization::Authenticated;

pub async fn list(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!([]))
}
