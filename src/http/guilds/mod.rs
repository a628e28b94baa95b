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

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
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
}
