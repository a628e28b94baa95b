//! Keyframe requests: a receiver that lost the picture (or just joined) asks for a keyframe
//! with PLI or FIR on the track the SFU sends it; the request is passed on to the publisher,
//! at most once per [`INTERVAL`] per published track, so a room of receivers cannot make a
//! publisher send nothing but keyframes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;

/// At most one keyframe request per published track per this long.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Asks one publisher's track for keyframes, rate-limited.
pub struct Keyframes {
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
    last: Mutex<Option<Instant>>,
}

impl Keyframes {
    pub fn new(track: Arc<dyn TrackRemote>, ssrc: u32) -> Self {
        Self {
            track,
            ssrc,
            last: Mutex::new(None),
        }
    }

    /// Sends a PLI to the publisher unless one went out within [`INTERVAL`].
    pub async fn request(&self) {
        {
            let mut last = crate::sync::lock(&self.last);
            if last.is_some_and(|at| at.elapsed() < INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.ssrc,
        };
        if let Err(error) = self.track.write_rtcp(vec![Box::new(pli)]).await {
            tracing::debug!(%error, "keyframe request");
        }
    }
}

/// Passes a receiver's keyframe requests on the track it is sent to the publisher, until the
/// track is unbound (the receiver or the publisher left). Runs on the media runtime.
pub async fn relay(sent: Arc<TrackLocalStaticRTP>, publisher: Arc<Keyframes>) {
    while let Some(event) = sent.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(_) = event {
            publisher.request().await;
        }
    }
}

/// The last interceptor of every peer connection: inbound RTCP otherwise stops in the
/// interceptor chain; this one hands keyframe requests (only) to the application.
#[derive(Default)]
pub struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let packet = packet.as_any();
    packet.is::<PictureLossIndication>() || packet.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &message.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|packet| is_keyframe_request(packet.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                // Reports and NACKs: the interceptors before this one have acted on them.
                return Ok(());
            }
            message.message.packet = Packet::Rtcp(requests);
            message.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
