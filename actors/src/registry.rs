//! The session registry: which gateway sessions are live, by session id and by user, so that
//! user-scoped events (USER_UPDATE, DMs, relationships) reach all of a user's sessions, a user
//! joining a guild has all their sessions subscribed to it, RESUME finds its session, and a
//! login that ends takes its sessions with it.
//!
//! It also keeps each live session's presence (see [`crate::presence`]): when a user's
//! aggregate presence changes (op 3, their first session starting, their last one ending) it
//! sends PRESENCE_UPDATE to each guild they are in, through the guild's actor (which hands it
//! to the guild's members), and to their friends.

use crate::event_name::EventName;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use actix::{
    Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Supervised, WrapFuture,
};
use tokio::sync::oneshot;

use crate::dispatch::{Deliver, Dispatch};
use crate::guild::{Audience, GuildRegistry, Publish, StateChange, SubscribeUser};
use crate::interest::{Interest, Topic};
use crate::presence::{Aggregate, Presence};
use crate::session::protocol::CloseCode;
use crate::session::{End, Join, Lost, Reconnect, Session};
use crate::supervisor::guard;

#[derive(Default)]
pub struct SessionRegistry {
    sessions: HashMap<Arc<str>, Live>,
    by_user: HashMap<i64, Vec<Arc<str>>>,
    /// Presences of users with a live session.
    presences: HashMap<i64, UserPresence>,
    /// Counts presence changes: the most recent session's activities are shown.
    clock: u64,
    /// Where guild presence updates go (none in unit tests of the registry alone).
    guilds: Option<Addr<GuildRegistry>>,
    /// Where the node says whose user events it needs from other nodes: those of users with a
    /// session here.
    interest: Option<Arc<dyn Interest>>,
}

/// What the registry knows of one online user's presence.
#[derive(Default)]
struct UserPresence {
    /// Each live session's presence, and when it last changed.
    sessions: HashMap<Arc<str>, (Presence, u64)>,
    /// Guilds they are in (as their sessions learnt at IDENTIFY, and joined since); a guild
    /// they left since is filtered out by its actor, which knows its members.
    guilds: HashSet<i64>,
    /// Their friends (relationship type 1), as of their sessions' IDENTIFY.
    friends: HashSet<i64>,
}

impl UserPresence {
    fn aggregate(&self) -> Aggregate {
        Aggregate::of(self.sessions.values().map(|(p, at)| (p, *at)))
    }
}

/// A live session and the login it belongs to.
struct Live {
    login_id: i64,
    session: Addr<Session>,
    /// When it registered (it heard everything after).
    since: SystemTime,
}

impl SessionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that sends presence updates to the guilds' actors through `guilds`.
    pub fn with_guilds(guilds: Addr<GuildRegistry>, interest: Arc<dyn Interest>) -> Self {
        Self {
            guilds: Some(guilds),
            interest: Some(interest),
            ..Self::default()
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Tells the user's guilds and friends their presence, if it is not what it was.
    fn presence_changed(&self, user_id: i64, before: &Aggregate) {
        let (after, guilds, friends) = match self.presences.get(&user_id) {
            Some(user) => (user.aggregate(), &user.guilds, &user.friends),
            None => return,
        };
        if after != *before {
            self.announce(user_id, &after, guilds, friends);
        }
    }

    fn announce(
        &self,
        user_id: i64,
        presence: &Aggregate,
        guilds: &HashSet<i64>,
        friends: &HashSet<i64>,
    ) {
        if let Some(registry) = &self.guilds {
            // For the guilds' member lists.
            let shown = (!presence.is_offline()).then(|| Arc::new(presence.to_json(user_id, None)));
            for &guild_id in guilds {
                let d = presence.to_json(user_id, Some(guild_id));
                match Dispatch::json(EventName::PresenceUpdate, &d) {
                    Ok(dispatch) => registry.do_send(Publish {
                        guild_id,
                        changes: vec![StateChange::Presence {
                            user_id,
                            presence: shown.clone(),
                        }],
                        dispatch: Some((
                            Arc::new(dispatch.in_guild(guild_id)),
                            Audience::PeersOf(user_id),
                        )),
                        deleted: false,
                    }),
                    Err(error) => tracing::error!(%error, "PRESENCE_UPDATE did not serialise"),
                }
            }
        }
        if friends.is_empty() {
            return;
        }
        self.tell_friends(friends.iter().copied(), &presence.to_json(user_id, None));
    }

    /// PRESENCE_UPDATE with `d` to every session of each of `friends`.
    fn tell_friends(&self, friends: impl IntoIterator<Item = i64>, d: &serde_json::Value) {
        match Dispatch::new(EventName::PresenceUpdate, d) {
            Ok(dispatch) => {
                for friend in friends {
                    for (_, live) in self.of_user(friend) {
                        live.session.do_send(Deliver(dispatch.clone()));
                    }
                }
            }
            Err(error) => tracing::error!(%error, "PRESENCE_UPDATE did not serialise"),
        }
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
    /// Its presence from IDENTIFY (or the user's settings).
    pub presence: Presence,
    /// Every guild the user is in (of any shard) and their friends: who hears their presence.
    pub guilds: Vec<i64>,
    pub friends: Vec<i64>,
    /// Answered once the user's events from other nodes reach this one; in cluster mode READY
    /// waits for it.
    pub heard: Option<oneshot::Sender<()>>,
}

/// A session's op 3 PRESENCE_UPDATE.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPresence {
    pub session_id: Arc<str>,
    pub user_id: i64,
    pub presence: Presence,
}

/// Two users became friends (`friends: true`) or stopped being friends: each hears the other's
/// presence from now on (at once, if the other is online), or no longer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Friendship {
    pub users: [i64; 2],
    pub friends: bool,
}

/// The presences READY lists: the user's own live sessions, and those of `of` (their friends)
/// who are online.
#[derive(Message)]
#[rtype(result = "Presences")]
pub struct GetPresences {
    pub user_id: i64,
    pub of: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct Presences {
    pub sessions: Vec<(Arc<str>, Presence)>,
    pub others: Vec<(i64, Aggregate)>,
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

/// A user's public face changed (avatar, names): their friends hear it as a PRESENCE_UPDATE
/// whose `user` is the whole new user object, as Discord tells friends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserChanged {
    pub user_id: i64,
    /// The public user object.
    pub user: serde_json::Value,
    pub friends: Vec<i64>,
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
    fn handle(&mut self, mut register: Register, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |ctx| {
            let sessions = self.by_user.entry(register.user_id).or_default();
            let first = sessions.is_empty();
            sessions.push(register.session_id.clone());
            let hearing = (self.interest.as_ref())
                .filter(|_| first)
                .map(|interest| interest.watch(Topic::User(register.user_id)));
            let heard = register.heard.take();
            ctx.spawn(
                async move {
                    if let Some(hearing) = hearing {
                        hearing.await;
                    }
                    if let Some(heard) = heard {
                        let _ = heard.send(());
                    }
                }
                .into_actor(self),
            );
            let live = Live {
                login_id: register.login_id,
                session: register.session,
                since: SystemTime::now(),
            };
            self.sessions.insert(register.session_id.clone(), live);
            let at = self.tick();
            let user = self.presences.entry(register.user_id).or_default();
            let before = user.aggregate();
            user.guilds.extend(register.guilds);
            user.friends.extend(register.friends);
            user.sessions
                .insert(register.session_id, (register.presence, at));
            self.presence_changed(register.user_id, &before);
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
                    if let Some(interest) = &self.interest {
                        interest.unwatch(Topic::User(gone.user_id));
                    }
                }
            }
            let Some(user) = self.presences.get_mut(&gone.user_id) else {
                return;
            };
            let before = user.aggregate();
            user.sessions.remove(&gone.session_id);
            if user.sessions.is_empty() {
                // Their last session ended: they go offline.
                if let Some(user) = self.presences.remove(&gone.user_id) {
                    if !before.is_offline() {
                        self.announce(
                            gone.user_id,
                            &Aggregate::offline(),
                            &user.guilds,
                            &user.friends,
                        );
                    }
                }
            } else {
                self.presence_changed(gone.user_id, &before);
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

impl Handler<UserChanged> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, changed: UserChanged, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            let presence = self
                .presences
                .get(&changed.user_id)
                .map_or_else(Aggregate::offline, UserPresence::aggregate);
            let mut d = presence.to_json(changed.user_id, None);
            d["user"] = changed.user;
            self.tell_friends(changed.friends, &d);
        });
    }
}

impl Handler<SubscribeUser> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, join: SubscribeUser, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            if let Some(user) = self.presences.get_mut(&join.user_id) {
                // The guild's members see the newcomer's presence from now on.
                if user.guilds.insert(join.guild_id) {
                    let presence = user.aggregate();
                    if !presence.is_offline() {
                        let guilds = HashSet::from([join.guild_id]);
                        self.announce(join.user_id, &presence, &guilds, &HashSet::new());
                    }
                }
            }
            // Each session subscribes itself, if the guild is of its shard.
            for (_, live) in self.of_user(join.user_id) {
                live.session.do_send(Join {
                    guild_id: join.guild_id,
                });
            }
        });
    }
}

impl Handler<SetPresence> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, set: SetPresence, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            let at = self.tick();
            let Some(user) = self.presences.get_mut(&set.user_id) else {
                return;
            };
            let before = user.aggregate();
            if let Some(session) = user.sessions.get_mut(&set.session_id) {
                *session = (set.presence, at);
                self.presence_changed(set.user_id, &before);
            }
        });
    }
}

impl Handler<Friendship> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, change: Friendship, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            let [a, b] = change.users;
            for (user_id, other) in [(a, b), (b, a)] {
                if let Some(user) = self.presences.get_mut(&user_id) {
                    if change.friends {
                        user.friends.insert(other);
                    } else {
                        user.friends.remove(&other);
                    }
                }
            }
            if !change.friends {
                return;
            }
            for (user_id, other) in [(a, b), (b, a)] {
                let Some(user) = self.presences.get(&user_id) else {
                    continue;
                };
                let presence = user.aggregate();
                if presence.is_offline() {
                    continue;
                }
                let d = presence.to_json(user_id, None);
                match Dispatch::new(EventName::PresenceUpdate, &d) {
                    Ok(dispatch) => {
                        for (_, live) in self.of_user(other) {
                            live.session.do_send(Deliver(dispatch.clone()));
                        }
                    }
                    Err(error) => tracing::error!(%error, "PRESENCE_UPDATE did not serialise"),
                }
            }
        });
    }
}

impl Handler<GetPresences> for SessionRegistry {
    type Result = MessageResult<GetPresences>;
    fn handle(&mut self, get: GetPresences, _: &mut Context<Self>) -> Self::Result {
        let mut presences = Presences::default();
        if let Some(user) = self.presences.get(&get.user_id) {
            presences.sessions = user
                .sessions
                .iter()
                .map(|(id, (presence, _))| (id.clone(), presence.clone()))
                .collect();
        }
        for other in get.of {
            if let Some(user) = self.presences.get(&other) {
                let aggregate = user.aggregate();
                if !aggregate.is_offline() {
                    presences.others.push((other, aggregate));
                }
            }
        }
        MessageResult(presences)
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

/// Some of a user's events may not have reached this node: each of their sessions here that
/// started before `lost_at` starts over (see [`Lost`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserLost {
    pub user_id: i64,
    pub lost_at: SystemTime,
}

impl Handler<UserLost> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, lost: UserLost, _: &mut Context<Self>) {
        for (_, live) in self.of_user(lost.user_id) {
            if live.since <= lost.lost_at {
                live.session.do_send(Lost);
            }
        }
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
