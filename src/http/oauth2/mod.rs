//! `/oauth2/*`: a bot's own application (what discord.py loads at login) and adding a bot to a
//! guild (`authorize` with the `bot` scope). No other OAuth2 grant is served yet.

mod authorize;

use actix_web::web;

use super::applications::application_get;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/oauth2/applications/@me",
        web::get().to(application_get::me),
    )
    .route("/oauth2/authorize", web::get().to(authorize::get))
    .route("/oauth2/authorize", web::post().to(authorize::post));
}
