//! The hot path: one task per incoming track reads RTP and writes it to every receiver's own
//! outgoing track (or a bot's socket), rewritten to that receiver's SSRC and payload type.
//!
//! The task reads a snapshot of the room's forwarding table (an `ArcSwap` the room actor
//! replaces on every change), and the participants' mute and deaf flags straight from their
//! admission's `watch` channel: no actor mailbox per packet.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use rtc::rtp::packet::Packet;
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::admissions::Flags;
use super::bots::Bot;
use super::keyframes::Keyframes;
use super::sdp::Kind;

/// Where a receiver's copy of a stream goes.
#[derive(Clone)]
pub enum Output {
    /// A browser's peer connection: the track sending it this stream.
    WebRtc(Arc<TrackLocalStaticRTP>),
    /// A bot on plain UDP.
    Bot(Arc<Bot>),
}

/// One receiver of one published track.
#[derive(Clone)]
pub struct Sink {
    pub receiver: i64,
    pub output: Output,
    /// The SSRC this receiver sees the stream under.
    pub ssrc: u32,
    /// Publisher payload type → this receiver's payload type for the same codec.
    pub payload_types: Vec<(u8, u8)>,
    /// The receiver's flags: a deafened receiver gets no audio.
    pub flags: watch::Receiver<Option<Flags>>,
}

/// Where one publisher's track goes.
#[derive(Clone)]
pub struct Route {
    /// The publisher's flags: a muted publisher's audio goes nowhere.
    pub flags: watch::Receiver<Option<Flags>>,
    pub sinks: Vec<Sink>,
}

/// The room's forwarding table, keyed by (publisher, kind).
pub type Table = HashMap<(i64, Kind), Route>;

/// The snapshot shared by the room actor (writer) and the forwarding tasks (readers).
pub type SharedTable = Arc<ArcSwap<Table>>;

/// Forwards one incoming track until it ends. Runs on the media runtime.
pub async fn forward(
    track: Arc<dyn TrackRemote>,
    keyframes: Arc<Keyframes>,
    table: SharedTable,
    key: (i64, Kind),
) {
    let mut known_sinks = 0;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let snapshot = table.load();
        let Some(route) = snapshot.get(&key) else {
            continue;
        };
        // A new receiver of video needs a keyframe to start decoding: ask the publisher.
        if key.1 == Kind::Video && route.sinks.len() > known_sinks {
            keyframes.request().await;
        }
        known_sinks = route.sinks.len();
        deliver(route, key.1, packet);
    }
}

/// Sends one packet of a publisher's `kind` stream to each of its route's receivers, unless
/// the publisher is muted or a receiver deafened (audio).
pub fn deliver(route: &Route, kind: Kind, mut packet: Packet) {
    if kind == Kind::Audio && !forwards_audio(&route.flags) {
        return;
    }
    // The publisher's extension ids mean nothing to the receivers.
    packet.header.extension = false;
    packet.header.extensions.clear();
    for sink in &route.sinks {
        if kind == Kind::Audio && !hears(&sink.flags) {
            continue;
        }
        let Some(payload_type) = sink
            .payload_types
            .iter()
            .find(|(theirs, _)| *theirs == packet.header.payload_type)
            .map(|(_, ours)| *ours)
        else {
            continue;
        };
        let mut out = packet.clone();
        out.header.ssrc = sink.ssrc;
        out.header.payload_type = payload_type;
        match &sink.output {
            Output::WebRtc(track) => write(track, sink.receiver, out),
            Output::Bot(bot) => bot.send(&out),
        }
    }
}

/// Hands one packet to a receiver's connection without waiting: a receiver whose connection
/// cannot take it now (its queue is full) loses this packet, and nobody else waits for it.
fn write(track: &TrackLocalStaticRTP, receiver: i64, packet: Packet) {
    match track.write_rtp(packet).now_or_never() {
        Some(Ok(())) => {}
        Some(Err(error)) => tracing::trace!(%error, receiver, "forwarding"),
        None => tracing::trace!(receiver, "a receiver's queue is full"),
    }
}

fn forwards_audio(flags: &watch::Receiver<Option<Flags>>) -> bool {
    flags.borrow().is_some_and(|f| f.forwards_audio())
}

fn hears(flags: &watch::Receiver<Option<Flags>>) -> bool {
    flags.borrow().is_some_and(|f| f.hears())
}
