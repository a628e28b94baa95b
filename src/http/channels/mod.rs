//! `/channels/*`: a channel itself, its permission overwrites, typing, a DM call's ringing. Messages, reactions,
//! pins and invites of a channel live in their own files below.

mod attachments;
mod call;
mod channel_delete;
mod channel_get;
mod channel_invites;
mod channel_modify;
pub mod messages;
mod permissions;
mod recipients;
mod typing;

pub use attachments::upload_lifetime;
pub use channel_delete::deleted;
pub use messages::files::remove_files;

use actix_web::web;
use serde::Deserialize;

use crate::db::channels::{kind, OverwriteRow};
use crate::http::error::{ApiError, FormErrors};

pub fn configure(cfg: &mut web::ServiceConfig) {
    messages::configure(cfg);
    cfg.route(
        "/channels/{channel_id}/attachments",
        web::post().to(attachments::create),
    )
    .route("/channels/{channel_id}", web::get().to(channel_get::get))
    .route(
        "/channels/{channel_id}",
        web::patch().to(channel_modify::modify),
    )
    .route(
        "/channels/{channel_id}",
        web::delete().to(channel_delete::delete),
    )
    .route(
        "/channels/{channel_id}/permissions/{overwrite_id}",
        web::put().to(permissions::put),
    )
    .route(
        "/channels/{channel_id}/permissions/{overwrite_id}",
        web::delete().to(permissions::delete),
    )
    .route(
        "/channels/{channel_id}/typing",
        web::post().to(typing::typing),
    )
    .route(
        "/channels/{channel_id}/call/ring",
        web::post().to(call::ask::<true>),
    )
    .route(
        "/channels/{channel_id}/call/stop-ringing",
        web::post().to(call::ask::<false>),
    )
    .route(
        "/channels/{channel_id}/recipients/{user_id}",
        web::put().to(recipients::set::<true>),
    )
    .route(
        "/channels/{channel_id}/recipients/{user_id}",
        web::delete().to(recipients::set::<false>),
    );
    channel_invites::configure(cfg);
}

/// A permission overwrite as clients send it (in channel create and PUT permissions).
#[derive(Debug, Deserialize)]
pub struct OverwriteBody {
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    pub id: Option<i64>,
    #[serde(rename = "type", deserialize_with = "crate::http::ids::required")]
    pub kind: i64,
    #[serde(default, deserialize_with = "crate::http::ids::permissions")]
    pub allow: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::permissions")]
    pub deny: Option<i64>,
}

impl OverwriteBody {
    /// The row for `channel_id`; the target id comes from the body (create) or the path (PUT).
    pub fn row(&self, channel_id: i64) -> Result<OverwriteRow, ApiError> {
        let target_id = self.id.ok_or_else(|| {
            FormErrors::field("id", "BASE_TYPE_REQUIRED", "This field is required")
        })?;
        self.row_for(channel_id, target_id)
    }

    /// A channel's whole set of overwrites (create and modify): at most 100, each target
    /// named once (they are written in one statement, which takes each target once).
    pub fn rows(asked: &[Self], channel_id: i64) -> Result<Vec<OverwriteRow>, ApiError> {
        crate::http::limits::permission_overwrites(asked)?;
        let rows: Vec<OverwriteRow> = asked
            .iter()
            .map(|o| o.row(channel_id))
            .collect::<Result<_, _>>()?;
        let mut seen = std::collections::HashSet::new();
        match rows.iter().position(|row| !seen.insert(row.target_id)) {
            Some(index) => Err(FormErrors::field(
                &format!("permission_overwrites.{index}.id"),
                "SET_TYPE_ALREADY_CONTAINS_VALUE",
                "This overwrite's target is named twice.",
            )
            .into()),
            None => Ok(rows),
        }
    }

    pub fn row_for(&self, channel_id: i64, target_id: i64) -> Result<OverwriteRow, ApiError> {
        if !matches!(self.kind, 0 | 1) {
            return Err(FormErrors::field(
                "type",
                "BASE_TYPE_CHOICES",
                "Value must be one of (0, 1).",
            )
            .into());
        }
        let bits = |v: Option<i64>| v.unwrap_or(0) & crate::permissions::ALL as i64;
        Ok(OverwriteRow {
            channel_id,
            target_id,
            kind: i32::from(self.kind == 1),
            allow: bits(self.allow),
            deny: bits(self.deny),
        })
    }
}

/// Checks a channel name (1–100 characters); text channels' names are lower-cased with dashes
/// for spaces, as Discord does.
pub fn check_channel_name(name: &str, channel_kind: i32) -> Result<String, ApiError> {
    let name = name.trim();
    let length = name.chars().count();
    if !(1..=100).contains(&length) {
        return Err(FormErrors::field(
            "name",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        )
        .into());
    }
    Ok(
        if matches!(channel_kind, kind::GUILD_TEXT | kind::GUILD_ANNOUNCEMENT) {
            name.to_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("-")
        } else {
            name.to_string()
        },
    )
}

/// A field's 50035 error: its name, Discord's code and message.
pub type FieldError = (&'static str, &'static str, &'static str);

/// Checks that `channel_id` names a channel of `guild_id` that `fits`; `invalid` otherwise.
pub async fn require_guild_channel(
    conn: &mut crate::db::Connection,
    guild_id: i64,
    channel_id: i64,
    fits: impl FnOnce(&crate::db::channels::Channel) -> bool,
    (field, code, message): FieldError,
) -> Result<(), ApiError> {
    let found = crate::db::channels::Channel::find(conn, channel_id).await?;
    if found.is_some_and(|c| c.guild_id == Some(guild_id) && fits(&c)) {
        return Ok(());
    }
    Err(FormErrors::field(field, code, message).into())
}

/// A channel as the caller sees it: guild channels with their overwrites, private channels with
/// the other recipients.
pub async fn body(
    conn: &mut crate::db::Connection,
    access: &crate::http::access::ChannelAccess,
    user_id: i64,
) -> Result<serde_json::Value, ApiError> {
    if access.guild.is_some() {
        return Ok(crate::wire::guild::channel(
            &access.channel,
            &access.overwrites,
        ));
    }
    let others: Vec<i64> = access
        .recipients
        .iter()
        .copied()
        .filter(|id| *id != user_id)
        .collect();
    let users = crate::db::users::User::find_many(conn, &others).await?;
    let users: Vec<&crate::db::users::User> = users.iter().collect();
    Ok(crate::wire::guild::private_channel(&access.channel, &users))
}
