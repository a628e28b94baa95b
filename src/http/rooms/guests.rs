//! Rooms for people without an application: `GET /rooms/public` lists public rooms (no
//! authentication); `POST /rooms/guest` `{room, name}` is a guest's token for a room that admits
//! guests (a public one, or one opened with `guests`, joined by its unguessable link);
//! `POST /rooms/new` `{name, public}` opens such a room. Without an account both need
//! `rooms.guests`; with a user's `Authorization`, `/rooms/new` works either way. Both are
//! rate-limited per address (`rate_limits.room_guests`).

use actix_web::http::header::AUTHORIZATION;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use actix_web::{HttpRequest, HttpResponse};
use rand::distr::{Alphanumeric, SampleString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use spacebar_actors::rooms::Grants;

use super::api_rooms::{generated_id, insert, new_room};
use super::{check_length, issue_token, room_view, room_views, unknown_room, Ticket};
use crate::config::RoomsConfig;
use crate::credentials::authenticate;
use crate::db::rooms::Room;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::rooms::ws::GUEST_ISSUER;
use crate::state::AppState;

/// Public rooms listed at most.
const MAX_LISTED: i64 = 100;

/// The room `id`, if guests (and users exchanging their token) may join it: a public room, or
/// one that admits guests by link. Any other, existing or not, is 10200 alike.
pub async fn joinable(state: &AppState, id: &str) -> Result<Room, ApiError> {
    let mut conn = state.pool.get().await?;
    Room::find(&mut conn, id)
        .await?
        .filter(|room| room.public || room.guests)
        .ok_or_else(unknown_room)
}

/// A name as given without surrounding spaces, 1 to `rooms.max_name_chars` characters.
fn display_name(name: &str, config: &RoomsConfig) -> Result<String, ApiError> {
    let name = name.trim();
    let mut errors = FormErrors::default();
    check_length(&mut errors, "name", name, 1, config.max_name_chars);
    errors.into_result()?;
    Ok(name.to_string())
}

/// 403 while `rooms.guests` is off.
fn guests_allowed(state: &AppState) -> Result<(), ApiError> {
    if state.config().rooms.guests {
        Ok(())
    } else {
        Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 50001,
            message: "Guests are not admitted here; log in to join rooms",
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct PublicQuery {
    limit: Option<i64>,
}

pub async fn public(
    state: Data<AppState>,
    query: Query<PublicQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(MAX_LISTED);
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(FormErrors::field(
            "limit",
            "NUMBER_TYPE_MAX",
            format!("Must be a number from 1 to {MAX_LISTED}."),
        )
        .into());
    }
    let mut conn = state.pool.get().await?;
    let rooms = Room::public(&mut conn, limit).await?;
    drop(conn);
    let listed: Vec<_> = room_views(&state, &rooms)
        .await?
        .into_iter()
        .map(|view| {
            json!({
                "id": view["id"],
                "name": view["name"],
                "metadata": view["metadata"],
                "created_at": view["created_at"],
                "num_participants": view["num_participants"],
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "rooms": listed })))
}

/// A request of the guests' routes: the name its caller is to be shown by, and what it asks.
pub trait GuestRequest: DeserializeOwned + 'static {
    /// Whether a user's `Authorization` admits the caller as well as `rooms.guests` does.
    const USERS: bool;

    fn name(&self) -> &str;

    /// The answer to an admitted caller, shown by `name` (checked).
    async fn answer(
        self,
        state: &AppState,
        req: &HttpRequest,
        name: String,
    ) -> Result<HttpResponse, ApiError>;
}

/// `POST /rooms/guest` and `POST /rooms/new`: the caller admitted (401 for a user token that
/// names nobody, 403 while guests are not admitted), the name checked, then the request's own
/// answer.
pub async fn answer<R: GuestRequest>(
    state: Data<AppState>,
    req: HttpRequest,
    Json(body): Json<R>,
) -> Result<HttpResponse, ApiError> {
    if !(R::USERS && signed_in(&state, &req).await?) {
        guests_allowed(&state)?;
    }
    let name = display_name(body.name(), &state.config().rooms)?;
    body.answer(&state, &req, name).await
}

/// Whether the request comes with a user's `Authorization` (401 when it names nobody).
async fn signed_in(state: &AppState, req: &HttpRequest) -> Result<bool, ApiError> {
    let Some(token) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(false);
    };
    let mut conn = state.pool.get().await?;
    authenticate(&mut conn, &state.tokens, token)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(true)
}

/// `POST /rooms/guest`: a guest's token for a room guests may join.
#[derive(Debug, Deserialize)]
pub struct GuestToken {
    room: String,
    name: String,
}

impl GuestRequest for GuestToken {
    const USERS: bool = false;

    fn name(&self) -> &str {
        &self.name
    }

    async fn answer(
        self,
        state: &AppState,
        req: &HttpRequest,
        name: String,
    ) -> Result<HttpResponse, ApiError> {
        let room = joinable(state, &self.room).await?;
        let ticket = Ticket {
            identity: format!("guest-{}", Alphanumeric.sample_string(&mut rand::rng(), 12)),
            name,
            room: room.id,
            metadata: String::new(),
            grants: Grants::participant(),
            issuer: GUEST_ISSUER.into(),
            ttl_secs: state.config().rooms.token_ttl_secs,
        };
        Ok(HttpResponse::Ok().json(issue_token(state, req, ticket).await?))
    }
}

/// `POST /rooms/new`: a room that admits guests, opened by a guest or a user.
#[derive(Debug, Deserialize)]
pub struct NewRoom {
    name: String,
    #[serde(default)]
    public: bool,
}

impl GuestRequest for NewRoom {
    const USERS: bool = true;

    fn name(&self) -> &str {
        &self.name
    }

    async fn answer(
        self,
        state: &AppState,
        _: &HttpRequest,
        name: String,
    ) -> Result<HttpResponse, ApiError> {
        let mut room = new_room(generated_id(), None, &state.config().rooms);
        room.name = name;
        room.public = self.public;
        room.guests = true;
        let mut conn = state.pool.get().await?;
        insert(state, &mut conn, &room).await?;
        Ok(HttpResponse::build(StatusCode::CREATED).json(room_view(&room, 0)))
    }
}
