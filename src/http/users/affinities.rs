//! `GET /users/@me/affinities/users` and `/guilds`: whom and which guilds the account is close
//! to, which Discord's clients use to sort suggestions. This server scores no affinities, so
//! both answer Discord's shape with empty lists.

use actix_web::HttpResponse;
use serde_json::json;

use crate::http::authorization::Authenticated;

pub async fn users(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "user_affinities": [], "inverse_user_affinities": [] }))
}

pub async fn guilds(_: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "guild_affinities": [] }))
}
