//! `PUT /uploads/{token}`: the file of a pre-upload (`POST /channels/{id}/attachments` hands
//! out the URL). The unguessable token is the authorisation, as with Discord's signed upload
//! URLs; each token takes one file, no larger than the instance's attachment limit, before it
//! expires.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use chrono::Utc;

use crate::cdn::store_stream;
use crate::db::pending_uploads::PendingUpload;
use crate::http::error::{ApiError, Unknown};
use crate::state::AppState;
use crate::storage::Key;

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
