//! Application commands, global (`/applications/{application_id}/commands…`) and per guild
//! (`/applications/{application_id}/guilds/{guild_id}/commands…`): list, create (a command of
//! the same kind and name is replaced: 200 instead of 201), bulk overwrite with `PUT`, get,
//! modify, delete. The application's owner or its bot may manage them; a guild's commands only
//! once the bot is in that guild. APPLICATION_COMMAND_CREATE/UPDATE/DELETE follow each change.
//! And `GET /guilds/{guild_id}/application-command-index`: what a member can invoke there.

use actix_web::http::StatusCode;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::{self, Data};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::application_commands::Command;
use crate::db::applications::Application;
use crate::db::members::Member;
use crate::db::users::User;
use crate::db::Connection;
use crate::events::{Change, CommandChange, Event};
use crate::http::applications::caller_and;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::extractors::InGuild;
use crate::http::json::Json;
use crate::http::snowflake;
use crate::state::AppState;

/// Command kinds.
pub mod kind {
    pub const CHAT_INPUT: i32 = 1;
    pub const MESSAGE: i32 = 3;
}

/// Most options a command may have, and commands a bulk overwrite may hold.
const MAX_OPTIONS: usize = 25;
const MAX_BULK: usize = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for base in [
        "/applications/{application_id}/commands",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ] {
        cfg.route(base, web::get().to(list))
            .route(base, web::post().to(create))
            .route(base, web::put().to(overwrite));
        let one = format!("{base}/{{command_id}}");
        cfg.route(&one, web::get().to(get))
            .route(&one, web::patch().to(modify))
            .route(&one, web::delete().to(delete));
    }
    cfg.route(
        "/guilds/{guild_id}/application-command-index",
        web::get().to(index),
    );
}

/// A command as clients see it.
pub fn view(command: &Command) -> Value {
    let mut value = json!({
        "id": command.id.to_string(),
        "application_id": command.application_id.to_string(),
        "type": command.kind,
        "name": command.name,
        "name_localizations": null,
        "description": command.description,
        "description_localizations": null,
        "options": command.options,
        "default_member_permissions": command.default_member_permissions,
        "dm_permission": command.dm_permission,
        "nsfw": command.nsfw,
        "integration_types": [0],
        "contexts": null,
        "version": command.version.to_string(),
    });
    if let Some(guild_id) = command.guild_id {
        value["guild_id"] = guild_id.to_string().into();
    }
    value
}

/// Where the request's commands live: whose, and global or of a guild.
struct Place {
    application: Application,
    guild_id: Option<i64>,
}

/// The caller and the place of the path, checked before the handler runs (and before any body
/// is read).
impl FromRequest for Place {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let path = req.clone();
        caller_and(req, payload, async move |session, conn| {
            place(conn, &path, &session.user).await
        })
    }
}

/// The application and guild of the path, if `user` may manage its commands there.
async fn place(conn: &mut Connection, req: &HttpRequest, user: &User) -> Result<Place, ApiError> {
    let param = |name: &str| req.match_info().get(name).map(str::to_owned);
    let application_id = snowflake(
        "application_id",
        &param("application_id").unwrap_or_default(),
    )?;
    let application = Application::find(conn, application_id)
        .await?
        .filter(|app| app.owner_id == user.id || app.bot_user_id == Some(user.id))
        .ok_or(ApiError::Unknown(Unknown::Application))?;
    let guild_id = match param("guild_id") {
        None => None,
        Some(text) => {
            let guild_id = snowflake("guild_id", &text)?;
            // The application acts in a guild only once its bot was added there.
            let bot_id = application.bot_user_id.unwrap_or(application.id);
            if Member::find(conn, guild_id, bot_id).await?.is_none() {
                return Err(ApiError::MissingAccess);
            }
            Some(guild_id)
        }
    };
    Ok(Place {
        application,
        guild_id,
    })
}

fn command_id(req: &HttpRequest) -> Result<i64, ApiError> {
    snowflake(
        "command_id",
        req.match_info().get("command_id").unwrap_or_default(),
    )
}

/// The command the path names, in its place.
struct Named(Place, Command);

impl FromRequest for Named {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let command_id = command_id(req);
        let path = req.clone();
        caller_and(req, payload, async move |session, conn| {
            let place = place(conn, &path, &session.user).await?;
            let command = find(conn, &place, command_id?).await?;
            Ok(Self(place, command))
        })
    }
}

/// The command of the path, if it belongs to this place.
async fn find(conn: &mut Connection, place: &Place, id: i64) -> Result<Command, ApiError> {
    Command::find(conn, id)
        .await?
        .filter(|c| c.application_id == place.application.id && c.guild_id == place.guild_id)
        .ok_or(ApiError::Plain {
            status: StatusCode::NOT_FOUND,
            code: 10063,
            message: "Unknown application command",
        })
}

/// A command as sent; [`CommandBody::command`] checks it.
#[derive(Debug, Clone, Deserialize)]
pub struct CommandBody {
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<i32>,
    description: Option<String>,
    options: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    default_member_permissions: Option<i64>,
    dm_permission: Option<bool>,
    nsfw: Option<bool>,
}

impl CommandBody {
    /// The command this body describes, laid over `base` (for edits) or new; errors at `path`.
    fn command(
        self,
        base: Option<&Command>,
        id: i64,
        place: &Place,
        path: &str,
    ) -> Result<Command, ApiError> {
        let at = |field: &str| {
            if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            }
        };
        let mut errors = FormErrors::default();
        let kind = self
            .kind
            .or(base.map(|c| c.kind))
            .unwrap_or(kind::CHAT_INPUT);
        if !(kind::CHAT_INPUT..=kind::MESSAGE).contains(&kind) {
            errors.add(
                &at("type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of (1, 2, 3).",
            );
        }
        // A text field as asked, or as it was; an error at `field` unless `ok`.
        let mut text = |field: &str,
                        asked: Option<String>,
                        was: Option<&String>,
                        ok: &dyn Fn(&str) -> bool,
                        (code, message): (&str, &str)| {
            let value = asked.or(was.cloned()).unwrap_or_default();
            if !ok(&value) {
                errors.add(&at(field), code, message);
            }
            value
        };
        let name = text(
            "name",
            self.name,
            base.map(|c| &c.name),
            &|name| valid_name(kind, name),
            (
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ),
        );
        let description = text(
            "description",
            self.description,
            base.map(|c| &c.description),
            &|description| match kind {
                kind::CHAT_INPUT => (1..=100).contains(&description.chars().count()),
                _ => description.is_empty(),
            },
            (
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length (empty for user and message commands).",
            ),
        );
        let options = match self.options {
            Some(options) => {
                if options.len() > MAX_OPTIONS || !options.iter().all(Value::is_object) {
                    errors.add(
                        &at("options"),
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 25 or fewer objects.",
                    );
                }
                Value::Array(options)
            }
            None => base.map_or(json!([]), |c| c.options.clone()),
        };
        errors.into_result()?;
        Ok(Command {
            id,
            application_id: place.application.id,
            guild_id: place.guild_id,
            kind,
            name,
            description,
            options,
            default_member_permissions: match self.default_member_permissions {
                Some(bits) => Some(bits.to_string()),
                None => base.and_then(|c| c.default_member_permissions.clone()),
            },
            dm_permission: self
                .dm_permission
                .or(base.map(|c| c.dm_permission))
                .unwrap_or(true),
            nsfw: self.nsfw.or(base.map(|c| c.nsfw)).unwrap_or(false),
            version: id,
        })
    }
}

/// A chat command's name is 1 to 32 lowercase letters, digits, `-` and `_`; others' any 1 to 32
/// characters.
fn valid_name(kind: i32, name: &str) -> bool {
    let length_ok = (1..=32).contains(&name.chars().count());
    match kind {
        kind::CHAT_INPUT => {
            length_ok
                && name
                    .chars()
                    .all(|c| c == '-' || c == '_' || c.is_alphanumeric())
                && name.to_lowercase() == name
        }
        _ => length_ok,
    }
}

/// APPLICATION_COMMAND_* for a guild's command to the guild, for a global one to the bot.
fn announce(
    application: &Application,
    event: fn(CommandChange) -> Event,
    command: &Command,
) -> Event {
    event(CommandChange {
        guild_id: command.guild_id,
        bot_id: application.bot_user_id,
        command: view(command),
    })
}

/// APPLICATION_COMMAND_CREATE if storing `asked` made a command, UPDATE if it replaced one of
/// the same kind and name.
fn stored(application: &Application, asked: &Command, stored: &Command) -> Event {
    let event = if stored.id == asked.id {
        Event::ApplicationCommandCreate
    } else {
        Event::ApplicationCommandUpdate
    };
    announce(application, event, stored)
}

async fn list(state: Data<AppState>, place: Place) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let commands = Command::of(&mut conn, place.application.id, place.guild_id).await?;
    Ok(HttpResponse::Ok().json(commands.iter().map(view).collect::<Vec<_>>()))
}

async fn create(
    state: Data<AppState>,
    place: Place,
    Json(body): Json<CommandBody>,
) -> Result<HttpResponse, ApiError> {
    let command = body.command(None, state.snowflakes.next(), &place, "")?;
    let mut conn = state.pool.get().await?;
    let mut change = Change::new(&state);
    let saved = change
        .commit(&mut conn, async |conn| Ok(command.upsert(conn).await?))
        .await?;
    change.emit(stored(&place.application, &command, &saved));
    let status = if saved.id == command.id {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(view(&saved)))
}

async fn overwrite(
    state: Data<AppState>,
    place: Place,
    Json(bodies): Json<Vec<CommandBody>>,
) -> Result<HttpResponse, ApiError> {
    if bodies.len() > MAX_BULK {
        return Err(FormErrors::field(
            "",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 200 or fewer in length.",
        )
        .into());
    }
    let commands = bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| {
            body.command(None, state.snowflakes.next(), &place, &index.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut conn = state.pool.get().await?;
    let mut change = Change::new(&state);
    let (saved, gone) = change
        .commit(&mut conn, async |conn| {
            let mut saved = Vec::with_capacity(commands.len());
            for command in &commands {
                saved.push(command.upsert(conn).await?);
            }
            let keep: Vec<i64> = saved.iter().map(|c| c.id).collect();
            let gone =
                Command::delete_others(conn, place.application.id, place.guild_id, &keep).await?;
            Ok((saved, gone))
        })
        .await?;
    let application = &place.application;
    for command in &gone {
        change.emit(announce(
            application,
            Event::ApplicationCommandDelete,
            command,
        ));
    }
    for (command, asked) in saved.iter().zip(&commands) {
        change.emit(stored(application, asked, command));
    }
    Ok(HttpResponse::Ok().json(saved.iter().map(view).collect::<Vec<_>>()))
}

async fn get(Named(_, command): Named) -> HttpResponse {
    HttpResponse::Ok().json(view(&command))
}

async fn modify(
    state: Data<AppState>,
    Named(place, command): Named,
    Json(body): Json<CommandBody>,
) -> Result<HttpResponse, ApiError> {
    let mut changed = body.command(Some(&command), command.id, &place, "")?;
    changed.version = state.snowflakes.next();
    let mut conn = state.pool.get().await?;
    let clash = Command::of(&mut conn, place.application.id, place.guild_id)
        .await?
        .into_iter()
        .any(|c| c.id != changed.id && c.kind == changed.kind && c.name == changed.name);
    if clash {
        return Err(FormErrors::field(
            "name",
            "APPLICATION_COMMAND_ALREADY_EXISTS",
            "A command with this name already exists.",
        )
        .into());
    }
    let mut change = Change::new(&state);
    change.emit(announce(
        &place.application,
        Event::ApplicationCommandUpdate,
        &changed,
    ));
    change
        .commit(&mut conn, async |conn| Ok(changed.save(conn).await?))
        .await?;
    Ok(HttpResponse::Ok().json(view(&changed)))
}

async fn delete(
    state: Data<AppState>,
    Named(place, command): Named,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let mut change = Change::new(&state);
    change.emit(announce(
        &place.application,
        Event::ApplicationCommandDelete,
        &command,
    ));
    change
        .commit(&mut conn, async |conn| {
            Ok(Command::delete(conn, command.id).await?)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What a member can invoke in a guild: the applications whose bots are in it, and their
/// global and guild commands.
async fn index(InGuild { access, conn, .. }: InGuild) -> Result<HttpResponse, ApiError> {
    let guild_id = access.guild.id;
    let mut conn = conn.get().await?;
    let bots = Member::bots_of_guild(&mut conn, guild_id).await?;
    let applications = Application::of_bots(&mut conn, &bots).await?;
    let ids: Vec<i64> = applications.iter().map(|a| a.id).collect();
    let commands = Command::usable_in(&mut conn, guild_id, &ids).await?;
    Ok(HttpResponse::Ok().json(json!({
        "applications": applications
            .iter()
            .map(|a| json!({
                "id": a.id.to_string(),
                "name": a.name,
                "description": a.description,
                "icon": a.icon,
                "bot_id": a.bot_user_id.map(|id| id.to_string()),
            }))
            .collect::<Vec<_>>(),
        "application_commands": commands.iter().map(view).collect::<Vec<_>>(),
        "version": "0",
    })))
}
