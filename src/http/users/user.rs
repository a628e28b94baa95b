//! `GET /users/{user_id}`: another user's public object.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use crate::db::users::User;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::state::AppState;
use crate::wire::user::PublicUser;

pub async fn get(
    state: Data<AppState>,
    _: Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = find(&state, &path).await?;
    Ok(HttpResponse::Ok().json(PublicUser::from(&user)))
}

/// The user a `{user_id}` path segment names, or 10013.
pub async fn find(state: &AppState, id: &str) -> Result<User, ApiError> {
    let id = crate::http::snowflake("user_id", id)?;
    let mut conn = state.pool.get().await?;
    User::find(&mut conn, id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::User))
}
