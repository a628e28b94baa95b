//! `POST /applications/{application_id}/bot`: makes the application's bot user (sharing the
//! application's id, named after it, verified, without a password) and its first login session
//! in one transaction, and answers the bot user with its `token`. An application has one bot: a
//! second call is refused (400), as Discord does; `POST …/bot/reset` ends the bot's sessions and
//! answers a new `{token}`.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::HttpResponse;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncConnection;

use super::{no_bot, Owned};
use crate::db::auth_sessions;
use crate::db::users::{NewUser, User};
use crate::http::error::{ApiError, FormErrors};
use crate::http::users::{validate_username, Discriminators};
use crate::state::AppState;
use crate::wire::user::PublicUser;

pub async fn create(state: Data<AppState>, Owned(app): Owned) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    if app.bot_user_id.is_some() {
        return Err(already_has_bot());
    }
    let username = app.name.trim().to_string();
    let mut errors = FormErrors::default();
    validate_username(
        &username,
        state.config().limits.user_max_username,
        &mut errors,
    );
    errors.into_result()?;
    let discriminator = Discriminators::pick(&mut conn, &username).await?;
    let user = NewUser {
        id: app.id,
        username,
        discriminator,
        global_name: None,
        email: None,
        password_hash: None,
        rights: i64::try_from(state.config().security.default_rights).unwrap_or(0),
        date_of_birth: None,
    };
    let session_id = state.snowflakes.next();
    let created = conn
        .transaction(async |conn| {
            app.create_bot(conn, &user).await?;
            auth_sessions::create(conn, session_id, user.id).await
        })
        .await;
    match created {
        Ok(()) => {}
        // Someone else made this bot, or took the same tag, between the checks and the insert.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
            return Err(if info.constraint_name() == Some("users_pkey") {
                already_has_bot()
            } else {
                crate::http::users::too_many_users()
            });
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(application_id = app.id, "bot user created");
    let token = state.tokens.issue(user.id, session_id)?;
    let bot_user = User::find(&mut conn, user.id).await?.ok_or_else(no_bot)?;
    let mut answer = serde_json::to_value(PublicUser::from(&bot_user))?;
    answer["token"] = token.into();
    Ok(HttpResponse::Ok().json(answer))
}

pub async fn reset(state: Data<AppState>, Owned(app): Owned) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let bot_id = app.bot_user_id.ok_or_else(no_bot)?;
    let session_id = state.snowflakes.next();
    conn.transaction(async |conn| {
        auth_sessions::delete_all(conn, bot_id).await?;
        auth_sessions::create(conn, session_id, bot_id).await
    })
    .await?;
    // The old token's gateway sessions close with it.
    state.logins_ended(bot_id, None, Some(session_id));
    tracing::info!(application_id = app.id, "bot token reset");
    let token = state.tokens.issue(bot_id, session_id)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "token": token })))
}

fn already_has_bot() -> ApiError {
    ApiError::Plain {
        status: StatusCode::BAD_REQUEST,
        code: 0,
        message: "This application already has a bot",
    }
}
