//! The root of the supervision tree: starts the long-lived actors under `actix::Supervisor`
//! and hands out their addresses. Gateway sessions are started per WebSocket by the server
//! and find these through the addresses given here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, Supervisor};

use crate::call::Calls;
use crate::guild::{GuildRegistry, GuildStore};
use crate::interest::Interest;
use crate::presence::Board;
use crate::registry::SessionRegistry;
use crate::rooms::{RoomPorts, Rooms};
use crate::session::Session;
use crate::voice::{Admissions, Media, Voice};

#[derive(Clone)]
pub struct Tree {
    pub sessions: Addr<SessionRegistry>,
    pub guilds: Addr<GuildRegistry>,
    /// The live calls of DMs and group DMs.
    pub calls: Addr<Calls>,
    /// Who may connect to which voice room: written by the gateway, read by the voice gateway.
    pub admissions: Admissions,
    /// The voice gateway's rooms and the media runtime.
    pub voice: Voice,
    /// The live rooms of the rooms service (`/rooms/ws`), on the same media runtime.
    pub rooms: Addr<Rooms>,
    /// Cluster mode: events also come from other nodes (see [`Interest::shared`]).
    pub shared: bool,
    /// Where gateway sessions run.
    pub session_threads: SessionThreads,
}

/// Arbiters for gateway session actors, apart from the HTTP workers. A socket's connection
/// actor runs on the HTTP worker that accepted it, and so do REST requests: a session on that
/// worker too would put its share of every fan-out (sequence, replay buffer, the hand-over to
/// its connection) ahead of the requests there. With none, a session runs where it starts.
#[derive(Clone, Default)]
pub struct SessionThreads {
    arbiters: Arc<[ArbiterHandle]>,
    next: Arc<AtomicUsize>,
}

impl SessionThreads {
    /// `threads` arbiters of their own (none: sessions run on their sockets' workers).
    pub fn new(threads: usize) -> Self {
        Self {
            arbiters: (0..threads).map(|_| Arbiter::new().handle()).collect(),
            next: Arc::default(),
        }
    }

    /// Starts `session` on the next arbiter, in turn.
    pub fn start(&self, session: Session) -> Addr<Session> {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        match self.arbiters.get(next % self.arbiters.len().max(1)) {
            Some(arbiter) => Session::start_in_arbiter(arbiter, move |_| session),
            None => session.start(),
        }
    }
}

impl Tree {
    /// Starts the tree on the current actix system; guild actors get `guild_threads` arbiters,
    /// voice rooms use `media`; `interest` is where guilds and sessions say which events they
    /// need from other nodes, `board` where presences are shared with them; `rooms` is what the
    /// rooms service's registry asks and tells (its directory and observer); gateway sessions
    /// run on `session_threads`.
    pub fn start(
        store: Arc<dyn GuildStore>,
        interest: Arc<dyn Interest>,
        board: Arc<dyn Board>,
        guild_threads: usize,
        media: Media,
        rooms: RoomPorts,
        session_threads: SessionThreads,
    ) -> Self {
        let admissions = Admissions::default();
        let guild_admissions = admissions.clone();
        let guild_interest = interest.clone();
        let guilds = Supervisor::start(move |_| {
            GuildRegistry::new(store, guild_interest, guild_threads, guild_admissions)
        });
        let shared = interest.shared();
        let registry_guilds = guilds.clone();
        let sessions = Supervisor::start(move |_| {
            SessionRegistry::with_guilds(registry_guilds.clone(), interest.clone(), board.clone())
        });
        let (call_sessions, call_admissions) = (sessions.clone(), admissions.clone());
        Self {
            calls: Supervisor::start(move |_| Calls::new(call_sessions, call_admissions)),
            sessions,
            guilds,
            admissions,
            rooms: {
                let media = media.clone();
                Supervisor::start(move |_| Rooms::new(media.clone(), rooms.clone()))
            },
            voice: Voice::start(media),
            shared,
            session_threads,
        }
    }
}
