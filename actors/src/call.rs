//! Calls in DMs and group DMs: one actor holds every live call (who is in it, who is still
//! being rung) and tells the channel's recipients through the session registry. A call starts
//! when its first participant joins with op 4 (`guild_id: null`) — CALL_CREATE rings the
//! others — changes with each join and leave (CALL_UPDATE), and ends with its last participant
//! (CALL_DELETE). Its voice room is [`RoomKey::Call`], its voice gateway `server_id` the
//! channel id. Participants go live in it as in a guild channel (`call:{c}:{u}` streams).
//! Ringing stops when the one rung joins, declines (`POST …/call/stop-ringing`), or after
//! [`RING_FOR`]; a participant may ring recipients again (`POST …/call/ring`).

use crate::event_name::EventName;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, Recipient, Supervised};
use serde_json::{json, Value};

use crate::dispatch::{Deliver, Dispatch};
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

/// A participant of a call.
struct Participant {
    session_id: Arc<str>,
    /// Their session, for the events only it gets (VOICE_SERVER_UPDATE, the STREAM_* events).
    session: Recipient<Deliver>,
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

/// Op 4 in a DM or group DM the user is a recipient of (checked by the session's backend).
#[derive(Debug)]
pub struct CallJoin {
    pub session_id: Arc<str>,
    /// Where VOICE_SERVER_UPDATE goes: the joining session only.
    pub session: Recipient<Deliver>,
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

pub struct Calls {
    sessions: Addr<SessionRegistry>,
    admissions: Admissions,
    calls: HashMap<i64, Call>,
}

impl Calls {
    pub fn new(sessions: Addr<SessionRegistry>, admissions: Admissions) -> Self {
        Self {
            sessions,
            admissions,
            calls: HashMap::new(),
        }
    }

    fn update(&mut self, update: UpdateCall) {
        let UpdateCall {
            channel_id,
            user_id,
            change,
        } = update;
        match change {
            CallChange::Join(join) => self.join(channel_id, user_id, join),
            CallChange::SessionLeft { session_id } => {
                let theirs = self
                    .calls
                    .get(&channel_id)
                    .and_then(|call| call.participants.get(&user_id))
                    .is_some_and(|p| p.session_id == session_id);
                if theirs {
                    self.leave(channel_id, user_id);
                }
            }
            CallChange::Stream(change) => self.stream(channel_id, user_id, change),
        }
    }

    /// Ops 18, 19, 20 and 22 in a call: only its participants, from the session in it, stream
    /// and watch.
    fn stream(&mut self, channel_id: i64, user_id: i64, change: StreamChange) {
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
            StreamChange::Create { session_id, .. } => {
                let Some(endpoint) = participant(&session_id) else {
                    return;
                };
                let mut notices = call.streams.end(user_id, Ended::Stopped, admissions);
                let key = GoLive::call_key(channel_id, user_id);
                let streamer = (user_id, session_id);
                notices.extend(call.streams.start(key, streamer, &endpoint, admissions));
                (notices, true)
            }
            StreamChange::Watch {
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
            StreamChange::Delete => (call.streams.end(user_id, Ended::Stopped, admissions), true),
            StreamChange::Paused { paused } => {
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

    /// Sends each STREAM_* event to the participant's session it is for.
    fn deliver(&self, channel_id: i64, notices: Vec<Notice>) {
        let Some(call) = self.calls.get(&channel_id) else {
            return;
        };
        for notice in notices {
            let Notice::Session {
                session_id,
                event,
                d,
            } = notice
            else {
                continue;
            };
            let session = call
                .participants
                .values()
                .find(|p| p.session_id == session_id);
            match (session, Dispatch::new(event, &d)) {
                (Some(participant), Ok(dispatch)) => participant.session.do_send(Deliver(dispatch)),
                (_, Err(error)) => tracing::error!(%error, %event, "call event did not serialise"),
                (None, _) => {}
            }
        }
    }

    fn join(&mut self, channel_id: i64, user_id: i64, join: CallJoin) {
        let started = !self.calls.contains_key(&channel_id);
        let call = self.calls.entry(channel_id).or_insert_with(|| {
            let mut call = Call {
                ringing: Vec::new(),
                recipients: join.recipients.clone(),
                participants: HashMap::new(),
                streams: Streams::default(),
            };
            let others: Vec<i64> = join
                .recipients
                .iter()
                .copied()
                .filter(|r| *r != user_id)
                .collect();
            call.ring(&others, Instant::now());
            call
        });
        call.recipients.clone_from(&join.recipients);
        call.stop_ringing(&[user_id]);
        let participant = Participant {
            session_id: join.session_id,
            session: join.session.clone(),
            endpoint: join.endpoint.clone(),
            self_mute: join.self_mute,
            self_deaf: join.self_deaf,
            self_video: join.self_video,
        };
        let flags = participant.flags();
        let session_id = participant.session_id.to_string();
        // A change of one's own flags needs no new connection; anything else does (the same
        // request again is a client reconnecting its voice connection).
        let reconnect = call
            .participants
            .get(&user_id)
            .is_none_or(|p| p.session_id != participant.session_id || p.flags() == flags);
        call.participants.insert(user_id, participant);
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
        let room = RoomKey::Call { channel_id };
        if !reconnect {
            self.admissions.set_flags(&room, user_id, flags);
            return;
        }
        let token = self
            .admissions
            .admit(channel_id.to_string(), user_id, session_id, room, flags);
        server_update(
            &join.session,
            channel_id,
            Some(&token),
            Some(&join.endpoint),
        );
    }

    /// Cluster mode: the node serving the call's room is gone (`None`), or serves it at
    /// `endpoint` now: each participant hears a null endpoint, or the new one with a new token.
    fn room_moved(&mut self, channel_id: i64, endpoint: Option<&str>) {
        let Some(call) = self.calls.get_mut(&channel_id) else {
            return;
        };
        let room = RoomKey::Call { channel_id };
        for (user_id, participant) in &mut call.participants {
            let token = endpoint.map(|endpoint| {
                endpoint.clone_into(&mut participant.endpoint);
                self.admissions.admit(
                    channel_id.to_string(),
                    *user_id,
                    participant.session_id.to_string(),
                    room.clone(),
                    participant.flags(),
                )
            });
            server_update(&participant.session, channel_id, token.as_deref(), endpoint);
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
        call.participants.remove(&user_id);
        self.admissions
            .dismiss(&RoomKey::Call { channel_id }, user_id);
        let ended = call.participants.is_empty();
        let recipients = call.recipients.clone();
        let call_d = call.to_json(channel_id);
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
    fn ring(&mut self, request: Ring) {
        let Ring {
            channel_id,
            user_id,
            recipients,
            ring,
            channel_recipients,
        } = request;
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

    /// Stops the rings that ran out ([`RING_FOR`]), telling each call's recipients.
    fn sweep_rings(&mut self, now: Instant) {
        let mut updates = Vec::new();
        for (channel_id, call) in &mut self.calls {
            if call.expire_rings(now) {
                updates.push((call.recipients.clone(), call.to_json(*channel_id)));
            }
        }
        for (recipients, d) in updates {
            self.tell(&recipients, EventName::CallUpdate, &d);
        }
    }

    /// Sends an event to every session of each recipient.
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
fn server_update(
    session: &Recipient<Deliver>,
    channel_id: i64,
    token: Option<&str>,
    endpoint: Option<&str>,
) {
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
        guard::<Self, _, _>("calls", ctx, |_| self.ring(request));
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
