//! Posting as a webhook, `POST /webhooks/{webhook_id}/{token}` (JSON, or multipart with
//! `payload_json` and files), and its messages at `/webhooks/{webhook_id}/{token}/messages/
//! {message_id}`. The message is written by `channels::messages::write`, like people's and
//! applications' messages, with the webhook (its name, or the `username` sent) as its author.
//! `?wait=true` answers with the message, otherwise 204. An id and token that are no webhook's
//! are an interaction's follow-up (`interactions::followups`).

use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::{by_token, check_name, webhook_id, writer_access};
use crate::db::messages::{flags, Message};
use crate::db::webhooks::Webhook;
use crate::db::{Connection, Pooled};
use crate::http::channels::messages::files::{self, AttachmentBody, Attachments, SentFile};
use crate::http::channels::messages::write::{self, Written};
use crate::http::channels::messages::{render_one, Reader};
use crate::http::error::{ApiError, Unknown};
use crate::http::interactions::followups;
use crate::http::json::parse_value;
use crate::http::urls::PublicUrls;
use crate::state::AppState;
use crate::storage::ImageArea;

#[derive(Debug, Deserialize)]
pub struct ExecuteQuery {
    #[serde(default)]
    wait: Option<String>,
    // `thread_id` is accepted and ignored: there are no threads here.
}

impl ExecuteQuery {
    fn wait(&self) -> bool {
        self.wait
            .as_deref()
            .is_some_and(|w| w.eq_ignore_ascii_case("true") || w == "1")
    }
}

/// What a webhook sends: a message, and who it poses as.
#[derive(Debug, Deserialize)]
pub struct Execute {
    #[serde(flatten)]
    written: Written,
    #[serde(default)]
    username: Option<String>,
    /// An image to show instead of the webhook's avatar: fetched and kept here (`cdn::remote`).
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(default)]
    attachments: Option<Vec<AttachmentBody>>,
}

/// An edit of a webhook's message: what it says, which files it keeps, and new ones.
#[derive(Debug, Deserialize)]
pub struct Edit {
    #[serde(flatten)]
    written: Written,
    #[serde(default)]
    attachments: Option<Vec<AttachmentBody>>,
}

/// A request's body (JSON or multipart) with its files, read only once `id` and `token` are
/// known to be a webhook's or a live interaction's (10015 otherwise): a wrong token costs the
/// server nothing however large the body, and no connection is held while it arrives.
async fn body(
    req: &HttpRequest,
    state: &AppState,
    (id, token): (i64, &str),
    payload: web::Payload,
) -> Result<(Value, Vec<SentFile>), ApiError> {
    {
        let mut conn = state.pool.get().await?;
        if by_token(&mut conn, id, token).await?.is_none() {
            followups::interaction(&mut conn, id, token).await?;
        }
    }
    files::read_body(req, payload, state, true).await
}

/// The files a webhook sends with a message to `channel_id`: multipart parts only (a webhook
/// has no pre-uploads, which belong to a user).
async fn attachments(
    req: &HttpRequest,
    state: &AppState,
    conn: &mut Connection,
    channel_id: i64,
    bodies: Vec<AttachmentBody>,
    sent: Vec<SentFile>,
) -> Result<Attachments, ApiError> {
    let base = PublicUrls::of(req, &state.config()).base;
    Attachments::prepare(state, conn, &base, channel_id, NO_UPLOADER, bodies, sent).await
}

/// No user uploads for a webhook: pre-uploads naming this uploader never exist.
const NO_UPLOADER: i64 = -1;

/// `POST /webhooks/{webhook_id}/{token}`.
pub async fn execute(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String)>,
    query: Query<ExecuteQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = webhook_id(&path.0)?;
    let (body, sent) = body(&req, &state, (id, &path.1), payload).await?;
    let mut conn = state.pool.get().await?;
    let Some(webhook) = by_token(&mut conn, id, &path.1).await? else {
        drop(conn);
        return followups::follow_up(&state, id, &path.1, body).await;
    };
    let mut body: Execute = parse_value(body)?;
    let name = match body.username.as_deref().filter(|u| !u.is_empty()) {
        Some(username) => check_name("username", username)?,
        None => webhook.name.clone(),
    };
    // Only the person an interaction answers sees an ephemeral message; a webhook has none.
    body.written.flags = body.written.flags.map(|f| f & !i64::from(flags::EPHEMERAL));
    let access = writer_access(&mut conn, webhook.guild_id, webhook.channel_id).await?;
    // Fetching an `avatar_url` may take seconds: no database connection waits on it.
    drop(conn);
    let avatar = avatar(&state, &webhook, body.avatar_url.as_deref()).await;
    let mut conn = state.pool.get().await?;
    let bodies = body.attachments.take().unwrap_or_default();
    let files = attachments(&req, &state, &mut conn, webhook.channel_id, bodies, sent).await?;
    let message = Message::new_by_webhook(
        state.snowflakes.next(),
        webhook.channel_id,
        Some(webhook.guild_id),
        webhook.id,
        name,
        avatar,
    );
    let (_, event) =
        write::post(&state, &mut conn, &access, message, &files, body.written, 0).await?;
    if query.wait() {
        Ok(HttpResponse::Ok().json(event))
    } else {
        Ok(HttpResponse::NoContent().finish())
    }
}

/// The avatar a message shows: the image `avatar_url` names, fetched and stored as one of the
/// webhook's avatars, or (without one, or when it cannot be had) the webhook's own, as on
/// Discord: a bad `avatar_url` does not stop the message.
async fn avatar(state: &AppState, webhook: &Webhook, avatar_url: Option<&str>) -> Option<String> {
    let url = avatar_url.filter(|u| !u.is_empty() && state.cdn.config.fetch_remote_images);
    let Some(url) = url else {
        return webhook.avatar.clone();
    };
    match state
        .cdn
        .fetch_image(url, ImageArea::Avatar, webhook.id)
        .await
    {
        Ok(hash) => Some(hash),
        Err(error) => {
            tracing::info!(%error, webhook_id = webhook.id, "avatar_url not taken");
            webhook.avatar.clone()
        }
    }
}

/// The webhook `id`/`token` names and its message `message_id` (10008 if it sent no such
/// message; `@original` is an interaction's, never a webhook's), with the connection that
/// found them; `None` when the id and token are no webhook's but maybe an interaction's.
async fn webhook_message(
    state: &AppState,
    id: i64,
    token: &str,
    message_id: &str,
) -> Result<Option<(Pooled, Webhook, Message)>, ApiError> {
    let mut conn = state.pool.get().await?;
    let Some(webhook) = by_token(&mut conn, id, token).await? else {
        return Ok(None);
    };
    let found = match message_id.parse::<i64>() {
        Ok(message_id) => Message::find_by_webhook(&mut conn, webhook.id, message_id).await?,
        Err(_) => None,
    };
    let message = found.ok_or(ApiError::Unknown(Unknown::Message))?;
    Ok(Some((conn, webhook, message)))
}

/// `GET /webhooks/{webhook_id}/{token}/messages/{message_id}`.
pub async fn get_message(
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, token, message_id) = (webhook_id(&path.0)?, &path.1, &path.2);
    let Some((mut conn, _, message)) = webhook_message(&state, id, token, message_id).await? else {
        return followups::get(&state, id, token, message_id).await;
    };
    Ok(HttpResponse::Ok().json(render_one(&state, &mut conn, Reader::EVERYONE, message).await?))
}

/// `PATCH /webhooks/{webhook_id}/{token}/messages/{message_id}`: what it says; with
/// `attachments`, which of its files it keeps; with files, new ones.
pub async fn edit_message(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (id, token, message_id) = (webhook_id(&path.0)?, &path.1, &path.2);
    let (body, sent) = body(&req, &state, (id, token), payload).await?;
    let Some((mut conn, webhook, mut message)) =
        webhook_message(&state, id, token, message_id).await?
    else {
        return followups::edit(&state, id, token, message_id, body).await;
    };
    let body: Edit = parse_value(body)?;
    let access = writer_access(&mut conn, webhook.guild_id, message.channel_id).await?;
    let old_files = message.attachments.clone();
    let kept = kept_files(&old_files, body.attachments.as_deref());
    let bodies = body.attachments.unwrap_or_default();
    let channel_id = message.channel_id;
    let new_files = attachments(&req, &state, &mut conn, channel_id, bodies, sent).await?;
    message.attachments = Value::Array(kept.into_iter().chain(new_files.list.clone()).collect());
    new_files.store(&state).await?;
    let edited = write::rewrite(&state, &mut conn, &access, message, body.written, 0).await;
    let (edited, _) = match edited {
        Ok(edited) => edited,
        Err(error) => {
            new_files.undo(&state).await;
            return Err(error);
        }
    };
    // The files the edit let go of.
    let dropped: Vec<Value> = old_files
        .as_array()
        .into_iter()
        .flatten()
        .filter(|old| {
            let shown = edited.attachments.as_array();
            !shown.is_some_and(|list| list.iter().any(|a| a.get("id") == old.get("id")))
        })
        .cloned()
        .collect();
    files::remove_files(&state, [(channel_id, Value::Array(dropped))]).await;
    Ok(HttpResponse::Ok().json(render_one(&state, &mut conn, Reader::EVERYONE, edited).await?))
}

/// The stored files an edit keeps: all of them without `attachments`, otherwise those it
/// names by id.
fn kept_files(old: &Value, named: Option<&[AttachmentBody]>) -> Vec<Value> {
    let old = old.as_array().cloned().unwrap_or_default();
    match named {
        None => old,
        Some(named) => old
            .into_iter()
            .filter(|file| {
                let id = file.get("id").and_then(Value::as_str);
                named.iter().any(|body| body.names(id))
            })
            .collect(),
    }
}

/// `DELETE /webhooks/{webhook_id}/{token}/messages/{message_id}`.
pub async fn delete_message(
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, token, message_id) = (webhook_id(&path.0)?, &path.1, &path.2);
    let Some((mut conn, webhook, message)) = webhook_message(&state, id, token, message_id).await?
    else {
        return followups::delete(&state, id, token, message_id).await;
    };
    let access = writer_access(&mut conn, webhook.guild_id, message.channel_id).await?;
    write::remove(&state, &mut conn, &access, &message, &[]).await?;
    Ok(HttpResponse::NoContent().finish())
}
