//! Guild actors: one per guild that has a connected member, started lazily by the
//! [`GuildRegistry`] and restarted from the database after a failure. Each fans its guild's
//! dispatches out to the sessions that may see them: channel events to members with
//! VIEW_CHANNEL there, moderation events to members with the right permission.

mod registry;
mod state;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

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
}

impl GuildActor {
    pub fn new(guild_id: i64, store: Arc<dyn GuildStore>) -> Self {
        Self {
            guild_id,
            store,
            state: GuildState::default(),
            subscribers: HashMap::new(),
            visible: HashMap::new(),
        }
    }

    /// Loads the guild; nothing else is handled until it is loaded. A failed load stops the
    /// actor after a pause, so its supervisor tries again without spinning.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let loading = self.store.load(self.guild_id).into_actor(self);
        ctx.wait(loading.map(|loaded, guild, ctx| match loaded {
            Ok(state) => {
                guild.state = state;
                guild.visible.clear();
            }
            Err(error) => {
                tracing::error!(guild_id = guild.guild_id, %error, "guild did not load");
                ctx.run_later(Duration::from_secs(1), |_, ctx| ctx.stop());
            }
        }));
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

/// Restarted after a failure: the guild is read again from the database; the sessions stay.
impl Supervised for GuildActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(guild_id = self.guild_id, "guild actor restarting");
        self.load(ctx);
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
