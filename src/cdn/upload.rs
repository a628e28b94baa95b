//! `PUT /uploads/{token}`: the file of a pre-upload (`POST /channels/{id}/attachments` hands
//! out the URL). The unguessable token is the authorisation, as with Discord's signed upload
//! URLs; each token takes one file, no larger than the instance's attachment limit, before it
//! expires.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures_util::{Stream, StreamExt};

use crate::db::pending_uploads::PendingUpload;
use crate::http::error::{ApiError, Unknown};
use crate::server::AppState;
use crate::storage::{Key, Storage};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/uploads/{token}", web::put().to(put));
}

async fn put(
    state: Data<AppState>,
    path: Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = Key::upload(&path) else {
        return Err(ApiError::NotFound);
    };
    let token = path.to_ascii_lowercase();
    let lifetime = chrono::Duration::seconds(
        i64::try_from(state.cdn.config.upload_lifetime_secs).unwrap_or(i64::MAX / 1000),
    );
    // The token is checked before the body is read, and no connection waits on the client
    // while it sends the file.
    let upload = {
        let mut conn = state.pool.get().await?;
        PendingUpload::find(&mut conn, &token, Utc::now() - lifetime).await?
    };
    let upload = upload.ok_or(ApiError::Unknown(Unknown::Attachment))?;
    if upload.uploaded {
        return Err(ApiError::Plain {
            status: actix_web::http::StatusCode::CONFLICT,
            code: 0,
            message: "This upload has its file already",
        });
    }
    let max = state.config().limits.message_max_attachment_size;
    let (size, _) = store_stream(&*state.cdn.storage, &key, payload, max, 0).await?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    let mut conn = state.pool.get().await?;
    if !PendingUpload::mark_uploaded(&mut conn, &token, size).await? {
        // Two PUTs raced: the object holds one whole file either way.
        tracing::debug!(token, "upload written twice");
    }
    Ok(HttpResponse::Ok().finish())
}

/// Writes a body (a request's, a multipart file's) of at most `max` bytes to `key` as it
/// arrives, never holding it whole: its length and its first `keep` bytes (to tell what it
/// is). Past `max` it is 40005, and nothing is kept.
pub async fn store_stream<E>(
    storage: &dyn Storage,
    key: &Key,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    max: u64,
    keep: usize,
) -> Result<(u64, Bytes), ApiError> {
    let mut writer = storage.writer(key).await.map_err(ApiError::internal)?;
    let written = async {
        let (mut size, mut head) = (0u64, BytesMut::new());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| ApiError::TooLarge)?;
            size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if size > max {
                return Err(ApiError::TooLarge);
            }
            let wanted = keep.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..wanted]);
            writer.write(chunk).await.map_err(ApiError::internal)?;
        }
        Ok((size, head.freeze()))
    }
    .await;
    match written {
        Ok(stored) => {
            writer.finish().await.map_err(ApiError::internal)?;
            Ok(stored)
        }
        Err(error) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "an unfinished upload was not cleaned up");
            }
            Err(error)
        }
    }
}
