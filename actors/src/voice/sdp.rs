//! The SDP seam between browser-style voice clients and the SFU's peer connections.
//!
//! Browser clients (Fermi, Discord's web client) never exchange whole session descriptions
//! with the voice server. SELECT_PROTOCOL carries a *fragment* of the client's offer: its ICE
//! credentials, DTLS fingerprint, header extensions and codecs. The server answers with a
//! fragment too (ICE-lite: port, address, credentials, fingerprint, one candidate), and the
//! client builds the server's whole description itself, learning the SSRCs it will receive
//! from op 12 and SPEAKING.
//!
//! `webrtc` needs whole descriptions, so the transport plays the client's half: [`Offer`]
//! renders a full offer from the fragment (one BUNDLE of m-lines: the client's audio, its
//! video, then one receive-only m-line per stream it is sent, in the order they were added —
//! the same order the client adds its receivers in), and [`answer_fragment`] cuts the answer
//! `webrtc` made down to what the client expects. The server is always the answerer; a new
//! stream to send means a fresh synthetic offer, never an offer the client must answer.

use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec};
use std::fmt::Write as _;

/// Why a client's fragment was refused (the voice gateway closes with 4020 bad request).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("the SDP has no {0}")]
    Missing(&'static str),
    #[error("the SDP offers no {0} codec")]
    NoCodec(&'static str),
    #[error("malformed SDP line: {0}")]
    Malformed(String),
}

/// Audio or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
        }
    }
}

/// One codec of the client's offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    /// As in `a=rtpmap`: `opus`, `VP8`, `H264`, `rtx`…
    pub name: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub fmtp: String,
    pub feedback: Vec<String>,
}

impl Codec {
    pub fn kind(&self) -> Kind {
        match self.name.to_ascii_lowercase().as_str() {
            "opus" | "multiopus" | "pcmu" | "pcma" | "g722" | "telephone-event" | "red" => {
                Kind::Audio
            }
            _ => Kind::Video,
        }
    }

    pub fn is_rtx(&self) -> bool {
        self.name.eq_ignore_ascii_case("rtx")
    }

    /// `audio/opus`, `video/VP8`: how `webrtc` names codecs.
    pub fn mime_type(&self) -> String {
        format!("{}/{}", self.kind().as_str(), self.name)
    }

    /// Opus as Discord's clients send it, on `payload_type`.
    pub fn opus(payload_type: u8) -> Self {
        Self {
            payload_type,
            name: "opus".to_string(),
            clock_rate: 48_000,
            channels: 2,
            fmtp: "minptime=10;useinbandfec=1".to_string(),
            feedback: Vec::new(),
        }
    }

    /// The codec as `webrtc` describes one.
    pub fn to_webrtc(&self) -> RTCRtpCodec {
        RTCRtpCodec {
            mime_type: self.mime_type(),
            clock_rate: self.clock_rate,
            channels: self.channels,
            sdp_fmtp_line: self.fmtp.clone(),
            rtcp_feedback: self
                .feedback
                .iter()
                .map(|feedback| {
                    let (typ, parameter) = feedback.split_once(' ').unwrap_or((feedback, ""));
                    RTCPFeedback {
                        typ: typ.to_string(),
                        parameter: parameter.to_string(),
                    }
                })
                .collect(),
        }
    }
}

/// A codec from SELECT_PROTOCOL's `codecs` list, for fragments that carry no `a=rtpmap`.
#[derive(Clone, Debug)]
pub struct ListedCodec {
    pub name: String,
    pub payload_type: u8,
    pub rtx_payload_type: Option<u8>,
}

/// What the client told us of its offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFragment {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    /// `sha-256 AB:CD:…`
    pub fingerprint: String,
    /// `(id, uri)`
    pub extmaps: Vec<(u8, String)>,
    pub codecs: Vec<Codec>,
}

/// The one header extension the synthetic offer keeps: MID, so BUNDLE demultiplexing works.
/// Others (levels, timing) would be forwarded with the publisher's ids, meaningless to receivers.
const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

impl ClientFragment {
    /// Parses the fragment, completing it from the `codecs` list when it lacks `a=rtpmap` lines.
    pub fn parse(sdp: &str, listed: &[ListedCodec]) -> Result<Self, SdpError> {
        let mut ice_ufrag = None;
        let mut ice_pwd = None;
        let mut fingerprint = None;
        let mut extmaps = Vec::new();
        for line in sdp.lines().map(str::trim) {
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            match name {
                "ice-ufrag" => ice_ufrag = Some(value.to_string()),
                "ice-pwd" => ice_pwd = Some(value.to_string()),
                // Browsers may list several hashes; the first (sha-256) is the one all speak.
                "fingerprint" => {
                    fingerprint = fingerprint.or_else(|| Some(value.to_string()));
                }
                "extmap" => {
                    let (id, uri) = split_pt(value, line)?;
                    let uri = uri.split_whitespace().next().unwrap_or_default();
                    extmaps.push((id, uri.to_string()));
                }
                _ => {}
            }
        }
        // A malformed codec line is reported before anything missing.
        let codecs = codecs(sdp, listed)?;
        let fragment = Self {
            ice_ufrag: ice_ufrag
                .filter(|u| valid_token(u))
                .ok_or(SdpError::Missing("a=ice-ufrag"))?,
            ice_pwd: ice_pwd
                .filter(|p| valid_token(p))
                .ok_or(SdpError::Missing("a=ice-pwd"))?,
            fingerprint: fingerprint
                .filter(|f| f.split_once(' ').is_some_and(|(_, hex)| hex.contains(':')))
                .ok_or(SdpError::Missing("a=fingerprint"))?,
            extmaps,
            codecs,
        };
        if fragment.primary(Kind::Audio).is_none() {
            return Err(SdpError::NoCodec("audio"));
        }
        Ok(fragment)
    }

    /// What a plain-UDP client (a bot) speaks: Opus on `payload_type`, nothing to negotiate.
    pub fn plain_opus(payload_type: u8) -> Self {
        Self {
            ice_ufrag: String::new(),
            ice_pwd: String::new(),
            fingerprint: String::new(),
            extmaps: Vec::new(),
            codecs: vec![Codec::opus(payload_type)],
        }
    }

    /// The client's codecs of one kind, RTX included, in its order of preference.
    pub fn codecs_of(&self, kind: Kind) -> impl Iterator<Item = &Codec> {
        self.codecs.iter().filter(move |c| c.kind() == kind)
    }

    /// The client's preferred non-RTX codec of a kind.
    pub fn primary(&self, kind: Kind) -> Option<&Codec> {
        self.codecs_of(kind).find(|c| !c.is_rtx())
    }

    /// The client's payload type for a codec by name (`opus`, `VP8`), if it offered it.
    pub fn payload_type_of(&self, name: &str) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.payload_type)
    }
}

/// The codecs of an SDP (a fragment's or a whole description's, every m-line's together, by
/// payload type), completed from the `codecs` list of a fragment without `a=rtpmap` lines.
pub fn codecs(sdp: &str, listed: &[ListedCodec]) -> Result<Vec<Codec>, SdpError> {
    let mut codecs: Vec<Codec> = Vec::new();
    let mut fmtps = Vec::new();
    let mut feedback = Vec::new();
    for line in sdp.lines().map(str::trim) {
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
        match name {
            "rtpmap" => {
                let (payload_type, encoding) = split_pt(value, line)?;
                let mut parts = encoding.split('/');
                let name = parts.next().unwrap_or_default().to_string();
                let clock_rate = parts
                    .next()
                    .and_then(|rate| rate.parse().ok())
                    .ok_or_else(|| SdpError::Malformed(line.to_string()))?;
                let channels = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                if !codecs.iter().any(|c| c.payload_type == payload_type) {
                    codecs.push(Codec {
                        payload_type,
                        name,
                        clock_rate,
                        channels,
                        fmtp: String::new(),
                        feedback: Vec::new(),
                    });
                }
            }
            "fmtp" => fmtps.push(split_pt(value, line)?),
            "rtcp-fb" => feedback.push(split_pt(value, line)?),
            _ => {}
        }
    }
    for listed in listed {
        complete_from_list(&mut codecs, listed);
    }
    for (payload_type, parameters) in fmtps {
        if let Some(codec) = codecs.iter_mut().find(|c| c.payload_type == payload_type) {
            codec.fmtp = parameters.to_string();
        }
    }
    for (payload_type, parameters) in feedback {
        if let Some(codec) = codecs.iter_mut().find(|c| c.payload_type == payload_type) {
            codec.feedback.push(parameters.to_string());
        }
    }
    for codec in &mut codecs {
        fill_defaults(codec);
    }
    Ok(codecs)
}

/// The id an SDP gives the header extension `uri` (`a=extmap:<id> <uri>`).
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().map(str::trim).find_map(|line| {
        let (id, rest) = line.strip_prefix("a=extmap:")?.split_once(' ')?;
        let named = rest.split_whitespace().next() == Some(uri);
        named.then(|| id.split('/').next()?.parse().ok()).flatten()
    })
}

/// RFC 6464's audio level extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// One m-line of a whole description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// `audio`, `video`, `application`.
    pub media: String,
    pub mid: String,
    /// `sendrecv` (the default), `sendonly`, `recvonly`, `inactive`.
    pub direction: String,
    /// The section's lines, `m=` first.
    pub lines: Vec<String>,
}

impl Section {
    pub fn kind(&self) -> Option<Kind> {
        match self.media.as_str() {
            "audio" => Some(Kind::Audio),
            "video" => Some(Kind::Video),
            _ => None,
        }
    }

    /// Whether the side that wrote it sends on it.
    pub fn sends(&self) -> bool {
        matches!(self.direction.as_str(), "sendrecv" | "sendonly")
    }

    /// The payload type this section gives a codec: by name, the same `fmtp` preferred.
    pub fn payload_type_of(&self, codec: &Codec) -> Option<u8> {
        let codecs = codecs(&self.lines.join("\n"), &[]).ok()?;
        let named = || {
            codecs
                .iter()
                .filter(|c| c.name.eq_ignore_ascii_case(&codec.name))
        };
        named()
            .find(|c| c.fmtp == codec.fmtp)
            .or_else(|| named().next())
            .map(|c| c.payload_type)
    }
}

/// The m-lines of a whole description, in order.
pub fn sections(sdp: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(media) = line.strip_prefix("m=") {
            sections.push(Section {
                media: media
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                mid: String::new(),
                direction: "sendrecv".to_string(),
                lines: Vec::new(),
            });
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        section.lines.push(line.to_string());
        if let Some(mid) = line.strip_prefix("a=mid:") {
            section.mid = mid.to_string();
        } else if let Some(direction) = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| line.strip_prefix("a=") == Some(*d))
        {
            section.direction = direction.to_string();
        }
    }
    sections
}

/// `"111 opus/48000/2"` → `(111, "opus/48000/2")`.
fn split_pt<'a>(value: &'a str, line: &str) -> Result<(u8, &'a str), SdpError> {
    let (id, rest) = value.split_once(' ').unwrap_or((value, ""));
    let id = id
        .split('/')
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| SdpError::Malformed(line.to_string()))?;
    Ok((id, rest.trim()))
}

/// ICE credentials are `ice-char`s (RFC 8839): letters, digits, `+` and `/`.
fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn complete_from_list(codecs: &mut Vec<Codec>, listed: &ListedCodec) {
    let (clock_rate, channels) = match listed.name.to_ascii_lowercase().as_str() {
        "opus" => (48_000, 2),
        "pcmu" | "pcma" | "g722" => (8_000, 0),
        _ => (90_000, 0),
    };
    if !codecs.iter().any(|c| c.payload_type == listed.payload_type) {
        codecs.push(Codec {
            payload_type: listed.payload_type,
            name: listed.name.clone(),
            clock_rate,
            channels,
            fmtp: String::new(),
            feedback: Vec::new(),
        });
    }
    if let Some(rtx) = listed.rtx_payload_type {
        if !codecs.iter().any(|c| c.payload_type == rtx) {
            codecs.push(Codec {
                payload_type: rtx,
                name: "rtx".into(),
                clock_rate: 90_000,
                channels: 0,
                fmtp: format!("apt={}", listed.payload_type),
                feedback: Vec::new(),
            });
        }
    }
}

/// What a fragment usually leaves out but `webrtc` needs to match codecs.
fn fill_defaults(codec: &mut Codec) {
    if codec.fmtp.is_empty() && codec.name.eq_ignore_ascii_case("H264") {
        codec.fmtp =
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".into();
    }
    if codec.fmtp.is_empty() && codec.name.eq_ignore_ascii_case("opus") {
        codec.fmtp = "minptime=10;useinbandfec=1".into();
    }
    if codec.feedback.is_empty() && codec.kind() == Kind::Video && !codec.is_rtx() {
        codec.feedback = vec!["nack".into(), "nack pli".into(), "ccm fir".into()];
    }
}

/// A stream the client publishes: its SSRCs as op 12 / SPEAKING announced them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub audio_ssrc: u32,
    pub video_ssrc: u32,
    pub rtx_ssrc: u32,
}

/// Everything the synthetic offer is rendered from.
pub struct Offer<'a> {
    pub fragment: &'a ClientFragment,
    pub cname: &'a str,
    pub published: Published,
    /// The kinds of the receive-only m-lines, in the order they were added.
    pub receive: &'a [Kind],
    /// Bumped on every render (the `o=` version).
    pub version: u64,
}

impl Offer<'_> {
    pub fn render(&self) -> String {
        let mids = 2 + self.receive.len();
        let mut sdp = String::new();
        let _ = write!(
            sdp,
            "v=0\r\no=- 1 {} IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE",
            self.version
        );
        for mid in 0..mids {
            let _ = write!(sdp, " {mid}");
        }
        sdp.push_str("\r\na=msid-semantic: WMS *\r\n");
        let audio = (self.published.audio_ssrc, 0);
        let video = (self.published.video_ssrc, self.published.rtx_ssrc);
        self.media(&mut sdp, 0, Kind::Audio, "sendonly", audio);
        self.media(&mut sdp, 1, Kind::Video, "sendonly", video);
        for (index, kind) in self.receive.iter().enumerate() {
            self.media(&mut sdp, index + 2, *kind, "recvonly", (0, 0));
        }
        sdp
    }

    fn media(&self, sdp: &mut String, mid: usize, kind: Kind, direction: &str, ssrcs: (u32, u32)) {
        let codecs: Vec<&Codec> = self.fragment.codecs_of(kind).collect();
        let _ = write!(sdp, "m={} 9 UDP/TLS/RTP/SAVPF", kind.as_str());
        for codec in &codecs {
            let _ = write!(sdp, " {}", codec.payload_type);
        }
        let fragment = self.fragment;
        let _ = write!(
            sdp,
            "\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n\
             a=fingerprint:{}\r\na=setup:actpass\r\na=mid:{mid}\r\n",
            fragment.ice_ufrag, fragment.ice_pwd, fragment.fingerprint
        );
        for (id, uri) in &fragment.extmaps {
            if uri == MID_URI {
                let _ = write!(sdp, "a=extmap:{id} {uri}\r\n");
            }
        }
        let _ = write!(sdp, "a={direction}\r\na=rtcp-mux\r\n");
        for codec in &codecs {
            let _ = write!(
                sdp,
                "a=rtpmap:{} {}/{}",
                codec.payload_type, codec.name, codec.clock_rate
            );
            if codec.channels > 0 {
                let _ = write!(sdp, "/{}", codec.channels);
            }
            sdp.push_str("\r\n");
            if !codec.fmtp.is_empty() {
                let _ = write!(sdp, "a=fmtp:{} {}\r\n", codec.payload_type, codec.fmtp);
            }
            for feedback in &codec.feedback {
                let _ = write!(sdp, "a=rtcp-fb:{} {feedback}\r\n", codec.payload_type);
            }
        }
        let (ssrc, rtx) = ssrcs;
        if ssrc != 0 {
            let track = format!("{}-{}", self.cname, kind.as_str());
            if rtx != 0 {
                let _ = write!(sdp, "a=ssrc-group:FID {ssrc} {rtx}\r\n");
            }
            for ssrc in [ssrc, rtx].into_iter().filter(|s| *s != 0) {
                let _ = write!(
                    sdp,
                    "a=ssrc:{ssrc} cname:{0}\r\na=ssrc:{ssrc} msid:{0} {track}\r\n",
                    self.cname
                );
            }
        }
    }
}

/// Cuts `webrtc`'s whole answer down to the ICE-lite fragment a browser client expects: the
/// port in the `m=` line, `c=`, `a=rtcp`, the credentials, the fingerprint and one candidate.
pub fn answer_fragment(answer: &str) -> Result<String, SdpError> {
    let attribute = |name: &str| {
        answer
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(name))
            .map(str::to_string)
    };
    let candidate = answer
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .find(|c| {
            c.split_whitespace()
                .nth(2)
                .is_some_and(|t| t.eq_ignore_ascii_case("udp"))
        })
        .ok_or(SdpError::Missing("a=candidate"))?;
    let fields: Vec<&str> = candidate.split_whitespace().collect();
    let (ip, port) = match fields.as_slice() {
        [_, _, _, _, ip, port, ..] => (*ip, *port),
        _ => return Err(SdpError::Malformed(candidate.to_string())),
    };
    let family = if ip.contains(':') { "IP6" } else { "IP4" };
    let ufrag = attribute("a=ice-ufrag:").ok_or(SdpError::Missing("a=ice-ufrag"))?;
    let pwd = attribute("a=ice-pwd:").ok_or(SdpError::Missing("a=ice-pwd"))?;
    let fingerprint = attribute("a=fingerprint:").ok_or(SdpError::Missing("a=fingerprint"))?;
    Ok(format!(
        "m=audio {port} ICE/SDP\na=fingerprint:{fingerprint}\nc=IN {family} {ip}\n\
         a=rtcp:{port}\na=ice-ufrag:{ufrag}\na=ice-pwd:{pwd}\na=fingerprint:{fingerprint}\n\
         a=candidate:{candidate}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAGMENT: &str = "a=extmap-allow-mixed\na=ice-ufrag:Ab12\na=ice-pwd:secretpasswordsecretpass\n\
        a=ice-options:trickle\na=fingerprint:sha-256 4A:2B:00:11\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\n\
        a=rtpmap:111 opus/48000/2\na=rtpmap:96 VP8/90000\na=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n";

    #[test]
    fn a_browser_fragment_parses_into_credentials_and_codecs() {
        let fragment = ClientFragment::parse(FRAGMENT, &[]).unwrap();
        assert_eq!(fragment.ice_ufrag, "Ab12");
        assert_eq!(fragment.fingerprint, "sha-256 4A:2B:00:11");
        assert_eq!(fragment.primary(Kind::Audio).unwrap().name, "opus");
        assert_eq!(fragment.primary(Kind::Video).unwrap().name, "VP8");
        assert_eq!(fragment.codecs_of(Kind::Video).count(), 2);
        assert_eq!(fragment.payload_type_of("vp8"), Some(96));
    }

    #[test]
    fn the_codecs_list_completes_a_fragment_without_rtpmap() {
        let bare = "a=ice-ufrag:Ab12\na=ice-pwd:pw\na=fingerprint:sha-256 4A:2B\n";
        let listed = [
            ListedCodec {
                name: "opus".into(),
                payload_type: 109,
                rtx_payload_type: None,
            },
            ListedCodec {
                name: "H264".into(),
                payload_type: 102,
                rtx_payload_type: Some(103),
            },
        ];
        let fragment = ClientFragment::parse(bare, &listed).unwrap();
        let h264 = fragment.primary(Kind::Video).unwrap();
        assert!(h264.fmtp.contains("packetization-mode=1"));
        assert_eq!(fragment.payload_type_of("rtx"), Some(103));
    }

    #[test]
    fn fragments_without_credentials_or_audio_are_refused() {
        assert_eq!(
            ClientFragment::parse("a=ice-pwd:x\na=fingerprint:sha-256 A:B", &[]),
            Err(SdpError::Missing("a=ice-ufrag"))
        );
        assert_eq!(
            ClientFragment::parse("hello", &[]),
            Err(SdpError::Missing("a=ice-ufrag"))
        );
        let video_only =
            "a=ice-ufrag:a\na=ice-pwd:b\na=fingerprint:sha-256 A:B\na=rtpmap:96 VP8/90000";
        assert_eq!(
            ClientFragment::parse(video_only, &[]),
            Err(SdpError::NoCodec("audio"))
        );
        assert!(matches!(
            ClientFragment::parse("a=rtpmap:abc opus", &[]),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn the_synthetic_offer_bundles_publish_and_receive_lines() {
        let fragment = ClientFragment::parse(FRAGMENT, &[]).unwrap();
        let offer = Offer {
            fragment: &fragment,
            cname: "7",
            published: Published {
                audio_ssrc: 11,
                video_ssrc: 12,
                rtx_ssrc: 13,
            },
            receive: &[Kind::Audio, Kind::Video],
            version: 3,
        }
        .render();
        assert!(offer.contains("a=group:BUNDLE 0 1 2 3\r\n"));
        assert!(offer.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
        assert!(offer.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"));
        assert!(offer.contains("a=ssrc-group:FID 12 13\r\n"));
        assert!(offer.contains("a=ssrc:11 cname:7\r\n"));
        assert_eq!(offer.matches("a=recvonly").count(), 2);
        assert!(offer.contains("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"));
        assert!(!offer.contains("ssrc-audio-level"));
    }

    #[test]
    fn a_whole_description_splits_into_sections() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=sendonly\r\n\
            a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        let sections = sections(sdp);
        assert_eq!(sections.len(), 3);
        assert_eq!(
            (sections[0].kind(), sections[0].sends()),
            (Some(Kind::Audio), true)
        );
        assert_eq!((sections[1].mid.as_str(), sections[1].sends()), ("1", true));
        assert_eq!(sections[2].kind(), None);
        let pcmu = codecs(sdp, &[])
            .unwrap()
            .into_iter()
            .find(|c| c.name == "PCMU")
            .unwrap();
        assert_eq!(sections[0].payload_type_of(&pcmu), Some(0));
        assert_eq!(sections[1].payload_type_of(&pcmu), None);
        let with_level = "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:3/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n";
        assert_eq!(extmap_id(with_level, AUDIO_LEVEL_URI), Some(3));
        assert_eq!(extmap_id(sdp, AUDIO_LEVEL_URI), None);
    }

    #[test]
    fn the_answer_is_cut_down_to_an_ice_lite_fragment() {
        let answer = "v=0\r\na=ice-lite\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=ice-ufrag:srv\r\na=ice-pwd:srvpwd\r\na=fingerprint:sha-256 AA:BB\r\n\
            a=candidate:1 1 udp 2130706431 203.0.113.5 50004 typ host\r\n";
        let fragment = answer_fragment(answer).unwrap();
        assert!(fragment.starts_with("m=audio 50004 ICE/SDP\n"));
        assert!(fragment.contains("c=IN IP4 203.0.113.5\n"));
        assert!(fragment.contains("a=rtcp:50004\n"));
        assert!(fragment.contains("a=ice-ufrag:srv\n"));
        assert!(fragment.contains("a=candidate:1 1 udp 2130706431 203.0.113.5 50004 typ host\n"));
        assert_eq!(
            answer_fragment("v=0"),
            Err(SdpError::Missing("a=candidate"))
        );
    }
}
