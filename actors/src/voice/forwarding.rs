//! The forwarding table and the hot path's one rule: which receivers get a copy of a packet,
//! under which SSRC and payload type.
//!
//! The room actor replaces the table (an `ArcSwap`) on every change; the room's media loop
//! reads a snapshot per packet, and the participants' mute and deaf flags straight from their
//! admission's `watch` channel: no actor mailbox per packet.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rtc::rtp::packet::Packet;
use tokio::sync::watch;

use super::admissions::Flags;
use super::bots::Bot;
use super::sdp::Kind;

/// Where a receiver's copy of a stream goes.
#[derive(Clone)]
pub enum Output {
    /// A browser's peer connection (a track sending it this stream, under the sink's SSRC).
    WebRtc,
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
    /// Nothing of the stream goes anywhere (a rooms track its publisher muted, audio or video).
    pub paused: bool,
    pub sinks: Vec<Sink>,
}

/// What a route forwards: voice's `(publisher, kind)`, or a rooms track's `(stream, kind)`.
pub type StreamKey = (i64, Kind);

/// The room's forwarding table.
pub type Table = HashMap<StreamKey, Route>;

/// The snapshot shared by the room actor (writer) and the room's media loops (readers).
pub type SharedTable = Arc<ArcSwap<Table>>;

/// Replaces the table with an edited copy (the hot path keeps reading the old snapshot until
/// it loads the new one).
pub fn edit(table: &SharedTable, edit: impl FnOnce(&mut Table)) {
    let mut edited = Table::clone(&table.load());
    edit(&mut edited);
    table.store(Arc::new(edited));
}

/// One receiver's copy of a packet: the sink, and the payload type it takes the codec under.
pub struct SinkCopy<'a> {
    pub sink: &'a Sink,
    payload_type: u8,
}

impl SinkCopy<'_> {
    /// `packet` (without its header extensions) as this receiver gets it.
    pub fn of(&self, packet: &Packet) -> Packet {
        let mut out = packet.clone();
        out.header.ssrc = self.sink.ssrc;
        out.header.payload_type = self.payload_type;
        out
    }
}

/// The copies of a packet of a publisher's `kind` stream sent with `payload_type`: one per
/// receiver on the route, none while the route is paused or the publisher is muted, none for a deafened receiver
/// (audio), none for a receiver without the codec.
pub fn copies(route: &Route, kind: Kind, payload_type: u8) -> impl Iterator<Item = SinkCopy<'_>> {
    let audio = kind == Kind::Audio;
    let muted = route.paused || (audio && !forwards_audio(&route.flags));
    route
        .sinks
        .iter()
        .filter(move |sink| !muted && (!audio || hears(&sink.flags)))
        .filter_map(move |sink| {
            let (_, ours) = sink
                .payload_types
                .iter()
                .find(|(theirs, _)| *theirs == payload_type)?;
            Some(SinkCopy {
                sink,
                payload_type: *ours,
            })
        })
}

/// A receiver's SSRC for a stream it is sent (0 and 1 mean something to some clients).
pub fn random_ssrc() -> u32 {
    loop {
        let ssrc = rand::random::<u32>();
        if ssrc > 1 {
            return ssrc;
        }
    }
}

/// Drops the publisher's header extensions: their ids mean nothing to the receivers.
pub fn strip_extensions(packet: &mut Packet) {
    packet.header.extension = false;
    packet.header.extensions.clear();
}

fn forwards_audio(flags: &watch::Receiver<Option<Flags>>) -> bool {
    flags.borrow().is_some_and(|f| f.forwards_audio())
}

fn hears(flags: &watch::Receiver<Option<Flags>>) -> bool {
    flags.borrow().is_some_and(|f| f.hears())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(flags: Flags) -> watch::Receiver<Option<Flags>> {
        watch::channel(Some(flags)).1
    }

    fn sink(receiver: i64, flags: Flags) -> Sink {
        Sink {
            receiver,
            output: Output::WebRtc,
            ssrc: 1000 + receiver as u32,
            // The publisher's Opus is 111; this receiver numbers it 109.
            payload_types: vec![(111, 109)],
            flags: self::flags(flags),
        }
    }

    fn receivers(route: &Route, kind: Kind, payload_type: u8) -> Vec<i64> {
        copies(route, kind, payload_type)
            .map(|copy| copy.sink.receiver)
            .collect()
    }

    #[test]
    fn copies_skip_the_deafened_and_stop_while_the_publisher_is_muted() {
        let deaf = Flags {
            self_deaf: true,
            ..Flags::default()
        };
        let mut route = Route {
            flags: flags(Flags::default()),
            paused: false,
            sinks: vec![sink(1, Flags::default()), sink(2, deaf)],
        };
        assert_eq!(receivers(&route, Kind::Audio, 111), vec![1]);
        // Deafened receivers still get video; a codec the receiver lacks goes nowhere.
        assert_eq!(receivers(&route, Kind::Video, 111), vec![1, 2]);
        assert!(receivers(&route, Kind::Audio, 96).is_empty());
        route.flags = flags(Flags {
            mute: true,
            ..Flags::default()
        });
        assert!(receivers(&route, Kind::Audio, 111).is_empty());
        assert_eq!(receivers(&route, Kind::Video, 111), vec![1, 2]);
    }

    #[test]
    fn a_copy_carries_the_receivers_ssrc_and_payload_type() {
        let route = Route {
            flags: flags(Flags::default()),
            paused: false,
            sinks: vec![sink(7, Flags::default())],
        };
        let mut packet = Packet::default();
        packet.header.ssrc = 42;
        packet.header.payload_type = 111;
        packet.header.sequence_number = 9;
        let copy = copies(&route, Kind::Audio, 111).next().unwrap();
        let out = copy.of(&packet);
        assert_eq!(
            (
                out.header.ssrc,
                out.header.payload_type,
                out.header.sequence_number
            ),
            (1007, 109, 9)
        );
    }
}
