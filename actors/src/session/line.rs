//! A session's dispatches on their way to its connection. Whoever has a dispatch for the session
//! (a guild's actor, the registry, the session itself) admits it through the session's filter,
//! numbers it, keeps it for RESUME and hands it to the connection's outlet in one step, under one
//! lock. Going through the session actor's mailbox instead cost every delivery an envelope and
//! a wake-up and poll of one more task.
//!
//! The lock is what keeps a session's numbering in order: a dispatch gets its sequence number
//! and its place in the connection's queue together, whoever sends it. What must come first is
//! held on the line meanwhile: READY before any live dispatch, a guild's GUILD_CREATE before
//! anything in it (see [`Line::join`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::dev::SendError;
use actix::WeakRecipient;

use super::handover::Pending;
use super::protocol::CloseCode;
use super::replay::ReplayBuffer;
use super::{Detach, Outbound, SessionConfig};
use crate::dispatch::{Deliveries, Dispatch};
use crate::intents::Filter;
use crate::outlet::Outlet;

pub struct Line {
    state: Mutex<State>,
    /// Set once the session has ended: nothing more is delivered, and senders forget it.
    ended: AtomicBool,
}

/// What the lock guards.
pub(super) struct State {
    filter: Filter,
    /// The last sequence number given.
    pub(super) seq: u64,
    pub(super) replay: ReplayBuffer,
    /// The connection speaking for the session, by id; `None` while the client is away.
    pub(super) connection: Option<(u64, Outlet<Outbound>)>,
    /// A copy taken over from another node, until that node releases the session: what it
    /// hears meanwhile (see [`super::handover`]).
    pub(super) pending: Option<Pending>,
    /// Live dispatches that came before the session sent READY (see [`State::opened`]): held,
    /// so READY is first. Guilds and the registry deliver as soon as they know the session,
    /// which READY may wait for a while (cluster mode: until this node hears its guilds).
    opening: Option<Vec<Arc<Dispatch>>>,
    /// The session, told when a connection too far behind is let go (it then waits for a
    /// RESUME). Weak: the session owns its line, not the other way round.
    session: Option<WeakRecipient<Detach>>,
    /// See [`SessionConfig::outbound_bytes`].
    budget: usize,
    /// Guilds just joined that the session does not hear yet (see [`Line::join`]).
    joining: Vec<Joining>,
}

/// A guild just joined: its GUILD_CREATE and what else of it came since, held.
struct Joining {
    guild_id: i64,
    /// Joins of it the session has not heard yet (a quick leave and join again makes two).
    waiting: usize,
    held: Vec<Arc<Dispatch>>,
}

/// Live dispatches held for a session until READY is out, at most (shared: a pointer each).
const OPENING_AT_MOST: usize = 4096;

/// A joined guild's dispatches held at most (then they go out, heard or not).
const HELD_AT_MOST: usize = 256;

impl Line {
    pub(super) fn new(
        filter: Filter,
        config: &SessionConfig,
        connection: Option<(u64, Outlet<Outbound>)>,
        pending: Option<Pending>,
    ) -> Self {
        let replay = ReplayBuffer::new(
            config.resume_buffer,
            config.outbound_bytes,
            config.resume_window,
        );
        Self {
            state: Mutex::new(State {
                filter,
                seq: 0,
                replay,
                connection,
                pending,
                opening: Some(Vec::new()),
                session: None,
                budget: config.outbound_bytes,
                joining: Vec::new(),
            }),
            ended: AtomicBool::new(false),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// The session that owns this line (once it runs).
    pub(super) fn owned_by(&self, session: WeakRecipient<Detach>) {
        self.state().session = Some(session);
    }

    /// The session is over: nothing is delivered any more.
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        let mut state = self.state();
        state.connection = None;
        state.pending = None;
    }

    /// The session's user joined a guild: its GUILD_CREATE (if the filter admits it) and
    /// whatever of the guild follows wait until [`State::joined`], when the session hears the
    /// guild (in cluster mode, once this node does). A client told of the guild then misses
    /// nothing published in it after, and hears of the guild before anything in it, even
    /// though the guild's actor may deliver before the session passes the join on.
    pub(crate) fn join(&self, guild_id: i64, dispatch: Arc<Dispatch>) {
        if self.ended.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.state();
        let admitted = state.filter.admit(&dispatch);
        let index = match state.joining.iter().position(|j| j.guild_id == guild_id) {
            Some(index) => index,
            None => {
                state.joining.push(Joining {
                    guild_id,
                    waiting: 0,
                    held: Vec::new(),
                });
                state.joining.len() - 1
            }
        };
        let joining = &mut state.joining[index];
        joining.waiting += 1;
        joining.held.extend(admitted);
    }
}

impl Deliveries for Line {
    /// A live dispatch, if the session's intents and shard admit it.
    fn deliver(&self, dispatch: Arc<Dispatch>) {
        if self.ended.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.state();
        if let Some(dispatch) = state.filter.admit(&dispatch) {
            if !state.hold(&dispatch) {
                state.deliver(dispatch);
            }
        }
    }

    fn connected(&self) -> bool {
        !self.ended.load(Ordering::Relaxed)
    }
}

impl State {
    /// The session hears a guild it joined (or gave up waiting): what was held for that join
    /// goes out, once no other join of the guild waits.
    pub(super) fn joined(&mut self, guild_id: i64) {
        let Some(index) = self.joining.iter().position(|j| j.guild_id == guild_id) else {
            return;
        };
        let joining = &mut self.joining[index];
        joining.waiting = joining.waiting.saturating_sub(1);
        if joining.waiting == 0 {
            self.release(index);
        }
    }

    fn release(&mut self, index: usize) {
        for dispatch in self.joining.remove(index).held {
            self.deliver(dispatch);
        }
    }

    /// Keeps `dispatch` back if it belongs to a guild joining; true if kept.
    fn hold(&mut self, dispatch: &Arc<Dispatch>) -> bool {
        let Some(guild_id) = dispatch.guild_id() else {
            return false;
        };
        let Some(index) = self.joining.iter().position(|j| j.guild_id == guild_id) else {
            return false;
        };
        self.joining[index].held.push(dispatch.clone());
        if self.joining[index].held.len() >= HELD_AT_MOST {
            self.release(index);
        }
        true
    }

    /// READY and its followers are out: what came before them follows.
    pub(super) fn opened(&mut self) {
        for dispatch in self.opening.take().into_iter().flatten() {
            self.deliver(dispatch);
        }
    }

    /// Sends what the session starts with or answers (READY and its followers, RESUMED):
    /// never refused, and never kept for RESUME.
    pub(super) fn send_owed(&mut self, dispatch: Arc<Dispatch>) {
        self.seq += 1;
        if let Some((_, connection)) = &self.connection {
            connection.do_send(Outbound::Owed {
                seq: self.seq,
                dispatch,
            });
        }
    }

    /// Sends a live dispatch (admitted already), kept for RESUME. A client so far behind that
    /// its connection's queue is full is let go: it gets the dispatches it missed when it
    /// resumes.
    pub(super) fn deliver(&mut self, dispatch: Arc<Dispatch>) {
        if let Some(pending) = &mut self.pending {
            return pending.push(dispatch);
        }
        if let Some(opening) = &mut self.opening {
            if opening.len() < OPENING_AT_MOST {
                return opening.push(dispatch);
            }
            // READY waits while the session's guilds are this busy: the client starts over.
            self.opening = None;
            return self.disconnect("too much waited for READY");
        }
        self.seq += 1;
        self.replay.push(self.seq, dispatch.clone());
        let Some((_, connection)) = &self.connection else {
            return;
        };
        let over_budget = connection.over(dispatch.data().len(), self.budget);
        let outbound = Outbound::Dispatch {
            seq: self.seq,
            dispatch,
        };
        if over_budget || matches!(connection.try_send(outbound), Err(SendError::Full(_))) {
            self.disconnect("client not reading");
        }
    }

    /// Closes the session's connection with 4000 and tells the session, which then waits for a
    /// RESUME.
    fn disconnect(&mut self, why: &str) {
        let Some((connection_id, connection)) = self.connection.take() else {
            return;
        };
        tracing::info!(parent: connection.span(), why, "disconnected");
        connection.do_send(Outbound::Close(CloseCode::UnknownError));
        if let Some(session) = self.session.as_ref().and_then(WeakRecipient::upgrade) {
            session.do_send(Detach { connection_id });
        }
    }

    /// The connection `connection_id` is gone: true if it was the session's (or the session had
    /// none left), which then waits for a RESUME.
    pub(super) fn let_go(&mut self, connection_id: u64) -> bool {
        match &self.connection {
            Some((id, _)) if *id == connection_id => {
                self.connection = None;
                true
            }
            Some(_) => false,
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use futures_util::task::noop_waker_ref;
    use futures_util::Stream;

    use super::*;
    use crate::event_name::EventName;
    use crate::intents::bits;
    use crate::outlet::Drain;

    fn config(outbound_queue: usize, outbound_bytes: usize) -> SessionConfig {
        SessionConfig {
            heartbeat_interval: Duration::from_secs(40),
            heartbeat_grace: Duration::from_secs(20),
            identify_timeout: Duration::from_secs(30),
            max_frame_bytes: 4096,
            resume_window: Duration::from_secs(60),
            resume_buffer: 100,
            commands_per_minute: 120,
            outbound_queue,
            outbound_bytes,
            min_large_threshold: 50,
        }
    }

    fn message(bytes: usize) -> Arc<Dispatch> {
        let data = format!("\"{}\"", "m".repeat(bytes.saturating_sub(2)));
        Arc::new(Dispatch::from_json(EventName::MessageCreate, data.into()).in_guild(1))
    }

    /// What the connection has been sent: sequence numbers of dispatches, 0 for a close.
    fn sent(drain: &mut Drain<Outbound>) -> Vec<u64> {
        let mut cx = Context::from_waker(noop_waker_ref());
        match Pin::new(drain).poll_next(&mut cx) {
            Poll::Ready(Some(batch)) => batch
                .into_iter()
                .map(|outbound| match outbound {
                    Outbound::Dispatch { seq, .. } | Outbound::Owed { seq, .. } => seq,
                    Outbound::Close(_) | Outbound::Reconnect => 0,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn line(config: &SessionConfig, filter: Filter) -> (Line, Drain<Outbound>) {
        let (outlet, drain) = Outlet::queue(config.outbound_queue, tracing::Span::none());
        let line = Line::new(filter, config, Some((7, outlet)), None);
        line.state().opened();
        (line, drain)
    }

    #[test]
    fn deliveries_are_numbered_after_what_the_session_sent_and_kept_for_resume() {
        let config = config(16, 1 << 20);
        let (outlet, mut drain) = Outlet::queue(config.outbound_queue, tracing::Span::none());
        let line = Line::new(Filter::everything(1), &config, Some((7, outlet)), None);
        line.deliver(message(10));
        line.deliver(message(10));
        assert_eq!(sent(&mut drain), Vec::<u64>::new(), "nothing before READY");
        line.state().send_owed(message(10));
        line.state().opened();
        assert_eq!(sent(&mut drain), vec![1, 2, 3]);
        let kept: Vec<u64> = line.state().replay.kept().map(|(seq, _, _)| seq).collect();
        assert_eq!(kept, vec![2, 3], "READY and the like are never replayed");
    }

    #[test]
    fn a_session_whose_ready_waits_behind_too_much_is_closed() {
        let config = config(16, 1 << 20);
        let (outlet, mut drain) = Outlet::queue(config.outbound_queue, tracing::Span::none());
        let line = Line::new(Filter::everything(1), &config, Some((7, outlet)), None);
        for _ in 0..OPENING_AT_MOST {
            line.deliver(message(10));
        }
        assert_eq!(sent(&mut drain), Vec::<u64>::new(), "held for READY");
        line.deliver(message(10));
        assert_eq!(sent(&mut drain), vec![0], "closed, nothing sent");
        assert!(line.state().connection.is_none());
    }

    #[test]
    fn what_the_filter_refuses_gets_no_number() {
        let config = config(16, 1 << 20);
        let mut filter = Filter::everything(1);
        filter.intents = bits::GUILDS;
        let (line, mut drain) = line(&config, filter);
        line.deliver(message(10));
        line.deliver(Arc::new(Dispatch::from_json(
            EventName::GuildUpdate,
            "{}".into(),
        )));
        assert_eq!(sent(&mut drain), vec![1]);
    }

    #[test]
    fn a_connection_too_far_behind_is_closed_and_the_rest_is_kept() {
        let config = config(16, 100);
        let (line, mut drain) = line(&config, Filter::everything(1));
        for _ in 0..4 {
            line.deliver(message(40));
        }
        assert_eq!(
            sent(&mut drain),
            vec![1, 2, 0],
            "the third is over 100 bytes"
        );
        assert!(line.state().connection.is_none());
        assert!(line.state().let_go(7), "nothing left to let go of");
        assert_eq!(line.state().seq, 4);
    }

    #[test]
    fn a_full_queue_closes_the_connection_too() {
        let config = config(2, 1 << 20);
        let (line, mut drain) = line(&config, Filter::everything(1));
        for _ in 0..3 {
            line.deliver(message(10));
        }
        assert_eq!(sent(&mut drain), vec![1, 2, 0]);
    }

    #[test]
    fn an_ended_line_hears_nothing() {
        let config = config(16, 1 << 20);
        let (line, mut drain) = line(&config, Filter::everything(1));
        assert!(line.connected());
        line.end();
        line.deliver(message(10));
        assert!(!line.connected());
        assert_eq!(sent(&mut drain), Vec::<u64>::new());
        assert_eq!(line.state().seq, 0);
    }

    fn of_guild(event: EventName, guild_id: i64) -> Arc<Dispatch> {
        Arc::new(Dispatch::from_json(event, "{}".into()).in_guild(guild_id))
    }

    #[test]
    fn a_joined_guild_is_heard_of_before_anything_in_it() {
        let config = config(16, 1 << 20);
        let (line, mut drain) = line(&config, Filter::everything(1));
        line.join(1, of_guild(EventName::GuildCreate, 1));
        line.deliver(message(10));
        line.deliver(of_guild(EventName::MessageCreate, 2));
        line.deliver(Arc::new(Dispatch::from_json(
            EventName::UserUpdate,
            "{}".into(),
        )));
        assert_eq!(
            sent(&mut drain),
            vec![1, 2],
            "another guild's, the user's own"
        );
        line.state().joined(1);
        assert_eq!(sent(&mut drain), vec![3, 4]);
        let events: Vec<EventName> = line
            .state()
            .replay
            .kept()
            .map(|(_, _, dispatch)| dispatch.event())
            .collect();
        assert_eq!(
            events[2..],
            [EventName::GuildCreate, EventName::MessageCreate]
        );
        line.deliver(message(10));
        assert_eq!(sent(&mut drain), vec![5], "nothing held after");
    }

    #[test]
    fn a_guild_joined_twice_waits_for_both() {
        let config = config(16, 1 << 20);
        let (line, mut drain) = line(&config, Filter::everything(1));
        line.join(1, of_guild(EventName::GuildCreate, 1));
        line.deliver(of_guild(EventName::GuildDelete, 1));
        line.join(1, of_guild(EventName::GuildCreate, 1));
        line.state().joined(1);
        assert_eq!(sent(&mut drain), Vec::<u64>::new());
        line.state().joined(1);
        assert_eq!(sent(&mut drain), vec![1, 2, 3]);
    }

    #[test]
    fn a_joined_guild_holds_a_bounded_number() {
        let config = config(1024, 1 << 20);
        let (line, mut drain) = line(&config, Filter::everything(1));
        line.join(1, of_guild(EventName::GuildCreate, 1));
        for _ in 1..HELD_AT_MOST {
            line.deliver(message(10));
        }
        assert_eq!(sent(&mut drain).len(), HELD_AT_MOST);
        line.state().joined(1);
        line.deliver(message(10));
        assert_eq!(sent(&mut drain), vec![HELD_AT_MOST as u64 + 1]);
    }

    #[test]
    fn another_connections_end_is_not_this_ones() {
        let config = config(16, 1 << 20);
        let (line, _drain) = line(&config, Filter::everything(1));
        assert!(!line.state().let_go(8));
        assert!(line.state().let_go(7));
        assert!(line.state().connection.is_none());
    }
}
