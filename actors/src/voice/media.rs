//! The media side's own tokio runtime and the peer-connection factory.
//!
//! Each room's media loop runs on a tokio runtime of its own. Actix arbiters are
//! single-threaded and carry signalling, so media gets a multi-thread runtime (sized from
//! `[voice] media_threads`): a busy room's packets never wait behind a gateway frame, and the
//! other way round.

use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::Slot;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use tokio::net::UdpSocket;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, RTCConfigurationBuilder, RTCPeerConnection,
    Registry, SettingEngineBuilder,
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
    /// Media loops per room (see `media_loop`).
    pub room_loops: usize,
    /// Participants per room.
    pub room_limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free UDP port in {0}-{1}")]
    NoPort(u16, u16),
    #[error("media socket: {0}")]
    Socket(std::io::Error),
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("bad SDP: {0}")]
    Sdp(#[from] super::sdp::SdpError),
    #[error("the media runtime is gone")]
    Gone,
}

/// Why the media runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaStartError {
    #[error("cannot start the media runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot bind the bots' voice UDP port (voice.bot_udp_port) at {address}: {source}")]
    BotPort {
        address: SocketAddr,
        source: std::io::Error,
    },
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
    /// The address media sockets bind (see [`media_bind_ip`]).
    bind_ip: IpAddr,
    pub bots: BotSocket,
    live: Arc<AtomicUsize>,
}

impl Media {
    pub fn start(settings: MediaSettings) -> Result<Self, MediaStartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads.max(1))
            .thread_name("media")
            .enable_all()
            .build()
            .map_err(MediaStartError::Runtime)?;
        let handle = runtime.handle().clone();
        // Owned before anything can fail: a failed start is usually reported from inside the
        // server's async context, where dropping a bare runtime panics.
        let runtime = Arc::new(OwnedRuntime(Some(runtime)));
        let bot_address = SocketAddr::new(settings.bind_ip, settings.bot_port);
        let bots =
            BotSocket::bind(bot_address, &handle).map_err(|source| MediaStartError::BotPort {
                address: bot_address,
                source,
            })?;
        Ok(Self {
            runtime,
            handle,
            bind_ip: media_bind_ip(settings.bind_ip),
            settings: Arc::new(settings),
            bots,
            live: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `future` on the media runtime.
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
        self.settings.public_ip.unwrap_or(self.bind_ip)
    }

    /// A new ICE-lite peer connection (`rtc`'s sans-I/O core, driven by the room's media loop)
    /// and its socket on a free port of the range; the answerer is the DTLS server
    /// (`a=setup:passive`), as Discord's voice servers are. The socket is registered with the
    /// media runtime's reactor, wherever this is called from.
    pub fn peer(&self) -> Result<NewPeer, MediaError> {
        let settings = &self.settings;
        let ip = self.bind_ip;
        let socket = bind_free_port(ip, settings.port_min, settings.port_max)?;
        socket.set_nonblocking(true).map_err(MediaError::Socket)?;
        let local = socket.local_addr().map_err(MediaError::Socket)?;
        // Behind a 1:1 NAT, clients reach the socket at the public address.
        let announced = SocketAddr::new(settings.public_ip.unwrap_or(local.ip()), local.port());
        let socket = {
            let _context = self.handle.enter();
            UdpSocket::from_std(socket).map_err(MediaError::Socket)?
        };
        let mut engine = MediaEngine::default();
        engine.register_default_codecs()?;
        // BUNDLE demultiplexing of the client's streams before their SSRCs are announced.
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            engine.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: "urn:ietf:params:rtp-hdrext:sdes:mid".to_string(),
                },
                kind,
                None,
            )?;
        }
        // Rooms' speaking indicator reads the level publishers measure (RFC 6464).
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: super::sdp::AUDIO_LEVEL_URI.to_string(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
        // Last in the chain (after NACK, reports…), so it sees inbound RTCP when they are done.
        let registry = register_default_interceptors(Registry::new(), &mut engine)?
            .with(Slot::from(14_000), KeyframeRequests::default());
        let setting = SettingEngineBuilder::new()
            .with_lite(true)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_include_loopback_candidate(ip.is_loopback());
        let connection = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(engine)
            .with_setting_engine(setting.build())
            .with_interceptor_registry(registry)
            .build(Instant::now())?;
        Ok(NewPeer {
            connection,
            socket: Arc::new(socket),
            announced,
            live: LiveGuard::new(&self.live),
        })
    }
}

/// A peer connection not yet handed to a room's media loop, with its socket.
pub struct NewPeer {
    pub connection: RTCPeerConnection,
    pub socket: Arc<UdpSocket>,
    /// Where clients reach the socket (the public address behind a 1:1 NAT): the host
    /// candidate, and the address `rtc` is told their datagrams arrived at.
    pub announced: SocketAddr,
    pub live: LiveGuard,
}

/// Counts a peer connection as live until it is dropped.
pub struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self(live.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The address media sockets bind: the configured one, or for a wildcard the first usable
/// interface (a host candidate must name an address peers can reach, and replies must leave
/// from the address the peer sent to), or loopback on a machine with none.
fn media_bind_ip(configured: IpAddr) -> IpAddr {
    if !configured.is_unspecified() {
        return configured;
    }
    let usable = rtc::shared::ifaces::ifaces()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|interface| interface.addr.map(|addr| addr.ip()))
        .find(|ip| {
            ip.is_ipv4() == configured.is_ipv4()
                && !ip.is_loopback()
                && !ip.is_unspecified()
                && !is_link_local(ip)
        });
    usable.unwrap_or(if configured.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
    })
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// A socket on a port of the range nobody is bound to, starting from a random offset so
/// concurrent joins rarely race for the same one (0-0: any free port).
fn bind_free_port(ip: IpAddr, min: u16, max: u16) -> Result<StdUdpSocket, MediaError> {
    if min == 0 && max == 0 {
        return StdUdpSocket::bind(SocketAddr::new(ip, 0)).map_err(MediaError::Socket);
    }
    let span = u32::from(max.saturating_sub(min)) + 1;
    let start = rand::random::<u32>() % span;
    (0..span)
        .map(|step| min.saturating_add(((start + step) % span) as u16))
        .find_map(|port| StdUdpSocket::bind(SocketAddr::new(ip, port)).ok())
        .ok_or(MediaError::NoPort(min, max))
}
