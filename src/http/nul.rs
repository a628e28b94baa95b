//! U+0000 (`%00`) in a request's path or query: PostgreSQL can neither store nor compare it in
//! text, so such requests are answered here, once, before any route sees them — a path with it
//! names nothing (404), a query parameter with it is an invalid form value (50035). JSON bodies
//! are checked by the extractor (`json.rs`), `X-Audit-Log-Reason` where it is read (`audit.rs`).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use super::error::ApiError;
use super::json::nul_error;

pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let refusal = if encodes_nul(req.path()) {
        Some(ApiError::NotFound)
    } else {
        req.query_string()
            .split('&')
            .find(|pair| encodes_nul(pair))
            .map(|pair| ApiError::Form(nul_error(pair.split('=').next().unwrap_or_default())))
    };
    match refusal {
        Some(refusal) => Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body()),
        None => Ok(next.call(req).await?.map_into_left_body()),
    }
}

/// Whether percent-encoded `text` decodes to something holding U+0000.
pub fn encodes_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"%00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_encoded_nul_is_one() {
        assert!(encodes_nul("/api/v9/invites/%00"));
        assert!(encodes_nul("a%00b"));
        assert!(!encodes_nul("/api/v9/invites/%2500"));
        assert!(!encodes_nul("/api/v9/invites/x00"));
    }
}
