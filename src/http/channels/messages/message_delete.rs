//! `DELETE /channels/{channel_id}/messages/{message_id}`: the author's own message, or anyone's
//! with MANAGE_MESSAGES (never someone else's in a DM). 204; MESSAGE_DELETE to whoever sees the
//! channel. The message's attachments' files are removed.

use actix_web::HttpResponse;
use serde_json::json;

use super::{write, Target};
use crate::audit::{action, Audit, Entry};
use crate::http::error::ApiError;
use crate::http::extractors::{path, Id, InChannel};
use crate::permissions::bits;
use crate::rights;
use crate::wire::guild::id;

pub async fn delete(
    caller: InChannel<Audit>,
    message_id: Id<path::Message>,
) -> Result<HttpResponse, ApiError> {
    let mut target = Target::load(caller, message_id).await?;
    let (user, access, message) = (&target.user, &target.access, &target.message);
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
            let options = json!({ "channel_id": id(access.channel.id), "count": "1" });
            target
                .audit
                .entry(
                    &target.state,
                    guild_id,
                    user.id,
                    kind,
                    message.author_or_webhook(),
                )
                .options(options)
        });
    write::remove(
        &target.state,
        &mut target.conn,
        access,
        message,
        entry.as_slice(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
