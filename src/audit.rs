//! The audit log: what a moderation or configuration route writes about itself.
//!
//! A handler gets an [`Audit`] (the request's `X-Audit-Log-Reason`; guild and channel routes
//! through their caller, `InGuild<Audit>` / `InChannel<Audit>`), makes an [`Entry`] for
//! what it is about to do, writes it with [`Entry::write`] in the same transaction as the change
//! itself, and after the commit hands it to [`AppState::audit_logged`], which sends
//! GUILD_AUDIT_LOG_ENTRY_CREATE to the members with VIEW_AUDIT_LOG. `changes` are built from
//! the JSON objects clients already see, so their keys are Discord's.

use diesel_async::AsyncConnection;
use futures_util::future::BoxFuture;
use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chrono::Utc;
use serde_json::{json, Map, Value};

use crate::db::audit_log::AuditLogEntry;
use crate::db::Connection;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::wire::guild::{id, opt_id};

/// Discord's audit log action types (those this server writes).
pub mod action {
    pub const GUILD_UPDATE: i32 = 1;
    pub const CHANNEL_CREATE: i32 = 10;
    pub const CHANNEL_UPDATE: i32 = 11;
    pub const CHANNEL_DELETE: i32 = 12;
    pub const CHANNEL_OVERWRITE_CREATE: i32 = 13;
    pub const CHANNEL_OVERWRITE_UPDATE: i32 = 14;
    pub const CHANNEL_OVERWRITE_DELETE: i32 = 15;
    pub const MEMBER_KICK: i32 = 20;
    pub const MEMBER_BAN_ADD: i32 = 22;
    pub const MEMBER_BAN_REMOVE: i32 = 23;
    pub const MEMBER_UPDATE: i32 = 24;
    pub const MEMBER_ROLE_UPDATE: i32 = 25;
    pub const MEMBER_MOVE: i32 = 26;
    pub const MEMBER_DISCONNECT: i32 = 27;
    pub const BOT_ADD: i32 = 28;
    pub const ROLE_CREATE: i32 = 30;
    pub const ROLE_UPDATE: i32 = 31;
    pub const ROLE_DELETE: i32 = 32;
    pub const INVITE_CREATE: i32 = 40;
    pub const INVITE_DELETE: i32 = 42;
    pub const EMOJI_CREATE: i32 = 60;
    pub const EMOJI_UPDATE: i32 = 61;
    pub const EMOJI_DELETE: i32 = 62;
    pub const MESSAGE_DELETE: i32 = 72;
    pub const MESSAGE_BULK_DELETE: i32 = 73;
    pub const MESSAGE_PIN: i32 = 74;
    pub const MESSAGE_UNPIN: i32 = 75;
    pub const WEBHOOK_CREATE: i32 = 50;
    pub const WEBHOOK_UPDATE: i32 = 51;
    pub const WEBHOOK_DELETE: i32 = 52;
    pub const STICKER_CREATE: i32 = 90;
    pub const STICKER_UPDATE: i32 = 91;
    pub const STICKER_DELETE: i32 = 92;
}

/// Discord keeps at most this many characters of a reason.
pub const MAX_REASON: usize = 512;

/// Keys no change lists: identities, and what is carried elsewhere in the entry.
const NEVER_CHANGED: [&str; 4] = ["id", "guild_id", "user", "flags"];

/// The request's `X-Audit-Log-Reason`: URL-encoded, as libraries send it; trimmed, at most
/// [`MAX_REASON`] characters, none when empty.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub reason: Option<String>,
}

impl FromRequest for Audit {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::of(req))
    }
}

impl Audit {
    /// The request's reason; 50035 when it has a NUL.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let header = req
            .headers()
            .get("X-Audit-Log-Reason")
            .and_then(|v| v.to_str().ok())
            .map(percent_decode);
        if header.as_ref().is_some_and(|text| text.contains('\0')) {
            return Err(crate::http::json::nul_error("X-Audit-Log-Reason").into());
        }
        let reason = header.and_then(|text| clean_reason(&text));
        Ok(Self { reason })
    }

    /// An entry about `target_id` by `user_id` in `guild_id`, with no changes yet.
    pub fn entry(
        &self,
        state: &AppState,
        guild_id: i64,
        user_id: i64,
        action_type: i32,
        target_id: Option<i64>,
    ) -> Entry {
        Entry(AuditLogEntry {
            id: state.snowflakes.next(),
            guild_id,
            user_id: Some(user_id),
            target_id,
            action_type,
            changes: Value::Array(Vec::new()),
            options: None,
            reason: self.reason.clone(),
            created_at: Utc::now(),
        })
    }
}

/// A reason as stored: trimmed, cut to [`MAX_REASON`] characters, `None` when empty.
pub fn clean_reason(text: &str) -> Option<String> {
    Some(text.trim().chars().take(MAX_REASON).collect::<String>()).filter(|r| !r.is_empty())
}

/// One audit log entry about to be written.
#[derive(Debug, Clone)]
pub struct Entry(pub AuditLogEntry);

impl Entry {
    /// `[{key, old_value, new_value}]`, from [`changes`].
    pub fn changes(mut self, changes: Vec<Value>) -> Self {
        self.0.changes = Value::Array(changes);
        self
    }

    /// The action's `options` (values are strings, as on Discord).
    pub fn options(mut self, options: Value) -> Self {
        self.0.options = Some(options);
        self
    }

    /// The entry with no one named as acting: a change made with a webhook's token.
    pub fn by_nobody(mut self) -> Self {
        self.0.user_id = None;
        self
    }

    /// Whether it records no change at all.
    pub fn is_empty(&self) -> bool {
        self.0.changes.as_array().is_none_or(Vec::is_empty)
    }

    /// Writes it; run it in the transaction of the change it records.
    pub async fn write(&self, conn: &mut Connection) -> diesel::QueryResult<()> {
        self.0.insert(conn).await
    }

    /// Runs a deletion (`delete` says whether there was anything to delete) and, when it
    /// deleted something, writes `entries` with it, in one transaction: no entry for a deletion
    /// that did not happen, no deletion without its entry.
    pub async fn with_deletion(
        entries: &[Entry],
        conn: &mut Connection,
        delete: impl for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, diesel::QueryResult<bool>>
            + Send,
    ) -> diesel::QueryResult<bool> {
        conn.transaction(async |conn| {
            let deleted = delete(conn).await?;
            if deleted {
                Self::write_all(entries, conn).await?;
            }
            Ok(deleted)
        })
        .await
    }

    /// GUILD_AUDIT_LOG_ENTRY_CREATE, for the members with VIEW_AUDIT_LOG.
    pub fn event(&self) -> crate::events::Event {
        crate::events::Event::GuildAuditLogEntryCreate {
            guild_id: self.0.guild_id,
            entry: wire(&self.0),
        }
    }

    /// Writes several (one change may make more than one entry).
    pub async fn write_all(entries: &[Entry], conn: &mut Connection) -> diesel::QueryResult<()> {
        for entry in entries {
            entry.write(conn).await?;
        }
        Ok(())
    }
}

/// An entry as clients see it (ids as strings; empty parts left out, as Discord does).
pub fn wire(entry: &AuditLogEntry) -> Value {
    let mut value = json!({
        "id": id(entry.id),
        "user_id": opt_id(entry.user_id),
        "target_id": opt_id(entry.target_id),
        "action_type": entry.action_type,
    });
    if entry.changes.as_array().is_some_and(|c| !c.is_empty()) {
        value["changes"] = entry.changes.clone();
    }
    if let Some(options) = &entry.options {
        value["options"] = options.clone();
    }
    if let Some(reason) = &entry.reason {
        value["reason"] = reason.clone().into();
    }
    value
}

/// The changes between two versions of an object as clients see it: `old` alone for a
/// deletion, `new` alone for a creation, both for an update (only the keys that differ).
/// Keys in `skip` (and identities) are left out; so are null values of created or deleted
/// objects.
pub fn changes(old: Option<&Value>, new: Option<&Value>, skip: &[&str]) -> Vec<Value> {
    let empty = Map::new();
    let old = old.and_then(Value::as_object);
    let new = new.and_then(Value::as_object);
    let (before, after) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut keys: Vec<&String> = after.keys().chain(before.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|key| !NEVER_CHANGED.contains(&key.as_str()) && !skip.contains(&key.as_str()))
        .filter_map(|key| {
            let old_value = old.and_then(|o| o.get(key)).filter(|v| !v.is_null());
            let new_value = new.and_then(|n| n.get(key)).filter(|v| !v.is_null());
            if old_value == new_value {
                return None;
            }
            let mut change = json!({ "key": key });
            if let Some(value) = old_value {
                change["old_value"] = value.clone();
            }
            if let Some(value) = new_value {
                change["new_value"] = value.clone();
            }
            Some(change)
        })
        .collect()
}

/// Decodes `%XX` escapes; anything malformed stays as is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                index += 3;
            }
            None => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_url_decoded() {
        assert_eq!(percent_decode("spam%20and%20abuse"), "spam and abuse");
        assert_eq!(percent_decode("caf%C3%A9 100%"), "café 100%");
        assert_eq!(percent_decode("%zz%2"), "%zz%2");
    }

    #[test]
    fn reasons_are_trimmed_and_cut() {
        assert_eq!(clean_reason("  "), None);
        assert_eq!(clean_reason(" why ").as_deref(), Some("why"));
        let long = "é".repeat(600);
        assert_eq!(clean_reason(&long).map(|r| r.chars().count()), Some(512));
    }

    #[test]
    fn changes_list_only_what_differs() {
        let old = json!({"id": "1", "name": "a", "topic": null, "nsfw": false});
        let new = json!({"id": "1", "name": "b", "topic": "t", "nsfw": false});
        assert_eq!(
            changes(Some(&old), Some(&new), &[]),
            vec![
                json!({"key": "name", "old_value": "a", "new_value": "b"}),
                json!({"key": "topic", "new_value": "t"}),
            ]
        );
        assert_eq!(
            changes(None, Some(&new), &["topic"]),
            vec![
                json!({"key": "name", "new_value": "b"}),
                json!({"key": "nsfw", "new_value": false}),
            ]
        );
        assert_eq!(
            changes(Some(&old), None, &["nsfw"]),
            vec![json!({"key": "name", "old_value": "a"})]
        );
    }
}
