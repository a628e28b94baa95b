//! `POST /channels/{channel_id}/attachments` (ATTACH_FILES): Discord's pre-upload flow. The
//! client names its files and sizes and gets, per file, an `upload_url` to `PUT` the bytes to
//! and an `upload_filename` to name in the message (`attachments[].uploaded_filename`).
//! Uploads left unused expire (`cdn.upload_lifetime_secs`) and are removed.

use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cdn::signing::hex;
use crate::db::pending_uploads::PendingUpload;
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::InChannel;
use crate::http::json::Json;
use crate::http::urls::PublicUrls;
use crate::permissions::bits;
use crate::state::AppState;
use crate::storage::{clean_filename, Key};

#[derive(Debug, Deserialize)]
pub struct UploadRequest {
    files: Vec<FileRequest>,
}

#[derive(Debug, Deserialize)]
pub struct FileRequest {
    filename: String,
    #[serde(default)]
    file_size: Option<u64>,
    /// The client's own reference, echoed back (a string or a number).
    #[serde(default)]
    id: Option<Value>,
}

pub async fn create(
    req: HttpRequest,
    caller: InChannel,
    Json(body): Json<UploadRequest>,
) -> Result<HttpResponse, ApiError> {
    let (access, user) = (&caller.access, &caller.session.user);
    let channel_id = access.channel.id;
    access.require(bits::SEND_MESSAGES | bits::ATTACH_FILES)?;
    let limits = &caller.state.config().limits;
    if body.files.is_empty()
        || u64::try_from(body.files.len()).unwrap_or(u64::MAX) > limits.message_max_attachments
    {
        return Err(FormErrors::field(
            "files",
            "BASE_TYPE_BAD_LENGTH",
            format!(
                "Must be between 1 and {} in length.",
                limits.message_max_attachments
            ),
        )
        .into());
    }
    if body
        .files
        .iter()
        .any(|f| f.file_size.unwrap_or(0) > limits.message_max_attachment_size)
    {
        return Err(ApiError::TooLarge);
    }
    let mut conn = caller.conn.get().await?;
    sweep_expired(&caller.state, &mut conn, user.id).await?;

    let now = Utc::now();
    let uploads: Vec<PendingUpload> = body
        .files
        .iter()
        .map(|file| PendingUpload {
            token: hex(&rand::random::<[u8; 16]>()),
            channel_id,
            user_id: user.id,
            filename: clean_filename(&file.filename),
            size: i64::try_from(file.file_size.unwrap_or(0)).unwrap_or(0),
            uploaded: false,
            created_at: now,
        })
        .collect();
    PendingUpload::insert_all(&mut conn, &uploads).await?;
    let base = PublicUrls::of(&req, &caller.state.config()).base;
    let attachments: Vec<Value> = body
        .files
        .iter()
        .zip(&uploads)
        .enumerate()
        .map(|(index, (file, upload))| {
            json!({
                "id": file.id.clone().unwrap_or(json!(index)),
                "upload_url": format!("{base}/uploads/{}", upload.token),
                "upload_filename": format!("{}/{}", upload.token, upload.filename),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "attachments": attachments })))
}

/// Removes the user's expired uploads and their files.
async fn sweep_expired(
    state: &AppState,
    conn: &mut crate::db::Connection,
    user_id: i64,
) -> Result<(), ApiError> {
    let before = Utc::now() - upload_lifetime(state);
    for upload in PendingUpload::delete_expired(conn, user_id, before).await? {
        if let Some(key) = Key::upload(&upload.token) {
            state.cdn.remove(&key).await;
        }
    }
    Ok(())
}

pub fn upload_lifetime(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(state.cdn.config.upload_lifetime_secs).unwrap_or(i64::MAX / 1000),
    )
}
