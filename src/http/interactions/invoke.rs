//! `POST /interactions` (JSON, or multipart with `payload_json` as Discord's client sends it): a
//! person invokes an application's command (`type` 2) or presses a component on the bot's
//! message (`type` 3). Checked as Discord checks it: the person sees the channel and may use
//! application commands there, the application's bot is in the guild (or the DM), the command
//! is the application's and usable here (and the person has its default member permissions).
//! Answers 204; the bot hears INTERACTION_CREATE with a token to answer with, the person's
//! sessions INTERACTION_CREATE with the id and nonce.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{kind, receipt, tell_invoker, ANSWER_WITHIN};
use crate::db::application_commands::Command;
use crate::db::applications::Application;
use crate::db::interactions::Interaction;
use crate::db::members::Member;
use crate::db::messages::Message;
use crate::events::Event;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::channels::messages::{files, render, Reader};
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::http::json::parse_value;
use crate::permissions::bits;
use crate::wire::guild as wire;
use crate::wire::user::PublicUser;

#[derive(Debug, Deserialize)]
struct Invocation {
    #[serde(rename = "type", deserialize_with = "crate::http::ids::required")]
    kind: i64,
    #[serde(deserialize_with = "crate::http::ids::required")]
    application_id: i64,
    #[serde(deserialize_with = "crate::http::ids::required")]
    channel_id: i64,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    message_id: Option<i64>,
}

pub async fn invoke(
    req: HttpRequest,
    Authenticated { state, session }: Authenticated,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let config = state.config();
    // Files are no part of an invocation: refused before any is stored.
    let (body, _) = files::read_body(&req, payload, &state, false).await?;
    let asked: Invocation = parse_value(body)?;
    let user = &session.user;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, asked.channel_id, user.id).await?;
    let guild_id = access.channel.guild_id;
    if guild_id.is_some() {
        access.require(bits::USE_APPLICATION_COMMANDS)?;
    }
    let application = Application::find(&mut conn, asked.application_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Application))?;
    let bot_id = application
        .bot_user_id
        .ok_or(ApiError::Unknown(Unknown::Application))?;
    let bot_is_there = match guild_id {
        Some(guild_id) => Member::find(&mut conn, guild_id, bot_id).await?.is_some(),
        None => access.recipients.contains(&bot_id),
    };
    if !bot_is_there {
        return Err(ApiError::MissingAccess);
    }

    let (kind, data, message) = match i32::try_from(asked.kind).unwrap_or(0) {
        kind::APPLICATION_COMMAND => {
            let command = command(&mut conn, &application, guild_id, &asked.data).await?;
            if let Some(needed) = command.default_member_permissions.as_deref() {
                let needed: u64 = needed.parse().unwrap_or(0);
                if guild_id.is_some() && access.permissions & needed != needed {
                    return Err(ApiError::MissingPermissions);
                }
            }
            let mut data = json!({
                "id": command.id.to_string(),
                "name": command.name,
                "type": command.kind,
                "options": asked.data.get("options").cloned().unwrap_or(json!([])),
            });
            if let Some(guild_id) = command.guild_id {
                data["guild_id"] = guild_id.to_string().into();
            }
            (kind::APPLICATION_COMMAND, data, None)
        }
        kind::MESSAGE_COMPONENT => {
            let message_id = asked.message_id.ok_or_else(|| {
                FormErrors::field("message_id", "BASE_TYPE_REQUIRED", "This field is required")
            })?;
            let message = Message::find(&mut conn, access.channel.id, message_id)
                .await?
                .filter(|m| m.author_id == Some(bot_id) && m.shown_to(user.id))
                .ok_or(ApiError::Unknown(Unknown::Message))?;
            let custom_id = asked.data.get("custom_id").and_then(Value::as_str);
            let Some(custom_id) = custom_id.filter(|id| (1..=100).contains(&id.len())) else {
                return Err(FormErrors::field(
                    "data.custom_id",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                )
                .into());
            };
            let data = json!({
                "custom_id": custom_id,
                "component_type": asked.data.get("component_type").cloned().unwrap_or(json!(2)),
                "values": asked.data.get("values").cloned().unwrap_or(json!([])),
            });
            (kind::MESSAGE_COMPONENT, data, Some(message))
        }
        _ => {
            return Err(FormErrors::field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of (2, 3).",
            )
            .into())
        }
    };

    let interaction = Interaction {
        id: state.snowflakes.next(),
        application_id: application.id,
        kind,
        token: Alphanumeric.sample_string(&mut rand::rng(), 64),
        user_id: user.id,
        guild_id,
        channel_id: access.channel.id,
        data: data.clone(),
        message_id: message.as_ref().map(|m| m.id),
        nonce: asked.nonce.as_ref().map(|n| match n {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        }),
        response_type: None,
        original_message_id: None,
        created_at: Utc::now(),
    };
    interaction.insert(&mut conn).await?;

    // What the bot hears: who asked, where, with what, and the token to answer with.
    let bot_permissions = ChannelAccess::load(&mut conn, access.channel.id, bot_id)
        .await
        .map_or(0, |bot| bot.permissions);
    let mut created = json!({
        "id": interaction.id.to_string(),
        "application_id": application.id.to_string(),
        "type": kind,
        "data": data,
        "channel_id": access.channel.id.to_string(),
        "channel": wire::channel(&access.channel, &access.overwrites),
        "token": interaction.token,
        "version": 1,
        "app_permissions": bot_permissions.to_string(),
        "attachment_size_limit": config.limits.message_max_attachment_size,
        "locale": "en-US",
        "entitlements": [],
        "context": if guild_id.is_some() { 0 } else { 1 },
    });
    match (guild_id, &access.guild) {
        (Some(guild_id), Some(guild)) => {
            let mut member = wire::member(&guild.member, Some(user));
            member["permissions"] = access.permissions.to_string().into();
            created["guild_id"] = guild_id.to_string().into();
            created["guild_locale"] = guild.guild.preferred_locale.clone().into();
            created["member"] = member;
            created["authorizing_integration_owners"] = json!({ "0": guild_id.to_string() });
        }
        _ => {
            created["user"] = serde_json::to_value(PublicUser::from(user))?;
            created["authorizing_integration_owners"] = json!({ "1": user.id.to_string() });
        }
    }
    if let Some(message) = &message {
        let shown = render(
            &state,
            &mut conn,
            Reader::EVERYONE,
            std::slice::from_ref(message),
        )
        .await?;
        created["message"] = shown.into_iter().next().unwrap_or(Value::Null);
    }
    state.publish(&Event::InteractionCreate {
        user_id: bot_id,
        guild_id,
        data: created,
    });
    state.publish(&Event::InteractionCreate {
        user_id: user.id,
        guild_id: None,
        data: receipt(&interaction),
    });

    // Unanswered in time: the person is told it failed.
    let waiting = state.clone();
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(ANSWER_WITHIN).await;
        let Ok(mut conn) = waiting.pool.get().await else {
            return;
        };
        if let Ok(Some(now)) = Interaction::find(&mut conn, interaction.id).await {
            if now.response_type.is_none() {
                tell_invoker(&waiting, &now, Event::InteractionFailure);
            }
        }
    });
    Ok(HttpResponse::NoContent().finish())
}

/// The command `data.id` names, if it is the application's and usable in this place.
async fn command(
    conn: &mut crate::db::Connection,
    application: &Application,
    guild_id: Option<i64>,
    data: &Value,
) -> Result<Command, ApiError> {
    let unknown = || ApiError::Plain {
        status: actix_web::http::StatusCode::NOT_FOUND,
        code: 10063,
        message: "Unknown application command",
    };
    let id = data
        .get("id")
        .and_then(|id| match id {
            Value::String(text) => text.parse::<i64>().ok(),
            other => other.as_i64(),
        })
        .ok_or_else(unknown)?;
    let command = Command::find(conn, id).await?.ok_or_else(unknown)?;
    let usable = command.application_id == application.id
        && match (guild_id, command.guild_id) {
            (_, None) => guild_id.is_some() || command.dm_permission,
            (Some(here), Some(its)) => here == its,
            (None, Some(_)) => false,
        };
    if usable {
        Ok(command)
    } else {
        Err(unknown())
    }
}
