//! A voice room: the actor that owns one active room's membership, its forwarding table and a
//! transport actor per participant; and [`VoiceRooms`], the registry that starts rooms when
//! the first participant arrives and forgets them when they stop (empty, or failed: a room's
//! failure ends that room's calls and nothing else).

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::admissions::{Flags, RoomKey};
use super::bots::{self, Bot};
use super::forwarding::{self, Output, Route, SharedTable, Sink, Table};
use super::media::{Media, MediaError};
use super::media_loop::{MediaLoop, MediaLoopDied, PeerId, Reports, TrackStarted, TransportFailed};
use super::sdp::{ClientFragment, Codec, Kind, Published};
use super::transport::{AddSink, Close, Opening, Publish, Transport};

/// What a room tells a participant's voice connection.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum ToVoice {
    /// Send this op with this payload.
    Op(u8, Value),
    /// Close the voice connection with this code.
    Close(u16),
}

/// Discord's voice close code for "disconnected": the participant was removed.
pub const DISCONNECTED: u16 = 4014;
/// "Voice server crashed": the room failed; clients reconnect.
pub const SERVER_CRASHED: u16 = 4015;

/// What RESUME names a seat by: IDENTIFY's `server_id`, `session_id` and `token`.
pub type ResumeKey = (String, String, String);

struct Member {
    /// Which voice connection speaks for this member (a re-admission or a RESUME replaces it).
    connection: u64,
    resume: ResumeKey,
    /// The voice connection dropped; the seat waits for a RESUME.
    suspended: bool,
    session: Recipient<ToVoice>,
    flags: watch::Receiver<Option<Flags>>,
    fragment: Option<ClientFragment>,
    transport: Option<Addr<Transport>>,
    /// The latest connection opened for this member: a failure of any other is ignored.
    peer: Option<PeerId>,
    /// A bot's plain-UDP connection, in place of a transport.
    bot: Option<Arc<Bot>>,
    /// What this member publishes, by kind, once the track arrived.
    tracks: HashMap<Kind, RTCRtpCodec>,
    /// The `streams` of their last op 12, relayed as is.
    streams: Value,
    /// Their last SPEAKING state, for receivers whose audio sender comes later.
    speaking: Option<Value>,
    /// The SSRC this member receives each (publisher, kind) under.
    seen: HashMap<(i64, Kind), u32>,
}

pub struct Room {
    key: RoomKey,
    media: Media,
    table: SharedTable,
    /// Owns the members' peer connections and forwards between them.
    media_loop: MediaLoop,
    members: HashMap<i64, Member>,
    registry: Addr<VoiceRooms>,
}

impl Room {
    fn new(
        key: RoomKey,
        media: Media,
        registry: Addr<VoiceRooms>,
        ctx: &mut Context<Self>,
    ) -> Self {
        let table: SharedTable = Arc::new(ArcSwap::from_pointee(Table::new()));
        let reports = Reports {
            started: ctx.address().recipient(),
            failed: ctx.address().recipient(),
            died: ctx.address().recipient(),
            data: None,
            levels: None,
        };
        Self {
            key,
            media_loop: MediaLoop::start(&media, table.clone(), reports),
            media,
            table,
            members: HashMap::new(),
            registry,
        }
    }

    /// `user_id`'s seat, if `connection` still speaks for it.
    fn member(&self, user_id: i64, connection: u64) -> Option<&Member> {
        self.members
            .get(&user_id)
            .filter(|m| m.connection == connection)
    }

    /// [`Self::member`], to change.
    fn member_mut(&mut self, user_id: i64, connection: u64) -> Option<&mut Member> {
        self.members
            .get_mut(&user_id)
            .filter(|m| m.connection == connection)
    }

    /// Replaces the forwarding table with an edited copy (the hot path keeps reading the old
    /// snapshot until it loads the new one).
    fn edit_table(&self, edit: impl FnOnce(&mut Table)) {
        forwarding::edit(&self.table, edit);
    }

    fn send_others(&self, user_id: i64, message: &ToVoice) {
        for (id, member) in &self.members {
            if *id != user_id {
                member.session.do_send(message.clone());
            }
        }
    }

    /// Starts sending `publisher`'s `kind` stream to `receiver`: a new sender on the
    /// receiver's transport, then a route in the table, then op 12 telling the receiver.
    fn add_sink(&mut self, receiver: i64, publisher: i64, kind: Kind, ctx: &mut Context<Self>) {
        let (Some(to), Some(from)) = (self.members.get(&receiver), self.members.get(&publisher))
        else {
            return;
        };
        let (Some(their), Some(our), Some(codec)) = (
            from.fragment.as_ref(),
            to.fragment.as_ref(),
            from.tracks.get(&kind).cloned(),
        ) else {
            return;
        };
        if to.seen.contains_key(&(publisher, kind)) {
            return;
        }
        let payload_types: Vec<(u8, u8)> = their
            .codecs_of(kind)
            .filter(|c| !c.is_rtx())
            .filter_map(|c| Some((c.payload_type, our.payload_type_of(&c.name)?)))
            .collect();
        if payload_types.is_empty() {
            tracing::debug!(receiver, publisher, "no codec in common");
            return;
        }
        let ssrc = forwarding::random_ssrc();
        let (flags, connection) = (to.flags.clone(), to.connection);
        let (bot, transport) = (to.bot.clone(), to.transport.clone());
        let sink = move |output| Sink {
            receiver,
            output,
            ssrc,
            payload_types,
            flags,
        };
        if let Some(bot) = bot {
            // Bots take audio alone: none of their libraries decodes video.
            if kind == Kind::Audio {
                self.install(publisher, kind, connection, sink(Output::Bot(bot)));
            }
            return;
        }
        let Some(transport) = transport else {
            return;
        };
        let request = AddSink {
            publisher,
            kind,
            ssrc,
            codec,
        };
        let added =
            transport
                .send(request)
                .into_actor(self)
                .map(move |result, room, _| match result {
                    Ok(Ok(())) => room.install(publisher, kind, connection, sink(Output::WebRtc)),
                    Ok(Err(error)) => tracing::warn!(%error, "adding a sender failed"),
                    Err(_) => {}
                });
        // One at a time: the receiver's client adds m-lines in the order op 12 arrives.
        ctx.wait(added);
    }

    /// Puts a receiver's sink in the table and tells the receiver (op 12, and SPEAKING under
    /// the SSRC it sees), unless it left or reconnected meanwhile.
    fn install(&mut self, publisher: i64, kind: Kind, connection: u64, sink: Sink) {
        let receiver = sink.receiver;
        let (Some(to), Some(from)) = (self.members.get(&receiver), self.members.get(&publisher))
        else {
            return;
        };
        if to.connection != connection {
            return;
        }
        let ssrc = sink.ssrc;
        let publisher_flags = from.flags.clone();
        let streams = from.streams.clone();
        let speaking = from.speaking.clone().filter(|_| kind == Kind::Audio);
        self.edit_table(|table| {
            table
                .entry((publisher, kind))
                .or_insert_with(|| Route {
                    flags: publisher_flags,
                    paused: false,
                    sinks: Vec::new(),
                })
                .sinks
                .push(sink);
        });
        if let Some(to) = self.members.get_mut(&receiver) {
            to.seen.insert((publisher, kind), ssrc);
            let seen = |kind| to.seen.get(&(publisher, kind)).copied().unwrap_or(0);
            to.session.do_send(ToVoice::Op(
                12,
                json!({
                    "user_id": publisher.to_string(),
                    "audio_ssrc": seen(Kind::Audio),
                    "video_ssrc": seen(Kind::Video),
                    "rtx_ssrc": 0,
                    "streams": streams,
                }),
            ));
            // SPEAKING names the SSRC the receiver sees, known only now.
            if let Some(speaking) = speaking {
                to.session.do_send(speaking_op(publisher, speaking, ssrc));
            }
        }
    }

    fn remove(&mut self, user_id: i64, ctx: &mut Context<Self>) {
        let Some(member) = self.members.remove(&user_id) else {
            return;
        };
        self.registry.do_send(Forget(member.resume.clone()));
        if let Some(transport) = member.transport {
            transport.do_send(Close);
        }
        if let Some(bot) = &member.bot {
            self.media.bots.unregister(bot);
        }
        self.edit_table(|table| {
            table.retain(|(publisher, _), _| *publisher != user_id);
            for route in table.values_mut() {
                route.sinks.retain(|sink| sink.receiver != user_id);
            }
        });
        for other in self.members.values_mut() {
            other.seen.retain(|(publisher, _), _| *publisher != user_id);
        }
        self.send_others(
            user_id,
            &ToVoice::Op(13, json!({ "user_id": user_id.to_string() })),
        );
        if self.members.is_empty() {
            ctx.stop();
        }
    }
}

impl Actor for Room {
    type Context = Context<Self>;

    fn stopped(&mut self, ctx: &mut Self::Context) {
        // The table's bots hold the media loops' handles: without it, the loops end.
        self.table.store(Arc::new(Table::new()));
        // Only a failure leaves members behind: their clients reconnect.
        for member in self.members.values() {
            member.session.do_send(ToVoice::Close(SERVER_CRASHED));
            if let Some(transport) = &member.transport {
                transport.do_send(Close);
            }
            if let Some(bot) = &member.bot {
                self.media.bots.unregister(bot);
            }
        }
        self.registry.do_send(RoomGone {
            key: self.key.clone(),
            room: ctx.address(),
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the room is full")]
    Full,
}

/// A redeemed admission's voice connection joins (IDENTIFY).
#[derive(Message, Clone)]
#[rtype(result = "Result<(), JoinError>")]
pub struct Join {
    pub user_id: i64,
    pub connection: u64,
    pub session: Recipient<ToVoice>,
    pub flags: watch::Receiver<Option<Flags>>,
    pub resume: ResumeKey,
}

impl Handler<Join> for Room {
    type Result = Result<(), JoinError>;

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) -> Self::Result {
        let limit = self.media.settings.room_limit;
        if !self.members.contains_key(&join.user_id) && self.members.len() >= limit {
            if self.members.is_empty() {
                ctx.stop();
            }
            return Err(JoinError::Full);
        }
        // A re-admission replaces the earlier connection of the same user.
        if let Some(old) = self.members.get(&join.user_id) {
            old.session.do_send(ToVoice::Close(DISCONNECTED));
            self.remove(join.user_id, ctx);
        }
        self.registry.do_send(Remember {
            resume: join.resume.clone(),
            room: ctx.address(),
        });
        self.members.insert(
            join.user_id,
            Member {
                connection: join.connection,
                resume: join.resume,
                suspended: false,
                session: join.session,
                flags: join.flags,
                fragment: None,
                transport: None,
                peer: None,
                bot: None,
                tracks: HashMap::new(),
                streams: json!([]),
                speaking: None,
                seen: HashMap::new(),
            },
        );
        Ok(())
    }
}

/// SELECT_PROTOCOL: open the member's transport; answers with the answer fragment.
#[derive(Message)]
#[rtype(result = "Result<String, MediaError>")]
pub struct Connect {
    pub user_id: i64,
    pub connection: u64,
    pub fragment: ClientFragment,
}

impl Handler<Connect> for Room {
    type Result = ResponseActFuture<Self, Result<String, MediaError>>;

    fn handle(&mut self, connect: Connect, ctx: &mut Context<Self>) -> Self::Result {
        let (media, media_loop) = (self.media.clone(), self.media_loop.clone());
        let Some(member) = self.member_mut(connect.user_id, connect.connection) else {
            return Box::pin(async { Err(MediaError::Gone) }.into_actor(self));
        };
        if member.transport.is_some() {
            // A second SELECT_PROTOCOL would need a second connection the client cannot use.
            return Box::pin(async { Err(MediaError::Gone) }.into_actor(self));
        }
        // Known from now on, so a failure while it opens ends the member's call.
        let id = media_loop.peer_id(connect.user_id);
        member.peer = Some(id);
        let opening = Opening {
            media,
            media_loop,
            id,
            fragment: connect.fragment.clone(),
            failed: ctx.address().recipient(),
        };
        let (user_id, connection, fragment) =
            (connect.user_id, connect.connection, connect.fragment);
        Box::pin(
            Transport::open(opening)
                .into_actor(self)
                .map(move |opened, room, ctx| {
                    let (transport, answer) = opened?;
                    let Some(member) = room.member_mut(user_id, connection) else {
                        // Left (or was replaced) while the connection was being opened:
                        // dropping the transport closes it.
                        return Err(MediaError::Gone);
                    };
                    member.transport = Some(transport.start());
                    member.fragment = Some(fragment);
                    // Everything already published in the room goes to the newcomer.
                    let published: Vec<(i64, Kind)> = room
                        .members
                        .iter()
                        .filter(|(id, _)| **id != user_id)
                        .flat_map(|(id, m)| m.tracks.keys().map(move |kind| (*id, *kind)))
                        .collect();
                    for (publisher, kind) in published {
                        room.add_sink(user_id, publisher, kind, ctx);
                    }
                    Ok(answer)
                }),
        )
    }
}

/// SELECT_PROTOCOL `udp` from a bot: take its packets (SSRC `ssrc`) and send it everyone's
/// audio; answers with its key.
#[derive(Message)]
#[rtype(result = "Result<[u8; 32], MediaError>")]
pub struct ConnectBot {
    pub user_id: i64,
    pub connection: u64,
    pub ssrc: u32,
}

impl Handler<ConnectBot> for Room {
    type Result = Result<[u8; 32], MediaError>;

    fn handle(&mut self, connect: ConnectBot, ctx: &mut Context<Self>) -> Self::Result {
        let user_id = connect.user_id;
        let media_loop = self.media_loop.clone();
        let bots = self.media.bots.clone();
        let publishes = may_publish(&self.key, user_id);
        let member = self
            .member_mut(user_id, connect.connection)
            .ok_or(MediaError::Gone)?;
        if member.transport.is_some() || member.bot.is_some() {
            return Err(MediaError::Gone);
        }
        let (bot, key) = bots.register(user_id, connect.ssrc, media_loop);
        member.bot = Some(bot);
        member.fragment = Some(ClientFragment::plain_opus(bots::OPUS_PAYLOAD_TYPE));
        if publishes {
            let opus = Codec::opus(bots::OPUS_PAYLOAD_TYPE).to_webrtc();
            member.tracks.insert(Kind::Audio, opus);
        }
        let others: Vec<(i64, Vec<Kind>)> = self
            .members
            .iter()
            .filter(|(id, _)| **id != user_id)
            .map(|(id, m)| (*id, m.tracks.keys().copied().collect()))
            .collect();
        for (other, kinds) in others {
            for kind in kinds {
                self.add_sink(user_id, other, kind, ctx);
            }
            if publishes {
                self.add_sink(other, user_id, Kind::Audio, ctx);
            }
        }
        Ok(key)
    }
}

/// Op 12 VIDEO (or SPEAKING's `ssrc`): the SSRCs the member publishes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Announce {
    pub user_id: i64,
    pub connection: u64,
    pub published: Published,
    pub streams: Option<Value>,
}

impl Handler<Announce> for Room {
    type Result = ();

    fn handle(&mut self, announce: Announce, _: &mut Context<Self>) {
        let Some(member) = self.members.get_mut(&announce.user_id) else {
            return;
        };
        if member.connection != announce.connection {
            return;
        }
        if let Some(streams) = announce.streams {
            member.streams = streams;
        }
        if let Some(transport) = &member.transport {
            transport.do_send(Publish(announce.published));
        }
    }
}

/// Op 5 SPEAKING, relayed to the others under the SSRC each of them sees.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Speaking {
    pub user_id: i64,
    pub connection: u64,
    pub speaking: Value,
}

impl Handler<Speaking> for Room {
    type Result = ();

    fn handle(&mut self, speaking: Speaking, _: &mut Context<Self>) {
        let Some(speaker) = self.members.get_mut(&speaking.user_id) else {
            return;
        };
        if speaker.connection != speaking.connection {
            return;
        }
        speaker.speaking = Some(speaking.speaking.clone());
        // Receivers without the speaker's audio yet hear of it with their op 12.
        for member in self.members.values() {
            if let Some(ssrc) = member.seen.get(&(speaking.user_id, Kind::Audio)) {
                member.session.do_send(speaking_op(
                    speaking.user_id,
                    speaking.speaking.clone(),
                    *ssrc,
                ));
            }
        }
    }
}

fn speaking_op(user_id: i64, speaking: Value, ssrc: u32) -> ToVoice {
    ToVoice::Op(
        5,
        json!({ "user_id": user_id.to_string(), "speaking": speaking, "ssrc": ssrc }),
    )
}

/// The member's voice connection is gone, or their admission ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub user_id: i64,
    pub connection: u64,
}

impl Handler<Leave> for Room {
    type Result = ();

    fn handle(&mut self, leave: Leave, ctx: &mut Context<Self>) {
        if self.member(leave.user_id, leave.connection).is_some() {
            self.remove(leave.user_id, ctx);
        }
    }
}

/// The member's voice connection dropped without a clean close: keep the seat (and the media
/// flowing) for `window`, then leave unless a RESUME came.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Suspend {
    pub user_id: i64,
    pub connection: u64,
    pub window: std::time::Duration,
}

impl Handler<Suspend> for Room {
    type Result = ();

    fn handle(&mut self, suspend: Suspend, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get_mut(&suspend.user_id) else {
            return;
        };
        if member.connection != suspend.connection {
            return;
        }
        member.suspended = true;
        let (user_id, connection) = (suspend.user_id, suspend.connection);
        ctx.run_later(suspend.window, move |room, ctx| {
            let expired = room
                .members
                .get(&user_id)
                .is_some_and(|m| m.suspended && m.connection == connection);
            if expired {
                room.remove(user_id, ctx);
            }
        });
    }
}

/// What a successful RESUME gets: the room, the user, their flags, and whether the transport
/// is open (SELECT_PROTOCOL already done).
pub type Resumed = (Addr<Room>, i64, watch::Receiver<Option<Flags>>, bool);

/// RESUME: a new voice connection takes over a suspended seat.
#[derive(Message)]
#[rtype(result = "Option<Resumed>")]
pub struct Reattach {
    pub resume: ResumeKey,
    pub connection: u64,
    pub session: Recipient<ToVoice>,
}

impl Handler<Reattach> for Room {
    type Result = Option<Resumed>;

    fn handle(&mut self, reattach: Reattach, ctx: &mut Context<Self>) -> Self::Result {
        let (user_id, member) = self
            .members
            .iter_mut()
            .find(|(_, m)| m.suspended && m.resume == reattach.resume)?;
        member.suspended = false;
        member.connection = reattach.connection;
        member.session = reattach.session;
        Some((
            ctx.address(),
            *user_id,
            member.flags.clone(),
            member.transport.is_some(),
        ))
    }
}

impl Handler<TrackStarted> for Room {
    type Result = ();

    fn handle(&mut self, started: TrackStarted, ctx: &mut Context<Self>) {
        // The Go Live rule: in a stream's room only the streamer publishes; a viewer's own
        // tracks are never forwarded.
        if !may_publish(&self.key, started.user_id) {
            return;
        }
        let Some(member) = self.members.get_mut(&started.user_id) else {
            return;
        };
        member.tracks.insert(started.kind, started.codec);
        let receivers: Vec<i64> = self
            .members
            .keys()
            .copied()
            .filter(|id| *id != started.user_id)
            .collect();
        for receiver in receivers {
            self.add_sink(receiver, started.user_id, started.kind, ctx);
        }
    }
}

/// Whether `user_id` publishes in `room`: anyone in a channel or call, only the streamer (the
/// stream key's last part, `guild:{g}:{c}:{u}` or `call:{c}:{u}`) in a Go Live stream.
fn may_publish(room: &RoomKey, user_id: i64) -> bool {
    match room {
        RoomKey::Stream { stream_key } => {
            stream_key
                .rsplit(':')
                .next()
                .and_then(|streamer| streamer.parse::<i64>().ok())
                == Some(user_id)
        }
        _ => true,
    }
}

impl Handler<TransportFailed> for Room {
    type Result = ();

    fn handle(&mut self, failed: TransportFailed, ctx: &mut Context<Self>) {
        let user_id = failed.id.user_id;
        // A connection the member no longer uses (re-admitted since) ends alone.
        if let Some(member) = self
            .members
            .get(&user_id)
            .filter(|member| member.peer == Some(failed.id))
        {
            member.session.do_send(ToVoice::Close(DISCONNECTED));
            self.remove(user_id, ctx);
        }
    }
}

impl Handler<MediaLoopDied> for Room {
    type Result = ();

    fn handle(&mut self, _: MediaLoopDied, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The registry of active rooms.
pub struct VoiceRooms {
    media: Media,
    rooms: HashMap<RoomKey, Addr<Room>>,
    /// Which room holds the seat a RESUME names.
    seats: HashMap<ResumeKey, Addr<Room>>,
}

impl VoiceRooms {
    pub fn new(media: Media) -> Self {
        Self {
            media,
            rooms: HashMap::new(),
            seats: HashMap::new(),
        }
    }
}

impl Actor for VoiceRooms {
    type Context = Context<Self>;
}

impl actix::Supervised for VoiceRooms {}

/// The room for `key`, started if it is not active.
#[derive(Message)]
#[rtype(result = "Addr<Room>")]
pub struct Enter(pub RoomKey);

impl Handler<Enter> for VoiceRooms {
    type Result = MessageResult<Enter>;

    fn handle(&mut self, Enter(key): Enter, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(room) = self.rooms.get(&key).filter(|room| room.connected()) {
            return MessageResult(room.clone());
        }
        let (media, registry) = (self.media.clone(), ctx.address());
        let room = Room::create(|room| Room::new(key.clone(), media, registry, room));
        self.rooms.insert(key, room.clone());
        MessageResult(room)
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct RoomGone {
    key: RoomKey,
    room: Addr<Room>,
}

impl Handler<RoomGone> for VoiceRooms {
    type Result = ();

    fn handle(&mut self, gone: RoomGone, _: &mut Context<Self>) {
        if self.rooms.get(&gone.key) == Some(&gone.room) {
            self.rooms.remove(&gone.key);
        }
        self.seats.retain(|_, room| *room != gone.room);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Remember {
    resume: ResumeKey,
    room: Addr<Room>,
}

impl Handler<Remember> for VoiceRooms {
    type Result = ();

    fn handle(&mut self, remember: Remember, _: &mut Context<Self>) {
        self.seats.insert(remember.resume, remember.room);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Forget(ResumeKey);

impl Handler<Forget> for VoiceRooms {
    type Result = ();

    fn handle(&mut self, Forget(resume): Forget, _: &mut Context<Self>) {
        self.seats.remove(&resume);
    }
}

impl Handler<Reattach> for VoiceRooms {
    type Result = ResponseFuture<Option<Resumed>>;

    fn handle(&mut self, reattach: Reattach, _: &mut Context<Self>) -> Self::Result {
        let room = self.seats.get(&reattach.resume).cloned();
        Box::pin(async move { room?.send(reattach).await.ok().flatten() })
    }
}

/// How many rooms are active (for metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ActiveRooms;

impl Handler<ActiveRooms> for VoiceRooms {
    type Result = usize;

    fn handle(&mut self, _: ActiveRooms, _: &mut Context<Self>) -> usize {
        self.rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_streamer_publishes_in_a_stream() {
        let stream = |key: &str| RoomKey::Stream {
            stream_key: key.into(),
        };
        assert!(may_publish(&stream("guild:1:2:7"), 7));
        assert!(!may_publish(&stream("guild:1:2:7"), 8));
        assert!(may_publish(&stream("call:2:9"), 9));
        let channel = RoomKey::Guild {
            guild_id: 1,
            channel_id: 2,
        };
        assert!(may_publish(&channel, 8));
    }
}
