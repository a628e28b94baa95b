//! `DELETE /invites/{code}`: by its inviter while still a member who sees the channel, or by
//! someone with MANAGE_CHANNELS on its channel (or MANAGE_GUILD). Answers the deleted invite; INVITE_DELETE to those who manage channels.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;
use spacebar_actors::guild::Audience;
use spacebar_actors::EventName;

use super::{audit_object, describe};
use crate::audit::{action, changes, Audit, Entry};
use crate::db::invites::Invite;
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{ApiError, Unknown};
use crate::permissions::{bits, has};
use crate::server::AppState;

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let invite = Invite::find(&mut conn, &path)
        .await?
        .ok_or(ApiError::Unknown(Unknown::Invite))?;
    // Whoever deletes it is in the guild now: a kicked inviter's invite is no longer theirs.
    let access = ChannelAccess::load(&mut conn, invite.channel_id, session.user.id).await?;
    if invite.inviter_id != Some(session.user.id) {
        let guild_wide = access.guild()?.permissions();
        if !has(guild_wide, bits::MANAGE_GUILD) {
            access.require(bits::MANAGE_CHANNELS)?;
        }
    }
    let body = describe(&mut conn, &invite).await?;
    let entry = audit
        .entry(
            &state,
            invite.guild_id,
            session.user.id,
            action::INVITE_DELETE,
            None,
        )
        .changes(changes(Some(&audit_object(&invite)), None, &[]));
    let code = invite.code.clone();
    let deleted = Entry::with_deletion(std::slice::from_ref(&entry), &mut conn, move |conn| {
        Box::pin(async move { Invite::delete(conn, &code).await })
    })
    .await?;
    if !deleted {
        return Err(ApiError::Unknown(Unknown::Invite));
    }
    state.audit_logged(&entry)?;
    state.guild_event(
        invite.guild_id,
        EventName::InviteDelete,
        &crate::wire::invite::deleted(&invite),
        Audience::Permission(bits::MANAGE_CHANNELS),
        Vec::new(),
    )?;
    Ok(HttpResponse::Ok().json(body))
}
