//! The browser side of the voice gateway's SDP seam, as `tests/clients/voice_peer.py` does it:
//! the fragment of our offer sent in SELECT_PROTOCOL, and the server's whole answer written
//! from its answer fragment (the server never sends a whole description).

use std::collections::HashMap;

/// The lines of the offer a browser client sends: credentials, fingerprint, extmaps, codecs.
pub fn fragment_of(offer: &str) -> String {
    const KEEP: [&str; 6] = [
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=fingerprint:",
        "a=extmap:",
        "a=rtpmap:",
        "a=fmtp:",
    ];
    let mut lines: Vec<&str> = Vec::new();
    for line in offer.lines().map(str::trim) {
        if KEEP.iter().any(|k| line.starts_with(k)) && !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines.join("\n") + "\n"
}

/// Our offer's payload type for Opus.
pub fn opus_payload_type(offer: &str) -> Option<u8> {
    offer.lines().find_map(|line| {
        let (pt, name) = line.trim().strip_prefix("a=rtpmap:")?.split_once(' ')?;
        let opus = name.to_ascii_lowercase().starts_with("opus/");
        opus.then(|| pt.parse().ok()).flatten()
    })
}

/// One m-section of our offer.
struct Section<'a> {
    kind: &'a str,
    mid: &'a str,
    lines: Vec<&'a str>,
}

fn sections(sdp: &str) -> Vec<Section<'_>> {
    let mut out: Vec<Section<'_>> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            out.push(Section {
                kind: m.split_whitespace().next().unwrap_or_default(),
                mid: "",
                lines: vec![line],
            });
        } else if let Some(section) = out.last_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                section.mid = mid;
            }
            section.lines.push(line);
        }
    }
    out
}

/// The mids of our offer's m-sections, in order.
pub fn mids(sdp: &str) -> Vec<String> {
    sections(sdp).iter().map(|s| s.mid.to_string()).collect()
}

fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines().map(str::trim).find_map(|line| {
        line.strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
    })
}

/// The server's ICE-lite answer, written from its fragment (SESSION_DESCRIPTION's `sdp`) and
/// our current offer. `incoming` maps the mids we receive others' streams on to the SSRC the
/// server sends each under (from op 12); every other m-line is one the server receives on.
pub fn remote_answer(
    fragment: &str,
    local: &str,
    incoming: &HashMap<String, u32>,
) -> Result<String, String> {
    let missing = |what: &str| format!("the answer fragment has no {what}");
    let port = fragment
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or_else(|| missing("m= port"))?;
    let ip = fragment
        .lines()
        .find_map(|l| l.trim().strip_prefix("c="))
        .and_then(|c| c.split_whitespace().nth(2))
        .ok_or_else(|| missing("c= address"))?;
    let ufrag = attribute(fragment, "ice-ufrag").ok_or_else(|| missing("ice-ufrag"))?;
    let pwd = attribute(fragment, "ice-pwd").ok_or_else(|| missing("ice-pwd"))?;
    let fingerprint = attribute(fragment, "fingerprint").ok_or_else(|| missing("fingerprint"))?;
    let candidate = attribute(fragment, "candidate").ok_or_else(|| missing("candidate"))?;
    let parts = sections(local);
    let bundle: Vec<&str> = parts.iter().map(|s| s.mid).collect();
    let mut sdp = vec![
        "v=0".to_string(),
        "o=- 1 2 IN IP4 127.0.0.1".into(),
        "s=-".into(),
        "t=0 0".into(),
        "a=ice-lite".into(),
        format!("a=group:BUNDLE {}", bundle.join(" ")),
        "a=msid-semantic: WMS *".into(),
    ];
    for section in &parts {
        let pts = payload_types(section);
        sdp.extend([
            format!(
                "m={} {port} UDP/TLS/RTP/SAVPF {}",
                section.kind,
                pts.join(" ")
            ),
            format!("c=IN IP4 {ip}"),
            format!("a=rtcp:{port}"),
            format!("a=ice-ufrag:{ufrag}"),
            format!("a=ice-pwd:{pwd}"),
            format!("a=fingerprint:{fingerprint}"),
            "a=setup:passive".into(),
            format!("a=mid:{}", section.mid),
        ]);
        sdp.extend(
            section
                .lines
                .iter()
                .filter(|l| l.starts_with("a=extmap:") && l.contains("sdes:mid"))
                .map(|l| l.to_string()),
        );
        let ssrc = incoming.get(section.mid);
        // The server sends on the m-lines op 12 named, and receives on the others, unless we
        // only offered to receive there (a listener's own audio and video m-lines).
        let direction = if ssrc.is_some() {
            "a=sendonly"
        } else if section.lines.contains(&"a=recvonly") {
            "a=inactive"
        } else {
            "a=recvonly"
        };
        sdp.push(direction.into());
        sdp.push("a=rtcp-mux".into());
        for pt in &pts {
            let rtpmap = format!("a=rtpmap:{pt} ");
            let fmtp = format!("a=fmtp:{pt} ");
            sdp.extend(
                section
                    .lines
                    .iter()
                    .filter(|l| l.starts_with(&rtpmap) || l.starts_with(&fmtp))
                    .map(|l| l.to_string()),
            );
        }
        if let Some(ssrc) = ssrc {
            sdp.push(format!("a=ssrc:{ssrc} cname:sfu"));
            sdp.push(format!("a=ssrc:{ssrc} msid:sfu {}{ssrc}", section.kind));
        }
        sdp.push(format!("a=candidate:{candidate}"));
        sdp.push("a=end-of-candidates".into());
    }
    Ok(sdp.join("\r\n") + "\r\n")
}

/// The payload types the server answers an m-section with: Opus for audio, VP8 for video
/// (what our offer prefers; the bench sends no video), plus their RTX.
fn payload_types(section: &Section<'_>) -> Vec<String> {
    let wanted = if section.kind == "audio" {
        "opus"
    } else {
        "vp8"
    };
    let rtpmaps: Vec<(&str, &str)> = section
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("a=rtpmap:")?.split_once(' '))
        .collect();
    let mut pts: Vec<String> = rtpmaps
        .iter()
        .filter(|(_, name)| {
            name.split('/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
        .map(|(pt, _)| pt.to_string())
        .collect();
    for (pt, name) in &rtpmaps {
        let apt = format!("a=fmtp:{pt} apt=");
        let of_wanted = section
            .lines
            .iter()
            .find_map(|l| l.strip_prefix(&apt))
            .is_some_and(|apt| pts.iter().any(|p| p == apt));
        if name.starts_with("rtx/") && of_wanted {
            pts.push(pt.to_string());
        }
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abc\r\na=ice-pwd:secret\r\n\
        a=fingerprint:sha-256 AA:BB\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 H264/90000\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=rtpmap:111 opus/48000/2\r\n";
    const FRAGMENT: &str = "m=audio 42001 ICE/SDP\na=fingerprint:sha-256 CC:DD\n\
        c=IN IP4 127.0.0.1\na=rtcp:42001\na=ice-ufrag:srv\na=ice-pwd:srvpwd\n\
        a=fingerprint:sha-256 CC:DD\na=candidate:1 1 udp 2130706431 127.0.0.1 42001 typ host\n";

    #[test]
    fn the_fragment_keeps_credentials_and_codecs_once() {
        let fragment = fragment_of(OFFER);
        assert!(fragment.starts_with("a=ice-ufrag:abc\na=ice-pwd:secret\n"));
        assert_eq!(fragment.matches("a=rtpmap:111 opus").count(), 1);
        assert!(!fragment.contains("m="));
    }

    #[test]
    fn the_answer_mirrors_every_m_line_and_names_incoming_ssrcs() {
        let incoming = HashMap::from([("2".to_string(), 777)]);
        let answer = remote_answer(FRAGMENT, OFFER, &incoming).unwrap();
        assert!(answer.contains("a=group:BUNDLE 0 1 2\r\n"));
        assert!(answer.contains("m=audio 42001 UDP/TLS/RTP/SAVPF 111\r\n"));
        assert!(answer.contains("m=video 42001 UDP/TLS/RTP/SAVPF 96 97\r\n"));
        assert_eq!(answer.matches("a=recvonly").count(), 2);
        let listener = OFFER.replace("a=mid:1\r\n", "a=mid:1\r\na=recvonly\r\n");
        let answer_to_listener = remote_answer(FRAGMENT, &listener, &incoming).unwrap();
        assert!(answer_to_listener.contains("a=mid:1\r\na=inactive"));
        assert!(answer.contains("a=mid:2\r\na=sendonly"));
        assert!(answer.contains("a=ssrc:777 msid:sfu audio777"));
        assert_eq!(mids(OFFER), ["0", "1", "2"]);
        assert_eq!(opus_payload_type(OFFER), Some(111));
        assert!(remote_answer("", OFFER, &incoming).is_err());
    }
}
