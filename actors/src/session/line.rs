//! A session's dispatches on their way to its connection. Whoever has a dispatch for the session
//! (a guild's actor, the registry, the session itself) admits it through the session's filter,
//! numbers it, keeps it for RESUME and hands it to the connection's outlet in one step, under one
//! lock. Going through the session actor's mailbox instead cost every delivery an envelope and
//! a wake-up and poll of one more task.
//!
//! The lock is what keeps a session's numbering in order: a dispatch gets its sequence number
//! and its place in the connection's queue together, whoever sends it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::dev::SendError;
use actix::WeakRecipient;

use super::handover::Pending;
use super::protocol::CloseCode;
use super::replay::ReplayBuffer;
use super::{Detach, Outbound, SessionConfig};
use crate::dispatch::{Deliveries, Dispatch};
use crate::event_name::EventName;
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
    /// The session, told when a connection too far behind is let go (it then waits for a
    /// RESUME). Weak: the session owns its line, not the other way round.
    session: Option<WeakRecipient<Detach>>,
    /// See [`SessionConfig::outbound_bytes`].
    budget: usize,
    /// Guilds just joined, with what their actors sent before the session passed on the
    /// guild's GUILD_CREATE (which comes through the session's mailbox): held, so that the
    /// client hears of the guild before anything in it.
    joining: Vec<(i64, Vec<Arc<Dispatch>>)>,
}

/// A joined guild's dispatches held at most (then they go out, GUILD_CREATE or not).
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
    /// Holds the guild's dispatches until [`State::joined`] (see `joining`).
    pub(super) fn join(&mut self, guild_id: i64) {
        if !self.joining.iter().any(|(id, _)| *id == guild_id) {
            self.joining.push((guild_id, Vec::new()));
        }
    }

    /// The guild's GUILD_CREATE went out (or never will): what was held for it follows.
    /// `None`: every guild joining.
    pub(super) fn joined(&mut self, guild_id: Option<i64>) {
        let (released, kept) = std::mem::take(&mut self.joining)
            .into_iter()
            .partition(|(id, _)| guild_id.is_none_or(|g| g == *id));
        self.joining = kept;
        let released: Vec<(i64, Vec<Arc<Dispatch>>)> = released;
        for dispatch in released.into_iter().flat_map(|(_, held)| held) {
            self.deliver(dispatch);
        }
    }

    /// Keeps `dispatch` back if it belongs to a guild joining; true if kept.
    fn hold(&mut self, dispatch: &Arc<Dispatch>) -> bool {
        let (Some(guild_id), false) = (
            dispatch.guild_id(),
            dispatch.event() == EventName::GuildCreate,
        ) else {
            return false;
        };
        let Some(index) = self.joining.iter().position(|(id, _)| *id == guild_id) else {
            return false;
        };
        self.joining[index].1.push(dispatch.clone());
        if self.joining[index].1.len() >= HELD_AT_MOST {
            self.joined(Some(guild_id));
        }
        true
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
        self.seq += 1;
        self.replay.push(self.seq, dispatch.clone());
        let Some((connection_id, connection)) = &self.connection else {
            return;
        };
        let over_budget = connection.over(dispatch.data().len(), self.budget);
        let outbound = Outbound::Dispatch {
            seq: self.seq,
            dispatch,
        };
        if over_budget || matches!(connection.try_send(outbound), Err(SendError::Full(_))) {
            tracing::info!(parent: connection.span(), "client not reading; disconnected");
            connection.do_send(Outbound::Close(CloseCode::UnknownError));
            let connection_id = *connection_id;
            self.connection = None;
            if let Some(session) = self.session.as_ref().and_then(WeakRecipient::upgrade) {
                session.do_send(Detach { connection_id });
            }
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
        (Line::new(filter, config, Some((7, outlet)), None), drain)
    }

    #[test]
    fn deliveries_are_numbered_after_what_the_session_sent_and_kept_for_resume() {
        let config = config(16, 1 << 20);
        let (line, mut drain) = line(&config, Filter::everything(1));
        line.state().send_owed(message(10));
        line.deliver(message(10));
        line.deliver(message(10));
        assert_eq!(sent(&mut drain), vec![1, 2, 3]);
        let kept: Vec<u64> = line.state().replay.kept().map(|(seq, _, _)| seq).collect();
        assert_eq!(kept, vec![2, 3], "READY and the like are never replayed");
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

    #[test]
    fn another_connections_end_is_not_this_ones() {
        let config = config(16, 1 << 20);
        let (line, _drain) = line(&config, Filter::everything(1));
        assert!(!line.state().let_go(8));
        assert!(line.state().let_go(7));
        assert!(line.state().connection.is_none());
    }
}
