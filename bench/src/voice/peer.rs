//! One participant's WebRTC side: a `webrtc` 0.21 peer connection that offers like a browser
//! (audio and video m-lines, then one receive-only audio m-line per stream op 12 announces),
//! answers itself from the server's fragment, publishes timestamped Opus-sized packets
//! (speakers) and meters every packet it receives from the other speakers.
//!
//! Everything here runs on the client's media runtime (a tokio multi-thread runtime, like the
//! server's): `webrtc` spawns its drivers on the ambient runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use super::meter::Meter;
use super::sdp;

/// Opus at 20 ms frames: 50 packets a second, 960 samples at 48 kHz each.
const FRAME: Duration = Duration::from_millis(20);
const SAMPLES_PER_FRAME: u32 = 960;

/// The peer connection's events: connection state for the signalling side, remote tracks
/// to the meter.
struct Events {
    index: usize,
    meter: Arc<Meter>,
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        tokio::spawn(read_track(track, self.index, self.meter.clone()));
    }
}

/// Counts every packet of one remote track: the speaker and send time are in the payload.
async fn read_track(track: Arc<dyn TrackRemote>, receiver: usize, meter: Arc<Meter>) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => meter.received(receiver, &packet.payload),
            TrackRemoteEvent::OnEnded => return,
            _ => {}
        }
    }
}

/// A participant's peer connection and what the answers are written from.
pub struct Peer {
    connection: Arc<dyn PeerConnection>,
    /// Our audio track and SSRC, for speakers.
    publish: Option<(Arc<TrackLocalStaticRTP>, u32)>,
    /// SESSION_DESCRIPTION's fragment.
    fragment: String,
    /// mid → the SSRC the server sends another speaker's audio under.
    incoming: HashMap<String, u32>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
}

pub fn webrtc_error(what: &str) -> impl Fn(webrtc::error::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

pub fn init(direction: RTCRtpTransceiverDirection) -> Option<RTCRtpTransceiverInit> {
    Some(RTCRtpTransceiverInit {
        direction,
        streams: vec![],
        send_encodings: vec![],
    })
}

/// A client peer connection on loopback, whose remote tracks participant `index` meters; and
/// its connection state.
pub async fn connection(
    index: usize,
    meter: Arc<Meter>,
) -> Result<
    (
        Arc<dyn PeerConnection>,
        watch::Receiver<RTCPeerConnectionState>,
    ),
    String,
> {
    let mut engine = MediaEngine::default();
    engine
        .register_default_codecs()
        .map_err(webrtc_error("codecs"))?;
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    let events = Arc::new(Events {
        index,
        meter,
        state: state_tx,
    });
    // No interceptors (NACK, reports): the client's CPU is not what is measured.
    let connection = PeerConnectionBuilder::new()
        .with_media_engine(engine)
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_include_loopback_candidate(true)
                .build(),
        )
        .with_handler(events)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .map_err(webrtc_error("peer connection"))?;
    Ok((Arc::new(connection), state))
}

/// Participant `index`'s Opus track and its SSRC.
pub fn audio_track(index: usize) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc = rand::random::<u32>() >> 1 | 1;
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("bench{index}"),
        format!("bench{index}-audio"),
        format!("bench{index}-audio"),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus(),
            ..Default::default()
        }],
    )));
    (track, ssrc)
}

impl Peer {
    /// A client peer connection on loopback with an audio and a video m-line (the server's
    /// synthetic offer always mirrors both); only a `speaker` publishes.
    pub async fn new(index: usize, speaker: bool, meter: Arc<Meter>) -> Result<Self, String> {
        let (connection, state) = connection(index, meter).await?;
        // A track-less transceiver can only receive.
        let sendrecv = RTCRtpTransceiverDirection::Sendrecv;
        let recvonly = RTCRtpTransceiverDirection::Recvonly;
        // Everyone has a send-receive audio m-line with a track, as browsers do (a connection
        // whose m-lines are all inactive never connects); only speakers write to it.
        let (track, ssrc) = audio_track(index);
        connection
            .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, init(sendrecv))
            .await
            .map_err(webrtc_error("audio sender"))?;
        let publish = speaker.then_some((track, ssrc));
        connection
            .add_transceiver_from_kind(RtpCodecKind::Video, init(recvonly))
            .await
            .map_err(webrtc_error("video transceiver"))?;
        Ok(Self {
            connection,
            publish,
            fragment: String::new(),
            incoming: HashMap::new(),
            state,
        })
    }

    /// The SSRC we publish audio on (0: a listener).
    pub fn audio_ssrc(&self) -> u32 {
        self.publish.as_ref().map_or(0, |(_, ssrc)| *ssrc)
    }

    /// Creates and sets our offer; returns its SDP.
    async fn offer(&self) -> Result<String, String> {
        let offer = self
            .connection
            .create_offer(None)
            .await
            .map_err(webrtc_error("create_offer"))?;
        let sdp = offer.sdp.clone();
        self.connection
            .set_local_description(offer)
            .await
            .map_err(webrtc_error("set_local_description"))?;
        Ok(sdp)
    }

    /// SELECT_PROTOCOL's fragment of our first offer, and our Opus payload type.
    pub async fn first_fragment(&self) -> Result<(String, u8), String> {
        let offer = self.offer().await?;
        let opus = sdp::opus_payload_type(&offer).ok_or("our offer has no Opus")?;
        Ok((sdp::fragment_of(&offer), opus))
    }

    /// Writes the server's answer from `local` and sets it.
    async fn answer(&self, local: &str) -> Result<(), String> {
        let answer = sdp::remote_answer(&self.fragment, local, &self.incoming)?;
        let description =
            RTCSessionDescription::answer(answer).map_err(webrtc_error("the answer"))?;
        self.connection
            .set_remote_description(description)
            .await
            .map_err(webrtc_error("set_remote_description"))
    }

    /// SESSION_DESCRIPTION: completes the first negotiation.
    pub async fn accept(&mut self, fragment: String) -> Result<(), String> {
        self.fragment = fragment;
        let local = self
            .connection
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or("no local description")?;
        self.answer(&local).await
    }

    /// Op 12 named a stream the server sends us under `ssrc`: a new receive-only audio m-line
    /// and a local renegotiation, as a browser client does. The new m-line is the offer's last.
    pub async fn receive(&mut self, ssrc: u32) -> Result<(), String> {
        let recvonly = RTCRtpTransceiverDirection::Recvonly;
        // Renegotiating before the first connection is up races with its start.
        let _ = tokio::time::timeout(
            Duration::from_secs(30),
            self.state.wait_for(|s| {
                *s != RTCPeerConnectionState::New && *s != RTCPeerConnectionState::Connecting
            }),
        )
        .await;
        self.connection
            .add_transceiver_from_kind(RtpCodecKind::Audio, init(recvonly))
            .await
            .map_err(webrtc_error("receive transceiver"))?;
        let local = self.offer().await?;
        let mid = sdp::mids(&local).pop().ok_or("an offer without m-lines")?;
        self.incoming.insert(mid, ssrc);
        self.answer(&local).await
    }

    /// Speakers: see [`speak`].
    pub fn speak(
        &self,
        speaker: usize,
        size: usize,
        payload_type: u8,
        meter: Arc<Meter>,
        stop: watch::Receiver<bool>,
    ) {
        if let Some((track, ssrc)) = self.publish.clone() {
            speak(track, ssrc, (speaker, size, payload_type), meter, stop);
        }
    }

    pub async fn close(&self) {
        let _ = self.connection.close().await;
    }
}

/// 50 packets a second of `size`-byte payloads stamped by the meter for `speaker`, on `track`
/// under `ssrc` with `payload_type`, until `stop` turns true.
pub fn speak(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    (speaker, size, payload_type): (usize, usize, u8),
    meter: Arc<Meter>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FRAME);
        // Late ticks are caught up (tokio's default, Burst), so the offered load stays
        // 50 packets/s on average even when the client is starved of CPU.
        let mut sequence: u16 = rand::random();
        let mut timestamp: u32 = rand::random();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let payload = meter.stamp(speaker, size);
            let packet = rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type,
                    sequence_number: sequence,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload,
            };
            if track.write_rtp(packet).await.is_err() {
                meter.send_failed();
            }
            sequence = sequence.wrapping_add(1);
            timestamp = timestamp.wrapping_add(SAMPLES_PER_FRAME);
        }
    });
}
