//! `GET /teams`: the developer teams the user owns. Teams are not kept, so the list is empty
//! (Fermi's developer portal reads it before it lists applications).

use actix_web::web;
use actix_web::HttpResponse;

use crate::http::authorization::Authenticated;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/teams", web::get().to(list));
}

async fn list(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!([]))
}
