//! Voice over plain UDP, the way bots speak it (discord.py, discord.js voice, songbird): no
//! WebRTC, one server socket shared by every bot, Opus RTP encrypted with Discord's
//! `aead_xchacha20_poly1305_rtpsize` mode.
//!
//! A bot sends IP discovery to READY's address (a 74-byte request, answered with the address and
//! port its packet came from), names that address and the mode in SELECT_PROTOCOL and receives a
//! key in SESSION_DESCRIPTION. Its packets are told apart by their SSRC (READY's), decrypted and
//! forwarded like a browser's; what others publish reaches it sealed with its key, under the
//! SSRC op 12 told it.
//!
//! Media goes only where the bot's own packets came from: its IP discovery, then its
//! authenticated packets. The address SELECT_PROTOCOL names is never used, or any client could
//! aim a room's audio at someone else.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use tokio::net::UdpSocket;

use super::media_loop::MediaLoop;
use crate::expiring::Expiring;
use crate::sync::{lock, read, write};

/// The one encryption mode served: the one every current bot library speaks.
pub const MODE: &str = "aead_xchacha20_poly1305_rtpsize";
/// The payload type Discord's clients send Opus on, and expect it on.
pub const OPUS_PAYLOAD_TYPE: u8 = 120;

const DISCOVERY_LEN: usize = 74;
const DISCOVERY_REQUEST: u16 = 1;
const DISCOVERY_RESPONSE: u16 = 2;
const RTP_HEADER_LEN: usize = 12;
const TAG_LEN: usize = 16;
const NONCE_SUFFIX_LEN: usize = 4;

/// The shared socket and the bots on it, by SSRC; cheap to clone.
#[derive(Clone)]
pub struct BotSocket {
    socket: Arc<UdpSocket>,
    bots: Arc<RwLock<HashMap<u32, Arc<Bot>>>>,
    /// Where IP discovery for an SSRC not yet registered came from.
    discovered: Arc<Expiring<u32, SocketAddr>>,
    port: u16,
}

/// Discoveries remembered for SSRCs not yet registered, and for how long: a bot registers
/// within moments of its discovery; one that lost its own waits for its first packet instead.
const DISCOVERED_KEPT: usize = 4096;
const DISCOVERED_TTL: Duration = Duration::from_secs(60);

/// One bot's voice connection.
pub struct Bot {
    pub user_id: i64,
    ssrc: u32,
    cipher: XChaCha20Poly1305,
    /// Where its packets come from, and so where its audio goes; unknown until it sent one.
    address: Mutex<Option<SocketAddr>>,
    /// The counter sent as the nonce of each packet to it.
    sent: AtomicU32,
    socket: Arc<UdpSocket>,
    /// The room's media loop, which its own audio goes through.
    media_loop: MediaLoop,
}

impl BotSocket {
    /// Binds the socket (inside `runtime`'s context, which serves it) and starts answering.
    pub fn bind(address: SocketAddr, runtime: &tokio::runtime::Handle) -> io::Result<Self> {
        let std_socket = StdUdpSocket::bind(address)?;
        std_socket.set_nonblocking(true)?;
        let port = std_socket.local_addr()?.port();
        let _context = runtime.enter();
        let socket = Arc::new(UdpSocket::from_std(std_socket)?);
        let served = Self {
            socket,
            bots: Arc::default(),
            discovered: Arc::new(Expiring::new(DISCOVERED_TTL, DISCOVERED_KEPT)),
            port,
        };
        runtime.spawn(served.clone().serve());
        Ok(served)
    }

    /// The port READY announces.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts taking `ssrc`'s packets into the room's `media_loop`; returns the bot and its key.
    pub fn register(&self, user_id: i64, ssrc: u32, media_loop: MediaLoop) -> (Arc<Bot>, [u8; 32]) {
        let key: [u8; 32] = rand::random();
        let address = self.discovered.take(&ssrc);
        let bot = Arc::new(Bot {
            user_id,
            ssrc,
            cipher: XChaCha20Poly1305::new(&key.into()),
            address: Mutex::new(address),
            sent: AtomicU32::new(0),
            socket: self.socket.clone(),
            media_loop,
        });
        write(&self.bots).insert(ssrc, bot.clone());
        (bot, key)
    }

    /// Stops taking `bot`'s packets (it left).
    pub fn unregister(&self, bot: &Bot) {
        let mut bots = write(&self.bots);
        if bots
            .get(&bot.ssrc)
            .is_some_and(|b| b.user_id == bot.user_id)
        {
            bots.remove(&bot.ssrc);
        }
    }

    async fn serve(self) {
        let mut buffer = vec![0u8; 2048];
        loop {
            let (length, from) = match self.socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(error) => {
                    tracing::trace!(%error, "bot voice socket");
                    continue;
                }
            };
            let datagram = &buffer[..length];
            if let Some(answer) = discovery_answer(datagram, from) {
                let ssrc = u32::from_be_bytes([answer[4], answer[5], answer[6], answer[7]]);
                self.discovered.insert(ssrc, from);
                let _ = self.socket.try_send_to(&answer, from);
                continue;
            }
            let Some(ssrc) = rtp_ssrc(datagram) else {
                continue;
            };
            let bot = read(&self.bots).get(&ssrc).cloned();
            if let Some(bot) = bot {
                bot.received(datagram, from);
            }
        }
    }
}

impl Bot {
    /// One of the bot's own packets: opened and forwarded to the room.
    fn received(&self, datagram: &[u8], from: SocketAddr) {
        let Some(packet) = open(&self.cipher, datagram) else {
            return;
        };
        *lock(&self.address) = Some(from);
        self.media_loop.from_bot(self.user_id, packet);
    }

    /// Sends it another participant's packet (already rewritten to its SSRC), sealed.
    pub fn send(&self, packet: &Packet) {
        let counter = self.sent.fetch_add(1, Ordering::Relaxed);
        let header = header_bytes(&packet.header);
        let Some(datagram) = seal(&self.cipher, &header, &packet.payload, counter) else {
            return;
        };
        let Some(address) = *lock(&self.address) else {
            return;
        };
        if let Err(error) = self.socket.try_send_to(&datagram, address) {
            tracing::trace!(%error, "sending to a bot");
        }
    }
}

/// The answer to an IP discovery request: its SSRC, then the address and port it came from.
fn discovery_answer(datagram: &[u8], from: SocketAddr) -> Option<[u8; DISCOVERY_LEN]> {
    if datagram.len() != DISCOVERY_LEN
        || u16::from_be_bytes([datagram[0], datagram[1]]) != DISCOVERY_REQUEST
    {
        return None;
    }
    let mut answer = [0u8; DISCOVERY_LEN];
    answer[0..2].copy_from_slice(&DISCOVERY_RESPONSE.to_be_bytes());
    answer[2..4].copy_from_slice(&((DISCOVERY_LEN - 4) as u16).to_be_bytes());
    answer[4..8].copy_from_slice(&datagram[4..8]);
    let ip = from.ip().to_string();
    answer[8..8 + ip.len()].copy_from_slice(ip.as_bytes());
    answer[DISCOVERY_LEN - 2..].copy_from_slice(&from.port().to_be_bytes());
    Some(answer)
}

/// The SSRC of an RTP packet (version 2, not RTCP's payload types 72–76 as RTP sees them).
fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    if datagram.len() < RTP_HEADER_LEN || datagram[0] >> 6 != 2 {
        return None;
    }
    if (72..=76).contains(&(datagram[1] & 0x7f)) {
        return None;
    }
    Some(u32::from_be_bytes([
        datagram[8],
        datagram[9],
        datagram[10],
        datagram[11],
    ]))
}

/// The 24-byte nonce of `aead_xchacha20_poly1305_rtpsize`: the packet's 4-byte counter, zeros.
fn nonce_of(counter: [u8; 4]) -> XNonce {
    let mut nonce = [0u8; 24];
    nonce[..4].copy_from_slice(&counter);
    nonce.into()
}

/// Opens an `rtpsize` packet: the fixed header, CSRCs and the extension's 4-byte preamble are
/// authenticated in the clear; the extension's body and the Opus payload are encrypted; the
/// counter nonce trails. The packet forwarded carries the payload alone.
fn open(cipher: &XChaCha20Poly1305, datagram: &[u8]) -> Option<Packet> {
    if datagram.len() < RTP_HEADER_LEN {
        return None;
    }
    let csrcs = usize::from(datagram[0] & 0x0f);
    let extended = datagram[0] & 0x10 != 0;
    let clear = RTP_HEADER_LEN + 4 * csrcs + if extended { 4 } else { 0 };
    if datagram.len() < clear + TAG_LEN + NONCE_SUFFIX_LEN {
        return None;
    }
    let (sealed, counter) = datagram.split_at(datagram.len() - NONCE_SUFFIX_LEN);
    let plain = cipher
        .decrypt(
            &nonce_of(counter.try_into().ok()?),
            Payload {
                msg: &sealed[clear..],
                aad: &sealed[..clear],
            },
        )
        .ok()?;
    let extension_body = if extended {
        4 * usize::from(u16::from_be_bytes([
            datagram[clear - 2],
            datagram[clear - 1],
        ]))
    } else {
        0
    };
    let payload = plain.get(extension_body..)?;
    Some(Packet {
        header: Header {
            version: 2,
            marker: datagram[1] & 0x80 != 0,
            payload_type: datagram[1] & 0x7f,
            sequence_number: u16::from_be_bytes([datagram[2], datagram[3]]),
            timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
            ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
            ..Header::default()
        },
        payload: Bytes::copy_from_slice(payload),
    })
}

/// A datagram for a bot: `header` in the clear, `body` encrypted in place behind it (the header
/// authenticated with it), the tag, then the nonce's counter. One allocation.
fn seal(cipher: &XChaCha20Poly1305, header: &[u8], body: &[u8], counter: u32) -> Option<Vec<u8>> {
    let mut datagram = Vec::with_capacity(header.len() + body.len() + TAG_LEN + NONCE_SUFFIX_LEN);
    datagram.extend_from_slice(header);
    datagram.extend_from_slice(body);
    let (aad, sealed) = datagram.split_at_mut(header.len());
    let tag = cipher
        .encrypt_in_place_detached(&nonce_of(counter.to_be_bytes()), aad, sealed)
        .ok()?;
    datagram.extend_from_slice(&tag);
    datagram.extend_from_slice(&counter.to_be_bytes());
    Some(datagram)
}

/// The 12-byte fixed header of a packet to a bot (no CSRCs, no extensions).
fn header_bytes(header: &Header) -> [u8; RTP_HEADER_LEN] {
    let mut bytes = [0u8; RTP_HEADER_LEN];
    bytes[0] = 0x80;
    bytes[1] = (u8::from(header.marker) << 7) | (header.payload_type & 0x7f);
    bytes[2..4].copy_from_slice(&header.sequence_number.to_be_bytes());
    bytes[4..8].copy_from_slice(&header.timestamp.to_be_bytes());
    bytes[8..12].copy_from_slice(&header.ssrc.to_be_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_sealed_for_a_bot_opens_with_its_key() {
        let cipher = XChaCha20Poly1305::new(&[7u8; 32].into());
        let header = Header {
            marker: true,
            payload_type: OPUS_PAYLOAD_TYPE,
            sequence_number: 513,
            timestamp: 960,
            ssrc: 0xdead_beef,
            ..Header::default()
        };
        let datagram = seal(&cipher, &header_bytes(&header), b"opus", 3).unwrap();
        let opened = open(&cipher, &datagram).unwrap();
        assert_eq!(opened.payload.as_ref(), b"opus");
        assert_eq!(opened.header.sequence_number, 513);
        assert_eq!(opened.header.ssrc, 0xdead_beef);
        assert!(opened.header.marker);
        let stranger = XChaCha20Poly1305::new(&[8u8; 32].into());
        assert!(open(&stranger, &datagram).is_none());
    }

    #[test]
    fn an_extension_body_is_encrypted_and_dropped_from_the_payload() {
        let cipher = XChaCha20Poly1305::new(&[1u8; 32].into());
        // X set, one extension word: the 4-byte preamble is clear, its body is sealed.
        let mut header = vec![0x90, OPUS_PAYLOAD_TYPE, 0, 1, 0, 0, 0, 9, 0, 0, 0, 5];
        header.extend_from_slice(&[0xbe, 0xde, 0, 1]);
        let datagram = seal(&cipher, &header, b"\x10\x20\x00\x00voice", 0).unwrap();
        let opened = open(&cipher, &datagram).unwrap();
        assert_eq!(opened.payload.as_ref(), b"voice");
        assert!(!opened.header.extension);
    }

    #[test]
    fn media_goes_where_the_bots_discovery_came_from_sealed_with_its_key() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let bots = BotSocket::bind("127.0.0.1:0".parse().unwrap(), runtime.handle()).unwrap();
        let server = SocketAddr::from(([127, 0, 0, 1], bots.port()));
        let client = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        let packet = Packet {
            header: Header {
                payload_type: OPUS_PAYLOAD_TYPE,
                ssrc: 99,
                ..Header::default()
            },
            payload: Bytes::from_static(b"opus"),
        };
        let mut buffer = [0u8; 256];

        // IP discovery is answered, and where it came from is where the bot's media goes.
        let mut request = [0u8; DISCOVERY_LEN];
        request[..4].copy_from_slice(&[0, 1, 0, 70]);
        request[4..8].copy_from_slice(&8u32.to_be_bytes());
        client.send_to(&request, server).unwrap();
        let (length, _) = client.recv_from(&mut buffer).unwrap();
        assert_eq!(length, DISCOVERY_LEN);
        assert_eq!(&buffer[..8], &[0, 2, 0, 70, 0, 0, 0, 8]);
        let (bot, key) = bots.register(2, 8, MediaLoop::unattached());
        bot.send(&packet);
        let (length, from) = client.recv_from(&mut buffer).unwrap();
        assert_eq!(from, server);
        let opened = open(&XChaCha20Poly1305::new(&key.into()), &buffer[..length]).unwrap();
        assert_eq!(opened.payload.as_ref(), b"opus");
        assert_eq!(opened.header.ssrc, 99);
    }

    #[test]
    fn discovery_names_the_address_the_request_came_from() {
        let mut request = [0u8; DISCOVERY_LEN];
        request[..4].copy_from_slice(&[0, 1, 0, 70]);
        request[4..8].copy_from_slice(&42u32.to_be_bytes());
        let answer = discovery_answer(&request, "10.1.2.3:5678".parse().unwrap()).unwrap();
        assert_eq!(&answer[..8], &[0, 2, 0, 70, 0, 0, 0, 42]);
        assert_eq!(&answer[8..16], b"10.1.2.3");
        assert_eq!(answer[16], 0);
        assert_eq!(u16::from_be_bytes([answer[72], answer[73]]), 5678);
        assert!(discovery_answer(&request[..70], "10.1.2.3:1".parse().unwrap()).is_none());
    }
}
