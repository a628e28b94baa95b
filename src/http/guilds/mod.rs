//! `/guilds/*`: guilds themselves and their channel lists. Roles, members, bans and invites
//! live in their own files below.

mod audit_log;
mod bans;
mod channels;
pub use channels::CHANNEL_NOISE;
mod emojis;
mod expressions;
mod guild_create;
pub mod guild_delete;
mod guild_get;
mod guild_invites;
mod guild_modify;
mod member_roles;
pub mod members;
mod roles;
pub mod snapshot;
mod stickers;
mod template_source;
mod templates;
mod voice_states;
mod welcome_screen;
mod widget;

use actix_web::web;

use crate::db::Pooled;
use crate::http::access::GuildAccess;
use crate::http::error::ApiError;
use crate::http::extractors::InGuild;
use crate::permissions::bits;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Before `/guilds/{guild_id}/…`, which would take `templates` for a guild id.
    cfg.route("/guilds/templates/{code}", web::get().to(templates::get))
        .route(
            "/guilds/templates/{code}",
            web::post().to(templates::use_template),
        );
    cfg.route("/guilds", web::post().to(guild_create::create))
        .route("/guilds/{guild_id}", web::get().to(guild_get::get))
        .route("/guilds/{guild_id}", web::patch().to(guild_modify::modify))
        .route("/guilds/{guild_id}", web::delete().to(guild_delete::delete))
        .route(
            "/guilds/{guild_id}/delete",
            web::post().to(guild_delete::delete),
        )
        .route("/guilds/{guild_id}/channels", web::get().to(channels::list))
        .route(
            "/guilds/{guild_id}/channels",
            web::post().to(channels::create),
        )
        .route(
            "/guilds/{guild_id}/channels",
            web::patch().to(channels::reorder),
        );
    audit_log::configure(cfg);
    roles::configure(cfg);
    emojis::configure(cfg);
    stickers::configure(cfg);
    members::configure(cfg);
    member_roles::configure(cfg);
    bans::configure(cfg);
    guild_invites::configure(cfg);
    voice_states::configure(cfg);
    cfg.route(
        "/guilds/{guild_id}/templates",
        web::get().to(templates::list),
    )
    .route(
        "/guilds/{guild_id}/templates",
        web::post().to(templates::create),
    )
    .route(
        "/guilds/{guild_id}/templates/{code}",
        web::put().to(templates::sync),
    )
    .route(
        "/guilds/{guild_id}/templates/{code}",
        web::patch().to(templates::modify),
    )
    .route(
        "/guilds/{guild_id}/templates/{code}",
        web::delete().to(templates::delete),
    )
    .route(
        "/guilds/{guild_id}/welcome-screen",
        web::get().to(welcome_screen::get),
    )
    .route(
        "/guilds/{guild_id}/welcome-screen",
        web::patch().to(welcome_screen::patch),
    )
    .route("/guilds/{guild_id}/widget", web::get().to(widget::get))
    .route("/guilds/{guild_id}/widget", web::patch().to(widget::patch))
    .route(
        "/guilds/{guild_id}/widget.json",
        web::get().to(widget::public),
    );
}

/// The caller's access and connection once MANAGE_GUILD is checked: the guild settings' routes
/// (invites, templates, widget, welcome screen).
async fn managed(caller: InGuild) -> Result<(GuildAccess, Pooled), ApiError> {
    caller.access.require(bits::MANAGE_GUILD)?;
    Ok((caller.access, caller.conn.get().await?))
}
