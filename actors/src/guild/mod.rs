//! Guild actors: one per guild that has a connected member, started lazily by the
//! [`GuildRegistry`] and restarted from the database after a failure. Each fans its guild's
//! dispatches out to the sessions that may see them: channel events to members with
//! VIEW_CHANNEL there, moderation events to members with the right permission.

mod member_list;
mod registry;
mod state;
pub mod stream;
pub mod voice;

use crate::event_name::EventName;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// The pause before reloading a guild after one failed load.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often a guild whose events come from other nodes checks whether anyone here still
/// listens (if nobody does, the node stops hearing it).
const IDLE_CHECK: Duration = Duration::from_secs(10);

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient,
    Supervised, WrapFuture,
};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::dispatch::{Deliver, Dispatch, Sink};
use crate::interest::{Interest, Topic};
use crate::permissions::{self, bits::VIEW_CHANNEL};
use crate::registry::GetPresences;
use crate::session::Lost;
use crate::supervisor::guard;
use crate::voice::{Admissions, RoomKey, RoomMoved};
use member_list::{MemberList, Op, Roster};
pub use registry::{GuildRegistry, SubscribeUser};
pub use state::{GuildState, StateChange};
use voice::{
    Decided, GetVoiceState, Heard, Notice, Rebuild, Sweep, UpdateVoice, VoiceError, VoiceOwner,
    VoiceStates, VoiceStatesOf,
};

/// Cluster mode: where voice decisions go (see [`VoiceOwner`]); unset on a single node.
pub type OwnerSlot = Arc<OnceLock<Arc<dyn VoiceOwner>>>;

/// How a guild actor gets its guild from the database.
pub trait GuildStore: Send + Sync + 'static {
    fn load(&self, guild_id: i64) -> BoxFuture<'static, Result<GuildState, StoreError>>;

    /// Every member's object (with `user`), for the member list.
    fn members(
        &self,
        guild_id: i64,
    ) -> BoxFuture<'static, Result<HashMap<i64, Arc<serde_json::Value>>, StoreError>>;
}

/// Why a [`GuildStore`] could not answer: the store's own error (this crate knows no database).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

/// Why a member list's roster did not load.
#[derive(Debug, thiserror::Error)]
enum RosterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("presences: {0}")]
    Presences(#[from] actix::MailboxError),
}

/// Who an event is for, among the guild's connected members.
#[derive(Debug, Clone)]
pub enum Audience {
    /// Every member.
    Guild,
    /// Members who can see the channel.
    Channel(i64),
    /// Members whose guild-wide permissions include these bits.
    Permission(u64),
    /// These members only.
    Users(Vec<i64>),
    /// Every other member, if this user is a member (their presence). In a large guild only
    /// the sessions that asked for presences hear it (see [`GuildActor::hears_presences`]).
    PeersOf(i64),
}

/// A gateway session of a member, to deliver to.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub guild_id: i64,
    pub session_id: Arc<str>,
    pub user_id: i64,
    pub recipient: Sink,
    /// Told when the session may have missed some of the guild's events.
    pub lost: Recipient<Lost>,
    /// Answered once the session hears the guild (a deaf guild hears other nodes first); in
    /// cluster mode READY waits for it.
    pub heard: Option<oneshot::Sender<()>>,
    /// Up to how many members the session hears every presence of the guild (its IDENTIFY
    /// `large_threshold`); `None`: no presences at all (no GUILD_PRESENCES intent).
    pub presences_up_to: Option<usize>,
}

/// A session's op 8 with `presences: true` (and GUILD_PRESENCES): it hears the guild's
/// presences from now on, however large the guild, as on Discord.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HearPresences {
    pub guild_id: i64,
    pub session_id: Arc<str>,
}

/// Some of the guild's events may not have reached this node (the cluster bus lost them): the
/// guild is read anew and its sessions here that subscribed before `lost_at` are told to start
/// over (one that subscribed later read everything it needs after the loss).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Resync {
    pub guild_id: i64,
    pub lost_at: SystemTime,
}

/// An event in a guild: changes to apply to its state, then a dispatch for an audience.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Publish {
    pub guild_id: i64,
    pub changes: Vec<StateChange>,
    pub dispatch: Option<(Arc<Dispatch>, Audience)>,
    /// The guild was deleted: after delivering, every session is let go.
    pub deleted: bool,
}

/// A session's op 14 / op 37: the member lists of these channels, rows `from..=to` of each
/// first (later changes come as they happen, whatever their rows).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchMemberList {
    pub guild_id: i64,
    pub session_id: Arc<str>,
    pub user_id: i64,
    pub channels: Vec<(i64, Vec<(usize, usize)>)>,
    pub recipient: Sink,
    /// Where to learn the members' presences when the list is first built.
    pub presences: Recipient<GetPresences>,
}

struct Subscriber {
    user_id: i64,
    recipient: Sink,
    lost: Option<Recipient<Lost>>,
    since: SystemTime,
    /// See [`Subscribe::presences_up_to`].
    presences_up_to: Option<usize>,
    /// Asked for the guild's presences with op 8 ([`HearPresences`]).
    asked_presences: bool,
}

/// One channel's member list and the sessions watching it.
struct Watched {
    list: MemberList,
    watchers: HashMap<Arc<str>, Subscriber>,
}

/// The users a dispatch goes to, as [`GuildActor::audience`] resolves an [`Audience`].
enum Listeners {
    /// Every member (but one).
    Members {
        except: Option<i64>,
    },
    Some(Arc<HashSet<i64>>),
}

impl Listeners {
    fn includes(&self, state: &GuildState, user_id: i64) -> bool {
        match self {
            Self::Members { except } => {
                *except != Some(user_id) && state.members.contains_key(&user_id)
            }
            Self::Some(users) => users.contains(&user_id),
        }
    }
}

pub struct GuildActor {
    guild_id: i64,
    store: Arc<dyn GuildStore>,
    state: GuildState,
    /// Where this node says it wants the guild's events from other nodes.
    interest: Arc<dyn Interest>,
    /// Not hearing the guild's events (before the first load, and in cluster mode while nobody
    /// here listens): the state must be read again before it is used.
    deaf: bool,
    /// Sessions that asked to subscribe while the guild was being read again.
    waiting: Vec<Subscribe>,
    subscribers: HashMap<Arc<str>, Subscriber>,
    /// Who may see each channel, worked out on first use and forgotten on any change.
    visible: HashMap<i64, Arc<HashSet<i64>>>,
    /// Loads that failed in a row; each restart waits longer before trying again.
    failures: u32,
    /// What the member lists show, loaded when the first list is watched and dropped with the
    /// last one.
    roster: Option<Roster>,
    /// Watched member lists, by channel.
    lists: HashMap<i64, Watched>,
    /// Who is in which voice channel: in memory only, kept across restarts of the actor. In
    /// cluster mode only on the guild's owner (the others hear what it decides).
    voice: VoiceStates,
    owner: OwnerSlot,
}

impl GuildActor {
    pub fn new(
        guild_id: i64,
        store: Arc<dyn GuildStore>,
        interest: Arc<dyn Interest>,
        admissions: Admissions,
        owner: OwnerSlot,
    ) -> Self {
        Self {
            voice: VoiceStates::new(guild_id, admissions),
            owner,
            guild_id,
            store,
            state: GuildState::default(),
            interest,
            deaf: true,
            waiting: Vec::new(),
            subscribers: HashMap::new(),
            visible: HashMap::new(),
            failures: 0,
            roster: None,
            lists: HashMap::new(),
        }
    }

    /// Loads the guild; nothing else is handled until it is loaded. A failed load stops the
    /// actor at once (so no message is handled against an empty state) and its supervisor
    /// starts it again, after a pause that grows with each failure in a row. A deaf guild
    /// starts hearing its events first, so nothing committed after the read is missed.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let pause = RETRY_PAUSE * self.failures.min(10);
        let store = self.store.clone();
        let guild_id = self.guild_id;
        let hearing =
            std::mem::take(&mut self.deaf).then(|| self.interest.watch(Topic::Guild(guild_id)));
        let loading = async move {
            if let Some(hearing) = hearing {
                hearing.await;
            }
            actix::clock::sleep(pause).await;
            store.load(guild_id).await
        };
        ctx.wait(
            loading
                .into_actor(self)
                .map(|loaded, guild, ctx| match loaded {
                    Ok(state) => {
                        guild.state = state;
                        guild.visible.clear();
                        guild.failures = 0;
                        for subscribe in std::mem::take(&mut guild.waiting) {
                            guild.subscribe(subscribe);
                        }
                    }
                    Err(error) => {
                        tracing::error!(guild_id = guild.guild_id, %error, "guild did not load");
                        guild.failures += 1;
                        ctx.stop();
                    }
                }),
        );
    }

    /// Who hears a dispatch. Guild-wide audiences are checked against the members as they
    /// are, not copied into a set: a presence change in a big guild would otherwise build a
    /// set of every member for a handful of listening sessions.
    fn audience(&mut self, audience: &Audience) -> Listeners {
        match audience {
            Audience::Guild => Listeners::Members { except: None },
            Audience::PeersOf(user_id) if self.state.members.contains_key(user_id) => {
                Listeners::Members {
                    except: Some(*user_id),
                }
            }
            Audience::PeersOf(_) => Listeners::Some(Arc::default()),
            Audience::Channel(channel_id) => Listeners::Some(
                self.visible
                    .entry(*channel_id)
                    .or_insert_with(|| {
                        Arc::new(self.state.members_with(Some(*channel_id), VIEW_CHANNEL))
                    })
                    .clone(),
            ),
            Audience::Permission(bits) => {
                Listeners::Some(Arc::new(self.state.members_with(None, *bits)))
            }
            Audience::Users(users) => Listeners::Some(Arc::new(users.iter().copied().collect())),
        }
    }

    fn publish(&mut self, event: Publish) {
        let changed = !event.changes.is_empty();
        let mut notices = Vec::new();
        // Who the sessions of voice states that may end are (their notices go to them).
        let sessions = if event.changes.iter().any(|c| {
            matches!(
                c,
                StateChange::MemberRemoved { .. } | StateChange::ChannelRemoved { .. }
            )
        }) {
            self.voice.sessions()
        } else {
            HashMap::new()
        };
        for change in event.changes {
            match &change {
                // A member who left takes their sessions and their voice state with them.
                StateChange::MemberRemoved { user_id } => {
                    self.subscribers.retain(|_, s| s.user_id != *user_id);
                    notices.extend(self.voice.member_removed(*user_id));
                }
                // A deleted channel disconnects whoever was in it.
                StateChange::ChannelRemoved { channel_id } => {
                    notices.extend(self.voice.channel_removed(*channel_id));
                }
                // Their voice state carries the member as they are now (GUILD_MEMBER_UPDATE
                // tells the others).
                StateChange::Member {
                    user_id, member, ..
                } => self.voice.member_changed(*user_id, member.clone()),
                _ => {}
            }
            if let Some(roster) = &mut self.roster {
                roster.apply(&change);
            }
            // A presence changes no one's permissions: the visibility cache stays.
            if !matches!(change, StateChange::Presence { .. }) {
                self.visible.clear();
            }
            self.state.apply(change);
        }
        if changed {
            self.refresh_lists();
        }
        if let Some((dispatch, audience)) = event.dispatch {
            let presence = matches!(audience, Audience::PeersOf(_));
            let audience = self.audience(&audience);
            self.subscribers.retain(|_, s| s.recipient.connected());
            let watching = if presence {
                self.watching()
            } else {
                HashSet::new()
            };
            for (session_id, subscriber) in &self.subscribers {
                if audience.includes(&self.state, subscriber.user_id)
                    && (!presence
                        || self.hears_presences(subscriber, watching.contains(session_id)))
                {
                    subscriber.recipient.do_send(Deliver(dispatch.clone()));
                }
            }
        }
        self.decided(notices, sessions);
        if event.deleted {
            self.voice.clear();
            self.subscribers.clear();
        }
    }

    /// Voice states changed here (`sessions`: whose the sessions were before): the sessions
    /// here hear it; in cluster mode, where only the guild's owner changes them, every other
    /// node's too, and the owner keeps the changed states (in Redis). A node that is not the
    /// owner (any more) drops its states instead: the owner's are the truth.
    fn decided(&mut self, notices: Vec<Notice>, mut sessions: HashMap<Arc<str>, i64>) {
        if notices.is_empty() {
            return;
        }
        if let Some(owner) = self.owner.get() {
            if !owner.owns(self.guild_id) {
                tracing::warn!(
                    guild_id = self.guild_id,
                    "voice states changed on a node that does not own the guild: dropped"
                );
                self.voice.forget();
                return;
            }
            sessions.extend(self.voice.sessions());
            let mut users: Vec<i64> = notices
                .iter()
                .filter_map(|notice| match notice {
                    Notice::State(d) => d["user_id"].as_str()?.parse().ok(),
                    Notice::Session { .. } => None,
                })
                .collect();
            users.sort_unstable();
            users.dedup();
            owner.decided(Decided {
                guild_id: self.guild_id,
                states: users
                    .into_iter()
                    .map(|user_id| (user_id, self.voice.state(user_id).cloned()))
                    .collect(),
                notices: notices.clone(),
                sessions,
            });
        }
        self.announce(notices);
    }

    /// Tells the sessions about voice state changes: VOICE_STATE_UPDATE to the guild;
    /// VOICE_SERVER_UPDATE and the STREAM_* events to the sessions they are for.
    fn announce(&mut self, notices: Vec<Notice>) {
        for notice in notices {
            let (event, d) = match &notice {
                Notice::State(d) => (EventName::VoiceStateUpdate, d),
                Notice::Session { event, d, .. } => (*event, d),
            };
            let dispatch = match Dispatch::json(event, d) {
                Ok(dispatch) => Arc::new(dispatch.in_guild(self.guild_id)),
                Err(error) => {
                    tracing::error!(%error, %event, "voice dispatch did not serialise");
                    continue;
                }
            };
            match notice {
                Notice::State(_) => self.publish(Publish {
                    guild_id: self.guild_id,
                    changes: Vec::new(),
                    dispatch: Some((dispatch, Audience::Guild)),
                    deleted: false,
                }),
                Notice::Session { session_id, .. } => {
                    if let Some(subscriber) = self.subscribers.get(&session_id) {
                        subscriber.recipient.do_send(Deliver(dispatch));
                    }
                }
            }
        }
    }

    /// Discord's rule for presences: every session with GUILD_PRESENCES hears them in a guild
    /// of up to its `large_threshold` members; in a larger one only a session that asked for
    /// them (op 8 with `presences`) or watches one of its member lists (op 14 / op 37). In a
    /// large guild everyone coming online would otherwise tell everyone (n² dispatches).
    fn hears_presences(&self, subscriber: &Subscriber, watches_a_list: bool) -> bool {
        subscriber.presences_up_to.is_some_and(|threshold| {
            self.state.members.len() <= threshold || subscriber.asked_presences || watches_a_list
        })
    }

    /// The sessions watching one of the guild's member lists.
    fn watching(&self) -> HashSet<Arc<str>> {
        self.lists
            .values()
            .flat_map(|watched| watched.watchers.keys().cloned())
            .collect()
    }

    /// Op 8 comes after READY, so the session's [`Subscribe`] went through the registry
    /// before it: the session is among the subscribers (a load lets waiting ones in first).
    fn hear_presences(&mut self, session_id: &str) {
        if let Some(subscriber) = self.subscribers.get_mut(session_id) {
            subscriber.asked_presences = true;
        }
    }

    fn subscribe(&mut self, subscribe: Subscribe) {
        // Only members hear the guild (the state decides, not the caller).
        if self.state.members.contains_key(&subscribe.user_id) {
            let subscriber = Subscriber {
                user_id: subscribe.user_id,
                recipient: subscribe.recipient,
                lost: Some(subscribe.lost),
                since: SystemTime::now(),
                presences_up_to: subscribe.presences_up_to,
                asked_presences: false,
            };
            self.subscribers.insert(subscribe.session_id, subscriber);
        }
        if let Some(heard) = subscribe.heard {
            let _ = heard.send(());
        }
    }

    /// In cluster mode, a guild nobody here listens to any more stops being heard (its state
    /// goes stale, and is read again when someone subscribes).
    fn stop_hearing_if_idle(&mut self) {
        self.subscribers.retain(|_, s| s.recipient.connected());
        self.forget_unwatched();
        if !self.deaf
            && self.subscribers.is_empty()
            && self.lists.is_empty()
            && self.voice.is_empty()
        {
            self.interest.unwatch(Topic::Guild(self.guild_id));
            self.deaf = true;
        }
    }

    fn update_voice(
        &mut self,
        update: UpdateVoice,
    ) -> Result<Option<serde_json::Value>, VoiceError> {
        if !self.state.members.contains_key(&update.user_id) {
            return Err(VoiceError::MissingAccess);
        }
        let sessions = self.voice.sessions();
        let (state, notices) = self
            .voice
            .apply(&self.state, update.user_id, update.change)?;
        self.decided(notices, sessions);
        Ok(state)
    }
}

/// The member lists.
impl GuildActor {
    /// Starts (or changes) what a session watches, loading the roster first if no list is
    /// watched yet; nothing else is handled until it is loaded, so no change is missed.
    fn watch(&mut self, watch: WatchMemberList, ctx: &mut Context<Self>) {
        if !self.state.members.contains_key(&watch.user_id) {
            return;
        }
        if self.roster.is_some() {
            return self.start_watching(watch);
        }
        let members = self.store.members(self.guild_id);
        let presences = watch.presences.clone();
        let loading = async move {
            let members = members.await?;
            let of = members.keys().copied().collect();
            let online = presences.send(GetPresences { user_id: 0, of }).await?;
            let presences = online
                .others
                .into_iter()
                .map(|(user_id, presence)| (user_id, Arc::new(presence.to_json(user_id, None))))
                .collect();
            Ok::<_, RosterError>(Roster { members, presences })
        };
        ctx.wait(
            loading
                .into_actor(self)
                .map(move |loaded, guild, _| match loaded {
                    Ok(roster) => {
                        guild.roster = Some(roster);
                        guild.start_watching(watch);
                    }
                    Err(error) => {
                        tracing::error!(guild_id = guild.guild_id, %error, "member list did not load");
                    }
                }),
        );
    }

    fn start_watching(&mut self, watch: WatchMemberList) {
        // A session watches the channels it last asked for, no others.
        for watched in self.lists.values_mut() {
            watched.watchers.remove(&watch.session_id);
        }
        let Some(roster) = &self.roster else {
            return;
        };
        for (channel_id, ranges) in watch.channels {
            let allowed = self.state.channel_permissions(watch.user_id, channel_id);
            if !permissions::has(allowed, VIEW_CHANNEL) {
                continue;
            }
            let state = &self.state;
            let watched = self.lists.entry(channel_id).or_insert_with(|| Watched {
                list: MemberList::build(state, roster, channel_id),
                watchers: HashMap::new(),
            });
            let sync: Vec<Op> = ranges
                .into_iter()
                .map(|(from, to)| Op::Sync { from, to })
                .collect();
            let id = member_list::list_id(state, channel_id);
            match list_update(
                self.guild_id,
                &watched.list.update(self.guild_id, &id, &sync),
            ) {
                Ok(dispatch) => watch.recipient.do_send(Deliver(dispatch)),
                Err(error) => tracing::error!(%error, "GUILD_MEMBER_LIST_UPDATE did not serialise"),
            }
            watched.watchers.insert(
                watch.session_id.clone(),
                Subscriber {
                    user_id: watch.user_id,
                    recipient: watch.recipient.clone(),
                    // A watcher is a subscriber too, told through its subscription.
                    lost: None,
                    since: SystemTime::now(),
                    // Presences reach it through its subscription (which counts its watching).
                    presences_up_to: None,
                    asked_presences: false,
                },
            );
        }
        self.forget_unwatched();
    }

    /// After a change: every watched list is built anew and its watchers get the difference.
    fn refresh_lists(&mut self) {
        let Some(roster) = &self.roster else {
            return;
        };
        let state = &self.state;
        let guild_id = self.guild_id;
        self.lists
            .retain(|channel_id, _| state.channels.contains_key(channel_id));
        for (&channel_id, watched) in &mut self.lists {
            // Watchers who can no longer see the channel stop hearing its list.
            watched.watchers.retain(|_, w| {
                w.recipient.connected()
                    && permissions::has(
                        state.channel_permissions(w.user_id, channel_id),
                        VIEW_CHANNEL,
                    )
            });
            let list = MemberList::build(state, roster, channel_id);
            let ops = watched.list.diff(&list);
            if !ops.is_empty() || !watched.list.same_counts(&list) {
                let id = member_list::list_id(state, channel_id);
                match list_update(guild_id, &list.update(guild_id, &id, &ops)) {
                    Ok(dispatch) => {
                        for watcher in watched.watchers.values() {
                            watcher.recipient.do_send(Deliver(dispatch.clone()));
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "GUILD_MEMBER_LIST_UPDATE did not serialise")
                    }
                }
            }
            watched.list = list;
        }
        self.forget_unwatched();
    }

    /// Lists nobody watches are dropped, and the roster with the last of them.
    fn forget_unwatched(&mut self) {
        self.lists.retain(|_, watched| {
            watched.watchers.retain(|_, w| w.recipient.connected());
            !watched.watchers.is_empty()
        });
        if self.lists.is_empty() {
            self.roster = None;
        }
    }
}

fn list_update(guild_id: i64, d: &serde_json::Value) -> Result<Arc<Dispatch>, serde_json::Error> {
    Dispatch::json(EventName::GuildMemberListUpdate, d)
        .map(|dispatch| Arc::new(dispatch.in_guild(guild_id)))
}

impl Actor for GuildActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.load(ctx);
        if self.interest.shared() {
            ctx.run_interval(IDLE_CHECK, |guild, _| guild.stop_hearing_if_idle());
        }
    }
}

/// Restarted after a failure, the actor runs `started` again, which reads the guild anew from
/// the database; the subscribed sessions stay.
impl Supervised for GuildActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(guild_id = self.guild_id, "guild actor restarting");
    }
}

impl Handler<Subscribe> for GuildActor {
    type Result = ();
    fn handle(&mut self, subscribe: Subscribe, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |ctx| {
            if self.deaf {
                // Stale: read again (hearing the guild first), then let the session in.
                self.waiting.push(subscribe);
                self.load(ctx);
            } else {
                self.subscribe(subscribe);
            }
        });
    }
}

impl Handler<HearPresences> for GuildActor {
    type Result = ();
    fn handle(&mut self, hear: HearPresences, _: &mut Context<Self>) {
        self.hear_presences(&hear.session_id);
    }
}

impl Handler<Resync> for GuildActor {
    type Result = ();
    fn handle(&mut self, resync: Resync, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |ctx| {
            tracing::warn!(
                guild_id = self.guild_id,
                "guild events lost: sessions start over"
            );
            self.subscribers.retain(|_, subscriber| {
                let stays = subscriber.since > resync.lost_at;
                if let Some(lost) = subscriber.lost.as_ref().filter(|_| !stays) {
                    lost.do_send(Lost);
                }
                stays
            });
            self.load(ctx);
        });
    }
}

impl Handler<WatchMemberList> for GuildActor {
    type Result = ();
    fn handle(&mut self, watch: WatchMemberList, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |ctx| self.watch(watch, ctx));
    }
}

impl Handler<RoomMoved> for GuildActor {
    type Result = ();
    fn handle(&mut self, moved: RoomMoved, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |_| {
            if let RoomKey::Guild { channel_id, .. } = moved.room {
                let notices = self.voice.room_moved(channel_id, moved.endpoint.as_deref());
                self.decided(notices, HashMap::new());
            }
        });
    }
}

impl Handler<UpdateVoice> for GuildActor {
    type Result = actix::ResponseFuture<Result<Option<serde_json::Value>, VoiceError>>;
    fn handle(&mut self, update: UpdateVoice, ctx: &mut Context<Self>) -> Self::Result {
        if self.deaf {
            // Stale (cluster mode: nobody here listened for a while, and the guild's owner is
            // asked to decide): read again, hearing the guild first, and decide after that.
            self.load(ctx);
            let again = ctx.address().send(update);
            return Box::pin(async move { again.await.unwrap_or(Err(VoiceError::NotConnected)) });
        }
        let decided = guard::<Self, _, _>("guild", ctx, |_| self.update_voice(update))
            .unwrap_or(Err(VoiceError::NotConnected));
        Box::pin(std::future::ready(decided))
    }
}

impl Handler<Heard> for GuildActor {
    type Result = ();
    fn handle(&mut self, heard: Heard, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |_| self.announce(heard.notices));
    }
}

impl Handler<Rebuild> for GuildActor {
    type Result = ();
    fn handle(&mut self, rebuild: Rebuild, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |_| {
            let sessions = rebuild
                .kept
                .iter()
                .chain(&rebuild.gone)
                .map(|s| (s.session_id.clone(), s.user_id))
                .collect();
            let notices = self.voice.rebuild(rebuild);
            self.decided(notices, sessions);
        });
    }
}

impl Handler<Sweep> for GuildActor {
    type Result = ();
    fn handle(&mut self, sweep: Sweep, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |_| {
            let sessions = self.voice.sessions();
            let notices = self.voice.sweep(&sweep.live);
            self.decided(notices, sessions);
        });
    }
}

impl Handler<GetVoiceState> for GuildActor {
    type Result = Option<serde_json::Value>;
    fn handle(&mut self, get: GetVoiceState, _: &mut Context<Self>) -> Self::Result {
        self.voice.get(get.user_id)
    }
}

impl Handler<VoiceStatesOf> for GuildActor {
    type Result = Vec<serde_json::Value>;
    fn handle(&mut self, _: VoiceStatesOf, _: &mut Context<Self>) -> Self::Result {
        self.voice.all()
    }
}

impl Handler<Publish> for GuildActor {
    type Result = ();
    fn handle(&mut self, event: Publish, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild", ctx, |_| self.publish(event));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix::{Actor, Context, Handler, Supervisor};
    use tokio::sync::mpsc;

    use super::*;
    use crate::interest::Alone;
    use crate::permissions::RoleRank;

    /// A store whose database is away for the first `outages` loads.
    struct FlakyStore {
        outages: AtomicUsize,
        loads: AtomicUsize,
    }

    impl GuildStore for FlakyStore {
        fn load(&self, guild_id: i64) -> BoxFuture<'static, Result<GuildState, StoreError>> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let away = self
                .outages
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let mut state = GuildState {
                guild_id,
                owner_id: 1,
                ..GuildState::default()
            };
            state.roles.insert(
                guild_id,
                RoleRank {
                    id: guild_id,
                    permissions: VIEW_CHANNEL,
                    position: 0,
                },
            );
            state.members.insert(7, Vec::new());
            Box::pin(async move {
                if away {
                    Err(StoreError::new("database away"))
                } else {
                    Ok(state)
                }
            })
        }

        fn members(
            &self,
            _: i64,
        ) -> BoxFuture<'static, Result<HashMap<i64, Arc<serde_json::Value>>, StoreError>> {
            Box::pin(async { Ok(HashMap::from([(7, Arc::new(serde_json::json!({})))])) })
        }
    }

    /// A session stand-in that hands what it receives to the test.
    struct Collector(mpsc::UnboundedSender<EventName>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<Lost> for Collector {
        type Result = ();
        fn handle(&mut self, _: Lost, _: &mut Context<Self>) {}
    }

    impl Handler<Deliver> for Collector {
        type Result = ();
        fn handle(&mut self, Deliver(dispatch): Deliver, _: &mut Context<Self>) {
            let _ = self.0.send(dispatch.event());
        }
    }

    fn event(name: EventName, audience: Audience) -> Publish {
        let dispatch = Arc::new(Dispatch::from_json(name, "{}".into()));
        Publish {
            guild_id: 5,
            changes: Vec::new(),
            dispatch: Some((dispatch, audience)),
            deleted: false,
        }
    }

    #[actix::test]
    async fn a_guild_that_fails_to_load_is_restarted_and_then_delivers() {
        let store = Arc::new(FlakyStore {
            outages: AtomicUsize::new(2),
            loads: AtomicUsize::new(0),
        });
        let dyn_store: Arc<dyn GuildStore> = store.clone();
        let guild = Supervisor::start(move |_| {
            GuildActor::new(
                5,
                dyn_store,
                Arc::new(Alone),
                Admissions::default(),
                OwnerSlot::default(),
            )
        });
        let (sender, mut received) = mpsc::unbounded_channel();
        let session = Collector(sender).start();
        let subscribe = |user_id| Subscribe {
            guild_id: 5,
            session_id: format!("s{user_id}").into(),
            user_id,
            recipient: Sink::from(session.clone().recipient()),
            lost: session.clone().recipient(),
            heard: None,
            presences_up_to: None,
        };
        // Queued while the guild is failing to load; handled once it has loaded.
        guild.send(subscribe(7)).await.unwrap();
        guild.send(subscribe(8)).await.unwrap(); // not a member: refused
        guild
            .send(event(EventName::GuildUpdate, Audience::Guild))
            .await
            .unwrap();
        assert_eq!(received.recv().await, Some(EventName::GuildUpdate));
        assert_eq!(
            store.loads.load(Ordering::SeqCst),
            3,
            "two failed loads, then one that worked"
        );

        guild
            .send(event(EventName::TypingStart, Audience::Users(vec![8])))
            .await
            .unwrap();
        guild
            .send(event(EventName::MessageCreate, Audience::Users(vec![7])))
            .await
            .unwrap();
        assert_eq!(
            received.recv().await,
            Some(EventName::MessageCreate),
            "only members hear the guild"
        );
    }
}
