//! `/users/*`: the account itself (`@me`), its settings, and other users' public faces.

mod account;
mod affinities;
mod connections;
pub mod guilds;
mod me;
pub mod private_channels;
mod profile;
mod relationships;
mod settings;
mod settings_protos;
mod user;

use actix_web::web;
use rand::seq::IteratorRandom;

use crate::db::users::User;
use crate::db::Connection;
use crate::http::error::{ApiError, FormErrors};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `@me` routes before `{user_id}` ones, which would otherwise claim them.
    cfg.route("/users/@me", web::get().to(me::get))
        .route("/users/@me", web::patch().to(me::patch))
        .route("/users/@me/disable", web::post().to(account::disable))
        .route("/users/@me/delete", web::post().to(account::delete))
        .route("/users/@me/connections", web::get().to(connections::list))
        .route(
            "/users/@me/affinities/users",
            web::get().to(affinities::users),
        )
        .route(
            "/users/@me/affinities/guilds",
            web::get().to(affinities::guilds),
        )
        .route("/users/@me/settings", web::get().to(settings::get))
        .route("/users/@me/settings", web::patch().to(settings::patch))
        .route(
            "/users/@me/settings-proto/{kind:[12]}",
            web::get().to(settings_protos::get),
        )
        .route(
            "/users/@me/settings-proto/{kind:[12]}",
            web::patch().to(settings_protos::patch),
        )
        .route(
            "/users/@me/settings-proto/{kind:[12]}/json",
            web::get().to(settings_protos::get_json),
        )
        .route(
            "/users/@me/settings-proto/{kind:[12]}/json",
            web::patch().to(settings_protos::patch_json),
        )
        .route("/users/@me/profile", web::patch().to(profile::patch))
        .route("/users/@me/guilds", web::get().to(guilds::list))
        .route(
            "/users/@me/guilds/{guild_id}",
            web::delete().to(guilds::leave),
        )
        .route("/users/@me/channels", web::get().to(private_channels::list))
        .route(
            "/users/@me/channels",
            web::post().to(private_channels::create),
        )
        .route(
            "/users/@me/relationships",
            web::get().to(relationships::list),
        )
        .route(
            "/users/@me/relationships",
            web::post().to(relationships::post),
        )
        .route(
            "/users/@me/relationships/{user_id}",
            web::put().to(relationships::put),
        )
        .route(
            "/users/@me/relationships/{user_id}",
            web::delete().to(relationships::delete),
        )
        .route("/users/{user_id}", web::get().to(user::get))
        .route("/users/{user_id}/profile", web::get().to(profile::get))
        .route(
            "/users/{user_id}/relationships",
            web::get().to(relationships::mutual),
        );
}

/// Adds Discord's username rules' errors: length, and names that would break mentions.
pub fn validate_username(username: &str, max_length: usize, errors: &mut FormErrors) {
    let length = username.chars().count();
    if length < 2 || length > max_length {
        errors.add(
            "username",
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 2 and {max_length} in length."),
        );
    } else if ["@", "#", ":", "```"]
        .iter()
        .any(|bad| username.contains(bad))
        || ["everyone", "here"].contains(&username.to_lowercase().as_str())
    {
        errors.add("username", "USERNAME_INVALID_CONTAINS", "Username cannot contain \"@\", \"#\", \":\" or \"```\", nor be \"everyone\" or \"here\".");
    }
}

/// Every discriminator of a name is taken (or was taken between the check and the insert).
pub fn too_many_users() -> ApiError {
    FormErrors::field(
        "username",
        "USERNAME_TOO_MANY_USERS",
        "This name is used by too many users. Please enter something else and try again.",
    )
    .into()
}

/// Picking a discriminator: four digits no other account with the same name uses.
pub struct Discriminators;

impl Discriminators {
    /// A random free discriminator for `username`.
    pub async fn pick(conn: &mut Connection, username: &str) -> Result<String, ApiError> {
        let taken = User::taken_discriminators(conn, username).await?;
        (1..=9999)
            .map(|n: u32| format!("{n:04}"))
            .filter(|d| !taken.contains(d))
            .choose(&mut rand::rng())
            .ok_or_else(too_many_users)
    }

    /// `current` if it is free for `username` (ignoring the account itself), else a new one.
    pub async fn keep_or_pick(
        conn: &mut Connection,
        username: &str,
        current: &str,
        user_id: i64,
    ) -> Result<String, ApiError> {
        let taken = User::taken_discriminators_by_others(conn, username, user_id).await?;
        if taken.iter().any(|d| d == current) {
            Self::pick(conn, username).await
        } else {
            Ok(current.to_string())
        }
    }
}
