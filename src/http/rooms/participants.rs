//! A live room's participants, for the application that made the room:
//! `GET /rooms/api/rooms/{room}/participants` (hidden ones too),
//! `GET/PATCH/DELETE …/participants/{identity}` (read; change `metadata` and `grants`, in
//! effect at once; disconnect), `POST …/participants/{identity}/tracks/{sid}/mute`
//! `{muted}` (default true), and `POST /rooms/api/rooms/{room}/data` `{payload, to?,
//! reliable?}` (to everyone, or to the identities in `to`, from the server).

use actix_web::http::StatusCode;
use actix_web::web::{self, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};
use spacebar_actors::rooms::api::{
    MuteTrack, ParticipantInfo, Participants, RemoveParticipant, RoomError, SendData,
    UpdateParticipant,
};
use spacebar_actors::rooms::Grants;

use super::{check_metadata, own_room_here, Application, Metadata};
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;

/// Most identities a data message may name.
const MAX_RECIPIENTS: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms/{room}/participants", web::get().to(list))
        .route("/rooms/{room}/participants/{identity}", web::get().to(get))
        .route(
            "/rooms/{room}/participants/{identity}",
            web::patch().to(update),
        )
        .route(
            "/rooms/{room}/participants/{identity}",
            web::delete().to(remove),
        )
        .route(
            "/rooms/{room}/participants/{identity}/tracks/{sid}/mute",
            web::post().to(mute),
        )
        .route("/rooms/{room}/data", web::post().to(send_data));
}

/// A live room's answer, as the API says it.
fn room_error(error: RoomError) -> ApiError {
    let plain = |code, message| ApiError::Plain {
        status: StatusCode::NOT_FOUND,
        code,
        message,
    };
    match error {
        RoomError::NoParticipant => plain(10201, "Unknown Participant"),
        RoomError::NoTrack => plain(10202, "Unknown Track"),
        RoomError::NoRoom => plain(10203, "The room is not live"),
        other => ApiError::internal(other),
    }
}

/// A live room's answer about a participant: in a room that is not live, nobody is.
fn participant_error(error: RoomError) -> ApiError {
    match error {
        RoomError::NoRoom => room_error(RoomError::NoParticipant),
        other => room_error(other),
    }
}

/// Everyone in the live room `room` (the application's).
async fn participants(app: &Application, room: &str) -> Result<Vec<ParticipantInfo>, ApiError> {
    own_room_here(app, room).await?;
    let asked = Participants {
        room: room.to_string(),
    };
    let answer = app.state.tree.rooms.send(asked).await;
    Ok(answer.map_err(crate::error::Error::from)?)
}

/// One participant of the live room `room`.
async fn participant(
    app: &Application,
    room: &str,
    identity: &str,
) -> Result<ParticipantInfo, ApiError> {
    participants(app, room)
        .await?
        .into_iter()
        .find(|participant| participant.identity == identity)
        .ok_or_else(|| room_error(RoomError::NoParticipant))
}

async fn list(app: Application, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let participants = participants(&app, &path).await?;
    Ok(HttpResponse::Ok().json(json!({ "participants": participants })))
}

async fn get(app: Application, path: Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (room, identity) = path.into_inner();
    Ok(HttpResponse::Ok().json(participant(&app, &room, &identity).await?))
}

#[derive(Debug, Deserialize)]
struct Changes {
    metadata: Option<Metadata>,
    grants: Option<Grants>,
}

async fn update(
    app: Application,
    path: Path<(String, String)>,
    Json(body): Json<Changes>,
) -> Result<HttpResponse, ApiError> {
    let (room, identity) = path.into_inner();
    let mut errors = FormErrors::default();
    if let Some(metadata) = &body.metadata {
        check_metadata(
            &mut errors,
            "metadata",
            &metadata.0,
            &app.state.config().rooms,
        );
    }
    errors.into_result()?;
    own_room_here(&app, &room).await?;
    let update = UpdateParticipant {
        room: room.clone(),
        identity: identity.clone(),
        metadata: body.metadata.map(|metadata| metadata.0),
        grants: body.grants,
    };
    let answer = app.state.tree.rooms.send(update).await;
    answer
        .map_err(crate::error::Error::from)?
        .map_err(participant_error)?;
    Ok(HttpResponse::Ok().json(participant(&app, &room, &identity).await?))
}

async fn remove(app: Application, path: Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (room, identity) = path.into_inner();
    own_room_here(&app, &room).await?;
    let answer = app
        .state
        .tree
        .rooms
        .send(RemoveParticipant { room, identity })
        .await;
    if !answer.map_err(crate::error::Error::from)? {
        return Err(room_error(RoomError::NoParticipant));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
struct Mute {
    #[serde(default = "yes")]
    muted: bool,
}

fn yes() -> bool {
    true
}

async fn mute(
    app: Application,
    path: Path<(String, String, String)>,
    body: Option<Json<Mute>>,
) -> Result<HttpResponse, ApiError> {
    let (room, identity, track_sid) = path.into_inner();
    let muted = body.is_none_or(|Json(body)| body.muted);
    own_room_here(&app, &room).await?;
    let mute = MuteTrack {
        room,
        identity,
        track_sid,
        muted,
    };
    let answer = app.state.tree.rooms.send(mute).await;
    answer
        .map_err(crate::error::Error::from)?
        .map_err(participant_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
struct Data {
    payload: Value,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default = "yes")]
    reliable: bool,
}

async fn send_data(
    app: Application,
    path: Path<String>,
    Json(body): Json<Data>,
) -> Result<HttpResponse, ApiError> {
    let max_bytes = app.state.config().rooms.max_data_bytes;
    let mut errors = FormErrors::default();
    if body.payload.to_string().len() > max_bytes {
        errors.add(
            "payload",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be at most {max_bytes} bytes of JSON."),
        );
    }
    if body.to.len() > MAX_RECIPIENTS {
        errors.add(
            "to",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must name at most {MAX_RECIPIENTS} participants."),
        );
    }
    errors.into_result()?;
    own_room_here(&app, &path).await?;
    let data = SendData {
        room: path.into_inner(),
        from: None,
        payload: body.payload,
        to: body.to,
        reliable: body.reliable,
    };
    let answer = app.state.tree.rooms.send(data).await;
    answer
        .map_err(crate::error::Error::from)?
        .map_err(room_error)?;
    Ok(HttpResponse::NoContent().finish())
}
