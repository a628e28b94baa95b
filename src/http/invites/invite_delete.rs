//! `DELETE /invites/{code}`: by its inviter while still a member who sees the channel, or by
//! someone with MANAGE_CHANNELS on its channel (or MANAGE_GUILD). Answers the deleted invite; INVITE_DELETE to those who manage channels.

use actix_web::web::Path;
use actix_web::HttpResponse;

use super::{audit_object, describe};
use crate::audit::{action, changes, Audit};
use crate::db::invites::Invite;
use crate::events::{Change, Event};
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::{existed, ApiError, Unknown};
use crate::permissions::{bits, has};

pub async fn delete(
    Authenticated { state, session }: Authenticated,
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
    let mut change = Change::audited(
        &state,
        audit
            .entry(
                &state,
                invite.guild_id,
                session.user.id,
                action::INVITE_DELETE,
                None,
            )
            .changes(changes(Some(&audit_object(&invite)), None, &[])),
    );
    change.emit(Event::InviteDelete {
        guild_id: invite.guild_id,
        invite: crate::wire::invite::deleted(&invite),
    });
    change
        .commit(&mut conn, async |conn| {
            // Deleted meanwhile by another request: no entry, no event.
            existed(Invite::delete(conn, &invite.code).await?, Unknown::Invite)
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}
