//! The HTTP surfaces. One folder per API area, mirroring the URL: `auth/` is `/api/auth/*`,
//! `users/` is `/api/users/*`, and so on. Every API route is served identically under `/api`
//! and `/api/v6` … `/api/v10`, with or without a trailing slash.

pub mod access;
mod admin;
pub mod authorization;
pub mod banned;
pub mod body_deadline;
pub mod client_address;
pub mod cors;
pub mod error;
pub mod extractors;
pub mod ids;
pub mod json;
pub mod limits;
pub mod nul;
pub mod rate_limits;
pub mod request_span;
pub mod upgrades;
pub mod urls;
pub mod websocket;

mod applications;
mod attachments;
mod auth;
pub mod channels;
mod gateway;
mod gifs;
mod guilds;
mod health;
mod interactions;
mod invites;
mod oauth2;
mod ping;
mod policies;
mod read_states;
mod rooms;
mod search;
mod teams;
mod uploads;
mod users;
mod version;
mod voice;
mod webhooks;
mod well_known;

use actix_web::web;

use error::ApiError;

/// The API version clients get when they name none.
pub const DEFAULT_API_VERSION: u8 = 9;
/// The API versions served.
pub const API_VERSIONS: [u8; 5] = [6, 7, 8, 9, 10];

pub fn configure(cfg: &mut web::ServiceConfig) {
    well_known::configure(cfg);
    admin::configure(cfg);
    health::configure(cfg);
    uploads::configure(cfg);
    rooms::configure(cfg);
    // Versioned scopes first: `/api` would otherwise claim `/api/v9/...` as its own.
    for version in API_VERSIONS {
        cfg.service(web::scope(&format!("/api/v{version}")).configure(api));
    }
    cfg.service(web::scope("/api").configure(api));
    cfg.service(web::resource("/").route(web::get().to(crate::gateway::upgrade)));
    crate::voice::configure(cfg);
    crate::rooms::configure(cfg);
}

fn api(cfg: &mut web::ServiceConfig) {
    applications::configure(cfg);
    attachments::configure(cfg);
    auth::configure(cfg);
    // Before the channels' `/messages/{message_id}`, which would claim `search`.
    search::configure(cfg);
    channels::configure(cfg);
    users::configure(cfg);
    version::configure(cfg);
    policies::configure(cfg);
    gateway::configure(cfg);
    gifs::configure(cfg);
    guilds::configure(cfg);
    interactions::configure(cfg);
    invites::configure(cfg);
    oauth2::configure(cfg);
    ping::configure(cfg);
    read_states::configure(cfg);
    teams::configure(cfg);
    voice::configure(cfg);
    webhooks::configure(cfg);
}

/// Every unknown route: Discord's 404 body.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Parses a snowflake from a path segment, answering as Discord does when it is not one.
pub fn snowflake(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            error::FormErrors::field(
                field,
                "NUMBER_TYPE_COERCE",
                format!("Value \"{text}\" is not snowflake."),
            )
            .into()
        })
}
