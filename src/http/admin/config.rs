//! `/_spacebar/admin/config`: `GET` the configuration in effect (secrets blanked) and the keys
//! operators have stored; `PATCH` with `{"section.key": value, …}` stores the changes (they
//! outlive restarts) and puts in effect at once those that can be (`applied`); the others
//! (`restart_required`) take effect at the next start.

use actix_web::web;
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::Operator;
use crate::config::{Applies, Config, ConfigError};
use crate::db::instance_config::StoredKey;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/config", web::get().to(get))
        .route("/config", web::patch().to(modify));
}

async fn get(operator: Operator) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    let stored = StoredKey::all(&mut conn).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "config": operator.state.config().redacted(), "stored": stored })))
}

async fn modify(
    operator: Operator,
    Json(changes): Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let current = operator.state.config();
    // Every change checked together first: nothing is stored unless all of them are valid.
    current.with_changes(&changes).map_err(refused)?;
    let (now, later): (Map<String, Value>, Map<String, Value>) = changes
        .into_iter()
        .partition(|(key, _)| Config::applies(key) == Applies::Now);
    let mut conn = operator.state.pool.get().await?;
    let mut all = now.clone();
    all.extend(later.clone());
    StoredKey::save(&mut conn, &all).await?;
    operator.state.change_config(now.clone()).map_err(refused)?;
    for (key, value) in &all {
        operator.log("change config", format!("{key} = {value}"));
    }
    Ok(HttpResponse::Ok().json(json!({
        "applied": now.keys().collect::<Vec<_>>(),
        "restart_required": later.keys().collect::<Vec<_>>(),
        "config": operator.state.config().redacted(),
    })))
}

/// A change that cannot be made, as a form error on its key.
fn refused(error: ConfigError) -> ApiError {
    let (key, message) = match error {
        ConfigError::Change { key, message } => (key, message),
        ConfigError::Invalid { key, message } => (key.to_string(), message),
        ConfigError::Load(error) => (String::new(), error.to_string()),
    };
    // The key is one path segment: its dots are part of the name.
    let mut errors = FormErrors::default();
    errors.add_at(&[key.as_str()], "CONFIG_INVALID", message);
    errors.into()
}
