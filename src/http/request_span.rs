//! One tracing span per request: its method, route (the matched pattern, so ids do not make
//! every request a new name), a request id, and the caller's user id once `Authenticated` has
//! checked the token. Whatever is logged while the request is handled (an internal error above
//! all) carries them, so a 500's log line says who asked and where. The request id is echoed
//! in `X-Request-Id`, for a client's report to name the line.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::field::Empty;
use tracing::Instrument;

use super::error::ApiError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub async fn trace_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = format!("{:016x}", rand::random::<u64>());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    // At error level: enabled whenever errors are logged, whatever the filter.
    let span = tracing::error_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %request_id,
        user_id = Empty,
    );
    async move {
        let mut response = next.call(req).await.inspect_err(log_failure)?;
        if let Some(error) = response.response().error() {
            log_failure(error);
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Logs a server-side failure that has not logged itself: `ApiError` logs its internal ones,
/// with where they were raised, when it builds its answer.
fn log_failure(error: &actix_web::Error) {
    let status = error.as_response_error().status_code();
    if status.is_server_error() && error.as_error::<ApiError>().is_none() {
        tracing::error!(%error, status = status.as_u16(), "request failed");
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};

    use super::*;

    #[actix_web::test]
    async fn every_answer_carries_its_own_request_id() {
        let (_, _default) = capture();
        let app = test::init_service(
            App::new()
                .route("/a/{id}", web::get().to(HttpResponse::Ok))
                .wrap(from_fn(trace_request)),
        )
        .await;
        let mut ids = Vec::new();
        for path in ["/a/1", "/a/1", "/missing"] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            let id = response.headers().get(REQUEST_ID).cloned();
            assert!(
                id.as_ref().is_some_and(|id| id.len() == 16),
                "{path}: {id:?}"
            );
            ids.push(id);
        }
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
    }

    /// What a test's subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs to a buffer on this thread, from before the test's first span: tracing caches
    /// whether a call site is enabled, and a test running alongside with no subscriber would
    /// otherwise have it cached as not.
    fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    #[actix_web::test]
    async fn a_500_is_logged_with_who_asked_and_where() {
        let (captured, _default) = capture();
        let failing = || async {
            // What `Authenticated` does once the token checks out.
            tracing::Span::current().record("user_id", 42);
            Err::<HttpResponse, _>(ApiError::internal("disk on fire"))
        };
        let app = test::init_service(
            App::new()
                .route("/channels/{channel_id}", web::get().to(failing))
                .wrap(from_fn(trace_request)),
        )
        .await;
        let request = test::TestRequest::get().uri("/channels/7").to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 500);
        let id = response
            .headers()
            .get(REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap();
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = log.lines().find(|l| l.contains("disk on fire")).unwrap();
        assert!(line.contains("ERROR"), "{line}");
        for field in [
            "method=GET",
            "route=/channels/{channel_id}",
            &format!("request_id={id}"),
            "user_id=42",
        ] {
            assert!(line.contains(field), "{field} not in {line}");
        }
    }
}
