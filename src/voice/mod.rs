//! The voice gateway's entry: the WebSocket upgrade at `/voice` (VOICE_SERVER_UPDATE's
//! `endpoint` is `host:port/voice`), which starts one voice connection actor per socket. The
//! connection, the rooms and the media server live in `spacebar_actors::voice`.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::web::{self, Data};
use spacebar_actors::voice::{VoiceConnection, VoiceGatewayConfig};

use crate::http::websocket;
use crate::state::AppState;

/// The newest voice gateway version served; older clients get what they ask for (v4 up).
const LATEST_VERSION: u8 = 8;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `NormalizePath::trim` makes `/voice/` reach this too.
    websocket::route(cfg, "/voice", open);
}

/// The connection of a `GET /voice?v=8` upgrade.
async fn open(query: HashMap<String, String>, state: Data<AppState>) -> (VoiceConnection, usize) {
    let version = query
        .get("v")
        .and_then(|v| v.parse::<u8>().ok())
        .map_or(4, |v| v.clamp(4, LATEST_VERSION));
    let voice = &state.config().voice;
    let interval = Duration::from_millis(voice.heartbeat_interval_ms);
    let config = VoiceGatewayConfig {
        heartbeat_interval: interval,
        heartbeat_grace: interval / 2,
        max_frame_bytes: voice.max_frame_bytes,
        resume_window: Duration::from_millis(voice.resume_window_ms),
        admission_patience: match state.cluster {
            Some(_) => crate::cluster::placement::ADMISSION_PATIENCE,
            None => Duration::ZERO,
        },
    };
    let connection = VoiceConnection::new(
        state.tree.voice.clone(),
        state.tree.admissions.clone(),
        config,
        version,
    );
    (connection, voice.max_frame_bytes)
}
