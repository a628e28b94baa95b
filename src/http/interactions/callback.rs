//! `POST /interactions/{interaction_id}/{token}/callback`: the application's one answer (the
//! token is the authorisation). 4 answers with a message; 5 defers (a "thinking" message the
//! application fills in later through `@original`); for components, 6 acknowledges and 7 edits
//! the message the component is on; 1 (PONG) only answers pings, which this server's
//! interactions never are. A second answer is 40060. The person hears INTERACTION_SUCCESS.
//! Answers 204, or with `?with_response=true` (discord.py asks so) what the answer made:
//! `{interaction: {id, type, response_message_id, …}, resource: {type, message}}`.

use crate::events::Event;
use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{alive, answer_kind, kind, tell_invoker, unknown};
use crate::db::applications::Application;
use crate::db::interactions::Interaction;
use crate::db::messages::{flags, Message};
use crate::db::users::User;
use crate::db::Connection;
use crate::http::access::ChannelAccess;
use crate::http::channels::messages::files;
use crate::http::channels::messages::write::{self, Written};
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::parse_value;
use crate::state::AppState;
use crate::wire::user::PublicUser;

/// Callback types.
mod response {
    pub const PONG: i32 = 1;
    pub const CHANNEL_MESSAGE: i32 = 4;
    pub const DEFERRED_CHANNEL_MESSAGE: i32 = 5;
    pub const DEFERRED_UPDATE_MESSAGE: i32 = 6;
    pub const UPDATE_MESSAGE: i32 = 7;
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    with_response: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(rename = "type", deserialize_with = "crate::http::ids::required")]
    kind: i64,
    #[serde(default)]
    data: Option<Value>,
}

pub async fn callback(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String)>,
    query: Query<CallbackQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let with_response = matches!(query.with_response.as_deref(), Some("true" | "1"));
    let interaction_id = path.0.parse::<i64>().map_err(|_| unknown())?;
    // The token is the authorisation: checked before the body is read, and no connection is
    // held while the client sends it.
    let find = || async {
        let mut conn = state.pool.get().await?;
        let found = Interaction::find(&mut conn, interaction_id).await?;
        let found = found.filter(|i| i.token == path.1 && alive(i));
        found.map(|i| (conn, i)).ok_or_else(unknown)
    };
    drop(find().await?);
    // Files are not kept with a response: refused before any is stored.
    let (body, _) = files::read_body(&req, payload, &state, false).await?;
    let answer: Answer = parse_value(body)?;
    let (mut conn, interaction) = find().await?;
    if interaction.response_type.is_some() {
        return Err(acknowledged());
    }
    let written: Written = match answer.data {
        Some(data) if !data.is_null() => parse_value(data)?,
        _ => Written::default(),
    };
    let response_type = i32::try_from(answer.kind).unwrap_or(0);
    let component = interaction.kind == kind::MESSAGE_COMPONENT;
    let allowed = match response_type {
        response::CHANNEL_MESSAGE | response::DEFERRED_CHANNEL_MESSAGE => true,
        response::DEFERRED_UPDATE_MESSAGE | response::UPDATE_MESSAGE => component,
        response::PONG => false,
        _ => false,
    };
    if !allowed {
        return Err(FormErrors::field(
            "type",
            "INTERACTION_RESPONSE_TYPE_INVALID",
            "This interaction cannot be answered with this response type.",
        )
        .into());
    }
    // Claimed first, so two answers racing cannot both land.
    if !Interaction::respond(&mut conn, interaction.id, response_type, None).await? {
        return Err(acknowledged());
    }
    let answered = answer_with(&state, &mut conn, &interaction, response_type, written).await;
    match answered {
        Ok(made) => {
            if let Some((message, _)) = &made {
                if response_type != response::UPDATE_MESSAGE {
                    Interaction::set_original(&mut conn, interaction.id, message.id).await?;
                }
            }
            tell_invoker(&state, &interaction, Event::InteractionSuccess);
            if !with_response {
                return Ok(HttpResponse::NoContent().finish());
            }
            let mut receipt = json!({ "id": interaction.id.to_string(), "type": interaction.kind });
            let mut body = json!({ "interaction": receipt.clone() });
            if let Some((message, shown)) = made {
                receipt["response_message_id"] = message.id.to_string().into();
                receipt["response_message_loading"] = (message.flags & flags::LOADING != 0).into();
                receipt["response_message_ephemeral"] =
                    (message.flags & flags::EPHEMERAL != 0).into();
                body = json!({
                    "interaction": receipt,
                    "resource": { "type": response_type, "message": shown },
                });
            }
            Ok(HttpResponse::Ok().json(body))
        }
        Err(error) => {
            // Not answered after all: the application may try again.
            Interaction::unrespond(&mut conn, interaction.id).await?;
            Err(error)
        }
    }
}

/// Carries out the answer; the message it made or changed, as events show it.
async fn answer_with(
    state: &AppState,
    conn: &mut Connection,
    interaction: &Interaction,
    response_type: i32,
    written: Written,
) -> Result<Option<(Message, Value)>, ApiError> {
    let access = writer_access(conn, interaction).await?;
    match response_type {
        response::CHANNEL_MESSAGE | response::DEFERRED_CHANNEL_MESSAGE => {
            let mut message = answer_message(state, conn, interaction).await?;
            if response_type == response::DEFERRED_CHANNEL_MESSAGE {
                message.flags |= flags::LOADING;
            }
            let made = write::post(
                state,
                conn,
                &access,
                message,
                &files::Attachments::default(),
                written,
                interaction.user_id,
            )
            .await?;
            Ok(Some(made))
        }
        response::UPDATE_MESSAGE => {
            let message_id = interaction
                .message_id
                .ok_or(ApiError::Unknown(Unknown::Message))?;
            let message = Message::find(conn, interaction.channel_id, message_id)
                .await?
                .ok_or(ApiError::Unknown(Unknown::Message))?;
            let made =
                write::rewrite(state, conn, &access, message, written, interaction.user_id).await?;
            Ok(Some(made))
        }
        _ => Ok(None),
    }
}

/// The channel as the application's bot writes in it (as the person who invoked, if the bot
/// cannot see it: an answer goes where the question was asked).
pub async fn writer_access(
    conn: &mut Connection,
    interaction: &Interaction,
) -> Result<ChannelAccess, ApiError> {
    let (_, bot_id) = answerer(conn, interaction).await?;
    match ChannelAccess::load(conn, interaction.channel_id, bot_id).await {
        Ok(access) => Ok(access),
        Err(_) => ChannelAccess::load(conn, interaction.channel_id, interaction.user_id).await,
    }
}

/// The interaction's application and the user who answers for it: its bot.
async fn answerer(
    conn: &mut Connection,
    interaction: &Interaction,
) -> Result<(i64, i64), ApiError> {
    let application = Application::find(conn, interaction.application_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Application))?;
    Ok((
        application.id,
        application.bot_user_id.unwrap_or(application.id),
    ))
}

/// A new message answering `interaction`, by the application's bot, saying what it answers.
pub async fn answer_message(
    state: &AppState,
    conn: &mut Connection,
    interaction: &Interaction,
) -> Result<Message, ApiError> {
    let invoker = User::find_any(conn, interaction.user_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::User))?;
    let (application_id, bot_id) = answerer(conn, interaction).await?;
    let mut message = Message::new(
        state.snowflakes.next(),
        interaction.channel_id,
        interaction.guild_id,
        bot_id,
    );
    message.kind = answer_kind(interaction);
    message.interaction_id = Some(interaction.id);
    let owners = match interaction.guild_id {
        Some(guild_id) => json!({ "0": guild_id.to_string() }),
        None => json!({ "1": invoker.id.to_string() }),
    };
    let mut metadata = json!({
        "id": interaction.id.to_string(),
        "type": interaction.kind,
        "name": interaction.data.get("name").cloned().unwrap_or(Value::Null),
        "user": PublicUser::from(&invoker),
        "authorizing_integration_owners": owners,
        "application_id": application_id.to_string(),
    });
    if let Some(message_id) = interaction.message_id {
        metadata["interacted_message_id"] = message_id.to_string().into();
    }
    message.interaction_metadata = Some(metadata);
    Ok(message)
}

/// 40060.
fn acknowledged() -> ApiError {
    ApiError::Plain {
        status: StatusCode::BAD_REQUEST,
        code: 40060,
        message: "Interaction has already been acknowledged.",
    }
}
