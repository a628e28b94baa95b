//! `POST /channels/{channel_id}/messages` (SEND_MESSAGES, in a text channel): a new message,
//! a reply when it names one. Mentions are parsed from the content and narrowed by
//! `allowed_mentions`; the `nonce` is echoed (never stored). The message, the channel's
//! `last_message_id` and the sender's read state commit together; then MESSAGE_CREATE to whoever
//! sees the channel. Answers 200, never 201: Fermi treats 201 as a failure.
//!
//! The body is JSON, or multipart with files (see `files`). SEND_MESSAGES and ATTACH_FILES are
//! checked before the body is read: without ATTACH_FILES a file part is refused before any of it
//! is stored. Staged files become the message's only once everything else is found in order.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::Value;

use super::files::{self, AttachmentBody, Attachments};
use super::mentions::{self, AllowedMentions};
use super::{embeds, message_change, sent_message_event};
use crate::db::channels::kind as channel_kind;
use crate::db::messages::{flags, kind, Message};
use crate::db::pending_uploads::PendingUpload;
use crate::db::Connection;
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, FormErrors};
use crate::http::extractors::InChannel;
use crate::http::urls::PublicUrls;
use crate::http::users::private_channels::require_reachable;
use crate::permissions::bits;
use crate::rights;
use crate::wire::message as wire;

/// Nonces are at most this long (as text), like Discord's.
const MAX_NONCE: usize = 25;

#[derive(Debug, Deserialize)]
pub struct CreateMessage {
    #[serde(default)]
    content: Option<String>,
    /// A string or an integer; echoed as sent.
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default)]
    tts: Option<bool>,
    #[serde(default)]
    embeds: Option<Vec<Value>>,
    /// The single embed older clients send.
    #[serde(default)]
    embed: Option<Value>,
    #[serde(default)]
    allowed_mentions: Option<AllowedMentions>,
    #[serde(default)]
    message_reference: Option<ReferenceBody>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    flags: Option<i64>,
    #[serde(default)]
    attachments: Option<Vec<AttachmentBody>>,
}

#[derive(Debug, Deserialize)]
pub struct ReferenceBody {
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    message_id: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    channel_id: Option<i64>,
    #[serde(default)]
    fail_if_not_exists: Option<bool>,
    #[serde(
        rename = "type",
        default,
        deserialize_with = "crate::http::ids::optional"
    )]
    kind: Option<i64>,
}

pub async fn create(
    req: HttpRequest,
    caller: InChannel,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Who may send here is settled before the body is read (files are stored as they arrive),
    // and no connection is held while the client sends it.
    let (user, access) = (&caller.session.user, &caller.access);
    ApiError::require(user.rights, rights::SEND_MESSAGES)?;
    if !access.is_text() {
        return Err(ApiError::Plain {
            status: StatusCode::BAD_REQUEST,
            code: 50008,
            message: "Cannot send messages in a non-text channel",
        });
    }
    access.require(bits::SEND_MESSAGES)?;
    if access.channel.kind == channel_kind::DM {
        let mut conn = caller.state.pool.get().await?;
        require_reachable(&mut conn, user.id, &access.recipients).await?;
    }
    let attach = access.require(bits::ATTACH_FILES).is_ok();
    let (body, sent) = files::read_body(&req, payload, &caller.state, attach).await?;
    let body: CreateMessage = crate::http::json::parse_value(body)?;
    let base = PublicUrls::of(&req, &caller.state.config()).base;
    // The rest is database round trips: on the request threads, where no gateway connection's
    // delivery queues ahead of them (see `request_threads`).
    let state = caller.state.clone();
    let answer = state
        .request_threads
        .run(send(caller, base, body, sent))
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Writes a message the caller may send, its body read, and tells whoever sees the channel;
/// the answer is the message. `base` is the API's public base URL, for attachments' URLs.
async fn send(
    caller: InChannel,
    base: String,
    body: CreateMessage,
    sent: Vec<files::SentFile>,
) -> Result<Value, ApiError> {
    let InChannel {
        state,
        session,
        access,
        conn,
        ..
    } = caller;
    let user = &session.user;
    let channel_id = access.channel.id;
    let mut conn = conn.get().await?;

    let content = body.content.unwrap_or_default();
    check_content(&content, state.config().limits.message_max_characters)?;
    let nonce = check_nonce(body.nonce)?;
    let mut embeds = body.embeds.unwrap_or_default();
    embeds.extend(body.embed.filter(|e| !e.is_null()));
    let embeds = embeds::check(embeds)?;
    if let Some(allowed) = &body.allowed_mentions {
        allowed.check()?;
    }
    let replied = match body.message_reference {
        Some(reference) => reply_target(&mut conn, &access, reference).await?,
        None => None,
    };
    let attachments = Attachments::prepare(
        &state,
        &mut conn,
        &base,
        channel_id,
        user.id,
        body.attachments.unwrap_or_default(),
        sent,
    )
    .await?;
    if !attachments.is_empty() {
        access.require(bits::ATTACH_FILES)?;
    }
    if is_empty(&content, &embeds) && attachments.is_empty() {
        return Err(empty_message());
    }
    // Without allowed_mentions a reply pings its author; with it, only if replied_user says so.
    let ping_replied = body
        .allowed_mentions
        .as_ref()
        .is_none_or(|a| a.replied_user.unwrap_or(false));
    let replied_author = replied
        .as_ref()
        .filter(|_| ping_replied)
        .and_then(|m| m.author_id);
    let mentions = mentions::resolve(
        &mut conn,
        &access,
        Some(user.id),
        &content,
        body.allowed_mentions.as_ref(),
        replied_author,
    )
    .await?;

    let guild_id = access.channel.guild_id;
    let mut message = Message::new(state.snowflakes.next(), channel_id, guild_id, user.id);
    message.content = content;
    // Without SEND_TTS_MESSAGES a TTS message is sent as a plain one, as Discord does.
    message.tts = body.tts.unwrap_or(false) && access.permissions & bits::SEND_TTS_MESSAGES != 0;
    message.embeds = embeds;
    message.attachments = serde_json::Value::Array(attachments.list.clone());
    message.mentions = mentions.users.iter().map(|u| u.id).collect();
    message.mention_roles = mentions.roles;
    message.mention_everyone = mentions.everyone;
    message.flags = i32::try_from(body.flags.unwrap_or(0) & 0x7fff_ffff).unwrap_or(0)
        & (flags::SUPPRESS_EMBEDS | flags::SUPPRESS_NOTIFICATIONS);
    if let Some(replied) = &replied {
        message.kind = kind::REPLY;
        message.message_reference = Some(wire::reference(replied.id, channel_id, guild_id));
    }
    attachments.store(&state).await?;
    let since = chrono::Utc::now() - crate::http::channels::upload_lifetime(&state);
    let saved = if attachments.upload_tokens().next().is_none() {
        message.insert_sent(&mut conn, user.id).await
    } else {
        conn.transaction(async |conn| {
            for token in attachments.upload_tokens() {
                if PendingUpload::take(conn, token, user.id, channel_id, since)
                    .await?
                    .is_none()
                {
                    // Used by another message meanwhile.
                    return Err(diesel::result::Error::RollbackTransaction);
                }
            }
            message.insert_sent(conn, user.id).await
        })
        .await
    };
    if let Err(error) = saved {
        attachments.undo(&state).await;
        return Err(match error {
            diesel::result::Error::RollbackTransaction => crate::http::error::FormErrors::field(
                "attachments",
                "ATTACHMENT_NOT_FOUND",
                "Unknown upload.",
            )
            .into(),
            other => other.into(),
        });
    }

    let mut answer = sent_message_event(
        &state,
        &mut conn,
        &access,
        &message,
        user,
        &mentions.users,
        replied.as_ref(),
    )
    .await?;
    if let Some(nonce) = nonce {
        answer["nonce"] = nonce;
    }
    let change = message_change(&access, &message, answer.clone());
    state.publish(&crate::events::Event::MessageCreate(change));
    Ok(answer)
}

/// Content over the instance's limit is a form error.
pub fn check_content(content: &str, max: u64) -> Result<(), ApiError> {
    let length = u64::try_from(content.chars().count()).unwrap_or(u64::MAX);
    if length > max {
        return Err(FormErrors::field(
            "content",
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 1 and {max} in length."),
        )
        .into());
    }
    Ok(())
}

/// A message with nothing to show: blank content and no embeds.
pub fn is_empty(content: &str, embeds: &Value) -> bool {
    content.trim().is_empty() && embeds.as_array().is_none_or(Vec::is_empty)
}

pub fn empty_message() -> ApiError {
    ApiError::Plain {
        status: StatusCode::BAD_REQUEST,
        code: 50006,
        message: "Cannot send an empty message",
    }
}

/// A nonce is a string or an integer of at most 25 characters.
fn check_nonce(nonce: Option<Value>) -> Result<Option<Value>, ApiError> {
    let length = match &nonce {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.chars().count(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => {
            number.to_string().len()
        }
        Some(other) => {
            return Err(FormErrors::field(
                "nonce",
                "BASE_TYPE_STRING",
                format!("Could not interpret \"{other}\" as string."),
            )
            .into())
        }
    };
    if length > MAX_NONCE {
        return Err(FormErrors::field(
            "nonce",
            "BASE_TYPE_BAD_LENGTH",
            format!("Must be between 1 and {MAX_NONCE} in length."),
        )
        .into());
    }
    Ok(nonce)
}

/// The message a reply answers: one in this channel (READ_MESSAGE_HISTORY needed to see it).
/// A missing one fails the send unless `fail_if_not_exists` is false, when the message goes out
/// as a plain one.
async fn reply_target(
    conn: &mut Connection,
    access: &ChannelAccess,
    reference: ReferenceBody,
) -> Result<Option<Message>, ApiError> {
    if reference.kind.unwrap_or(0) != 0 {
        // Forwards (type 1) carry message snapshots, which are not made here.
        return Err(FormErrors::field(
            "message_reference.type",
            "BASE_TYPE_CHOICES",
            "Value must be one of {0}.",
        )
        .into());
    }
    let Some(message_id) = reference.message_id else {
        return Err(FormErrors::field(
            "message_reference.message_id",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        )
        .into());
    };
    access.require(bits::READ_MESSAGE_HISTORY)?;
    let found = if reference
        .channel_id
        .is_none_or(|id| id == access.channel.id)
    {
        Message::find_in_history(conn, access.channel.id, message_id).await?
    } else {
        None
    };
    match found {
        Some(message) if kind::is_system(message.kind) => Err(FormErrors::field(
            "message_reference",
            "REPLIES_CANNOT_REPLY_TO_SYSTEM_MESSAGE",
            "Cannot reply to a system message",
        )
        .into()),
        Some(message) => Ok(Some(message)),
        None if reference.fail_if_not_exists == Some(false) => Ok(None),
        None => Err(FormErrors::field(
            "message_reference",
            "REPLIES_UNKNOWN_MESSAGE",
            "Unknown message",
        )
        .into()),
    }
}
