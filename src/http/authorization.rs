//! The `Authorization` header: `<token>`, `Bot <token>` or `Bearer <token>`. Handlers that take
//! an [`Authenticated`] run only for a valid token; anything else gets 401.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};

use super::error::ApiError;
use crate::credentials::{authenticate, Session};
use crate::state::AppState;

/// The account making the request, with the state it was checked against: the request's
/// context in one value, so a handler needs no separate `Data<AppState>` parameter.
pub struct Authenticated {
    pub state: Data<AppState>,
    pub session: Session,
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token) else {
                return Err(ApiError::Unauthorized);
            };
            // On the request threads: see `request_threads`.
            let checking = state.clone();
            let session = state
                .request_threads
                .run(async move {
                    let mut conn = checking.pool.get().await?;
                    Ok::<_, ApiError>(authenticate(&mut conn, &checking.tokens, &token).await?)
                })
                .await?
                .ok_or(ApiError::Unauthorized)?;
            // Into the request's span (`request_span`): what is logged from here names them.
            tracing::Span::current().record("user_id", session.user.id);
            Ok(Authenticated { state, session })
        })
    }
}
