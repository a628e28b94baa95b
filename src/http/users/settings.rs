//! `GET/PATCH /users/@me/settings`: the complete settings object; a change is stored and sent
//! to the user's other sessions as USER_SETTINGS_UPDATE.

use actix_web::HttpResponse;
use serde_json::{Map, Value};

use crate::db::users::{User, UserChanges};
use crate::events::{Event, ToUser};
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::Json;
use crate::wire::settings;

pub async fn get(Authenticated { session, .. }: Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(settings::merged(&session.user.settings))
}

pub async fn patch(
    Authenticated { state, session }: Authenticated,
    Json(patch): Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let stored = settings::apply_patch(&session.user.settings, &patch)?;
    let mut conn = state.pool.get().await?;
    let changes = UserChanges {
        settings: Some(stored),
        ..UserChanges::default()
    };
    let user = User::update(&mut conn, session.user.id, &changes).await?;
    state.publish(&Event::UserSettingsUpdate(ToUser {
        user_id: user.id,
        data: Value::Object(patch),
    }));
    Ok(HttpResponse::Ok().json(settings::merged(&user.settings)))
}
