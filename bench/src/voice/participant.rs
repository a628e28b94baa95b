//! One participant's signalling, as a Discord client does it: a main gateway session
//! (IDENTIFY, op 4 join → VOICE_SERVER_UPDATE), then the voice gateway (IDENTIFY, READY,
//! SELECT_PROTOCOL with our offer's fragment, SESSION_DESCRIPTION, op 12 for every stream the
//! server sends us), both heartbeating until the run ends.
//!
//! Runs on the actix-rt thread (awc); every `webrtc` call is sent to the media runtime.

use std::sync::Arc;
use std::time::Duration;

use actix_codec::Framed;
use awc::ws;
use awc::{BoxedSocket, Client};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::runtime::Handle;
use tokio::sync::{watch, Mutex};
use tokio::time::timeout;
use webrtc::peer_connection::RTCPeerConnectionState;

use super::meter::Meter;
use super::peer::Peer;

/// READY on a busy account can be big.
const MAX_FRAME: usize = 16 << 20;
/// Discord intents GUILDS | GUILD_VOICE_STATES: what a voice client asks for.
const INTENTS: u64 = 1 | (1 << 7);

/// What every participant shares.
pub struct Room {
    pub gateway_url: String,
    pub guild_id: String,
    pub channel_id: String,
    pub meter: Arc<Meter>,
    pub media: Handle,
    pub timeout: Duration,
    pub packet_bytes: usize,
    pub stop: watch::Receiver<bool>,
}

/// A JSON-over-WebSocket connection (both gateways speak it, and `/rooms/ws`).
pub struct Socket {
    framed: Framed<BoxedSocket, ws::Codec>,
    limit: Duration,
}

impl Socket {
    pub async fn connect(client: &Client, url: &str, limit: Duration) -> Result<Self, String> {
        let connect = client.ws(url).max_frame_size(MAX_FRAME).connect();
        let (_, framed) = timeout(limit, connect)
            .await
            .map_err(|_| format!("timeout connecting to {url}"))?
            .map_err(|e| format!("connect to {url}: {e}"))?;
        Ok(Self { framed, limit })
    }

    async fn send(&mut self, op: u8, d: Value) -> Result<(), String> {
        self.send_json(&json!({ "op": op, "d": d })).await
    }

    pub async fn send_json(&mut self, message: &Value) -> Result<(), String> {
        let text = message.to_string();
        timeout(self.limit, self.framed.send(ws::Message::Text(text.into())))
            .await
            .map_err(|_| "timeout sending".to_string())?
            .map_err(|e| format!("send: {e}"))
    }

    /// The next JSON payload (answering pings, skipping other frames).
    pub async fn next(&mut self) -> Result<Value, String> {
        loop {
            match self.framed.next().await {
                Some(Ok(ws::Frame::Text(bytes))) => {
                    return serde_json::from_slice(&bytes).map_err(|e| format!("bad JSON: {e}"));
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    return Err(format!("closed by the server: {reason:?}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("socket: {e}")),
                None => return Err("socket ended".into()),
            }
        }
    }

    /// The next payload for which `wanted` holds, within the time limit.
    pub async fn until(
        &mut self,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let limit = self.limit;
        timeout(limit, async {
            loop {
                let payload = self.next().await?;
                if wanted(&payload) {
                    return Ok(payload);
                }
            }
        })
        .await
        .map_err(|_| format!("timeout waiting for {what}"))?
    }

    pub async fn close(mut self) {
        let _ = timeout(
            Duration::from_secs(1),
            self.framed
                .send(ws::Message::Close(Some(ws::CloseCode::Normal.into()))),
        )
        .await;
    }
}

fn interval_of(hello: &Value) -> Duration {
    let ms = hello["d"]["heartbeat_interval"]
        .as_f64()
        .unwrap_or(30_000.0);
    Duration::from_secs_f64((ms / 1000.0).max(0.1))
}

fn text(value: &Value, what: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {what}"))
}

/// A participant who has joined: its sockets and peer connection.
pub struct Joined {
    main: Socket,
    main_every: Duration,
    voice: Socket,
    voice_every: Duration,
    peer: Arc<Mutex<Peer>>,
}

/// Main gateway: IDENTIFY, READY, op 4 → (main socket, heartbeat, user id, session id,
/// VOICE_SERVER_UPDATE's `d`).
async fn join_main(
    client: &Client,
    room: &Room,
    token: &str,
) -> Result<(Socket, Duration, String, String, Value), String> {
    let mut main = Socket::connect(client, &room.gateway_url, room.timeout).await?;
    let hello = main.until("HELLO", |p| p["op"] == 10).await?;
    let properties =
        json!({ "os": "linux", "browser": "spacebar-bench", "device": "spacebar-bench" });
    main.send(
        2,
        json!({ "token": token, "properties": properties, "intents": INTENTS }),
    )
    .await?;
    let ready = main.until("READY", |p| p["t"] == "READY").await?;
    let session_id = text(&ready["d"]["session_id"], "session_id in READY")?;
    let user_id = text(&ready["d"]["user"]["id"], "user.id in READY")?;
    let join = json!({ "guild_id": room.guild_id, "channel_id": room.channel_id,
                       "self_mute": false, "self_deaf": false, "self_video": false });
    main.send(4, join).await?;
    let server = main
        .until("VOICE_SERVER_UPDATE", |p| p["t"] == "VOICE_SERVER_UPDATE")
        .await?;
    Ok((
        main,
        interval_of(&hello),
        user_id,
        session_id,
        server["d"].clone(),
    ))
}

/// Runs `job` on the media runtime.
pub async fn on_media<T: Send + 'static>(
    media: &Handle,
    job: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    media
        .spawn(job)
        .await
        .map_err(|e| format!("media task: {e}"))?
}

/// Joins the room: both gateways, the first negotiation, and (speakers) publishing.
pub async fn join(
    client: &Client,
    room: &Room,
    index: usize,
    speaker: bool,
    token: &str,
) -> Result<Joined, String> {
    let (main, main_every, user_id, session_id, server) = join_main(client, room, token).await?;
    let endpoint = text(&server["endpoint"], "endpoint in VOICE_SERVER_UPDATE")?;
    let voice_token = text(&server["token"], "token in VOICE_SERVER_UPDATE")?;
    let mut voice = Socket::connect(client, &format!("ws://{endpoint}/?v=8"), room.timeout).await?;
    let hello = voice.until("voice HELLO", |p| p["op"] == 8).await?;
    let identify = json!({ "server_id": room.guild_id, "user_id": user_id,
        "session_id": session_id, "token": voice_token, "video": false, "streams": [] });
    voice.send(0, identify).await?;
    voice.until("voice READY", |p| p["op"] == 2).await?;

    let meter = room.meter.clone();
    let peer = on_media(&room.media, async move {
        Peer::new(index, speaker, meter).await
    })
    .await?;
    let peer = Arc::new(Mutex::new(peer));
    let first = peer.clone();
    let (fragment, opus) = on_media(&room.media, async move {
        first.lock().await.first_fragment().await
    })
    .await?;
    let select = json!({ "protocol": "webrtc", "data": fragment, "sdp": fragment,
        "codecs": [{ "name": "opus", "type": "audio", "priority": 1000, "payload_type": opus }] });
    voice.send(1, select).await?;
    let description = voice.until("SESSION_DESCRIPTION", |p| p["op"] == 4).await?;
    let answer = text(&description["d"]["sdp"], "sdp in SESSION_DESCRIPTION")?;
    let accepting = peer.clone();
    on_media(&room.media, async move {
        accepting.lock().await.accept(answer).await
    })
    .await?;

    if speaker {
        let ssrc = peer.lock().await.audio_ssrc();
        voice
            .send(
                12,
                json!({ "audio_ssrc": ssrc, "video_ssrc": 0, "rtx_ssrc": 0, "streams": [] }),
            )
            .await?;
        voice
            .send(5, json!({ "speaking": 1, "delay": 0, "ssrc": ssrc }))
            .await?;
        start_speaking(room, &peer, index, opus).await?;
    }
    Ok(Joined {
        main,
        main_every,
        voice,
        voice_every: interval_of(&hello),
        peer,
    })
}

/// Once connected, the speaker sends its packets until the run ends.
async fn start_speaking(
    room: &Room,
    peer: &Arc<Mutex<Peer>>,
    index: usize,
    payload_type: u8,
) -> Result<(), String> {
    let mut state = peer.lock().await.state.clone();
    let connected = matches!(
        timeout(
            room.timeout,
            state.wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await,
        Ok(Ok(_))
    );
    if !connected {
        return Err(format!("not connected in time ({:?})", *state.borrow()));
    }
    let peer = peer.clone();
    let meter = room.meter.clone();
    let size = room.packet_bytes;
    let stop = room.stop.clone();
    on_media(&room.media, async move {
        peer.lock()
            .await
            .speak(index, size, payload_type, meter, stop);
        Ok(())
    })
    .await
}

/// Holds a joined participant until the run ends: heartbeats on both gateways, and a new
/// receive m-line for every stream op 12 announces. Returns the first error, if any.
pub async fn hold(room: &Room, joined: Joined) -> Result<(), String> {
    let Joined {
        mut main,
        main_every,
        mut voice,
        voice_every,
        peer,
    } = joined;
    let mut stop = room.stop.clone();
    let mut main_beat = tokio::time::interval(main_every);
    let mut voice_beat = tokio::time::interval(voice_every);
    let mut main_seq: Option<u64> = None;
    let mut voice_seq: i64 = -1;
    let mut known = std::collections::HashSet::new();
    let outcome = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            _ = main_beat.tick() => {
                if let Err(e) = main.send(1, json!(main_seq)).await {
                    break Err(format!("main gateway heartbeat: {e}"));
                }
            }
            _ = voice_beat.tick() => {
                let t = room.meter.clock_ms();
                if let Err(e) = voice.send(3, json!({ "t": t, "seq_ack": voice_seq })).await {
                    break Err(format!("voice gateway heartbeat: {e}"));
                }
            }
            payload = main.next() => match payload {
                Ok(p) => main_seq = p["s"].as_u64().or(main_seq),
                Err(e) => break Err(format!("main gateway: {e}")),
            },
            payload = voice.next() => match payload {
                Ok(p) => {
                    voice_seq = p["seq"].as_i64().unwrap_or(voice_seq);
                    let ssrc = p["d"]["audio_ssrc"].as_u64().and_then(|s| u32::try_from(s).ok());
                    let Some(ssrc) = ssrc.filter(|s| p["op"] == 12 && *s != 0 && known.insert(*s)) else {
                        continue;
                    };
                    let receiver = peer.clone();
                    let added = on_media(&room.media, async move {
                        receiver.lock().await.receive(ssrc).await
                    });
                    if let Err(e) = added.await { break Err(format!("renegotiating: {e}")); }
                }
                Err(e) => break Err(format!("voice gateway: {e}")),
            },
        }
    };
    voice.close().await;
    main.close().await;
    let closing = peer.clone();
    let _ = on_media(&room.media, async move {
        closing.lock().await.close().await;
        Ok(())
    })
    .await;
    outcome
}
