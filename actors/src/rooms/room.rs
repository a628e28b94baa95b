//! A live room: the actor that owns its participants, their grants and tracks, and (through
//! [`super::media`]) their peer connections on the room's media loop. Every participant's
//! socket sends it their requests ([`Signal`]); it answers and tells the others, enforcing
//! grants on each request (a grant taken away by the API stops what it allowed at once).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use serde_json::{json, Value};

use super::api::{
    CloseRoom, Configure, MuteTrack, ParticipantInfo, Participants, RemoveParticipant, RoomError,
    RoomEvent, RoomPorts, RoomSettings, SendData, TrackInfo, UpdateParticipant,
};
use super::media::{Publisher, RoomMedia, Subscriber};
use super::registry::{Joining, RoomGone, Rooms};
use super::signal::{self, Code, Data, DataKind, Rate, Request, Selection, ToClient};
use super::Grants;
use crate::voice::Media;

/// What a participant asked to receive.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    /// Everyone's tracks, now and later.
    pub all: bool,
    pub participants: HashSet<String>,
    pub sids: HashSet<String>,
}

impl Subscriptions {
    pub fn wants(&self, publisher: &str, sid: &str) -> bool {
        self.all || self.participants.contains(publisher) || self.sids.contains(sid)
    }
}

/// One published track.
pub(super) struct Track {
    pub info: TrackInfo,
    /// The m-line of the publish connection it arrives on.
    pub mid: String,
    /// Its key in the forwarding table.
    pub stream: i64,
    /// Its first packet arrived: it is announced and forwarded.
    pub live: bool,
}

pub(super) struct Member {
    pub identity: String,
    pub name: String,
    pub metadata: String,
    pub grants: Grants,
    pub joined_at_ms: u64,
    pub client: Recipient<ToClient>,
    pub tracks: Vec<Track>,
    pub subscriptions: Subscriptions,
    pub publisher: Option<Publisher>,
    pub subscriber: Option<Subscriber>,
    /// Messages on their lossy data channel, bounded like a socket's.
    pub lossy_rate: Rate,
}

impl Member {
    pub fn send(&self, text: Arc<str>) {
        self.client.do_send(ToClient::Text(text));
    }

    fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            identity: self.identity.clone(),
            name: self.name.clone(),
            metadata: self.metadata.clone(),
            grants: self.grants.clone(),
            joined_at_ms: self.joined_at_ms,
            tracks: self.live_tracks().map(|t| t.info.clone()).collect(),
        }
    }

    pub fn live_tracks(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|track| track.live)
    }

    /// The wire's Participant (docs/rooms.md), with the grants for its owner alone.
    fn wire(&self, own: bool) -> Value {
        let mut participant = json!({
            "identity": self.identity,
            "name": self.name,
            "metadata": self.metadata,
            "joined_at": self.joined_at_ms,
            "tracks": self.live_tracks().map(track_wire).collect::<Vec<_>>(),
        });
        if own {
            participant["grants"] = json!(self.grants);
        }
        participant
    }
}

/// The wire's Track.
pub(super) fn track_wire(track: &Track) -> Value {
    let mut wire = json!(track.info);
    wire["mid"] = json!(track.mid);
    wire
}

pub struct LiveRoom {
    pub(super) id: String,
    settings: RoomSettings,
    pub(super) ports: RoomPorts,
    registry: Addr<Rooms>,
    pub(super) members: HashMap<u64, Member>,
    next_member: u64,
    pub(super) media: RoomMedia,
    /// The stop scheduled while the room is empty.
    emptied: Option<SpawnHandle>,
}

impl LiveRoom {
    pub(super) fn new(
        id: String,
        settings: RoomSettings,
        media: Media,
        ports: RoomPorts,
        registry: Addr<Rooms>,
        ctx: &mut Context<Self>,
    ) -> Self {
        ports.observer.observe(&id, RoomEvent::RoomStarted);
        let mut room = Self {
            id,
            settings,
            ports,
            registry,
            members: HashMap::new(),
            next_member: 0,
            media: RoomMedia::start(media, ctx),
            emptied: None,
        };
        room.schedule_stop_if_empty(ctx);
        room
    }

    pub(super) fn by_identity(&self, identity: &str) -> Option<u64> {
        self.members
            .iter()
            .find(|(_, m)| m.identity == identity)
            .map(|(id, _)| *id)
    }

    /// Sends `text` to every member but `except` (and, if `visible_only`, only when `about`
    /// is not hidden: hidden participants are never announced).
    pub(super) fn broadcast(&self, except: u64, text: &Arc<str>) {
        for (id, member) in &self.members {
            if *id != except {
                member.send(text.clone());
            }
        }
    }

    fn limit(&self) -> usize {
        let node = self.ports.limits.max_participants;
        match self.settings.max_participants {
            0 => node,
            room => room.min(node),
        }
        .try_into()
        .unwrap_or(usize::MAX)
    }

    fn room_wire(&self) -> Value {
        json!({
            "id": self.id,
            "name": if self.settings.name.is_empty() { &self.id } else { &self.settings.name },
            "metadata": self.settings.metadata,
            "max_participants": self.settings.max_participants,
            "empty_timeout": self.settings.empty_timeout.as_secs(),
            "participants": self.visible(),
        })
    }

    fn visible(&self) -> u32 {
        let count = self.members.values().filter(|m| !m.grants.hidden).count();
        count.try_into().unwrap_or(u32::MAX)
    }

    fn schedule_stop_if_empty(&mut self, ctx: &mut Context<Self>) {
        if !self.members.is_empty() || self.emptied.is_some() {
            return;
        }
        let timeout = self.settings.empty_timeout;
        self.emptied = Some(ctx.run_later(timeout, |room, ctx| {
            if room.members.is_empty() {
                ctx.stop();
            }
        }));
    }

    /// Takes a member out: their connections close, their tracks are unpublished, the others
    /// are told; `closing` is sent to them first (`None`: they left themselves).
    pub(super) fn remove(
        &mut self,
        member_id: u64,
        closing: Option<(Code, &str)>,
        ctx: &mut Context<Self>,
    ) {
        let Some(mut member) = self.members.remove(&member_id) else {
            return;
        };
        if let Some((code, message)) = closing {
            member
                .client
                .do_send(ToClient::Close(code, message.to_string()));
        }
        let info = member.info();
        for track in std::mem::take(&mut member.tracks) {
            self.unpublished(&member, track);
        }
        self.media.hang_up(&mut member);
        if !member.grants.hidden {
            let left = signal::message("participant-left", json!({ "identity": member.identity }));
            self.broadcast(member_id, &left);
        }
        self.ports
            .observer
            .observe(&self.id, RoomEvent::ParticipantLeft(info));
        self.schedule_stop_if_empty(ctx);
    }

    /// A track of `member` is gone: its forwarding stops, everyone hears of it.
    pub(super) fn unpublished(&mut self, member: &Member, track: Track) {
        self.media.forget_stream(track.stream, &mut self.members);
        if !track.live {
            return;
        }
        let gone = signal::message(
            "track-unpublished",
            json!({ "participant": member.identity, "sid": track.info.sid }),
        );
        member.send(gone.clone());
        if !member.grants.hidden {
            for other in self.members.values() {
                other.send(gone.clone());
            }
        }
        self.ports.observer.observe(
            &self.id,
            RoomEvent::TrackUnpublished {
                participant: member.identity.clone(),
                track: track.info,
            },
        );
    }

    fn refuse(member: &Member, code: Code, message: &str, request: &str) {
        member.send(signal::error(code, message, Some(request)));
    }

    fn request(&mut self, member_id: u64, request: Request, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get(&member_id) else {
            return;
        };
        let name = request.name();
        let grants = member.grants.clone();
        match request {
            Request::Join { .. } => {
                Self::refuse(member, Code::WrongState, "already joined", name);
            }
            // The socket closes itself (1000) and says `Left`; this is for any other caller.
            Request::Leave {} => self.remove(member_id, None, ctx),
            Request::Ping { ts } => member.send(signal::message("pong", json!({ "ts": ts }))),
            Request::PublishOffer { .. } | Request::Unpublish { .. } if !grants.publish => {
                Self::refuse(member, Code::PermissionDenied, "no publish grant", name);
            }
            Request::PublishOffer { sdp, tracks } => {
                self.publish_offer(member_id, sdp, tracks, ctx);
            }
            Request::PublishIceCandidate(candidate) => {
                if let Some(member) = self.members.get_mut(&member_id) {
                    self.media.candidate(member, true, candidate);
                }
            }
            Request::Unpublish { sid } => self.unpublish(member_id, &sid, name),
            Request::Subscribe(_) | Request::SubscribeAnswer { .. } if !grants.subscribe => {
                Self::refuse(member, Code::PermissionDenied, "no subscribe grant", name);
            }
            Request::Subscribe(selection) => self.subscribe(member_id, selection, ctx),
            Request::SubscribeAnswer { sdp } => self.subscribe_answer(member_id, sdp, ctx),
            Request::SubscribeIceCandidate(candidate) => {
                if let Some(member) = self.members.get_mut(&member_id) {
                    self.media.candidate(member, false, candidate);
                }
            }
            Request::Unsubscribe(selection) => self.unsubscribe(member_id, &selection),
            // A refusal was sent to the socket.
            Request::Mute { sid } => drop(self.mute(member_id, &sid, true, Some(name))),
            Request::Unmute { sid } => drop(self.mute(member_id, &sid, false, Some(name))),
            Request::PublishData(_) if !grants.publish_data => {
                Self::refuse(
                    member,
                    Code::PermissionDenied,
                    "no publish_data grant",
                    name,
                );
            }
            Request::PublishData(data) => match data.check() {
                Err(why) => Self::refuse(member, Code::TooLarge, why, name),
                Ok(()) => {
                    let from = Some(member.identity.clone());
                    self.send_data(from, &data);
                }
            },
        }
    }

    fn unpublish(&mut self, member_id: u64, sid: &str, name: &str) {
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        let Some(index) = member.tracks.iter().position(|t| t.info.sid == sid) else {
            return Self::refuse(member, Code::NotFound, "no such track of yours", name);
        };
        let track = member.tracks.remove(index);
        if let Some(member) = self.members.remove(&member_id) {
            self.unpublished(&member, track);
            self.members.insert(member_id, member);
        }
    }

    /// Mutes or unmutes one of `member_id`'s tracks (from their socket when `request` names
    /// it, else from the API).
    fn mute(
        &mut self,
        member_id: u64,
        sid: &str,
        muted: bool,
        request: Option<&str>,
    ) -> Result<(), RoomError> {
        let Some(member) = self.members.get_mut(&member_id) else {
            return Err(RoomError::NoParticipant);
        };
        let Some(track) = member.tracks.iter_mut().find(|t| t.info.sid == sid) else {
            if let Some(request) = request {
                Self::refuse(member, Code::NotFound, "no such track of yours", request);
            }
            return Err(RoomError::NoTrack);
        };
        if track.info.muted == muted {
            return Ok(());
        }
        track.info.muted = muted;
        let stream = track.stream;
        let text = signal::message(
            if muted { "muted" } else { "unmuted" },
            json!({ "participant": member.identity, "sid": sid }),
        );
        let hidden = member.grants.hidden;
        self.media.pause(stream, muted);
        if let Some(member) = self.members.get(&member_id) {
            member.send(text.clone());
        }
        if !hidden {
            self.broadcast(member_id, &text);
        }
        Ok(())
    }

    /// Reliable data over the sockets, lossy over the data channels.
    pub(super) fn send_data(&self, from: Option<String>, data: &Data) {
        let mut message = json!({ "from": from, "payload": data.payload, "kind": data.kind });
        if let Some(topic) = &data.topic {
            message["topic"] = json!(topic);
        }
        let recipients = self.members.values().filter(|m| {
            Some(&m.identity) != from.as_ref()
                && (data.to.is_empty() || data.to.contains(&m.identity))
        });
        match data.kind {
            DataKind::Reliable => {
                let text = signal::message("data", message);
                for member in recipients {
                    member.send(text.clone());
                }
            }
            DataKind::Lossy => {
                if let Some(object) = message.as_object_mut() {
                    object.remove("kind");
                }
                let text: Arc<str> = message.to_string().into();
                for member in recipients {
                    self.media.send_lossy(member, &text);
                }
            }
        }
    }

    fn subscribe(&mut self, member_id: u64, selection: Selection, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get(&member_id) else {
            return;
        };
        if let Some(sid) = &selection.sid {
            let exists = self.members.values().any(|m| {
                m.identity != member.identity && m.tracks.iter().any(|t| &t.info.sid == sid)
            });
            if !exists {
                return Self::refuse(member, Code::NotFound, "no such track", "subscribe");
            }
        }
        if let Some(identity) = &selection.participant {
            if self.by_identity(identity).is_none() {
                return Self::refuse(member, Code::NotFound, "no such participant", "subscribe");
            }
        }
        if let Some(member) = self.members.get_mut(&member_id) {
            let subscriptions = &mut member.subscriptions;
            match (selection.sid, selection.participant) {
                (Some(sid), _) => {
                    subscriptions.sids.insert(sid);
                }
                (None, Some(identity)) => {
                    subscriptions.participants.insert(identity);
                }
                (None, None) => subscriptions.all = true,
            }
        }
        super::media::refresh_subscriptions(self, member_id, ctx);
    }

    fn unsubscribe(&mut self, member_id: u64, selection: &Selection) {
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        let subscriptions = &mut member.subscriptions;
        match (&selection.sid, &selection.participant) {
            (Some(sid), _) => {
                subscriptions.sids.remove(sid);
            }
            (None, Some(identity)) => {
                subscriptions.participants.remove(identity);
            }
            (None, None) => *subscriptions = Subscriptions::default(),
        }
        // Streams of a participant subscribed to as a whole stay, unless that went too.
        self.media.drop_unwanted(member);
    }

    fn publish_offer(
        &mut self,
        member_id: u64,
        sdp: String,
        tracks: Vec<signal::TrackRequest>,
        ctx: &mut Context<Self>,
    ) {
        super::media::publish_offer(self, member_id, sdp, tracks, ctx);
    }

    fn subscribe_answer(&mut self, member_id: u64, sdp: String, ctx: &mut Context<Self>) {
        super::media::subscribe_answer(self, member_id, sdp, ctx);
    }
}

impl Actor for LiveRoom {
    type Context = Context<Self>;

    fn stopped(&mut self, ctx: &mut Self::Context) {
        // Only a failure or a close leaves members behind.
        for member in self.members.values() {
            member
                .client
                .do_send(ToClient::Close(Code::RoomClosed, "the room closed".into()));
        }
        self.media.stop();
        self.ports
            .observer
            .observe(&self.id, RoomEvent::RoomFinished);
        self.registry.do_send(RoomGone {
            id: self.id.clone(),
            room: ctx.address(),
        });
    }
}

/// A socket joins (from [`super::registry::Join`]); its member number.
#[derive(Message)]
#[rtype(result = "Result<u64, RoomError>")]
pub struct Enter {
    pub participant: Joining,
    pub client: Recipient<ToClient>,
    pub auto_subscribe: bool,
}

impl Handler<Enter> for LiveRoom {
    type Result = Result<u64, RoomError>;

    fn handle(&mut self, enter: Enter, ctx: &mut Context<Self>) -> Self::Result {
        let joining = enter.participant;
        // The same identity again replaces the earlier connection.
        if let Some(old) = self.by_identity(&joining.identity) {
            self.remove(old, Some((Code::Replaced, "joined again elsewhere")), ctx);
        }
        if self.members.len() >= self.limit() {
            return Err(RoomError::Full);
        }
        if let Some(handle) = self.emptied.take() {
            ctx.cancel_future(handle);
        }
        let member_id = self.next_member;
        self.next_member += 1;
        let member = Member {
            identity: joining.identity,
            name: joining.name,
            metadata: joining.metadata,
            grants: joining.grants,
            joined_at_ms: now_ms(),
            client: enter.client,
            tracks: Vec::new(),
            subscriptions: Subscriptions::default(),
            publisher: None,
            subscriber: None,
            lossy_rate: Rate::default(),
        };
        let others: Vec<Value> = self
            .members
            .values()
            .filter(|m| !m.grants.hidden)
            .map(|m| m.wire(false))
            .collect();
        let hidden = member.grants.hidden;
        let info = member.info();
        member.send(signal::message(
            "joined",
            json!({ "room": self.room_wire(), "participant": member.wire(true), "participants": others }),
        ));
        if !hidden {
            let joined = signal::message(
                "participant-joined",
                json!({ "participant": member.wire(false) }),
            );
            self.broadcast(member_id, &joined);
        }
        self.members.insert(member_id, member);
        self.ports
            .observer
            .observe(&self.id, RoomEvent::ParticipantJoined(info));
        if enter.auto_subscribe
            && self
                .members
                .get(&member_id)
                .is_some_and(|m| m.grants.subscribe)
        {
            self.subscribe(member_id, Selection::default(), ctx);
        }
        Ok(member_id)
    }
}

/// A joined socket's request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Signal {
    pub member: u64,
    pub request: Request,
}

impl Handler<Signal> for LiveRoom {
    type Result = ();

    fn handle(&mut self, signal: Signal, ctx: &mut Context<Self>) {
        self.request(signal.member, signal.request, ctx);
    }
}

/// A joined socket closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Left {
    pub member: u64,
}

impl Handler<Left> for LiveRoom {
    type Result = ();

    fn handle(&mut self, left: Left, ctx: &mut Context<Self>) {
        self.remove(left.member, None, ctx);
    }
}

/// How many participants are visible.
#[derive(Message)]
#[rtype(result = "u32")]
pub struct Visible;

impl Handler<Visible> for LiveRoom {
    type Result = u32;

    fn handle(&mut self, _: Visible, _: &mut Context<Self>) -> u32 {
        self.visible()
    }
}

impl Handler<Participants> for LiveRoom {
    type Result = Vec<ParticipantInfo>;

    fn handle(&mut self, _: Participants, _: &mut Context<Self>) -> Self::Result {
        self.members.values().map(Member::info).collect()
    }
}

impl Handler<RemoveParticipant> for LiveRoom {
    type Result = bool;

    fn handle(&mut self, remove: RemoveParticipant, ctx: &mut Context<Self>) -> bool {
        let Some(member) = self.by_identity(&remove.identity) else {
            return false;
        };
        self.remove(member, Some((Code::Removed, "removed from the room")), ctx);
        true
    }
}

impl Handler<MuteTrack> for LiveRoom {
    type Result = Result<(), RoomError>;

    fn handle(&mut self, mute: MuteTrack, _: &mut Context<Self>) -> Self::Result {
        let member = self
            .by_identity(&mute.identity)
            .ok_or(RoomError::NoParticipant)?;
        self.mute(member, &mute.track_sid, mute.muted, None)
    }
}

impl Handler<UpdateParticipant> for LiveRoom {
    type Result = Result<(), RoomError>;

    fn handle(&mut self, update: UpdateParticipant, _: &mut Context<Self>) -> Self::Result {
        let member_id = self
            .by_identity(&update.identity)
            .ok_or(RoomError::NoParticipant)?;
        let member = self
            .members
            .get_mut(&member_id)
            .ok_or(RoomError::NoParticipant)?;
        if let Some(metadata) = update.metadata {
            member.metadata = metadata;
        }
        let lost_publish = update.grants.as_ref().is_some_and(|g| !g.publish);
        let lost_subscribe = update.grants.as_ref().is_some_and(|g| !g.subscribe);
        if let Some(grants) = update.grants {
            member.grants = grants;
        }
        member.send(signal::message(
            "participant-updated",
            json!({ "participant": member.wire(true) }),
        ));
        if !member.grants.hidden {
            let updated = signal::message(
                "participant-updated",
                json!({ "participant": member.wire(false) }),
            );
            self.broadcast(member_id, &updated);
        }
        if lost_publish {
            // What they published stops at once.
            let tracks = self
                .members
                .get_mut(&member_id)
                .map(|m| std::mem::take(&mut m.tracks))
                .unwrap_or_default();
            if let Some(member) = self.members.remove(&member_id) {
                for track in tracks {
                    self.unpublished(&member, track);
                }
                self.members.insert(member_id, member);
            }
        }
        if lost_subscribe {
            if let Some(member) = self.members.get_mut(&member_id) {
                member.subscriptions = Subscriptions::default();
                self.media.drop_unwanted(member);
            }
        }
        Ok(())
    }
}

impl Handler<SendData> for LiveRoom {
    type Result = Result<(), RoomError>;

    fn handle(&mut self, send: SendData, _: &mut Context<Self>) -> Self::Result {
        let data = Data {
            kind: if send.reliable {
                DataKind::Reliable
            } else {
                DataKind::Lossy
            },
            payload: send.payload,
            to: send.to,
            topic: None,
        };
        self.send_data(send.from, &data);
        Ok(())
    }
}

impl Handler<CloseRoom> for LiveRoom {
    type Result = bool;

    fn handle(&mut self, _: CloseRoom, ctx: &mut Context<Self>) -> bool {
        let members: Vec<u64> = self.members.keys().copied().collect();
        for member in members {
            self.remove(member, Some((Code::RoomClosed, "the room was closed")), ctx);
        }
        ctx.stop();
        true
    }
}

impl Handler<Configure> for LiveRoom {
    type Result = ();

    fn handle(&mut self, configure: Configure, _: &mut Context<Self>) {
        self.settings = configure.settings;
        let updated = signal::message("room-updated", json!({ "room": self.room_wire() }));
        for member in self.members.values() {
            member.send(updated.clone());
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
