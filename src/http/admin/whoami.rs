//! `GET /_spacebar/admin/ping` (no token needed: is the admin API there?) and
//! `GET /_spacebar/admin/whoami` (any valid token: who am I to this instance, and what may I do).

use actix_web::web::Data;
use actix_web::HttpResponse;
use serde_json::json;

use crate::http::authorization::Authenticated;
use crate::rights;
use crate::state::AppState;

pub async fn ping(state: Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "ping": "pong!", "instance": state.config().instance.name }))
}

pub async fn whoami(Authenticated { session, .. }: Authenticated) -> HttpResponse {
    let user = &session.user;
    HttpResponse::Ok().json(json!({
        "id": user.id.to_string(),
        "username": user.username,
        "discriminator": user.discriminator,
        "rights": user.rights.to_string(),
        "operator": rights::has(user.rights, rights::OPERATOR),
    }))
}
