//! One gateway WebSocket: HELLO, IDENTIFY or RESUME, heartbeats and their timeouts, a
//! per-connection command rate limit, the transport encoding, and Discord's close codes on bad
//! input. A failure while handling a frame closes this one connection with 4000 and touches
//! nothing else. The session it speaks for lives on in [`super::Session`] when it drops.

use crate::event_name::EventName;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, StreamHandler, WrapFuture};
use actix_http::ws::Item;
use actix_web_actors::ws;
use rand::Rng;

use super::backend::{BackendError, MembersRequest};
use super::handover::{Abandon, Absorb, Hearing};
use super::protocol::{
    list_requests, members_request, op, stream_command, voice_request, CloseCode, Identify, Resume,
    VoiceRequest, CLIENT_STATE_V2,
};
use super::transport::{Compression, Encoding, Frame, Transport};
use super::{
    AskPresences, Attach, CallVoice, CallVoiceJoin, Detach, End, Identified, IdentifyError,
    IdentifyRequest, Outbound, ResumeRefused, Session, SessionBackend, SessionConfig, Stream,
    UpdatePresence, Voice, VoiceJoin, WatchMembers,
};
use crate::dispatch::{Deliver, Dispatch};
use crate::intents::{self, Filter};
use crate::outlet::{Drain, Outlet};
use crate::presence;
use crate::registry::Find;
use crate::supervisor::catch_failure;
use crate::{voice, Tree};

/// The window the command rate limit counts in.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// How often a connection may ask for a guild's whole member list (Discord: once per guild
/// every 30 seconds; more gets a RATE_LIMITED dispatch).
const EVERYONE_WINDOW: Duration = Duration::from_secs(30);

/// What the connection asked for in its query string.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub api_version: u8,
    /// `None` when the `encoding` asked for is not one this server speaks.
    pub encoding: Option<Encoding>,
    pub compression: Compression,
    /// `ws://host[:port]` as the client reached us.
    pub gateway_url: String,
}

enum Phase {
    AwaitingIdentify,
    /// IDENTIFY or RESUME is being checked.
    Authenticating,
    Ready {
        session: Addr<Session>,
        /// What the session hears: its user, and the intents that decide what it may ask.
        filter: Filter,
    },
}

pub struct Connection {
    id: u64,
    backend: Arc<dyn SessionBackend>,
    tree: Tree,
    config: Arc<SessionConfig>,
    params: ConnectParams,
    transport: Transport,
    phase: Phase,
    last_heartbeat: Instant,
    /// Commands received in the current rate-limit window, and when it began.
    commands: (Instant, u32),
    /// A message arriving in continuation frames, until its last frame.
    fragments: Option<Vec<u8>>,
    /// When this connection last asked for each guild's whole member list.
    everyone_asked: HashMap<i64, Instant>,
    /// What sessions send this connection through (see [`Outlet`]).
    outlet: Outlet<Outbound>,
    /// This connection's end of it, until the actor starts reading it.
    drain: Option<Drain<Outbound>>,
    /// What this connection logs is logged in it: its session id and user id once IDENTIFY
    /// or RESUME succeeds.
    span: tracing::Span,
}

impl Connection {
    pub fn new(
        backend: Arc<dyn SessionBackend>,
        tree: Tree,
        config: Arc<SessionConfig>,
        params: ConnectParams,
    ) -> Self {
        let transport = Transport::new(
            params.encoding.unwrap_or(Encoding::Json),
            params.compression,
        );
        let id = rand::rng().random();
        // Its own root: the HTTP upgrade's request span ends as the socket opens. At error
        // level: enabled whenever errors are logged, whatever the filter.
        let span = tracing::error_span!(
            parent: None,
            "gateway",
            connection_id = id,
            session_id = tracing::field::Empty,
            user_id = tracing::field::Empty,
        );
        // What a session may queue for a client that is not reading (see `Line`).
        let (outlet, drain) = Outlet::queue(config.outbound_queue, span.clone());
        Self {
            id,
            backend,
            tree,
            config,
            params,
            transport,
            phase: Phase::AwaitingIdentify,
            last_heartbeat: Instant::now(),
            commands: (Instant::now(), 0),
            fragments: None,
            everyone_asked: HashMap::new(),
            outlet,
            drain: Some(drain),
            span,
        }
    }

    /// This connection's span, entered until the guard drops.
    fn entered(&self) -> tracing::span::EnteredSpan {
        self.span.clone().entered()
    }

    /// The session and user this connection speaks for, from now on in its logs (and the
    /// session's).
    fn record_session(&self, session_id: &str, user_id: i64) {
        self.span.record("session_id", session_id);
        self.span.record("user_id", user_id);
    }

    fn write(ctx: &mut ws::WebsocketContext<Self>, frame: Frame) {
        match frame {
            Frame::Text(text) => ctx.text(text),
            Frame::Binary(bytes) => ctx.binary(bytes),
        }
    }

    fn send_op(&mut self, ctx: &mut ws::WebsocketContext<Self>, op: u8, d: &str) {
        let frame = self.transport.op(&format!(r#"{{"op":{op},"d":{d}}}"#));
        Self::write(ctx, frame);
    }

    fn send_dispatch(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        seq: u64,
        dispatch: &Dispatch,
    ) {
        let frame = self.transport.dispatch(seq, dispatch);
        Self::write(ctx, frame);
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode) {
        tracing::debug!(code = code as u16, "closing gateway connection");
        crate::websocket::close(ctx, code as u16, code.reason());
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
                // A client closing with 1000 or 1001 is done with its session (Discord
                // invalidates it); any other close may be followed by a RESUME.
                let finished = reason
                    .as_ref()
                    .is_some_and(|r| matches!(r.code, ws::CloseCode::Normal | ws::CloseCode::Away));
                if finished {
                    if let Phase::Ready { session, .. } = &self.phase {
                        session.do_send(End(CloseCode::UnknownError));
                    }
                    self.phase = Phase::AwaitingIdentify;
                }
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

    /// Counts one command; false once the connection sent too many this window.
    fn within_rate_limit(&mut self) -> bool {
        let (since, count) = &mut self.commands;
        if since.elapsed() >= RATE_WINDOW {
            *since = Instant::now();
            *count = 0;
        }
        *count += 1;
        *count <= self.config.commands_per_minute
    }

    fn on_payload(&mut self, bytes: &[u8], ctx: &mut ws::WebsocketContext<Self>) {
        if !self.within_rate_limit() {
            return self.close(ctx, CloseCode::RateLimited);
        }
        let Some(payload) = self.transport.decode(bytes) else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        let ready = matches!(self.phase, Phase::Ready { .. });
        match payload.op {
            op::HEARTBEAT | op::QOS_HEARTBEAT => {
                self.last_heartbeat = Instant::now();
                self.send_op(ctx, op::HEARTBEAT_ACK, "{}");
            }
            op::IDENTIFY => self.identify(payload.d, ctx),
            op::RESUME => self.resume(payload.d, ctx),
            op::PRESENCE_UPDATE
            | op::VOICE_STATE_UPDATE
            | op::REQUEST_GUILD_MEMBERS
            | op::GUILD_SUBSCRIPTIONS
            | op::GUILD_SUBSCRIPTIONS_BULK
            | op::STREAM_CREATE
            | op::STREAM_DELETE
            | op::STREAM_WATCH
            | op::STREAM_SET_PAUSED
                if !ready =>
            {
                self.close(ctx, CloseCode::NotAuthenticated)
            }
            op::VOICE_STATE_UPDATE => self.update_voice_state(payload.d, ctx),
            op::STREAM_CREATE | op::STREAM_DELETE | op::STREAM_WATCH | op::STREAM_SET_PAUSED => {
                self.stream(payload.op, payload.d, ctx)
            }
            op::REQUEST_GUILD_MEMBERS => self.request_members(payload.d, ctx),
            op::PRESENCE_UPDATE => self.update_presence(&payload.d, ctx),
            op::GUILD_SUBSCRIPTIONS | op::GUILD_SUBSCRIPTIONS_BULK => {
                self.watch_member_lists(payload.op == op::GUILD_SUBSCRIPTIONS_BULK, payload.d, ctx)
            }
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
        let (intents, shard) = match (identify.intents(), identify.shard()) {
            (Ok(intents), Ok(shard)) => (intents, shard),
            (Err(code), _) | (_, Err(code)) => return self.close(ctx, code),
        };
        let session_id = new_session_id();
        let capabilities = identify.capabilities.unwrap_or(0);
        // Discord's range is 50 to 250; the floor is configurable (tests make small guilds large).
        let large_threshold = identify
            .large_threshold
            .map_or(intents::DEFAULT_LARGE_THRESHOLD, |asked| {
                usize::try_from(asked).unwrap_or(usize::MAX)
            })
            .clamp(
                self.config
                    .min_large_threshold
                    .min(intents::MAX_LARGE_THRESHOLD),
                intents::MAX_LARGE_THRESHOLD,
            );
        let request = IdentifyRequest {
            token: identify.token,
            session_id: session_id.clone(),
            gateway_url: self.params.gateway_url.clone(),
            api_version: self.params.api_version,
            capabilities,
            intents,
            shard,
            large_threshold,
            properties: identify.properties,
            presence: identify.presence,
        };
        self.phase = Phase::Authenticating;
        let identifying = self.backend.identify(request).into_actor(self);
        // `wait`: no other frame is handled until READY is out, so nothing overtakes it.
        ctx.wait(identifying.map(move |result, connection, ctx| {
            let _span = connection.entered();
            match result {
                Ok(identified) => {
                    connection.record_session(&session_id, identified.user_id);
                    let filter = Filter {
                        user_id: identified.user_id,
                        intents: identified.intents,
                        bot: identified.bot,
                        shard,
                        // Bots get classic guilds whatever they send, as in READY.
                        client_state_v2: !identified.bot && capabilities & CLIENT_STATE_V2 != 0,
                        presences_up_to: (identified.intents & intents::bits::GUILD_PRESENCES != 0)
                            .then_some(large_threshold),
                        large_threshold,
                    };
                    connection.start_session(session_id.into(), identified, filter, ctx)
                }
                Err(IdentifyError::AuthenticationFailed) => {
                    connection.close(ctx, CloseCode::AuthenticationFailed)
                }
                Err(IdentifyError::DisallowedIntents) => {
                    connection.close(ctx, CloseCode::DisallowedIntents)
                }
                Err(IdentifyError::ShardingRequired) => {
                    connection.close(ctx, CloseCode::ShardingRequired)
                }
                Err(IdentifyError::Internal(error)) => {
                    tracing::error!(%error, "identify failed");
                    connection.close(ctx, CloseCode::UnknownError)
                }
            }
        }));
    }

    fn start_session(
        &mut self,
        session_id: Arc<str>,
        mut identified: Identified,
        filter: Filter,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let ready = match serde_json::to_vec(&identified.ready) {
            Ok(json) => Arc::new(Dispatch::from_json(EventName::Ready, json.into())),
            Err(error) => {
                tracing::error!(%error, "READY did not serialise");
                return self.close(ctx, CloseCode::UnknownError);
            }
        };
        let mut initial = vec![ready];
        initial.append(&mut identified.followups);
        let attached = (self.id, self.outlet.clone());
        let session = Session::new(
            session_id,
            identified,
            filter,
            initial,
            self.tree.clone(),
            self.config.clone(),
            attached,
        );
        self.phase = Phase::Ready {
            session: self.tree.session_threads.start(session),
            filter,
        };
    }

    /// RESUME: the token must belong to the session's user and the session must still hold
    /// every dispatch after `seq`; else INVALID_SESSION `false` (identify anew), or `true` when
    /// the check itself failed and trying again may work.
    fn resume(&mut self, d: serde_json::Value, ctx: &mut ws::WebsocketContext<Self>) {
        if !matches!(self.phase, Phase::AwaitingIdentify) {
            return self.close(ctx, CloseCode::AlreadyAuthenticated);
        }
        let Ok(resume) = serde_json::from_value::<Resume>(d) else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        self.phase = Phase::Authenticating;
        let authenticating = self.backend.authenticate(resume.token);
        let sessions = self.tree.sessions.clone();
        let connection = self.outlet.clone();
        let connection_id = self.id;
        let session_id = resume.session_id.clone();
        let (backend, tree, config) =
            (self.backend.clone(), self.tree.clone(), self.config.clone());
        let resuming = async move {
            let user_id = authenticating.await?;
            let found = sessions
                .send(Find {
                    session_id: resume.session_id.clone(),
                })
                .await;
            let session = match found {
                Ok(Some(session)) => session,
                _ => match take_over(backend, tree, config, resume.session_id, user_id).await {
                    Some(session) => session,
                    None => return Ok(Err(ResumeRefused::Gone)),
                },
            };
            let attach = Attach {
                connection,
                connection_id,
                user_id,
                after: resume.seq.unwrap_or(0),
            };
            match session.send(attach).await {
                Ok(attached) => Ok(attached.map(|filter| (session, filter))),
                Err(_) => Ok(Err(ResumeRefused::Gone)),
            }
        };
        ctx.wait(
            resuming
                .into_actor(self)
                .map(move |result, connection, ctx| {
                    let _span = connection.entered();
                    match result {
                        Ok(Ok((session, filter))) => {
                            connection.record_session(&session_id, filter.user_id);
                            connection.phase = Phase::Ready { session, filter }
                        }
                        Ok(Err(ResumeRefused::InvalidSeq)) => {
                            connection.close(ctx, CloseCode::InvalidSeq)
                        }
                        Ok(Err(ResumeRefused::Gone)) => {
                            connection.phase = Phase::AwaitingIdentify;
                            connection.send_op(ctx, op::INVALID_SESSION, "false");
                        }
                        Err(IdentifyError::AuthenticationFailed) => {
                            connection.close(ctx, CloseCode::AuthenticationFailed)
                        }
                        // Not something a token check answers; resuming never asks for intents
                        // or shards.
                        Err(IdentifyError::DisallowedIntents | IdentifyError::ShardingRequired) => {
                            connection.close(ctx, CloseCode::UnknownError)
                        }
                        Err(IdentifyError::Internal(error)) => {
                            tracing::error!(%error, "resume check failed");
                            connection.phase = Phase::AwaitingIdentify;
                            connection.send_op(ctx, op::INVALID_SESSION, "true");
                        }
                    }
                }),
        );
    }
}

impl Connection {
    /// PRESENCE_UPDATE (op 3): checked here (a bad one closes with 4002), kept by the registry
    /// through the session.
    fn update_presence(&mut self, d: &serde_json::Value, ctx: &mut ws::WebsocketContext<Self>) {
        let Phase::Ready { session, .. } = &self.phase else {
            return self.close(ctx, CloseCode::NotAuthenticated);
        };
        match presence::parse_update(d) {
            Some((status, activities)) => session.do_send(UpdatePresence { status, activities }),
            None => self.close(ctx, CloseCode::DecodeError),
        }
    }

    /// VOICE_STATE_UPDATE (op 4): checked here (a bad one closes with 4002). A join is looked
    /// up by the backend (a voice channel of the guild, the user a member), then carried out by
    /// the guild's actor through the session; whatever is refused is ignored, as on Discord.
    fn update_voice_state(&mut self, d: serde_json::Value, ctx: &mut ws::WebsocketContext<Self>) {
        let Phase::Ready { session, filter } = &self.phase else {
            return self.close(ctx, CloseCode::NotAuthenticated);
        };
        let (session, user_id) = (session.clone(), filter.user_id);
        let Some(request) = voice_request(d) else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        // Without a guild: a call in a DM or group DM.
        let Some(guild_id) = request.guild_id else {
            return self.update_call(session, user_id, request, ctx);
        };
        let Some(channel_id) = request.channel_id else {
            return session.do_send(Voice {
                guild_id,
                join: None,
            });
        };
        let looking = self.backend.voice_target(user_id, guild_id, channel_id);
        let room = voice::RoomKey::Guild {
            guild_id,
            channel_id,
        };
        let placing = self.placed(room);
        let looking = async move {
            let Some(target) = looking.await? else {
                return Ok(None);
            };
            Ok::<_, BackendError>(Some((target, placing.await?)))
        };
        // `wait`: op 4s take effect in the order they were sent.
        ctx.wait(
            looking
                .into_actor(self)
                .map(move |result, connection, ctx| match result {
                    Ok(Some((target, endpoint))) => session.do_send(Voice {
                        guild_id,
                        join: Some(VoiceJoin {
                            target,
                            endpoint,
                            request,
                        }),
                    }),
                    Ok(None) => {}
                    Err(error) => {
                        let _span = connection.entered();
                        tracing::error!(%error, "voice channel lookup failed");
                        connection.close(ctx, CloseCode::UnknownError);
                    }
                }),
        );
    }

    /// Op 4 without a guild: join the call of a DM or group DM the user is a recipient of
    /// (looked up by the backend), or leave the session's call (Fermi sends `guild_id: null,
    /// channel_id: null` at start-up: a no-op for a session in no call).
    fn update_call(
        &mut self,
        session: Addr<Session>,
        user_id: i64,
        request: VoiceRequest,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Some(channel_id) = request.channel_id else {
            return session.do_send(CallVoice { join: None });
        };
        let looking = self.backend.call_recipients(user_id, channel_id);
        let placing = self.placed(voice::RoomKey::Call { channel_id });
        let looking = async move {
            let Some(recipients) = looking.await? else {
                return Ok(None);
            };
            Ok::<_, BackendError>(Some((recipients, placing.await?)))
        };
        ctx.wait(
            looking
                .into_actor(self)
                .map(move |result, connection, ctx| match result {
                    Ok(Some((recipients, endpoint))) => session.do_send(CallVoice {
                        join: Some(CallVoiceJoin {
                            channel_id,
                            recipients,
                            endpoint,
                            request,
                        }),
                    }),
                    Ok(None) => {}
                    Err(error) => {
                        let _span = connection.entered();
                        tracing::error!(%error, "call channel lookup failed");
                        connection.close(ctx, CloseCode::UnknownError);
                    }
                }),
        );
    }

    /// The voice endpoint of the node serving `room`, placing it first in cluster mode (the
    /// backend's answer); on a single node, this node's own. Resolves only when awaited: a
    /// refused join places nothing.
    fn placed(
        &self,
        room: voice::RoomKey,
    ) -> impl std::future::Future<Output = Result<String, BackendError>> + 'static {
        let (backend, here) = (
            self.backend.clone(),
            voice::endpoint(&self.params.gateway_url),
        );
        async move { Ok(backend.place_room(room).await?.unwrap_or(here)) }
    }

    /// Go Live (ops 18, 19, 20, 22): checked here (a bad one closes with 4002), carried out by
    /// the guild's actor (or, in a DM call, the calls actor) through the session.
    fn stream(&mut self, op: u8, d: serde_json::Value, ctx: &mut ws::WebsocketContext<Self>) {
        let Phase::Ready { session, .. } = &self.phase else {
            return self.close(ctx, CloseCode::NotAuthenticated);
        };
        match stream_command(op, d) {
            Ok(command) => session.do_send(Stream(command)),
            Err(_) => self.close(ctx, CloseCode::DecodeError),
        }
    }

    /// GUILD_SUBSCRIPTIONS (op 14) and its bulk form (op 37): checked here (a bad one closes
    /// with 4002); the guilds' actors answer through the session.
    fn watch_member_lists(
        &mut self,
        bulk: bool,
        d: serde_json::Value,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Phase::Ready { session, .. } = &self.phase else {
            return self.close(ctx, CloseCode::NotAuthenticated);
        };
        match list_requests(bulk, d) {
            Some(requests) => {
                for request in requests {
                    session.do_send(WatchMembers(request));
                }
            }
            None => self.close(ctx, CloseCode::DecodeError),
        }
    }

    /// REQUEST_GUILD_MEMBERS: checked here, answered by the backend, and delivered through the
    /// session as GUILD_MEMBERS_CHUNK dispatches (sequenced, and replayed on RESUME). A guild
    /// the user is not in, or a member list a bot without GUILD_MEMBERS asks for, gets no
    /// answer, as on Discord.
    fn request_members(&mut self, d: serde_json::Value, ctx: &mut ws::WebsocketContext<Self>) {
        let Phase::Ready { session, filter } = &self.phase else {
            return self.close(ctx, CloseCode::NotAuthenticated);
        };
        let (session, filter) = (session.clone(), *filter);
        let Some(request) = members_request(d) else {
            return self.close(ctx, CloseCode::DecodeError);
        };
        if request.lists_members() && filter.intents & intents::bits::GUILD_MEMBERS == 0 {
            // Listing members (an empty query) needs GUILD_MEMBERS; Discord ignores it.
            return;
        }
        if request.is_everyone() {
            if let Some(retry_after) = self.everyone_limited(request.guild_id) {
                match rate_limited(&request, retry_after) {
                    Ok(dispatch) => session.do_send(Deliver(dispatch)),
                    Err(error) => tracing::error!(%error, "RATE_LIMITED did not serialise"),
                }
                return;
            }
        }
        // Asking for presences (with GUILD_PRESENCES) subscribes to them, as on Discord.
        let asks_presences =
            (request.presences && filter.presences_up_to.is_some()).then_some(AskPresences {
                guild_id: request.guild_id,
            });
        let answering = self.backend.request_members(filter.user_id, request);
        // `wait`: the chunks reach the session before the next command is read, so answers
        // come in the order of the requests.
        ctx.wait(
            answering
                .into_actor(self)
                .map(move |result, connection, ctx| match result {
                    Ok(chunks) => {
                        // No chunks: not a member of that guild.
                        if let Some(ask) = asks_presences.filter(|_| !chunks.is_empty()) {
                            session.do_send(ask);
                        }
                        for chunk in chunks {
                            session.do_send(Deliver(chunk));
                        }
                    }
                    Err(error) => {
                        let _span = connection.entered();
                        tracing::error!(%error, "request guild members failed");
                        connection.close(ctx, CloseCode::UnknownError);
                    }
                }),
        );
    }

    /// Counts a request for a guild's whole member list: how long to wait when it is one too
    /// many.
    fn everyone_limited(&mut self, guild_id: i64) -> Option<Duration> {
        self.everyone_asked
            .retain(|_, asked| asked.elapsed() < EVERYONE_WINDOW);
        if let Some(asked) = self.everyone_asked.get(&guild_id) {
            return Some(EVERYONE_WINDOW.saturating_sub(asked.elapsed()));
        }
        self.everyone_asked.insert(guild_id, Instant::now());
        None
    }
}

/// Discord's RATE_LIMITED dispatch for an op 8 that asked too often.
fn rate_limited(
    request: &MembersRequest,
    retry_after: Duration,
) -> Result<Arc<Dispatch>, serde_json::Error> {
    let mut meta = serde_json::json!({ "guild_id": request.guild_id.to_string() });
    if let Some(nonce) = &request.nonce {
        meta["nonce"] = nonce.clone().into();
    }
    let d = serde_json::json!({
        "opcode": op::REQUEST_GUILD_MEMBERS,
        "retry_after": retry_after.as_secs_f64(),
        "meta": meta,
    });
    // Of the guild, so a sharded session hears it only on the guild's shard.
    Ok(Arc::new(
        Dispatch::json(EventName::RateLimited, &d)?.in_guild(request.guild_id),
    ))
}

impl Actor for Connection {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let _span = self.entered();
        let period = self.config.heartbeat_interval;
        if let Some(drain) = self.drain.take() {
            let beat = actix::clock::interval_at(actix::clock::Instant::now() + period, period);
            ctx.add_stream(Inbox { drain, beat });
        }
        if !(6..=10).contains(&self.params.api_version) {
            return self.close(ctx, CloseCode::InvalidApiVersion);
        }
        if self.params.encoding.is_none() {
            return self.close(ctx, CloseCode::DecodeError);
        }
        let hello = format!(
            r#"{{"heartbeat_interval":{}}}"#,
            self.config.heartbeat_interval.as_millis()
        );
        self.send_op(ctx, op::HELLO, &hello);
        ctx.run_later(self.config.identify_timeout, |connection, ctx| {
            if !matches!(connection.phase, Phase::Ready { .. }) {
                connection.close(ctx, CloseCode::SessionTimedOut);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Phase::Ready { session, .. } = &self.phase {
            session.do_send(Detach {
                connection_id: self.id,
            });
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Connection {
    fn handle(&mut self, frame: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let _span = self.entered();
        if catch_failure("gateway connection", || self.on_frame(frame, ctx)).is_err() {
            self.close(ctx, CloseCode::UnknownError);
        }
    }
}

/// What a connection acts on besides its socket: what its session sends it, and the beat at
/// which it checks the client's heartbeats. One stream, the session's batches first: a close the
/// session already decided on (a client too far behind) is the one the client reads, even when
/// its heartbeat deadline passed too while nothing could be written.
struct Inbox {
    drain: Drain<Outbound>,
    beat: actix::clock::Interval,
}

enum Incoming {
    Batch(VecDeque<Outbound>),
    Beat,
}

impl futures_util::Stream for Inbox {
    type Item = Incoming;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        if let Poll::Ready(Some(batch)) = Pin::new(&mut self.drain).poll_next(cx) {
            return Poll::Ready(Some(Incoming::Batch(batch)));
        }
        self.beat.poll_tick(cx).map(|_| Some(Incoming::Beat))
    }
}

impl StreamHandler<Incoming> for Connection {
    fn handle(&mut self, incoming: Incoming, ctx: &mut Self::Context) {
        match incoming {
            Incoming::Batch(batch) => self.send_batch(batch, ctx),
            Incoming::Beat => {
                let deadline = self.config.heartbeat_interval + self.config.heartbeat_grace;
                if self.last_heartbeat.elapsed() > deadline {
                    self.close(ctx, CloseCode::SessionTimedOut);
                }
            }
        }
    }
}

impl Connection {
    /// Everything the session queued since the last batch: framed in order, and written to
    /// the socket together (the context writes whatever one poll produced in one go).
    fn send_batch(&mut self, batch: VecDeque<Outbound>, ctx: &mut ws::WebsocketContext<Self>) {
        for outbound in batch {
            match outbound {
                Outbound::Dispatch { seq, dispatch } | Outbound::Owed { seq, dispatch } => {
                    self.send_dispatch(ctx, seq, &dispatch)
                }
                Outbound::Close(code) => {
                    let _span = self.entered();
                    // The session let go of this connection: nothing to detach from.
                    self.phase = Phase::AwaitingIdentify;
                    return self.close(ctx, code);
                }
                Outbound::Reconnect => {
                    self.send_op(ctx, op::RECONNECT, "null");
                    // 1012 "service restart": clients resume after it.
                    return crate::websocket::close(ctx, 1012, "Reconnect and resume.");
                }
            }
        }
    }
}

/// Cluster mode: the session a RESUME names lives on another node, or a drained node left it in
/// Redis. A copy here starts hearing what it hears, then takes it over (see
/// [`super::handover`]); `None` when no node has it for this user.
async fn take_over(
    backend: Arc<dyn SessionBackend>,
    tree: Tree,
    config: Arc<SessionConfig>,
    session_id: String,
    user_id: i64,
) -> Option<Addr<Session>> {
    if !tree.shared {
        return None;
    }
    let described = backend
        .locate(session_id.clone())
        .await
        .inspect_err(|error| tracing::warn!(%error, "the session to resume was not located"))
        .ok()
        .flatten()
        .filter(|described| described.user_id == user_id)?;
    let copy = tree
        .session_threads
        .start(Session::taken_over(described, tree.clone(), config));
    copy.send(Hearing).await.ok()?;
    match backend.release(session_id).await {
        Ok(Some(released)) => {
            copy.send(Absorb(released)).await.ok()?;
            Some(copy)
        }
        result => {
            if let Err(error) = result {
                tracing::warn!(%error, "the session to resume was not released");
            }
            copy.do_send(Abandon);
            None
        }
    }
}

/// 32 hex digits, like Discord's session ids.
fn new_session_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}
