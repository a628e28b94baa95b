//! Webhooks: `/channels/{channel_id}/webhooks`, `/guilds/{guild_id}/webhooks` and
//! `/webhooks/{webhook_id}` for members with MANAGE_WEBHOOKS (`manage`); `/webhooks/{id}/{token}`
//! for whoever holds the token: the webhook itself (`token`), posting as it and its messages
//! (`execute`). The token routes are shared with interaction follow-ups
//! (`/webhooks/{application_id}/{token}`): an id and token that name no webhook are handed to
//! `interactions::followups`.
//!
//! A webhook's message has no user for an author: it names the webhook and keeps the name and
//! avatar it was sent with. Every change sends WEBHOOKS_UPDATE `{guild_id, channel_id}` to the
//! members with MANAGE_WEBHOOKS, and is written to the audit log (50, 51, 52).

mod execute;
mod manage;
mod token;

use actix_web::web;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::{action, Audit, Entry};
use crate::db::guilds::Guild;
use crate::db::webhooks::{Webhook, WebhookChanges};
use crate::db::{Connection, Pooled};
use crate::events::{Change, Event};
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, FormErrors, Unknown};
use crate::state::AppState;
use crate::storage::{ImageArea, Key};
use crate::wire::guild::id;

/// Longest webhook name (and `username` override), in characters.
const MAX_NAME: usize = 80;
/// Words Discord keeps out of webhook names, so no webhook poses as the platform.
const FORBIDDEN_NAMES: [&str; 2] = ["clyde", "discord"];

pub fn configure(cfg: &mut web::ServiceConfig) {
    const CHANNEL: &str = "/channels/{channel_id}/webhooks";
    const WEBHOOK: &str = "/webhooks/{webhook_id}";
    const TOKEN: &str = "/webhooks/{webhook_id}/{token}";
    const MESSAGE: &str = "/webhooks/{webhook_id}/{token}/messages/{message_id}";
    cfg.route(CHANNEL, web::post().to(manage::create))
        .route(CHANNEL, web::get().to(manage::of_channel))
        .route(
            "/guilds/{guild_id}/webhooks",
            web::get().to(manage::of_guild),
        )
        .route(WEBHOOK, web::get().to(manage::get))
        .route(WEBHOOK, web::patch().to(manage::modify))
        .route(WEBHOOK, web::delete().to(manage::delete))
        .route(TOKEN, web::get().to(token::get))
        .route(TOKEN, web::patch().to(token::modify))
        .route(TOKEN, web::delete().to(token::delete))
        .route(TOKEN, web::post().to(execute::execute))
        .route(MESSAGE, web::get().to(execute::get_message))
        .route(MESSAGE, web::patch().to(execute::edit_message))
        .route(MESSAGE, web::delete().to(execute::delete_message));
}

/// The webhook `webhook_id` if `token` is its token. Tokens are compared by their digests, so
/// the time a wrong guess takes says nothing about the right one.
async fn by_token(
    conn: &mut Connection,
    webhook_id: i64,
    token: &str,
) -> Result<Option<Webhook>, ApiError> {
    let found = Webhook::find(conn, webhook_id).await?;
    Ok(found.filter(|w| Sha256::digest(&w.token) == Sha256::digest(token)))
}

/// A path's webhook id; anything that is not one names no webhook (10015).
fn webhook_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or(ApiError::Unknown(Unknown::Webhook))
}

/// A webhook name (or `field`'s username override): 1 to 80 characters, without "clyde" or
/// "discord"; 50035 otherwise.
fn check_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > MAX_NAME {
        return Err(FormErrors::field(
            field,
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 1 and {MAX_NAME} in length."),
        )
        .into());
    }
    let lower = name.to_lowercase();
    if let Some(word) = FORBIDDEN_NAMES.iter().find(|w| lower.contains(*w)) {
        return Err(FormErrors::field(
            field,
            "USERNAME_INVALID_CONTAINS",
            format!("Username cannot contain \"{word}\""),
        )
        .into());
    }
    Ok(name.to_string())
}

/// Where a webhook's avatar `hash` is stored: `avatars/{webhook_id}/{hash}`, so the CDN serves
/// it where clients look for a message author's avatar. Files are kept when the avatar changes
/// or the webhook goes: the messages it sent still show them.
fn avatar_key(webhook_id: i64) -> impl Fn(&str) -> Option<Key> {
    move |hash| Key::image(ImageArea::Avatar, webhook_id, hash)
}

/// The channel as a webhook writes in it. A webhook is no member: it writes as its guild's
/// owner would (it sees every channel, and may mention anyone; `allowed_mentions` narrows it).
async fn writer_access(
    conn: &mut Connection,
    guild_id: i64,
    channel_id: i64,
) -> Result<ChannelAccess, ApiError> {
    let guild = Guild::find(conn, guild_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Webhook))?;
    ChannelAccess::load(conn, channel_id, guild.owner_id).await
}

/// The webhook as the audit log records it, with Discord's keys.
fn audited(webhook: &Webhook) -> Value {
    json!({
        "name": webhook.name,
        "type": webhook.kind,
        "channel_id": id(webhook.channel_id),
        "avatar_hash": webhook.avatar,
    })
}

/// WEBHOOKS_UPDATE for each of `channel_ids` (two when a webhook moved), to the members who
/// manage webhooks.
fn announce(change: &mut Change, guild_id: i64, channel_ids: &[i64]) {
    let mut channel_ids = channel_ids.to_vec();
    channel_ids.dedup();
    for channel_id in channel_ids {
        change.emit(Event::WebhooksUpdate {
            guild_id,
            channel_id,
        });
    }
}

/// What a PATCH changes: `None` leaves a field; `avatar` is a data URL, or null to clear it.
#[derive(Debug, Default)]
struct Patch {
    name: Option<String>,
    avatar: Option<Option<String>>,
    channel_id: Option<i64>,
}

/// Changes a webhook (`actor` made the change, or nobody: its token did), writing the audit
/// entry in the same transaction; then WEBHOOKS_UPDATE. The webhook as it is now, and the
/// connection `conn` gave way to while the avatar was stored.
async fn change(
    state: &AppState,
    conn: Pooled,
    audit: &Audit,
    actor: Option<i64>,
    webhook: Webhook,
    patch: Patch,
) -> Result<(Webhook, Pooled), ApiError> {
    let name = patch
        .name
        .map(|name| check_name("name", &name))
        .transpose()?;
    let avatar = state
        .cdn
        .image_field("avatar", patch.avatar, avatar_key(webhook.id));
    let (avatar, mut conn) = state.unheld(conn, avatar).await?;
    let changes = WebhookChanges {
        name,
        avatar,
        channel_id: patch.channel_id,
    };
    let new = Webhook {
        name: changes.name.clone().unwrap_or_else(|| webhook.name.clone()),
        avatar: changes
            .avatar
            .clone()
            .unwrap_or_else(|| webhook.avatar.clone()),
        channel_id: changes.channel_id.unwrap_or(webhook.channel_id),
        ..webhook.clone()
    };
    let entry = entry(state, audit, actor, &webhook, action::WEBHOOK_UPDATE).changes(
        crate::audit::changes(Some(&audited(&webhook)), Some(&audited(&new)), &[]),
    );
    let mut change = Change::new(state);
    if !entry.is_empty() {
        change.audit(entry);
    }
    announce(
        &mut change,
        webhook.guild_id,
        &[webhook.channel_id, new.channel_id],
    );
    let saved = change
        .commit(&mut conn, async |conn| {
            Webhook::update(conn, webhook.id, &changes)
                .await?
                .ok_or(ApiError::Unknown(Unknown::Webhook))
        })
        .await;
    let updated = match saved {
        Ok(updated) => updated,
        Err(error) => {
            // The new avatar is no one's: remove it. (Old ones stay; see `avatar_key`.)
            let new_avatar = new.avatar.as_deref();
            if new_avatar != webhook.avatar.as_deref() {
                state
                    .cdn
                    .settle_image(false, None, new_avatar, avatar_key(webhook.id))
                    .await;
            }
            return Err(error);
        }
    };
    Ok((updated, conn))
}

/// Deletes a webhook with its audit entry (by `actor`, or nobody: its token did); then
/// WEBHOOKS_UPDATE. Its token stops working at once; the messages it sent stay.
async fn remove(
    state: &AppState,
    conn: &mut Connection,
    audit: &Audit,
    actor: Option<i64>,
    webhook: &Webhook,
) -> Result<(), ApiError> {
    let mut change =
        Change::audited(
            state,
            entry(state, audit, actor, webhook, action::WEBHOOK_DELETE)
                .changes(crate::audit::changes(Some(&audited(webhook)), None, &[])),
        );
    announce(&mut change, webhook.guild_id, &[webhook.channel_id]);
    // Nothing deleted: the rollback takes the entry back (no entry for a deletion that did not
    // happen), and no one is told.
    change
        .commit(conn, async |conn| {
            match Webhook::delete(conn, webhook.id).await? {
                true => Ok(()),
                false => Err(ApiError::Unknown(Unknown::Webhook)),
            }
        })
        .await
}

/// An audit entry about `webhook` by `actor` (or by nobody).
fn entry(
    state: &AppState,
    audit: &Audit,
    actor: Option<i64>,
    webhook: &Webhook,
    action_type: i32,
) -> Entry {
    let entry = audit.entry(
        state,
        webhook.guild_id,
        actor.unwrap_or_default(),
        action_type,
        Some(webhook.id),
    );
    if actor.is_some() {
        entry
    } else {
        entry.by_nobody()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_discord() {
        assert_eq!(
            check_name("name", "  Deploys ").ok().as_deref(),
            Some("Deploys")
        );
        assert!(check_name("name", "").is_err());
        assert!(check_name("name", &"x".repeat(81)).is_err());
        assert!(check_name("name", &"é".repeat(80)).is_ok());
        assert!(check_name("name", "My Clyde bot").is_err());
        assert!(check_name("username", "DISCORD news").is_err());
    }
}
