//! The session registry: which gateway sessions are live, by session id and by user, so that
//! user-scoped events (USER_UPDATE, DMs, relationships) reach all of a user's sessions, a user
//! joining a guild has all their sessions subscribed to it, RESUME finds its session, and a
//! login that ends takes its sessions with it.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult, Supervised};

use crate::dispatch::{Deliver, Dispatch};
use crate::guild::SubscribeUser;
use crate::session::protocol::CloseCode;
use crate::session::{End, Join, Reconnect, Session};
use crate::supervisor::guard;

#[derive(Default)]
pub struct SessionRegistry {
    sessions: HashMap<Arc<str>, Live>,
    by_user: HashMap<i64, Vec<Arc<str>>>,
}

/// A live session and the login it belongs to.
struct Live {
    login_id: i64,
    session: Addr<Session>,
}

impl SessionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    fn of_user(&self, user_id: i64) -> impl Iterator<Item = (&Arc<str>, &Live)> {
        let ids = self.by_user.get(&user_id).into_iter().flatten();
        ids.filter_map(|id| self.sessions.get_key_value(id))
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;
}

/// After a restart the registry keeps its maps: the sessions in them are still live.
impl Supervised for SessionRegistry {}

/// A session reached READY.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub session_id: Arc<str>,
    pub user_id: i64,
    pub login_id: i64,
    pub session: Addr<Session>,
}

/// A session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub session_id: Arc<str>,
    pub user_id: i64,
}

/// Deliver a dispatch to every session of one user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DispatchToUser {
    pub user_id: i64,
    pub dispatch: Arc<Dispatch>,
}

/// The session a RESUME names, if it is still live.
#[derive(Message)]
#[rtype(result = "Option<Addr<Session>>")]
pub struct Find {
    pub session_id: String,
}

/// Logins of a user ended (logout, password change): their gateway sessions close with 4004.
/// `keep` names a login that stays (the one a password change just opened).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LoginsEnded {
    pub user_id: i64,
    /// `Some(id)`: only that login ended; `None`: all of the user's logins but `keep`.
    pub login_id: Option<i64>,
    pub keep: Option<i64>,
}

/// The server is shutting down: every client is told to reconnect and resume (op 7).
/// Answers how many sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ReconnectAll;

/// How many sessions are live.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct SessionCount;

impl Handler<Register> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, register: Register, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            self.by_user
                .entry(register.user_id)
                .or_default()
                .push(register.session_id.clone());
            let live = Live {
                login_id: register.login_id,
                session: register.session,
            };
            self.sessions.insert(register.session_id, live);
        });
    }
}

impl Handler<Unregister> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, gone: Unregister, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            self.sessions.remove(&gone.session_id);
            if let Some(ids) = self.by_user.get_mut(&gone.user_id) {
                ids.retain(|id| *id != gone.session_id);
                if ids.is_empty() {
                    self.by_user.remove(&gone.user_id);
                }
            }
        });
    }
}

impl Handler<DispatchToUser> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, event: DispatchToUser, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            for (_, live) in self.of_user(event.user_id) {
                live.session.do_send(Deliver(event.dispatch.clone()));
            }
        });
    }
}

impl Handler<SubscribeUser> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, join: SubscribeUser, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            // Each session subscribes itself, if the guild is of its shard.
            for (_, live) in self.of_user(join.user_id) {
                live.session.do_send(Join {
                    guild_id: join.guild_id,
                });
            }
        });
    }
}

impl Handler<Find> for SessionRegistry {
    type Result = Option<Addr<Session>>;
    fn handle(&mut self, find: Find, _: &mut Context<Self>) -> Self::Result {
        self.sessions
            .get(find.session_id.as_str())
            .map(|live| live.session.clone())
    }
}

impl Handler<LoginsEnded> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, ended: LoginsEnded, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            for (_, live) in self.of_user(ended.user_id) {
                let gone = ended.login_id.is_none_or(|id| id == live.login_id)
                    && ended.keep != Some(live.login_id);
                if gone {
                    live.session.do_send(End(CloseCode::AuthenticationFailed));
                }
            }
        });
    }
}

impl Handler<ReconnectAll> for SessionRegistry {
    type Result = MessageResult<ReconnectAll>;
    fn handle(&mut self, _: ReconnectAll, _: &mut Context<Self>) -> Self::Result {
        for live in self.sessions.values() {
            live.session.do_send(Reconnect);
        }
        MessageResult(self.sessions.len())
    }
}

impl Handler<SessionCount> for SessionRegistry {
    type Result = MessageResult<SessionCount>;
    fn handle(&mut self, _: SessionCount, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.sessions.len())
    }
}
