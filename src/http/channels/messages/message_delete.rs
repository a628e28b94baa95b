//! `DELETE /channels/{channel_id}/messages/{message_id}`: the author's own message, or anyone's
//! with MANAGE_MESSAGES (never someone else's in a DM). 204; MESSAGE_DELETE to whoever sees the
//! channel. The message's attachments' files are removed.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use serde_json::json;

use super::{find, write};
use crate::audit::{action, Audit, Entry};
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::rights;
use crate::server::AppState;
use crate::wire::guild::id;

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    audit: Audit,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path.0)?;
    let message_id = snowflake("message_id", &path.1)?;
    let user = &session.user;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, user.id).await?;
    let message = find(&mut conn, &access, message_id).await?;
    if message.author_id == Some(user.id) {
        ApiError::require(user.rights, rights::SELF_DELETE_MESSAGES)?;
    } else {
        access.guild()?;
        access.require(bits::MANAGE_MESSAGES)?;
    }
    // A moderator's deletion of someone else's message is logged.
    let entry: Option<Entry> = access
        .channel
        .guild_id
        .filter(|_| message.author_id != Some(user.id))
        .map(|guild_id| {
            let kind = action::MESSAGE_DELETE;
            let options = json!({ "channel_id": id(channel_id), "count": "1" });
            audit
                .entry(&state, guild_id, user.id, kind, message.author_or_webhook())
                .options(options)
        });
    write::remove(&state, &mut conn, &access, &message, entry.as_slice()).await?;
    Ok(HttpResponse::NoContent().finish())
}
