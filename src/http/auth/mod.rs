//! `/auth/*`: registering, logging in and out.

mod login;
pub use register::{check_password, normalise_email, plausible_email};
mod logout;
mod register;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.route(
        "/auth/register",
        actix_web::web::post().to(register::register),
    )
    .route("/auth/login", actix_web::web::post().to(login::login))
    .route("/auth/logout", actix_web::web::post().to(logout::logout));
}
