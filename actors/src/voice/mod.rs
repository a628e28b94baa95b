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

pub mod admissions;

pub use admissions::{Admission, Admissions, Flags, RoomKey};

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
