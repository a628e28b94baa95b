//! [`Rooms`]: the node's registry of live rooms. It starts a room on its first join (with the
//! directory's settings, or the defaults when the token may create it), forgets it when it
//! stops, and passes the rooms API's requests to the room they name.

use std::collections::HashMap;

use actix::prelude::*;

use super::api::{
    CloseRoom, Configure, MuteTrack, Occupancy, ParticipantInfo, Participants, RemoveParticipant,
    RoomError, RoomPorts, RoomSettings, SendData, UpdateParticipant,
};
use super::room::{Enter, LiveRoom, Visible};
use super::signal::ToClient;
use super::Grants;
use crate::voice::Media;

/// The registry actor.
pub struct Rooms {
    media: Media,
    ports: RoomPorts,
    rooms: HashMap<String, Addr<LiveRoom>>,
}

impl Rooms {
    pub fn new(media: Media, ports: RoomPorts) -> Self {
        Self {
            media,
            ports,
            rooms: HashMap::new(),
        }
    }

    fn live(&self, room: &str) -> Option<Addr<LiveRoom>> {
        self.rooms
            .get(room)
            .filter(|room| room.connected())
            .cloned()
    }

    fn start_room(
        &mut self,
        id: String,
        settings: RoomSettings,
        ctx: &mut Context<Self>,
    ) -> Addr<LiveRoom> {
        let (media, ports, registry) = (self.media.clone(), self.ports.clone(), ctx.address());
        let room_id = id.clone();
        let room = LiveRoom::create(move |room| {
            LiveRoom::new(room_id, settings, media, ports, registry, room)
        });
        self.rooms.insert(id, room.clone());
        room
    }
}

impl Actor for Rooms {
    type Context = Context<Self>;
}

impl actix::Supervised for Rooms {}

/// Who joins, as their token says.
#[derive(Debug, Clone)]
pub struct Joining {
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub grants: Grants,
}

/// A socket's `join`: enter room `room` (started if it is not live: with the directory's
/// settings, or the defaults if the directory does not know it and `may_create`).
#[derive(Message)]
#[rtype(result = "Result<Seat, RoomError>")]
pub struct Join {
    pub room: String,
    pub may_create: bool,
    pub participant: Joining,
    pub client: Recipient<ToClient>,
    pub auto_subscribe: bool,
}

/// Where a joined socket sends its requests: the room, and its member number there.
#[derive(Debug, Clone)]
pub struct Seat {
    pub room: Addr<LiveRoom>,
    pub member: u64,
}

impl Handler<Join> for Rooms {
    // Atomic: a second join of a room that is not live yet waits for the first to start it.
    type Result = AtomicResponse<Self, Result<Seat, RoomError>>;

    fn handle(&mut self, join: Join, _: &mut Context<Self>) -> Self::Result {
        if let Some(room) = self.live(&join.room) {
            return AtomicResponse::new(Box::pin(
                async move { enter(room, join).await }.into_actor(self),
            ));
        }
        if self.rooms.len() >= self.ports.limits.max_rooms {
            self.rooms.retain(|_, room| room.connected());
            if self.rooms.len() >= self.ports.limits.max_rooms {
                return AtomicResponse::new(Box::pin(
                    async { Err(RoomError::TooManyRooms) }.into_actor(self),
                ));
            }
        }
        let lookup = self.ports.directory.lookup(&join.room);
        AtomicResponse::new(Box::pin(lookup.into_actor(self).then(
            move |found, registry, ctx| {
                let settings = match found {
                    Ok(Some(settings)) => Ok(settings),
                    Ok(None) if join.may_create => Ok(RoomSettings::default()),
                    Ok(None) => Err(RoomError::NoRoom),
                    Err(error) => Err(error),
                };
                let room =
                    settings.map(|settings| registry.start_room(join.room.clone(), settings, ctx));
                async move { enter(room?, join).await }.into_actor(registry)
            },
        )))
    }
}

async fn enter(room: Addr<LiveRoom>, join: Join) -> Result<Seat, RoomError> {
    let member = room
        .send(Enter {
            participant: join.participant,
            client: join.client,
            auto_subscribe: join.auto_subscribe,
        })
        .await
        .map_err(|_| RoomError::NoRoom)??;
    Ok(Seat { room, member })
}

/// A room stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct RoomGone {
    pub id: String,
    pub room: Addr<LiveRoom>,
}

impl Handler<RoomGone> for Rooms {
    type Result = ();

    fn handle(&mut self, gone: RoomGone, _: &mut Context<Self>) {
        if self.rooms.get(&gone.id) == Some(&gone.room) {
            self.rooms.remove(&gone.id);
        }
    }
}

/// Passes an API request to the live room it names; `absent` if it is not live.
macro_rules! to_room {
    ($message:ty, $absent:expr) => {
        impl Handler<$message> for Rooms {
            type Result = ResponseFuture<<$message as Message>::Result>;

            fn handle(&mut self, message: $message, _: &mut Context<Self>) -> Self::Result {
                let room = self.live(&message.room);
                Box::pin(async move {
                    match room {
                        Some(room) => room.send(message).await.unwrap_or($absent),
                        None => $absent,
                    }
                })
            }
        }
    };
}

to_room!(Participants, Vec::<ParticipantInfo>::new());
to_room!(RemoveParticipant, false);
to_room!(MuteTrack, Err(RoomError::NoRoom));
to_room!(UpdateParticipant, Err(RoomError::NoRoom));
to_room!(SendData, Err(RoomError::NoRoom));
to_room!(CloseRoom, false);
to_room!(Configure, ());

impl Handler<Occupancy> for Rooms {
    type Result = ResponseFuture<HashMap<String, u32>>;

    fn handle(&mut self, occupancy: Occupancy, _: &mut Context<Self>) -> Self::Result {
        let rooms: Vec<(String, Addr<LiveRoom>)> = occupancy
            .rooms
            .into_iter()
            .filter_map(|id| Some((id.clone(), self.live(&id)?)))
            .collect();
        Box::pin(async move {
            let mut counts = HashMap::new();
            for (id, room) in rooms {
                if let Ok(count) = room.send(Visible).await {
                    counts.insert(id, count);
                }
            }
            counts
        })
    }
}

/// How many rooms are live (for metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveRooms;

impl Handler<LiveRooms> for Rooms {
    type Result = usize;

    fn handle(&mut self, _: LiveRooms, _: &mut Context<Self>) -> usize {
        self.rooms.values().filter(|room| room.connected()).count()
    }
}
