//! The hot path: one task per incoming track reads RTP and writes it to every receiver's own
//! outgoing track, rewritten to that receiver's SSRC and payload type.
//!
//! The task reads a snapshot of the room's forwarding table (an `ArcSwap` the room actor
//! replaces on every change), and the participants' mute and deaf flags straight from their
//! admission's `watch` channel: no actor mailbox per packet.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::admissions::Flags;
use super::keyframes::Keyframes;
use super::sdp::Kind;

/// One receiver of one published track.
#[derive(Clone)]
pub struct Sink {
    pub receiver: i64,
    pub track: Arc<TrackLocalStaticRTP>,
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
        let TrackRemoteEvent::OnRtpPacket(mut packet) = event else {
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
        if key.1 == Kind::Audio && !forwards_audio(&route.flags) {
            continue;
        }
        // The publisher's extension ids mean nothing to the receivers.
        packet.header.extension = false;
        packet.header.extensions.clear();
        for sink in &route.sinks {
            if key.1 == Kind::Audio && !hears(&sink.flags) {
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
            write(sink, out);
        }
    }
}

/// Hands one packet to a receiver's connection without waiting: a receiver whose connection
/// cannot take it now (its queue is full) loses this packet, and nobody else waits for it.
fn write(sink: &Sink, packet: rtc::rtp::Packet) {
    match sink.track.write_rtp(packet).now_or_never() {
        Some(Ok(())) => {}
        Some(Err(error)) => tracing::trace!(%error, receiver = sink.receiver, "forwarding"),
        None => tracing::trace!(receiver = sink.receiver, "a receiver's queue is full"),
    }
}

fn forwards_audio(flags: &watch::Receiver<Option<Flags>>) -> bool {
    flags.borrow().is_some_and(|f| f.forwards_audio())
}

fn hears(flags: &watch::Receiver<Option<Flags>>) -> bool {
    flags.borrow().is_some_and(|f| f.hears())
}
