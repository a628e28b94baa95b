//! One gateway session, behaving like a minimal Discord client:
//! connect -> HELLO -> IDENTIFY -> READY, then heartbeat until told to stop.
//!
//! Every wait is bounded (connect/HELLO/READY by `timeout`, sends by `timeout`,
//! the closing handshake by [`CLOSE_WAIT`]) so a session always ends.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use actix_http::ws::Item;
use awc::ws::{self, CloseCode};
use awc::{BoxedSocket, Client};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout};

use crate::zlib::ZlibStream;

/// Largest WebSocket frame accepted (READY can be big on a busy account).
const MAX_FRAME: usize = 64 << 20;
/// How long to wait for the server's close frame after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Live counters shared by all threads, read by the coordinator.
#[derive(Default)]
pub struct Shared {
    /// Sessions that received READY.
    pub ready: AtomicUsize,
    /// Sessions that ended before READY.
    pub failed: AtomicUsize,
    /// Sessions that ended unexpectedly after READY.
    pub dropped: AtomicUsize,
}

/// Everything one session needs.
pub struct SessionCtx {
    pub client: Client,
    /// Full gateway URL including `?v=..&encoding=json[&compress=zlib-stream]`.
    pub url: Rc<str>,
    pub token: String,
    pub compress: bool,
    pub timeout: Duration,
    pub shutdown: watch::Receiver<bool>,
    pub shared: Arc<Shared>,
}

/// Why a session ended, when it was not us closing it at the end of the run.
pub enum Failure {
    /// The server sent a close frame (with its code, if any).
    Closed(Option<u16>),
    /// Anything else: timeouts, protocol errors, unexpected opcodes...
    Error(String),
}

/// What one session measured.
#[derive(Default)]
pub struct SessionReport {
    /// Time from sending IDENTIFY to receiving the READY dispatch.
    pub ready_latency: Option<Duration>,
    /// When READY arrived.
    pub ready_at: Option<Instant>,
    pub heartbeats_sent: u64,
    pub acks: u64,
    /// Heartbeats whose ack had not arrived when the next one was due.
    pub missed_acks: u64,
    /// Gateway messages received, and how many of them came zlib-compressed.
    pub messages: u64,
    pub zlib_messages: u64,
    pub failure: Option<Failure>,
}

impl SessionReport {
    fn count_message(&mut self, zlib: bool) {
        self.messages += 1;
        if zlib {
            self.zlib_messages += 1;
        }
    }
}

/// The fields of a gateway payload we look at. `d` stays unparsed (READY can
/// be large) except for HELLO.
#[derive(Deserialize)]
struct Envelope<'a> {
    op: u8,
    #[serde(default)]
    s: Option<u64>,
    #[serde(borrow, default)]
    t: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Hello {
    heartbeat_interval: f64,
}

/// Runs one session to completion and updates the shared counters.
pub async fn run(mut ctx: SessionCtx) -> SessionReport {
    let mut report = SessionReport::default();
    if let Err(failure) = drive(&mut ctx, &mut report).await {
        report.failure = Some(failure);
        if report.ready_latency.is_some() {
            ctx.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    if report.ready_latency.is_none() {
        ctx.shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    report
}

async fn drive(ctx: &mut SessionCtx, report: &mut SessionReport) -> Result<(), Failure> {
    // Connect and wait for HELLO, unless the run ends first.
    let handshake = handshake(&ctx.client, &ctx.url, ctx.compress, ctx.timeout);
    let (mut conn, interval, hello_zlib) = tokio::select! {
        r = handshake => r?,
        _ = shutdown_signal(&mut ctx.shutdown) => return Err(err("run ended before READY")),
    };
    report.count_message(hello_zlib);

    // IDENTIFY
    let identify = serde_json::json!({
        "op": 2,
        "d": {
            "token": ctx.token,
            "properties": {"os": "linux", "browser": "spacebar-bench", "device": "spacebar-bench"},
            "intents": 0,
            "capabilities": 0,
        }
    })
    .to_string();
    let identify_at = Instant::now();
    conn.send(ws::Message::Text(identify.into())).await?;
    let ready_deadline = tokio::time::Instant::from_std(identify_at + ctx.timeout);

    // Like Discord clients: first heartbeat after interval * jitter, then every interval.
    let mut next_heartbeat = tokio::time::Instant::now() + interval.mul_f64(rand::random::<f64>());
    let mut last_seq: Option<u64> = None;
    let mut awaiting_ack = false;
    loop {
        tokio::select! {
            payload = conn.next_payload() => {
                let (payload, zlib) = payload?;
                report.count_message(zlib);
                let env = parse(&payload)?;
                if env.s.is_some() {
                    last_seq = env.s;
                }
                match env.op {
                    0 if env.t.as_deref() == Some("READY") && report.ready_latency.is_none() => {
                        report.ready_latency = Some(identify_at.elapsed());
                        report.ready_at = Some(Instant::now());
                        ctx.shared.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    // The server asks for a heartbeat right away.
                    1 => {
                        conn.send(heartbeat(last_seq)).await?;
                        report.heartbeats_sent += 1;
                    }
                    7 => return Err(err("server asked to reconnect (op 7)")),
                    9 => return Err(err("invalid session (op 9)")),
                    11 => {
                        report.acks += 1;
                        awaiting_ack = false;
                    }
                    _ => {}
                }
            }
            _ = sleep_until(next_heartbeat) => {
                if awaiting_ack {
                    report.missed_acks += 1;
                }
                conn.send(heartbeat(last_seq)).await?;
                report.heartbeats_sent += 1;
                awaiting_ack = true;
                next_heartbeat += interval;
            }
            _ = sleep_until(ready_deadline), if report.ready_latency.is_none() => {
                return Err(err("timeout waiting for READY"));
            }
            _ = shutdown_signal(&mut ctx.shutdown) => {
                conn.close().await;
                return if report.ready_latency.is_some() {
                    Ok(())
                } else {
                    Err(err("run ended before READY"))
                };
            }
        }
    }
}

/// Opens the WebSocket and reads HELLO; returns the connection and the
/// heartbeat interval.
async fn handshake(
    client: &Client,
    url: &str,
    compress: bool,
    limit: Duration,
) -> Result<(Conn, Duration, bool), Failure> {
    let connect = client.ws(url).max_frame_size(MAX_FRAME).connect();
    let (_, framed) = match timeout(limit, connect).await {
        Err(_) => return Err(err("timeout connecting")),
        Ok(Err(e)) => return Err(Failure::Error(format!("connect: {e}"))),
        Ok(Ok(pair)) => pair,
    };
    let mut conn = Conn {
        framed,
        inflate: compress.then(ZlibStream::new),
        fragments: None,
        timeout: limit,
    };
    let (hello, hello_zlib) = timeout(limit, conn.next_payload())
        .await
        .map_err(|_| err("timeout waiting for HELLO"))??;
    let env = parse(&hello)?;
    if env.op != 10 {
        return Err(Failure::Error(format!(
            "expected HELLO (op 10), got op {}",
            env.op
        )));
    }
    let interval = env
        .d
        .and_then(|d| serde_json::from_str::<Hello>(d.get()).ok())
        .and_then(|h| Duration::try_from_secs_f64(h.heartbeat_interval / 1000.0).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| err("HELLO without a valid heartbeat_interval"))?;
    Ok((conn, interval, hello_zlib))
}

fn err(msg: &str) -> Failure {
    Failure::Error(msg.to_string())
}

fn parse(payload: &[u8]) -> Result<Envelope<'_>, Failure> {
    serde_json::from_slice(payload).map_err(|e| Failure::Error(format!("bad JSON payload: {e}")))
}

fn heartbeat(last_seq: Option<u64>) -> ws::Message {
    ws::Message::Text(
        serde_json::json!({"op": 1, "d": last_seq})
            .to_string()
            .into(),
    )
}

/// Resolves once the coordinator signals the end of the run (or goes away).
pub async fn shutdown_signal(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// A gateway connection: the WebSocket plus transport decompression.
struct Conn {
    framed: Framed<BoxedSocket, ws::Codec>,
    inflate: Option<ZlibStream>,
    /// A fragmented message being reassembled: (is binary, bytes so far).
    fragments: Option<(bool, Vec<u8>)>,
    timeout: Duration,
}

impl Conn {
    /// Next complete gateway payload (JSON bytes), and whether it came through
    /// the zlib stream.
    ///
    /// Cancel-safe enough for `select!`: partial state (fragments, zlib input)
    /// lives in `self`, and the only await besides reading is answering a ping.
    async fn next_payload(&mut self) -> Result<(Vec<u8>, bool), Failure> {
        loop {
            let frame = match self.framed.next().await {
                None => return Err(err("connection closed without a close frame")),
                Some(Err(e)) => return Err(Failure::Error(format!("websocket error: {e}"))),
                Some(Ok(frame)) => frame,
            };
            let (binary, data) = match frame {
                ws::Frame::Text(b) => (false, b.to_vec()),
                ws::Frame::Binary(b) => (true, b.to_vec()),
                ws::Frame::Continuation(item) => match item {
                    Item::FirstText(b) => {
                        self.fragments = Some((false, b.to_vec()));
                        continue;
                    }
                    Item::FirstBinary(b) => {
                        self.fragments = Some((true, b.to_vec()));
                        continue;
                    }
                    Item::Continue(b) => {
                        if let Some((_, buf)) = &mut self.fragments {
                            buf.extend_from_slice(&b);
                        }
                        continue;
                    }
                    Item::Last(b) => match self.fragments.take() {
                        Some((binary, mut buf)) => {
                            buf.extend_from_slice(&b);
                            (binary, buf)
                        }
                        None => return Err(err("continuation frame without a first frame")),
                    },
                },
                ws::Frame::Ping(p) => {
                    self.send(ws::Message::Pong(p)).await?;
                    continue;
                }
                ws::Frame::Pong(_) => continue,
                ws::Frame::Close(reason) => {
                    return Err(Failure::Closed(reason.map(|r| u16::from(r.code))))
                }
            };
            match (&mut self.inflate, binary) {
                (Some(z), true) => match z.push(&data) {
                    Ok(Some(message)) => return Ok((message, true)),
                    Ok(None) => continue, // message continues in the next frame
                    Err(e) => return Err(Failure::Error(format!("zlib-stream: {e}"))),
                },
                _ => return Ok((data, false)),
            }
        }
    }

    async fn send(&mut self, msg: ws::Message) -> Result<(), Failure> {
        match timeout(self.timeout, self.framed.send(msg)).await {
            Err(_) => Err(err("timeout sending")),
            Ok(Err(e)) => Err(Failure::Error(format!("send: {e}"))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends a normal close and briefly waits for the server's close frame.
    async fn close(&mut self) {
        if self
            .send(ws::Message::Close(Some(CloseCode::Normal.into())))
            .await
            .is_err()
        {
            return;
        }
        let _ = timeout(CLOSE_WAIT, async {
            while let Some(Ok(frame)) = self.framed.next().await {
                if matches!(frame, ws::Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}
