//! `/invites/{code}`: look an invite up (no login needed), accept it (join its guild), delete
//! it. Creating and listing invites live with channels (`channels/channel_invites.rs`) and
//! guilds (`guilds/guild_invites.rs`); what they share is here.

mod invite_accept;
mod invite_delete;
mod invite_get;

use actix_web::web;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;

use crate::db::channels::Channel;
use crate::db::guilds::Guild;
use crate::db::invites::Invite;
use crate::db::users::User;
use crate::db::Connection;
use crate::http::error::{ApiError, Unknown};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/invites/{code}", web::get().to(invite_get::get))
        .route("/invites/{code}", web::post().to(invite_accept::accept))
        .route("/invites/{code}", web::delete().to(invite_delete::delete));
}

/// Invite codes: 8 characters of [a-zA-Z0-9], as Discord's.
pub fn new_code() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 8)
}

/// An invite that can still be used, or 10006. A spent one (expired, or out of uses) is
/// deleted on the way.
pub async fn find_usable(conn: &mut Connection, code: &str) -> Result<Invite, ApiError> {
    let invite = Invite::find(conn, code)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Invite))?;
    if !invite.is_valid(chrono::Utc::now()) {
        Invite::delete(conn, code).await?;
        return Err(ApiError::Unknown(Unknown::Invite));
    }
    Ok(invite)
}

/// One invite as clients see it, with its guild, channel and inviter.
pub async fn describe(conn: &mut Connection, invite: &Invite) -> Result<Value, ApiError> {
    let guild = Guild::find(conn, invite.guild_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Invite))?;
    let channel = Channel::find(conn, invite.channel_id)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Invite))?;
    let inviter = match invite.inviter_id {
        Some(id) => User::find(conn, id).await?,
        None => None,
    };
    Ok(crate::wire::invite::invite(
        invite,
        &guild,
        &channel,
        inviter.as_ref(),
    ))
}

/// The usable invites among `invites` (all of `guild`), as clients see them.
pub async fn describe_all(
    conn: &mut Connection,
    guild: &Guild,
    invites: &[Invite],
) -> Result<Vec<Value>, ApiError> {
    let now = chrono::Utc::now();
    let usable: Vec<&Invite> = invites.iter().filter(|i| i.is_valid(now)).collect();
    let channels = Channel::of_guilds(conn, &[guild.id]).await?;
    let inviter_ids: Vec<i64> = usable.iter().filter_map(|i| i.inviter_id).collect();
    let inviters = User::find_many(conn, &inviter_ids).await?;
    Ok(usable
        .iter()
        .filter_map(|invite| {
            let channel = channels.iter().find(|c| c.id == invite.channel_id)?;
            let inviter = inviters.iter().find(|u| Some(u.id) == invite.inviter_id);
            Some(crate::wire::invite::invite(invite, guild, channel, inviter))
        })
        .collect())
}

/// An invite as its audit log entries list it (Discord's change keys).
pub fn audit_object(invite: &Invite) -> Value {
    serde_json::json!({
        "code": invite.code,
        "channel_id": crate::wire::guild::id(invite.channel_id),
        "inviter_id": crate::wire::guild::opt_id(invite.inviter_id),
        "uses": invite.uses,
        "max_uses": invite.max_uses,
        "max_age": invite.max_age,
        "temporary": invite.temporary,
    })
}
