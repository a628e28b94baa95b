//! `GET /ping`: the instance answers, with who it is.

use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use serde_json::json;

use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(ping));
}

async fn ping(state: Data<AppState>) -> HttpResponse {
    let instance = &state.config().instance;
    HttpResponse::Ok().json(json!({
        "ping": "pong!",
        "instance": {
            "id": instance_id(&state),
            "name": instance.name,
            "description": instance.description,
            "image": instance.image,
            "correspondenceEmail": instance.correspondence_email,
            "correspondenceUserID": instance.correspondence_user_id,
            "frontPage": instance.front_page,
            "tosPage": instance.tos_page,
        },
    }))
}

/// A stable id for this instance: derived from its signing key, so it never reveals it.
pub fn instance_id(state: &AppState) -> String {
    state.tokens.instance_id()
}
