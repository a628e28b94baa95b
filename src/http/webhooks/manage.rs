//! The routes of members with MANAGE_WEBHOOKS: `POST`/`GET /channels/{channel_id}/webhooks`,
//! `GET /guilds/{guild_id}/webhooks`, and `GET`/`PATCH`/`DELETE /webhooks/{webhook_id}`.
//! Someone who cannot see the webhook's guild or channel learns nothing of it (10015).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use chrono::Utc;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::Value;

use super::{announce, audited, avatar_key, change, check_name, entry, remove, webhook_id, Patch};
use crate::audit::{action, Audit};
use crate::db::users::User;
use crate::db::webhooks::{kind, Webhook};
use crate::db::Connection;
use crate::events::Change;
use crate::http::access::ChannelAccess;
use crate::http::applications::caller_and;
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{InChannel, InGuild};
use crate::http::json::Json;
use crate::http::urls::PublicUrls;
use crate::permissions::bits;
use crate::rights;
use crate::state::AppState;
use crate::wire::webhook::{self as wire, Shown};

/// Length of a webhook's token (letters and digits).
const TOKEN_LENGTH: usize = 68;

/// A guild text channel where `user_id` may manage webhooks.
async fn managed_channel(
    conn: &mut Connection,
    channel_id: i64,
    user_id: i64,
) -> Result<ChannelAccess, ApiError> {
    let access = ChannelAccess::load(conn, channel_id, user_id).await?;
    manages(&access)?;
    Ok(access)
}

/// Whether the channel is a guild text channel whose webhooks the caller may manage.
fn manages(access: &ChannelAccess) -> Result<(), ApiError> {
    access.guild()?;
    access.require(bits::MANAGE_WEBHOOKS)?;
    if !access.is_text() {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50024,
            message: "Cannot execute action on this channel type",
        });
    }
    Ok(())
}

/// The webhook `webhook_id`, if `user_id` may manage the webhooks of its channel; 10015 if
/// they cannot see it at all.
async fn managed(
    conn: &mut Connection,
    webhook_id: i64,
    user_id: i64,
) -> Result<Webhook, ApiError> {
    let webhook = Webhook::find(conn, webhook_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Webhook))?;
    match managed_channel(conn, webhook.channel_id, user_id).await {
        Ok(_) => Ok(webhook),
        Err(ApiError::Unknown(_) | ApiError::MissingAccess) => {
            Err(ApiError::Unknown(Unknown::Webhook))
        }
        Err(other) => Err(other),
    }
}

/// Webhooks as their managers see them, with their creators.
async fn rendered(
    req: &HttpRequest,
    state: &AppState,
    conn: &mut Connection,
    webhooks: &[Webhook],
) -> Result<Vec<Value>, ApiError> {
    let creator_ids: Vec<i64> = webhooks.iter().filter_map(|w| w.user_id).collect();
    let creators = User::find_many(conn, &creator_ids).await?;
    let api = PublicUrls::of(req, &state.config()).api();
    Ok(webhooks
        .iter()
        .map(|webhook| {
            let creator = creators.iter().find(|u| Some(u.id) == webhook.user_id);
            wire::webhook(webhook, Shown::Managed { creator }, &api)
        })
        .collect())
}

async fn one(
    req: &HttpRequest,
    state: &AppState,
    conn: &mut Connection,
    webhook: Webhook,
) -> Result<HttpResponse, ApiError> {
    let mut list = rendered(req, state, conn, std::slice::from_ref(&webhook)).await?;
    let shown = list.pop().ok_or(ApiError::Unknown(Unknown::Webhook))?;
    Ok(HttpResponse::Ok().json(shown))
}

#[derive(Debug, Deserialize)]
pub struct CreateWebhook {
    name: String,
    /// A data URL.
    #[serde(default)]
    avatar: Option<String>,
}

/// `POST /channels/{channel_id}/webhooks`: a new incoming webhook, at most
/// `limits.channel_max_webhooks` per channel.
pub async fn create(
    req: HttpRequest,
    InChannel {
        session,
        access,
        conn,
        state,
        audit,
    }: InChannel<Audit>,
    Json(body): Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = access.channel.id;
    let user = &session.user;
    ApiError::require(user.rights, rights::CREATE_WEBHOOKS)?;
    manages(&access)?;
    let guild_id = access.guild()?.guild.id;
    let mut conn = conn.get().await?;
    let name = check_name("name", &body.name)?;
    let count = Webhook::of_channel(&mut conn, channel_id).await?.len();
    if u64::try_from(count).unwrap_or(u64::MAX) >= state.config().limits.channel_max_webhooks {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 30007,
            message: "Maximum number of webhooks reached",
        });
    }
    let id = state.snowflakes.next();
    let avatar = state
        .cdn
        .image_field("avatar", body.avatar.map(Some), avatar_key(id));
    let (avatar, mut conn) = state.unheld(conn, avatar).await?;
    let avatar = avatar.flatten();
    let webhook = Webhook {
        id,
        kind: kind::INCOMING,
        guild_id,
        channel_id,
        user_id: Some(user.id),
        name,
        avatar,
        token: Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LENGTH),
        application_id: None,
        created_at: Utc::now(),
    };
    let mut change = Change::audited(
        &state,
        entry(
            &state,
            &audit,
            Some(user.id),
            &webhook,
            action::WEBHOOK_CREATE,
        )
        .changes(crate::audit::changes(None, Some(&audited(&webhook)), &[])),
    );
    announce(&mut change, guild_id, &[channel_id]);
    let saved = change
        .commit(&mut conn, async |conn| Ok(webhook.insert(conn).await?))
        .await;
    if let Err(error) = saved {
        let avatar = webhook.avatar.as_deref();
        state
            .cdn
            .settle_image(false, None, avatar, avatar_key(id))
            .await;
        return Err(error);
    }
    one(&req, &state, &mut conn, webhook).await
}

/// `GET /channels/{channel_id}/webhooks`.
pub async fn of_channel(
    req: HttpRequest,
    InChannel {
        access,
        conn,
        state,
        ..
    }: InChannel,
) -> Result<HttpResponse, ApiError> {
    manages(&access)?;
    let mut conn = conn.get().await?;
    let webhooks = Webhook::of_channel(&mut conn, access.channel.id).await?;
    Ok(HttpResponse::Ok().json(rendered(&req, &state, &mut conn, &webhooks).await?))
}

/// `GET /guilds/{guild_id}/webhooks` (MANAGE_WEBHOOKS guild-wide).
pub async fn of_guild(
    req: HttpRequest,
    InGuild {
        access,
        conn,
        state,
        ..
    }: InGuild,
) -> Result<HttpResponse, ApiError> {
    access.require(bits::MANAGE_WEBHOOKS)?;
    let mut conn = conn.get().await?;
    let webhooks = Webhook::of_guild(&mut conn, access.guild.id).await?;
    Ok(HttpResponse::Ok().json(rendered(&req, &state, &mut conn, &webhooks).await?))
}

/// The webhook the path's `webhook_id` names, if the caller may manage the webhooks of its
/// channel (10015 if they cannot see it at all).
pub struct Managed {
    user_id: i64,
    webhook: Webhook,
}

impl FromRequest for Managed {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let webhook_id = webhook_id(req.match_info().get("webhook_id").unwrap_or_default());
        caller_and(req, payload, async move |session, conn| {
            let user_id = session.user.id;
            let webhook = managed(conn, webhook_id?, user_id).await?;
            Ok(Self { user_id, webhook })
        })
    }
}

/// `GET /webhooks/{webhook_id}`.
pub async fn get(
    req: HttpRequest,
    state: Data<AppState>,
    Managed { webhook, .. }: Managed,
) -> Result<HttpResponse, ApiError> {
    one(&req, &state, &mut *state.pool.get().await?, webhook).await
}

#[derive(Debug, Deserialize)]
pub struct ModifyWebhook {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::guilds::members::present")]
    avatar: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    channel_id: Option<i64>,
}

/// `PATCH /webhooks/{webhook_id}`: its name, avatar, or channel (another text channel of the
/// guild where the caller also manages webhooks).
pub async fn modify(
    req: HttpRequest,
    state: Data<AppState>,
    Managed { user_id, webhook }: Managed,
    audit: Audit,
    Json(body): Json<ModifyWebhook>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let channel_id = match body.channel_id.filter(|c| *c != webhook.channel_id) {
        Some(channel_id) => {
            let target = managed_channel(&mut conn, channel_id, user_id).await?;
            if target.channel.guild_id != Some(webhook.guild_id) {
                return Err(ApiError::Unknown(Unknown::Channel));
            }
            Some(channel_id)
        }
        None => None,
    };
    let patch = Patch {
        name: body.name,
        avatar: body.avatar,
        channel_id,
    };
    let (webhook, mut conn) = change(&state, conn, &audit, Some(user_id), webhook, patch).await?;
    one(&req, &state, &mut conn, webhook).await
}

/// `DELETE /webhooks/{webhook_id}`.
pub async fn delete(
    state: Data<AppState>,
    Managed { user_id, webhook }: Managed,
    audit: Audit,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    remove(&state, &mut conn, &audit, Some(user_id), &webhook).await?;
    Ok(HttpResponse::NoContent().finish())
}
