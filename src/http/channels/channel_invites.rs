//! `POST /channels/{channel_id}/invites` (CREATE_INSTANT_INVITE, and the CREATE_INVITES right):
//! a new invite to the channel's guild; `GET` (MANAGE_CHANNELS): the channel's usable invites
//! with their metadata. INVITE_CREATE to those who manage channels.

use actix_web::web::{self, Data, Path};
use actix_web::HttpResponse;
use chrono::{Duration, Utc};
use serde::Deserialize;
use spacebar_actors::guild::Audience;
use spacebar_actors::EventName;

use diesel_async::AsyncConnection;

use crate::audit::{action, changes, Audit};
use crate::db::channels::kind;
use crate::db::invites::Invite;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, FormErrors};
use crate::http::invites::{audit_object, describe, describe_all, new_code};
use crate::http::json::Json;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::rights;
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/channels/{channel_id}/invites", web::post().to(create))
        .route("/channels/{channel_id}/invites", web::get().to(list));
}

/// Codes tried before giving up (a collision among 62^8 codes is already unlikely).
const CODE_ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize)]
pub struct CreateInvite {
    /// Seconds, 0 (never) to 604800; 86400 when absent.
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    max_age: Option<i64>,
    /// 0 (unlimited) to 100.
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    max_uses: Option<i64>,
    temporary: Option<bool>,
    /// Without it, an existing invite with the same settings is handed back.
    unique: Option<bool>,
}

pub async fn create(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<String>,
    Json(body): Json<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    ApiError::require(session.user.rights, rights::CREATE_INVITES)?;
    let mut errors = FormErrors::default();
    let max_age = ranged(&mut errors, "max_age", body.max_age, 86_400, 604_800);
    let max_uses = ranged(&mut errors, "max_uses", body.max_uses, 0, 100);
    errors.into_result()?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    let guild_id = access.guild()?.guild.id;
    if access.channel.kind == kind::GUILD_CATEGORY {
        return Err(ApiError::wrong_channel_type());
    }
    access.require(bits::CREATE_INSTANT_INVITE)?;
    let now = Utc::now();
    let mut invite = Invite {
        code: String::new(),
        guild_id,
        channel_id,
        inviter_id: Some(session.user.id),
        max_age,
        max_uses,
        uses: 0,
        temporary: body.temporary.unwrap_or(false),
        created_at: now,
        expires_at: (max_age > 0).then(|| now + Duration::seconds(i64::from(max_age))),
    };
    if body.unique != Some(true) {
        if let Some(existing) = Invite::find_reusable(&mut conn, &invite).await? {
            return Ok(HttpResponse::Ok().json(describe(&mut conn, &existing).await?));
        }
    }
    let mut logged = None;
    for _ in 0..CODE_ATTEMPTS {
        invite.code = new_code();
        let entry = audit
            .entry(
                &state,
                guild_id,
                session.user.id,
                action::INVITE_CREATE,
                None,
            )
            .changes(changes(None, Some(&audit_object(&invite)), &[]));
        let inserted = conn
            .transaction(async |conn| {
                let inserted = invite.insert(conn).await?;
                if inserted {
                    entry.write(conn).await?;
                }
                Ok::<_, diesel::result::Error>(inserted)
            })
            .await?;
        if inserted {
            logged = Some(entry);
            break;
        }
    }
    let Some(entry) = logged else {
        return Err(ApiError::internal("no free invite code"));
    };
    state.audit_logged(&entry)?;
    state.guild_event(
        guild_id,
        EventName::InviteCreate,
        &crate::wire::invite::created(&invite, Some(&session.user)),
        Audience::Permission(bits::MANAGE_CHANNELS),
        Vec::new(),
    )?;
    Ok(HttpResponse::Ok().json(describe(&mut conn, &invite).await?))
}

pub async fn list(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path)?;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, session.user.id).await?;
    let guild = &access.guild()?.guild;
    access.require(bits::MANAGE_CHANNELS)?;
    let invites = Invite::of_channel(&mut conn, channel_id).await?;
    Ok(HttpResponse::Ok().json(describe_all(&mut conn, guild, &invites).await?))
}

/// A whole number within `0..=max`, `default` when absent; a form error otherwise.
fn ranged(errors: &mut FormErrors, field: &str, value: Option<i64>, default: i32, max: i32) -> i32 {
    match value.map(i32::try_from) {
        None => default,
        Some(Ok(value)) if (0..=max).contains(&value) => value,
        Some(Ok(value)) if value < 0 => {
            errors.add(
                field,
                "NUMBER_TYPE_MIN",
                "int value should be greater than or equal to 0.",
            );
            default
        }
        Some(_) => {
            errors.add(
                field,
                "NUMBER_TYPE_MAX",
                format!("int value should be less than or equal to {max}."),
            );
            default
        }
    }
}
