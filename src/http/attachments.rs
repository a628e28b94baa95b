//! `/attachments/*` of the API: deleting an unused pre-upload, and re-signing attachment URLs.

use actix_web::web::{self, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cdn::signing::attachment_path;
use crate::db::pending_uploads::PendingUpload;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::Json;
use crate::http::urls::PublicUrls;
use crate::storage::Key;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/attachments/refresh-urls", web::post().to(refresh_urls))
        .route(
            "/attachments/{token}/{filename}",
            web::delete().to(delete_upload),
        );
}

/// `DELETE /attachments/{upload_filename}`: the caller's pre-upload that no message used.
async fn delete_upload(
    Authenticated { state, session }: Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let token = path.0.to_ascii_lowercase();
    let key = Key::upload(&token).ok_or(ApiError::Unknown(Unknown::Attachment))?;
    let mut conn = state.pool.get().await?;
    PendingUpload::delete(&mut conn, &token, session.user.id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Attachment))?;
    state.cdn.remove(&key).await;
    Ok(HttpResponse::NoContent().finish())
}

/// URLs one refresh may name, as on Discord.
const MAX_REFRESHED: usize = 50;

#[derive(Debug, Deserialize)]
struct RefreshUrls {
    attachment_urls: Vec<String>,
}

/// `POST /attachments/refresh-urls` `{attachment_urls}`: each attachment URL signed anew
/// (`{refreshed_urls: [{original, refreshed}]}`); URLs of anything else come back unchanged.
/// More than 50 is a form error.
async fn refresh_urls(
    req: HttpRequest,
    Authenticated {
        state,
        session: _session,
    }: Authenticated,
    Json(body): Json<RefreshUrls>,
) -> Result<HttpResponse, ApiError> {
    if body.attachment_urls.len() > MAX_REFRESHED {
        return Err(FormErrors::field(
            "attachment_urls",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_REFRESHED} or fewer in length."),
        )
        .into());
    }
    let base = PublicUrls::of(&req, &state.config()).base;
    let refreshed: Vec<Value> = body
        .attachment_urls
        .iter()
        .map(|original| {
            let bare = original.split(['?', '#']).next().unwrap_or(original);
            let refreshed = match attachment_path(bare) {
                Some(path) => state.cdn.signer.sign_url(&format!("{base}{path}")),
                None => original.clone(),
            };
            json!({ "original": original, "refreshed": refreshed })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "refreshed_urls": refreshed })))
}
