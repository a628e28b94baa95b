//! The session registry: which gateway sessions are live, by session id and by user, so that
//! user-scoped events (USER_UPDATE, and later DMs and relationships) reach all of a user's
//! sessions, and so that a user joining a guild has all their sessions subscribed to it.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult, Recipient, Supervised};

use crate::dispatch::{Deliver, Dispatch};
use crate::guild::{GuildRegistry, Subscribe, SubscribeUser};
use crate::supervisor::guard;

pub struct SessionRegistry {
    guilds: Addr<GuildRegistry>,
    sessions: HashMap<Arc<str>, Live>,
    by_user: HashMap<i64, Vec<Arc<str>>>,
}

/// A live gateway session: where to deliver, how to end it, and which login it belongs to.
struct Live {
    login_id: i64,
    recipient: Recipient<Deliver>,
    terminate: Recipient<Terminate>,
}

impl SessionRegistry {
    pub fn new(guilds: Addr<GuildRegistry>) -> Self {
        Self {
            guilds,
            sessions: HashMap::new(),
            by_user: HashMap::new(),
        }
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;
}

/// After a restart the registry keeps its maps: the sessions in them are still connected.
impl Supervised for SessionRegistry {}

/// A session reached READY.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub session_id: Arc<str>,
    pub user_id: i64,
    pub login_id: i64,
    pub recipient: Recipient<Deliver>,
    pub terminate: Recipient<Terminate>,
}

/// Tells a session to close with a gateway close code (4004 when its login ended).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Terminate(pub crate::session::protocol::CloseCode);

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
                recipient: register.recipient,
                terminate: register.terminate,
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
            let ids = self.by_user.get(&event.user_id).into_iter().flatten();
            for live in ids.filter_map(|id| self.sessions.get(id)) {
                live.recipient.do_send(Deliver(event.dispatch.clone()));
            }
        });
    }
}

impl Handler<SubscribeUser> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, join: SubscribeUser, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            for id in self.by_user.get(&join.user_id).into_iter().flatten() {
                if let Some(live) = self.sessions.get(id) {
                    self.guilds.do_send(Subscribe {
                        guild_id: join.guild_id,
                        session_id: id.clone(),
                        user_id: join.user_id,
                        recipient: live.recipient.clone(),
                    });
                }
            }
        });
    }
}

impl Handler<LoginsEnded> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, ended: LoginsEnded, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            let ids = self.by_user.get(&ended.user_id).into_iter().flatten();
            for live in ids.filter_map(|id| self.sessions.get(id)) {
                let gone = ended.login_id.is_none_or(|id| id == live.login_id)
                    && ended.keep != Some(live.login_id);
                if gone {
                    live.terminate.do_send(Terminate(
                        crate::session::protocol::CloseCode::AuthenticationFailed,
                    ));
                }
            }
        });
    }
}

impl Handler<SessionCount> for SessionRegistry {
    type Result = MessageResult<SessionCount>;
    fn handle(&mut self, _: SessionCount, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.sessions.len())
    }
}
