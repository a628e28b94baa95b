//! The session registry: which gateway sessions are live, by session id and by user, so that
//! user-scoped events (USER_UPDATE, DMs, relationships) reach all of a user's sessions, a user
//! joining a guild has all their sessions subscribed to it, RESUME finds its session, and a
//! login that ends takes its sessions with it.
//!
//! It also keeps each live session's presence (see [`crate::presence`]): when a user's
//! aggregate presence changes (op 3, their first session starting, their last one ending) it
//! sends PRESENCE_UPDATE to each guild they are in, through the guild's actor (which hands it
//! to the guild's members), and to their friends.
//!
//! In cluster mode a user's presence is that of all their sessions on every node: the registry
//! records this node's part on a [`Board`], and when that changes what others see, the guilds'
//! members and the friends on every node hear it, each change numbered so that a node hearing
//! two of them out of order shows the later one.

use crate::event_name::EventName;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    ResponseFuture, Supervised, WrapFuture,
};
use tokio::sync::oneshot;

use crate::dispatch::{Deliveries, Dispatch};
use crate::guild::{Audience, GuildRegistry, Publish, StateChange, SubscribeUser};
use crate::interest::{Interest, Topic};
use crate::presence::{Aggregate, Board, Presence};
use crate::session::handover::{Export, Handover};
use crate::session::protocol::CloseCode;
use crate::session::{End, Join, Line, Lost, Reconnect, Session};
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
    /// Where this node's part of its users' presences is shared with the other nodes.
    board: Option<Arc<dyn Board>>,
    /// In cluster mode, the version of each user's presence last heard by each audience here:
    /// one arriving after a later one is dropped.
    heard: HashMap<(i64, Topic), u64>,
}

/// How many versions [`SessionRegistry::heard`] keeps before forgetting those older than
/// [`HEARD_FOR_MS`] (a change arrives from another node well within that).
const HEARD_MOST: usize = 65_536;
const HEARD_FOR_MS: u64 = 60_000;

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
    /// In cluster mode, their presence over every node and its version, as last heard.
    shown: Option<(Aggregate, u64)>,
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
    /// Where its dispatches go, straight (as guilds deliver), not through its mailbox.
    line: Arc<Line>,
    /// When it registered (it heard everything after).
    since: SystemTime,
}

impl SessionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that sends presence updates to the guilds' actors through `guilds`, and
    /// shares presences with other nodes through `board`.
    pub fn with_guilds(
        guilds: Addr<GuildRegistry>,
        interest: Arc<dyn Interest>,
        board: Arc<dyn Board>,
    ) -> Self {
        Self {
            guilds: Some(guilds),
            interest: Some(interest),
            board: Some(board),
            ..Self::default()
        }
    }

    /// The board, when there are other nodes to share presences with.
    fn sharing(&self) -> Option<Arc<dyn Board>> {
        self.board.clone().filter(|board| board.shared())
    }

    /// What others see of an online user: over every node once known, else of their sessions
    /// here.
    fn shown(user: &UserPresence) -> Aggregate {
        match &user.shown {
            Some((presence, _)) => presence.clone(),
            None => user.aggregate(),
        }
    }

    /// PRESENCE_UPDATE with the changed user object, to their friends here.
    fn tell_changed(&self, changed: UserChanged, presence: Aggregate) {
        let mut d = presence.to_json(changed.user_id, None);
        d["user"] = changed.user;
        self.tell_friends(changed.friends, &d);
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Tells the user's guilds and friends their presence, if it is not what it was.
    fn presence_changed(&self, ctx: &mut Context<Self>, user_id: i64, before: &Aggregate) {
        let Some(user) = self.presences.get(&user_id) else {
            return;
        };
        let after = user.aggregate();
        if after != *before {
            self.changed_to(ctx, user_id, after, &user.guilds, &user.friends);
        }
    }

    /// What the user's sessions here show changed to `here`: their guilds and friends hear
    /// it, in cluster mode once recorded and if it changes what they show over every node.
    fn changed_to(
        &self,
        ctx: &mut Context<Self>,
        user_id: i64,
        here: Aggregate,
        guilds: &HashSet<i64>,
        friends: &HashSet<i64>,
    ) {
        let Some(board) = self.sharing() else {
            return self.announce(user_id, &here, guilds, friends);
        };
        let mut topics: Vec<Topic> = guilds.iter().map(|&id| Topic::Guild(id)).collect();
        topics.extend(friends.iter().map(|&id| Topic::User(id)));
        // The user's sessions on other nodes learn what they show.
        topics.push(Topic::User(user_id));
        let recording = board.record(user_id, (!here.is_offline()).then_some(here));
        ctx.spawn(recording.into_actor(self).map(move |shown, registry, _| {
            let Some(shown) = shown else {
                return;
            };
            // Unchanged for others: only the user's own sessions here note it.
            let topics = match shown.changed {
                true => {
                    board.tell(user_id, &shown.presence, shown.version, topics.clone());
                    topics
                }
                false => vec![Topic::User(user_id)],
            };
            for topic in topics {
                registry.hear(user_id, &shown.presence, shown.version, topic);
            }
        }));
    }

    /// Cluster mode: `user_id`'s presence over every node, numbered `version`, for `topic`'s
    /// sessions here (their guild's members, a friend, their own sessions), unless those heard
    /// a later one.
    fn hear(&mut self, user_id: i64, presence: &Aggregate, version: u64, topic: Topic) {
        if self.heard.len() >= HEARD_MOST {
            let newest = self.heard.values().copied().max().unwrap_or(0);
            self.heard.retain(|_, heard| *heard + HEARD_FOR_MS > newest);
            if self.heard.len() >= HEARD_MOST {
                self.heard.clear();
            }
        }
        let heard = self.heard.entry((user_id, topic)).or_default();
        if version < *heard {
            return;
        }
        *heard = version;
        if topic == Topic::User(user_id) {
            if let Some(user) = self.presences.get_mut(&user_id) {
                user.shown = Some((presence.clone(), version));
            }
            return;
        }
        self.deliver(user_id, presence, topic);
    }

    /// The user's presence to a new audience (a guild they joined, a new friend), if shown.
    fn show_to(&mut self, user_id: i64, topic: Topic) {
        let Some(user) = self.presences.get(&user_id) else {
            return;
        };
        let presence = Self::shown(user);
        if presence.is_offline() {
            return;
        }
        match (
            self.sharing(),
            user.shown.as_ref().map(|(_, version)| *version),
        ) {
            (Some(board), Some(version)) => {
                board.tell(user_id, &presence, version, vec![topic]);
                self.hear(user_id, &presence, version, topic);
            }
            // Not recorded yet (they just came online, and the audience was not known when
            // it was sent): the new audience hears them at their next change.
            (Some(_), None) => {}
            (None, _) => self.deliver(user_id, &presence, topic),
        }
    }

    /// PRESENCE_UPDATE to `topic`'s sessions here: a guild's members, or a friend.
    fn deliver(&self, user_id: i64, presence: &Aggregate, topic: Topic) {
        match topic {
            Topic::Guild(guild_id) => {
                let shown =
                    (!presence.is_offline()).then(|| Arc::new(presence.to_json(user_id, None)));
                self.tell_guild(user_id, presence, guild_id, shown);
            }
            Topic::User(friend) => self.tell_friends([friend], &presence.to_json(user_id, None)),
        }
    }

    fn announce(
        &self,
        user_id: i64,
        presence: &Aggregate,
        guilds: &HashSet<i64>,
        friends: &HashSet<i64>,
    ) {
        // For the guilds' member lists.
        let shown = (!presence.is_offline()).then(|| Arc::new(presence.to_json(user_id, None)));
        for &guild_id in guilds {
            self.tell_guild(user_id, presence, guild_id, shown.clone());
        }
        if friends.is_empty() {
            return;
        }
        self.tell_friends(friends.iter().copied(), &presence.to_json(user_id, None));
    }

    /// PRESENCE_UPDATE to the guild's members, through its actor, which also puts `shown` (the
    /// presence without `guild_id`, none when offline) in its member lists.
    fn tell_guild(
        &self,
        user_id: i64,
        presence: &Aggregate,
        guild_id: i64,
        shown: Option<Arc<serde_json::Value>>,
    ) {
        let Some(registry) = &self.guilds else {
            return;
        };
        let d = presence.to_json(user_id, Some(guild_id));
        match Dispatch::json(EventName::PresenceUpdate, &d) {
            Ok(dispatch) => registry.do_send(Publish {
                guild_id,
                changes: vec![StateChange::Presence {
                    user_id,
                    presence: shown,
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

    /// PRESENCE_UPDATE with `d` to every session of each of `friends`.
    fn tell_friends(&self, friends: impl IntoIterator<Item = i64>, d: &serde_json::Value) {
        match Dispatch::new(EventName::PresenceUpdate, d) {
            Ok(dispatch) => {
                for friend in friends {
                    for (_, live) in self.of_user(friend) {
                        live.line.deliver(dispatch.clone());
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
    pub line: Arc<Line>,
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
                line: register.line,
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
            self.presence_changed(ctx, register.user_id, &before);
        });
    }
}

impl Handler<Unregister> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, gone: Unregister, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |ctx| {
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
                        let offline = Aggregate::offline();
                        self.changed_to(ctx, gone.user_id, offline, &user.guilds, &user.friends);
                    }
                }
            } else {
                self.presence_changed(ctx, gone.user_id, &before);
            }
        });
    }
}

impl Handler<DispatchToUser> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, event: DispatchToUser, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            for (_, live) in self.of_user(event.user_id) {
                live.line.deliver(event.dispatch.clone());
            }
        });
    }
}

impl Handler<UserChanged> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, changed: UserChanged, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |ctx| {
            let here = self.presences.get(&changed.user_id).map(Self::shown);
            match (here, self.sharing()) {
                // Online only on other nodes: their presence is on the board.
                (None, Some(board)) => {
                    let asking = board.elsewhere(vec![changed.user_id]);
                    let told = asking.into_actor(self).map(|found, registry, _| {
                        let presence = found.into_iter().next().map(|(_, presence)| presence);
                        registry.tell_changed(changed, presence.unwrap_or_else(Aggregate::offline));
                    });
                    ctx.spawn(told);
                }
                (here, _) => self.tell_changed(changed, here.unwrap_or_else(Aggregate::offline)),
            }
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
                    self.show_to(join.user_id, Topic::Guild(join.guild_id));
                }
            }
            // GUILD_CREATE goes on each session's line now, after what the user heard before,
            // held there with whatever of the guild follows; each session subscribes itself
            // (if the guild is of its shard) and lets it out once it hears the guild.
            for (_, live) in self.of_user(join.user_id) {
                live.line.join(join.guild_id, join.dispatch.clone());
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
        guard::<Self, _, _>("session registry", ctx, |ctx| {
            let at = self.tick();
            let Some(user) = self.presences.get_mut(&set.user_id) else {
                return;
            };
            let before = user.aggregate();
            if let Some(session) = user.sessions.get_mut(&set.session_id) {
                *session = (set.presence, at);
                self.presence_changed(ctx, set.user_id, &before);
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
                self.show_to(user_id, Topic::User(other));
            }
        });
    }
}

impl Handler<GetPresences> for SessionRegistry {
    type Result = ResponseFuture<Presences>;
    fn handle(&mut self, get: GetPresences, _: &mut Context<Self>) -> Self::Result {
        let mut presences = Presences::default();
        if let Some(user) = self.presences.get(&get.user_id) {
            presences.sessions = user
                .sessions
                .iter()
                .map(|(id, (presence, _))| (id.clone(), presence.clone()))
                .collect();
        }
        let mut elsewhere = Vec::new();
        for other in get.of {
            match self.presences.get(&other) {
                Some(user) => {
                    let aggregate = Self::shown(user);
                    if !aggregate.is_offline() {
                        presences.others.push((other, aggregate));
                    }
                }
                None => elsewhere.push(other),
            }
        }
        // In cluster mode those with no session here may have some on other nodes.
        let board = self.sharing().filter(|_| !elsewhere.is_empty());
        Box::pin(async move {
            if let Some(board) = board {
                presences.others.extend(board.elsewhere(elsewhere).await);
            }
            presences
        })
    }
}

/// Cluster mode: a user's presence over every node, numbered, as another node recorded it;
/// `topic` names who here hears it (a guild's members, a friend, the user's own sessions).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceHeard {
    pub user_id: i64,
    pub presence: Aggregate,
    pub version: u64,
    pub topic: Topic,
}

impl Handler<PresenceHeard> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, heard: PresenceHeard, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("session registry", ctx, |_| {
            self.hear(heard.user_id, &heard.presence, heard.version, heard.topic);
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

/// The ids of the live sessions (cluster mode: each node keeps its sessions' home records).
#[derive(Message)]
#[rtype(result = "Vec<Arc<str>>")]
pub struct SessionIds;

impl Handler<SessionIds> for SessionRegistry {
    type Result = MessageResult<SessionIds>;
    fn handle(&mut self, _: SessionIds, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.sessions.keys().cloned().collect())
    }
}

/// Another node takes a session of this one's (see [`crate::session::handover`]): what it is,
/// with its presence, and (`release`) what it kept, ending it here. `None`: not here.
#[derive(Message)]
#[rtype(result = "Option<Handover>")]
pub struct TakeSession {
    pub session_id: String,
    pub release: bool,
}

impl Handler<TakeSession> for SessionRegistry {
    type Result = ResponseFuture<Option<Handover>>;
    fn handle(&mut self, take: TakeSession, _: &mut Context<Self>) -> Self::Result {
        let Some((id, live)) = self.sessions.get_key_value(take.session_id.as_str()) else {
            return Box::pin(std::future::ready(None));
        };
        let session = live.session.clone();
        let user = self
            .presences
            .values()
            .find(|user| user.sessions.contains_key(id));
        let presence = user
            .and_then(|user| user.sessions.get(id))
            .map(|(p, _)| p.clone());
        let guilds: Vec<i64> = user
            .map(|u| u.guilds.iter().copied().collect())
            .unwrap_or_default();
        let friends: Vec<i64> = user
            .map(|u| u.friends.iter().copied().collect())
            .unwrap_or_default();
        Box::pin(async move {
            let release = take.release;
            let mut handover = session.send(Export { release }).await.ok()?;
            if let Some(presence) = presence {
                handover.status = presence.status;
                handover.activities = presence.activities;
            }
            handover.guilds = guilds;
            handover.friends = friends;
            Some(handover)
        })
    }
}
