//! A session moving to another node (cluster mode): a RESUME that reached a node other than the
//! session's home, or a node draining. The new node learns what the session is ([`Handover`]
//! without its dispatches), starts a copy that hears the session's guilds and user, and only then
//! has the home node release it: the copy then holds the home node's dispatches and its own,
//! those it heard meanwhile that the home node also kept counted once.
//!
//! Two nodes hearing the same events share no numbering of them (a node delivers its own events
//! before it publishes them), so the overlap is found by content: a dispatch the copy heard
//! that the home node kept in the same moments, byte for byte, is the same dispatch.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{ActorContext, Context, Handler, Message};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Line, Outbound, Session, SessionConfig};
use crate::dispatch::Dispatch;
use crate::event_name::EventName;
use crate::intents::Filter;
use crate::presence::{Platform, Presence, Status};
use crate::session::protocol::CloseCode;
use crate::Tree;

/// How much earlier than the copy started hearing a dispatch the home node kept may be and
/// still be one the copy heard too (the bus's delay between nodes, and the clocks' reading).
const OVERLAP_SLACK: Duration = Duration::from_secs(2);

/// What a session is, as its home node hands it to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Handover {
    pub session_id: String,
    pub user_id: i64,
    pub login_id: i64,
    pub filter: Filter,
    pub platform: Platform,
    pub status: Status,
    pub activities: Vec<serde_json::Value>,
    /// Every guild the user is in (the copy hears those of its shard) and their friends.
    pub guilds: Vec<i64>,
    pub friends: Vec<i64>,
    /// The last sequence number the session sent.
    pub seq: u64,
    /// What it kept for RESUME, oldest first (empty until released).
    pub replay: Vec<Kept>,
}

/// A dispatch kept for RESUME.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    pub seq: u64,
    /// How long before the handover it was sent.
    pub age_ms: u64,
    pub event: EventName,
    pub data: Bytes,
}

/// A session's dispatches heard on a new node before the home node released it.
#[derive(Default)]
pub(super) struct Pending {
    /// When the copy started hearing everything the session hears.
    hearing_since: Option<Instant>,
    heard: Vec<Arc<Dispatch>>,
}

impl Pending {
    pub(super) fn push(&mut self, dispatch: Arc<Dispatch>) {
        self.heard.push(dispatch);
    }
}

impl Session {
    /// A copy of a session another node hands over, not attached yet: it hears what the
    /// session hears and keeps it until [`Absorb`] brings the home node's dispatches.
    pub fn taken_over(handover: Handover, tree: Tree, config: Arc<SessionConfig>) -> Self {
        let line = Line::new(handover.filter, &config, None, Some(Pending::default()));
        let presence = Presence {
            status: handover.status,
            activities: handover.activities,
            platform: handover.platform,
        };
        Self {
            id: handover.session_id.into(),
            user_id: handover.user_id,
            login_id: handover.login_id,
            filter: handover.filter,
            tree,
            config,
            // Subscribing keeps those of its shard.
            guild_ids: handover.guilds.clone(),
            initial: Vec::new(),
            line: Arc::new(line),
            expiry: None,
            platform: handover.platform,
            presence: Some((presence, handover.guilds, handover.friends)),
            voice: None,
            released: false,
        }
    }

    /// This session as another node takes it (its presence is the registry's to add).
    fn handover(&self, replay: bool) -> Handover {
        let line = self.line.state();
        let replay = match replay {
            true => line
                .replay
                .kept()
                .map(|(seq, age, dispatch)| Kept {
                    seq,
                    age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                    event: dispatch.event(),
                    data: dispatch.data().clone(),
                })
                .collect(),
            false => Vec::new(),
        };
        Handover {
            session_id: self.id.to_string(),
            user_id: self.user_id,
            login_id: self.login_id,
            filter: self.filter,
            platform: self.platform,
            status: Status::Online,
            activities: Vec::new(),
            guilds: Vec::new(),
            friends: Vec::new(),
            seq: line.seq,
            replay,
        }
    }
}

/// The home node's side: describe the session (`release: false`), or hand it over with what
/// it kept and end it here without a word to its client (`release: true`).
#[derive(Message)]
#[rtype(result = "Handover")]
pub struct Export {
    pub release: bool,
}

impl Handler<Export> for Session {
    type Result = actix::MessageResult<Export>;
    fn handle(&mut self, export: Export, ctx: &mut Context<Self>) -> Self::Result {
        let handover = self.handover(export.release);
        if export.release {
            if let Some((_, connection)) = self.line.state().connection.take() {
                // A socket still open here speaks for a session that now lives elsewhere.
                connection.do_send(Outbound::Close(CloseCode::SessionTimedOut));
            }
            self.released = true;
            ctx.stop();
        }
        actix::MessageResult(handover)
    }
}

/// Answered once the copy hears everything the session hears (its guilds' and user's events
/// reach this node): from then on the home node may release it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Hearing;

impl Handler<Hearing> for Session {
    type Result = ();
    fn handle(&mut self, _: Hearing, _: &mut Context<Self>) {
        // Handled after `started`'s wait for hearing: everything from now on arrives here.
        if let Some(pending) = &mut self.line.state().pending {
            pending.hearing_since.get_or_insert_with(Instant::now);
        }
    }
}

/// The home node released the session: its last sequence number and what it kept.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Absorb(pub Handover);

impl Handler<Absorb> for Session {
    type Result = ();
    fn handle(&mut self, Absorb(released): Absorb, _: &mut Context<Self>) {
        // One lock: what guilds deliver meanwhile comes after all of it.
        let mut line = self.line.state();
        let Some(pending) = line.pending.take() else {
            return;
        };
        let window = pending
            .hearing_since
            .map_or(Duration::ZERO, |since| since.elapsed())
            + OVERLAP_SLACK;
        let now = Instant::now();
        let mut both = HashSet::new();
        line.seq = released.seq;
        for kept in released.replay {
            let age = Duration::from_millis(kept.age_ms);
            if age <= window {
                both.insert((kept.event, kept.data.clone()));
            }
            let dispatch = Dispatch::from_json(kept.event, kept.data);
            let at = now.checked_sub(age).unwrap_or(now);
            line.replay.push_at(kept.seq, at, Arc::new(dispatch));
        }
        for dispatch in pending.heard {
            if !both.contains(&(dispatch.event(), dispatch.data().clone())) {
                line.deliver(dispatch);
            }
        }
    }
}

/// The home node did not release the session after all: the copy ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abandon;

impl Handler<Abandon> for Session {
    type Result = ();
    fn handle(&mut self, _: Abandon, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
