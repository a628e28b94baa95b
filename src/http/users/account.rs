//! `POST /users/@me/disable` and `POST /users/@me/delete` `{password}`: the account closes
//! itself, answered with 204. Both need the account's password (50035 `PASSWORD_DOES_NOT_MATCH`
//! when wrong; an account made without one, as chorus's test accounts are, needs none), are
//! refused to bots (20001) and to owners of guilds (40011: ownership goes to someone else
//! first). From then on the account's tokens are refused and its gateway sessions close with
//! 4004. Disabling is the admin API's own step (`admin/users.rs`). Deleting keeps the
//! account's messages, as Discord does, written by "Deleted User" from then on
//! ([`User::anonymise`]); an operator's delete purges them instead.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Deserialize;

use super::me::check_current_password;
use super::relationships;
use crate::db::guilds::Guild;
use crate::db::relationships::kind;
use crate::db::users::User;
use crate::http::admin::users::set_disabled;
use crate::http::applications::human_only;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::guilds::members;
use crate::http::json::Json;
use crate::state::AppState;
use crate::storage::{ImageArea, Key};

#[derive(Debug, Deserialize)]
pub struct Confirm {
    #[serde(default)]
    password: Option<String>,
}

pub async fn disable(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<Confirm>,
) -> Result<HttpResponse, ApiError> {
    may_close(&state, &session.user, body.password).await?;
    set_disabled(&state, session.user.id, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<Confirm>,
) -> Result<HttpResponse, ApiError> {
    may_close(&state, &session.user, body.password).await?;
    let mut conn = state.pool.get().await?;
    let gone = User::anonymise(&mut conn, session.user.id).await?;
    let user = gone.user;
    state.logins_ended(user.id, None, None);
    for guild_id in gone.left_guilds {
        members::removed(guild_id, &user)
            .iter()
            .for_each(|event| state.publish(event));
    }
    // The others hear that their side is gone (and friends stop seeing its presence).
    for row in gone
        .relationships
        .iter()
        .filter(|row| row.user_id != user.id)
    {
        state.publish(&relationships::removed(row));
        if row.kind == kind::FRIEND {
            state.friendship(row.user_id, user.id, false);
        }
    }
    for (area, hash) in [
        (ImageArea::Avatar, &session.user.avatar),
        (ImageArea::Banner, &session.user.banner),
    ] {
        if let Some(key) = hash.as_deref().and_then(|h| Key::image(area, user.id, h)) {
            state.cdn.remove(&key).await;
        }
    }
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
