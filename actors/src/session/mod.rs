//! The gateway session: one actor per WebSocket, speaking Discord's gateway protocol.
//!
//! It says HELLO, takes IDENTIFY (the backend authenticates and builds READY), answers
//! heartbeats, enforces the identify and heartbeat timeouts, frames dispatches with its own
//! sequence number, and closes with Discord's close codes on bad input. A failure while
//! handling a frame closes this one connection with 4000 and touches nothing else.

pub mod backend;
pub mod protocol;
pub mod zlib;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, StreamHandler, WrapFuture,
};
use actix_http::ws::Item;
use actix_web_actors::ws;
use rand::Rng;

use crate::dispatch::{Deliver, Dispatch};
use crate::guild::Subscribe;
use crate::registry::{Register, Terminate, Unregister};
use crate::supervisor::catch_failure;
use crate::Tree;
pub use backend::{Identified, IdentifyError, IdentifyRequest, SessionBackend};
use protocol::{op, CloseCode, Identify, Inbound, VoiceStateUpdate};
use zlib::{Piece, ZlibStream};

/// Timing and size rules shared by every session of a server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub heartbeat_interval: Duration,
    pub heartbeat_grace: Duration,
    pub identify_timeout: Duration,
    pub max_frame_bytes: usize,
}

/// Transport compression chosen by the `compress` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    ZlibStream,
}

/// What the connection asked for in its query string.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub api_version: u8,
    /// Whether the `encoding` asked for is one this server speaks (JSON).
    pub encoding_supported: bool,
    pub compression: Compression,
    /// `ws://host[:port]` as the client reached us.
    pub gateway_url: String,
}

enum Phase {
    AwaitingIdentify,
    Identifying,
    Ready { session_id: Arc<str>, user_id: i64 },
}

pub struct SessionActor {
    backend: Arc<dyn SessionBackend>,
    tree: Tree,
    config: Arc<SessionConfig>,
    params: ConnectParams,
    zlib: Option<ZlibStream>,
    phase: Phase,
    seq: u64,
    last_heartbeat: Instant,
    /// A message arriving in continuation frames, until its last frame.
    fragments: Option<Vec<u8>>,
}

impl SessionActor {
    pub fn new(
        backend: Arc<dyn SessionBackend>,
        tree: Tree,
        config: Arc<SessionConfig>,
        params: ConnectParams,
    ) -> Self {
        let zlib = (params.compression == Compression::ZlibStream).then(ZlibStream::default);
        Self {
            backend,
            tree,
            config,
            params,
            zlib,
            phase: Phase::AwaitingIdentify,
            seq: 0,
            last_heartbeat: Instant::now(),
            fragments: None,
        }
    }

    /// The largest frame this session accepts, for the WebSocket codec.
    pub fn max_frame_bytes(&self) -> usize {
        self.config.max_frame_bytes
    }

    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, pieces: &[Piece<'_>]) {
        match &mut self.zlib {
            Some(stream) => ctx.binary(stream.encode(pieces)),
            None => {
                let mut text = Vec::new();
                for piece in pieces {
                    if let Piece::Text(bytes) = piece {
                        text.extend_from_slice(bytes);
                    }
                }
                match String::from_utf8(text) {
                    Ok(text) => ctx.text(text),
                    Err(_) => self.close(ctx, CloseCode::UnknownError),
                }
            }
        }
    }

    fn send_op(&mut self, ctx: &mut ws::WebsocketContext<Self>, op: u8, d: &str) {
        let text = format!(r#"{{"op":{op},"d":{d}}}"#);
        self.send(ctx, &[Piece::Text(text.as_bytes())]);
    }

    fn deliver(&mut self, ctx: &mut ws::WebsocketContext<Self>, dispatch: &Dispatch) {
        self.seq += 1;
        let head = format!(
            r#"{{"op":{},"t":"{}","s":{},"d":"#,
            op::DISPATCH,
            dispatch.event(),
            self.seq
        );
        let body = if self.zlib.is_some() && dispatch.data().len() >= 256 {
            Piece::Deflated(dispatch.data_deflated())
        } else {
            Piece::Text(dispatch.data())
        };
        self.send(
            ctx,
            &[Piece::Text(head.as_bytes()), body, Piece::Text(b"}")],
        );
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode) {
        tracing::debug!(code = code as u16, "closing gateway session");
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Other(code as u16),
            description: Some(code.reason().to_string()),
        }));
        ctx.stop();
    }

    fn on_frame(
        &mut self,
        frame: Result<ws::Message, ws::ProtocolError>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(ws::ProtocolError::Overflow) => return self.close(ctx, CloseCode::DecodeError),
            Err(error) => {
                tracing::debug!(%error, "gateway connection broken");
                return self.close(ctx, CloseCode::DecodeError);
            }
        };
        match frame {
            ws::Message::Text(text) => self.on_payload(text.as_bytes(), ctx),
            ws::Message::Binary(bytes) => self.on_payload(&bytes, ctx),
            ws::Message::Continuation(item) => self.on_continuation(item, ctx),
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
        }
    }

    fn on_continuation(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (bytes, last) = match item {
            Item::FirstText(bytes) | Item::FirstBinary(bytes) => {
                self.fragments = Some(Vec::new());
                (bytes, false)
            }
            Item::Continue(bytes) => (bytes, false),
            Item::Last(bytes) => (bytes, true),
        };
        let Some(buffer) = self.fragments.as_mut() else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        buffer.extend_from_slice(&bytes);
        if buffer.len() > self.config.max_frame_bytes {
            return self.close(ctx, CloseCode::DecodeError);
        }
        if last {
            if let Some(message) = self.fragments.take() {
                self.on_payload(&message, ctx);
            }
        }
    }

    fn on_payload(&mut self, bytes: &[u8], ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(payload) = serde_json::from_slice::<Inbound>(bytes) else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        let ready = matches!(self.phase, Phase::Ready { .. });
        match payload.op {
            op::HEARTBEAT | op::QOS_HEARTBEAT => {
                self.last_heartbeat = Instant::now();
                self.send_op(ctx, op::HEARTBEAT_ACK, "{}");
            }
            op::IDENTIFY => self.identify(payload.d, ctx),
            // This server does not keep sessions for resuming yet: Discord's answer to a
            // session that cannot be resumed is INVALID_SESSION (d:false), and the client
            // identifies anew.
            op::RESUME => self.send_op(ctx, op::INVALID_SESSION, "false"),
            op::PRESENCE_UPDATE
            | op::VOICE_STATE_UPDATE
            | op::REQUEST_GUILD_MEMBERS
            | op::GUILD_SUBSCRIPTIONS
            | op::GUILD_SUBSCRIPTIONS_BULK
                if !ready =>
            {
                self.close(ctx, CloseCode::NotAuthenticated)
            }
            op::VOICE_STATE_UPDATE => {
                if serde_json::from_value::<VoiceStateUpdate>(payload.d).is_err() {
                    self.close(ctx, CloseCode::DecodeError);
                }
                // Leaving voice (guild_id and channel_id null, as Fermi sends at start-up) is
                // a no-op for a session that is in no voice channel.
            }
            // The account has no guilds and no presence subscribers yet: nothing to answer.
            op::PRESENCE_UPDATE
            | op::REQUEST_GUILD_MEMBERS
            | op::GUILD_SUBSCRIPTIONS
            | op::GUILD_SUBSCRIPTIONS_BULK => {}
            _ => self.close(ctx, CloseCode::UnknownOpcode),
        }
    }

    fn identify(&mut self, d: serde_json::Value, ctx: &mut ws::WebsocketContext<Self>) {
        if !matches!(self.phase, Phase::AwaitingIdentify) {
            return self.close(ctx, CloseCode::AlreadyAuthenticated);
        }
        let Ok(identify) = serde_json::from_value::<Identify>(d) else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        let session_id = new_session_id();
        let request = IdentifyRequest {
            token: identify.token,
            session_id: session_id.clone(),
            gateway_url: self.params.gateway_url.clone(),
            api_version: self.params.api_version,
            capabilities: identify.capabilities.unwrap_or(0),
            intents: identify.intents.unwrap_or(0),
            large_threshold: identify.large_threshold.unwrap_or(50).clamp(50, 250),
            properties: identify.properties,
            presence: identify.presence,
        };
        self.phase = Phase::Identifying;
        let identifying = self.backend.identify(request).into_actor(self);
        // `wait`: no other frame is handled until READY is out, so nothing overtakes it.
        ctx.wait(identifying.map(move |result, session, ctx| match result {
            Ok(identified) => session.ready(session_id.into(), identified, ctx),
            Err(IdentifyError::AuthenticationFailed) => {
                session.close(ctx, CloseCode::AuthenticationFailed)
            }
            Err(IdentifyError::Internal(error)) => {
                tracing::error!(%error, "identify failed");
                session.close(ctx, CloseCode::UnknownError)
            }
        }));
    }

    fn ready(
        &mut self,
        session_id: Arc<str>,
        identified: Identified,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let ready = match serde_json::to_vec(&identified.ready) {
            Ok(json) => Dispatch::from_json("READY", json.into()),
            Err(error) => {
                tracing::error!(%error, "READY did not serialise");
                return self.close(ctx, CloseCode::UnknownError);
            }
        };
        let recipient = ctx.address().recipient();
        for guild_id in identified.guild_ids {
            self.tree.guilds.do_send(Subscribe {
                guild_id,
                session_id: session_id.clone(),
                user_id: identified.user_id,
                recipient: recipient.clone(),
            });
        }
        self.tree.sessions.do_send(Register {
            session_id: session_id.clone(),
            user_id: identified.user_id,
            login_id: identified.login_id,
            recipient,
            terminate: ctx.address().recipient(),
        });
        self.phase = Phase::Ready {
            session_id,
            user_id: identified.user_id,
        };
        self.deliver(ctx, &ready);
        for dispatch in identified.followups {
            self.deliver(ctx, &dispatch);
        }
    }
}

impl Actor for SessionActor {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !(6..=10).contains(&self.params.api_version) {
            return self.close(ctx, CloseCode::InvalidApiVersion);
        }
        if !self.params.encoding_supported {
            return self.close(ctx, CloseCode::DecodeError);
        }
        let hello = format!(
            r#"{{"heartbeat_interval":{}}}"#,
            self.config.heartbeat_interval.as_millis()
        );
        self.send_op(ctx, op::HELLO, &hello);
        ctx.run_later(self.config.identify_timeout, |session, ctx| {
            if !matches!(session.phase, Phase::Ready { .. }) {
                session.close(ctx, CloseCode::SessionTimedOut);
            }
        });
        let deadline = self.config.heartbeat_interval + self.config.heartbeat_grace;
        ctx.run_interval(self.config.heartbeat_interval, move |session, ctx| {
            if session.last_heartbeat.elapsed() > deadline {
                session.close(ctx, CloseCode::SessionTimedOut);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Phase::Ready {
            session_id,
            user_id,
        } = &self.phase
        {
            self.tree.sessions.do_send(Unregister {
                session_id: session_id.clone(),
                user_id: *user_id,
            });
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for SessionActor {
    fn handle(&mut self, frame: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        if catch_failure("gateway session", || self.on_frame(frame, ctx)).is_err() {
            self.close(ctx, CloseCode::UnknownError);
        }
    }
}

impl Handler<Deliver> for SessionActor {
    type Result = ();
    fn handle(&mut self, Deliver(dispatch): Deliver, ctx: &mut Self::Context) {
        if matches!(self.phase, Phase::Ready { .. }) {
            self.deliver(ctx, &dispatch);
        }
    }
}

impl Handler<Terminate> for SessionActor {
    type Result = ();
    fn handle(&mut self, Terminate(code): Terminate, ctx: &mut Self::Context) {
        self.close(ctx, code);
    }
}

/// 32 hex digits, like Discord's session ids.
fn new_session_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}
