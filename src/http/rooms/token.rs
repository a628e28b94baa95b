//! `POST /rooms/api/token`: an application's token for a participant, `{identity, name, room,
//! metadata}` (PulseWave's body, as it is) with optional `grants` (default: an ordinary
//! participant's) and `ttl` (seconds). A room that does not exist yet is made, the
//! application's, with the defaults (as LiveKit makes one on join), so its events reach the
//! application's webhook and no other application can take tokens for it.
//!
//! `POST /rooms/api/token/user` `{room}`: a logged-in user's token (their `Authorization`)
//! exchanged for a room token, identity = their user id, for a room guests may join.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use spacebar_actors::rooms::Grants;

use super::{
    check_length, check_metadata, check_room_id, issue_token, unknown_room, Application, Metadata,
    Ticket, MAX_IDENTITY_CHARS,
};
use crate::db::rooms::Room;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    identity: String,
    #[serde(default)]
    name: String,
    room: String,
    #[serde(default)]
    metadata: Metadata,
    grants: Option<Grants>,
    ttl: Option<u32>,
}

pub async fn issue(
    app: Application,
    req: HttpRequest,
    Json(body): Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let config = app.state.config();
    let rooms = &config.rooms;
    let mut errors = FormErrors::default();
    check_length(
        &mut errors,
        "identity",
        &body.identity,
        1,
        MAX_IDENTITY_CHARS,
    );
    check_length(&mut errors, "name", &body.name, 0, rooms.max_name_chars);
    check_room_id(&mut errors, "room", &body.room);
    check_metadata(&mut errors, "metadata", &body.metadata.0, rooms);
    let ttl = body.ttl.unwrap_or(rooms.token_ttl_secs);
    if !(1..=rooms.max_token_ttl_secs).contains(&ttl) {
        errors.add(
            "ttl",
            "NUMBER_TYPE_MAX",
            format!("Must be from 1 to {} seconds.", rooms.max_token_ttl_secs),
        );
    }
    errors.into_result()?;
    let mut conn = app.state.pool.get().await?;
    let room = match Room::find(&mut conn, &body.room).await? {
        Some(room) => room,
        None => {
            let room = super::api_rooms::new_room(body.room.clone(), Some(&app.key.id), rooms);
            super::api_rooms::insert(&app.state, &mut conn, &room).await?;
            room
        }
    };
    if room.api_key.as_deref() != Some(app.key.id.as_str()) {
        return Err(unknown_room());
    }
    drop(conn);
    let ticket = Ticket {
        identity: body.identity,
        name: body.name,
        room: room.id,
        metadata: body.metadata.0,
        grants: body.grants.unwrap_or_else(Grants::participant),
        issuer: app.key.id,
        ttl_secs: ttl,
    };
    let token = issue_token(&app.state, &req, ticket).await?;
    Ok(HttpResponse::build(StatusCode::OK).json(token))
}

#[derive(Debug, Deserialize)]
pub struct UserTokenRequest {
    room: String,
}

pub async fn for_user(
    caller: Authenticated,
    req: HttpRequest,
    Json(body): Json<UserTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let state = caller.state;
    let user = caller.session.user;
    let room = super::guests::joinable(&state, &body.room).await?;
    let ticket = Ticket {
        identity: user.id.to_string(),
        name: user.username.clone(),
        room: room.id,
        metadata: String::new(),
        grants: Grants::participant(),
        issuer: format!("user:{}", user.id),
        ttl_secs: state.config().rooms.token_ttl_secs,
    };
    Ok(HttpResponse::Ok().json(issue_token(&state, &req, ticket).await?))
}
