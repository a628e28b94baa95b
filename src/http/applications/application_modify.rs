//! `PATCH /applications/{application_id}` (its owner only; 10002 for anyone else): for now its
//! `flags`, of which only those that allow the privileged gateway intents may change
//! (GATEWAY_PRESENCE, GATEWAY_GUILD_MEMBERS, GATEWAY_MESSAGE_CONTENT and their `_LIMITED`
//! forms). They apply from the bot's next IDENTIFY.

use actix_web::web::Data;
use actix_web::HttpResponse;
use serde::Deserialize;
use spacebar_actors::intents::app_flags::INTENT_FLAGS;

use super::{body, Owned};
use crate::db::applications::Application;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ModifyApplication {
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    flags: Option<i64>,
}

pub async fn modify(
    state: Data<AppState>,
    Owned(mut app): Owned,
    Json(request): Json<ModifyApplication>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    if let Some(flags) = request.flags {
        // Other flags may be sent back as they are (clients echo the whole value), not changed.
        if flags < 0 || (flags ^ app.flags) & !INTENT_FLAGS != 0 {
            return Err(FormErrors::field(
                "flags",
                "APPLICATION_FLAGS_INVALID",
                "Only the gateway intent flags may be changed.",
            )
            .into());
        }
        let flags = (app.flags & !INTENT_FLAGS) | (flags & INTENT_FLAGS);
        if flags != app.flags {
            Application::set_flags(&mut conn, app.id, flags).await?;
            tracing::info!(application_id = app.id, flags, "application flags changed");
            app.flags = flags;
        }
    }
    Ok(HttpResponse::Ok().json(body(&mut conn, &app).await?))
}
