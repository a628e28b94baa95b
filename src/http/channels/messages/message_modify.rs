//! `PATCH /channels/{channel_id}/messages/{message_id}`: the author edits `content`, `embeds`
//! and `allowed_mentions` (mentions are parsed again and `edited_timestamp` set); anyone else
//! gets 50005, except that MANAGE_MESSAGES may toggle the SUPPRESS_EMBEDS flag. MESSAGE_UPDATE
//! to whoever sees the channel.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::Value;

use super::mentions::AllowedMentions;
use super::{render, write, Reader, Target};
use crate::db::messages::{flags, kind, Message};
use crate::http::error::{ApiError, Unknown};
use crate::http::extractors::{path, Id, InChannel};
use crate::http::json::Json;
use crate::permissions::bits;
use crate::rights;
use crate::wire::message as wire;

#[derive(Debug, Deserialize)]
pub struct EditMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    embeds: Option<Vec<Value>>,
    #[serde(default)]
    embed: Option<Value>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    flags: Option<i64>,
    #[serde(default)]
    allowed_mentions: Option<AllowedMentions>,
}

impl EditMessage {
    /// Whether the body touches what only the author may change.
    fn edits_body(&self) -> bool {
        self.content.is_some()
            || self.embeds.is_some()
            || self.embed.is_some()
            || self.allowed_mentions.is_some()
    }
}

pub async fn modify(
    caller: InChannel,
    message_id: Id<path::Message>,
    Json(body): Json<EditMessage>,
) -> Result<HttpResponse, ApiError> {
    let Target {
        state,
        user,
        access,
        message,
        mut conn,
        ..
    } = Target::load(caller, message_id).await?;
    let channel_id = access.channel.id;
    if message.author_id == Some(user.id) {
        ApiError::require(user.rights, rights::SELF_EDIT_MESSAGES)?;
    } else if body.edits_body() {
        return Err(ApiError::Plain {
            status: StatusCode::FORBIDDEN,
            code: 50005,
            message: "Cannot edit a message authored by another user",
        });
    } else {
        access.require(bits::MANAGE_MESSAGES)?;
    }
    if kind::is_system(message.kind) {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50021,
            message: "Cannot execute action on a system message",
        });
    }

    let mut edit = write::unchanged(&message);
    if let Some(wanted) = body.flags {
        let suppress = if wanted & i64::from(flags::SUPPRESS_EMBEDS) != 0 {
            flags::SUPPRESS_EMBEDS
        } else {
            0
        };
        edit.flags = (message.flags & !flags::SUPPRESS_EMBEDS) | suppress;
    }
    if body.edits_body() {
        // A reply keeps pinging its author if it did, unless replied_user now says otherwise.
        let replied_author = match wire::referenced_id(&message) {
            Some(id) if message.kind == kind::REPLY => Message::find(&mut conn, channel_id, id)
                .await?
                .and_then(|replied| replied.author_id),
            _ => None,
        };
        let was_pinged = replied_author.is_some_and(|a| message.mentions.contains(&a));
        let ping_replied = body
            .allowed_mentions
            .as_ref()
            .and_then(|a| a.replied_user)
            .unwrap_or(was_pinged);
        let embeds = match (body.embeds, body.embed) {
            (None, None) => None,
            (list, single) => {
                let mut list = list.unwrap_or_default();
                list.extend(single.filter(|e| !e.is_null()));
                Some(list)
            }
        };
        write::revise(
            &state,
            &mut conn,
            &access,
            Some(user.id),
            &mut edit,
            body.content,
            embeds,
            body.allowed_mentions.as_ref(),
            replied_author.filter(|_| ping_replied),
            false,
        )
        .await?;
    }
    let (edited, _) = write::save_edit(&state, &mut conn, &access, message, edit, user.id).await?;
    let reader = Reader::of(&mut conn, &user, &access).await?;
    let answer = render(&state, &mut conn, reader, &[edited])
        .await?
        .pop()
        .ok_or(ApiError::Unknown(Unknown::Message))?;
    Ok(HttpResponse::Ok().json(answer))
}
