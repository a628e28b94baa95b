//! `/rooms/api/rooms`: an application's rooms. `POST` creates one (`{id?, name, public,
//! guests, max_participants, empty_timeout, metadata}`; an unguessable id when none is given),
//! `GET` lists them by id (`?after=&limit=`), `GET/PATCH/DELETE /rooms/api/rooms/{room}` reads,
//! changes (live, for everyone in it) and deletes one (everyone in it is disconnected).

use actix_web::http::StatusCode;
use actix_web::web::{self, Path, Query};
use actix_web::HttpResponse;
use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::json;

use spacebar_actors::rooms::api::{CloseRoom, Configure};

use super::{
    check_length, check_metadata, check_room_id, own_room, own_room_here, room_view, room_views,
    Application, Metadata,
};
use crate::config::RoomsConfig;
use crate::db::rooms::{Room, RoomChanges};
use crate::db::Connection;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::rooms::directory::settings;
use crate::state::AppState;

/// Characters of a generated room id: 22 alphanumerics, about 131 bits.
const GENERATED_ID_CHARS: usize = 22;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/rooms", web::post().to(create))
        .route("/rooms", web::get().to(list))
        .route("/rooms/{room}", web::get().to(get))
        .route("/rooms/{room}", web::patch().to(update))
        .route("/rooms/{room}", web::delete().to(delete));
}

/// An unguessable room id.
pub fn generated_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), GENERATED_ID_CHARS)
}

/// A room with the defaults, private, named as its id.
pub fn new_room(id: String, api_key: Option<&str>, config: &RoomsConfig) -> Room {
    Room {
        name: id.clone(),
        id,
        public: false,
        guests: false,
        max_participants: 0,
        empty_timeout_secs: i32::try_from(config.default_empty_timeout_secs).unwrap_or(i32::MAX),
        metadata: String::new(),
        api_key: api_key.map(str::to_string),
        created_at: Utc::now(),
    }
}

/// Stores a new room: 30100 when the instance has `rooms.max_rooms` already, a form error at
/// `id` when the id is taken.
pub async fn insert(state: &AppState, conn: &mut Connection, room: &Room) -> Result<(), ApiError> {
    match room
        .insert_within(conn, state.config().rooms.max_rooms)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30100,
            message: "Maximum number of rooms reached",
        }),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(FormErrors::field("id", "ROOM_ID_TAKEN", "A room has this id already.").into())
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RoomFields {
    id: Option<String>,
    name: Option<String>,
    public: Option<bool>,
    guests: Option<bool>,
    max_participants: Option<u32>,
    empty_timeout: Option<u32>,
    metadata: Option<Metadata>,
}

impl RoomFields {
    /// The fields as changes, checked against the configured bounds.
    fn changes(self, config: &RoomsConfig) -> Result<RoomChanges, ApiError> {
        let mut errors = FormErrors::default();
        if let Some(name) = &self.name {
            check_length(&mut errors, "name", name, 1, config.max_name_chars);
        }
        if let Some(metadata) = &self.metadata {
            check_metadata(&mut errors, "metadata", &metadata.0, config);
        }
        let bounds = [
            (
                "max_participants",
                self.max_participants,
                config.max_participants,
            ),
            (
                "empty_timeout",
                self.empty_timeout,
                config.max_empty_timeout_secs,
            ),
        ];
        for (field, value, max) in bounds {
            if value.is_some_and(|value| value > max) {
                errors.add(field, "NUMBER_TYPE_MAX", format!("Must be at most {max}."));
            }
        }
        errors.into_result()?;
        // Both bounded by u32 values that are configured, so they fit unless configured absurdly.
        let int = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
        Ok(RoomChanges {
            name: self.name,
            public: self.public,
            guests: self.guests,
            max_participants: self.max_participants.map(int),
            empty_timeout_secs: self.empty_timeout.map(int),
            metadata: self.metadata.map(|metadata| metadata.0),
        })
    }
}

async fn create(
    app: Application,
    Json(mut body): Json<RoomFields>,
) -> Result<HttpResponse, ApiError> {
    let config = app.state.config();
    let id = match body.id.take() {
        Some(id) => {
            let mut errors = FormErrors::default();
            check_room_id(&mut errors, "id", &id);
            errors.into_result()?;
            id
        }
        None => generated_id(),
    };
    if body.name.is_none() {
        body.name = Some(id.clone());
    }
    let changes = body.changes(&config.rooms)?;
    let mut room = new_room(id, Some(&app.key.id), &config.rooms);
    room.apply(changes);
    let mut conn = app.state.pool.get().await?;
    insert(&app.state, &mut conn, &room).await?;
    drop(conn);
    configure_live(&app.state, &room).await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(room_view(&room, 0)))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

async fn list(app: Application, query: Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(FormErrors::field(
            "limit",
            "NUMBER_TYPE_MAX",
            "Must be a number from 1 to 1000.",
        )
        .into());
    }
    let mut conn = app.state.pool.get().await?;
    let rooms = Room::page(&mut conn, Some(&app.key.id), query.after.as_deref(), limit).await?;
    drop(conn);
    let views = room_views(&app.state, &rooms).await?;
    Ok(HttpResponse::Ok().json(json!({ "rooms": views })))
}

async fn get(app: Application, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let room = own_room(&app, &path).await?;
    let view = room_views(&app.state, std::slice::from_ref(&room)).await?;
    Ok(HttpResponse::Ok().json(&view[0]))
}

async fn update(
    app: Application,
    path: Path<String>,
    Json(body): Json<RoomFields>,
) -> Result<HttpResponse, ApiError> {
    if body.id.is_some() {
        return Err(FormErrors::field("id", "ROOM_ID_FIXED", "A room's id cannot change.").into());
    }
    let changes = body.changes(&app.state.config().rooms)?;
    own_room_here(&app, &path).await?;
    let mut conn = app.state.pool.get().await?;
    let room = Room::update(&mut conn, &path, &changes)
        .await?
        .ok_or_else(super::unknown_room)?;
    drop(conn);
    configure_live(&app.state, &room).await?;
    let view = room_views(&app.state, std::slice::from_ref(&room)).await?;
    Ok(HttpResponse::Ok().json(&view[0]))
}

async fn delete(app: Application, path: Path<String>) -> Result<HttpResponse, ApiError> {
    own_room_here(&app, &path).await?;
    let mut conn = app.state.pool.get().await?;
    Room::delete(&mut conn, &path).await?;
    drop(conn);
    let room = path.into_inner();
    let closing = app.state.tree.rooms.send(CloseRoom { room }).await;
    closing.map_err(crate::error::Error::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Puts a room's stored settings in effect in it, if it is live.
pub async fn configure_live(state: &AppState, room: &Room) -> Result<(), ApiError> {
    let configure = Configure {
        room: room.id.clone(),
        settings: settings(room),
    };
    let configured = state.tree.rooms.send(configure).await;
    Ok(configured.map_err(crate::error::Error::from)?)
}
