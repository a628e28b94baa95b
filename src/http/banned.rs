//! Addresses an operator banned from the instance get 403 on every request, the gateway
//! included. The set is in memory (loaded at start, kept current by the admin API), so the
//! check costs no query.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, ResponseError};

use super::client_address::client_address;
use super::error::ApiError;
use crate::state::AppState;

pub async fn refuse_banned(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let banned = req.app_data::<Data<AppState>>().is_some_and(|state| {
        client_address(&req, &state.config()).is_some_and(|address| state.is_banned(address))
    });
    if banned {
        let refusal = ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 40007,
            message: "You are banned from this instance",
        };
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
