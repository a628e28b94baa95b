//! The media side's own tokio runtime and the peer-connection factory.
//!
//! `webrtc` spawns each connection's driver, and our forwarding tasks, on the ambient tokio
//! runtime. Actix arbiters are single-threaded and carry signalling, so media gets a
//! multi-thread runtime of its own (sized from `[voice] media_threads`): a busy room's packets
//! never wait behind a gateway frame, and the other way round.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rtc::interceptor::Slot;
use rtc::peer_connection::transport::RTCDtlsRole;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, Registry, SettingEngineBuilder,
};

use super::bots::BotSocket;
use super::keyframes::KeyframeRequests;

/// What the operator configured for media (`[voice]` in config.toml).
#[derive(Clone, Debug)]
pub struct MediaSettings {
    /// The address to bind the UDP sockets on.
    pub bind_ip: IpAddr,
    /// The address announced in candidates (NAT 1:1); `None` announces `bind_ip`.
    pub public_ip: Option<IpAddr>,
    /// The UDP ports peer connections use, inclusive; one port per participant.
    pub port_min: u16,
    pub port_max: u16,
    /// The one port bots' plain-UDP voice uses (0: any free one).
    pub bot_port: u16,
    /// Worker threads of the media runtime.
    pub threads: usize,
    /// Participants per room.
    pub room_limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free UDP port in {0}-{1}")]
    NoPort(u16, u16),
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("bad SDP: {0}")]
    Sdp(#[from] super::sdp::SdpError),
    #[error("the media runtime is gone")]
    Gone,
}

/// Keeps the runtime and drops it without blocking: a tokio runtime dropped inside another
/// async context would panic.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The media runtime, the settings, the bots' socket and the count of live transports; cheap
/// to clone.
#[derive(Clone)]
pub struct Media {
    runtime: Arc<OwnedRuntime>,
    handle: tokio::runtime::Handle,
    pub settings: Arc<MediaSettings>,
    pub bots: BotSocket,
    live: Arc<AtomicUsize>,
}

impl Media {
    pub fn start(settings: MediaSettings) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads.max(1))
            .thread_name("media")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let bots = BotSocket::bind(
            SocketAddr::new(settings.bind_ip, settings.bot_port),
            &handle,
        )?;
        Ok(Self {
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
            handle,
            settings: Arc::new(settings),
            bots,
            live: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `future` on the media runtime (where `webrtc` must be called from).
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let _alive = &self.runtime;
        self.handle.spawn(future)
    }

    /// Peer connections open now (each one a participant's transport).
    pub fn live_transports(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The address READY announces.
    pub fn public_ip(&self) -> IpAddr {
        self.settings.public_ip.unwrap_or(self.settings.bind_ip)
    }

    /// A new ICE-lite peer connection on a free port of the range; the answerer is the DTLS
    /// server (`a=setup:passive`), as Discord's voice servers are. Must run on the media runtime.
    pub async fn peer_connection(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
    ) -> Result<Live, MediaError> {
        let settings = &self.settings;
        let port = free_port(settings.bind_ip, settings.port_min, settings.port_max)?;
        let mut engine = MediaEngine::default();
        engine.register_default_codecs()?;
        // BUNDLE demultiplexing of the client's streams before their SSRCs are announced.
        for kind in [
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio,
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video,
        ] {
            engine.register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: "urn:ietf:params:rtp-hdrext:sdes:mid".to_string(),
                },
                kind,
                None,
            )?;
        }
        // Last in the chain (after NACK, reports…), so it sees inbound RTCP when they are done.
        let registry = register_default_interceptors(Registry::new(), &mut engine)?
            .with(Slot::from(14_000), KeyframeRequests::default());
        // `public_ip` is not `webrtc`'s to apply (0.21 ignores its NAT 1:1 setting): the answer
        // fragment names it in place of the bound address (`sdp::answer_fragment`).
        let setting = SettingEngineBuilder::new()
            .with_lite(true)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_include_loopback_candidate(settings.bind_ip.is_loopback());
        let connection = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(engine)
            .with_setting_engine(setting.build())
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(vec![SocketAddr::new(settings.bind_ip, port)])
            .build()
            .await?;
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(Live {
            connection: Arc::new(connection),
            live: self.live.clone(),
        })
    }
}

/// A peer connection counted as live until it is closed.
pub struct Live {
    pub connection: Arc<dyn PeerConnection>,
    live: Arc<AtomicUsize>,
}

impl Live {
    /// Closes the connection (freeing its port) and uncounts it.
    pub async fn close(self) {
        if let Err(error) = self.connection.close().await {
            tracing::debug!(%error, "closing a peer connection");
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A port of the range nobody is bound to right now, starting from a random offset so
/// concurrent joins rarely race for the same one.
fn free_port(ip: IpAddr, min: u16, max: u16) -> Result<u16, MediaError> {
    if min == 0 && max == 0 {
        return Ok(0);
    }
    let span = u32::from(max.saturating_sub(min)) + 1;
    let start = rand::random::<u32>() % span;
    (0..span)
        .map(|step| min.saturating_add(((start + step) % span) as u16))
        .find(|port| UdpSocket::bind(SocketAddr::new(ip, *port)).is_ok())
        .ok_or(MediaError::NoPort(min, max))
}
