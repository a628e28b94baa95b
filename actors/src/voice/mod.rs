//! Voice and video.
//!
//! Two halves meet here. The signalling half lives in the main gateway: op 4 puts a user's
//! voice state in a room (a guild voice channel, a DM or group call, a Go Live stream), and
//! answers with VOICE_SERVER_UPDATE carrying a one-time token. The media half is the voice
//! gateway and the SFU (room and transport actors): its IDENTIFY redeems that token.
//!
//! [`Admissions`] is the only thing the two halves share: the signalling half admits, updates
//! mute/deaf flags and dismisses; the media half redeems and watches the flags (a dismissal
//! reads as `None`, and the media half hangs up).
//!
//! The media half: [`gateway`] (one voice WebSocket), [`room`] (a room actor per active room
//! and their registry), [`media_loop`] (a room's task that owns its peer connections and
//! forwards RTP between them), [`transport`] (a participant's side of their peer connection),
//! [`bots`] (bots' voice over plain UDP), [`forwarding`] (the forwarding table), [`keyframes`]
//! (PLI/FIR from receivers to publishers), [`sdp`] (browser SDP fragments ↔ whole
//! descriptions), [`media`] (the media runtime, the peer-connection factory and the bots'
//! socket).

pub mod admissions;
pub mod bots;
pub mod forwarding;
pub mod gateway;
pub mod keyframes;
pub mod media;
pub mod media_loop;
pub mod room;
pub mod sdp;
pub mod transport;

use actix::{Addr, Message, Supervisor};

pub use admissions::{Admission, Admissions, Flags, Relay, RoomKey, SeatChange};
pub use gateway::{VoiceConnection, VoiceGatewayConfig};
pub use media::{Media, MediaSettings, MediaStartError};
pub use room::{ActiveRooms, VoiceRooms};

/// The media half's handles: the media runtime and the room registry; cheap to clone.
#[derive(Clone)]
pub struct Voice {
    pub media: Media,
    pub rooms: Addr<VoiceRooms>,
}

impl Voice {
    /// Starts the room registry on the current actix system.
    pub fn start(media: Media) -> Self {
        let registry_media = media.clone();
        Self {
            rooms: Supervisor::start(move |_| VoiceRooms::new(registry_media.clone())),
            media,
        }
    }

    /// Peer connections open now: one per participant who selected a protocol.
    pub fn live_transports(&self) -> usize {
        self.media.live_transports()
    }
}

/// Cluster mode: the node serving `room` (a guild channel or a call) is gone (`endpoint:
/// None`), or another serves it now, at `endpoint`. Its participants whose sessions are here
/// hear VOICE_SERVER_UPDATE: a null endpoint (wait), then the new one with a new token.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RoomMoved {
    pub room: RoomKey,
    pub endpoint: Option<String>,
}

/// VOICE_SERVER_UPDATE's `endpoint` for a client whose gateway is at `gateway_url`
/// (`ws(s)://host[:port]`): `host[:port]/voice`, without a scheme, which each client adds
/// itself (Fermi from the API's scheme, discord.py always `wss://`).
pub fn endpoint(gateway_url: &str) -> String {
    let host = gateway_url
        .split_once("://")
        .map_or(gateway_url, |(_, rest)| rest);
    format!("{}/voice", host.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_endpoint_is_the_gateway_host_without_a_scheme() {
        assert_eq!(
            super::endpoint("ws://127.0.0.1:3001"),
            "127.0.0.1:3001/voice"
        );
        assert_eq!(
            super::endpoint("wss://chat.example.org/"),
            "chat.example.org/voice"
        );
    }
}
