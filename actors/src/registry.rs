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
    sessions: HashMap<Arc<str>, Recipient<Deliver>>,
    by_user: HashMap<i64, Vec<Arc<str>>>,
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
    pub recipient: Recipient<Deliver>,
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
            self.sessions
                .insert(register.session_id, register.recipient);
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
            for recipient in ids.filter_map(|id| self.sessions.get(id)) {
                recipient.do_send(Deliver(event.dispatch.clone()));
            }
        });
    }
}

impl Handler<SubscribeUser> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, join: SubscribeUser, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            for id in self.by_user.get(&join.user_id).into_iter().flatten() {
                if let Some(recipient) = self.sessions.get(id) {
                    self.guilds.do_send(Subscribe {
                        guild_id: join.guild_id,
                        session_id: id.clone(),
                        user_id: join.user_id,
                        recipient: recipient.clone(),
                    });
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
