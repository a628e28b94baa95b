//! `GET /auth/sessions`: the account's login sessions; `POST /auth/sessions/logout` with
//! `{"session_id_hashes": […]}` ends some of them (their tokens stop working and their gateway
//! sessions close with 4004). Sessions are named by `id_hash`, as READY's
//! `auth_session_id_hash` names the current one.

use std::collections::HashSet;

use actix_web::web::Query;
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::auth_sessions;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;

/// Most sessions one logout names, as Discord bounds it.
const MAX_LOGOUT_HASHES: usize = 100;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Fermi asks for Spacebar's extended form (`id`, `last_seen`, …).
    #[serde(default)]
    extended: bool,
}

pub async fn list(
    Authenticated { state, session }: Authenticated,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let sessions = auth_sessions::of_user(&mut conn, session.user.id).await?;
    let user_sessions: Vec<Value> = sessions
        .iter()
        .map(|(id, since)| describe(*id, *since, query.extended))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "user_sessions": user_sessions })))
}

/// A login as Discord lists it. Logins are not tracked after they begin: the time they began
/// stands for their last use, and where and on what they were made is not known.
fn describe(id: i64, since: DateTime<Utc>, extended: bool) -> Value {
    let mut value = json!({
        "id_hash": auth_sessions::id_hash(id),
        "approx_last_used_time": since,
        "client_info": { "os": null, "platform": null, "location": null },
    });
    if extended {
        value["id"] = id.to_string().into();
        value["last_seen"] = json!(since);
        value["last_seen_ip"] = Value::Null;
        value["last_seen_location"] = Value::Null;
        value["last_seen_location_info"] = Value::Null;
    }
    value
}

#[derive(Debug, Deserialize)]
pub struct LogoutBody {
    #[serde(default)]
    session_id_hashes: Vec<String>,
}

pub async fn logout(
    Authenticated { state, session }: Authenticated,
    Json(body): Json<LogoutBody>,
) -> Result<HttpResponse, ApiError> {
    if body.session_id_hashes.len() > MAX_LOGOUT_HASHES {
        return Err(FormErrors::field(
            "session_id_hashes",
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {MAX_LOGOUT_HASHES} or fewer in length."),
        )
        .into());
    }
    let wanted: HashSet<&str> = body.session_id_hashes.iter().map(String::as_str).collect();
    let user_id = session.user.id;
    let mut conn = state.pool.get().await?;
    for (id, _) in auth_sessions::of_user(&mut conn, user_id).await? {
        if wanted.contains(auth_sessions::id_hash(id).as_str()) {
            auth_sessions::delete(&mut conn, id).await?;
            state.logins_ended(user_id, Some(id), None);
        }
    }
    Ok(HttpResponse::NoContent().finish())
}
