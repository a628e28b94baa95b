//! Gateway sessions.
//!
//! A session outlives its socket: [`Session`] is the logical session (its id, its sequence
//! numbers, the dispatches it keeps for RESUME, its guild subscriptions), and [`Connection`]
//! is one WebSocket speaking the protocol for it (HELLO, heartbeats, encodings, close codes).
//! When the socket drops, the session waits `resume_window` for a RESUME on a new connection,
//! which gets every missed dispatch, in order, exactly once; then it ends.

pub mod backend;
pub mod connection;
pub mod etf;
pub mod handover;
mod line;
pub mod protocol;
mod replay;
pub mod transport;
pub mod zlib;
pub mod zstd;

use crate::event_name::EventName;
use crate::outlet::Weighed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle,
    WrapFuture,
};
use tokio::sync::oneshot;

use crate::call::{CallChange, CallJoin, UpdateCall};
use crate::dispatch::{Deliver, Deliveries, Dispatch, Sink};
use crate::guild::stream::StreamChange;
use crate::guild::voice::{Join as JoinVoice, UpdateVoice, VoiceChange};
use crate::guild::{HearPresences, Subscribe, WatchMemberList};
use crate::intents::Filter;
pub use crate::outlet::Outlet;
use crate::presence::{Platform, Presence, Status};
use crate::registry::{Register, SetPresence, Unregister};
use crate::supervisor::guard;
use crate::Tree;
pub use backend::{Identified, IdentifyError, IdentifyRequest, SessionBackend, VoiceTarget};
pub use connection::{ConnectParams, Connection};
pub use line::Line;
use protocol::CloseCode;
pub use transport::{Compression, Encoding};

/// How long READY waits, in cluster mode, for this node to hear the session's guilds and user.
const HEARING: Duration = Duration::from_secs(5);

/// Timing and size rules shared by every session of a server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub heartbeat_interval: Duration,
    pub heartbeat_grace: Duration,
    pub identify_timeout: Duration,
    pub max_frame_bytes: usize,
    /// How long a session whose socket dropped stays resumable.
    pub resume_window: Duration,
    /// How many dispatches a session keeps for RESUME.
    pub resume_buffer: usize,
    /// Commands a connection may send per minute before it is closed with 4008.
    pub commands_per_minute: u32,
    /// Dispatches that may wait for a client that is not reading; one more and it is
    /// disconnected (its session stays resumable), so a stalled socket holds bounded memory.
    pub outbound_queue: usize,
    /// The same bound in bytes (of dispatches waiting for the socket), and the most bytes of
    /// dispatches a session keeps for RESUME.
    pub outbound_bytes: usize,
    /// The smallest IDENTIFY `large_threshold` taken as asked (Discord's 50; smaller ones are
    /// raised to it).
    pub min_large_threshold: usize,
}

/// What a session hands its connection.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum Outbound {
    /// A dispatch, with the sequence number the session gave it.
    Dispatch { seq: u64, dispatch: Arc<Dispatch> },
    /// A dispatch the session owes whatever the byte budget: READY and its followers, RESUMED,
    /// and the replay of a RESUME. Bounded by what the account holds or by the replay buffer,
    /// so not counted against the budget (a large account's READY must not end its session).
    Owed { seq: u64, dispatch: Arc<Dispatch> },
    /// Close with this code: the session is over.
    Close(CloseCode),
    /// Tell the client to reconnect and resume (op 7), then close; the session stays.
    Reconnect,
}

impl Weighed for Outbound {
    /// A live dispatch's payload; the rest are owed whatever the budget.
    fn weight(&self) -> usize {
        match self {
            Self::Dispatch { dispatch, .. } => dispatch.data().len(),
            Self::Owed { .. } | Self::Close(_) | Self::Reconnect => 0,
        }
    }
}

/// A connection takes the session over (after IDENTIFY, or RESUME from `after`); it learns
/// what the session hears (its intents decide what it may ask for).
#[derive(Message)]
#[rtype(result = "Result<Filter, ResumeRefused>")]
pub struct Attach {
    pub connection: Outlet<Outbound>,
    pub connection_id: u64,
    pub user_id: i64,
    /// The last sequence number the client saw.
    pub after: u64,
}

/// Why a session cannot be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeRefused {
    /// Another user's session, or one already gone or whose dispatches from there are
    /// forgotten: INVALID_SESSION, identify anew.
    Gone,
    /// A sequence number the session never sent: the client is confused (closes with 4007).
    InvalidSeq,
}

/// A connection's socket is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach {
    pub connection_id: u64,
}

/// End the session now (its login ended): the connection closes with `code`, no resuming.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct End(pub CloseCode);

pub struct Session {
    id: Arc<str>,
    user_id: i64,
    login_id: i64,
    /// Its intents and shard: which dispatches it hears.
    filter: Filter,
    tree: Tree,
    config: Arc<SessionConfig>,
    guild_ids: Vec<i64>,
    /// READY and what follows it: sent first, never replayed (a client that missed them
    /// identifies again).
    initial: Vec<Arc<Dispatch>>,
    /// Its sequence numbers, what it keeps for RESUME and its connection, shared with whoever
    /// delivers to it.
    line: Arc<Line>,
    /// Set while no connection is attached: the session ends when it fires.
    expiry: Option<SpawnHandle>,
    /// Where the session runs (for `client_status`).
    platform: Platform,
    /// What the registry is told when the session starts: its presence, and who hears it.
    presence: Option<(Presence, Vec<i64>, Vec<i64>)>,
    /// Where this session last joined voice: its voice state there ends with it.
    voice: Option<VoicePlace>,
    /// Handed over to another node: it lives on there.
    released: bool,
}

impl Session {
    /// A session for an identified connection, which it starts attached to.
    pub fn new(
        id: Arc<str>,
        identified: Identified,
        filter: Filter,
        initial: Vec<Arc<Dispatch>>,
        tree: Tree,
        config: Arc<SessionConfig>,
        connection: (u64, Outlet<Outbound>),
    ) -> Self {
        let line = Arc::new(Line::new(filter, &config, Some(connection), None));
        Self {
            id,
            user_id: identified.user_id,
            login_id: identified.login_id,
            filter,
            guild_ids: identified.guild_ids,
            tree,
            config,
            initial,
            line,
            expiry: None,
            platform: identified.presence.platform,
            presence: Some((
                identified.presence,
                identified.presence_guilds,
                identified.friends,
            )),
            voice: None,
            released: false,
        }
    }

    /// Where guilds and calls deliver this session's dispatches.
    fn sink(&self) -> Sink {
        Sink::new(self.line.clone())
    }

    /// The session has no connection now: it ends unless one resumes it within the window.
    fn detach(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.expiry.take() {
            ctx.cancel_future(handle);
        }
        let detached_at = Instant::now();
        let window = self.config.resume_window;
        self.expiry = Some(ctx.run_later(window, move |session, ctx| {
            let away = session.line.state().connection.is_none();
            if away && detached_at.elapsed() >= window {
                ctx.stop();
            }
        }));
    }

    /// READY and what follows it, then what was delivered before them.
    fn send_initial(&mut self) {
        let mut line = self.line.state();
        for dispatch in std::mem::take(&mut self.initial) {
            line.send_owed(dispatch);
        }
        line.opened();
    }

    /// Starts hearing a guild, if it is of this session's shard; `heard` is answered (or
    /// dropped) once it does.
    fn subscribe(
        &self,
        guild_id: i64,
        heard: Option<oneshot::Sender<()>>,
        ctx: &mut Context<Self>,
    ) {
        if self.filter.owns_guild(guild_id) {
            self.tree.guilds.do_send(Subscribe {
                guild_id,
                session_id: self.id.clone(),
                user_id: self.user_id,
                recipient: self.sink(),
                lost: ctx.address().recipient(),
                heard,
                presences_up_to: self.filter.presences_up_to,
            });
        }
    }

    fn attach(&mut self, attach: Attach, ctx: &mut Context<Self>) -> Result<Filter, ResumeRefused> {
        if attach.user_id != self.user_id {
            return Err(ResumeRefused::Gone);
        }
        // One lock from the replay to RESUMED: nothing newer overtakes the replay.
        let mut line = self.line.state();
        if attach.after > line.seq {
            return Err(ResumeRefused::InvalidSeq);
        }
        let latest = line.seq;
        let missed = line
            .replay
            .after(attach.after, latest)
            .ok_or(ResumeRefused::Gone)?;
        if let Some(handle) = self.expiry.take() {
            ctx.cancel_future(handle);
        }
        if let Some((_, old)) = line.connection.take() {
            // Only one connection speaks for a session; the older one gives way.
            old.do_send(Outbound::Close(CloseCode::SessionTimedOut));
        }
        // Through the new connection's mailbox, in order, ahead of anything newer.
        for (seq, dispatch) in missed {
            attach.connection.do_send(Outbound::Owed { seq, dispatch });
        }
        line.connection = Some((attach.connection_id, attach.connection));
        line.send_owed(Arc::new(Dispatch::from_json(
            EventName::Resumed,
            "{}".into(),
        )));
        Ok(self.filter)
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.line.owned_by(ctx.address().downgrade().recipient());
        // In cluster mode a guild or user channel this node did not hear yet is subscribed to
        // asynchronously: READY sent before that would let a client act on it (post, and
        // expect to see its post) while events another node publishes meanwhile never reach
        // this session. So READY waits until this node hears them (or for HEARING at most,
        // when the bus is down: the bus then tells the session to start over).
        let (shared, mut heard) = (self.tree.shared, Vec::new());
        let mut promise = || {
            shared.then(|| {
                let (sender, receiver) = oneshot::channel();
                heard.push(receiver);
                sender
            })
        };
        let guilds: Vec<_> = std::mem::take(&mut self.guild_ids)
            .into_iter()
            .map(|guild_id| (guild_id, promise()))
            .collect();
        let user_heard = promise();
        for (guild_id, guild_heard) in guilds {
            self.subscribe(guild_id, guild_heard, ctx);
        }
        let (presence, guilds, friends) = self.presence.take().unwrap_or_else(|| {
            let presence = Presence {
                status: Status::Online,
                activities: Vec::new(),
                platform: self.platform,
            };
            (presence, Vec::new(), Vec::new())
        });
        self.tree.sessions.do_send(Register {
            session_id: self.id.clone(),
            user_id: self.user_id,
            login_id: self.login_id,
            session: ctx.address(),
            line: self.line.clone(),
            presence,
            guilds,
            friends,
            heard: user_heard,
        });
        if heard.is_empty() {
            self.send_initial();
        } else {
            let hearing = actix::clock::timeout(HEARING, futures_util::future::join_all(heard));
            ctx.wait(
                hearing
                    .into_actor(self)
                    .map(|_, session, _| session.send_initial()),
            );
        }
        // A copy taken over from another node waits for its connection as a detached one does.
        if self.line.state().connection.is_none() {
            self.detach(ctx);
        }
        // Forget old dispatches even when nothing new arrives.
        ctx.run_interval(self.config.resume_window, |session, _| {
            session.line.state().replay.expire()
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.line.end();
        // Over for good (not resumable any more): its voice state goes too. One handed over
        // lives on elsewhere, in voice still (a gateway reconnect is not a voice one).
        if let Some(place) = self.voice.take().filter(|_| !self.released) {
            self.leave_voice(place);
        }
        self.tree.sessions.do_send(Unregister {
            session_id: self.id.clone(),
            user_id: self.user_id,
        });
    }
}

impl Handler<Deliver> for Session {
    type Result = ();
    fn handle(&mut self, Deliver(dispatch): Deliver, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session", ctx, |_| self.line.deliver(dispatch));
    }
}

/// The client's op 14 / op 37 for one guild (checked): the member lists it wants to watch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchMembers(pub protocol::ListRequest);

impl Handler<WatchMembers> for Session {
    type Result = ();
    fn handle(&mut self, WatchMembers(request): WatchMembers, _: &mut Context<Self>) {
        // The sidebar is a people's-client feature; bots list members with op 8.
        if self.filter.bot || !self.filter.owns_guild(request.guild_id) {
            return;
        }
        self.tree.guilds.do_send(WatchMemberList {
            guild_id: request.guild_id,
            session_id: self.id.clone(),
            user_id: self.user_id,
            channels: request.channels,
            recipient: self.sink(),
            presences: self.tree.sessions.clone().recipient(),
        });
    }
}

/// The client's op 8 asked for presences (its GUILD_PRESENCES checked): it hears the guild's
/// presences from now on, however large the guild.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AskPresences {
    pub guild_id: i64,
}

impl Handler<AskPresences> for Session {
    type Result = ();
    fn handle(&mut self, AskPresences { guild_id }: AskPresences, _: &mut Context<Self>) {
        if self.filter.owns_guild(guild_id) {
            self.tree.guilds.do_send(HearPresences {
                guild_id,
                session_id: self.id.clone(),
            });
        }
    }
}

/// The session's user joined a guild: the session hears it from now on (if its shard does).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Join {
    pub guild_id: i64,
}

impl Handler<Join> for Session {
    type Result = ();
    fn handle(&mut self, Join { guild_id }: Join, ctx: &mut Context<Self>) {
        // The registry put the guild's GUILD_CREATE on the line, held (see `Line::join`): it
        // goes out once this session hears the guild, as READY waits for its guilds. The
        // mailbox waits with it, so a handover takes it along.
        let (heard, hearing) = oneshot::channel();
        self.subscribe(guild_id, Some(heard), ctx);
        ctx.wait(
            actix::clock::timeout(HEARING, hearing)
                .into_actor(self)
                .map(move |_, session, _| session.line.state().joined(guild_id)),
        );
    }
}

impl Handler<Attach> for Session {
    type Result = Result<Filter, ResumeRefused>;
    fn handle(&mut self, attach: Attach, ctx: &mut Context<Self>) -> Self::Result {
        self.attach(attach, ctx)
    }
}

impl Handler<Detach> for Session {
    type Result = ();
    fn handle(&mut self, detach: Detach, ctx: &mut Context<Self>) {
        let let_go = self.line.state().let_go(detach.connection_id);
        if let_go {
            self.detach(ctx);
        }
    }
}

impl Handler<End> for Session {
    type Result = ();
    fn handle(&mut self, End(code): End, ctx: &mut Context<Self>) {
        if let Some((_, connection)) = self.line.state().connection.take() {
            connection.do_send(Outbound::Close(code));
        }
        ctx.stop();
    }
}

/// The client's op 3 PRESENCE_UPDATE (checked): the registry keeps it for this session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdatePresence {
    pub status: Status,
    pub activities: Vec<serde_json::Value>,
}

impl Handler<UpdatePresence> for Session {
    type Result = ();
    fn handle(&mut self, update: UpdatePresence, _: &mut Context<Self>) {
        // Through this actor, so the registry hears it after the session's Register.
        self.tree.sessions.do_send(SetPresence {
            session_id: self.id.clone(),
            user_id: self.user_id,
            presence: Presence {
                status: update.status,
                activities: update.activities,
                platform: self.platform,
            },
        });
    }
}

/// The client's op 4 in a guild (checked, and a join looked up): join or leave voice there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Voice {
    pub guild_id: i64,
    /// `None`: leave.
    pub join: Option<VoiceJoin>,
}

#[derive(Debug)]
pub struct VoiceJoin {
    pub target: VoiceTarget,
    pub endpoint: String,
    pub request: protocol::VoiceRequest,
}

/// Where a session is in voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VoicePlace {
    Guild(i64),
    /// A DM or group DM call, by channel.
    Call(i64),
}

impl Session {
    /// This session is done with voice there: its voice state ends, unless another session
    /// has taken it over since.
    fn leave_voice(&self, place: VoicePlace) {
        let (user_id, session_id) = (self.user_id, self.id.clone());
        match place {
            VoicePlace::Guild(guild_id) => self.tree.guilds.do_send(UpdateVoice {
                guild_id,
                user_id,
                change: VoiceChange::SessionLeft { session_id },
            }),
            VoicePlace::Call(channel_id) => self.tree.calls.do_send(UpdateCall {
                channel_id,
                user_id,
                change: CallChange::SessionLeft { session_id },
            }),
        }
    }

    /// One voice channel at a time: joining one leaves the last, if it was elsewhere.
    fn enter_voice(&mut self, place: VoicePlace) {
        if let Some(previous) = self.voice.filter(|p| *p != place) {
            self.leave_voice(previous);
        }
        self.voice = Some(place);
    }
}

impl Handler<Voice> for Session {
    type Result = ();
    fn handle(&mut self, Voice { guild_id, join }: Voice, _: &mut Context<Self>) {
        let change = match join {
            None => {
                if self.voice == Some(VoicePlace::Guild(guild_id)) {
                    self.voice = None;
                }
                VoiceChange::Leave
            }
            Some(VoiceJoin {
                target,
                endpoint,
                request,
            }) => {
                self.enter_voice(VoicePlace::Guild(guild_id));
                VoiceChange::Join(JoinVoice {
                    session_id: self.id.clone(),
                    endpoint,
                    channel: target.channel,
                    self_mute: request.self_mute,
                    self_deaf: request.self_deaf,
                    self_video: request.self_video,
                    mute: target.mute,
                    deaf: target.deaf,
                    member: target.member,
                    node: None,
                })
            }
        };
        self.tree.guilds.do_send(UpdateVoice {
            guild_id,
            user_id: self.user_id,
            change,
        });
    }
}

/// The client's op 4 without a guild (checked, and a join looked up): join a DM or group DM
/// call, or (`None`) leave the session's call.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallVoice {
    pub join: Option<CallVoiceJoin>,
}

#[derive(Debug)]
pub struct CallVoiceJoin {
    pub channel_id: i64,
    /// The channel's recipients, the user among them.
    pub recipients: Vec<i64>,
    pub endpoint: String,
    pub request: protocol::VoiceRequest,
}

impl Handler<CallVoice> for Session {
    type Result = ();
    fn handle(&mut self, CallVoice { join }: CallVoice, _: &mut Context<Self>) {
        let Some(join) = join else {
            if let Some(place @ VoicePlace::Call(_)) = self.voice {
                self.voice = None;
                self.leave_voice(place);
            }
            return;
        };
        self.enter_voice(VoicePlace::Call(join.channel_id));
        self.tree.calls.do_send(UpdateCall {
            channel_id: join.channel_id,
            user_id: self.user_id,
            change: CallChange::Join(CallJoin {
                session_id: self.id.clone(),
                session: self.sink(),
                endpoint: join.endpoint,
                recipients: join.recipients,
                self_mute: join.request.self_mute,
                self_deaf: join.request.self_deaf,
                self_video: join.request.self_video,
            }),
        });
    }
}

/// The client's Go Live command (checked): carried out by the guild's actor, or the calls
/// actor for a DM call, which answers with the STREAM_* events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stream(pub protocol::StreamCommand);

impl Handler<Stream> for Session {
    type Result = ();
    fn handle(&mut self, Stream(command): Stream, _: &mut Context<Self>) {
        use protocol::StreamCommand;
        let session_id = self.id.clone();
        let mine = |key: &protocol::StreamKey| key.user_id == self.user_id;
        let (guild_id, channel_id, change) = match command {
            StreamCommand::Create {
                guild_id,
                channel_id,
            } => (
                guild_id,
                channel_id,
                StreamChange::Create {
                    session_id,
                    channel_id,
                },
            ),
            StreamCommand::Watch(key) => (
                key.guild_id,
                key.channel_id,
                StreamChange::Watch {
                    session_id,
                    streamer: key.user_id,
                },
            ),
            // Only the streamer stops or pauses their stream.
            StreamCommand::Delete(key) if mine(&key) => {
                (key.guild_id, key.channel_id, StreamChange::Delete)
            }
            StreamCommand::SetPaused(key, paused) if mine(&key) => (
                key.guild_id,
                key.channel_id,
                StreamChange::Paused { paused },
            ),
            StreamCommand::Delete(_) | StreamCommand::SetPaused(..) => return,
        };
        let user_id = self.user_id;
        match guild_id {
            Some(guild_id) => self.tree.guilds.do_send(UpdateVoice {
                guild_id,
                user_id,
                change: VoiceChange::Stream(change),
            }),
            None => self.tree.calls.do_send(UpdateCall {
                channel_id,
                user_id,
                change: CallChange::Stream(change),
            }),
        }
    }
}

/// Some dispatches meant for this session never reached this node (cluster mode: the bus lost
/// them). Its client is told to reconnect (op 7) and the session ends: the RESUME that follows
/// is refused (op 9), so the client IDENTIFYs and reads everything anew rather than resuming
/// past what it missed.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Lost;

impl Handler<Lost> for Session {
    type Result = ();
    fn handle(&mut self, _: Lost, ctx: &mut Context<Self>) {
        if let Some((_, connection)) = self.line.state().connection.take() {
            connection.do_send(Outbound::Reconnect);
        }
        ctx.stop();
    }
}

/// Asks the attached connection to have its client reconnect and resume (server shutdown).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Reconnect;

impl Handler<Reconnect> for Session {
    type Result = ();
    fn handle(&mut self, _: Reconnect, _: &mut Context<Self>) {
        if let Some((_, connection)) = &self.line.state().connection {
            connection.do_send(Outbound::Reconnect);
        }
    }
}
