//! `/auth/*`: registering, logging in and out, and the account's login sessions.

mod login;
pub use register::{check_password, normalise_email, plausible_email};
mod logout;
mod register;
mod sessions;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route(
        "/auth/register",
        actix_web::web::post().to(register::register),
    )
    .route("/auth/login", actix_web::web::post().to(login::login))
    .route("/auth/logout", actix_web::web::post().to(logout::logout))
    .route("/auth/sessions", actix_web::web::get().to(sessions::list))
    .route(
        "/auth/sessions/logout",
        actix_web::web::post().to(sessions::logout),
    );
}
