//! `spacebar-bench rooms`: the SFU's forwarding rate through the rooms service (`/rooms/ws`,
//! docs/rooms.md), shaped as the voice run is so the two surfaces compare: `--speakers`
//! publishers and `--listeners` subscribers in one room, every participant subscribed to
//! everything (so publishers hear each other, as voice speakers do). Publishers send 50
//! Opus-sized RTP packets a second on their publish connection; every subscribe connection
//! answers the server's offers and meters what arrives. The figures (forwarded packets/s, loss,
//! latency, forwarded packets/s per core of server CPU, memory per participant) are the voice
//! run's.
//!
//! Room tokens are minted with the server's signing secret (`--secret`, its
//! `security.jwt_secret`), as the server's rooms API does.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use awc::Client;
use clap::Args;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use serde_json::{json, Value};
use spacebar::rooms::{RoomClaims, RoomTokens};
use spacebar_actors::rooms::Grants;
use tokio::runtime::Handle;
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState, RTCSessionDescription};

use crate::rest;
use crate::voice::participant::{on_media, Socket};
use crate::voice::peer::{self, webrtc_error};
use crate::voice::{measure, Held, Load, Shared};
use crate::BoxError;

#[derive(Args)]
pub struct RoomsArgs {
    #[command(flatten)]
    load: Load,
    /// The server's signing secret (`security.jwt_secret`, or its `<data_dir>/jwt_secret`).
    #[arg(long)]
    secret: String,
    /// The room's id.
    #[arg(long, default_value = "bench")]
    room: String,
}

/// What every participant shares.
struct Run {
    url: String,
    tokens: RoomTokens,
    room: String,
    timeout: Duration,
    packet_bytes: usize,
    shared: Shared,
}

pub fn run(args: RoomsArgs) -> Result<(), BoxError> {
    let load = &args.load;
    load.check()?;
    let base = load.target.base();
    let url = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}/rooms/ws"),
        Some((_, rest)) => format!("ws://{rest}/rooms/ws"),
        None => format!("ws://{base}/rooms/ws"),
    };
    load.run(|shared| async move {
        let run = Rc::new(Run {
            url,
            tokens: RoomTokens::new(args.secret.as_bytes()),
            room: format!("{}-{}", args.room, crate::target::run_id()),
            timeout: load.target.timeout(),
            packet_bytes: load.packet_bytes,
            shared: shared.clone(),
        });
        let client = rest::client(load.target.timeout());
        measure(load, &shared, |index| {
            let (run, client) = (run.clone(), client.clone());
            async move { join(&run, &client, index, index < load.speakers).await }
        })
        .await
    })
}

/// A token for participant `index`: everyone publishes and subscribes.
fn token(run: &Run, index: usize) -> Result<String, String> {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs(),
    )
    .map_err(|e| e.to_string())?;
    let claims = RoomClaims {
        identity: format!("bench{index}"),
        name: format!("bench {index}"),
        room: run.room.clone(),
        metadata: String::new(),
        grants: Grants::participant(),
        issuer: "bench".into(),
        issued_at: now,
        expires_at: now + 3600,
    };
    run.tokens.issue(&claims).map_err(|e| e.to_string())
}

/// Joins (subscribed to everything) and, for a publisher, publishes and starts speaking; the
/// participant held until the run ends.
async fn join(
    run: &Rc<Run>,
    client: &Client,
    index: usize,
    publisher: bool,
) -> Result<Held, String> {
    let url = format!("{}?token={}", run.url, token(run, index)?);
    let mut socket = Socket::connect(client, &url, run.timeout).await?;
    socket
        .send_json(&json!({ "type": "join", "auto_subscribe": true }))
        .await?;
    socket
        .until("joined", |m| m["type"] == "joined" || m["type"] == "error")
        .await
        .and_then(refused)?;
    let meter = run.shared.meter.clone();
    let (subscribe, _) = on_media(&run.shared.media, peer::connection(index, meter)).await?;
    if publisher {
        publish(run, &mut socket, &subscribe, index).await?;
    }
    let run = run.clone();
    Ok(Box::pin(async move { hold(&run, socket, subscribe).await }) as Held)
}

/// An `error` message as an error.
fn refused(message: Value) -> Result<Value, String> {
    if message["type"] == "error" {
        return Err(format!("refused: {message}"));
    }
    Ok(message)
}

/// Offers an Opus track on a publish connection, takes the answer (answering any subscribe
/// offers meanwhile), and speaks once connected.
async fn publish(
    run: &Run,
    socket: &mut Socket,
    subscribe: &Arc<dyn PeerConnection>,
    index: usize,
) -> Result<(), String> {
    let meter = run.shared.meter.clone();
    let offered = on_media(&run.shared.media, async move {
        let (connection, state) = peer::connection(index, meter).await?;
        let (track, ssrc) = peer::audio_track(index);
        connection
            .add_transceiver_from_track(
                track.clone() as Arc<dyn TrackLocal>,
                peer::init(RTCRtpTransceiverDirection::Sendonly),
            )
            .await
            .map_err(webrtc_error("audio sender"))?;
        let offer = connection
            .create_offer(None)
            .await
            .map_err(webrtc_error("create_offer"))?;
        let sdp = offer.sdp.clone();
        connection
            .set_local_description(offer)
            .await
            .map_err(webrtc_error("set_local_description"))?;
        Ok((connection, state, track, ssrc, sdp))
    })
    .await?;
    let (connection, mut state, track, ssrc, sdp) = offered;
    let payload_type = crate::voice::sdp::opus_payload_type(&sdp).ok_or("our offer has no Opus")?;
    let offer = json!({ "type": "publish-offer", "sdp": sdp, "tracks": [{ "mid": "0", "source": "microphone" }] });
    socket.send_json(&offer).await?;
    let answer = loop {
        let message = tokio::time::timeout(run.timeout, socket.next())
            .await
            .map_err(|_| "timeout waiting for publish-answer".to_string())??;
        match message["type"].as_str() {
            Some("publish-answer") => break message,
            Some("subscribe-offer") => {
                answer(socket, subscribe, &message, &run.shared.media).await?;
            }
            Some("error") => return Err(format!("publishing: {message}")),
            _ => {}
        }
    };
    let sdp = answer["sdp"].as_str().unwrap_or_default().to_string();
    let setting = connection.clone();
    on_media(&run.shared.media, async move {
        let description = RTCSessionDescription::answer(sdp).map_err(webrtc_error("the answer"))?;
        setting
            .set_remote_description(description)
            .await
            .map_err(webrtc_error("set_remote_description"))
    })
    .await?;
    let connected = matches!(
        tokio::time::timeout(
            run.timeout,
            state.wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await,
        Ok(Ok(_))
    );
    if !connected {
        return Err(format!("not connected in time ({:?})", *state.borrow()));
    }
    let (meter, stop) = (run.shared.meter.clone(), run.shared.stop.clone());
    let size = run.packet_bytes;
    // The publish connection lives as long as its sender task.
    on_media(&run.shared.media, async move {
        peer::speak(
            track,
            ssrc,
            (index, size, payload_type),
            meter,
            stop.clone(),
        );
        let mut stop = stop;
        tokio::spawn(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
            let _ = connection.close().await;
        });
        Ok(())
    })
    .await
}

/// Answers a `subscribe-offer` on the subscribe connection.
async fn answer(
    socket: &mut Socket,
    subscribe: &Arc<dyn PeerConnection>,
    offer: &Value,
    media: &Handle,
) -> Result<(), String> {
    let sdp = offer["sdp"].as_str().unwrap_or_default().to_string();
    let connection = subscribe.clone();
    let answered = async move {
        let description = RTCSessionDescription::offer(sdp).map_err(webrtc_error("the offer"))?;
        connection
            .set_remote_description(description)
            .await
            .map_err(webrtc_error("set_remote_description"))?;
        let answer = connection
            .create_answer(None)
            .await
            .map_err(webrtc_error("create_answer"))?;
        let sdp = answer.sdp.clone();
        connection
            .set_local_description(answer)
            .await
            .map_err(webrtc_error("set_local_description"))?;
        Ok(sdp)
    };
    let sdp = on_media(media, answered).await?;
    socket
        .send_json(&json!({ "type": "subscribe-answer", "sdp": sdp }))
        .await
}

/// Holds a participant: answers subscribe offers and pings until the run ends.
async fn hold(
    run: &Run,
    mut socket: Socket,
    subscribe: Arc<dyn PeerConnection>,
) -> Result<(), String> {
    let mut stop: watch::Receiver<bool> = run.shared.stop.clone();
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let outcome = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            _ = ping.tick() => {
                if let Err(e) = socket.send_json(&json!({ "type": "ping" })).await {
                    break Err(format!("ping: {e}"));
                }
            }
            message = socket.next() => match message {
                Ok(message) if message["type"] == "subscribe-offer" => {
                    if let Err(e) = answer(&mut socket, &subscribe, &message, &run.shared.media).await {
                        break Err(format!("subscribing: {e}"));
                    }
                }
                Ok(message) if message["type"] == "error" => break Err(format!("error: {message}")),
                Ok(_) => {}
                Err(e) => break Err(e),
            },
        }
    };
    socket.close().await;
    let _ = on_media(&run.shared.media, async move {
        let _ = subscribe.close().await;
        Ok(())
    })
    .await;
    outcome
}
