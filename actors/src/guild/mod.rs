//! Guild actors: one per guild that has a connected member, started lazily by the
//! [`GuildRegistry`] and restarted from the database after a failure. Each fans its guild's
//! dispatches out to the sessions that may see them: channel events to members with
//! VIEW_CHANNEL there, moderation events to members with the right permission.

mod registry;
mod state;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The pause before reloading a guild after one failed load.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient,
    Supervised, WrapFuture,
};
use futures_util::future::BoxFuture;

use crate::dispatch::{Deliver, Dispatch};
use crate::permissions::bits::VIEW_CHANNEL;
use crate::supervisor::guard;
pub use registry::{GuildRegistry, SubscribeUser};
pub use state::{GuildState, StateChange};

/// How a guild actor gets its guild from the database.
pub trait GuildStore: Send + Sync + 'static {
    fn load(&self, guild_id: i64) -> BoxFuture<'static, Result<GuildState, String>>;
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
    /// Every other member, if this user is a member (their presence).
    PeersOf(i64),
}

/// A gateway session of a member, to deliver to.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub guild_id: i64,
    pub session_id: Arc<str>,
    pub user_id: i64,
    pub recipient: Recipient<Deliver>,
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

struct Subscriber {
    user_id: i64,
    recipient: Recipient<Deliver>,
}

pub struct GuildActor {
    guild_id: i64,
    store: Arc<dyn GuildStore>,
    state: GuildState,
    subscribers: HashMap<Arc<str>, Subscriber>,
    /// Who may see each channel, worked out on first use and forgotten on any change.
    visible: HashMap<i64, Arc<HashSet<i64>>>,
    /// Loads that failed in a row; each restart waits longer before trying again.
    failures: u32,
}

impl GuildActor {
    pub fn new(guild_id: i64, store: Arc<dyn GuildStore>) -> Self {
        Self {
            guild_id,
            store,
            state: GuildState::default(),
            subscribers: HashMap::new(),
            visible: HashMap::new(),
            failures: 0,
        }
    }

    /// Loads the guild; nothing else is handled until it is loaded. A failed load stops the
    /// actor at once (so no message is handled against an empty state) and its supervisor
    /// starts it again, after a pause that grows with each failure in a row.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let pause = RETRY_PAUSE * self.failures.min(10);
        let store = self.store.clone();
        let guild_id = self.guild_id;
        let loading = async move {
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
                    }
                    Err(error) => {
                        tracing::error!(guild_id = guild.guild_id, %error, "guild did not load");
                        guild.failures += 1;
                        ctx.stop();
                    }
                }),
        );
    }

    fn audience(&mut self, audience: &Audience) -> Arc<HashSet<i64>> {
        match audience {
            Audience::Guild => Arc::new(self.state.members.keys().copied().collect()),
            Audience::Channel(channel_id) => self
                .visible
                .entry(*channel_id)
                .or_insert_with(|| {
                    Arc::new(self.state.members_with(Some(*channel_id), VIEW_CHANNEL))
                })
                .clone(),
            Audience::Permission(bits) => Arc::new(self.state.members_with(None, *bits)),
            Audience::Users(users) => Arc::new(users.iter().copied().collect()),
            Audience::PeersOf(user_id) => Arc::new(if self.state.members.contains_key(user_id) {
                self.state
                    .members
                    .keys()
                    .copied()
                    .filter(|member| member != user_id)
                    .collect()
            } else {
                HashSet::new()
            }),
        }
    }

    fn publish(&mut self, event: Publish) {
        for change in event.changes {
            // A member who left takes their sessions with them.
            if let StateChange::MemberRemoved { user_id } = change {
                self.subscribers.retain(|_, s| s.user_id != user_id);
            }
            self.state.apply(change);
            self.visible.clear();
        }
        if let Some((dispatch, audience)) = event.dispatch {
            let audience = self.audience(&audience);
            self.subscribers.retain(|_, s| s.recipient.connected());
            for subscriber in self.subscribers.values() {
                if audience.contains(&subscriber.user_id) {
                    subscriber.recipient.do_send(Deliver(dispatch.clone()));
                }
            }
        }
        if event.deleted {
            self.subscribers.clear();
        }
    }
}

impl Actor for GuildActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.load(ctx);
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
        guard::<Self, _, _>("guild", ctx, |_| {
            // Only members hear the guild (the state decides, not the caller).
            if self.state.members.contains_key(&subscribe.user_id) {
                let subscriber = Subscriber {
                    user_id: subscribe.user_id,
                    recipient: subscribe.recipient,
                };
                self.subscribers.insert(subscribe.session_id, subscriber);
            }
        });
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
    use crate::permissions::RoleRank;

    /// A store whose database is away for the first `outages` loads.
    struct FlakyStore {
        outages: AtomicUsize,
        loads: AtomicUsize,
    }

    impl GuildStore for FlakyStore {
        fn load(&self, guild_id: i64) -> BoxFuture<'static, Result<GuildState, String>> {
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
                    Err("database away".to_string())
                } else {
                    Ok(state)
                }
            })
        }
    }

    /// A session stand-in that hands what it receives to the test.
    struct Collector(mpsc::UnboundedSender<&'static str>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<Deliver> for Collector {
        type Result = ();
        fn handle(&mut self, Deliver(dispatch): Deliver, _: &mut Context<Self>) {
            let _ = self.0.send(dispatch.event());
        }
    }

    fn event(name: &'static str, audience: Audience) -> Publish {
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
        let guild = Supervisor::start(move |_| GuildActor::new(5, dyn_store));
        let (sender, mut received) = mpsc::unbounded_channel();
        let session = Collector(sender).start();
        let subscribe = |user_id| Subscribe {
            guild_id: 5,
            session_id: format!("s{user_id}").into(),
            user_id,
            recipient: session.clone().recipient(),
        };
        // Queued while the guild is failing to load; handled once it has loaded.
        guild.send(subscribe(7)).await.unwrap();
        guild.send(subscribe(8)).await.unwrap(); // not a member: refused
        guild.send(event("FIRST", Audience::Guild)).await.unwrap();
        assert_eq!(received.recv().await, Some("FIRST"));
        assert_eq!(
            store.loads.load(Ordering::SeqCst),
            3,
            "two failed loads, then one that worked"
        );

        guild
            .send(event("HIDDEN", Audience::Users(vec![8])))
            .await
            .unwrap();
        guild
            .send(event("SECOND", Audience::Users(vec![7])))
            .await
            .unwrap();
        assert_eq!(
            received.recv().await,
            Some("SECOND"),
            "only members hear the guild"
        );
    }
}
