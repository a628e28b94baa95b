//! The rooms service's signalling (`/rooms/ws`, docs/rooms.md) and media: aiortc peers from
//! PyPI (`tests/clients/room_peer.py`) publish through one connection and subscribe through
//! another, and every codec reaches the subscriber as it was sent; plus the socket's refusals
//! (grants, hidden participants, expired tokens, bounds) over a plain WebSocket.
//!
//! Tokens are minted here with the server's own key ([`token`]), as the rooms API does.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use spacebar::rooms::{RoomClaims, RoomTokens};
use spacebar_actors::rooms::{
    CloseRoom, Configure, Grants, MuteTrack, Participants, RemoveParticipant, RoomSettings, Source,
};

use crate::common::gateway::{Event, Gateway};
use crate::common::{TestServer, TEST_SECRET};
use crate::voice_media::{aiortc, Peer};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/room_peer.py");

/// A room token for `identity` in `room`, valid for `lifetime` seconds (negative: expired).
pub fn token(room: &str, identity: &str, grants: Grants, lifetime: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = RoomClaims {
        identity: identity.into(),
        name: identity.to_uppercase(),
        room: room.into(),
        metadata: String::new(),
        grants,
        issuer: "test".into(),
        issued_at: now,
        expires_at: now + lifetime,
    };
    RoomTokens::new(TEST_SECRET.as_bytes())
        .issue(&claims)
        .unwrap()
}

/// A media server on loopback with a UDP range of its own.
async fn rooms_server() -> TestServer {
    TestServer::with(&[
        ("voice.bind_ip", "127.0.0.1"),
        ("voice.udp_port_min", "44000"),
        ("voice.udp_port_max", "44999"),
    ])
    .await
}

/// An aiortc peer in `room`: `publish` with an audio and a video codec (`-`: none), or
/// `subscribe`.
fn peer(server: &TestServer, room: &str, identity: &str, role: &[&str]) -> Peer {
    let url = server
        .url(&format!(
            "/rooms/ws?token={}",
            token(room, identity, Grants::participant(), 600)
        ))
        .replacen("http", "ws", 1);
    let mut command = Command::new(aiortc());
    command.arg(SCRIPT).arg(url).args(role);
    Peer::spawn(command)
}

/// The next server message of `kind` a peer printed.
async fn message(peer: &mut Peer, kind: &str) -> Value {
    let line = peer.until(kind, |line| is_message(line, kind)).await;
    line["message"].clone()
}

/// The first server message of `kind` a peer printed (perhaps already read).
async fn first_message(peer: &mut Peer, kind: &str) -> Value {
    let line = peer.seen(kind, |line| is_message(line, kind)).await;
    line["message"].clone()
}

fn is_message(line: &Value, kind: &str) -> bool {
    line["event"] == "message" && line["message"]["type"] == kind
}

/// Publishes `audio`/`video` from one peer to a subscriber in a room of their own, and checks
/// the subscriber receives each track with that codec and decodes it; the two peers, and the
/// publisher's `publish-answer`.
async fn forwarded(
    server: &TestServer,
    room: &str,
    audio: &str,
    video: &str,
) -> (Peer, Peer, Value) {
    let mut subscriber = peer(server, room, "listener", &["subscribe"]);
    message(&mut subscriber, "joined").await;
    let mut publisher = peer(server, room, "speaker", &["publish", audio, video]);
    let answer = message(&mut publisher, "publish-answer").await;
    assert!(
        answer["sdp"].as_str().unwrap().contains("a=ice-lite"),
        "{answer}"
    );
    let wanted: Vec<(&str, &str)> = [("audio", audio), ("video", video)]
        .into_iter()
        .filter(|(_, codec)| *codec != "-")
        .collect();
    for (kind, codec) in &wanted {
        let published = subscriber
            .seen("track-published", |line| {
                line["message"]["type"] == "track-published"
                    && line["message"]["track"]["kind"] == *kind
            })
            .await;
        let announced = published["message"]["track"]["codec"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            announced.eq_ignore_ascii_case(&format!("{kind}/{codec}")),
            "{published}"
        );
        assert_eq!(published["message"]["participant"], "speaker");
        let track = subscriber
            .seen("the subscribed track", |line| {
                line["event"] == "track" && line["kind"] == *kind
            })
            .await;
        let negotiated = track["codec"].as_str().unwrap();
        assert!(
            negotiated.eq_ignore_ascii_case(&format!("{kind}/{codec}")),
            "{track}"
        );
    }
    let audio_frames = u64::from(audio != "-") * 25;
    let video_frames = u64::from(video != "-") * 10;
    subscriber.decoded(audio_frames, video_frames).await;
    let participants = server
        .tree()
        .rooms
        .send(Participants { room: room.into() })
        .await
        .unwrap();
    assert_eq!(participants.len(), 2);
    (publisher, subscriber, answer)
}

#[actix_web::test]
async fn rooms_media_opus_and_vp8_reach_a_subscriber_unchanged() {
    let server = rooms_server().await;
    let (mut publisher, mut subscriber, answer) =
        forwarded(&server, "opus-room", "opus", "VP8").await;

    // The publisher's tone makes it the active speaker.
    let speaking = first_message(&mut subscriber, "speaking").await;
    assert_eq!(speaking["speakers"][0]["identity"], "speaker", "{speaking}");

    // Lossy data, from the publisher's data channel and from its socket, arrives on the
    // subscriber's data channel (loopback loses none; a lost one is sent again).
    for (n, command) in [
        json!({ "lossy": { "payload": { "n": 1 } } }),
        json!({ "type": "publish-data", "kind": "lossy", "payload": { "n": 2 } }),
    ]
    .into_iter()
    .enumerate()
    {
        let wanted = json!(n + 1);
        publisher.command(&command.to_string());
        let lossy = subscriber
            .until("lossy data", |line| {
                line["event"] == "lossy" && line["data"]["payload"]["n"] == wanted
            })
            .await;
        assert_eq!(lossy["label"], "_lossy");
        assert_eq!(lossy["data"]["from"], "speaker");
    }

    // Muting the audio track stops it (and the speaking) for the subscriber; video goes on.
    let sid = answer["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|track| track["kind"] == "audio")
        .unwrap()["sid"]
        .clone();
    publisher.command(&json!({ "type": "mute", "sid": sid }).to_string());
    let muted = message(&mut subscriber, "muted").await;
    assert_eq!(
        (muted["participant"].clone(), muted["sid"].clone()),
        (json!("speaker"), sid.clone())
    );
    subscriber
        .until("silence", |line| {
            is_message(line, "speaking") && line["message"]["speakers"] == json!([])
        })
        .await;
    let (audio_before, video_before) = subscriber.frames_after(Duration::from_secs(1)).await;
    let (audio_after, video_after) = subscriber.frames_after(Duration::from_secs(2)).await;
    assert!(audio_after - audio_before <= 5, "audio went on while muted");
    assert!(video_after > video_before, "video stopped too");
    publisher.command(&json!({ "type": "unmute", "sid": sid }).to_string());
    message(&mut subscriber, "unmuted").await;
    subscriber.decoded(audio_after + 25, 0).await;

    // Leaving: the subscriber hears the tracks go and the publisher leave.
    publisher.command("leave");
    message(&mut subscriber, "track-unpublished").await;
    assert_eq!(
        message(&mut subscriber, "participant-left").await["identity"],
        "speaker"
    );
}

#[actix_web::test]
async fn rooms_media_h264_pcmu_pcma_and_g722_are_forwarded_unchanged() {
    let server = rooms_server().await;
    forwarded(&server, "h264-room", "PCMU", "H264").await;
    forwarded(&server, "pcma-room", "PCMA", "-").await;
    forwarded(&server, "g722-room", "G722", "-").await;
}

/// A plain signalling client with a token for `identity` in `room`; reads `joined`.
async fn join(server: &TestServer, room: &str, identity: &str, grants: Grants) -> (Gateway, Value) {
    let token = token(room, identity, grants, 600);
    let mut socket = Gateway::connect_at(server, "/rooms/ws", &format!("token={token}")).await;
    socket.send(json!({ "type": "join" })).await;
    let joined = next_of(&mut socket, "joined").await;
    (socket, joined)
}

/// The next message of `kind`, skipping others.
async fn next_of(socket: &mut Gateway, kind: &str) -> Value {
    loop {
        let message = socket.payload().await;
        if message["type"] == kind {
            return message;
        }
    }
}

async fn closes_with(socket: &mut Gateway, code: u16) -> Value {
    let mut error = Value::Null;
    loop {
        match socket.next().await {
            Event::Closed(closed) => {
                assert_eq!(closed, Some(code), "{error}");
                return error;
            }
            Event::Payload(payload) if payload["type"] == "error" => error = payload,
            Event::Payload(_) => {}
        }
    }
}

/// Nothing of `kind` arrives within a short while.
async fn nothing_of(socket: &mut Gateway, kind: &str) {
    while let Ok(event) = tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
        if let Event::Payload(payload) = event {
            assert_ne!(payload["type"], kind, "{payload}");
        }
    }
}

#[actix_web::test]
async fn rooms_media_signalling_enforces_grants_and_hides_the_hidden() {
    let server = rooms_server().await;
    let (mut ada, joined) = join(&server, "r", "ada", Grants::participant()).await;
    assert_eq!(joined["room"]["id"], "r");
    assert_eq!(joined["participant"]["identity"], "ada");
    assert_eq!(joined["participant"]["grants"]["publish"], true);
    assert_eq!(joined["participants"], json!([]));

    // A subscribe-only participant cannot publish, nor send data: an error, never silence.
    let listener = Grants {
        join: true,
        subscribe: true,
        ..Grants::default()
    };
    let (mut bob, joined) = join(&server, "r", "bob", listener).await;
    assert_eq!(joined["participants"][0]["identity"], "ada");
    assert!(joined["participants"][0].get("grants").is_none());
    let arrived = next_of(&mut ada, "participant-joined").await;
    assert_eq!(arrived["participant"]["identity"], "bob");
    bob.send(json!({ "type": "publish-offer", "sdp": "v=0", "tracks": [] }))
        .await;
    let refused = next_of(&mut bob, "error").await;
    assert_eq!(
        (refused["code"].clone(), refused["request"].clone()),
        (json!(4003), json!("publish-offer"))
    );
    bob.send(json!({ "type": "publish-data", "payload": "hi" }))
        .await;
    assert_eq!(next_of(&mut bob, "error").await["code"], 4003);

    // A camera-only token cannot publish a microphone.
    let camera = Grants {
        publish_sources: Some(vec![Source::Camera]),
        ..Grants::participant()
    };
    let (mut cam, _) = join(&server, "r", "cam", camera).await;
    let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n";
    cam.send(json!({ "type": "publish-offer", "sdp": offer, "tracks": [{ "mid": "0", "source": "microphone" }] }))
        .await;
    assert_eq!(next_of(&mut cam, "error").await["code"], 4003);

    // Reliable data reaches the others, with who sent it; the sender's copy is not echoed.
    ada.send(json!({ "type": "publish-data", "payload": { "text": "hello" }, "topic": "chat" }))
        .await;
    let data = next_of(&mut bob, "data").await;
    assert_eq!(data["from"], "ada");
    assert_eq!(data["payload"]["text"], "hello");
    assert_eq!(data["topic"], "chat");
    assert_eq!(next_of(&mut cam, "data").await["from"], "ada");
    // Only to the named ones.
    ada.send(json!({ "type": "publish-data", "payload": 1, "to": ["cam"] }))
        .await;
    assert_eq!(next_of(&mut cam, "data").await["payload"], 1);
    nothing_of(&mut bob, "data").await;
    // Too big a payload is refused and the socket stays.
    let big = "x".repeat(16 * 1024);
    ada.send(json!({ "type": "publish-data", "payload": big }))
        .await;
    assert_eq!(next_of(&mut ada, "error").await["code"], 4010);

    // A hidden participant is not announced nor listed, but is there for the API.
    let hidden = Grants {
        hidden: true,
        ..Grants::participant()
    };
    let (_ghost, joined) = join(&server, "r", "ghost", hidden).await;
    assert_eq!(joined["participants"].as_array().unwrap().len(), 3);
    nothing_of(&mut ada, "participant-joined").await;
    let (_, joined) = join(&server, "r", "late", Grants::participant()).await;
    let listed: Vec<&str> = joined["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["identity"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&"ghost"), "{listed:?}");
    let everyone = server
        .tree()
        .rooms
        .send(Participants { room: "r".into() })
        .await
        .unwrap();
    assert!(everyone.iter().any(|p| p.identity == "ghost"));

    // Muting a track that is not yours: not found. The API's mute of nothing: an error.
    ada.send(json!({ "type": "mute", "sid": "TR_nothing" }))
        .await;
    assert_eq!(next_of(&mut ada, "error").await["code"], 4004);
    let muted = server
        .tree()
        .rooms
        .send(MuteTrack {
            room: "r".into(),
            identity: "ada".into(),
            track_sid: "TR_nothing".into(),
            muted: true,
        })
        .await
        .unwrap();
    assert!(muted.is_err());

    // Removed by the API: told (4007) and closed; the others hear they left.
    let removed = server
        .tree()
        .rooms
        .send(RemoveParticipant {
            room: "r".into(),
            identity: "bob".into(),
        })
        .await
        .unwrap();
    assert!(removed);
    closes_with(&mut bob, 4007).await;
    assert_eq!(
        next_of(&mut ada, "participant-left").await["identity"],
        "bob"
    );
}

#[actix_web::test]
async fn rooms_media_signalling_refuses_bad_tokens_bad_messages_and_floods() {
    let server = rooms_server().await;

    // An expired token, a forged one, and one without the join grant.
    for token in [
        token("r", "ada", Grants::participant(), -1),
        "not-a-token".to_string(),
        token("r", "ada", Grants::default(), 600),
    ] {
        let mut socket = Gateway::connect_at(&server, "/rooms/ws", &format!("token={token}")).await;
        let error = closes_with(&mut socket, 4001).await;
        assert_eq!(error["code"], 4001);
    }

    // Before join; bad JSON; an unknown type; join twice: errors, and the socket stays.
    let token = token("r", "ada", Grants::participant(), 600);
    let mut socket = Gateway::connect_at(&server, "/rooms/ws", &format!("token={token}")).await;
    socket.send(json!({ "type": "subscribe" })).await;
    assert_eq!(next_of(&mut socket, "error").await["code"], 4002);
    socket.send_text("{not json".into()).await;
    assert_eq!(next_of(&mut socket, "error").await["code"], 4000);
    socket.send(json!({ "type": "dance" })).await;
    assert_eq!(next_of(&mut socket, "error").await["code"], 4000);
    socket.send(json!({ "type": "ping", "ts": 7 })).await;
    assert_eq!(next_of(&mut socket, "pong").await["ts"], 7);
    socket.send(json!({ "type": "join" })).await;
    next_of(&mut socket, "joined").await;
    socket.send(json!({ "type": "join" })).await;
    assert_eq!(next_of(&mut socket, "error").await["code"], 4002);

    // The same identity again: the first connection is replaced (4012).
    let (mut again, _) = join(&server, "r", "ada", Grants::participant()).await;
    closes_with(&mut socket, 4012).await;

    // An oversized frame closes with 4010.
    again
        .send_text(format!(
            "{{\"type\":\"ping\",\"ts\":\"{}\"}}",
            "x".repeat(70_000)
        ))
        .await;
    closes_with(&mut again, 4010).await;

    // A room's limit, set live: the one over it is refused (4005); closing the room
    // disconnects everyone (4008).
    let (mut first, _) = join(&server, "small", "first", Grants::participant()).await;
    let settings = RoomSettings {
        max_participants: 1,
        ..RoomSettings::default()
    };
    let rooms = &server.tree().rooms;
    rooms
        .send(Configure {
            room: "small".into(),
            settings,
        })
        .await
        .unwrap();
    let updated = next_of(&mut first, "room-updated").await;
    assert_eq!(updated["room"]["max_participants"], 1);
    let token = self::token("small", "second", Grants::participant(), 600);
    let mut second = Gateway::connect_at(&server, "/rooms/ws", &format!("token={token}")).await;
    second.send(json!({ "type": "join" })).await;
    closes_with(&mut second, 4005).await;
    assert!(rooms
        .send(CloseRoom {
            room: "small".into()
        })
        .await
        .unwrap());
    closes_with(&mut first, 4008).await;

    // A flood closes with 4009.
    let (mut flood, _) = join(&server, "r", "flood", Grants::participant()).await;
    for n in 0..150 {
        flood.send(json!({ "type": "ping", "ts": n })).await;
    }
    closes_with(&mut flood, 4009).await;
}
