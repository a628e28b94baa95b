//! The rooms service's HTTP API (docs/rooms.md, "Server API"), mirroring the URL:
//! `/rooms/api/token` (`token`), `/rooms/api/rooms…` (`api_rooms`, `participants`, `events`) for
//! applications with an API key; `/rooms/public`, `/rooms/guest` and `/rooms/new` (`guests`)
//! for anyone. The operators' `/_spacebar/admin/rooms/keys` is in `admin`.
//!
//! Applications authenticate with HTTP Basic: `Authorization: Basic base64(key:secret)`
//! (`curl -u key:secret`). Every route is registered by its full path, never under a
//! `/rooms` scope, which would hide the signalling socket and the page beside them.

mod api_rooms;
mod events;
mod guests;
mod participants;
mod token;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::web::{self, Data};
use actix_web::{FromRequest, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use spacebar_actors::rooms::api::Occupancy;
use spacebar_actors::rooms::Grants;

use super::error::{ApiError, FormErrors};
use super::urls::PublicUrls;
use crate::config::RoomsConfig;
use crate::db::room_api_keys::RoomApiKey;
use crate::db::rooms::Room;
use crate::rooms::{keys, RoomClaims};
use crate::state::AppState;

/// Longest room id, and of a participant's identity.
const MAX_ID_CHARS: usize = 64;
const MAX_IDENTITY_CHARS: usize = 128;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/public", web::get().to(guests::public))
        .route(
            "/rooms/guest",
            web::post().to(guests::answer::<guests::GuestToken>),
        )
        .route(
            "/rooms/new",
            web::post().to(guests::answer::<guests::NewRoom>),
        )
        .service(
            web::scope("/rooms/api")
                .route("/token", web::post().to(token::issue))
                .route("/token/user", web::post().to(token::for_user))
                .configure(api_rooms::configure)
                .configure(participants::configure)
                .configure(events::configure),
        );
}

/// An application calling with its API key; anything else is refused with 401 before the
/// route runs.
pub struct Application {
    pub state: Data<AppState>,
    pub key: RoomApiKey,
}

impl FromRequest for Application {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<Data<AppState>>().cloned();
        let credentials = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(basic);
        Box::pin(async move {
            let (Some(state), Some((id, secret))) = (state, credentials) else {
                return Err(ApiError::Unauthorized);
            };
            let mut conn = state.pool.get().await?;
            let key = RoomApiKey::find(&mut conn, &id)
                .await?
                .filter(|key| keys::matches(key, &secret))
                .ok_or(ApiError::Unauthorized)?;
            Ok(Application { state, key })
        })
    }
}

/// The key id and secret of `Basic base64(id:secret)`.
fn basic(header: &str) -> Option<(String, String)> {
    let encoded = header.trim().strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `ApiError::Unknown`-like 404 for a room the caller may not see or that does not exist.
pub fn unknown_room() -> ApiError {
    ApiError::Plain {
        status: StatusCode::NOT_FOUND,
        code: 10200,
        message: "Unknown Room",
    }
}

/// The room `id` if the application made it (10200 otherwise: another's room is not told
/// apart from none).
async fn own_room(app: &Application, id: &str) -> Result<Room, ApiError> {
    let mut conn = app.state.pool.get().await?;
    Room::find(&mut conn, id)
        .await?
        .filter(|room| room.api_key.as_deref() == Some(app.key.id.as_str()))
        .ok_or_else(unknown_room)
}

/// The room `id` if the application made it ([`own_room`]) and, in a cluster, it is not served
/// by another node (`crate::cluster::placement`): a call acting on a live room must reach its
/// node, and elsewhere is refused naming it ([`ApiError::RoomElsewhere`]).
async fn own_room_here(app: &Application, id: &str) -> Result<Room, ApiError> {
    let room = own_room(app, id).await?;
    if let Some(cluster) = &app.state.cluster {
        let node = cluster.placement.rooms_node(id).await;
        if let Some(node) = node.map_err(ApiError::internal)? {
            if !node.here {
                return Err(ApiError::RoomElsewhere { url: node.base });
            }
        }
    }
    Ok(room)
}

/// Checks a room id: 1 to 64 of `A-Z a-z 0-9 _ -` (it goes in URLs and tokens as it is).
fn check_room_id(errors: &mut FormErrors, field: &str, id: &str) {
    let fine = (1..=MAX_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !fine {
        errors.add(
            field,
            "ROOM_ID_INVALID",
            format!("Must be 1 to {MAX_ID_CHARS} of A-Z, a-z, 0-9, _ and -."),
        );
    }
}

/// Checks a text's length in characters, `min..=max`.
fn check_length(errors: &mut FormErrors, field: &str, text: &str, min: usize, max: usize) {
    let chars = text.chars().count();
    if chars < min || chars > max {
        errors.add(
            field,
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between {min} and {max} in length."),
        );
    }
}

/// Checks metadata's size in bytes.
fn check_metadata(errors: &mut FormErrors, field: &str, metadata: &str, config: &RoomsConfig) {
    if metadata.len() > config.max_metadata_bytes {
        errors.add(
            field,
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be at most {} bytes long.", config.max_metadata_bytes),
        );
    }
}

/// Metadata as given: a string as it is, any other JSON as its text (PulseWave's clients send
/// an object).
#[derive(Debug, Default, Deserialize)]
#[serde(from = "Value")]
pub struct Metadata(pub String);

impl From<Value> for Metadata {
    fn from(value: Value) -> Self {
        match value {
            Value::String(text) => Self(text),
            Value::Null => Self(String::new()),
            other => Self(other.to_string()),
        }
    }
}

/// What a token is for; see [`issue_token`].
pub struct Ticket {
    pub identity: String,
    pub name: String,
    pub room: String,
    pub metadata: String,
    pub grants: Grants,
    pub issuer: String,
    pub ttl_secs: u32,
}

/// Signs a room token for `ticket`: `{token, url, identity, room, expires_at}` (`url` is the
/// signalling socket: in a cluster, that of the node the room is placed on).
async fn issue_token(
    state: &AppState,
    req: &HttpRequest,
    ticket: Ticket,
) -> Result<Value, ApiError> {
    let url = match &state.cluster {
        Some(cluster) => {
            let placed = cluster.placement.place_rooms(&ticket.room).await;
            placed.map_err(ApiError::internal)?.socket
        }
        None => format!("{}/rooms/ws", PublicUrls::of(req, &state.config()).gateway),
    };
    let now = Utc::now().timestamp();
    let claims = RoomClaims {
        identity: ticket.identity,
        name: ticket.name,
        room: ticket.room,
        metadata: ticket.metadata,
        grants: ticket.grants,
        issuer: ticket.issuer,
        issued_at: now,
        expires_at: now + i64::from(ticket.ttl_secs),
    };
    let token = state.room_tokens.issue(&claims)?;
    Ok(json!({
        "token": token,
        "url": url,
        "identity": claims.identity,
        "room": claims.room,
        "expires_at": claims.expires_at,
    }))
}

/// How many visible participants each of `rooms` holds now (0 when not live).
async fn occupancy(state: &AppState, rooms: &[Room]) -> Result<HashMap<String, u32>, ApiError> {
    let rooms = rooms.iter().map(|room| room.id.clone()).collect();
    let counts = state.tree.rooms.send(Occupancy { rooms }).await;
    counts.map_err(|error| crate::error::Error::from(error).into())
}

/// The rooms as the API shows them, with how many are in each now.
async fn room_views(state: &AppState, rooms: &[Room]) -> Result<Vec<Value>, ApiError> {
    let counts = occupancy(state, rooms).await?;
    Ok(rooms
        .iter()
        .map(|room| room_view(room, counts.get(&room.id).copied().unwrap_or(0)))
        .collect())
}

/// A room as the API shows it; `participants` is how many are in it now (hidden ones aside).
fn room_view(room: &Room, participants: u32) -> Value {
    json!({
        "id": room.id,
        "name": room.name,
        "public": room.public,
        "guests": room.guests,
        "max_participants": room.max_participants,
        "empty_timeout": room.empty_timeout_secs,
        "metadata": room.metadata,
        "created_at": room.created_at,
        "num_participants": participants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64_of_key_colon_secret() {
        let header = format!("Basic {}", STANDARD.encode("APIabc:s3:cret"));
        assert_eq!(basic(&header), Some(("APIabc".into(), "s3:cret".into())));
        assert_eq!(basic("Bearer x"), None);
        assert_eq!(basic("Basic !!!"), None);
    }

    #[test]
    fn room_ids_are_url_safe_and_short() {
        for (id, fine) in [
            ("a", true),
            ("Room_1-x", true),
            ("", false),
            ("a/b", false),
            ("é", false),
            (&"x".repeat(65), false),
        ] {
            let mut errors = FormErrors::default();
            check_room_id(&mut errors, "id", id);
            assert_eq!(errors.is_empty(), fine, "{id}");
        }
    }
}
