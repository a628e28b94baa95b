//! `POST /users/@me/disable` and `POST /users/@me/delete` `{password}`: the account closes
//! itself, answered with 204. Both need the account's password (50035 `PASSWORD_DOES_NOT_MATCH`
//! when wrong; an account made without one, as chorus's test accounts are, needs none), are
//! refused to bots (20001) and to owners of guilds (40011: ownership goes to someone else
//! first). From then on the account's tokens are refused and its gateway sessions close with
//! 4004. Disabling and deleting are the admin API's own steps (`admin/users.rs`).

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::HttpResponse;
use serde::Deserialize;

use super::me::check_current_password;
use crate::db::guilds::Guild;
use crate::db::users::User;
use crate::http::admin::progress::Progress;
use crate::http::admin::users::{delete_user, set_disabled};
use crate::http::applications::human_only;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::server::AppState;

#[derive(Debug, Deserialize)]
pub struct Confirm {
    #[serde(default)]
    password: Option<String>,
}

pub async fn disable(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    Json(body): Json<Confirm>,
) -> Result<HttpResponse, ApiError> {
    may_close(&state, &session.user, body.password).await?;
    set_disabled(&state, session.user.id, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    Json(body): Json<Confirm>,
) -> Result<HttpResponse, ApiError> {
    may_close(&state, &session.user, body.password).await?;
    // On a task of its own: a client that hangs up does not stop the deletion half-way.
    let deleting = actix_web::rt::spawn(async move {
        delete_user(&state, &Progress::unwatched(), session.user).await
    });
    deleting.await.map_err(ApiError::internal)??;
    Ok(HttpResponse::NoContent().finish())
}

/// Whether the account may disable or delete itself, with Discord's errors when not.
async fn may_close(state: &AppState, me: &User, password: Option<String>) -> Result<(), ApiError> {
    human_only(me)?;
    if me.password_hash.is_some() {
        let mut errors = FormErrors::default();
        check_current_password(me, password, &mut errors).await?;
        errors.into_result()?;
    }
    let mut conn = state.pool.get().await?;
    if !Guild::owned_by(&mut conn, me.id).await?.is_empty() {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 40011,
            message: "You must transfer ownership of any owned guilds before deleting your account",
        });
    }
    Ok(())
}
