//! A room's media loop: one task that owns every participant's peer connection (`rtc`'s
//! sans-I/O core, re-exported by `webrtc`) and forwards RTP between them.
//!
//! A packet read from a publisher is written into each receiver's connection and sent on that
//! receiver's socket in the same turn of the loop: no channel, no lock and no task wake-up per
//! receiver, which is what a per-connection driver costs on an SFU's fan-out. The loop reads
//! every connection's socket itself (a wake-up drains all that are ready), so nothing crosses
//! threads on the way in either. Timers (ICE consent, DTLS retransmits, RTCP reports) are each
//! connection's `poll_timeout`, slept on together.
//!
//! A room may have several loops (`[voice] room_loops`, its shards), so one very big room can
//! use more than one core: each participant's connection lives in one shard, and a publisher's
//! packet goes once to each other shard, which writes it to the receivers it holds. One loop is
//! the default: it costs the least CPU per packet, and rooms spread over the media threads.
//!
//! The transport actors and the room actor talk to the loops through [`MediaLoop`]; the loops
//! tell the room when a participant's track starts and when a connection fails. If a loop dies,
//! the room stops and its clients reconnect.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::BytesMut;
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::packet::Packet;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use webrtc::peer_connection::RTCSessionDescription;

use super::forwarding::{self, Output, Route, SharedTable, StreamKey};
use super::keyframes;
use super::media::{LiveGuard, Media, MediaError, NewPeer};
use super::sdp::{Codec, Kind};

/// To the room: a participant's track arrived (they publish `kind` with `codec`), forwarded
/// by the table's route `stream`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TrackStarted {
    pub user_id: i64,
    pub kind: Kind,
    pub codec: RTCRtpCodec,
    pub stream: StreamKey,
}

/// To the room: a participant's connection failed (ICE consent lost, DTLS failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TransportFailed {
    /// Which connection: after a re-admission, the old one can fail in another loop.
    pub id: PeerId,
}

/// To the room: its media loop is gone (it panicked); the room's calls end.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MediaLoopDied;

/// Where the loop reports to: the room actor.
pub struct Reports {
    pub started: Recipient<TrackStarted>,
    pub failed: Recipient<TransportFailed>,
    pub died: Recipient<MediaLoopDied>,
    /// Rooms only: lossy data from clients.
    pub data: Option<Recipient<LossyData>>,
    /// Rooms only: audio levels.
    pub levels: Option<Recipient<Levels>>,
}

/// One participant's connection, as the loop knows it: their user id and which of their
/// connections (a re-admission opens a new one before the old one is closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerId {
    pub user_id: i64,
    pub generation: u64,
}

/// A track to add to a connection, and the stream it sends.
pub type NewTrack = (MediaStreamTrack, StreamKey);

/// What a connection receives, as rooms describe it (voice leaves it empty).
#[derive(Clone, Debug, Default)]
pub struct Streams {
    /// Which stream each incoming m-line (by mid) carries; an m-line not named here carries
    /// the participant's stream of its kind, `(user_id, kind)` (voice's one stream per kind).
    pub by_mid: HashMap<String, i64>,
    /// The id of the client's audio-level header extension (RFC 6464), for [`Levels`].
    pub audio_level: Option<u8>,
}

/// The label of the data channel that carries rooms' lossy data, both ways.
pub const LOSSY_CHANNEL: &str = "_lossy";

/// The largest lossy data message taken from a client.
const LOSSY_MAX: usize = 16 * 1024;

/// To the room: a message on a connection's lossy data channel.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LossyData {
    pub id: PeerId,
    pub text: String,
}

/// To the room, every [`LEVELS_INTERVAL`]: the loudest audio level (RFC 6464: 0 is the
/// loudest, 127 silence) each audio stream carried meanwhile, for those that carried any.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Levels(pub Vec<(i64, u8)>);

/// How often [`Levels`] are reported.
pub const LEVELS_INTERVAL: Duration = Duration::from_millis(300);

/// What the server's own offer added, in order: each track's mid.
pub type Offered = (String, Vec<Option<String>>);

enum Command {
    Adopt {
        id: PeerId,
        peer: Box<NewPeer>,
        codecs: Arc<[Codec]>,
        /// The client's offer to answer; `None`: the server will offer (see `Offer`).
        offer: Option<String>,
        streams: Streams,
        reply: oneshot::Sender<Result<String, MediaError>>,
    },
    Negotiate {
        id: PeerId,
        offer: String,
        track: Option<Box<NewTrack>>,
        streams: Streams,
        reply: oneshot::Sender<Result<String, MediaError>>,
    },
    /// The server offers, with `tracks` added first (and the lossy data channel if `data`).
    Offer {
        id: PeerId,
        tracks: Vec<NewTrack>,
        data: bool,
        reply: oneshot::Sender<Result<Offered, MediaError>>,
    },
    /// Sends `text` on the connection's lossy data channel, if it has one open.
    Lossy {
        id: PeerId,
        text: Arc<str>,
    },
    /// The client's answer to the server's offer.
    Answer {
        id: PeerId,
        answer: String,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// A candidate the client trickled.
    Candidate {
        id: PeerId,
        candidate: RTCIceCandidateInit,
    },
    Close(PeerId),
    /// A receiver in another shard asked for a keyframe of a stream.
    KeyframeWanted(StreamKey),
}

/// A packet of `publisher`'s `kind` stream (read by another shard, or a bot's) for a shard's
/// receivers, and for the bots in the room if `to_bots`.
struct Forwarded {
    publisher: i64,
    kind: Kind,
    packet: Packet,
    to_bots: bool,
}

/// Packets waiting for a shard; a shard that fell further behind loses the newest, as a
/// congested network would, instead of queueing without end.
const FORWARD_QUEUE: usize = 1024;

/// What reaches one shard: commands (never dropped, handled first) and packets.
#[derive(Clone)]
struct Shard {
    control: mpsc::UnboundedSender<Command>,
    media: mpsc::Sender<Forwarded>,
}

/// A shard as the room's other shards know it: the loops end when the last handle goes, not
/// when each other does.
struct OtherShard {
    control: mpsc::WeakUnboundedSender<Command>,
    media: mpsc::WeakSender<Forwarded>,
}

impl Shard {
    fn forward(&self, forwarded: Forwarded) {
        // Full: this shard is behind; the packet is lost for its receivers alone.
        let _ = self.media.try_send(forwarded);
    }
}

/// The handle on a room's media loops; cheap to clone. The loops end when the last handle is
/// dropped.
#[derive(Clone)]
pub struct MediaLoop {
    shards: Arc<[Shard]>,
    generations: Arc<AtomicU64>,
}

impl MediaLoop {
    /// Starts the loops (`[voice] room_loops`) of a room whose forwarding table is `table`.
    pub fn start(media: &Media, table: SharedTable, reports: Reports) -> Self {
        let count = media.settings.room_loops.max(1);
        let (shards, inboxes): (Vec<_>, Vec<_>) = (0..count)
            .map(|_| {
                let (control, commands) = mpsc::unbounded_channel();
                let (media, packets) = mpsc::channel(FORWARD_QUEUE);
                (Shard { control, media }, (commands, packets))
            })
            .unzip();
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let others = shards
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, shard)| OtherShard {
                    control: shard.control.downgrade(),
                    media: shard.media.downgrade(),
                })
                .collect();
            let state = State {
                peers: HashMap::new(),
                sockets: HashMap::new(),
                table: table.clone(),
                others,
                started: reports.started.clone(),
                failed: reports.failed.clone(),
                data: reports.data.clone(),
                levels: reports.levels.clone(),
                next_levels: Instant::now() + LEVELS_INTERVAL,
                last_timers: Instant::now(),
            };
            let running = media.spawn(state.run(inbox.0, inbox.1));
            let died = reports.died.clone();
            media.spawn(async move {
                if let Err(error) = running.await {
                    tracing::error!(%error, "a room's media loop died");
                    died.do_send(MediaLoopDied);
                }
            });
        }
        Self {
            shards: shards.into(),
            generations: Arc::default(),
        }
    }

    /// A handle whose loops are not running (what they are sent goes nowhere), for unit tests.
    #[cfg(test)]
    pub fn unattached() -> Self {
        let (control, _) = mpsc::unbounded_channel();
        let (media, _) = mpsc::channel(1);
        Self {
            shards: vec![Shard { control, media }].into(),
            generations: Arc::default(),
        }
    }

    /// A new connection's id for `user_id`.
    pub fn peer_id(&self, user_id: i64) -> PeerId {
        PeerId {
            user_id,
            generation: self.generations.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Hands a new connection to the loop and answers the client's `offer` on it; the answer's
    /// SDP (with the host candidate).
    /// (`offer` `None`: the server offers later; the answer is then empty.)
    pub async fn adopt(
        &self,
        id: PeerId,
        peer: NewPeer,
        codecs: Arc<[Codec]>,
        offer: Option<String>,
        streams: Streams,
    ) -> Result<String, MediaError> {
        let (reply, answered) = oneshot::channel();
        self.send(
            id,
            Command::Adopt {
                id,
                peer: Box::new(peer),
                codecs,
                offer,
                streams,
                reply,
            },
        )?;
        answered.await.map_err(|_| MediaError::Gone)?
    }

    /// Renegotiates `id`'s connection with a new offer, adding `track` (sending the stream
    /// it names) first; the answer.
    pub async fn negotiate(
        &self,
        id: PeerId,
        offer: String,
        track: Option<NewTrack>,
        streams: Streams,
    ) -> Result<String, MediaError> {
        let (reply, answered) = oneshot::channel();
        self.send(
            id,
            Command::Negotiate {
                id,
                offer,
                track: track.map(Box::new),
                streams,
                reply,
            },
        )?;
        answered.await.map_err(|_| MediaError::Gone)?
    }

    /// The server's offer on `id`'s connection, sending `tracks` (added first); the offer and
    /// each track's mid.
    pub async fn offer(
        &self,
        id: PeerId,
        tracks: Vec<NewTrack>,
        data: bool,
    ) -> Result<Offered, MediaError> {
        let (reply, offered) = oneshot::channel();
        let offer = Command::Offer {
            id,
            tracks,
            data,
            reply,
        };
        self.send(id, offer)?;
        offered.await.map_err(|_| MediaError::Gone)?
    }

    /// Sends `text` on `id`'s lossy data channel (lost if it has none open).
    pub fn lossy(&self, id: PeerId, text: Arc<str>) {
        let _ = self.send(id, Command::Lossy { id, text });
    }

    /// Applies the client's answer to the server's offer.
    pub async fn answered(&self, id: PeerId, answer: String) -> Result<(), MediaError> {
        let (reply, applied) = oneshot::channel();
        self.send(id, Command::Answer { id, answer, reply })?;
        applied.await.map_err(|_| MediaError::Gone)?
    }

    /// A candidate the client trickled for `id`'s connection.
    pub fn candidate(&self, id: PeerId, candidate: RTCIceCandidateInit) {
        let _ = self.send(id, Command::Candidate { id, candidate });
    }

    /// Closes `id`'s connection and frees its port.
    pub fn close(&self, id: PeerId) {
        let _ = self.send(id, Command::Close(id));
    }

    /// Forwards one of a bot's packets to the room: every shard's receivers, and (once) the
    /// other bots.
    pub fn from_bot(&self, publisher: i64, packet: Packet) {
        for (index, shard) in self.shards.iter().enumerate() {
            shard.forward(Forwarded {
                publisher,
                kind: Kind::Audio,
                packet: packet.clone(),
                to_bots: index == 0,
            });
        }
    }

    /// Sends a command to the shard that holds (or will hold) `id`'s connection.
    fn send(&self, id: PeerId, command: Command) -> Result<(), MediaError> {
        let shard = &self.shards[(id.generation % self.shards.len() as u64) as usize];
        shard.control.send(command).map_err(|_| MediaError::Gone)
    }
}

/// RFC 6464's level of silence.
const SILENCE: u8 = 127;

/// The largest datagram read: RTP over UDP stays under the path MTU.
const DATAGRAM_MAX: usize = 2048;
/// The most datagrams read from one socket per wake-up, so one flooding client cannot hold
/// the others up.
const READ_BATCH: usize = 32;
/// How long the loop sleeps when no connection has a timer.
const IDLE: Duration = Duration::from_secs(3600);

struct Datagram {
    user_id: i64,
    from: SocketAddr,
    data: BytesMut,
}

/// What woke the loop.
enum Wake {
    Command(Option<Command>),
    Forwarded(Forwarded),
    Datagrams,
    Timers,
}

/// A connection the loop serves.
struct Peer {
    generation: u64,
    connection: rtc::peer_connection::RTCPeerConnection,
    socket: Arc<UdpSocket>,
    /// Where the client reaches the socket (see [`NewPeer::announced`]).
    announced: SocketAddr,
    /// ICE and DTLS are up: SRTP can be sent.
    connected: bool,
    /// The connection failed (ICE consent lost, DTLS failed) or panicked inside `rtc`: it is
    /// removed and the room told at the end of the loop's turn.
    failed: bool,
    /// When the connection's next timer fires.
    deadline: Option<Instant>,
    /// The client's codecs, which name a published track's codec by its first packet.
    codecs: Arc<[Codec]>,
    /// What the participant publishes, by the id `rtc` gives each incoming track.
    incoming: HashMap<String, Incoming>,
    /// Which stream each incoming m-line carries.
    streams: Streams,
    /// The stream each outgoing track sends, by track id.
    outgoing: HashMap<String, StreamKey>,
    /// The open lossy data channel (rooms).
    lossy: Option<RTCDataChannelId>,
    _live: LiveGuard,
}

struct Incoming {
    kind: Kind,
    /// Its route in the forwarding table.
    key: StreamKey,
    receiver: RTCRtpReceiverId,
    /// Known from the track's first media packet on.
    stream: Option<Stream>,
}

struct Stream {
    ssrc: u32,
    /// The loudest audio level since the last [`Levels`] (127: none).
    loudest: u8,
    /// Receivers at the last packet: a new one of video needs a keyframe.
    sinks: usize,
    last_keyframe_request: Option<Instant>,
}

impl Peer {
    /// Runs `work` on the connection unless it failed. A panic inside `rtc` (a malformed
    /// packet tripping an assertion) fails this connection alone instead of killing the loop
    /// and with it the room's calls.
    fn guarded<R>(&mut self, work: impl FnOnce(&mut Self) -> R) -> Option<R> {
        if self.failed {
            return None;
        }
        match panic::catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(result) => Some(result),
            Err(_) => {
                tracing::error!("a peer connection panicked; closing it");
                self.failed = true;
                None
            }
        }
    }

    /// Sends everything the connection has to send (inside [`Self::guarded`]).
    fn flush(&mut self) {
        while let Some(datagram) = self.connection.poll_write() {
            // UDP: a full socket buffer loses the datagram, as the network would.
            if let Err(error) = self
                .socket
                .try_send_to(&datagram.message, datagram.transport.peer_addr)
            {
                tracing::trace!(%error, "sending media");
            }
        }
        self.deadline = self.connection.poll_timeout();
    }

    /// Writes one forwarded packet (already under this receiver's SSRC and payload type);
    /// until the connection is up, there is nothing to send it with.
    fn send_rtp(&mut self, now: Instant, packet: Packet) {
        if !self.connected {
            return;
        }
        self.guarded(|peer| {
            // `rtc` finds the sender by the packet's SSRC; the track id goes unread.
            let message = RTCMessage::RtpPacket(String::new(), packet);
            if let Err(error) = peer
                .connection
                .handle_write(TaggedRTCMessage { now, message })
            {
                tracing::trace!(%error, "forwarding");
            }
            peer.flush();
        });
    }

    /// The mid of the m-line a receiver takes its track from.
    fn mid_of(&mut self, receiver: RTCRtpReceiverId) -> Option<String> {
        let transceivers: Vec<_> = self.connection.get_transceivers().collect();
        transceivers.into_iter().find_map(|id| {
            let transceiver = self.connection.rtp_transceiver(id)?;
            if transceiver.receiver() == Some(receiver) {
                transceiver.mid().clone()
            } else {
                None
            }
        })
    }

    /// Takes the connection's events and what it read: whether it failed, and the RTP and
    /// RTCP for the application.
    fn take_output(&mut self, user_id: i64) -> Vec<RTCMessage> {
        self.flush();
        while let Some(event) = self.connection.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind = match self.connection.rtp_receiver(init.receiver_id) {
                        Some(receiver) if receiver.track().kind() == RtpCodecKind::Video => {
                            Kind::Video
                        }
                        _ => Kind::Audio,
                    };
                    let stream = self
                        .mid_of(init.receiver_id)
                        .and_then(|mid| self.streams.by_mid.get(&mid).copied())
                        .unwrap_or(user_id);
                    let incoming = Incoming {
                        kind,
                        key: (stream, kind),
                        receiver: init.receiver_id,
                        stream: None,
                    };
                    self.incoming.insert(init.track_id, incoming);
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                    self.incoming.remove(&track_id);
                }
                RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                    let lossy = self
                        .connection
                        .data_channel(id)
                        .is_some_and(|channel| channel.label() == LOSSY_CHANNEL);
                    if lossy {
                        self.lossy = Some(id);
                    }
                }
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.connected = state == RTCPeerConnectionState::Connected;
                    self.failed |= state == RTCPeerConnectionState::Failed;
                }
                _ => {}
            }
        }
        let mut read = Vec::new();
        while let Some(message) = self.connection.poll_read() {
            read.push(message.message);
        }
        self.flush();
        read
    }

    /// Answers `offer`, adding the host candidate first on the first negotiation.
    fn answer(&mut self, offer: String, first: bool) -> Result<String, MediaError> {
        self.guarded(|peer| peer.answer_now(offer, first))
            .unwrap_or(Err(MediaError::Gone))
    }

    fn answer_now(&mut self, offer: String, first: bool) -> Result<String, MediaError> {
        let now = Instant::now();
        self.connection
            .set_remote_description(now, RTCSessionDescription::offer(offer)?)?;
        if first {
            self.add_host_candidate()?;
        }
        let answer = self.connection.create_answer(None)?;
        self.connection.set_local_description(now, answer)?;
        self.local_sdp()
    }

    /// The one candidate of an ICE-lite server: the socket, as clients reach it.
    fn add_host_candidate(&mut self) -> Result<(), MediaError> {
        let candidate = CandidateHostConfig {
            base_config: rtc::ice::candidate::CandidateConfig {
                network: "udp".to_owned(),
                address: self.announced.ip().to_string(),
                port: self.announced.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()?;
        self.connection
            .add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
        Ok(())
    }

    fn local_sdp(&mut self) -> Result<String, MediaError> {
        let sdp = self
            .connection
            .local_description()
            .map(|description| description.sdp)
            .ok_or(MediaError::Gone)?;
        self.flush();
        Ok(sdp)
    }

    /// Adds `tracks` (send-only), then offers: the offer and each track's mid.
    fn offer_now(&mut self, tracks: Vec<NewTrack>, data: bool) -> Result<Offered, MediaError> {
        if data {
            // Lossy: unordered, never retransmitted.
            let init = RTCDataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                ..Default::default()
            };
            self.connection
                .create_data_channel(LOSSY_CHANNEL, Some(init))?;
        }
        let mut added = Vec::with_capacity(tracks.len());
        for (track, stream) in tracks {
            let track_id = track.track_id().clone();
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            };
            added.push(
                self.connection
                    .add_transceiver_from_track(track, Some(init))?,
            );
            self.outgoing.insert(track_id, stream);
        }
        let offer = self.connection.create_offer(None)?;
        self.connection
            .set_local_description(Instant::now(), offer)?;
        let mids = added
            .into_iter()
            .map(|id| {
                self.connection
                    .rtp_transceiver(id)
                    .and_then(|transceiver| transceiver.mid().clone())
            })
            .collect();
        Ok((self.local_sdp()?, mids))
    }

    /// Sends `text` on the lossy data channel, if one is open.
    fn send_lossy(&mut self, text: &str) {
        let Some(id) = self.lossy else {
            return;
        };
        self.guarded(|peer| {
            if let Some(mut channel) = peer.connection.data_channel(id) {
                if let Err(error) = channel.send_text(Instant::now(), text) {
                    tracing::trace!(%error, "lossy data");
                }
            }
            peer.flush();
        });
    }

    fn answered_now(&mut self, answer: String) -> Result<(), MediaError> {
        self.connection
            .set_remote_description(Instant::now(), RTCSessionDescription::answer(answer)?)?;
        self.flush();
        Ok(())
    }
}

/// However a connection ends (hung up, failed, replaced, or the room stopped), it says goodbye
/// to the peer and its port is freed.
impl Drop for Peer {
    fn drop(&mut self) {
        self.guarded(|peer| {
            if let Err(error) = peer.connection.close() {
                tracing::debug!(%error, "closing a peer connection");
            }
            peer.flush();
        });
    }
}

/// Reads what waits on every connection's socket (up to [`READ_BATCH`] each) into `out`;
/// pending until there is something.
fn read_ready(
    sockets: &HashMap<i64, Arc<UdpSocket>>,
    cx: &mut TaskContext<'_>,
    buffer: &mut [u8],
    out: &mut Vec<Datagram>,
) -> Poll<()> {
    for (user_id, socket) in sockets {
        for _ in 0..READ_BATCH {
            let mut read = ReadBuf::new(buffer);
            match socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(from)) => out.push(Datagram {
                    user_id: *user_id,
                    from,
                    data: BytesMut::from(read.filled()),
                }),
                Poll::Ready(Err(error)) => {
                    tracing::trace!(%error, "reading media");
                    break;
                }
                Poll::Pending => break,
            }
        }
    }
    if out.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(())
    }
}

/// The loop's state.
struct State {
    peers: HashMap<i64, Peer>,
    /// The peers' sockets, which the loop waits on (a connection itself is not `Sync`).
    sockets: HashMap<i64, Arc<UdpSocket>>,
    table: SharedTable,
    /// The room's other shards.
    others: Vec<OtherShard>,
    started: Recipient<TrackStarted>,
    failed: Recipient<TransportFailed>,
    data: Option<Recipient<LossyData>>,
    levels: Option<Recipient<Levels>>,
    /// When [`Levels`] are next reported.
    next_levels: Instant,
    /// When timers were last handled: a timer that cannot advance must not spin the loop.
    last_timers: Instant,
}

/// The shortest pause between two rounds of timers.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

impl State {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut packets: mpsc::Receiver<Forwarded>,
    ) {
        let mut buffer = vec![0u8; DATAGRAM_MAX];
        let mut datagrams = Vec::new();
        loop {
            let deadline = self
                .peers
                .values()
                .filter_map(|peer| peer.deadline)
                .min()
                .unwrap_or_else(|| Instant::now() + IDLE)
                .min(if self.levels.is_some() {
                    self.next_levels
                } else {
                    Instant::now() + IDLE
                })
                .max(self.last_timers + TIMER_RESOLUTION);
            let sockets = &self.sockets;
            let wake = tokio::select! {
                biased;
                command = commands.recv() => Wake::Command(command),
                Some(forwarded) = packets.recv() => Wake::Forwarded(forwarded),
                () = std::future::poll_fn(|cx| read_ready(sockets, cx, &mut buffer, &mut datagrams))
                    => Wake::Datagrams,
                () = tokio::time::sleep_until(deadline.into()) => Wake::Timers,
            };
            match wake {
                Wake::Command(Some(command)) => self.command(command),
                Wake::Command(None) => break,
                Wake::Forwarded(Forwarded {
                    publisher,
                    kind,
                    packet,
                    to_bots,
                }) => {
                    let snapshot = self.table.load();
                    if let Some(route) = snapshot.get(&(publisher, kind)) {
                        self.deliver(route, kind, packet, to_bots);
                    }
                }
                Wake::Datagrams => {
                    for datagram in datagrams.drain(..) {
                        self.datagram(datagram);
                    }
                }
                Wake::Timers => self.timers(),
            }
            if self.levels.is_some() && Instant::now() >= self.next_levels {
                self.report_levels(Instant::now());
            }
            if self.peers.values().any(|peer| peer.failed) {
                self.remove_failed();
            }
        }
    }

    /// Closes the connections that failed, and tells the room.
    fn remove_failed(&mut self) {
        let failed: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.failed)
            .map(|(user_id, peer)| PeerId {
                user_id: *user_id,
                generation: peer.generation,
            })
            .collect();
        for id in failed {
            self.failed.do_send(TransportFailed { id });
            self.remove(id.user_id);
        }
    }

    fn remove(&mut self, user_id: i64) {
        self.peers.remove(&user_id);
        self.sockets.remove(&user_id);
    }

    fn peer(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.peers
            .get_mut(&id.user_id)
            .filter(|peer| peer.generation == id.generation)
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Adopt {
                id,
                peer,
                codecs,
                offer,
                streams,
                reply,
            } => {
                let _ = reply.send(self.adopt(id, peer, codecs, offer, streams));
            }
            Command::Negotiate {
                id,
                offer,
                track,
                streams,
                reply,
            } => {
                let _ = reply.send(self.negotiate(id, offer, track, streams));
            }
            Command::Offer {
                id,
                tracks,
                data,
                reply,
            } => {
                let offered = self
                    .peer(id)
                    .and_then(|peer| peer.guarded(|peer| peer.offer_now(tracks, data)))
                    .unwrap_or(Err(MediaError::Gone));
                self.serve(id.user_id, Instant::now());
                let _ = reply.send(offered);
            }
            Command::Answer { id, answer, reply } => {
                let applied = self
                    .peer(id)
                    .and_then(|peer| peer.guarded(|peer| peer.answered_now(answer)))
                    .unwrap_or(Err(MediaError::Gone));
                self.serve(id.user_id, Instant::now());
                let _ = reply.send(applied);
            }
            Command::Lossy { id, text } => {
                if let Some(peer) = self.peer(id) {
                    peer.send_lossy(&text);
                }
            }
            Command::Candidate { id, candidate } => {
                if let Some(peer) = self.peer(id) {
                    peer.guarded(|peer| {
                        if let Err(error) = peer.connection.add_remote_candidate(candidate) {
                            tracing::debug!(%error, "a trickled candidate");
                        }
                    });
                }
            }
            Command::Close(id) => {
                if self.peer(id).is_some() {
                    self.remove(id.user_id);
                }
            }
            Command::KeyframeWanted(stream) => {
                self.request_keyframe(stream, Instant::now());
            }
        }
    }

    fn adopt(
        &mut self,
        id: PeerId,
        new: Box<NewPeer>,
        codecs: Arc<[Codec]>,
        offer: Option<String>,
        streams: Streams,
    ) -> Result<String, MediaError> {
        let mut peer = Peer {
            generation: id.generation,
            connection: new.connection,
            socket: new.socket,
            announced: new.announced,
            connected: false,
            failed: false,
            deadline: None,
            codecs,
            incoming: HashMap::new(),
            streams,
            outgoing: HashMap::new(),
            lossy: None,
            _live: new.live,
        };
        let answer = match offer {
            Some(offer) => peer.answer(offer, true)?,
            None => peer
                .guarded(Peer::add_host_candidate)
                .unwrap_or(Err(MediaError::Gone))
                .map(|()| String::new())?,
        };
        // A re-admission's new connection replaces the old one at once.
        self.sockets.insert(id.user_id, peer.socket.clone());
        self.peers.insert(id.user_id, peer);
        self.serve(id.user_id, Instant::now());
        Ok(answer)
    }

    fn negotiate(
        &mut self,
        id: PeerId,
        offer: String,
        track: Option<Box<NewTrack>>,
        streams: Streams,
    ) -> Result<String, MediaError> {
        let peer = self.peer(id).ok_or(MediaError::Gone)?;
        peer.streams.by_mid.extend(streams.by_mid);
        peer.streams.audio_level = streams.audio_level.or(peer.streams.audio_level);
        if let Some((track, stream)) = track.map(|boxed| *boxed) {
            let track_id = track.track_id().clone();
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            };
            peer.guarded(|peer| {
                peer.connection
                    .add_transceiver_from_track(track, Some(init))
            })
            .ok_or(MediaError::Gone)??;
            peer.outgoing.insert(track_id, stream);
        }
        let answer = peer.answer(offer, false)?;
        self.serve(id.user_id, Instant::now());
        Ok(answer)
    }

    fn datagram(&mut self, datagram: Datagram) {
        let now = Instant::now();
        let Some(peer) = self.peers.get_mut(&datagram.user_id) else {
            return;
        };
        let message = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: peer.announced,
                peer_addr: datagram.from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: datagram.data,
        };
        peer.guarded(|peer| {
            if let Err(error) = peer.connection.handle_read(message) {
                tracing::trace!(%error, "reading media");
            }
        });
        self.serve(datagram.user_id, now);
    }

    fn timers(&mut self) {
        let now = Instant::now();
        self.last_timers = now;
        let due: Vec<i64> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.deadline.is_some_and(|at| at <= now))
            .map(|(user_id, _)| *user_id)
            .collect();
        for user_id in due {
            if let Some(peer) = self.peers.get_mut(&user_id) {
                peer.guarded(|peer| {
                    if let Err(error) = peer.connection.handle_timeout(now) {
                        tracing::trace!(%error, "media timer");
                    }
                });
            }
            self.serve(user_id, now);
        }
    }

    /// Sends what `user_id`'s connection has to send, takes its events, and forwards what
    /// it read.
    fn serve(&mut self, user_id: i64, now: Instant) {
        let Some(read) = self
            .peers
            .get_mut(&user_id)
            .and_then(|peer| peer.guarded(|peer| peer.take_output(user_id)))
        else {
            return;
        };
        for message in read {
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    self.publish(user_id, &track_id, packet, now)
                }
                // Only keyframe requests reach here (see `KeyframeRequests`).
                RTCMessage::RtcpPacket(track_id, _) => self.keyframe_asked(user_id, &track_id, now),
                RTCMessage::DataChannelMessage(channel, message) => {
                    self.lossy_read(user_id, channel, message.data);
                }
                _ => {}
            }
        }
    }

    /// A message on a data channel: lossy data for the room, if it is that channel.
    fn lossy_read(&mut self, user_id: i64, channel: RTCDataChannelId, data: BytesMut) {
        let (Some(peer), Some(report)) = (self.peers.get(&user_id), &self.data) else {
            return;
        };
        if peer.lossy != Some(channel) || data.len() > LOSSY_MAX {
            return;
        }
        if let Ok(text) = String::from_utf8(data.to_vec()) {
            let id = PeerId {
                user_id,
                generation: peer.generation,
            };
            report.do_send(LossyData { id, text });
        }
    }

    /// Reports every audio stream's loudest level since the last report, and starts over.
    fn report_levels(&mut self, now: Instant) {
        self.next_levels = now + LEVELS_INTERVAL;
        let Some(report) = &self.levels else {
            return;
        };
        let mut levels = Vec::new();
        for peer in self.peers.values_mut() {
            for track in peer.incoming.values_mut() {
                if let Some(stream) = track.stream.as_mut().filter(|_| track.kind == Kind::Audio) {
                    levels.push((track.key.0, stream.loudest));
                    stream.loudest = SILENCE;
                }
            }
        }
        if !levels.is_empty() {
            report.do_send(Levels(levels));
        }
    }

    /// One packet of a track `publisher` sends: forwarded to the receivers of its stream.
    fn publish(&mut self, publisher: i64, track_id: &str, packet: Packet, now: Instant) {
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        let Some(incoming) = peer.incoming.get_mut(track_id) else {
            return;
        };
        let (kind, key) = (incoming.kind, incoming.key);
        if incoming.stream.is_none() {
            // The first media packet names the codec (RTX only repairs it).
            let payload_type = packet.header.payload_type;
            let Some(codec) = peer
                .codecs
                .iter()
                .find(|c| c.payload_type == payload_type && !c.is_rtx())
            else {
                return;
            };
            incoming.stream = Some(Stream {
                ssrc: packet.header.ssrc,
                loudest: SILENCE,
                sinks: 0,
                last_keyframe_request: None,
            });
            self.started.do_send(TrackStarted {
                user_id: publisher,
                kind,
                codec: codec.to_webrtc(),
                stream: key,
            });
        }
        let snapshot = self.table.load();
        let Some(route) = snapshot.get(&key) else {
            return;
        };
        let Some(stream) = incoming.stream.as_mut() else {
            return;
        };
        if let Some(level) = peer
            .streams
            .audio_level
            .and_then(|id| packet.header.get_extension(id))
            .and_then(|value| value.first().map(|byte| byte & 0x7f))
        {
            stream.loudest = stream.loudest.min(level);
        }
        // A new receiver of video needs a keyframe to start decoding: ask the publisher.
        let newcomer = kind == Kind::Video && route.sinks.len() > stream.sinks;
        stream.sinks = route.sinks.len();
        if newcomer {
            self.request_keyframe(key, now);
        }
        for shard in self.others.iter().filter_map(|shard| shard.media.upgrade()) {
            let _ = shard.try_send(Forwarded {
                publisher: key.0,
                kind,
                packet: packet.clone(),
                to_bots: false,
            });
        }
        self.deliver(route, kind, packet, true);
    }

    /// Writes a packet to this shard's receivers on the route (and its bots, if `to_bots`).
    fn deliver(&mut self, route: &Route, kind: Kind, mut packet: Packet, to_bots: bool) {
        let now = Instant::now();
        forwarding::strip_extensions(&mut packet);
        for copy in forwarding::copies(route, kind, packet.header.payload_type) {
            match &copy.sink.output {
                Output::WebRtc => {
                    if let Some(peer) = self.peers.get_mut(&copy.sink.receiver) {
                        peer.send_rtp(now, copy.of(&packet));
                    }
                }
                Output::Bot(bot) if to_bots => bot.send(&copy.of(&packet)),
                Output::Bot(_) => {}
            }
        }
    }

    /// A receiver asked for a keyframe on the track sending it a stream: the publisher of that
    /// stream is asked in turn (by the shard that holds their connection).
    fn keyframe_asked(&mut self, receiver: i64, track_id: &str, now: Instant) {
        let Some(&stream) = self
            .peers
            .get(&receiver)
            .and_then(|peer| peer.outgoing.get(track_id))
        else {
            return;
        };
        if self.request_keyframe(stream, now) {
            return;
        }
        for shard in self
            .others
            .iter()
            .filter_map(|shard| shard.control.upgrade())
        {
            let _ = shard.send(Command::KeyframeWanted(stream));
        }
    }

    /// Sends the publisher of `stream` (if their connection is in this shard) a PLI, at most
    /// once per [`keyframes::INTERVAL`]; whether the publisher is in this shard.
    fn request_keyframe(&mut self, wanted: StreamKey, now: Instant) -> bool {
        // Requests are rare (bounded per track), so a walk over the shard's peers will do.
        let Some((peer, receiver, stream)) = self.peers.values_mut().find_map(|peer| {
            let (receiver, stream) = peer
                .incoming
                .values()
                .find(|track| track.key == wanted)
                .map(|track| (track.receiver, track.stream.as_ref().map(|s| s.ssrc)))?;
            Some((peer, receiver, stream))
        }) else {
            return false;
        };
        let Some(ssrc) = stream else {
            return true;
        };
        let last = peer
            .incoming
            .values_mut()
            .find(|track| track.key == wanted)
            .and_then(|track| track.stream.as_mut())
            .map(|stream| &mut stream.last_keyframe_request);
        if !last.is_some_and(|last| keyframes::due(last, now)) {
            return true;
        }
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        peer.guarded(|peer| {
            if let Some(mut rtp_receiver) = peer.connection.rtp_receiver(receiver) {
                if let Err(error) = rtp_receiver.write_rtcp(now, vec![Box::new(pli)]) {
                    tracing::debug!(%error, "keyframe request");
                }
            }
            peer.flush();
        });
        true
    }
}
