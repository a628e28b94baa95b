//! `/_spacebar/admin/bans`: instance bans. `POST {"user_id"} ` bans an account (it is disabled
//! and its sessions close) and `POST {"ip"}` an address (every request from it is refused);
//! `GET` lists them; `DELETE /…/{ban_id}` lifts one.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::web::{self, Path};
use actix_web::HttpResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{users, Operator};
use crate::db::instance_bans::InstanceBan;
use crate::http::error::{ApiError, FormErrors};
use crate::http::json::Json;
use crate::http::snowflake;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/bans", web::post().to(create))
        .route("/bans", web::get().to(list))
        .route("/bans/{ban_id}", web::delete().to(lift));
}

fn view(ban: &InstanceBan) -> Value {
    json!({
        "id": ban.id.to_string(),
        "user_id": ban.user_id.map(|id| id.to_string()),
        "ip": ban.ip,
        "reason": ban.reason,
        "created_by": ban.created_by.map(|id| id.to_string()),
        "created_at": ban.created_at,
    })
}

#[derive(Debug, Deserialize)]
struct Create {
    user_id: Option<String>,
    ip: Option<String>,
    reason: Option<String>,
}

async fn create(operator: Operator, Json(body): Json<Create>) -> Result<HttpResponse, ApiError> {
    let mut ban = InstanceBan {
        id: operator.state.snowflakes.next(),
        user_id: None,
        ip: None,
        reason: body.reason,
        created_by: Some(operator.user.id),
        created_at: Utc::now(),
    };
    let mut banned_ip = None;
    match (body.user_id, body.ip) {
        (Some(user_id), None) => {
            let user = users::find(&operator.state, &user_id).await?;
            if user.id == operator.user.id {
                return Err(
                    FormErrors::field("user_id", "BAN_SELF", "You cannot ban yourself.").into(),
                );
            }
            ban.user_id = Some(user.id);
        }
        (None, Some(ip)) => {
            let ip: IpAddr = ip.trim().parse().map_err(|_| {
                FormErrors::field("ip", "IP_INVALID", "Not an IPv4 or IPv6 address.")
            })?;
            ban.ip = Some(ip.to_string());
            banned_ip = Some(ip);
        }
        _ => {
            return Err(FormErrors::field(
                "user_id",
                "BASE_TYPE_REQUIRED",
                "Give exactly one of user_id and ip.",
            )
            .into())
        }
    }
    let mut conn = operator.state.pool.get().await?;
    if !ban.insert_new(&mut conn).await? {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 0,
            message: "Already banned",
        });
    }
    if let Some(user_id) = ban.user_id {
        users::set_disabled(&operator.state, user_id, true).await?;
    }
    if let Some(ip) = banned_ip {
        operator.state.set_banned(ip, true);
    }
    operator.log(
        "ban",
        ban.user_id.map_or_else(
            || format!("ip {}", ban.ip.clone().unwrap_or_default()),
            |id| format!("user {id}"),
        ),
    );
    Ok(HttpResponse::build(StatusCode::CREATED).json(view(&ban)))
}

async fn list(operator: Operator) -> Result<HttpResponse, ApiError> {
    let mut conn = operator.state.pool.get().await?;
    let bans = InstanceBan::all(&mut conn).await?;
    Ok(HttpResponse::Ok().json(bans.iter().map(view).collect::<Vec<_>>()))
}

async fn lift(operator: Operator, path: Path<String>) -> Result<HttpResponse, ApiError> {
    let ban_id = snowflake("ban_id", &path)?;
    let mut conn = operator.state.pool.get().await?;
    let ban = InstanceBan::delete(&mut conn, ban_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Some(user_id) = ban.user_id {
        users::set_disabled(&operator.state, user_id, false).await?;
    }
    if let Some(ip) = ban.ip.as_deref().and_then(|ip| ip.parse().ok()) {
        operator.state.set_banned(ip, false);
    }
    operator.log("lift ban", ban.id);
    Ok(HttpResponse::NoContent().finish())
}
