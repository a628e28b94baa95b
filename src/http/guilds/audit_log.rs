//! `GET /guilds/{guild_id}/audit-logs` (VIEW_AUDIT_LOG): the guild's audit log, newest first,
//! narrowed by `user_id` (who acted), `action_type`, `before`/`after` (entry ids) and `limit`
//! (1–100, 50 by default), with the users and webhooks the entries name. Entries are written by the routes
//! themselves (see `crate::audit`).

use actix_web::web::{self, Query};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::members::query_number;
use crate::audit::{action, wire};
use crate::db::audit_log::{AuditLogEntry, Filter};
use crate::db::users::User;
use crate::db::webhooks::Webhook;
use crate::db::Connection;
use crate::http::error::ApiError;
use crate::http::extractors::InGuild;
use crate::http::snowflake;
use crate::http::urls::PublicUrls;
use crate::permissions::bits;
use crate::state::AppState;
use crate::wire::user::PublicUser;
use crate::wire::webhook::{self, Shown};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds/{guild_id}/audit-logs", web::get().to(list));
}

#[derive(Debug, Deserialize)]
pub struct AuditLogQuery {
    user_id: Option<String>,
    action_type: Option<String>,
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    caller: InGuild,
    query: Query<AuditLogQuery>,
) -> Result<HttpResponse, ApiError> {
    let InGuild { access, conn, .. } = caller;
    let guild_id = access.guild.id;
    let id = |field: &str, text: &Option<String>| {
        text.as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| snowflake(field, t))
            .transpose()
    };
    let action_type = match query.action_type.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => Some(query_number("action_type", Some(text), 0, 1, 255)?),
        None => None,
    };
    let filter = Filter {
        user_id: id("user_id", &query.user_id)?,
        action_type: action_type.and_then(|a| i32::try_from(a).ok()),
        before: id("before", &query.before)?,
        after: id("after", &query.after)?,
    };
    let limit = query_number("limit", query.limit.as_deref(), 50, 1, 100)?;
    access.require(bits::VIEW_AUDIT_LOG)?;
    let mut conn = conn.get().await?;
    let entries = AuditLogEntry::page(&mut conn, guild_id, filter, limit).await?;
    let mut user_ids: Vec<i64> = entries
        .iter()
        .flat_map(|e| [e.user_id, e.target_id])
        .flatten()
        .collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let users: Vec<PublicUser> = User::find_many(&mut conn, &user_ids)
        .await?
        .iter()
        .map(PublicUser::from)
        .collect();
    let webhooks = named_webhooks(&mut conn, &req, &caller.state, guild_id, &entries).await?;
    Ok(HttpResponse::Ok().json(json!({
        "audit_log_entries": entries.iter().map(wire).collect::<Vec<_>>(),
        "users": users,
        "integrations": [],
        "webhooks": webhooks,
        "guild_scheduled_events": [],
        "threads": [],
        "application_commands": [],
        "auto_moderation_rules": [],
    })))
}

/// The guild's webhooks that webhook entries are about (those still there), without tokens.
async fn named_webhooks(
    conn: &mut Connection,
    req: &HttpRequest,
    state: &AppState,
    guild_id: i64,
    entries: &[AuditLogEntry],
) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<i64> = entries
        .iter()
        .filter(|e| (action::WEBHOOK_CREATE..=action::WEBHOOK_DELETE).contains(&e.action_type))
        .filter_map(|e| e.target_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let api = PublicUrls::of(req, &state.config()).api();
    Ok(Webhook::of_guild_among(conn, guild_id, &ids)
        .await?
        .iter()
        .map(|w| webhook::webhook(w, Shown::Named, &api))
        .collect())
}
