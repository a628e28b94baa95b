//! One gateway session, behaving like a minimal Discord client:
//! connect -> HELLO -> IDENTIFY -> READY, then heartbeat until told to stop.
//!
//! Every wait is bounded (connect/HELLO/READY by `timeout`, sends by `timeout`,
//! the closing handshake by [`CLOSE_WAIT`]) so a session always ends.
//!
//! Dispatches after READY can be handed to a [`DispatchObserver`] (the fanout
//! benchmark records MESSAGE_CREATE arrivals that way), and a session can close
//! right after READY (the READY benchmark's repeated connections). On a drop
//! signal, a READY session drops its socket without a close frame, reconnects
//! and RESUMEs with READY's `session_id` and the last `s` it saw (the resume
//! benchmark). Every session checks its sequence numbers ([`SeqCheck`]).

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
    /// Sessions that got RESUMED after the drop signal.
    pub resumed: AtomicUsize,
}

/// Sees every dispatch a session receives after READY. Shared by all sessions
/// of a run (on several threads), so it must be cheap and thread-safe.
pub trait DispatchObserver: Send + Sync {
    /// `session` is [`SessionCtx::index`], `event` the dispatch's `t`, `d` its
    /// raw JSON (not validated: the tool only looks into it), `at` when the
    /// whole gateway message had been received (and decompressed).
    fn dispatch(&self, session: usize, event: &str, d: &str, at: Instant);
}

/// Everything one session needs.
pub struct SessionCtx {
    /// Number of this session in the run (passed to the observer).
    pub index: usize,
    pub client: Client,
    /// Full gateway URL including `?v=..&encoding=json[&compress=zlib-stream]`.
    pub url: Rc<str>,
    pub token: String,
    pub compress: bool,
    pub timeout: Duration,
    pub shutdown: watch::Receiver<bool>,
    pub shared: Arc<Shared>,
    /// IDENTIFY's `intents` and `capabilities`.
    pub intents: u64,
    pub capabilities: u64,
    /// Close the connection (code 1000) as soon as READY has arrived.
    pub close_after_ready: bool,
    /// Keep READY's JSON in [`SessionReport::ready_payload`].
    pub keep_ready: bool,
    pub observer: Option<Arc<dyn DispatchObserver>>,
    /// When this turns true, a READY session drops its socket without a close
    /// frame, reconnects at once and RESUMEs (once per session).
    pub drop_signal: Option<watch::Receiver<bool>>,
    /// Where to RESUME when the server asks to reconnect (op 7: its node is
    /// draining) or the connection breaks without a close frame (its node was
    /// killed), as a drop does, IDENTIFYing there if the RESUME is refused
    /// (op 9); `None`: op 7 or a broken connection ends the session.
    pub reconnect_url: Option<Rc<str>>,
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
    /// [`SessionCtx::index`].
    pub index: usize,
    /// Time from sending IDENTIFY to receiving the READY dispatch.
    pub ready_latency: Option<Duration>,
    /// When READY arrived.
    pub ready_at: Option<Instant>,
    /// READY's size as JSON, and as received (compressed, with zlib-stream).
    pub ready_bytes: Option<usize>,
    pub ready_wire_bytes: Option<usize>,
    /// READY's JSON, with [`SessionCtx::keep_ready`].
    pub ready_payload: Option<Vec<u8>>,
    pub heartbeats_sent: u64,
    pub acks: u64,
    /// Heartbeats whose ack had not arrived when the next one was due.
    pub missed_acks: u64,
    /// Gateway messages received, and how many of them came zlib-compressed.
    pub messages: u64,
    pub zlib_messages: u64,
    /// Sequence numbers received (from READY on).
    pub seqs: SeqCheck,
    /// After the drop signal: the drop and the RESUME.
    pub resume: Option<ResumeReport>,
    pub failure: Option<Failure>,
}

/// One drop and RESUME of a session.
#[derive(Clone, Debug)]
pub struct ResumeReport {
    /// When the old socket was dropped.
    pub dropped_at: Instant,
    /// From the drop to RESUME sent (reconnect, upgrade, HELLO).
    pub hello_latency: Option<Duration>,
    /// When RESUME was sent, with this `seq`.
    pub sent_at: Option<Instant>,
    pub sent_seq: Option<u64>,
    /// The first sequence number received on the new connection.
    pub first_seq: Option<u64>,
    /// Dispatches between RESUME and RESUMED (the replay).
    pub replayed: u64,
    /// When RESUMED arrived.
    pub resumed_at: Option<Instant>,
    /// When the RESUME was refused (op 9) and the session IDENTIFYed again.
    pub invalidated_at: Option<Instant>,
    /// When READY arrived after that IDENTIFY.
    pub ready_again_at: Option<Instant>,
}

impl Default for ResumeReport {
    fn default() -> Self {
        Self {
            dropped_at: Instant::now(),
            hello_latency: None,
            sent_at: None,
            sent_seq: None,
            first_seq: None,
            replayed: 0,
            resumed_at: None,
            invalidated_at: None,
            ready_again_at: None,
        }
    }
}

/// Checks the sequence numbers of one session: every number from the first
/// one (READY's) to the highest exactly once, in increasing order.
#[derive(Clone, Debug, Default)]
pub struct SeqCheck {
    /// Bit `s - first` is set once `s` has been seen.
    seen: Vec<u64>,
    first: Option<u64>,
    highest: u64,
    /// Numbers received again.
    pub repeated: u64,
    /// Numbers received after a higher one (and not before).
    pub out_of_order: u64,
    /// Numbers below the first one or absurdly far above it (not tracked).
    pub out_of_range: u64,
}

/// Highest `s - first` tracked (128 KiB of bits per session at most).
const MAX_SEQ_SPAN: u64 = 1 << 20;

impl SeqCheck {
    pub fn record(&mut self, s: u64) {
        let first = *self.first.get_or_insert(s);
        let Some(bit) = s.checked_sub(first).filter(|b| *b < MAX_SEQ_SPAN) else {
            self.out_of_range += 1;
            return;
        };
        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & mask != 0 {
            self.repeated += 1;
            return;
        }
        self.seen[word] |= mask;
        if s < self.highest {
            self.out_of_order += 1;
        }
        self.highest = self.highest.max(s);
    }

    /// Numbers between the first and the highest never received.
    pub fn missing(&self) -> u64 {
        let Some(first) = self.first else {
            return 0;
        };
        let span = self.highest - first + 1;
        let seen: u64 = self.seen.iter().map(|w| u64::from(w.count_ones())).sum();
        span - seen
    }

    /// Lowest and highest number received.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.first.map(|f| (f, self.highest))
    }
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
#[derive(Debug, Default, PartialEq)]
struct Env<'a> {
    op: u8,
    s: Option<u64>,
    t: Option<Cow<'a, str>>,
    d: Option<&'a str>,
}

/// What serde reads into [`Env`] when the fast path does not apply.
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
    let mut report = SessionReport {
        index: ctx.index,
        ..SessionReport::default()
    };
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
    let (mut conn, mut interval) = connect(ctx, report, "READY").await?;

    let identify_at = Instant::now();
    conn.send(ws::Message::Text(
        identify_payload(&ctx.token, ctx.intents, ctx.capabilities).into(),
    ))
    .await?;
    let mut link = Link::default();
    let mut awaiting = Awaiting::Ready(identify_at);
    loop {
        match converse(ctx, report, conn, interval, awaiting, &mut link).await? {
            Ended::Stopped => return Ok(()),
            Ended::Dropped(dropped_at) => {
                // Only one drop per session.
                ctx.drop_signal = None;
                report.resume = Some(ResumeReport {
                    dropped_at,
                    ..ResumeReport::default()
                });
                // Let the other sessions woken by the same signal drop their
                // sockets before this one spends time reconnecting, so all of
                // them go down at (nearly) the same moment.
                tokio::task::yield_now().await;
            }
        }
        // The old socket is gone without a close frame: reconnect and RESUME.
        let Some(session_id) = link.session_id.clone() else {
            return Err(err("READY had no session_id to resume"));
        };
        (conn, interval) = connect(ctx, report, "RESUMED").await?;
        let resume = serde_json::json!({
            "op": 6,
            "d": {"token": ctx.token, "session_id": session_id, "seq": link.last_seq}
        })
        .to_string();
        let sent_at = Instant::now();
        if let Some(r) = &mut report.resume {
            r.hello_latency = Some(sent_at.saturating_duration_since(r.dropped_at));
            r.sent_seq = link.last_seq;
            r.sent_at = Some(sent_at);
        }
        conn.send(ws::Message::Text(resume.into())).await?;
        awaiting = Awaiting::Resumed(sent_at);
    }
}

/// IDENTIFY's payload.
fn identify_payload(token: &str, intents: u64, capabilities: u64) -> String {
    serde_json::json!({
        "op": 2,
        "d": {
            "token": token,
            "properties": {"os": "linux", "browser": "spacebar-bench", "device": "spacebar-bench"},
            "intents": intents,
            "capabilities": capabilities,
        }
    })
    .to_string()
}

/// Connects and waits for HELLO, unless the run ends first; `next` names what
/// the session was going to wait for (for the error).
async fn connect(
    ctx: &mut SessionCtx,
    report: &mut SessionReport,
    next: &str,
) -> Result<(Conn, Duration), Failure> {
    let handshake = handshake(&ctx.client, &ctx.url, ctx.compress, ctx.timeout);
    let (conn, interval, hello) = tokio::select! {
        r = handshake => r?,
        _ = shutdown_signal(&mut ctx.shutdown) => {
            return Err(Failure::Error(format!("run ended before {next}")));
        }
    };
    report.count_message(hello.zlib);
    Ok((conn, interval))
}

/// What a connection waits for besides dispatches.
#[derive(Clone, Copy)]
enum Awaiting {
    /// READY, after IDENTIFY sent then.
    Ready(Instant),
    /// RESUMED, after RESUME sent then.
    Resumed(Instant),
    /// Nothing: the session is up.
    Nothing,
}

/// What a session keeps across its connections.
#[derive(Default)]
struct Link {
    /// Highest sequence number received.
    last_seq: Option<u64>,
    /// READY's `session_id` (only read when the session may have to resume).
    session_id: Option<String>,
    /// It left its node (op 7, or the connection broke) for the reconnect URL:
    /// a refused RESUME there means IDENTIFY again.
    followed: bool,
}

/// How a connection ended without an error.
enum Ended {
    /// The run is over (we closed with 1000).
    Stopped,
    /// The drop signal came: the socket was dropped (no close frame) then.
    Dropped(Instant),
}

#[derive(Deserialize)]
struct ReadySessionId {
    session_id: String,
}

/// One connection, from the IDENTIFY/RESUME just sent until the run ends, the
/// drop signal comes (the socket is dropped on return) or something fails.
async fn converse(
    ctx: &mut SessionCtx,
    report: &mut SessionReport,
    mut conn: Conn,
    interval: Duration,
    mut awaiting: Awaiting,
    link: &mut Link,
) -> Result<Ended, Failure> {
    let answer_deadline = match awaiting {
        Awaiting::Ready(at) | Awaiting::Resumed(at) => at + ctx.timeout,
        Awaiting::Nothing => Instant::now() + ctx.timeout,
    };
    // Like Discord clients: first heartbeat after interval * jitter, then every interval.
    let mut next_heartbeat = tokio::time::Instant::now() + interval.mul_f64(rand::random::<f64>());
    let mut awaiting_ack = false;
    // Timers and signals live across iterations (re-creating them for every
    // message costs a timer-wheel insert and removal each time).
    let heartbeat_timer = sleep_until(next_heartbeat);
    tokio::pin!(heartbeat_timer);
    let answer_timer = sleep_until(tokio::time::Instant::from_std(answer_deadline));
    tokio::pin!(answer_timer);
    let stop = shutdown_signal(&mut ctx.shutdown);
    tokio::pin!(stop);
    let drop_rx = ctx.drop_signal.as_mut();
    let may_drop = drop_rx.is_some();
    let drop_now = async move {
        match drop_rx {
            Some(rx) => shutdown_signal(rx).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(drop_now);
    loop {
        tokio::select! {
            payload = conn.next_payload() => {
                let (payload, info) = match payload {
                    Ok(payload) => payload,
                    // Its node is gone (killed): no close frame, the connection broke.
                    Err(Failure::Error(_))
                        if matches!(awaiting, Awaiting::Nothing)
                            && report.ready_latency.is_some()
                            && ctx.reconnect_url.is_some() =>
                    {
                        if let Some(url) = ctx.reconnect_url.take() {
                            ctx.url = url;
                        }
                        link.followed = true;
                        return Ok(Ended::Dropped(Instant::now()));
                    }
                    Err(failure) => return Err(failure),
                };
                let arrived = Instant::now();
                report.count_message(info.zlib);
                let env = parse(&payload)?;
                if let Some(s) = env.s {
                    report.seqs.record(s);
                    link.last_seq = Some(link.last_seq.map_or(s, |l| l.max(s)));
                    if let Some(r) = &mut report.resume {
                        r.first_seq.get_or_insert(s);
                    }
                }
                match env.op {
                    0 if env.t.as_deref() == Some("READY") && report.ready_latency.is_none() => {
                        let Awaiting::Ready(identify_at) = awaiting else {
                            return Err(err("READY while not identifying"));
                        };
                        awaiting = Awaiting::Nothing;
                        report.ready_latency = Some(arrived - identify_at);
                        report.ready_at = Some(arrived);
                        report.ready_bytes = Some(payload.len());
                        report.ready_wire_bytes = Some(info.wire_bytes);
                        ctx.shared.ready.fetch_add(1, Ordering::Relaxed);
                        if may_drop {
                            link.session_id = env
                                .d
                                .and_then(|d| serde_json::from_str::<ReadySessionId>(d).ok())
                                .map(|r| r.session_id);
                        }
                        if ctx.close_after_ready {
                            if ctx.keep_ready {
                                report.ready_payload = Some(payload);
                            }
                            conn.close().await;
                            return Ok(Ended::Stopped);
                        }
                        if ctx.keep_ready {
                            report.ready_payload = Some(payload.clone());
                        }
                    }
                    // READY again, after a refused RESUME: the session moved on.
                    0 if env.t.as_deref() == Some("READY") && matches!(awaiting, Awaiting::Ready(_)) => {
                        awaiting = Awaiting::Nothing;
                        if let Some(r) = &mut report.resume {
                            r.ready_again_at = Some(arrived);
                        }
                        link.session_id = env
                            .d
                            .and_then(|d| serde_json::from_str::<ReadySessionId>(d).ok())
                            .map(|r| r.session_id);
                        ctx.shared.resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    0 if env.t.as_deref() == Some("RESUMED")
                        && matches!(awaiting, Awaiting::Resumed(_)) =>
                    {
                        awaiting = Awaiting::Nothing;
                        if let Some(r) = &mut report.resume {
                            r.resumed_at = Some(arrived);
                        }
                        ctx.shared.resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    0 if report.ready_latency.is_some() => {
                        if let (Awaiting::Resumed(_), Some(r)) = (awaiting, &mut report.resume) {
                            r.replayed += 1;
                        }
                        if let (Some(observer), Some(t), Some(d)) = (&ctx.observer, env.t, env.d) {
                            observer.dispatch(ctx.index, &t, d, arrived);
                        }
                    }
                    // The server asks for a heartbeat right away.
                    1 => {
                        conn.send(heartbeat(link.last_seq)).await?;
                        report.heartbeats_sent += 1;
                    }
                    7 => match ctx.reconnect_url.take() {
                        Some(url) => {
                            ctx.url = url;
                            link.followed = true;
                            return Ok(Ended::Dropped(Instant::now()));
                        }
                        None => return Err(err("server asked to reconnect (op 7)")),
                    },
                    // Its node was killed: what it held is gone; a new session, numbered anew.
                    9 if matches!(awaiting, Awaiting::Resumed(_)) && link.followed => {
                        let now = Instant::now();
                        if let Some(r) = &mut report.resume {
                            r.invalidated_at = Some(now);
                        }
                        report.seqs = SeqCheck::default();
                        link.last_seq = None;
                        // As Discord asks of clients: a random 1-5 s before a fresh IDENTIFY
                        // (a killed node's clients do not all IDENTIFY at once).
                        tokio::time::sleep(Duration::from_secs_f64(1.0 + 4.0 * rand::random::<f64>())).await;
                        let identify = identify_payload(&ctx.token, ctx.intents, ctx.capabilities);
                        conn.send(ws::Message::Text(identify.into())).await?;
                        let sent = Instant::now();
                        awaiting = Awaiting::Ready(sent);
                        let deadline = tokio::time::Instant::from_std(sent + ctx.timeout);
                        answer_timer.as_mut().reset(deadline);
                    }
                    9 if matches!(awaiting, Awaiting::Resumed(_)) => {
                        return Err(err("invalid session (op 9) answering RESUME"));
                    }
                    9 => return Err(err("invalid session (op 9)")),
                    11 => {
                        report.acks += 1;
                        awaiting_ack = false;
                    }
                    _ => {}
                }
            }
            () = &mut heartbeat_timer => {
                if awaiting_ack {
                    report.missed_acks += 1;
                }
                conn.send(heartbeat(link.last_seq)).await?;
                report.heartbeats_sent += 1;
                awaiting_ack = true;
                next_heartbeat += interval;
                heartbeat_timer.as_mut().reset(next_heartbeat);
            }
            () = &mut answer_timer, if !matches!(awaiting, Awaiting::Nothing) => {
                return Err(err(if matches!(awaiting, Awaiting::Ready(_)) {
                    "timeout waiting for READY"
                } else {
                    "timeout waiting for RESUMED"
                }));
            }
            () = &mut stop => {
                conn.close().await;
                return match awaiting {
                    Awaiting::Nothing => Ok(Ended::Stopped),
                    Awaiting::Ready(_) => Err(err("run ended before READY")),
                    Awaiting::Resumed(_) => Err(err("run ended before RESUMED")),
                };
            }
            () = &mut drop_now, if may_drop && matches!(awaiting, Awaiting::Nothing) => {
                // Like a client losing its network: no close frame, the TCP
                // connection just goes away.
                drop(conn);
                return Ok(Ended::Dropped(Instant::now()));
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
) -> Result<(Conn, Duration, PayloadInfo), Failure> {
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
        wire_bytes: 0,
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
        .and_then(|d| serde_json::from_str::<Hello>(d).ok())
        .and_then(|h| Duration::try_from_secs_f64(h.heartbeat_interval / 1000.0).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| err("HELLO without a valid heartbeat_interval"))?;
    Ok((conn, interval, hello_zlib))
}

fn err(msg: &str) -> Failure {
    Failure::Error(msg.to_string())
}

/// Reads a gateway payload's envelope: by [`fast_envelope`] when it can, else
/// with serde.
fn parse(payload: &[u8]) -> Result<Env<'_>, Failure> {
    if let Some(env) = fast_envelope(payload) {
        return Ok(env);
    }
    let e: Envelope<'_> = serde_json::from_slice(payload)
        .map_err(|e| Failure::Error(format!("bad JSON payload: {e}")))?;
    Ok(Env {
        op: e.op,
        s: e.s,
        t: e.t,
        d: e.d.map(RawValue::get).filter(|d| *d != "null"),
    })
}

/// The envelope of a payload whose `op`, `s` and `t` all come before `d` (the
/// order Discord and our server use), without scanning `d`: at 100 000s of
/// dispatches a second, validating every message body would cost the tool
/// more CPU than anything else it does. `None` for any other shape (escapes
/// in `t`, unknown keys, `d` first...), which then goes through serde.
fn fast_envelope(payload: &[u8]) -> Option<Env<'_>> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut rest = text.trim_start().strip_prefix('{')?;
    let (mut op, mut s, mut t) = (None, None, None);
    loop {
        let r = rest.trim_start().strip_prefix('"')?;
        let end = r.find('"')?;
        let key = &r[..end];
        rest = r[end + 1..].trim_start().strip_prefix(':')?.trim_start();
        match key {
            "d" => {
                // Only when nothing but `d` can follow: the envelope is complete.
                let (op, s, t) = (op?, s?, t?);
                let d = rest.trim_end().strip_suffix('}')?.trim_end();
                if d.is_empty() {
                    return None;
                }
                return Some(Env {
                    op,
                    s,
                    t,
                    d: (d != "null").then_some(d),
                });
            }
            "op" => {
                let (n, r) = leading_number(rest)?;
                op = Some(u8::try_from(n).ok()?);
                rest = r;
            }
            "s" => {
                if let Some(r) = rest.strip_prefix("null") {
                    s = Some(None);
                    rest = r;
                } else {
                    let (n, r) = leading_number(rest)?;
                    s = Some(Some(n));
                    rest = r;
                }
            }
            "t" => {
                if let Some(r) = rest.strip_prefix("null") {
                    t = Some(None);
                    rest = r;
                } else {
                    let r = rest.strip_prefix('"')?;
                    let end = r.find(['"', '\\'])?;
                    if r[end..].starts_with('\\') {
                        return None;
                    }
                    t = Some(Some(Cow::Borrowed(&r[..end])));
                    rest = &r[end + 1..];
                }
            }
            _ => return None,
        }
        rest = rest.trim_start().strip_prefix(',')?;
    }
}

/// A non-negative integer at the start of `text`, and what follows it.
fn leading_number(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

fn heartbeat(last_seq: Option<u64>) -> ws::Message {
    ws::Message::Text(
        serde_json::json!({"op": 1, "d": last_seq})
            .to_string()
            .into(),
    )
}

/// Payload bytes of a frame (what it adds to a message's size on the wire).
fn frame_len(frame: &ws::Frame) -> usize {
    match frame {
        ws::Frame::Text(b) | ws::Frame::Binary(b) => b.len(),
        ws::Frame::Continuation(
            Item::FirstText(b) | Item::FirstBinary(b) | Item::Continue(b) | Item::Last(b),
        ) => b.len(),
        ws::Frame::Ping(_) | ws::Frame::Pong(_) | ws::Frame::Close(_) => 0,
    }
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
    /// Frame bytes received towards the next payload.
    wire_bytes: usize,
    timeout: Duration,
}

/// How a payload came in.
struct PayloadInfo {
    /// Through the zlib stream.
    zlib: bool,
    /// Bytes of the WebSocket frames that carried it (compressed size with zlib).
    wire_bytes: usize,
}

impl Conn {
    /// Next complete gateway payload (JSON bytes), and how it came in.
    ///
    /// Cancel-safe enough for `select!`: partial state (fragments, zlib input)
    /// lives in `self`, and the only await besides reading is answering a ping.
    async fn next_payload(&mut self) -> Result<(Vec<u8>, PayloadInfo), Failure> {
        loop {
            let frame = match self.framed.next().await {
                None => return Err(err("connection closed without a close frame")),
                Some(Err(e)) => return Err(Failure::Error(format!("websocket error: {e}"))),
                Some(Ok(frame)) => frame,
            };
            self.wire_bytes += frame_len(&frame);
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
            let zlib = match (&mut self.inflate, binary) {
                (Some(z), true) => match z.push(&data) {
                    Ok(Some(message)) => Some(message),
                    Ok(None) => continue, // message continues in the next frame
                    Err(e) => return Err(Failure::Error(format!("zlib-stream: {e}"))),
                },
                _ => None,
            };
            let info = PayloadInfo {
                zlib: zlib.is_some(),
                wire_bytes: std::mem::take(&mut self.wire_bytes),
            };
            return Ok((zlib.unwrap_or(data), info));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> Option<Env<'_>> {
        parse(text.as_bytes()).ok()
    }

    #[test]
    fn fast_path_reads_dispatch_envelopes() {
        let ours = r#"{"op":0,"t":"MESSAGE_CREATE","s":42,"d":{"id":"1","nonce":"7"}}"#;
        let fast = fast_envelope(ours.as_bytes()).unwrap();
        assert_eq!(fast.op, 0);
        assert_eq!(fast.s, Some(42));
        assert_eq!(fast.t.as_deref(), Some("MESSAGE_CREATE"));
        assert_eq!(fast.d, Some(r#"{"id":"1","nonce":"7"}"#));
        // Discord's order and spacing.
        let discord = "{\"t\": \"READY\", \"s\": 1, \"op\": 0, \"d\": {\"v\":9} }\n";
        assert_eq!(
            fast_envelope(discord.as_bytes()).map(|e| e.d),
            Some(Some(r#"{"v":9}"#))
        );
        assert_eq!(
            fast_envelope(br#"{"op":11,"s":null,"t":null,"d":null}"#),
            Some(Env {
                op: 11,
                ..Env::default()
            })
        );
    }

    #[test]
    fn seq_check_counts_gaps_repeats_and_order() {
        let mut ok = SeqCheck::default();
        for s in 1..=10 {
            ok.record(s);
        }
        assert_eq!(
            (ok.missing(), ok.repeated, ok.out_of_order, ok.range()),
            (0, 0, 0, Some((1, 10)))
        );
        let mut bad = SeqCheck::default();
        for s in [5, 6, 8, 6, 7, 200, 4] {
            bad.record(s);
        }
        // 9..=199 never came; 6 twice; 7 after 8; 4 is below READY's 5.
        assert_eq!(bad.missing(), 191);
        assert_eq!(
            (bad.repeated, bad.out_of_order, bad.out_of_range),
            (1, 1, 1)
        );
        assert_eq!(bad.range(), Some((5, 200)));
        assert_eq!(SeqCheck::default().missing(), 0);
    }

    #[test]
    fn other_shapes_fall_back_to_serde() {
        for text in [
            r#"{"op":0,"d":{"a":1},"s":3,"t":"X"}"#,
            r#"{"op":11}"#,
            r#"{"op":0,"t":"A\"B","s":1,"d":{}}"#,
            r#"{"op":10,"d":{"heartbeat_interval":41250}}"#,
            r#"{"op":0,"x":1,"s":1,"t":"X","d":{}}"#,
        ] {
            assert!(fast_envelope(text.as_bytes()).is_none(), "{text}");
            assert!(env(text).is_some(), "{text}");
        }
        let e = env(r#"{"op":0,"d":{"a":1},"s":3,"t":"X"}"#).unwrap();
        assert_eq!(
            (e.op, e.s, e.t.as_deref(), e.d),
            (0, Some(3), Some("X"), Some(r#"{"a":1}"#))
        );
        assert_eq!(env(r#"{"op":11}"#).map(|e| e.d), Some(None));
        assert!(env("not json").is_none());
    }
}
