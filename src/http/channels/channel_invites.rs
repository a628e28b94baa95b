//! `POST /channels/{channel_id}/invites` (CREATE_INSTANT_INVITE, and the CREATE_INVITES right):
//! a new invite to the channel's guild; `GET` (MANAGE_CHANNELS): the channel's usable invites
//! with their metadata. INVITE_CREATE to those who manage channels.

use actix_web::web;
use actix_web::HttpResponse;
use chrono::{Duration, Utc};
use serde::Deserialize;

use crate::audit::{action, changes, Audit};
use crate::db::channels::kind;
use crate::db::invites::Invite;
use crate::db::users::User;
use crate::db::Connection;
use crate::events::{Change, Event};
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::InChannel;
use crate::http::invites::{audit_object, describe, describe_all, new_code};
use crate::http::json::Json;
use crate::permissions::bits;
use crate::rights;
use crate::state::AppState;

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
    caller: InChannel<Audit>,
    Json(body): Json<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let (user, access) = (&caller.session.user, &caller.access);
    ApiError::require(user.rights, rights::CREATE_INVITES)?;
    let mut errors = FormErrors::default();
    let max_age = ranged(&mut errors, "max_age", body.max_age, 86_400, 604_800);
    let max_uses = ranged(&mut errors, "max_uses", body.max_uses, 0, 100);
    errors.into_result()?;
    let guild_id = access.guild()?.guild.id;
    if access.channel.kind == kind::GUILD_CATEGORY {
        return Err(ApiError::wrong_channel_type());
    }
    access.require(bits::CREATE_INSTANT_INVITE)?;
    let mut conn = caller.conn.get().await?;
    let now = Utc::now();
    let mut invite = Invite {
        code: String::new(),
        guild_id,
        channel_id: access.channel.id,
        inviter_id: Some(user.id),
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
    for _ in 0..CODE_ATTEMPTS {
        invite.code = new_code();
        if inserted(&caller.state, &mut conn, &caller.audit, user, &invite).await? {
            return Ok(HttpResponse::Ok().json(describe(&mut conn, &invite).await?));
        }
    }
    Err(ApiError::internal("no free invite code"))
}

/// Saves `invite` with its audit entry and tells INVITE_CREATE to those who manage channels;
/// `false` (nothing written, no one told) if its code is taken.
async fn inserted(
    state: &AppState,
    conn: &mut Connection,
    audit: &Audit,
    inviter: &User,
    invite: &Invite,
) -> Result<bool, ApiError> {
    let mut change = Change::audited(
        state,
        audit
            .entry(
                state,
                invite.guild_id,
                inviter.id,
                action::INVITE_CREATE,
                None,
            )
            .changes(changes(None, Some(&audit_object(invite)), &[])),
    );
    change.emit(Event::InviteCreate {
        guild_id: invite.guild_id,
        invite: crate::wire::invite::created(invite, Some(inviter)),
    });
    let mut taken = false;
    let saved = change
        .commit(conn, async |conn| {
            taken = !invite.insert(conn).await?;
            // Rolls the audit entry back with it.
            match taken {
                true => Err(ApiError::internal("invite code taken")),
                false => Ok(()),
            }
        })
        .await;
    match saved {
        Err(_) if taken => Ok(false),
        saved => saved.map(|()| true),
    }
}

pub async fn list(caller: InChannel) -> Result<HttpResponse, ApiError> {
    let access = caller.access;
    let guild = &access.guild()?.guild;
    access.require(bits::MANAGE_CHANNELS)?;
    let mut conn = caller.conn.get().await?;
    let invites = Invite::of_channel(&mut conn, access.channel.id).await?;
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
