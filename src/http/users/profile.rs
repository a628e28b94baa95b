//! `GET /users/{user_id}/profile` (also `@me`): the profile card (bio, pronouns, banner,
//! badges); `PATCH /users/@me/profile`: its own fields, checked as `PATCH /users/@me` checks
//! them (Fermi saves bio, pronouns and accent colour here).

use actix_web::web::Path;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use super::me::{update, PatchMe};
use super::user::find;
use crate::db::users::User;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::Json;
use crate::wire::user::PublicUser;

pub async fn get(
    Authenticated { state, session }: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = match path.as_str() {
        "@me" => session.user.clone(),
        id => find(&state, id).await?,
    };
    Ok(HttpResponse::Ok().json(json!({
        "user": PublicUser::from(&user),
        "user_profile": user_profile(&user),
        "badges": [],
        "connected_accounts": [],
        "mutual_guilds": [],
        "premium_type": user.premium_type,
        "premium_since": null,
        "premium_guild_since": null,
    })))
}

/// The fields `PATCH /users/@me/profile` takes; absent ones stay as they are.
#[derive(Debug, Deserialize)]
pub struct PatchProfile {
    bio: Option<String>,
    pronouns: Option<String>,
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    accent_color: Option<Option<i32>>,
    /// A data URL, or null to remove it.
    #[serde(default, deserialize_with = "crate::http::json::nullable")]
    banner: Option<Option<String>>,
}

pub async fn patch(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<PatchProfile>,
) -> Result<HttpResponse, ApiError> {
    let changes = PatchMe::profile(body.bio, body.pronouns, body.accent_color, body.banner);
    let (user, _) = update(&state, &session.user, changes).await?;
    Ok(HttpResponse::Ok().json(user_profile(&user)))
}

fn user_profile(user: &User) -> Value {
    json!({
        "bio": user.bio,
        "accent_color": user.accent_color,
        "banner": user.banner,
        "pronouns": user.pronouns,
        "theme_colors": null,
    })
}
