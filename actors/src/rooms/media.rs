//! A live room's media: each participant's publish connection (the client offers, the room
//! answers) and subscribe connection (the room offers what they subscribed to, the client
//! answers), both on the room's media loop — voice's [`MediaLoop`], forwarding table and
//! keyframe handling, with a route per published track.
//!
//! Connections and tracks get numbers from one counter per room: a connection's number is its
//! `user_id` in the loop, a track's is its stream in the forwarding table.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;
use rand::distr::{Alphanumeric, SampleString};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::api::{RoomEvent, TrackInfo, TrackKind};
use super::room::{track_wire, LiveRoom, Member, Track};
use super::signal::{
    self, Candidate, Code, Data, DataKind, TrackRequest, MAX_CANDIDATES, MAX_TRACKS,
};
use super::Source;
use crate::voice::admissions::Flags;
use crate::voice::forwarding::{self, Output, Route, SharedTable, Sink, Table};
use crate::voice::media::{Media, MediaError};
use crate::voice::media_loop::{
    Levels, LossyData, MediaLoop, MediaLoopDied, NewTrack, PeerId, Reports, Streams, TrackStarted,
    TransportFailed,
};
use crate::voice::sdp::{self, Codec, Kind};
use crate::voice::transport::sending_track;

/// The room's side of its media loop.
pub struct RoomMedia {
    media: Media,
    table: SharedTable,
    media_loop: MediaLoop,
    next: i64,
    /// Streams whose publisher muted them.
    paused: HashSet<i64>,
    /// What every route reads as flags: rooms have no voice mute or deafen.
    open: watch::Receiver<Option<Flags>>,
    /// The active speakers last announced.
    speakers: Vec<String>,
}

/// The quietest level (RFC 6464, -dBov) that counts as speaking.
const SPEAKING_LEVEL: u8 = 50;

/// A participant's publish connection.
pub struct Publisher {
    id: PeerId,
    /// The client's codecs, by its payload types.
    codecs: Vec<Codec>,
    candidates: usize,
}

/// A participant's subscribe connection.
pub struct Subscriber {
    /// `None` while it is being opened.
    id: Option<PeerId>,
    /// What the connection sends (or will, once offered), in the order added.
    sent: Vec<Sent>,
    /// An offer is out (or being made): the next waits for its answer.
    offering: bool,
    candidates: usize,
}

/// A stream on a subscribe connection.
struct Sent {
    stream: i64,
    kind: Kind,
    publisher: String,
    sid: String,
    codec: RTCRtpCodec,
    ssrc: u32,
    /// Publisher payload type → this receiver's; known once offered.
    payload_types: Vec<(u8, u8)>,
    mid: Option<String>,
    /// In the forwarding table.
    installed: bool,
}

impl RoomMedia {
    pub fn start(media: Media, ctx: &mut Context<LiveRoom>) -> Self {
        let table: SharedTable = Arc::new(ArcSwap::from_pointee(Table::new()));
        let reports = Reports {
            started: ctx.address().recipient(),
            failed: ctx.address().recipient(),
            died: ctx.address().recipient(),
            data: Some(ctx.address().recipient()),
            levels: Some(ctx.address().recipient()),
        };
        let (_, open) = watch::channel(Some(Flags::default()));
        Self {
            media_loop: MediaLoop::start(&media, table.clone(), reports),
            media,
            table,
            next: 1,
            paused: HashSet::new(),
            open,
            speakers: Vec::new(),
        }
    }

    fn number(&mut self) -> i64 {
        self.next += 1;
        self.next
    }

    /// Ends the loops (the table holds nothing that keeps them).
    pub fn stop(&mut self) {
        self.table.store(Arc::new(Table::new()));
    }

    /// Closes a leaving member's connections and takes their receiving out of the table.
    pub fn hang_up(&mut self, member: &mut Member) {
        if let Some(publisher) = member.publisher.take() {
            self.media_loop.close(publisher.id);
        }
        if let Some(id) = member.subscriber.take().and_then(|s| s.id) {
            self.media_loop.close(id);
            forwarding::edit(&self.table, |table| {
                for route in table.values_mut() {
                    route.sinks.retain(|sink| sink.receiver != id.user_id);
                }
            });
        }
    }

    /// A track is gone: its route goes, and subscribers stop expecting it.
    pub fn forget_stream(
        &mut self,
        stream: i64,
        members: &mut std::collections::HashMap<u64, Member>,
    ) {
        self.paused.remove(&stream);
        forwarding::edit(&self.table, |table| {
            table.retain(|(key, _), _| *key != stream);
        });
        for member in members.values_mut() {
            if let Some(subscriber) = member.subscriber.as_mut() {
                for sent in subscriber.sent.iter_mut().filter(|s| s.stream == stream) {
                    sent.installed = false;
                }
            }
        }
    }

    /// Mutes (pauses) or unmutes a stream.
    pub fn pause(&mut self, stream: i64, muted: bool) {
        if muted {
            self.paused.insert(stream);
        } else {
            self.paused.remove(&stream);
        }
        forwarding::edit(&self.table, |table| {
            for ((key, _), route) in table.iter_mut() {
                if *key == stream {
                    route.paused = muted;
                }
            }
        });
    }

    /// A candidate the client trickled (bounded per connection).
    pub fn candidate(&self, member: &mut Member, publish: bool, candidate: Candidate) {
        let target = if publish {
            member.publisher.as_mut().map(|p| (p.id, &mut p.candidates))
        } else {
            member
                .subscriber
                .as_mut()
                .and_then(|s| Some((s.id?, &mut s.candidates)))
        };
        let Some((id, count)) = target else {
            return;
        };
        if *count >= MAX_CANDIDATES || candidate.candidate.is_empty() {
            return;
        }
        *count += 1;
        self.media_loop.candidate(
            id,
            RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_mline_index,
                username_fragment: None,
                url: None,
            },
        );
    }

    /// Takes out of the table what `member` no longer wants (or may no longer have).
    pub fn drop_unwanted(&mut self, member: &mut Member) {
        let Some(subscriber) = member.subscriber.as_mut() else {
            return;
        };
        let Some(receiver) = subscriber.id.map(|id| id.user_id) else {
            return;
        };
        let (grants, subscriptions) = (&member.grants, &member.subscriptions);
        let mut unwanted = Vec::new();
        for sent in subscriber.sent.iter_mut() {
            if sent.installed
                && !(grants.subscribe && subscriptions.wants(&sent.publisher, &sent.sid))
            {
                sent.installed = false;
                unwanted.push(sent.stream);
            }
        }
        if unwanted.is_empty() {
            return;
        }
        forwarding::edit(&self.table, |table| {
            for ((stream, _), route) in table.iter_mut() {
                if unwanted.contains(stream) {
                    route.sinks.retain(|sink| sink.receiver != receiver);
                }
            }
        });
    }

    /// Lossy data for `member`, on their subscribe connection's data channel (lost if they
    /// have none).
    pub fn send_lossy(&self, member: &Member, text: &Arc<str>) {
        if let Some(id) = member.subscriber.as_ref().and_then(|s| s.id) {
            self.media_loop.lossy(id, text.clone());
        }
    }

    /// Puts a sent stream's sink in the table.
    fn install(&self, receiver: i64, sent: &Sent) {
        let sink = Sink {
            receiver,
            output: Output::WebRtc,
            ssrc: sent.ssrc,
            payload_types: sent.payload_types.clone(),
            flags: self.open.clone(),
        };
        let (open, paused) = (self.open.clone(), self.paused.contains(&sent.stream));
        forwarding::edit(&self.table, |table| {
            let route = table
                .entry((sent.stream, sent.kind))
                .or_insert_with(|| Route {
                    flags: open,
                    paused,
                    sinks: Vec::new(),
                });
            route.sinks.retain(|s| s.receiver != receiver);
            route.sinks.push(sink);
        });
    }
}

fn new_sid() -> String {
    format!("TR_{}", Alphanumeric.sample_string(&mut rand::rng(), 12))
}

fn track_kind(kind: Kind) -> TrackKind {
    match kind {
        Kind::Audio => TrackKind::Audio,
        Kind::Video => TrackKind::Video,
    }
}

/// The server's candidate in an SDP it wrote, as `ice-candidate` trickles it.
fn candidate_message(target: &str, sdp: &str) -> Option<Arc<str>> {
    let section = sdp::sections(sdp).into_iter().next()?;
    let candidate = section
        .lines
        .iter()
        .find_map(|line| line.strip_prefix("a=candidate:"))?;
    Some(signal::message(
        "ice-candidate",
        json!({
            "target": target,
            "candidate": format!("candidate:{candidate}"),
            "sdp_mid": section.mid,
            "sdp_mline_index": 0,
        }),
    ))
}

/// `publish-offer`: the client's offer on its publish connection (the first opens it).
pub fn publish_offer(
    room: &mut LiveRoom,
    member_id: u64,
    offer: String,
    requested: Vec<TrackRequest>,
    ctx: &mut Context<LiveRoom>,
) {
    let Some(member) = room.members.get_mut(&member_id) else {
        return;
    };
    let refuse = |member: &Member, code, message: &str| {
        member.send(signal::error(code, message, Some("publish-offer")));
    };
    let codecs = match sdp::codecs(&offer, &[]) {
        Ok(codecs) => codecs,
        Err(error) => return refuse(member, Code::BadMessage, &error.to_string()),
    };
    let mut new = Vec::new();
    for section in sdp::sections(&offer) {
        let Some(kind) = section.kind().filter(|_| section.sends()) else {
            continue;
        };
        if member.tracks.iter().any(|t| t.mid == section.mid) {
            continue;
        }
        let source = requested
            .iter()
            .find(|r| r.mid == section.mid)
            .map(|r| r.source)
            .unwrap_or(match kind {
                Kind::Audio => Source::Microphone,
                Kind::Video => Source::Camera,
            });
        if !member.grants.may_publish(source) {
            return refuse(member, Code::PermissionDenied, "that source is not granted");
        }
        new.push((section.mid, kind, source));
    }
    if member.tracks.len() + new.len() > MAX_TRACKS {
        return refuse(member, Code::BadMessage, "more than 8 tracks");
    }
    let mut streams = Streams {
        audio_level: sdp::extmap_id(&offer, sdp::AUDIO_LEVEL_URI),
        ..Streams::default()
    };
    for (mid, kind, source) in new {
        let stream = room.media.number();
        streams.by_mid.insert(mid.clone(), stream);
        member.tracks.push(Track {
            info: TrackInfo {
                sid: new_sid(),
                kind: track_kind(kind),
                source,
                muted: false,
                codec: String::new(),
            },
            mid,
            stream,
            live: false,
        });
    }
    let media_loop = room.media.media_loop.clone();
    let first = member.publisher.is_none();
    let negotiation = match &mut member.publisher {
        Some(publisher) => {
            publisher.codecs = codecs;
            let id = publisher.id;
            Box::pin(async move { media_loop.negotiate(id, offer, None, streams).await })
                as futures_util::future::BoxFuture<'static, Result<String, MediaError>>
        }
        None => {
            let peer = match room.media.media.peer() {
                Ok(peer) => peer,
                Err(error) => {
                    member.tracks.retain(|t| t.live);
                    return refuse(member, Code::Media, &error.to_string());
                }
            };
            let number = room.media.number();
            let id = media_loop.peer_id(number);
            let shared: Arc<[Codec]> = codecs.clone().into();
            member.publisher = Some(Publisher {
                id,
                codecs,
                candidates: 0,
            });
            Box::pin(async move {
                media_loop
                    .adopt(id, peer, shared, Some(offer), streams)
                    .await
            })
        }
    };
    ctx.wait(negotiation.into_actor(room).map(move |answer, room, _| {
        let Some(member) = room.members.get_mut(&member_id) else {
            return;
        };
        match answer {
            Ok(answer) => {
                let tracks: Vec<Value> = member.tracks.iter().map(track_wire).collect();
                member.send(signal::message(
                    "publish-answer",
                    json!({ "sdp": answer, "tracks": tracks }),
                ));
                if first {
                    if let Some(candidate) = candidate_message("publish", &answer) {
                        member.send(candidate);
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "a publish offer failed");
                member.tracks.retain(|t| t.live);
                if first {
                    member.publisher = None;
                }
                member.send(signal::error(
                    Code::Media,
                    &error.to_string(),
                    Some("publish-offer"),
                ));
            }
        }
    }));
}

/// What `member_id` wants and is not sent yet goes into their next subscribe offer; what they
/// want again goes back into the table.
pub fn refresh_subscriptions(room: &mut LiveRoom, member_id: u64, ctx: &mut Context<LiveRoom>) {
    let Some(member) = room.members.get(&member_id) else {
        return;
    };
    if !member.grants.subscribe {
        return;
    }
    let wanted: Vec<(String, String, i64, Kind, RTCRtpCodec)> = room
        .members
        .iter()
        .filter(|(id, other)| **id != member_id && !other.tracks.is_empty())
        .flat_map(|(_, other)| {
            other.live_tracks().filter_map(|track| {
                let codec = codec_of(other, track)?;
                Some((
                    other.identity.clone(),
                    track.info.sid.clone(),
                    track.stream,
                    kind_of(track),
                    codec,
                ))
            })
        })
        .filter(|(publisher, sid, ..)| member.subscriptions.wants(publisher, sid))
        .collect();
    let Some(member) = room.members.get_mut(&member_id) else {
        return;
    };
    let subscriber = member.subscriber.get_or_insert_with(|| Subscriber {
        id: None,
        sent: Vec::new(),
        offering: false,
        candidates: 0,
    });
    let receiver = subscriber.id.map(|id| id.user_id);
    for (publisher, sid, stream, kind, codec) in wanted {
        match subscriber.sent.iter_mut().find(|s| s.stream == stream) {
            Some(sent) => {
                if let (false, Some(receiver), Some(_)) = (sent.installed, receiver, &sent.mid) {
                    room.media.install(receiver, sent);
                    sent.installed = true;
                }
            }
            None => subscriber.sent.push(Sent {
                stream,
                kind,
                publisher,
                sid,
                codec,
                ssrc: forwarding::random_ssrc(),
                payload_types: Vec::new(),
                mid: None,
                installed: false,
            }),
        }
    }
    offer(room, member_id, ctx);
}

fn kind_of(track: &Track) -> Kind {
    match track.info.kind {
        TrackKind::Video => Kind::Video,
        _ => Kind::Audio,
    }
}

/// The codec a live track arrives with, from its publisher's offer.
fn codec_of(publisher: &Member, track: &Track) -> Option<RTCRtpCodec> {
    let codecs = &publisher.publisher.as_ref()?.codecs;
    codecs
        .iter()
        .find(|c| c.mime_type().eq_ignore_ascii_case(&track.info.codec))
        .map(Codec::to_webrtc)
}

/// Sends `member_id` an offer of the streams not offered yet, unless one is out.
fn offer(room: &mut LiveRoom, member_id: u64, ctx: &mut Context<LiveRoom>) {
    let Some(subscriber) = room
        .members
        .get_mut(&member_id)
        .and_then(|m| m.subscriber.as_mut())
    else {
        return;
    };
    let fresh: Vec<NewTrack> = subscriber
        .sent
        .iter()
        .filter(|s| s.mid.is_none())
        .map(|s| {
            let track = sending_track(s.publisher.clone(), s.kind, s.ssrc, s.codec.clone());
            (track, (s.stream, s.kind))
        })
        .collect();
    if subscriber.offering || fresh.is_empty() {
        return;
    }
    subscriber.offering = true;
    let media_loop = room.media.media_loop.clone();
    let (id, peer) = match subscriber.id {
        Some(id) => (id, None),
        None => match room.media.media.peer() {
            Ok(peer) => {
                let number = room.media.number();
                let id = media_loop.peer_id(number);
                subscriber.id = Some(id);
                (id, Some(peer))
            }
            Err(error) => {
                subscriber.offering = false;
                if let Some(member) = room.members.get(&member_id) {
                    member.send(signal::error(
                        Code::Media,
                        &error.to_string(),
                        Some("subscribe"),
                    ));
                }
                return;
            }
        },
    };
    let first = peer.is_some();
    let offered = async move {
        if let Some(peer) = peer {
            media_loop
                .adopt(id, peer, Arc::from([]), None, Streams::default())
                .await?;
        }
        // The first offer opens the lossy data channel too.
        media_loop.offer(id, fresh, first).await
    };
    ctx.wait(offered.into_actor(room).map(move |offered, room, _| {
        let publishers = publisher_codecs(room);
        let Some(member) = room.members.get_mut(&member_id) else {
            return;
        };
        let Some(subscriber) = member.subscriber.as_mut() else {
            return;
        };
        let (sdp, mids) = match offered {
            Ok(offered) => offered,
            Err(error) => {
                subscriber.offering = false;
                subscriber.sent.retain(|s| s.mid.is_some());
                member.send(signal::error(
                    Code::Media,
                    &error.to_string(),
                    Some("subscribe"),
                ));
                return;
            }
        };
        let sections = sdp::sections(&sdp);
        let mut mids = mids.into_iter();
        for sent in subscriber.sent.iter_mut().filter(|s| s.mid.is_none()) {
            sent.mid = mids.next().flatten();
            let section = sections.iter().find(|s| Some(&s.mid) == sent.mid.as_ref());
            let name = sent.codec.mime_type.split('/').nth(1).unwrap_or_default();
            sent.payload_types = publishers
                .iter()
                .filter(|(stream, _)| *stream == sent.stream)
                .flat_map(|(_, codecs)| codecs.iter())
                .filter(|c| !c.is_rtx() && c.name.eq_ignore_ascii_case(name))
                .filter_map(|c| Some((c.payload_type, section?.payload_type_of(c)?)))
                .collect();
        }
        let tracks: Vec<Value> = subscriber
            .sent
            .iter()
            .map(|s| {
                json!({
                    "sid": s.sid,
                    "participant": s.publisher,
                    "kind": s.kind.as_str(),
                    "mid": s.mid,
                    "codec": s.codec.mime_type,
                })
            })
            .collect();
        member.send(signal::message(
            "subscribe-offer",
            json!({ "sdp": sdp, "tracks": tracks }),
        ));
        if first {
            if let Some(candidate) = candidate_message("subscribe", &sdp) {
                member.send(candidate);
            }
        }
    }));
}

/// Every published stream's codecs (its publisher's, by their payload types).
fn publisher_codecs(room: &LiveRoom) -> Vec<(i64, Vec<Codec>)> {
    room.members
        .values()
        .filter_map(|m| Some((m.publisher.as_ref()?, &m.tracks)))
        .flat_map(|(publisher, tracks)| {
            tracks
                .iter()
                .map(|track| (track.stream, publisher.codecs.clone()))
        })
        .collect()
}

/// `subscribe-answer`: the client answered the last offer; what it carries starts flowing.
pub fn subscribe_answer(
    room: &mut LiveRoom,
    member_id: u64,
    answer: String,
    ctx: &mut Context<LiveRoom>,
) {
    let Some(member) = room.members.get(&member_id) else {
        return;
    };
    let Some(id) = member
        .subscriber
        .as_ref()
        .filter(|s| s.offering)
        .and_then(|s| s.id)
    else {
        return member.send(signal::error(
            Code::WrongState,
            "no subscribe-offer is out",
            Some("subscribe-answer"),
        ));
    };
    let media_loop = room.media.media_loop.clone();
    let applied = async move { media_loop.answered(id, answer).await };
    ctx.wait(applied.into_actor(room).map(move |applied, room, ctx| {
        let Some(member) = room.members.get_mut(&member_id) else {
            return;
        };
        let Some(subscriber) = member.subscriber.as_mut() else {
            return;
        };
        subscriber.offering = false;
        if let Err(error) = applied {
            member.send(signal::error(
                Code::Media,
                &error.to_string(),
                Some("subscribe-answer"),
            ));
            return;
        }
        let wanted =
            |s: &Sent| member.grants.subscribe && member.subscriptions.wants(&s.publisher, &s.sid);
        for sent in subscriber.sent.iter_mut() {
            if !sent.installed && sent.mid.is_some() && wanted(sent) {
                room.media.install(id.user_id, sent);
                sent.installed = true;
            }
        }
        // What was asked for meanwhile.
        refresh_subscriptions(room, member_id, ctx);
    }));
}

impl Handler<TrackStarted> for LiveRoom {
    type Result = ();

    fn handle(&mut self, started: TrackStarted, ctx: &mut Context<Self>) {
        let stream = started.stream.0;
        let Some((member_id, member)) = self
            .members
            .iter_mut()
            .find(|(_, m)| m.tracks.iter().any(|t| t.stream == stream))
        else {
            return;
        };
        let member_id = *member_id;
        let Some(track) = member.tracks.iter_mut().find(|t| t.stream == stream) else {
            return;
        };
        track.live = true;
        track.info.codec = started.codec.mime_type.clone();
        let published = signal::message(
            "track-published",
            json!({ "participant": member.identity, "track": track_wire(track) }),
        );
        let event = RoomEvent::TrackPublished {
            participant: member.identity.clone(),
            track: track.info.clone(),
        };
        member.send(published.clone());
        if !member.grants.hidden {
            self.broadcast(member_id, &published);
        }
        self.ports.observer.observe(&self.id, event);
        let subscribers: Vec<u64> = self
            .members
            .keys()
            .copied()
            .filter(|id| *id != member_id)
            .collect();
        for subscriber in subscribers {
            refresh_subscriptions(self, subscriber, ctx);
        }
    }
}

impl Handler<TransportFailed> for LiveRoom {
    type Result = ();

    fn handle(&mut self, failed: TransportFailed, ctx: &mut Context<Self>) {
        let owner = self.members.iter().find(|(_, m)| {
            m.publisher.as_ref().map(|p| p.id) == Some(failed.id)
                || m.subscriber.as_ref().and_then(|s| s.id) == Some(failed.id)
        });
        if let Some((member_id, _)) = owner {
            let member_id = *member_id;
            self.remove(
                member_id,
                Some((Code::Media, "the media connection failed")),
                ctx,
            );
        }
    }
}

impl Handler<MediaLoopDied> for LiveRoom {
    type Result = ();

    fn handle(&mut self, _: MediaLoopDied, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<LossyData> for LiveRoom {
    type Result = ();

    /// A message on a publisher's lossy data channel: `publish-data`'s fields (`payload`, `to`,
    /// `topic`), sent on as lossy data; refused (silently: lossy data may be lost) without the
    /// `publish_data` grant, over the bounds, or past the member's rate.
    fn handle(&mut self, lossy: LossyData, _: &mut Context<Self>) {
        let Some(member) = self
            .members
            .values_mut()
            .find(|m| m.publisher.as_ref().map(|p| p.id) == Some(lossy.id))
        else {
            return;
        };
        if !member.grants.publish_data || !member.lossy_rate.admit() {
            return;
        }
        let Ok(mut data) = serde_json::from_str::<Data>(&lossy.text) else {
            return;
        };
        if data.check().is_err() {
            return;
        }
        data.kind = DataKind::Lossy;
        let from = Some(member.identity.clone());
        self.send_data(from, &data);
    }
}

impl Handler<Levels> for LiveRoom {
    type Result = ();

    /// Announces the active speakers (loudest first) when they change.
    fn handle(&mut self, Levels(levels): Levels, _: &mut Context<Self>) {
        let mut speaking: Vec<(&str, u8)> = levels
            .into_iter()
            .filter(|(_, level)| *level <= SPEAKING_LEVEL)
            .filter_map(|(stream, level)| {
                let member = self.members.values().find(|m| {
                    !m.grants.hidden
                        && m.tracks
                            .iter()
                            .any(|t| t.stream == stream && t.live && !t.info.muted)
                })?;
                Some((member.identity.as_str(), level))
            })
            .collect();
        speaking.sort_by_key(|(_, level)| *level);
        speaking.dedup_by_key(|(identity, _)| *identity);
        let identities: Vec<String> = speaking.iter().map(|(i, _)| i.to_string()).collect();
        if identities == self.media.speakers {
            return;
        }
        let speakers: Vec<Value> = speaking
            .iter()
            .map(|(identity, level)| {
                json!({ "identity": identity, "level": f64::from(127 - level) / 127.0 })
            })
            .collect();
        let text = signal::message("speaking", json!({ "speakers": speakers }));
        for member in self.members.values() {
            member.send(text.clone());
        }
        self.media.speakers = identities;
    }
}
