//! Follow-ups at `/webhooks/{application_id}/{token}`, for 15 minutes after the interaction:
//! `POST` another message (the first one after a deferred answer fills the "thinking" message
//! in instead), and `GET`/`PATCH`/`DELETE` of `/messages/@original` (the answer) or
//! `/messages/{message_id}` (a follow-up). The token is the authorisation; a wrong or old one
//! is 10015 Unknown Webhook. The routes are shared with webhooks (`http/webhooks`), which
//! look the id and token up as a webhook first and hand the request here otherwise.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::Value;

use super::alive;
use super::callback::{answer_message, writer_access};
use crate::db::interactions::Interaction;
use crate::db::messages::{flags, Message};
use crate::db::{Connection, Pooled};
use crate::http::channels::messages::files::Attachments;
use crate::http::channels::messages::write::{self, Written};
use crate::http::channels::messages::{render_one, Reader};
use crate::http::error::{ApiError, Unknown};
use crate::http::json::parse_value;
use crate::state::AppState;

/// The interaction the path's token belongs to, while it is alive.
pub(crate) async fn interaction(
    conn: &mut Connection,
    application_id: i64,
    token: &str,
) -> Result<Interaction, ApiError> {
    Interaction::by_token(conn, application_id, token)
        .await?
        .filter(alive)
        .ok_or(ApiError::Unknown(Unknown::Webhook))
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

/// `POST /webhooks/{application_id}/{token}`, with the body already read.
pub async fn follow_up(
    state: &AppState,
    application_id: i64,
    token: &str,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    let body: Written = parse_value(body)?;
    let mut conn = state.pool.get().await?;
    let interaction = interaction(&mut conn, application_id, token).await?;
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
                write::rewrite(state, &mut conn, &access, original, body, viewer).await?;
            return Ok(HttpResponse::Ok()
                .json(render_one(state, &mut conn, Reader::EVERYONE, edited).await?));
        }
    }
    let new = answer_message(state, &mut conn, &interaction).await?;
    let none = Attachments::default();
    let (posted, _) = write::post(state, &mut conn, &access, new, &none, body, viewer).await?;
    Ok(HttpResponse::Ok().json(render_one(state, &mut conn, Reader::EVERYONE, posted).await?))
}

/// The interaction the path's token belongs to and its message `which`, on a connection from
/// the pool.
async fn named(
    state: &AppState,
    application_id: i64,
    token: &str,
    which: &str,
) -> Result<(Pooled, Interaction, Message), ApiError> {
    let mut conn = state.pool.get().await?;
    let interaction = interaction(&mut conn, application_id, token).await?;
    let found = message(&mut conn, &interaction, which).await?;
    Ok((conn, interaction, found))
}

/// `GET /webhooks/{application_id}/{token}/messages/{message_id}`.
pub async fn get(
    state: &AppState,
    application_id: i64,
    token: &str,
    which: &str,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, _, found) = named(state, application_id, token, which).await?;
    Ok(HttpResponse::Ok().json(render_one(state, &mut conn, Reader::EVERYONE, found).await?))
}

/// `PATCH /webhooks/{application_id}/{token}/messages/{message_id}`, the body already read.
pub async fn edit(
    state: &AppState,
    application_id: i64,
    token: &str,
    which: &str,
    body: Value,
) -> Result<HttpResponse, ApiError> {
    let body: Written = parse_value(body)?;
    let (mut conn, interaction, found) = named(state, application_id, token, which).await?;
    let access = writer_access(&mut conn, &interaction).await?;
    let (edited, _) =
        write::rewrite(state, &mut conn, &access, found, body, interaction.user_id).await?;
    Ok(HttpResponse::Ok().json(render_one(state, &mut conn, Reader::EVERYONE, edited).await?))
}

/// `DELETE /webhooks/{application_id}/{token}/messages/{message_id}`.
pub async fn delete(
    state: &AppState,
    application_id: i64,
    token: &str,
    which: &str,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, interaction, found) = named(state, application_id, token, which).await?;
    let access = writer_access(&mut conn, &interaction).await?;
    write::remove(state, &mut conn, &access, &found, &[]).await?;
    Ok(HttpResponse::NoContent().finish())
}
