//! The voice gateway and the SFU with real WebRTC peers: two aiortc clients from PyPI
//! (`tests/clients/voice_peer.py`, speaking the voice gateway the way Fermi does: SDP fragments
//! out and in) join one room; one publishes Opus audio and VP8 video, the other decodes them.
//! Plus the voice gateway's refusals over a real WebSocket.
//!
//! The peers join as users do: op 4 on the main gateway, then the voice gateway at
//! VOICE_SERVER_UPDATE's endpoint with its token. The refusal tests admit participants straight
//! through the admissions table the two halves share.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spacebar_actors::voice::{Flags, RoomKey};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::common::gateway::{Event, Gateway};
use crate::common::http::{account, patch, Account};
use crate::common::{python, TestServer};
use crate::voice_signalling::{connect, op4, voice_guild};

/// The aiortc release the test pins.
const AIORTC: &str = "1.16.0";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/voice_peer.py");
const PATIENCE: Duration = Duration::from_secs(30);
const GUILD: i64 = 1_000;
const CHANNEL: i64 = 2_000;

fn room() -> RoomKey {
    RoomKey::Guild {
        guild_id: GUILD,
        channel_id: CHANNEL,
    }
}

pub fn aiortc() -> PathBuf {
    let check = format!("import sys, aiortc, aiohttp; sys.exit(aiortc.__version__ != '{AIORTC}')");
    python::venv(
        "aiortc-venv",
        &[&format!("aiortc=={AIORTC}"), "aiohttp"],
        &check,
    )
    .unwrap_or_else(|why| panic!("{why}"))
}

/// A media server on loopback with a small UDP range of its own, and two media loops per room
/// (so its tests also cross between loops; the other voice tests run the default one).
pub async fn voice_server() -> TestServer {
    TestServer::with(&[
        ("voice.bind_ip", "127.0.0.1"),
        ("voice.room_loops", "2"),
        ("voice.udp_port_min", "42000"),
        ("voice.udp_port_max", "42999"),
        ("voice.heartbeat_interval_ms", "1000"),
    ])
    .await
}

/// Admits `user_id` to the test room and returns IDENTIFY's details.
fn admit(server: &TestServer, user_id: i64) -> (String, String) {
    let session_id = format!("session-{user_id}");
    let token = server.tree().admissions.admit(
        GUILD.to_string(),
        user_id,
        session_id.clone(),
        room(),
        Flags::default(),
    );
    (session_id, token)
}

/// What a user's client needs to open a voice connection, as VOICE_SERVER_UPDATE gives it.
pub struct Joined {
    /// Kept open: closing the main gateway session would end the voice state (`None`: the
    /// caller keeps it).
    _gateway: Option<Gateway>,
    server_id: String,
    user_id: String,
    session_id: String,
    token: String,
    endpoint: String,
}

impl Joined {
    /// VOICE_SERVER_UPDATE's `d` for `user_id`'s session `session_id`, whose gateway the
    /// caller keeps open.
    pub fn from_update(update: &Value, user_id: &str, session_id: &str) -> Self {
        Self {
            _gateway: None,
            server_id: update["guild_id"].as_str().unwrap().to_string(),
            user_id: user_id.to_string(),
            session_id: session_id.to_string(),
            token: update["token"].as_str().unwrap().to_string(),
            endpoint: update["endpoint"].as_str().unwrap().to_string(),
        }
    }
}

/// Joins `account` to the voice channel through the main gateway's op 4.
pub async fn join(
    server: &TestServer,
    account: &Account,
    guild_id: &str,
    channel_id: &str,
) -> Joined {
    let (mut gateway, session_id) = connect(server, &account.token).await;
    gateway.send(op4(guild_id, Some(channel_id), false)).await;
    let update = gateway.dispatch("VOICE_SERVER_UPDATE").await["d"].clone();
    Joined {
        _gateway: Some(gateway),
        ..Joined::from_update(&update, &account.id, &session_id)
    }
}

/// One aiortc peer and the JSON lines it prints.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: UnboundedReceiver<String>,
    /// Every line read so far.
    history: Vec<Value>,
    frames: (u64, u64),
}

impl Peer {
    pub fn start(python: &Path, joined: &Joined, role: &str) -> Self {
        // discord.py's form: `wss://{endpoint}/?v=8` (here without TLS).
        let url = format!("ws://{}/?v=8", joined.endpoint);
        let mut command = Command::new(python);
        command
            .args([SCRIPT, &url, &joined.server_id, &joined.user_id])
            .args([&joined.session_id, &joined.token, role]);
        Self::spawn(command)
    }

    /// Runs a peer script (`command`), reading its lines and writing its commands.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = python::stdout_lines(&mut child);
        Self {
            stdin: child.stdin.take(),
            child,
            lines,
            history: Vec::new(),
            frames: (0, 0),
        }
    }

    /// The next line for which `wanted` holds, skipping others (frame counts are kept).
    pub async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.until_within(PATIENCE, what, wanted).await
    }

    /// [`Self::until`], waiting up to `patience`.
    async fn until_within(
        &mut self,
        patience: Duration,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let text = tokio::time::timeout(left, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} in time"))
                .unwrap_or_else(|| panic!("the peer exited before {what}"));
            // Only its JSON lines are the peer's reports.
            let Ok(line) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if line["event"] == "frames" {
                self.frames = (
                    line["audio"].as_u64().unwrap_or(0),
                    line["video"].as_u64().unwrap_or(0),
                );
            }
            if std::env::var_os("VOICE_DEBUG").is_some() {
                eprintln!("{line}");
            }
            self.history.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    /// A line already read, or the next one, for which `wanted` holds.
    pub async fn seen(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(line) = self.history.iter().find(|line| wanted(line)) {
            return line.clone();
        }
        self.until(what, wanted).await
    }

    pub async fn event(&mut self, event: &str) -> Value {
        self.until(event, |line| line["event"] == event).await
    }

    /// Waits until at least `audio` audio and `video` video frames were decoded.
    pub async fn decoded(&mut self, audio: u64, video: u64) -> (u64, u64) {
        self.until("decoded frames", |line| {
            line["event"] == "frames"
                && line["audio"].as_u64() >= Some(audio)
                && line["video"].as_u64() >= Some(video)
        })
        .await;
        self.frames
    }

    /// The frame counts after `wait`.
    pub async fn frames_after(&mut self, wait: Duration) -> (u64, u64) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            let _ = tokio::time::timeout(
                until.saturating_duration_since(Instant::now()),
                self.until("frames", |line| line["event"] == "frames"),
            )
            .await;
        }
        self.frames
    }

    /// Writes one line to the peer's stdin (a command).
    pub fn command(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        }
    }

    /// Closes the voice connection cleanly (1000), as a user leaving does.
    fn leave(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"leave\n");
        }
    }

    /// Closes the peer connection, after which nothing more arrives on the media path, but
    /// keeps the voice gateway's connection.
    fn drop_media(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin.write_all(b"drop-media\n").unwrap();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn live_transports_become(server: &TestServer, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while server.tree().voice.live_transports() != count {
        assert!(
            Instant::now() < deadline,
            "{} live transports, expected {count}",
            server.tree().voice.live_transports()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two accounts, a speaker and a listener, and the guild and voice channel both may join.
async fn speaker_and_listener(server: &TestServer) -> (Account, Account, String, String) {
    let speaker = account(server, "speaker").await;
    let listener = account(server, "listener").await;
    let (guild_id, channel_id) = voice_guild(server, &speaker, &[&listener]).await;
    (speaker, listener, guild_id, channel_id)
}

#[actix_web::test]
async fn two_peers_hear_and_see_each_other_through_the_sfu() {
    let python = aiortc();
    let server = voice_server().await;
    let (speaker_account, listener_account, guild_id, channel_id) =
        speaker_and_listener(&server).await;
    let listener_id = listener_account.id.clone();
    let speaker_name = speaker_account.id.clone();

    let listener_join = join(&server, &listener_account, &guild_id, &channel_id).await;
    let mut listener = Peer::start(&python, &listener_join, "listen");
    let ready = listener.event("ready").await;
    assert!(ready["d"]["ssrc"].as_u64().unwrap() > 0);
    assert_eq!(ready["d"]["ip"], "127.0.0.1");
    let description = listener.event("session_description").await;
    let sdp = description["d"]["sdp"].as_str().unwrap();
    assert!(sdp.starts_with("m=audio 42"), "{sdp}");
    for line in [
        "c=IN IP4 127.0.0.1",
        "a=rtcp:",
        "a=ice-ufrag:",
        "a=ice-pwd:",
    ] {
        assert!(sdp.contains(line), "{line} missing from {sdp}");
    }
    assert!(sdp.contains("a=fingerprint:") && sdp.contains("a=candidate:"));
    assert_eq!(description["d"]["audio_codec"], "opus");

    let speaker_join = join(&server, &speaker_account, &guild_id, &channel_id).await;
    let mut speaker = Peer::start(&python, &speaker_join, "publish");
    speaker.event("session_description").await;

    // op 12 tells the listener the SSRCs it will receive the speaker's streams under.
    let video = listener
        .until("op 12 with both streams", |line| {
            line["event"] == "video"
                && line["d"]["user_id"] == speaker_name.as_str()
                && line["d"]["audio_ssrc"].as_u64() > Some(0)
                && line["d"]["video_ssrc"].as_u64() > Some(0)
        })
        .await;
    let audio_ssrc = video["d"]["audio_ssrc"].clone();
    let speaking = listener
        .seen("speaking", |line| line["event"] == "speaking")
        .await;
    assert_eq!(speaking["d"]["user_id"], speaker_name.as_str());
    assert_eq!(speaking["d"]["speaking"], 1);
    assert_eq!(speaking["d"]["ssrc"], audio_ssrc);

    // The listener decodes the speaker's Opus and VP8.
    listener.decoded(50, 10).await;
    assert_eq!(server.tree().voice.live_transports(), 2);
    let metrics = awc::Client::new()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("spacebar_voice_transports 2"), "{metrics}");

    // A server mute (PATCH member, MUTE_MEMBERS) stops the speaker's audio from arriving;
    // video keeps flowing.
    let member = format!("/api/v9/guilds/{guild_id}/members/{speaker_name}");
    let muted = patch(
        &server,
        &member,
        &speaker_account.token,
        json!({ "mute": true }),
    )
    .await;
    assert_eq!(muted.status, 200, "{:?}", muted.body);
    let (audio_before, video_before) = listener.frames_after(Duration::from_secs(1)).await;
    let (audio_after, video_after) = listener.frames_after(Duration::from_secs(2)).await;
    assert!(
        audio_after - audio_before <= 5,
        "{} audio frames arrived while muted",
        audio_after - audio_before
    );
    assert!(video_after > video_before, "video stopped too");
    let unmuted = patch(
        &server,
        &member,
        &speaker_account.token,
        json!({ "mute": false }),
    )
    .await;
    assert_eq!(unmuted.status, 200, "{:?}", unmuted.body);
    listener.decoded(audio_after + 25, 0).await;

    // Leaving: the listener is told (op 13), and the speaker's peer connection goes.
    speaker.leave();
    let gone = listener.event("client_disconnect").await;
    assert_eq!(gone["d"]["user_id"], speaker_name.as_str());
    live_transports_become(&server, 1).await;
    drop(speaker);

    // Rejoining (op 4 again, a fresh token): the listener hears the speaker again.
    drop(speaker_join);
    let (audio_before, video_before) = listener.frames;
    let speaker_join = join(&server, &speaker_account, &guild_id, &channel_id).await;
    let mut speaker = Peer::start(&python, &speaker_join, "publish");
    speaker.event("session_description").await;
    listener
        .until("op 12 after the rejoin", |line| {
            line["event"] == "video" && line["d"]["video_ssrc"].as_u64() > Some(0)
        })
        .await;
    listener.decoded(audio_before + 25, video_before + 5).await;

    listener.leave();
    let gone = speaker.event("client_disconnect").await;
    assert_eq!(gone["d"]["user_id"], listener_id.as_str());
    speaker.leave();
    live_transports_become(&server, 0).await;
}

/// A participant from whom nothing more arrives on the media path while their voice gateway
/// connection stays up: once ICE gives up they are hung up on with 4014, the others are told,
/// and the connection's port is freed.
#[actix_web::test]
async fn a_participant_whose_media_path_is_gone_is_hung_up_on() {
    let python = aiortc();
    let server = voice_server().await;
    let (speaker_account, listener_account, guild_id, channel_id) =
        speaker_and_listener(&server).await;
    let listener_join = join(&server, &listener_account, &guild_id, &channel_id).await;
    let mut listener = Peer::start(&python, &listener_join, "listen");
    listener.event("session_description").await;
    let speaker_join = join(&server, &speaker_account, &guild_id, &channel_id).await;
    let mut speaker = Peer::start(&python, &speaker_join, "publish");
    listener.decoded(25, 0).await;
    live_transports_become(&server, 2).await;

    speaker.drop_media();
    speaker.event("media_dropped").await;
    // ICE calls a path with nothing on it disconnected after 5 s and failed 25 s later.
    let closed = speaker
        .until_within(Duration::from_secs(60), "the hang-up", |line| {
            line["event"] == "closed"
        })
        .await;
    assert_eq!(closed["code"], 4014);
    let gone = listener.event("client_disconnect").await;
    assert_eq!(gone["d"]["user_id"], speaker_account.id.as_str());
    live_transports_become(&server, 1).await;

    listener.leave();
    live_transports_become(&server, 0).await;
}

/// A voice gateway connection: reads HELLO.
async fn voice_gateway(server: &TestServer) -> Gateway {
    let mut gateway = Gateway::connect_at(server, "/voice", "v=8").await;
    let hello = gateway.payload().await;
    assert_eq!(hello["op"], 8, "{hello}");
    assert_eq!(hello["d"]["heartbeat_interval"], 1000);
    gateway
}

fn identify(user_id: i64, session_id: &str, token: &str) -> Value {
    json!({
        "op": 0,
        "d": {
            "server_id": GUILD.to_string(),
            "user_id": user_id.to_string(),
            "session_id": session_id,
            "token": token,
            "video": true,
            "streams": [{ "type": "video", "rid": "100", "quality": 100 }],
        }
    })
}

async fn closes_with(gateway: &mut Gateway, code: u16) {
    loop {
        match gateway.next().await {
            Event::Closed(closed) => return assert_eq!(closed, Some(code)),
            Event::Payload(payload) => assert_ne!(payload["op"], 2, "READY: {payload}"),
        }
    }
}

#[actix_web::test]
async fn the_voice_gateway_refuses_bad_input_with_discords_close_codes() {
    let server = voice_server().await;

    // Heartbeats in both forms are echoed; op 16 says the version.
    let mut gateway = voice_gateway(&server).await;
    gateway.send(json!({ "op": 3, "d": 1234 })).await;
    let ack = gateway.payload().await;
    assert_eq!(
        (ack["op"].clone(), ack["d"].clone()),
        (json!(6), json!(1234))
    );
    gateway
        .send(json!({ "op": 3, "d": { "t": 99, "seq_ack": 1 } }))
        .await;
    let ack = gateway.payload().await;
    assert_eq!(ack["d"], json!({ "t": 99 }));
    assert!(ack["seq"].as_u64().unwrap() > 1, "v8 messages carry seq");
    gateway.send(json!({ "op": 16, "d": {} })).await;
    let version = gateway.payload().await;
    assert_eq!(version["op"], 16);
    assert!(version["d"]["voice"].is_string() && version["d"]["rtc_worker"].is_string());

    // SELECT_PROTOCOL before IDENTIFY.
    gateway
        .send(json!({ "op": 1, "d": { "protocol": "webrtc", "data": "", "sdp": "" } }))
        .await;
    closes_with(&mut gateway, 4003).await;

    // A token nobody issued, then a used one.
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(7, "session-7", "not-a-token")).await;
    closes_with(&mut gateway, 4004).await;
    let (session_id, token) = admit(&server, 7);
    let mut first = voice_gateway(&server).await;
    first.send(identify(7, &session_id, &token)).await;
    let ready = first.payload().await;
    assert_eq!(ready["op"], 2, "{ready}");
    assert_eq!(ready["d"]["streams"][0]["active"], false);
    let mut second = voice_gateway(&server).await;
    second.send(identify(7, &session_id, &token)).await;
    closes_with(&mut second, 4004).await;

    // IDENTIFY twice on one connection.
    first.send(identify(7, &session_id, &token)).await;
    closes_with(&mut first, 4005).await;

    // A malformed SDP fragment opens no transport.
    let (session_id, token) = admit(&server, 8);
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(8, &session_id, &token)).await;
    assert_eq!(gateway.payload().await["op"], 2);
    let select = json!({
        "op": 1,
        "d": { "protocol": "webrtc", "data": "v=0\nnonsense", "sdp": "v=0\nnonsense", "codecs": [] }
    });
    gateway.send(select).await;
    closes_with(&mut gateway, 4020).await;

    // An unknown protocol, an unknown encryption mode, an unknown opcode, and a payload that
    // is not JSON.
    let (session_id, token) = admit(&server, 9);
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(9, &session_id, &token)).await;
    let ready = gateway.payload().await;
    assert_eq!(
        ready["d"]["modes"],
        json!(["aead_xchacha20_poly1305_rtpsize"])
    );
    gateway
        .send(json!({ "op": 1, "d": { "protocol": "carrier-pigeon", "data": {} } }))
        .await;
    closes_with(&mut gateway, 4012).await;
    let (session_id, token) = admit(&server, 11);
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(11, &session_id, &token)).await;
    assert_eq!(gateway.payload().await["op"], 2);
    let udp = json!({ "address": "127.0.0.1", "port": 9, "mode": "xsalsa20_poly1305" });
    gateway
        .send(json!({ "op": 1, "d": { "protocol": "udp", "data": udp } }))
        .await;
    closes_with(&mut gateway, 4016).await;
    let mut gateway = voice_gateway(&server).await;
    gateway.send(json!({ "op": 99, "d": null })).await;
    closes_with(&mut gateway, 4001).await;
    let mut gateway = voice_gateway(&server).await;
    gateway.send_text("{not json".into()).await;
    closes_with(&mut gateway, 4002).await;

    // A dismissed participant is hung up on with 4014.
    let (session_id, token) = admit(&server, 10);
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(10, &session_id, &token)).await;
    assert_eq!(gateway.payload().await["op"], 2);
    server.tree().admissions.dismiss(&room(), 10);
    closes_with(&mut gateway, 4014).await;

    // A silent connection times out (4009).
    let mut gateway = voice_gateway(&server).await;
    match gateway.next_within(Duration::from_secs(5)).await {
        Event::Closed(code) => assert_eq!(code, Some(4009)),
        Event::Payload(payload) => panic!("expected a timeout, got {payload}"),
    }

    assert_eq!(server.tree().voice.live_transports(), 0);
}

#[actix_web::test]
async fn behind_a_nat_the_public_address_is_announced() {
    let server = TestServer::with(&[
        ("voice.bind_ip", "127.0.0.1"),
        ("voice.public_ip", "203.0.113.7"),
        ("voice.udp_port_min", "43000"),
        ("voice.udp_port_max", "43999"),
        ("voice.heartbeat_interval_ms", "1000"),
    ])
    .await;
    let (session_id, token) = admit(&server, 12);
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(12, &session_id, &token)).await;
    let ready = gateway.payload().await;
    assert_eq!(ready["d"]["ip"], "203.0.113.7", "{ready}");
    let fingerprint = ["AB"; 32].join(":");
    let fragment = format!(
        "a=ice-ufrag:Ab12\na=ice-pwd:secretpasswordsecretpass\n\
         a=fingerprint:sha-256 {fingerprint}\na=rtpmap:111 opus/48000/2\na=rtpmap:96 VP8/90000\n"
    );
    let select = json!({
        "op": 1,
        "d": { "protocol": "webrtc", "data": fragment, "sdp": fragment, "codecs": [] }
    });
    gateway.send(select).await;
    let description = loop {
        let payload = gateway.payload().await;
        if payload["op"] == 4 {
            break payload;
        }
    };
    // The client's candidate and connection line name the public address, not the bound one.
    let sdp = description["d"]["sdp"].as_str().unwrap();
    assert!(sdp.contains("c=IN IP4 203.0.113.7"), "{sdp}");
    assert!(sdp.contains(" 203.0.113.7 43"), "{sdp}");
    assert!(!sdp.contains("127.0.0.1"), "{sdp}");
    assert_eq!(server.tree().voice.live_transports(), 1);
}

#[actix_web::test]
async fn a_dropped_voice_connection_resumes_its_seat() {
    let server = voice_server().await;
    let (session_id, token) = admit(&server, 11);
    let mut gateway = voice_gateway(&server).await;
    gateway.send(identify(11, &session_id, &token)).await;
    assert_eq!(gateway.payload().await["op"], 2);
    // Dropped without a clean close (4000 is not 1000): the seat waits.
    gateway.close_with(4000).await;
    let _ = gateway.closed().await;

    let mut resumed = voice_gateway(&server).await;
    let resume = json!({
        "op": 7,
        "d": { "server_id": GUILD.to_string(), "session_id": session_id, "token": token }
    });
    resumed.send(resume.clone()).await;
    assert_eq!(resumed.payload().await["op"], 9);

    // A clean close gives the seat up: nothing to resume.
    resumed.close_with(1000).await;
    let _ = resumed.closed().await;
    let mut late = voice_gateway(&server).await;
    late.send(resume).await;
    closes_with(&mut late, 4006).await;
}
