//! `GET /users/{user_id}/profile`: the profile card (bio, pronouns, banner, badges).

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use serde_json::json;

use super::user::find;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::server::AppState;
use crate::wire::user::PublicUser;

pub async fn get(
    state: Data<AppState>,
    _: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = find(&state, &path).await?;
    Ok(HttpResponse::Ok().json(json!({
        "user": PublicUser::from(&user),
        "user_profile": {
            "bio": user.bio,
            "accent_color": user.accent_color,
            "banner": user.banner,
            "pronouns": user.pronouns,
            "theme_colors": null,
        },
        "badges": [],
        "connected_accounts": [],
        "mutual_guilds": [],
        "premium_type": user.premium_type,
        "premium_since": null,
        "premium_guild_since": null,
    })))
}
