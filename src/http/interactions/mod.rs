//! Interactions: a person invokes an application's command (or presses a button on its
//! message) with `POST /interactions`; the application's bot hears INTERACTION_CREATE and
//! answers through the interaction's token: once with `POST /interactions/{id}/{token}/callback`
//! (see `callback`), then for 15 minutes with follow-ups at `/webhooks/{application_id}/{token}`
//! (see `followups`). The person's sessions hear INTERACTION_SUCCESS when the application
//! answered, INTERACTION_FAILURE when it did not in time. Everything lives in the database, so
//! answers still land after a restart.

mod callback;
pub mod followups;
mod invoke;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde_json::json;

use crate::db::interactions::Interaction;
use crate::db::messages::kind as message_kind;
use crate::events::{Event, ToUser};
use crate::http::error::ApiError;
use crate::state::AppState;

/// How long an application has to answer before the person is told it failed.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// How long an interaction's token stays valid for follow-ups.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Interaction types.
pub mod kind {
    pub const APPLICATION_COMMAND: i32 = 2;
    pub const MESSAGE_COMPONENT: i32 = 3;
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/interactions", web::post().to(invoke::invoke))
        .route(
            "/interactions/{interaction_id}/{token}/callback",
            web::post().to(callback::callback),
        );
}

/// 10062, for an interaction that does not exist or whose token is wrong or too old.
fn unknown() -> ApiError {
    ApiError::Plain {
        status: StatusCode::NOT_FOUND,
        code: 10062,
        message: "Unknown interaction",
    }
}

/// Whether the interaction's token may still be used.
fn alive(interaction: &Interaction) -> bool {
    let age = Utc::now().signed_duration_since(interaction.created_at);
    age.to_std().is_ok_and(|age| age < TOKEN_LIFETIME)
}

/// What kind of message answers this interaction.
fn answer_kind(interaction: &Interaction) -> i32 {
    match interaction.data.get("type").and_then(|t| t.as_i64()) {
        _ if interaction.kind == kind::MESSAGE_COMPONENT => message_kind::DEFAULT,
        Some(1) => message_kind::CHAT_INPUT_COMMAND,
        _ => message_kind::CONTEXT_MENU_COMMAND,
    }
}

/// INTERACTION_SUCCESS or INTERACTION_FAILURE to the person who invoked it.
fn tell_invoker(state: &AppState, interaction: &Interaction, event: fn(ToUser) -> Event) {
    state.publish(&event(ToUser {
        user_id: interaction.user_id,
        data: receipt(interaction),
    }));
}

/// What the person's sessions hear of their interaction.
fn receipt(interaction: &Interaction) -> serde_json::Value {
    json!({ "id": interaction.id.to_string(), "nonce": interaction.nonce })
}
