//! The guild registry: guild id → its actor, started on first need on one of a few arbiters
//! (so fan-out of different guilds runs in parallel) under `actix::Supervisor`.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Addr, Arbiter, Context, Handler, Message, Supervised, Supervisor};

use super::{GuildActor, GuildStore, Publish, Subscribe, WatchMemberList};
use crate::supervisor::guard;

pub struct GuildRegistry {
    store: Arc<dyn GuildStore>,
    arbiters: Vec<Arbiter>,
    guilds: HashMap<i64, Addr<GuildActor>>,
}

impl GuildRegistry {
    /// A registry placing guild actors on `threads` arbiters of their own.
    pub fn new(store: Arc<dyn GuildStore>, threads: usize) -> Self {
        Self {
            store,
            arbiters: (0..threads.max(1)).map(|_| Arbiter::new()).collect(),
            guilds: HashMap::new(),
        }
    }

    fn guild(&mut self, guild_id: i64) -> &Addr<GuildActor> {
        let store = &self.store;
        let arbiters = &self.arbiters;
        self.guilds.entry(guild_id).or_insert_with(|| {
            let index =
                usize::try_from(guild_id.unsigned_abs() >> 22).unwrap_or(0) % arbiters.len().max(1);
            let store = store.clone();
            let start = move |_: &mut Context<GuildActor>| GuildActor::new(guild_id, store);
            match arbiters.get(index) {
                Some(arbiter) => Supervisor::start_in_arbiter(&arbiter.handle(), start),
                None => Supervisor::start(start),
            }
        })
    }
}

impl Actor for GuildRegistry {
    type Context = Context<Self>;
}

impl Supervised for GuildRegistry {}

impl Handler<Subscribe> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, subscribe: Subscribe, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            self.guild(subscribe.guild_id).do_send(subscribe);
        });
    }
}

impl Handler<Publish> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, event: Publish, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            // A guild nobody is connected to has no actor, and nobody to tell.
            let deleted = event.deleted;
            if let Some(guild) = self.guilds.get(&event.guild_id) {
                guild.do_send(event.clone());
            }
            if deleted {
                // Its last address gone, the actor (and its supervisor) stop.
                self.guilds.remove(&event.guild_id);
            }
        });
    }
}

impl Handler<WatchMemberList> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, watch: WatchMemberList, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            // Only a guild a session already hears has an actor to ask; a client's made-up
            // guild id starts nothing.
            if let Some(guild) = self.guilds.get(&watch.guild_id) {
                guild.do_send(watch);
            }
        });
    }
}

/// Subscribe every live session of a user to a guild they just joined.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeUser {
    pub guild_id: i64,
    pub user_id: i64,
}
