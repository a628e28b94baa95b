//! Follow-ups at `/webhooks/{application_id}/{token}`, for 15 minutes after the interaction:
//! `POST` another message (the first one after a deferred answer fills the "thinking" message
//! in instead), and `GET`/`PATCH`/`DELETE` of `/messages/@original` (the answer) or
//! `/messages/{message_id}` (a follow-up). The token is the authorisation; a wrong or old one
//! is 10015 Unknown Webhook.

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::alive;
use super::callback::{answer_message, writer_access};
use crate::db::interactions::Interaction;
use crate::db::messages::{flags, Message};
use crate::db::Connection;
use crate::http::channels::messages::write::{self, Written};
use crate::http::channels::messages::{files, render, Reader};
use crate::http::error::{ApiError, Unknown};
use crate::http::json::parse_value;
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    const HOOK: &str = "/webhooks/{application_id}/{token}";
    const MESSAGE: &str = "/webhooks/{application_id}/{token}/messages/{message_id}";
    cfg.route(HOOK, web::post().to(follow_up))
        .route(MESSAGE, web::get().to(get))
        .route(MESSAGE, web::patch().to(edit))
        .route(MESSAGE, web::delete().to(delete));
}

/// The interaction the path's token belongs to, while it is alive.
async fn interaction(
    conn: &mut Connection,
    application_id: &str,
    token: &str,
) -> Result<Interaction, ApiError> {
    let unknown = ApiError::Plain {
        status: StatusCode::NOT_FOUND,
        code: 10015,
        message: "Unknown Webhook",
    };
    let Ok(application_id) = application_id.parse::<i64>() else {
        return Err(unknown);
    };
    Interaction::by_token(conn, application_id, token)
        .await?
        .filter(alive)
        .ok_or(unknown)
}

/// The answer (`@original`) or a follow-up of this interaction.
async fn message(
    conn: &mut Connection,
    interaction: &Interaction,
    which: &str,
) -> Result<Message, ApiError> {
    let id = match which {
        "@original" => interaction.original_message_id,
        other => other.parse::<i64>().ok(),
    };
    let found = match id {
        Some(id) => Message::find(conn, interaction.channel_id, id).await?,
        None => None,
    };
    found
        .filter(|m| m.interaction_id == Some(interaction.id))
        .ok_or(ApiError::Unknown(Unknown::Message))
}

async fn shown(
    state: &AppState,
    conn: &mut Connection,
    message: Message,
) -> Result<Value, ApiError> {
    let mut list = render(state, conn, Reader::EVERYONE, &[message]).await?;
    list.pop().ok_or(ApiError::Unknown(Unknown::Message))
}

async fn written(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Written, ApiError> {
    let config = state.config();
    let (body, _) =
        files::read_body(req, payload, config.http.max_json_bytes, &config.limits).await?;
    parse_value(body)
}

async fn follow_up(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = written(&req, &state, payload).await?;
    let mut conn = state.pool.get().await?;
    let interaction = interaction(&mut conn, &path.0, &path.1).await?;
    if interaction.response_type.is_none() {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 40060,
            message: "Interaction has not been acknowledged.",
        });
    }
    let access = writer_access(&mut conn, &interaction).await?;
    let viewer = interaction.user_id;
    // After a deferred answer, the first follow-up is the answer.
    if let Ok(original) = message(&mut conn, &interaction, "@original").await {
        if original.flags & flags::LOADING != 0 {
            let (edited, _) =
                write::rewrite(&state, &mut conn, &access, original, body, viewer).await?;
            return Ok(HttpResponse::Ok().json(shown(&state, &mut conn, edited).await?));
        }
    }
    let new = answer_message(&state, &mut conn, &interaction).await?;
    let (posted, _) = write::post(&state, &mut conn, &access, new, body, viewer).await?;
    Ok(HttpResponse::Ok().json(shown(&state, &mut conn, posted).await?))
}

async fn get(
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let interaction = interaction(&mut conn, &path.0, &path.1).await?;
    let found = message(&mut conn, &interaction, &path.2).await?;
    Ok(HttpResponse::Ok().json(shown(&state, &mut conn, found).await?))
}

async fn edit(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = written(&req, &state, payload).await?;
    let mut conn = state.pool.get().await?;
    let interaction = interaction(&mut conn, &path.0, &path.1).await?;
    let found = message(&mut conn, &interaction, &path.2).await?;
    let access = writer_access(&mut conn, &interaction).await?;
    let (edited, _) =
        write::rewrite(&state, &mut conn, &access, found, body, interaction.user_id).await?;
    Ok(HttpResponse::Ok().json(shown(&state, &mut conn, edited).await?))
}

async fn delete(
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let interaction = interaction(&mut conn, &path.0, &path.1).await?;
    let found = message(&mut conn, &interaction, &path.2).await?;
    let access = writer_access(&mut conn, &interaction).await?;
    write::remove(&state, &mut conn, &access, &found, &[]).await?;
    Ok(HttpResponse::NoContent().finish())
}
