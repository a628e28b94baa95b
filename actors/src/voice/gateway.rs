//! One voice gateway WebSocket (Discord voice gateway v4–v8, `webrtc` protocol).
//!
//! HELLO, then IDENTIFY (redeeming the admission's one-time token) → READY; SELECT_PROTOCOL with
//! the browser's SDP fragment → SESSION_DESCRIPTION with the SFU's answer fragment; heartbeats
//! in both forms; SPEAKING and VIDEO relayed through the room; RESUME within the room's resume
//! window. Bad input closes with Discord's voice close codes; nothing here panics.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::admissions::{Admissions, Flags};
use super::bots;
use super::room::{
    Announce, Connect, ConnectBot, Enter, Join, JoinError, Leave, Reattach, Room, Speaking,
    Suspend, ToVoice, DISCONNECTED,
};
use super::sdp::{ClientFragment, Kind, ListedCodec, Published};
use super::Voice;

/// Discord's voice close codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoiceClose {
    UnknownOpcode = 4001,
    DecodeError = 4002,
    NotAuthenticated = 4003,
    AuthenticationFailed = 4004,
    AlreadyAuthenticated = 4005,
    SessionNoLongerValid = 4006,
    SessionTimeout = 4009,
    ServerNotFound = 4011,
    UnknownProtocol = 4012,
    Disconnected = 4014,
    ServerCrashed = 4015,
    UnknownEncryptionMode = 4016,
    BadRequest = 4020,
}

impl VoiceClose {
    fn reason(self) -> &'static str {
        match self {
            Self::UnknownOpcode => "Unknown opcode",
            Self::DecodeError => "Failed to decode payload",
            Self::NotAuthenticated => "Not authenticated",
            Self::AuthenticationFailed => "Authentication failed",
            Self::AlreadyAuthenticated => "Already authenticated",
            Self::SessionNoLongerValid => "Session no longer valid",
            Self::SessionTimeout => "Session timeout",
            Self::ServerNotFound => "Server not found",
            Self::UnknownProtocol => "Unknown protocol",
            Self::Disconnected => "Disconnected",
            Self::ServerCrashed => "Voice server crashed",
            Self::UnknownEncryptionMode => "Unknown encryption mode",
            Self::BadRequest => "Bad request",
        }
    }
}

mod op {
    pub const IDENTIFY: u8 = 0;
    pub const SELECT_PROTOCOL: u8 = 1;
    pub const READY: u8 = 2;
    pub const HEARTBEAT: u8 = 3;
    pub const SESSION_DESCRIPTION: u8 = 4;
    pub const SPEAKING: u8 = 5;
    pub const HEARTBEAT_ACK: u8 = 6;
    pub const RESUME: u8 = 7;
    pub const HELLO: u8 = 8;
    pub const RESUMED: u8 = 9;
    pub const VIDEO: u8 = 12;
    pub const VERSION: u8 = 16;
}

/// The voice gateway's timing and limits.
#[derive(Clone, Debug)]
pub struct VoiceGatewayConfig {
    pub heartbeat_interval: Duration,
    /// Extra time past the interval before a silent connection is closed (4009).
    pub heartbeat_grace: Duration,
    pub max_frame_bytes: usize,
    /// How long a dropped connection's place in the room is kept for RESUME.
    pub resume_window: Duration,
    /// How long IDENTIFY waits for an admission that has not arrived yet (cluster mode: the
    /// node that admitted the client sends it here); zero on a single node.
    pub admission_patience: Duration,
}

#[derive(Deserialize)]
struct Envelope {
    op: u8,
    #[serde(default)]
    d: Value,
}

#[derive(Deserialize)]
struct IdentifyPayload {
    server_id: String,
    user_id: Snowflake,
    session_id: String,
    token: String,
    #[serde(default)]
    streams: Vec<StreamRequest>,
}

#[derive(Deserialize)]
struct ResumePayload {
    server_id: String,
    session_id: String,
    token: String,
}

/// Ids arrive as strings (Discord) or numbers (some clients).
#[derive(Deserialize)]
#[serde(untagged)]
enum Snowflake {
    Text(String),
    Number(i64),
}

impl Snowflake {
    fn get(&self) -> Option<i64> {
        match self {
            Self::Text(text) => text.parse().ok(),
            Self::Number(number) => Some(*number),
        }
    }
}

#[derive(Deserialize)]
struct StreamRequest {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    rid: Option<String>,
    #[serde(default)]
    quality: Option<Value>,
}

#[derive(Deserialize)]
struct SelectProtocol {
    protocol: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    sdp: Option<String>,
    #[serde(default)]
    codecs: Vec<CodecEntry>,
}

/// SELECT_PROTOCOL `udp`'s `data` (its `address` and `port` are the client's view of itself).
#[derive(Deserialize)]
struct UdpProtocol {
    mode: String,
}

#[derive(Deserialize)]
struct CodecEntry {
    name: String,
    payload_type: u8,
    #[serde(default)]
    rtx_payload_type: Option<u8>,
}

#[derive(Deserialize)]
struct VideoPayload {
    #[serde(default)]
    audio_ssrc: u32,
    #[serde(default)]
    video_ssrc: u32,
    #[serde(default)]
    rtx_ssrc: u32,
    #[serde(default)]
    streams: Option<Value>,
}

#[derive(Deserialize)]
struct SpeakingPayload {
    speaking: Value,
    #[serde(default)]
    ssrc: u32,
}

enum Phase {
    AwaitingIdentify,
    Identifying,
    Ready(Seat),
}

/// Where an identified connection sits.
struct Seat {
    room: Addr<Room>,
    user_id: i64,
    protocol_selected: bool,
}

pub struct VoiceConnection {
    id: u64,
    voice: Voice,
    admissions: Admissions,
    config: VoiceGatewayConfig,
    version: u8,
    phase: Phase,
    last_heartbeat: Instant,
    /// v8: the sequence number of the last server message.
    seq: u64,
    /// Whether leaving keeps the seat for a RESUME (the socket dropped) or gives it up.
    resumable: bool,
    /// The audio SSRC READY gave this client (a bot's packets are known by it).
    ssrc: u32,
}

impl VoiceConnection {
    pub fn new(
        voice: Voice,
        admissions: Admissions,
        config: VoiceGatewayConfig,
        version: u8,
    ) -> Self {
        Self {
            id: rand::random(),
            voice,
            admissions,
            config,
            version,
            phase: Phase::AwaitingIdentify,
            last_heartbeat: Instant::now(),
            seq: 0,
            resumable: true,
            ssrc: 0,
        }
    }

    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, op: u8, d: Value) {
        let message = if self.version >= 8 {
            self.seq += 1;
            json!({ "op": op, "d": d, "seq": self.seq })
        } else {
            json!({ "op": op, "d": d })
        };
        ctx.text(message.to_string());
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: VoiceClose) {
        tracing::debug!(code = code as u16, "closing voice connection");
        if matches!(
            code,
            VoiceClose::Disconnected | VoiceClose::AuthenticationFailed
        ) {
            self.resumable = false;
        }
        crate::websocket::close(ctx, code as u16, code.reason());
    }

    fn on_text(&mut self, bytes: &[u8], ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        match envelope.op {
            op::HEARTBEAT => self.heartbeat(envelope.d, ctx),
            op::IDENTIFY => self.identify(envelope.d, ctx),
            op::RESUME => self.resume(envelope.d, ctx),
            op::VERSION => self.send(
                ctx,
                op::VERSION,
                json!({ "voice": env!("CARGO_PKG_VERSION"), "rtc_worker": "webrtc-rs 0.21" }),
            ),
            op::SELECT_PROTOCOL | op::SPEAKING | op::VIDEO => {
                let Phase::Ready(seat) = &self.phase else {
                    return self.close(ctx, VoiceClose::NotAuthenticated);
                };
                let (room, user_id) = (seat.room.clone(), seat.user_id);
                match envelope.op {
                    op::SELECT_PROTOCOL => self.select_protocol(envelope.d, room, user_id, ctx),
                    op::SPEAKING => self.speaking(envelope.d, &room, user_id, ctx),
                    _ => self.video(envelope.d, &room, user_id, ctx),
                }
            }
            _ => self.close(ctx, VoiceClose::UnknownOpcode),
        }
    }

    fn heartbeat(&mut self, d: Value, ctx: &mut ws::WebsocketContext<Self>) {
        self.last_heartbeat = Instant::now();
        // v8 heartbeats are `{t, seq_ack}`; the ack echoes the nonce.
        let ack = match d {
            Value::Object(mut fields) => json!({ "t": fields.remove("t").unwrap_or(Value::Null) }),
            nonce => nonce,
        };
        self.send(ctx, op::HEARTBEAT_ACK, ack);
    }

    fn identify(&mut self, d: Value, ctx: &mut ws::WebsocketContext<Self>) {
        if !matches!(self.phase, Phase::AwaitingIdentify) {
            return self.close(ctx, VoiceClose::AlreadyAuthenticated);
        }
        let Ok(identify) = serde_json::from_value::<IdentifyPayload>(d) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        let Some(user_id) = identify.user_id.get() else {
            return self.close(ctx, VoiceClose::AuthenticationFailed);
        };
        self.phase = Phase::Identifying;
        let streams = identify.streams;
        let admissions = self.admissions.clone();
        let patience = self.config.admission_patience;
        let rooms = self.voice.rooms.clone();
        let session = ctx.address().recipient();
        let connection = self.id;
        let joining = async move {
            let admission = admissions
                .redeem_within(
                    &identify.server_id,
                    user_id,
                    &identify.session_id,
                    &identify.token,
                    patience,
                )
                .await
                .ok_or(VoiceClose::AuthenticationFailed)?;
            let flags = admission.flags.clone();
            let join = Join {
                user_id,
                connection,
                session,
                flags: flags.clone(),
                resume: (identify.server_id, identify.session_id, identify.token),
            };
            // A room that just emptied may stop between Enter and Join: enter once more, and
            // the registry starts a fresh one.
            for _ in 0..2 {
                let Ok(room) = rooms.send(Enter(admission.room.clone())).await else {
                    break;
                };
                match room.send(join.clone()).await {
                    Ok(Ok(())) => return Ok((room, flags)),
                    Ok(Err(JoinError::Full)) => break,
                    Err(_) => continue,
                }
            }
            Err(VoiceClose::ServerNotFound)
        };
        ctx.wait(
            joining
                .into_actor(self)
                .map(move |joined, connection, ctx| match joined {
                    Ok((room, flags)) => {
                        connection.phase = Phase::Ready(Seat {
                            room,
                            user_id,
                            protocol_selected: false,
                        });
                        connection.watch_flags(flags, ctx);
                        connection.ready(&streams, ctx);
                    }
                    Err(close) => connection.close(ctx, close),
                }),
        );
    }

    fn ready(&mut self, streams: &[StreamRequest], ctx: &mut ws::WebsocketContext<Self>) {
        // Browser clients pick their own SSRCs and announce them with op 12; this one is the
        // audio SSRC Discord's clients are told to use.
        let ssrc = rand::random::<u32>() >> 1 | 1;
        self.ssrc = ssrc;
        let streams: Vec<Value> = streams
            .iter()
            .enumerate()
            .map(|(index, stream)| {
                let base = ssrc.wrapping_add(2 * index as u32 + 1);
                json!({
                    "type": stream.kind.clone().unwrap_or_else(|| "video".into()),
                    "rid": stream.rid.clone().unwrap_or_else(|| "100".into()),
                    "quality": stream.quality.clone().unwrap_or(json!(100)),
                    "active": false,
                    "ssrc": base,
                    "rtx_ssrc": base.wrapping_add(1),
                })
            })
            .collect();
        let ready = json!({
            "ssrc": ssrc,
            "ip": self.voice.media.public_ip().to_string(),
            // Where bots send IP discovery and their audio; browsers take theirs from the SDP.
            "port": self.voice.media.bots.port(),
            "modes": [bots::MODE],
            "streams": streams,
            "experiments": [],
        });
        self.send(ctx, op::READY, ready);
    }

    /// Hangs up (4014) once the admission ends: the user left the channel or was disconnected.
    fn watch_flags(
        &mut self,
        mut flags: watch::Receiver<Option<Flags>>,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let dismissed = async move {
            while flags.borrow_and_update().is_some() {
                if flags.changed().await.is_err() {
                    break;
                }
            }
        };
        ctx.spawn(dismissed.into_actor(self).map(|_, connection, ctx| {
            connection.close(ctx, VoiceClose::Disconnected);
        }));
    }

    fn resume(&mut self, d: Value, ctx: &mut ws::WebsocketContext<Self>) {
        if !matches!(self.phase, Phase::AwaitingIdentify) {
            return self.close(ctx, VoiceClose::AlreadyAuthenticated);
        }
        let Ok(resume) = serde_json::from_value::<ResumePayload>(d) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        self.phase = Phase::Identifying;
        let rooms = self.voice.rooms.clone();
        let reattach = Reattach {
            resume: (resume.server_id, resume.session_id, resume.token),
            connection: self.id,
            session: ctx.address().recipient(),
        };
        let resuming = async move { rooms.send(reattach).await.ok().flatten() };
        ctx.wait(resuming.into_actor(self).map(|resumed, connection, ctx| {
            let Some((room, user_id, flags, protocol_selected)) = resumed else {
                return connection.close(ctx, VoiceClose::SessionNoLongerValid);
            };
            connection.phase = Phase::Ready(Seat {
                room,
                user_id,
                protocol_selected,
            });
            connection.watch_flags(flags, ctx);
            connection.send(ctx, op::RESUMED, Value::Null);
        }));
    }

    fn select_protocol(
        &mut self,
        d: Value,
        room: Addr<Room>,
        user_id: i64,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Ok(select) = serde_json::from_value::<SelectProtocol>(d) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        if select.protocol != "webrtc" && select.protocol != "udp" {
            return self.close(ctx, VoiceClose::UnknownProtocol);
        }
        if let Phase::Ready(seat) = &mut self.phase {
            if seat.protocol_selected {
                return self.close(ctx, VoiceClose::BadRequest);
            }
            seat.protocol_selected = true;
        }
        if select.protocol == "udp" {
            return self.select_udp(select.data, room, user_id, ctx);
        }
        let sdp = select
            .sdp
            .or_else(|| select.data.as_str().map(str::to_string))
            .unwrap_or_default();
        let listed: Vec<ListedCodec> = select
            .codecs
            .into_iter()
            .map(|c| ListedCodec {
                name: c.name,
                payload_type: c.payload_type,
                rtx_payload_type: c.rtx_payload_type,
            })
            .collect();
        let fragment = match ClientFragment::parse(&sdp, &listed) {
            Ok(fragment) => fragment,
            Err(error) => {
                tracing::debug!(%error, "SELECT_PROTOCOL refused");
                return self.close(ctx, VoiceClose::BadRequest);
            }
        };
        let video_codec = fragment
            .primary(Kind::Video)
            .map_or_else(|| "H264".to_string(), |c| c.name.clone());
        let connect = Connect {
            user_id,
            connection: self.id,
            fragment,
        };
        ctx.wait(
            room.send(connect).into_actor(self).map(
                move |answered, connection, ctx| match answered {
                    Ok(Ok(sdp)) => {
                        let description = json!({
                            "sdp": sdp,
                            "audio_codec": "opus",
                            "video_codec": video_codec,
                            "media_session_id": format!("{:032x}", rand::random::<u128>()),
                            "mode": "webrtc",
                        });
                        connection.send(ctx, op::SESSION_DESCRIPTION, description);
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "opening a transport failed");
                        connection.close(ctx, VoiceClose::BadRequest)
                    }
                    Err(_) => connection.close(ctx, VoiceClose::ServerCrashed),
                },
            ),
        );
    }

    /// SELECT_PROTOCOL `udp` (bots): `data` names the encryption mode (and the address IP
    /// discovery found, which is not trusted: media goes where the bot's packets come from);
    /// SESSION_DESCRIPTION answers with the key.
    fn select_udp(
        &mut self,
        data: Value,
        room: Addr<Room>,
        user_id: i64,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Ok(data) = serde_json::from_value::<UdpProtocol>(data) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        if data.mode != bots::MODE {
            return self.close(ctx, VoiceClose::UnknownEncryptionMode);
        }
        let connect = ConnectBot {
            user_id,
            connection: self.id,
            ssrc: self.ssrc,
        };
        ctx.wait(
            room.send(connect)
                .into_actor(self)
                .map(move |connected, connection, ctx| match connected {
                    Ok(Ok(key)) => {
                        let description = json!({
                            "mode": bots::MODE,
                            "secret_key": key,
                            "audio_codec": "opus",
                            "video_codec": "H264",
                            "media_session_id": format!("{:032x}", rand::random::<u128>()),
                            // No end-to-end encryption (DAVE): the server forwards what it can read.
                            "dave_protocol_version": 0,
                        });
                        connection.send(ctx, op::SESSION_DESCRIPTION, description);
                    }
                    Ok(Err(_)) => connection.close(ctx, VoiceClose::BadRequest),
                    Err(_) => connection.close(ctx, VoiceClose::ServerCrashed),
                }),
        );
    }

    fn speaking(
        &mut self,
        d: Value,
        room: &Addr<Room>,
        user_id: i64,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Ok(speaking) = serde_json::from_value::<SpeakingPayload>(d) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        if speaking.ssrc != 0 {
            room.do_send(Announce {
                user_id,
                connection: self.id,
                published: Published {
                    audio_ssrc: speaking.ssrc,
                    ..Published::default()
                },
                streams: None,
            });
        }
        room.do_send(Speaking {
            user_id,
            connection: self.id,
            speaking: speaking.speaking,
        });
    }

    fn video(
        &mut self,
        d: Value,
        room: &Addr<Room>,
        user_id: i64,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let Ok(video) = serde_json::from_value::<VideoPayload>(d) else {
            return self.close(ctx, VoiceClose::DecodeError);
        };
        room.do_send(Announce {
            user_id,
            connection: self.id,
            published: Published {
                audio_ssrc: video.audio_ssrc,
                video_ssrc: video.video_ssrc,
                rtx_ssrc: video.rtx_ssrc,
            },
            streams: video.streams,
        });
    }
}

impl Actor for VoiceConnection {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let interval = self.config.heartbeat_interval;
        self.send(
            ctx,
            op::HELLO,
            json!({ "v": self.version, "heartbeat_interval": interval.as_millis() as u64 }),
        );
        let deadline = interval + self.config.heartbeat_grace;
        ctx.run_interval(interval, move |connection, ctx| {
            if connection.last_heartbeat.elapsed() > deadline {
                connection.close(ctx, VoiceClose::SessionTimeout);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let Phase::Ready(seat) = &self.phase else {
            return;
        };
        if self.resumable {
            seat.room.do_send(Suspend {
                user_id: seat.user_id,
                connection: self.id,
                window: self.config.resume_window,
            });
        } else {
            seat.room.do_send(Leave {
                user_id: seat.user_id,
                connection: self.id,
            });
        }
    }
}

impl Handler<ToVoice> for VoiceConnection {
    type Result = ();

    fn handle(&mut self, message: ToVoice, ctx: &mut Self::Context) {
        match message {
            ToVoice::Op(op, d) => self.send(ctx, op, d),
            ToVoice::Close(code) => {
                self.resumable = false;
                let reason = if code == DISCONNECTED {
                    "Disconnected"
                } else {
                    "Voice server crashed"
                };
                crate::websocket::close(ctx, code, reason);
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for VoiceConnection {
    fn handle(&mut self, frame: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match frame {
            Ok(ws::Message::Text(text)) => self.on_text(text.as_bytes(), ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_) | ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                // A client closing with 1000 is done with the call; others may resume.
                if reason
                    .as_ref()
                    .is_some_and(|r| matches!(r.code, ws::CloseCode::Normal))
                {
                    self.resumable = false;
                }
                ctx.close(reason);
                ctx.stop();
            }
            // Binary (DAVE) ops and continuations are not spoken here; oversized frames neither.
            Ok(ws::Message::Binary(_) | ws::Message::Continuation(_)) | Err(_) => {
                self.close(ctx, VoiceClose::DecodeError)
            }
        }
    }
}
