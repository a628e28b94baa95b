//! Calls in DMs and group DMs: one actor per node holds every live call (who is in it, who is
//! still being rung) and tells the channel's recipients through the session registry. A call
//! starts when its first participant joins with op 4 (`guild_id: null`) — CALL_CREATE rings the
//! others — changes with each join and leave (CALL_UPDATE), and ends with its last participant
//! (CALL_DELETE). Its voice room is [`RoomKey::Call`], its voice gateway `server_id` the
//! channel id. Participants go live in it as in a guild channel (`call:{c}:{u}` streams).
//! Ringing stops when the one rung joins, declines (`POST …/call/stop-ringing`), or after
//! [`RING_FOR`]; a participant may ring recipients again (`POST …/call/ring`).
//!
//! The actor plays two parts. As a call's **owner** it keeps the call ([`OwnerCall`]s change
//! it); as the node of a participant's **seat** it keeps that session's side (its voice
//! admission and VOICE_SERVER_UPDATE, the STREAM_* events for it: [`SeatCall`]). On a single
//! node both are this actor, and everything happens in one step, as always. In cluster mode a
//! [`CallBus`] (the server's `cluster::calls`) carries each command to the one node that owns
//! the call (a lease), the owner's events to every recipient's node, and its seat commands to
//! the participant's node; the owner stores the call so that a new owner can rebuild it.

use crate::event_name::EventName;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Supervised};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::dispatch::{Deliver, Dispatch, Sink};
use crate::guild::stream::{Ended, Stream as GoLive, StreamChange, Streams};
use crate::guild::voice::Notice;
use crate::registry::{DispatchToUser, SessionRegistry};
use crate::supervisor::guard;
use crate::voice::{Admissions, Flags, RoomKey, RoomMoved};

/// The region calls are placed in: this server carries voice itself.
const REGION: &str = "spacebar";
/// How long a recipient is rung before the ringing stops on its own.
pub const RING_FOR: Duration = Duration::from_secs(60);
/// How often rings that ran out are looked for.
const RING_SWEEP: Duration = Duration::from_secs(5);

/// A participant of a call, as its owner keeps (and stores) it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Participant {
    session_id: Arc<str>,
    /// The node holding their session, where their seat is (empty on a single node).
    node: Arc<str>,
    /// The voice endpoint their session was given (Go Live streams are served beside it).
    endpoint: String,
    self_mute: bool,
    self_deaf: bool,
    self_video: bool,
}

struct Call {
    recipients: Vec<i64>,
    participants: HashMap<i64, Participant>,
    /// Recipients rung who have not joined yet, with when they were rung.
    ringing: Vec<(i64, Instant)>,
    streams: Streams,
}

/// A call as its owner stores it for the next owner (Go Live streams are not kept: they end
/// with the owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCall {
    recipients: Vec<i64>,
    participants: Vec<(i64, Participant)>,
    /// Who is rung, and since when (Unix milliseconds).
    ringing: Vec<(i64, u64)>,
}

/// This node's session in a call: what only its node can do for it.
struct Seat {
    channel_id: i64,
    user_id: i64,
    session: Sink,
    endpoint: String,
    flags: Flags,
}

/// Op 4 in a DM or group DM the user is a recipient of (checked by the session's backend).
#[derive(Debug)]
pub struct CallJoin {
    pub session_id: Arc<str>,
    /// Where VOICE_SERVER_UPDATE goes: the joining session only.
    pub session: Sink,
    pub endpoint: String,
    /// Every recipient of the channel, the joiner included.
    pub recipients: Vec<i64>,
    pub self_mute: bool,
    pub self_deaf: bool,
    pub self_video: bool,
}

#[derive(Debug)]
pub enum CallChange {
    Join(CallJoin),
    /// This session is done with the call (it left with op 4, joined voice elsewhere, or
    /// ended): its participant, if it still is one, leaves.
    SessionLeft {
        session_id: Arc<str>,
    },
    /// Go Live in the call.
    Stream(StreamChange),
}

/// `POST /channels/:id/call/ring` (`ring`) or `…/stop-ringing` from `user_id`, a recipient of
/// the channel (checked by the route). `recipients: None` rings everyone not in the call, or
/// stops ringing the caller (declining). Only participants ring, or stop ringing others.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Ring {
    pub channel_id: i64,
    pub user_id: i64,
    pub recipients: Option<Vec<i64>>,
    pub ring: bool,
    /// The channel's recipients now (someone may have left the group since the call began).
    pub channel_recipients: Vec<i64>,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct UpdateCall {
    pub channel_id: i64,
    pub user_id: i64,
    pub change: CallChange,
}

/// A change for the owner of a call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OwnerCall {
    Join {
        user_id: i64,
        participant: Participant,
        recipients: Vec<i64>,
    },
    /// The session is done with the call (see [`CallChange::SessionLeft`]).
    Left {
        user_id: i64,
        session_id: Arc<str>,
    },
    Stream {
        user_id: i64,
        change: CallStream,
    },
    Ring {
        user_id: i64,
        recipients: Option<Vec<i64>>,
        ring: bool,
        channel_recipients: Vec<i64>,
    },
    /// The call's owner is gone, and the node asking takes the call over: its seats that the
    /// call does not know are not in it.
    TakeOver,
}

/// Go Live in a call ([`StreamChange`], as it travels to the owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CallStream {
    Create { session_id: Arc<str> },
    Watch { session_id: Arc<str>, streamer: i64 },
    Delete,
    Paused { paused: bool },
}

/// What a call's owner has a participant's node do for their session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SeatCall {
    /// They are in the call with these flags: a new admission and VOICE_SERVER_UPDATE
    /// (`reconnect`), or only the admission's flags changed.
    Admit {
        channel_id: i64,
        user_id: i64,
        session_id: Arc<str>,
        flags: Flags,
        reconnect: bool,
    },
    /// They left the call: their admission ends.
    Dismiss {
        channel_id: i64,
        user_id: i64,
        session_id: Arc<str>,
    },
    /// Another session of theirs took their place: this one is no longer in the call.
    Forget { session_id: Arc<str> },
    /// An event for that session only (the STREAM_* events).
    Notice {
        session_id: Arc<str>,
        event: EventName,
        d: Value,
    },
}

/// Cluster mode: how the calls actor reaches the other nodes (see the module's comment).
pub trait CallBus: Send + Sync {
    /// Carries `command` to the owner of `channel_id`'s call (taking the call if nobody owns
    /// it); when that is this node, back to this actor as [`Owned`] (after [`Adopt`]).
    fn to_owner(&self, channel_id: i64, command: OwnerCall);
    /// Tells every session of each of `users` on the other nodes.
    fn tell(&self, users: &[i64], event: EventName, d: &Value);
    /// Has node `node` carry out `command` for its session.
    fn to_seat(&self, node: &str, command: SeatCall);
    /// The call as its owner keeps it now (`None`: it ended): stored, fenced by the lease.
    fn store(&self, channel_id: i64, call: Option<StoredCall>);
}

/// Cluster mode from now on: this node is `node_id`, and reaches the others through `bus`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UseBus {
    pub node_id: Arc<str>,
    pub bus: Arc<dyn CallBus>,
}

/// This node owns the call now: carry `command` out.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Owned {
    pub channel_id: i64,
    pub command: OwnerCall,
}

/// This node just took the call over: what the last owner stored (`None`: nothing), and the
/// live nodes (participants on others are gone).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Adopt {
    pub channel_id: i64,
    pub stored: Option<StoredCall>,
    pub live: HashSet<String>,
}

/// This node lost the call's lease: it no longer acts as its owner.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Disown {
    pub channel_id: i64,
}

/// A seat command from a call's owner on another node.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SeatArrived(pub SeatCall);

/// The live nodes now: participants of calls owned here whose node is gone leave.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Prune {
    pub live: HashSet<String>,
}

/// The calls this node's sessions are in that another node owns (to watch their owner).
#[derive(Message, Debug)]
#[rtype(result = "Vec<i64>")]
pub struct SeatedElsewhere;

pub struct Calls {
    sessions: Addr<SessionRegistry>,
    admissions: Admissions,
    /// The calls this node owns (on a single node: every call).
    calls: HashMap<i64, Call>,
    /// This node's sessions in calls, by session id.
    seats: HashMap<Arc<str>, Seat>,
    /// This node's id (empty on a single node).
    node_id: Arc<str>,
    /// Cluster mode: the way to the other nodes.
    bus: Option<Arc<dyn CallBus>>,
}

impl Calls {
    pub fn new(sessions: Addr<SessionRegistry>, admissions: Admissions) -> Self {
        Self {
            sessions,
            admissions,
            calls: HashMap::new(),
            seats: HashMap::new(),
            node_id: Arc::from(""),
            bus: None,
        }
    }

    /// A change from a session of this node: its seat is noted here, the change goes to the
    /// call's owner.
    fn update(&mut self, update: UpdateCall) {
        let UpdateCall {
            channel_id,
            user_id,
            change,
        } = update;
        let command = match change {
            CallChange::Join(join) => {
                let participant = Participant {
                    session_id: join.session_id.clone(),
                    node: self.node_id.clone(),
                    endpoint: join.endpoint.clone(),
                    self_mute: join.self_mute,
                    self_deaf: join.self_deaf,
                    self_video: join.self_video,
                };
                let seat = Seat {
                    channel_id,
                    user_id,
                    session: join.session,
                    endpoint: join.endpoint,
                    flags: participant.flags(),
                };
                self.seats.insert(join.session_id, seat);
                OwnerCall::Join {
                    user_id,
                    participant,
                    recipients: join.recipients,
                }
            }
            CallChange::SessionLeft { session_id } => OwnerCall::Left {
                user_id,
                session_id,
            },
            CallChange::Stream(change) => OwnerCall::Stream {
                user_id,
                change: CallStream::from(change),
            },
        };
        self.ask_owner(channel_id, command);
    }

    /// Carries `command` to the call's owner: this actor itself on a single node.
    fn ask_owner(&mut self, channel_id: i64, command: OwnerCall) {
        match &self.bus {
            Some(bus) => bus.to_owner(channel_id, command),
            None => self.own(channel_id, command),
        }
    }

    /// As the call's owner: carries out `command`.
    fn own(&mut self, channel_id: i64, command: OwnerCall) {
        match command {
            OwnerCall::Join {
                user_id,
                participant,
                recipients,
            } => self.join(channel_id, user_id, participant, recipients),
            OwnerCall::Left {
                user_id,
                session_id,
            } => {
                let theirs = self
                    .calls
                    .get(&channel_id)
                    .and_then(|call| call.participants.get(&user_id))
                    .is_some_and(|p| p.session_id == session_id);
                if theirs {
                    self.leave(channel_id, user_id);
                }
            }
            OwnerCall::Stream { user_id, change } => self.stream(channel_id, user_id, change),
            OwnerCall::Ring {
                user_id,
                recipients,
                ring,
                channel_recipients,
            } => self.ring(channel_id, user_id, recipients, ring, channel_recipients),
            OwnerCall::TakeOver => self.drop_strays(channel_id),
        }
    }

    /// Has the node of a participant's seat carry out `command`: this actor itself when the
    /// seat is here.
    fn ask_seat(&mut self, node: &str, command: SeatCall) {
        match &self.bus {
            Some(bus) if *node != *self.node_id => bus.to_seat(node, command),
            _ => self.seat(command),
        }
    }

    /// Cluster mode: stores the call as it is now (or that it ended) for the next owner.
    fn persist(&self, channel_id: i64) {
        if let Some(bus) = &self.bus {
            let stored = self.calls.get(&channel_id).map(Call::stored);
            bus.store(channel_id, stored);
        }
    }

    /// As the node of a participant's seat: carries out what the call's owner decided.
    fn seat(&mut self, command: SeatCall) {
        match command {
            SeatCall::Admit {
                channel_id,
                user_id,
                session_id,
                flags,
                reconnect,
            } => {
                // Another seat of theirs here (an earlier session) is no longer in the call.
                self.seats.retain(|id, seat| {
                    *id == session_id || seat.channel_id != channel_id || seat.user_id != user_id
                });
                let room = RoomKey::Call { channel_id };
                let Some(seat) = self.seats.get_mut(&session_id) else {
                    return;
                };
                seat.flags = flags;
                if !reconnect {
                    return self.admissions.set_flags(&room, user_id, flags);
                }
                let token = self.admissions.admit(
                    channel_id.to_string(),
                    user_id,
                    session_id.to_string(),
                    room,
                    flags,
                );
                server_update(
                    &seat.session,
                    channel_id,
                    Some(&token),
                    Some(&seat.endpoint),
                );
            }
            SeatCall::Dismiss {
                channel_id,
                user_id,
                session_id,
            } => {
                // The session may have moved on to another call since.
                if self
                    .seats
                    .get(&session_id)
                    .is_some_and(|seat| seat.channel_id == channel_id)
                {
                    self.seats.remove(&session_id);
                }
                self.admissions
                    .dismiss(&RoomKey::Call { channel_id }, user_id);
            }
            SeatCall::Forget { session_id } => {
                self.seats.remove(&session_id);
            }
            SeatCall::Notice {
                session_id,
                event,
                d,
            } => {
                let Some(seat) = self.seats.get(&session_id) else {
                    return;
                };
                match Dispatch::new(event, &d) {
                    Ok(dispatch) => seat.session.do_send(Deliver(dispatch)),
                    Err(error) => tracing::error!(%error, %event, "call event did not serialise"),
                }
            }
        }
    }

    /// Ops 18, 19, 20 and 22 in a call: only its participants, from the session in it, stream
    /// and watch.
    fn stream(&mut self, channel_id: i64, user_id: i64, change: CallStream) {
        let Some(call) = self.calls.get_mut(&channel_id) else {
            return;
        };
        let admissions = &self.admissions;
        let participant = |session_id: &Arc<str>| {
            call.participants
                .get(&user_id)
                .filter(|p| p.session_id == *session_id)
                .map(|p| p.endpoint.clone())
        };
        let (notices, live_changed) = match change {
            CallStream::Create { session_id } => {
                let Some(endpoint) = participant(&session_id) else {
                    return;
                };
                let mut notices = call.streams.end(user_id, Ended::Stopped, admissions);
                let key = GoLive::call_key(channel_id, user_id);
                let streamer = (user_id, session_id);
                notices.extend(call.streams.start(key, streamer, &endpoint, admissions));
                (notices, true)
            }
            CallStream::Watch {
                session_id,
                streamer,
            } => {
                let Some(endpoint) = participant(&session_id) else {
                    return;
                };
                let viewer = (user_id, session_id);
                let watched = call.streams.watch(streamer, viewer, &endpoint, admissions);
                (watched.unwrap_or_default(), false)
            }
            CallStream::Delete => (call.streams.end(user_id, Ended::Stopped, admissions), true),
            CallStream::Paused { paused } => {
                let paused = call.streams.set_paused(user_id, paused);
                (paused.unwrap_or_default(), false)
            }
        };
        // Their `self_stream` changed only if a stream started or ended.
        let state = (live_changed && !notices.is_empty()).then(|| {
            (
                call.voice_state(channel_id, user_id),
                call.recipients.clone(),
            )
        });
        self.deliver(channel_id, notices);
        if let Some((state, recipients)) = state {
            self.tell(&recipients, EventName::VoiceStateUpdate, &state);
        }
    }

    /// Sends each STREAM_* event to the participant's session it is for, on its node.
    fn deliver(&mut self, channel_id: i64, notices: Vec<Notice>) {
        for notice in notices {
            let Notice::Session {
                session_id,
                event,
                d,
            } = notice
            else {
                continue;
            };
            let node = self.calls.get(&channel_id).and_then(|call| {
                call.participants
                    .values()
                    .find(|p| p.session_id == session_id)
                    .map(|p| p.node.clone())
            });
            if let Some(node) = node {
                let notice = SeatCall::Notice {
                    session_id,
                    event,
                    d,
                };
                self.ask_seat(&node, notice);
            }
        }
    }

    fn join(
        &mut self,
        channel_id: i64,
        user_id: i64,
        participant: Participant,
        recipients: Vec<i64>,
    ) {
        let started = !self.calls.contains_key(&channel_id);
        let call = self.calls.entry(channel_id).or_insert_with(|| {
            let mut call = Call {
                ringing: Vec::new(),
                recipients: recipients.clone(),
                participants: HashMap::new(),
                streams: Streams::default(),
            };
            let others: Vec<i64> = recipients
                .iter()
                .copied()
                .filter(|r| *r != user_id)
                .collect();
            call.ring(&others, Instant::now());
            call
        });
        call.recipients = recipients;
        call.stop_ringing(&[user_id]);
        let flags = participant.flags();
        let (session_id, node) = (participant.session_id.clone(), participant.node.clone());
        let previous = call.participants.insert(user_id, participant);
        // A change of one's own flags needs no new connection; anything else does (the same
        // request again is a client reconnecting its voice connection).
        let reconnect = previous
            .as_ref()
            .is_none_or(|p| p.session_id != session_id || p.flags() == flags);
        let event = if started {
            EventName::CallCreate
        } else {
            EventName::CallUpdate
        };
        let call_d = call.to_json(channel_id);
        let state = call.voice_state(channel_id, user_id);
        let recipients = call.recipients.clone();
        self.tell(&recipients, event, &call_d);
        self.tell(&recipients, EventName::VoiceStateUpdate, &state);
        if let Some(previous) = previous.filter(|p| p.session_id != session_id) {
            let forget = SeatCall::Forget {
                session_id: previous.session_id,
            };
            self.ask_seat(&previous.node, forget);
        }
        let admit = SeatCall::Admit {
            channel_id,
            user_id,
            session_id,
            flags,
            reconnect,
        };
        self.ask_seat(&node, admit);
    }

    /// Cluster mode: the node serving the call's room is gone (`None`), or serves it at
    /// `endpoint` now: each of this node's participants hears a null endpoint, or the new one
    /// with a new token.
    fn room_moved(&mut self, channel_id: i64, endpoint: Option<&str>) {
        let room = RoomKey::Call { channel_id };
        let seats = self
            .seats
            .iter_mut()
            .filter(|(_, seat)| seat.channel_id == channel_id);
        for (session_id, seat) in seats {
            let token = endpoint.map(|endpoint| {
                endpoint.clone_into(&mut seat.endpoint);
                self.admissions.admit(
                    channel_id.to_string(),
                    seat.user_id,
                    session_id.to_string(),
                    room.clone(),
                    seat.flags,
                )
            });
            server_update(&seat.session, channel_id, token.as_deref(), endpoint);
        }
    }

    fn leave(&mut self, channel_id: i64, user_id: i64) {
        let Some(call) = self.calls.get_mut(&channel_id) else {
            return;
        };
        // Their stream ends and they stop watching, told while their session is still known.
        let mut notices = call.streams.unwatch_all(user_id, &self.admissions);
        notices.extend(
            call.streams
                .end(user_id, Ended::StreamerLeft, &self.admissions),
        );
        self.deliver(channel_id, notices);
        let Some(call) = self.calls.get_mut(&channel_id) else {
            return;
        };
        let mut state = call.voice_state(channel_id, user_id);
        state["channel_id"] = Value::Null;
        let Some(gone) = call.participants.remove(&user_id) else {
            return;
        };
        let ended = call.participants.is_empty();
        let recipients = call.recipients.clone();
        let call_d = call.to_json(channel_id);
        let dismiss = SeatCall::Dismiss {
            channel_id,
            user_id,
            session_id: gone.session_id,
        };
        self.ask_seat(&gone.node, dismiss);
        self.tell(&recipients, EventName::VoiceStateUpdate, &state);
        if ended {
            self.calls.remove(&channel_id);
            let gone = json!({ "channel_id": channel_id.to_string() });
            self.tell(&recipients, EventName::CallDelete, &gone);
        } else {
            self.tell(&recipients, EventName::CallUpdate, &call_d);
        }
    }

    /// Rings, or stops ringing, as a recipient asked; CALL_UPDATE if that changed anything.
    fn ring(
        &mut self,
        channel_id: i64,
        user_id: i64,
        recipients: Option<Vec<i64>>,
        ring: bool,
        channel_recipients: Vec<i64>,
    ) {
        let Some(call) = self.calls.get_mut(&channel_id) else {
            return;
        };
        call.recipients = channel_recipients;
        let participant = call.participants.contains_key(&user_id);
        let targets: Vec<i64> = match recipients {
            Some(listed) => listed,
            None if ring => call.recipients.clone(),
            None => vec![user_id],
        };
        let changed = if ring && participant {
            call.ring(&targets, Instant::now())
        } else if !ring && (participant || targets == [user_id]) {
            call.stop_ringing(&targets)
        } else {
            false
        };
        if changed {
            let d = call.to_json(channel_id);
            let recipients = call.recipients.clone();
            self.tell(&recipients, EventName::CallUpdate, &d);
        }
    }

    /// Stops the rings that ran out ([`RING_FOR`]), telling each call's recipients; forgets
    /// the seats of sessions that ended.
    fn sweep_rings(&mut self, now: Instant) {
        let mut updates = Vec::new();
        for (channel_id, call) in &mut self.calls {
            if call.expire_rings(now) {
                updates.push((
                    *channel_id,
                    call.recipients.clone(),
                    call.to_json(*channel_id),
                ));
            }
        }
        for (channel_id, recipients, d) in updates {
            self.tell(&recipients, EventName::CallUpdate, &d);
            self.persist(channel_id);
        }
        self.seats.retain(|_, seat| seat.session.connected());
    }

    /// This node took the call over: it is what the last owner stored, without the
    /// participants whose node is gone (the others hear them leave; the call ends if nobody
    /// is left).
    fn adopt(&mut self, channel_id: i64, stored: Option<StoredCall>, live: &HashSet<String>) {
        match stored {
            Some(stored) => {
                tracing::info!(channel_id, "this node took the call over");
                self.calls.insert(channel_id, Call::from(stored));
            }
            None => {
                self.calls.remove(&channel_id);
            }
        }
        self.prune(channel_id, live);
    }

    /// After a take-over: this node's seats that the call does not know (their join never
    /// reached the stored call, or the call is gone) are not in it.
    fn drop_strays(&mut self, channel_id: i64) {
        let call = self.calls.get(&channel_id);
        let strays: Vec<(Arc<str>, i64)> = self
            .seats
            .iter()
            .filter(|(session_id, seat)| {
                seat.channel_id == channel_id
                    && call.is_none_or(|call| {
                        call.participants
                            .get(&seat.user_id)
                            .is_none_or(|p| p.session_id != **session_id)
                    })
            })
            .map(|(session_id, seat)| (session_id.clone(), seat.user_id))
            .collect();
        for (session_id, user_id) in strays {
            self.seat(SeatCall::Dismiss {
                channel_id,
                user_id,
                session_id,
            });
        }
    }

    /// The participants of the call whose node is not among `live` leave it.
    fn prune(&mut self, channel_id: i64, live: &HashSet<String>) {
        let Some(call) = self.calls.get(&channel_id) else {
            return;
        };
        let gone: Vec<i64> = call
            .participants
            .iter()
            .filter(|(_, p)| !live.contains(&*p.node))
            .map(|(user_id, _)| *user_id)
            .collect();
        for user_id in &gone {
            tracing::info!(
                channel_id,
                user_id,
                "a call's participant left with their node"
            );
            self.leave(channel_id, *user_id);
        }
        if !gone.is_empty() {
            self.persist(channel_id);
        }
    }

    /// Sends an event to every session of each recipient (on every node).
    fn tell(&self, recipients: &[i64], event: EventName, d: &Value) {
        let dispatch = match Dispatch::new(event, d) {
            Ok(dispatch) => dispatch,
            Err(error) => return tracing::error!(%error, %event, "call event did not serialise"),
        };
        for user_id in recipients {
            self.sessions.do_send(DispatchToUser {
                user_id: *user_id,
                dispatch: dispatch.clone(),
            });
        }
        if let Some(bus) = &self.bus {
            bus.tell(recipients, event, d);
        }
    }
}

impl Participant {
    fn flags(&self) -> Flags {
        Flags {
            self_mute: self.self_mute,
            self_deaf: self.self_deaf,
            ..Flags::default()
        }
    }
}

impl From<StreamChange> for CallStream {
    fn from(change: StreamChange) -> Self {
        match change {
            StreamChange::Create { session_id, .. } => Self::Create { session_id },
            StreamChange::Watch {
                session_id,
                streamer,
            } => Self::Watch {
                session_id,
                streamer,
            },
            StreamChange::Delete => Self::Delete,
            StreamChange::Paused { paused } => Self::Paused { paused },
        }
    }
}

/// Unix milliseconds of `at`, an instant in the past (or now).
fn unix_ms(at: Instant) -> u64 {
    let then = SystemTime::now() - at.elapsed();
    let since = then.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The instant of Unix milliseconds `ms` (now, if that is in the future).
fn instant_of(ms: u64) -> Instant {
    let then = UNIX_EPOCH + Duration::from_millis(ms);
    let ago = SystemTime::now().duration_since(then).unwrap_or_default();
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

impl From<StoredCall> for Call {
    fn from(stored: StoredCall) -> Self {
        Self {
            recipients: stored.recipients,
            participants: stored.participants.into_iter().collect(),
            ringing: stored
                .ringing
                .into_iter()
                .map(|(user, ms)| (user, instant_of(ms)))
                .collect(),
            streams: Streams::default(),
        }
    }
}

impl Call {
    /// Rings those of `users` who are recipients and not in the call (again, if they were
    /// rung already: their time starts over); whether anyone new is rung.
    fn ring(&mut self, users: &[i64], now: Instant) -> bool {
        // Whoever left the group since is rung no more.
        let before = self.ringing.len();
        let recipients = &self.recipients;
        self.ringing.retain(|(rung, _)| recipients.contains(rung));
        let mut changed = self.ringing.len() != before;
        for user in users {
            if !self.recipients.contains(user) || self.participants.contains_key(user) {
                continue;
            }
            match self.ringing.iter_mut().find(|(rung, _)| rung == user) {
                Some((_, at)) => *at = now,
                None => {
                    self.ringing.push((*user, now));
                    changed = true;
                }
            }
        }
        changed
    }

    /// Whether any of `users` was being rung.
    fn stop_ringing(&mut self, users: &[i64]) -> bool {
        let before = self.ringing.len();
        self.ringing.retain(|(rung, _)| !users.contains(rung));
        self.ringing.len() != before
    }

    /// Stops the rings older than [`RING_FOR`]; whether there were any.
    fn expire_rings(&mut self, now: Instant) -> bool {
        let before = self.ringing.len();
        self.ringing
            .retain(|(_, at)| now.saturating_duration_since(*at) < RING_FOR);
        self.ringing.len() != before
    }

    /// What its owner stores for the next one.
    fn stored(&self) -> StoredCall {
        StoredCall {
            recipients: self.recipients.clone(),
            participants: self
                .participants
                .iter()
                .map(|(user_id, p)| (*user_id, p.clone()))
                .collect(),
            ringing: self
                .ringing
                .iter()
                .map(|(user, at)| (*user, unix_ms(*at)))
                .collect(),
        }
    }

    /// CALL_CREATE and CALL_UPDATE's `d`.
    fn to_json(&self, channel_id: i64) -> Value {
        let mut participants: Vec<&i64> = self.participants.keys().collect();
        participants.sort_unstable();
        json!({
            "channel_id": channel_id.to_string(),
            "message_id": null,
            "region": REGION,
            "ringing": self.ringing.iter().map(|(rung, _)| rung.to_string()).collect::<Vec<_>>(),
            "voice_states": participants.into_iter().map(|u| self.voice_state(channel_id, *u)).collect::<Vec<_>>(),
        })
    }

    /// A participant's voice state (in a call there is no server mute, deafen or suppression).
    fn voice_state(&self, channel_id: i64, user_id: i64) -> Value {
        let participant = self.participants.get(&user_id);
        json!({
            "guild_id": null,
            "channel_id": channel_id.to_string(),
            "user_id": user_id.to_string(),
            "session_id": participant.map(|p| p.session_id.to_string()),
            "deaf": false,
            "mute": false,
            "self_deaf": participant.is_some_and(|p| p.self_deaf),
            "self_mute": participant.is_some_and(|p| p.self_mute),
            "self_video": participant.is_some_and(|p| p.self_video),
            "self_stream": self.streams.is_live(user_id),
            "suppress": false,
            "request_to_speak_timestamp": null,
        })
    }
}

impl Actor for Calls {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(RING_SWEEP, |calls, ctx| {
            guard::<Self, _, _>("calls", ctx, |_| calls.sweep_rings(Instant::now()));
        });
    }
}

/// Restarted after a failure with the calls it held (the struct survives a restart).
impl Supervised for Calls {}

impl Handler<UpdateCall> for Calls {
    type Result = ();
    fn handle(&mut self, update: UpdateCall, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("calls", ctx, |_| self.update(update));
    }
}

impl Handler<RoomMoved> for Calls {
    type Result = ();
    fn handle(&mut self, moved: RoomMoved, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("calls", ctx, |_| {
            if let RoomKey::Call { channel_id } = moved.room {
                self.room_moved(channel_id, moved.endpoint.as_deref());
            }
        });
    }
}

/// VOICE_SERVER_UPDATE for a call's participant (a null token and endpoint: wait for the next).
fn server_update(session: &Sink, channel_id: i64, token: Option<&str>, endpoint: Option<&str>) {
    let server = json!({
        "token": token,
        "guild_id": null,
        "channel_id": channel_id.to_string(),
        "endpoint": endpoint,
    });
    match Dispatch::new(EventName::VoiceServerUpdate, &server) {
        Ok(dispatch) => session.do_send(Deliver(dispatch)),
        Err(error) => tracing::error!(%error, "VOICE_SERVER_UPDATE did not serialise"),
    }
}

impl Handler<Ring> for Calls {
    type Result = ();
    fn handle(&mut self, request: Ring, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("calls", ctx, |_| {
            let command = OwnerCall::Ring {
                user_id: request.user_id,
                recipients: request.recipients,
                ring: request.ring,
                channel_recipients: request.channel_recipients,
            };
            self.ask_owner(request.channel_id, command);
        });
    }
}

impl Handler<UseBus> for Calls {
    type Result = ();
    fn handle(&mut self, UseBus { node_id, bus }: UseBus, _: &mut Context<Self>) {
        self.node_id = node_id;
        self.bus = Some(bus);
    }
}

impl Handler<Owned> for Calls {
    type Result = ();
    fn handle(
        &mut self,
        Owned {
            channel_id,
            command,
        }: Owned,
        ctx: &mut Context<Self>,
    ) {
        guard::<Self, _, _>("calls", ctx, |_| {
            self.own(channel_id, command);
            // Also when nothing changed: a call that does not exist (any more) ends its lease.
            self.persist(channel_id);
        });
    }
}

impl Handler<Adopt> for Calls {
    type Result = ();
    fn handle(&mut self, adopt: Adopt, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("calls", ctx, |_| {
            self.adopt(adopt.channel_id, adopt.stored, &adopt.live);
        });
    }
}

impl Handler<Disown> for Calls {
    type Result = ();
    fn handle(&mut self, Disown { channel_id }: Disown, _: &mut Context<Self>) {
        if self.calls.remove(&channel_id).is_some() {
            tracing::warn!(
                channel_id,
                "this node lost the call's lease: no longer its owner"
            );
        }
    }
}

impl Handler<SeatArrived> for Calls {
    type Result = ();
    fn handle(&mut self, SeatArrived(command): SeatArrived, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("calls", ctx, |_| self.seat(command));
    }
}

impl Handler<Prune> for Calls {
    type Result = ();
    fn handle(&mut self, Prune { live }: Prune, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("calls", ctx, |_| {
            let owned: Vec<i64> = self.calls.keys().copied().collect();
            for channel_id in owned {
                self.prune(channel_id, &live);
            }
        });
    }
}

impl Handler<SeatedElsewhere> for Calls {
    type Result = MessageResult<SeatedElsewhere>;
    fn handle(&mut self, _: SeatedElsewhere, _: &mut Context<Self>) -> Self::Result {
        let mut channels: Vec<i64> = self
            .seats
            .values()
            .map(|seat| seat.channel_id)
            .filter(|channel_id| !self.calls.contains_key(channel_id))
            .collect();
        channels.sort_unstable();
        channels.dedup();
        MessageResult(channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_of(recipients: &[i64]) -> Call {
        Call {
            recipients: recipients.to_vec(),
            participants: HashMap::new(),
            ringing: Vec::new(),
            streams: Streams::default(),
        }
    }

    fn rung(call: &Call) -> Vec<i64> {
        call.ringing.iter().map(|(user, _)| *user).collect()
    }

    #[test]
    fn a_stored_call_comes_back_as_it_was() {
        let mut call = call_of(&[1, 2, 3]);
        let participant = Participant {
            session_id: Arc::from("s1"),
            node: Arc::from("node-a"),
            endpoint: "host:1/voice".to_owned(),
            self_mute: true,
            self_deaf: false,
            self_video: false,
        };
        call.participants.insert(1, participant);
        let rung_at = Instant::now() - RING_FOR / 2;
        call.ring(&[2], rung_at);
        let bytes = serde_json::to_vec(&call.stored()).unwrap();
        let back = Call::from(serde_json::from_slice::<StoredCall>(&bytes).unwrap());
        assert_eq!(back.recipients, [1, 2, 3]);
        let p = &back.participants[&1];
        assert_eq!(
            (&*p.session_id, &*p.node, p.self_mute),
            ("s1", "node-a", true)
        );
        assert_eq!(rung(&back), [2]);
        // The ring keeps its age: it runs out when it would have.
        let restored = back.ringing[0].1;
        let skew = restored.max(rung_at) - restored.min(rung_at);
        assert!(skew < Duration::from_millis(50), "{skew:?}");
        let mut back = back;
        assert!(back.expire_rings(rung_at + RING_FOR + Duration::from_millis(100)));
    }

    #[test]
    fn only_recipients_are_rung_and_rings_run_out() {
        let start = Instant::now();
        let mut call = call_of(&[1, 2, 3]);
        assert!(call.ring(&[2, 9], start), "9 is no recipient");
        assert_eq!(rung(&call), [2]);
        // Rung again later: the ring starts over, and nobody new is rung.
        let later = start + RING_FOR / 2;
        assert!(!call.ring(&[2], later));
        assert!(call.ring(&[3], start));
        assert!(!call.expire_rings(later + RING_FOR / 4));
        assert!(call.expire_rings(start + RING_FOR));
        assert_eq!(rung(&call), [2], "3 ran out; 2 was rung again");
        assert!(call.stop_ringing(&[2]));
        assert!(!call.stop_ringing(&[2]), "declining twice changes nothing");
        assert!(rung(&call).is_empty());
    }
}
