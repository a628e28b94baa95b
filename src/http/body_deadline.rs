//! A bound on how slowly a request body may arrive. actix-web's `client_request_timeout` covers
//! the head only: without this, a client dripping a body byte by byte keeps its handler waiting
//! for as long as it likes. After `http.body_grace_secs` the body must keep up an average of
//! `http.body_min_bytes_per_sec` (counting only the time the server waits for it); one that
//! falls behind ends the request with 408, and the connection is closed. WebSocket upgrades
//! are left alone: their "body" is the socket.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::error::ApiError;
use crate::state::AppState;

/// Middleware: paces every request body (see the module's comment).
pub async fn bound_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<Data<AppState>>().cloned();
    let (Some(state), false) = (state, req.head().upgrade()) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let http = &state.config().http;
    let expired = Rc::new(Cell::new(false));
    let paced = Paced::new(
        req.take_payload(),
        Duration::from_secs(http.body_grace_secs),
        http.body_min_bytes_per_sec,
        expired.clone(),
    );
    req.set_payload(Payload::Stream {
        payload: Box::pin(paced),
    });
    let response = next.call(req).await?;
    if !expired.get() {
        return Ok(response.map_into_boxed_body());
    }
    tracing::info!(path = response.request().path(), "request body too slow");
    let mut timed_out = ApiError::Plain {
        status: StatusCode::REQUEST_TIMEOUT,
        code: 0,
        message: "The request body was sent too slowly",
    }
    .error_response();
    // The rest of the body may still be on its way: the connection is not reused.
    timed_out
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(response.into_response(timed_out))
}

/// A body that fails once the time spent waiting for it passes its allowance: the grace
/// period plus what its bytes so far are worth at the minimum rate. Only time spent waiting
/// on the client counts: a handler that is slow to read (storage pushing back) costs the
/// client nothing.
struct Paced {
    inner: Payload,
    grace: Duration,
    min_rate: u64,
    received: u64,
    /// Time spent waiting for the client, before the current wait.
    waited: Duration,
    /// When the current wait began.
    waiting_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl Paced {
    fn new(inner: Payload, grace: Duration, min_rate: u64, expired: Rc<Cell<bool>>) -> Self {
        Self {
            inner,
            grace,
            min_rate: min_rate.max(1),
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: Box::pin(tokio::time::sleep(grace)),
            expired,
        }
    }

    fn allowance(&self) -> Duration {
        self.grace + Duration::from_secs_f64(self.received as f64 / self.min_rate as f64)
    }
}

impl Stream for Paced {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired.get() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(chunk)) = &item {
                    this.received += chunk.len() as u64;
                }
                return Poll::Ready(item);
            }
            Poll::Pending => {}
        }
        let since = *this.waiting_since.get_or_insert_with(Instant::now);
        let deadline = since + this.allowance().saturating_sub(this.waited);
        if this.timer.deadline() != deadline {
            this.timer.as_mut().reset(deadline);
        }
        if this.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.expired.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "request body sent too slowly",
        )))))
    }
}
