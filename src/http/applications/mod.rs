//! `/applications/*`: developer applications and their bot users. An application is its
//! owner's alone: anyone else is told it does not exist (10002).

mod application_create;
mod application_delete;
pub mod application_get;
mod application_modify;
mod bot;
pub mod commands;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{FromRequest, HttpRequest};
use serde_json::Value;

use crate::credentials::Session;
use crate::db::applications::Application;
use crate::db::users::User;
use crate::db::Connection;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::http::snowflake;

pub fn configure(cfg: &mut web::ServiceConfig) {
    commands::configure(cfg);
    // `@me` before `{application_id}`, which would otherwise claim it.
    cfg.route("/applications", web::post().to(application_create::create))
        .route("/applications", web::get().to(application_create::list))
        .route("/applications/@me", web::get().to(application_get::me))
        .route(
            "/applications/{application_id}",
            web::get().to(application_get::get),
        )
        .route(
            "/applications/{application_id}",
            web::patch().to(application_modify::modify),
        )
        .route(
            "/applications/{application_id}",
            web::delete().to(application_delete::delete),
        )
        .route(
            "/applications/{application_id}/delete",
            web::post().to(application_delete::delete),
        )
        .route(
            "/applications/{application_id}/bot",
            web::post().to(bot::create),
        )
        .route(
            "/applications/{application_id}/bot/reset",
            web::post().to(bot::reset),
        );
}

/// Routes only people may use: Discord answers bots with 20001.
pub fn human_only(user: &User) -> Result<(), ApiError> {
    if user.bot {
        Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 20001,
            message: "Bots cannot use this endpoint",
        })
    } else {
        Ok(())
    }
}

/// The application the path's `application_id` names, if the caller owns it (10002
/// otherwise).
pub struct Owned(pub Application);

impl FromRequest for Owned {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let application_id = snowflake(
            "application_id",
            req.match_info().get("application_id").unwrap_or_default(),
        );
        caller_and(req, payload, async move |session, conn| {
            owned(conn, application_id?, session.user.id)
                .await
                .map(Owned)
        })
    }
}

/// An extractor's future that authenticates the caller (401 first), then runs `look_up` with
/// them on a connection from the pool, given back before the handler runs (nothing is held
/// while a client sends a body).
pub(crate) fn caller_and<T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    look_up: impl AsyncFnOnce(Session, &mut Connection) -> Result<T, ApiError> + 'static,
) -> Pin<Box<dyn Future<Output = Result<T, ApiError>>>> {
    let caller = Authenticated::from_request(req, payload);
    Box::pin(async move {
        let Authenticated { state, session } = caller.await?;
        let mut conn = state.pool.get().await?;
        look_up(session, &mut conn).await
    })
}

/// The application `application_id` if `user_id` owns it; 10002 otherwise.
pub async fn owned(
    conn: &mut Connection,
    application_id: i64,
    user_id: i64,
) -> Result<Application, ApiError> {
    Application::find(conn, application_id)
        .await?
        .filter(|app| app.owner_id == user_id)
        .ok_or(ApiError::Unknown(Unknown::Application))
}

/// The application object with its owner and bot users loaded.
pub async fn body(conn: &mut Connection, app: &Application) -> Result<Value, ApiError> {
    let ids: Vec<i64> = std::iter::once(app.owner_id)
        .chain(app.bot_user_id)
        .collect();
    let users = User::find_many(conn, &ids).await?;
    let owner = users
        .iter()
        .find(|u| u.id == app.owner_id)
        .ok_or(ApiError::Unknown(Unknown::User))?;
    let bot = app
        .bot_user_id
        .and_then(|bot_id| users.iter().find(|u| u.id == bot_id));
    Ok(crate::wire::application::application(app, owner, bot))
}

/// 50010, for an application that has no bot user yet.
pub fn no_bot() -> ApiError {
    ApiError::Plain {
        status: StatusCode::BAD_REQUEST,
        code: 50010,
        message: "OAuth2 application does not have a bot",
    }
}
