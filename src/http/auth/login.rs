//! `POST /auth/login`: checks an e-mail and password, opens a login session and answers
//! `{token, user_id, settings}` with the complete settings object.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

use super::register::normalise_email;
use crate::credentials::password;
use crate::db::auth_sessions;
use crate::db::users::User;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::state::AppState;
use crate::wire::settings;

#[derive(Debug, Deserialize)]
pub struct LoginBody {
    login: String,
    password: String,
}

pub async fn login(
    state: Data<AppState>,
    Json(body): Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    // The connection goes back before bcrypt: nobody, signed in or not, holds one through it.
    let user = {
        let mut conn = state.pool.get().await?;
        User::find_by_email(&mut conn, &normalise_email(&body.login))
            .await?
            .filter(|user| !user.deleted)
    };
    let hash = user.as_ref().and_then(|user| user.password_hash.clone());
    // Without a hash to check, one is checked all the same: the answer takes as long either way.
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| password::decoy(state.config().security.bcrypt_cost));
    let matches = password::verify(body.password, hash).await? && known;
    let Some(user) = user.filter(|_| matches) else {
        let mut errors =
            FormErrors::field("login", "INVALID_LOGIN", "Login or password is invalid.");
        errors.add("password", "INVALID_LOGIN", "Login or password is invalid.");
        return Err(errors.into());
    };
    if user.disabled {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 20013,
            message: "This account is disabled",
        });
    }
    let session_id = state.snowflakes.next();
    auth_sessions::create(&mut *state.pool.get().await?, session_id, user.id).await?;
    let token = state.tokens.issue(user.id, session_id)?;
    let settings = settings::merged(&user.settings);
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "user_id": user.id.to_string(),
        "user_settings": { "locale": settings["locale"], "theme": settings["theme"] },
        "settings": settings,
    })))
}
