//! A participant's transport: the actor that owns their peer connection.
//!
//! It is opened by SELECT_PROTOCOL (the answer fragment goes back to the client), renegotiated
//! when the client announces the SSRCs it publishes (op 12, SPEAKING) and whenever the room
//! gives it another participant's stream to send. Renegotiation is one-sided: the transport
//! renders the client's offer itself ([`super::sdp::Offer`]) and answers it; the client mirrors
//! the same m-lines from op 12. Negotiations run one at a time (`ctx.wait`), on the media
//! runtime. Stopping the actor closes the connection and frees its port.

use std::sync::Arc;

use actix::prelude::*;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription,
};

use super::forwarding::{self, SharedTable};
use super::keyframes::{self, Keyframes};
use super::media::{Live, Media, MediaError};
use super::sdp::{answer_fragment, ClientFragment, Codec, Kind, Offer, Published};

/// To the room: a participant's track arrived (they publish `kind` with `codec`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TrackStarted {
    pub user_id: i64,
    pub kind: Kind,
    pub codec: RTCRtpCodec,
    /// Where receivers' keyframe requests for this track go.
    pub keyframes: Arc<Keyframes>,
}

/// To the room: a participant's connection failed (ICE consent lost, DTLS failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TransportFailed {
    pub user_id: i64,
}

/// What the peer connection's events need to reach.
struct Events {
    user_id: i64,
    table: SharedTable,
    started: Recipient<TrackStarted>,
    failed: Recipient<TransportFailed>,
    gathered: watch::Sender<bool>,
    /// The client's codecs, for a track whose codec `webrtc` left blank.
    codecs: Arc<[Codec]>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Failed {
            self.failed.do_send(TransportFailed {
                user_id: self.user_id,
            });
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = match track.kind().await {
            RtpCodecKind::Video => Kind::Video,
            _ => Kind::Audio,
        };
        let declared = declared_codec(track.as_ref()).await;
        let codecs = self.codecs.clone();
        let started = self.started.clone();
        let table = self.table.clone();
        let user_id = self.user_id;
        tokio::spawn(async move {
            // The track names its codec when its SSRC was declared before the first packet
            // reached it; a renegotiation racing that packet leaves it blank, so the first
            // packet's payload type decides instead. Either way the track is read from now
            // on: an unread track fills up and loses everything.
            let identified = match declared {
                Some(found) => Some(found),
                None => first_packet_codec(track.as_ref(), &codecs).await,
            };
            let Some((ssrc, codec)) = identified else {
                tracing::debug!(user = user_id, "a track ended before its codec was known");
                return;
            };
            let keyframes = Arc::new(Keyframes::new(track.clone(), ssrc));
            started.do_send(TrackStarted {
                user_id,
                kind,
                codec,
                keyframes: keyframes.clone(),
            });
            forwarding::forward(track, keyframes, table, (user_id, kind)).await;
        });
    }
}

/// The codec the track already knows for one of its SSRCs.
async fn declared_codec(track: &dyn TrackRemote) -> Option<(u32, RTCRtpCodec)> {
    for ssrc in track.ssrcs().await {
        if let Some(codec) = track.codec(ssrc).await {
            return Some((ssrc, codec));
        }
    }
    None
}

/// Reads the track up to its first RTP packet and finds that packet's payload type among the
/// client's codecs.
async fn first_packet_codec(
    track: &dyn TrackRemote,
    codecs: &[Codec],
) -> Option<(u32, RTCRtpCodec)> {
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let payload_type = packet.header.payload_type;
        if let Some(codec) = codecs.iter().find(|c| c.payload_type == payload_type) {
            return Some((packet.header.ssrc, codec.to_webrtc()));
        }
    }
    None
}

/// The transport actor.
pub struct Transport {
    media: Media,
    live: Option<Live>,
    fragment: ClientFragment,
    cname: String,
    published: Published,
    /// The kinds of the m-lines this client receives on, in order.
    receive: Vec<Kind>,
    version: u64,
}

/// Everything [`Transport::open`] needs.
pub struct Opening {
    pub media: Media,
    pub user_id: i64,
    pub fragment: ClientFragment,
    pub table: SharedTable,
    pub started: Recipient<TrackStarted>,
    pub failed: Recipient<TransportFailed>,
}

impl Transport {
    /// Opens the peer connection and answers the client's fragment: the transport, not yet
    /// started, and the answer fragment for SESSION_DESCRIPTION.
    pub async fn open(opening: Opening) -> Result<(Self, String), MediaError> {
        let Opening {
            media,
            user_id,
            fragment,
            table,
            started,
            failed,
        } = opening;
        let (gathered, mut gathering) = watch::channel(false);
        let events = Arc::new(Events {
            user_id,
            table,
            started,
            failed,
            gathered,
            codecs: fragment.codecs.clone().into(),
        });
        let factory = media.clone();
        let live = media
            .spawn(async move { factory.peer_connection(events).await })
            .await
            .map_err(|_| MediaError::Gone)??;
        let mut transport = Self {
            media,
            live: None,
            fragment,
            cname: user_id.to_string(),
            published: Published::default(),
            receive: Vec::new(),
            version: 0,
        };
        let offer = transport.offer();
        let connection = live.connection.clone();
        let public_ip = transport.media.settings.public_ip;
        let answered = transport
            .media
            .spawn(async move {
                let answer = negotiate(&connection, offer, None).await?;
                // ICE-lite with host candidates only: gathering ends at once, but the answer
                // must hold the candidate.
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    gathering.wait_for(|done| *done),
                )
                .await;
                let sdp = connection
                    .local_description()
                    .await
                    .map_or(answer, |description| description.sdp);
                Ok::<_, MediaError>(answer_fragment(&sdp, public_ip)?)
            })
            .await
            .map_err(|_| MediaError::Gone);
        match answered {
            Ok(Ok(fragment)) => {
                transport.live = Some(live);
                Ok((transport, fragment))
            }
            Ok(Err(error)) | Err(error) => {
                transport.media.spawn(live.close());
                Err(error)
            }
        }
    }

    fn offer(&mut self) -> String {
        self.version += 1;
        Offer {
            fragment: &self.fragment,
            cname: &self.cname,
            published: self.published,
            receive: &self.receive,
            version: self.version,
        }
        .render()
    }

    /// Runs one negotiation (with a track to add first, if any) before any other message.
    fn renegotiate(
        &mut self,
        track: Option<Arc<TrackLocalStaticRTP>>,
    ) -> Option<tokio::task::JoinHandle<Result<String, MediaError>>> {
        let connection = self.live.as_ref()?.connection.clone();
        let offer = self.offer();
        Some(
            self.media
                .spawn(async move { negotiate(&connection, offer, track).await }),
        )
    }
}

/// Sets the synthetic offer, adds `track` on a new send-only transceiver (matched to the
/// offer's new receive-only m-line), answers, and returns the answer's SDP.
async fn negotiate(
    connection: &Arc<dyn PeerConnection>,
    offer: String,
    track: Option<Arc<TrackLocalStaticRTP>>,
) -> Result<String, MediaError> {
    if let Some(track) = track {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        connection
            .add_transceiver_from_track(track as Arc<dyn TrackLocal>, Some(init))
            .await?;
    }
    connection
        .set_remote_description(RTCSessionDescription::offer(offer)?)
        .await?;
    let answer = connection.create_answer(None).await?;
    let sdp = answer.sdp.clone();
    connection.set_local_description(answer).await?;
    Ok(sdp)
}

impl Actor for Transport {
    type Context = Context<Self>;
}

/// However a transport ends (its actor stopped, or it was opened for a participant who left
/// meanwhile, or for a room that stopped), its connection is closed and its port freed.
impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.media.spawn(live.close());
        }
    }
}

/// The client announced the SSRCs it publishes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish(pub Published);

impl Handler<Publish> for Transport {
    type Result = ();

    fn handle(&mut self, Publish(published): Publish, ctx: &mut Context<Self>) {
        let merged = Published {
            audio_ssrc: nonzero_or(published.audio_ssrc, self.published.audio_ssrc),
            video_ssrc: nonzero_or(published.video_ssrc, self.published.video_ssrc),
            rtx_ssrc: nonzero_or(published.rtx_ssrc, self.published.rtx_ssrc),
        };
        if merged == self.published {
            return;
        }
        self.published = merged;
        if let Some(job) = self.renegotiate(None) {
            ctx.wait(job.into_actor(self).map(|result, _, ctx| {
                if !matches!(result, Ok(Ok(_))) {
                    tracing::warn!(?result, "renegotiating a publisher failed");
                    ctx.stop();
                }
            }));
        }
    }
}

fn nonzero_or(new: u32, old: u32) -> u32 {
    if new == 0 {
        old
    } else {
        new
    }
}

/// Send another participant's stream to this client under `ssrc`; answers with the track the
/// forwarding task writes to, once negotiated.
#[derive(Message)]
#[rtype(result = "Result<Arc<TrackLocalStaticRTP>, MediaError>")]
pub struct AddSink {
    pub publisher: i64,
    pub kind: Kind,
    pub ssrc: u32,
    pub codec: RTCRtpCodec,
    /// Where the receiver's keyframe requests go (video).
    pub keyframes: Option<Arc<Keyframes>>,
}

impl Handler<AddSink> for Transport {
    // Atomic: no other message (no other negotiation) runs until this one is answered.
    type Result = AtomicResponse<Self, Result<Arc<TrackLocalStaticRTP>, MediaError>>;

    fn handle(&mut self, sink: AddSink, _: &mut Context<Self>) -> Self::Result {
        let (codec_kind, label) = match sink.kind {
            Kind::Audio => (RtpCodecKind::Audio, "audio"),
            Kind::Video => (RtpCodecKind::Video, "video"),
        };
        let stream = sink.publisher.to_string();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            stream.clone(),
            format!("{stream}-{label}-{}", sink.ssrc),
            format!("{stream}-{label}"),
            codec_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(sink.ssrc),
                    ..Default::default()
                },
                codec: sink.codec,
                ..Default::default()
            }],
        )));
        self.receive.push(sink.kind);
        let Some(job) = self.renegotiate(Some(track.clone())) else {
            return AtomicResponse::new(Box::pin(async { Err(MediaError::Gone) }.into_actor(self)));
        };
        let publisher = sink.keyframes.filter(|_| sink.kind == Kind::Video);
        let negotiated = job
            .into_actor(self)
            .map(move |result, transport, _| match result {
                Ok(Ok(_)) => {
                    if let Some(publisher) = publisher {
                        transport
                            .media
                            .spawn(keyframes::relay(track.clone(), publisher));
                    }
                    Ok(track)
                }
                Ok(Err(error)) => Err(error),
                Err(_) => Err(MediaError::Gone),
            });
        AtomicResponse::new(Box::pin(negotiated))
    }
}

/// Hang up: the participant left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

impl Handler<Close> for Transport {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
