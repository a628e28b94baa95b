//! `POST /auth/logout`: ends the login session of the token used; the token stops working.

use actix_web::HttpResponse;

use crate::db::auth_sessions;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;

pub async fn logout(
    Authenticated { state, session }: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    auth_sessions::delete(&mut conn, session.session_id).await?;
    state.logins_ended(session.user.id, Some(session.session_id), None);
    Ok(HttpResponse::NoContent().finish())
}
