//! The guild registry: guild id → its actor, started on first need on one of a few arbiters
//! (so fan-out of different guilds runs in parallel) under `actix::Supervisor`.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{
    Actor, Addr, Arbiter, Context, Handler, Message, ResponseFuture, Supervised, Supervisor,
};
use serde_json::Value;

use super::voice::{
    Decide, DecideThrough, GetVoiceState, GetVoiceStates, Heard, Rebuild, Sweep, UpdateVoice,
    VoiceChange, VoiceError, VoiceStatesOf,
};
use super::{
    GuildActor, GuildStore, HearPresences, OwnerSlot, Publish, Resync, Subscribe, WatchMemberList,
};
use crate::interest::Interest;
use crate::supervisor::guard;
use crate::voice::{Admissions, RoomKey, RoomMoved};

pub struct GuildRegistry {
    store: Arc<dyn GuildStore>,
    interest: Arc<dyn Interest>,
    admissions: Admissions,
    arbiters: Vec<Arbiter>,
    guilds: HashMap<i64, Addr<GuildActor>>,
    /// Cluster mode: where voice decisions go.
    owner: OwnerSlot,
}

impl GuildRegistry {
    /// A registry placing guild actors on `threads` arbiters of their own.
    pub fn new(
        store: Arc<dyn GuildStore>,
        interest: Arc<dyn Interest>,
        threads: usize,
        admissions: Admissions,
    ) -> Self {
        Self {
            store,
            interest,
            admissions,
            arbiters: (0..threads.max(1)).map(|_| Arbiter::new()).collect(),
            guilds: HashMap::new(),
            owner: OwnerSlot::default(),
        }
    }

    /// Hands `message` to the guild's actor if it runs (none runs for a guild nobody here
    /// hears: there is nothing to tell).
    fn to_running<M>(&self, guild_id: i64, message: M)
    where
        M: Message<Result = ()> + Send + 'static,
        GuildActor: Handler<M>,
    {
        if let Some(guild) = self.guilds.get(&guild_id) {
            guild.do_send(message);
        }
    }

    fn guild(&mut self, guild_id: i64) -> &Addr<GuildActor> {
        let store = &self.store;
        let interest = &self.interest;
        let admissions = &self.admissions;
        let arbiters = &self.arbiters;
        let owner = &self.owner;
        self.guilds.entry(guild_id).or_insert_with(|| {
            let index =
                usize::try_from(guild_id.unsigned_abs() >> 22).unwrap_or(0) % arbiters.len().max(1);
            let (store, interest) = (store.clone(), interest.clone());
            let (admissions, owner) = (admissions.clone(), owner.clone());
            let start = move |_: &mut Context<GuildActor>| {
                GuildActor::new(guild_id, store, interest, admissions, owner)
            };
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

impl Handler<Resync> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, resync: Resync, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            self.to_running(resync.guild_id, resync)
        });
    }
}

impl Handler<HearPresences> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, hear: HearPresences, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            self.to_running(hear.guild_id, hear)
        });
    }
}

impl Handler<WatchMemberList> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, watch: WatchMemberList, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            // Only a guild a session already hears has an actor to ask; a client's made-up
            // guild id starts nothing.
            self.to_running(watch.guild_id, watch)
        });
    }
}

impl Handler<RoomMoved> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, moved: RoomMoved, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            if let RoomKey::Guild { guild_id, .. } = moved.room {
                self.to_running(guild_id, moved);
            }
        });
    }
}

impl Handler<UpdateVoice> for GuildRegistry {
    type Result = ResponseFuture<Result<Option<Value>, VoiceError>>;
    fn handle(&mut self, update: UpdateVoice, _: &mut Context<Self>) -> Self::Result {
        match self.owner.get() {
            // Cluster mode: the guild's owner decides (it comes back here as `Decide`).
            Some(owner) => owner.decide(update),
            None => self.carry_out(update),
        }
    }
}

impl Handler<Decide> for GuildRegistry {
    type Result = ResponseFuture<Result<Option<Value>, VoiceError>>;
    fn handle(&mut self, Decide(update): Decide, _: &mut Context<Self>) -> Self::Result {
        self.carry_out(update)
    }
}

impl Handler<DecideThrough> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, DecideThrough(owner): DecideThrough, _: &mut Context<Self>) {
        let _ = self.owner.set(owner);
    }
}

impl Handler<Heard> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, heard: Heard, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            self.to_running(heard.guild_id, heard)
        });
    }
}

impl Handler<Rebuild> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, rebuild: Rebuild, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            // States to take over need the guild's actor; none to take over, only a running
            // one has any to drop.
            if rebuild.kept.is_empty() && rebuild.gone.is_empty() {
                self.to_running(rebuild.guild_id, rebuild);
            } else {
                self.guild(rebuild.guild_id).do_send(rebuild);
            }
        });
    }
}

impl Handler<Sweep> for GuildRegistry {
    type Result = ();
    fn handle(&mut self, sweep: Sweep, ctx: &mut Context<Self>) {
        guard::<Self, _, _>("guild registry", ctx, |_| {
            self.to_running(sweep.guild_id, sweep)
        });
    }
}

impl GuildRegistry {
    /// Has the guild's actor carry `update` out here.
    fn carry_out(
        &mut self,
        update: UpdateVoice,
    ) -> ResponseFuture<Result<Option<Value>, VoiceError>> {
        // A join may be the first thing a guild's actor is needed for; anything else is about
        // a voice state, which only a running actor holds.
        let guild = match update.change {
            VoiceChange::Join(_) => Some(self.guild(update.guild_id).clone()),
            _ => self.guilds.get(&update.guild_id).cloned(),
        };
        Box::pin(async move {
            match guild {
                Some(guild) => guild
                    .send(update)
                    .await
                    .unwrap_or(Err(VoiceError::NotConnected)),
                None => Err(VoiceError::NotConnected),
            }
        })
    }
}

impl Handler<GetVoiceState> for GuildRegistry {
    type Result = ResponseFuture<Option<Value>>;
    fn handle(&mut self, get: GetVoiceState, _: &mut Context<Self>) -> Self::Result {
        let asking = self.guilds.get(&get.guild_id).map(|guild| guild.send(get));
        Box::pin(async move {
            match asking {
                Some(answer) => answer.await.ok().flatten(),
                None => None,
            }
        })
    }
}

impl Handler<GetVoiceStates> for GuildRegistry {
    type Result = ResponseFuture<HashMap<i64, Vec<Value>>>;
    fn handle(&mut self, get: GetVoiceStates, _: &mut Context<Self>) -> Self::Result {
        // Voice states live in guild actors, which run while anyone is connected: a guild
        // without one has nobody in voice.
        let asking: Vec<_> = get
            .guild_ids
            .into_iter()
            .filter_map(|id| Some((id, self.guilds.get(&id)?.send(VoiceStatesOf))))
            .collect();
        Box::pin(async move {
            let mut states = HashMap::new();
            for (guild_id, answer) in asking {
                if let Ok(found) = answer.await {
                    if !found.is_empty() {
                        states.insert(guild_id, found);
                    }
                }
            }
            states
        })
    }
}

/// Subscribe every live session of a user to a guild they just joined, and hand them its
/// GUILD_CREATE (`dispatch`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeUser {
    pub guild_id: i64,
    pub user_id: i64,
    pub dispatch: Arc<crate::dispatch::Dispatch>,
}
