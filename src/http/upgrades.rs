//! Upgraded connections (the gateway's, the voice gateway's and the rooms service's WebSockets)
//! served outside actix-http's HTTP/1 dispatcher.
//!
//! Why: the dispatcher keeps an 8 KiB read buffer and an 8 KiB write buffer for every connection
//! for as long as it lives, and copies every frame into the second before writing it. That was
//! most of an idle gateway session's memory. Here the upgrade request still goes through the
//! whole application (middleware, routes, the handler's checks); once the handler answers
//! `101 Switching Protocols`, the dispatcher's task ends and a [`Pump`], a small task of its own,
//! moves the bytes: the client's into the request payload the socket actor reads, the actor's
//! frames straight to the socket, several in one `writev` when several are ready. It keeps no
//! buffer while the socket is idle.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_codec::{AsyncRead, AsyncWrite, Framed, ReadBuf};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::{h1, BoxedPayloadStream, ConnectionType, Payload, Request, Response, StatusCode};
use actix_service::{IntoServiceFactory, Service, ServiceFactory};
use actix_web::dev::{AppConfig, ServiceResponse};
use bytes::{Buf, Bytes};
use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use futures_util::{SinkExt, Stream};

/// Frames the socket actor may have produced and the client not yet taken before the pump stops
/// running the actor (actix-http's dispatcher stops at the same mark).
const PENDING_AT_MOST: usize = 32 * 1024;
/// What one read from the client takes at most. On the stack: nothing stays allocated.
const READ_CHUNK: usize = 4096;
/// The client's bytes waiting for the socket actor before the pump stops reading the socket.
const INBOUND_AT_MOST: usize = 64 * 1024;
/// How long a client has to take a refusal.
const REFUSAL_WRITTEN_WITHIN: Duration = Duration::from_secs(5);
/// Upgraded connections one worker carries at most; beyond, upgrades are answered 503. The
/// limit actix-server puts on a worker's connections (25,600 by default).
const OPEN_PER_WORKER: usize = 25_600;
/// Frames written in one `writev`.
const SLICES_AT_MOST: usize = 64;
/// The body of an answer other than `101` (a refusal), read whole before it is written.
const REFUSAL_AT_MOST: usize = 64 * 1024;

/// A worker's instance of the application, built once for its HTTP service and its upgrades
/// alike (each instance holds every route's matcher: about 2.5 MiB), with the configuration
/// actix-web's `HttpServer` would give it.
pub struct WorkerApp<S> {
    built: Shared<LocalBoxFuture<'static, Result<Rc<S>, ()>>>,
}

impl<S> Clone for WorkerApp<S> {
    fn clone(&self) -> Self {
        Self {
            built: self.built.clone(),
        }
    }
}

impl<S: 'static> WorkerApp<S> {
    pub fn new<A>(app: impl IntoServiceFactory<A, Request>, config: AppConfig) -> Self
    where
        A: ServiceFactory<Request, Config = AppConfig, Service = S>,
        A::Future: 'static,
    {
        let building = app.into_factory().new_service(config);
        let built = async move { building.await.map(Rc::new).map_err(|_| ()) };
        Self {
            built: built.boxed_local().shared(),
        }
    }
}

impl<S: Service<Request> + 'static> ServiceFactory<Request> for WorkerApp<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Config = ();
    type Service = Rc<S>;
    type InitError = ();
    type Future = Shared<LocalBoxFuture<'static, Result<Rc<S>, ()>>>;

    fn new_service(&self, _: ()) -> Self::Future {
        self.built.clone()
    }
}

/// Makes, for each HTTP worker, the service that takes upgrade requests: the worker's application
/// answers them, a [`Pump`] carries on.
pub struct Upgrades<S>(pub WorkerApp<S>);

/// A connection the pump can carry: plain TCP or TLS.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Connection for T {}

impl<S, B, T: Connection> ServiceFactory<(Request, Framed<T, h1::Codec>)> for Upgrades<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    type Error = actix_web::Error;
    type Config = ();
    type Service = Upgrader<S>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Upgrader<S>, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let built = self.0.built.clone();
        Box::pin(async move {
            Ok(Upgrader {
                app: built.await?,
                open: Rc::default(),
            })
        })
    }
}

/// One worker's upgrade service.
pub struct Upgrader<S> {
    app: Rc<S>,
    /// Upgraded connections this worker carries (their pumps are not counted by actix-server's
    /// per-worker connection limit any more).
    open: Rc<Cell<usize>>,
}

/// One upgraded connection counted in its worker's `open` until its pump ends.
struct Counted(Rc<Cell<usize>>);

impl Counted {
    fn new(open: &Rc<Cell<usize>>) -> Self {
        open.set(open.get() + 1);
        Self(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl<S, B, T: Connection> Service<(Request, Framed<T, h1::Codec>)> for Upgrader<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ();
    /// Never returned: a connection's failure is the client's business and is logged here at
    /// debug level (actix-http would log it as an error).
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<(), actix_web::Error>>;

    actix_service::always_ready!();

    fn call(&self, (request, framed): (Request, Framed<T, h1::Codec>)) -> Self::Future {
        let (app, open) = (self.app.clone(), self.open.clone());
        Box::pin(async move {
            if open.get() >= OPEN_PER_WORKER {
                let busy = Response::new(StatusCode::SERVICE_UNAVAILABLE).into_parts();
                if let Err(error) = refuse(busy.0, busy.1, framed).await {
                    tracing::debug!(%error, "upgrade not answered");
                }
                return Ok(());
            }
            match answer(&*app, request, framed).await {
                // The pump runs as a task of its own, on this worker's thread (the socket actor
                // is not `Send`): the dispatcher's task (about 10 KiB, sized for any request the
                // application serves) ends here.
                Ok(Some(pump)) => {
                    let counted = Counted::new(&open);
                    actix_rt::spawn(async move {
                        let _counted = counted;
                        if let Err(error) = pump.await {
                            tracing::debug!(%error, "upgraded connection ended");
                        }
                    });
                }
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "upgrade not answered"),
            }
            Ok(())
        })
    }
}

/// Answers `request` as the application does: on `101`, the pump that carries the connection on;
/// anything else is written whole and the connection closed.
async fn answer<S, B, T>(
    app: &S,
    request: Request,
    mut framed: Framed<T, h1::Codec>,
) -> io::Result<Option<Pump<T>>>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
    T: Connection,
{
    let inbound = Rc::new(RefCell::new(Inbound::default()));
    let payload: BoxedPayloadStream = Box::pin(ClientBytes(inbound.clone()));
    let (request, _) = request.replace_payload(Payload::from(payload));
    let response = match app.call(request).await {
        Ok(response) => Response::from(response).map_into_boxed_body(),
        Err(error) => Response::from(error.error_response()),
    };
    let (head, body) = response.into_parts();
    if head.status() != StatusCode::SWITCHING_PROTOCOLS {
        return refuse(head, body, framed).await.map(|()| None);
    }
    framed
        .send(h1::Message::Item((head, BodySize::Stream)))
        .await?;
    let parts = framed.into_parts();
    // Whatever the client sent after its request head (a first frame, pipelined).
    if !parts.read_buf.is_empty() {
        inbound.borrow_mut().push(parts.read_buf.freeze());
    }
    Ok(Some(Pump {
        io: parts.io,
        body,
        inbound: Some(inbound),
        pending: VecDeque::new(),
        pending_bytes: 0,
        body_done: false,
    }))
}

/// A refusal (`400`, `403`, `503` …): written whole, then the connection closes; a client that
/// does not take it within [`REFUSAL_WRITTEN_WITHIN`] is let go.
async fn refuse<T>(
    head: Response<()>,
    body: BoxBody,
    framed: Framed<T, h1::Codec>,
) -> io::Result<()>
where
    T: Connection,
{
    actix_rt::time::timeout(REFUSAL_WRITTEN_WITHIN, write_refusal(head, body, framed))
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

async fn write_refusal<T>(
    mut head: Response<()>,
    body: BoxBody,
    mut framed: Framed<T, h1::Codec>,
) -> io::Result<()>
where
    T: Connection,
{
    let body = match actix_http::body::to_bytes_limited(body, REFUSAL_AT_MOST).await {
        Ok(Ok(body)) => body,
        _ => Bytes::new(),
    };
    head.head_mut().set_connection_type(ConnectionType::Close);
    let size = BodySize::Sized(body.len() as u64);
    framed.send(h1::Message::Item((head, size))).await?;
    if !body.is_empty() {
        framed.send(h1::Message::Chunk(Some(body))).await?;
    }
    let mut io = framed.into_parts().io;
    poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx)).await
}

/// The client's bytes on their way to the socket actor: at most [`INBOUND_AT_MOST`] wait (the
/// pump stops reading the socket until the actor takes them), and the end of the stream.
#[derive(Default)]
struct Inbound {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    /// The client stopped sending (`None`: cleanly).
    ended: Option<Option<io::Error>>,
    /// The actor, waiting for bytes.
    reader: Option<Waker>,
    /// The pump, waiting for room.
    writer: Option<Waker>,
}

impl Inbound {
    fn push(&mut self, chunk: Bytes) {
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    fn end(&mut self, error: Option<io::Error>) {
        self.ended = Some(error);
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }

    /// Whether the actor has room for more; if not, the pump is woken when it has.
    fn has_room(&mut self, cx: &Context<'_>) -> bool {
        if self.bytes < INBOUND_AT_MOST {
            return true;
        }
        self.writer = Some(cx.waker().clone());
        false
    }
}

/// The socket actor's end of [`Inbound`]: the request's payload.
struct ClientBytes(Rc<RefCell<Inbound>>);

impl Stream for ClientBytes {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inbound = self.0.borrow_mut();
        if let Some(chunk) = inbound.chunks.pop_front() {
            inbound.bytes -= chunk.len();
            if let Some(writer) = inbound.writer.take() {
                writer.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        match inbound.ended.as_mut() {
            Some(error) => Poll::Ready(error.take().map(|error| Err(PayloadError::Io(error)))),
            None => {
                inbound.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Moves one upgraded connection's bytes: the client's to the socket actor (as fast as the actor
/// reads them), the actor's frames (the response body; the actor runs when it is polled) to the
/// client.
struct Pump<T> {
    io: T,
    body: BoxBody,
    /// Where the client's bytes go; `None` once the client stopped sending or the actor stopped
    /// reading.
    inbound: Option<Rc<RefCell<Inbound>>>,
    /// Frames taken from the body and not yet written whole.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    /// The actor stopped: what is pending is the last to write.
    body_done: bool,
}

impl<T: Connection> Pump<T> {
    /// Reads what the client sent while the actor has room for it.
    fn read_client(&mut self, cx: &mut Context<'_>) {
        while let Some(inbound) = &self.inbound {
            // The actor dropped its end: nobody reads what the client sends any more.
            if Rc::strong_count(inbound) == 1 {
                self.inbound = None;
                return;
            }
            let mut inbound = inbound.borrow_mut();
            if !inbound.has_room(cx) {
                return;
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut read) {
                Poll::Pending => return,
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                    inbound.push(Bytes::copy_from_slice(read.filled()));
                    continue;
                }
                Poll::Ready(Ok(())) => inbound.end(None),
                Poll::Ready(Err(error)) => inbound.end(Some(error)),
            }
            drop(inbound);
            self.inbound = None;
        }
    }

    /// Takes the frames the actor has ready, up to the pending mark; true when the actor has no
    /// more for now (it wakes the pump when it has).
    fn take_frames(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        while !self.body_done && self.pending_bytes < PENDING_AT_MOST {
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(frames))) => {
                    self.pending_bytes += frames.len();
                    if !frames.is_empty() {
                        self.pending.push_back(frames);
                    }
                }
                Poll::Ready(Some(Err(error))) => return Err(io::Error::other(error.to_string())),
                Poll::Ready(None) => self.body_done = true,
                Poll::Pending => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Writes pending frames until none is left or the socket is full.
    fn write_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let mut slices = [IoSlice::new(&[]); SLICES_AT_MOST];
            let count = self.pending.len().min(SLICES_AT_MOST);
            for (slice, frames) in slices.iter_mut().zip(&self.pending) {
                *slice = IoSlice::new(frames);
            }
            let mut written = match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count])
            {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => written,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            };
            self.pending_bytes -= written;
            while let Some(front) = self.pending.front_mut() {
                if written < front.len() {
                    front.advance(written);
                    break;
                }
                written -= front.len();
                self.pending.pop_front();
            }
        }
        // No heap kept from a burst.
        if self.pending.capacity() > SLICES_AT_MOST {
            self.pending = VecDeque::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<T: Connection> Future for Pump<T> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let pump = self.get_mut();
        loop {
            pump.read_client(cx);
            let actor_waiting = pump.take_frames(cx)?;
            if pump.write_frames(cx)?.is_pending() {
                return Poll::Pending;
            }
            if pump.body_done {
                return Pin::new(&mut pump.io).poll_shutdown(cx);
            }
            // Otherwise the actor stopped at the pending mark: all written, take more.
            if actor_waiting {
                return Poll::Pending;
            }
        }
    }
}
