//! `DELETE /channels/{channel_id}/messages/{message_id}`: the author's own message, or anyone's
//! with MANAGE_MESSAGES (never someone else's in a DM). 204; MESSAGE_DELETE to whoever sees the
//! channel. The message's attachments' files are removed.

use actix_web::web::{Data, Path};
use actix_web::HttpResponse;

use super::{find, write};
use crate::http::access::ChannelAccess;
use crate::http::authorization::Authenticated;
use crate::http::error::ApiError;
use crate::http::snowflake;
use crate::permissions::bits;
use crate::rights;
use crate::server::AppState;

pub async fn delete(
    state: Data<AppState>,
    Authenticated(session): Authenticated,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = snowflake("channel_id", &path.0)?;
    let message_id = snowflake("message_id", &path.1)?;
    let user = &session.user;
    let mut conn = state.pool.get().await?;
    let access = ChannelAccess::load(&mut conn, channel_id, user.id).await?;
    let message = find(&mut conn, &access, message_id).await?;
    if message.author_id == user.id {
        ApiError::require(user.rights, rights::SELF_DELETE_MESSAGES)?;
    } else {
        access.guild()?;
        access.require(bits::MANAGE_MESSAGES)?;
    }
    write::remove(&state, &mut conn, &access, &message).await?;
    Ok(HttpResponse::NoContent().finish())
}
