//! A participant's transport: the actor that owns their peer connection.
//!
//! The connection itself lives in the room's media loop ([`super::media_loop`]), which
//! forwards between connections; this actor is its owner's side of it. It is opened by
//! SELECT_PROTOCOL (the answer fragment goes back to the client), renegotiated when the client
//! announces the SSRCs it publishes (op 12, SPEAKING) and whenever the room gives it another
//! participant's stream to send. Renegotiation is one-sided: the transport renders the client's
//! offer itself ([`super::sdp::Offer`]) and the loop answers it; the client mirrors the same
//! m-lines from op 12. Negotiations run one at a time (`ctx.wait`). Stopping the actor closes
//! the connection and frees its port.

use std::future::Future;

use actix::prelude::*;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};

use super::media::{Media, MediaError};
use super::media_loop::{MediaLoop, NewTrack, PeerId, Streams, TransportFailed};
use super::sdp::{answer_fragment, ClientFragment, Kind, Offer, Published};

/// The transport actor.
pub struct Transport {
    media_loop: MediaLoop,
    id: PeerId,
    fragment: ClientFragment,
    failed: Recipient<TransportFailed>,
    cname: String,
    published: Published,
    /// The kinds of the m-lines this client receives on, in order.
    receive: Vec<Kind>,
    version: u64,
}

/// Everything [`Transport::open`] needs.
pub struct Opening {
    pub media: Media,
    pub media_loop: MediaLoop,
    /// The connection's id, from [`MediaLoop::peer_id`].
    pub id: PeerId,
    pub fragment: ClientFragment,
    /// Where to report that the connection cannot go on: the room.
    pub failed: Recipient<TransportFailed>,
}

impl Transport {
    /// Opens the peer connection in the room's media loop and answers the client's fragment:
    /// the transport, not yet started, and the answer fragment for SESSION_DESCRIPTION.
    pub async fn open(opening: Opening) -> Result<(Self, String), MediaError> {
        let Opening {
            media,
            media_loop,
            id,
            fragment,
            failed,
        } = opening;
        let peer = media.peer()?;
        let codecs = fragment.codecs.clone().into();
        let mut transport = Self {
            id,
            media_loop,
            fragment,
            failed,
            cname: id.user_id.to_string(),
            published: Published::default(),
            receive: Vec::new(),
            version: 0,
        };
        let offer = transport.offer();
        // On failure the transport is dropped, which closes whatever the loop holds of it.
        let answer = transport
            .media_loop
            .adopt(transport.id, peer, codecs, Some(offer), Streams::default())
            .await?;
        let fragment = answer_fragment(&answer)?;
        Ok((transport, fragment))
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

    /// One negotiation (with a track sending `stream` to add first, if any).
    fn renegotiate(
        &mut self,
        track: Option<NewTrack>,
    ) -> impl Future<Output = Result<(), MediaError>> + 'static {
        let offer = self.offer();
        let (media_loop, id) = (self.media_loop.clone(), self.id);
        async move {
            let answer = media_loop
                .negotiate(id, offer, track, Streams::default())
                .await;
            answer.map(drop)
        }
    }
}

impl Actor for Transport {
    type Context = Context<Self>;
}

/// However a transport ends (its actor stopped, or it was opened for a participant who left
/// meanwhile, or for a room that stopped), its connection is closed and its port freed.
impl Drop for Transport {
    fn drop(&mut self) {
        self.media_loop.close(self.id);
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
        let job = self.renegotiate(None);
        ctx.wait(job.into_actor(self).map(|result, transport, ctx| {
            if let Err(error) = result {
                // The client's streams can no longer be taken: the call is over.
                tracing::warn!(%error, "renegotiating a publisher failed");
                transport
                    .failed
                    .do_send(TransportFailed { id: transport.id });
                ctx.stop();
            }
        }));
    }
}

fn nonzero_or(new: u32, old: u32) -> u32 {
    if new == 0 {
        old
    } else {
        new
    }
}

/// Send another participant's stream to this client under `ssrc`; answers once negotiated.
#[derive(Message)]
#[rtype(result = "Result<(), MediaError>")]
pub struct AddSink {
    pub publisher: i64,
    pub kind: Kind,
    pub ssrc: u32,
    pub codec: RTCRtpCodec,
}

impl Handler<AddSink> for Transport {
    // Atomic: no other message (no other negotiation) runs until this one is answered.
    type Result = AtomicResponse<Self, Result<(), MediaError>>;

    fn handle(&mut self, sink: AddSink, _: &mut Context<Self>) -> Self::Result {
        let track = sending_track(sink.publisher.to_string(), sink.kind, sink.ssrc, sink.codec);
        self.receive.push(sink.kind);
        let job = self.renegotiate(Some((track, (sink.publisher, sink.kind))));
        AtomicResponse::new(Box::pin(job.into_actor(self)))
    }
}

/// A track that sends a stream (labelled `stream`) of `kind` under `ssrc` with `codec`.
pub fn sending_track(
    stream: String,
    kind: Kind,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> MediaStreamTrack {
    let codec_kind = match kind {
        Kind::Audio => RtpCodecKind::Audio,
        Kind::Video => RtpCodecKind::Video,
    };
    let label = kind.as_str();
    MediaStreamTrack::new(
        stream.clone(),
        format!("{stream}-{label}-{ssrc}"),
        format!("{stream}-{label}"),
        codec_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
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
