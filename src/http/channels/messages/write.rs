//! Writing messages, shared by people's routes and applications' (interaction answers and
//! follow-ups) and webhooks': the same checks (content length, embeds, `allowed_mentions`), mentions resolved
//! the same way, the same events.

use chrono::Utc;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::Value;

use super::files::{self, Attachments};
use super::mentions::{self, AllowedMentions};
use super::message_create::{check_content, empty_message, is_empty};
use super::{embeds, event_ids, event_message, message_change};
use crate::audit::Entry;
use crate::db::channels::Channel;
use crate::db::messages::{flags, Message, MessageEdit};
use crate::db::Connection;
use crate::events::{Change, Ephemeral, Event};
use crate::http::access::ChannelAccess;
use crate::http::error::{ApiError, FormErrors};
use crate::state::AppState;
use crate::wire::guild::id;

/// Most components (action rows) a message may carry.
const MAX_COMPONENTS: usize = 5;

/// A message as an application or a webhook writes it.
#[derive(Debug, Default, Deserialize)]
pub struct Written {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tts: Option<bool>,
    #[serde(default)]
    pub embeds: Option<Vec<Value>>,
    #[serde(default)]
    pub allowed_mentions: Option<AllowedMentions>,
    #[serde(default, deserialize_with = "crate::http::ids::optional")]
    pub flags: Option<i64>,
    #[serde(default)]
    pub components: Option<Vec<Value>>,
}

impl Written {
    /// The flags an application may set on its message.
    pub fn flags(&self) -> i32 {
        let asked = i32::try_from(self.flags.unwrap_or(0) & 0x7fff_ffff).unwrap_or(0);
        asked & (flags::SUPPRESS_EMBEDS | flags::SUPPRESS_NOTIFICATIONS | flags::EPHEMERAL)
    }

    fn components(&mut self) -> Result<Option<Value>, ApiError> {
        match self.components.take() {
            None => Ok(None),
            Some(rows) if rows.len() <= MAX_COMPONENTS && rows.iter().all(Value::is_object) => {
                Ok(Some(Value::Array(rows)))
            }
            Some(_) => Err(FormErrors::field(
                "components",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer action rows.",
            )
            .into()),
        }
    }
}

/// Lays new content and embeds over `edit` and resolves its mentions anew (as `author_id`
/// wrote them; `replied` is the author a reply pings). Empty messages are refused unless
/// `may_be_empty`; the edit is marked edited when what it says changed.
#[allow(clippy::too_many_arguments)]
pub async fn revise(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    author_id: Option<i64>,
    edit: &mut MessageEdit,
    content: Option<String>,
    new_embeds: Option<Vec<Value>>,
    allowed: Option<&AllowedMentions>,
    replied: Option<i64>,
    may_be_empty: bool,
) -> Result<(), ApiError> {
    let changed = content.is_some() || new_embeds.is_some();
    if let Some(content) = content {
        check_content(&content, state.config().limits.message_max_characters)?;
        edit.content = content;
    }
    if let Some(list) = new_embeds {
        edit.embeds = embeds::check(list)?;
    }
    if !may_be_empty && is_empty(&edit.content, &edit.embeds) {
        return Err(empty_message());
    }
    if let Some(allowed) = allowed {
        allowed.check()?;
    }
    let mentions =
        mentions::resolve(conn, access, author_id, &edit.content, allowed, replied).await?;
    edit.mentions = mentions.users.iter().map(|u| u.id).collect();
    edit.mention_roles = mentions.roles;
    edit.mention_everyone = mentions.everyone;
    if changed {
        edit.edited_at = Some(Utc::now());
    }
    Ok(())
}

/// The edit that leaves `message` as it is.
pub fn unchanged(message: &Message) -> MessageEdit {
    MessageEdit {
        content: message.content.clone(),
        embeds: message.embeds.clone(),
        mentions: message.mentions.clone(),
        mention_roles: message.mention_roles.clone(),
        mention_everyone: message.mention_everyone,
        flags: message.flags,
        components: message.components.clone(),
        attachments: message.attachments.clone(),
        edited_at: message.edited_at,
    }
}

/// Saves an edit and tells whoever sees the message (only `viewer` for an ephemeral one);
/// the message as edited, and as the event carried it.
pub async fn save_edit(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    message: Message,
    edit: MessageEdit,
    viewer: i64,
) -> Result<(Message, Value), ApiError> {
    Message::edit(conn, message.id, &edit).await?;
    let edited = Message {
        content: edit.content,
        embeds: edit.embeds,
        mentions: edit.mentions,
        mention_roles: edit.mention_roles,
        mention_everyone: edit.mention_everyone,
        flags: edit.flags,
        components: edit.components,
        attachments: edit.attachments,
        edited_at: edit.edited_at,
        ..message
    };
    let event = announce(state, conn, access, &edited, Wrote::Edited, viewer).await?;
    Ok((edited, event))
}

/// Posts what an application or a webhook wrote as `message` (its id, author, kind and
/// interaction set by the caller) with its `attachments` (checked, stored here, removed again
/// if the message is not saved); with LOADING or files it may be empty (a deferred answer).
/// The message as the event carried it.
pub async fn post(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    mut message: Message,
    attachments: &Attachments,
    written: Written,
    viewer: i64,
) -> Result<(Message, Value), ApiError> {
    message.flags |= written.flags();
    message.tts = written.tts.unwrap_or(false);
    message.attachments = Value::Array(attachments.list.clone());
    let mut edit = unchanged(&message);
    let may_be_empty = message.flags & flags::LOADING != 0 || !attachments.is_empty();
    let author_id = message.author_id;
    lay_over(
        state,
        conn,
        access,
        author_id,
        &mut edit,
        written,
        may_be_empty,
    )
    .await?;
    let message = Message {
        components: edit.components,
        content: edit.content,
        embeds: edit.embeds,
        mentions: edit.mentions,
        mention_roles: edit.mention_roles,
        mention_everyone: edit.mention_everyone,
        ..message
    };
    let channel_id = message.channel_id;
    attachments.store(state).await?;
    let saved = conn
        .transaction(async |conn| {
            message.insert(conn).await?;
            Channel::set_last_message(conn, channel_id, message.id).await
        })
        .await;
    if let Err(error) = saved {
        attachments.undo(state).await;
        return Err(error.into());
    }
    let event = announce(state, conn, access, &message, Wrote::Posted, viewer).await?;
    Ok((message, event))
}

/// An application's edit of its message (`components` too); see [`revise`].
pub async fn rewrite(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    message: Message,
    written: Written,
    viewer: i64,
) -> Result<(Message, Value), ApiError> {
    let mut edit = unchanged(&message);
    // A deferred answer's first edit is its answer, not an edit.
    let was_loading = message.flags & flags::LOADING != 0;
    edit.flags &= !flags::LOADING;
    let author_id = message.author_id;
    lay_over(state, conn, access, author_id, &mut edit, written, false).await?;
    if was_loading {
        edit.edited_at = None;
    }
    save_edit(state, conn, access, message, edit, viewer).await
}

/// Lays what an application or a webhook wrote over `edit`: its components, then as [`revise`].
async fn lay_over(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    author_id: Option<i64>,
    edit: &mut MessageEdit,
    mut written: Written,
    may_be_empty: bool,
) -> Result<(), ApiError> {
    if let Some(components) = written.components()? {
        edit.components = components;
    }
    let allowed = written.allowed_mentions.as_ref();
    let (content, embeds) = (written.content.take(), written.embeds.take());
    revise(
        state,
        conn,
        access,
        author_id,
        edit,
        content,
        embeds,
        allowed,
        None,
        may_be_empty,
    )
    .await
}

/// Deletes a message (writing `audit` entries with it, all or nothing), its files, and tells
/// whoever saw it.
pub async fn remove(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    message: &Message,
    audit: &[Entry],
) -> Result<(), ApiError> {
    let deleted = Entry::with_deletion(audit, conn, |conn| {
        Box::pin(Message::delete(conn, message.channel_id, message.id))
    })
    .await?;
    if deleted {
        // The entries went with the deletion; what is left to do is what a commit owes.
        let mut change = Change::new(state);
        for entry in audit {
            change.emit(entry.event());
        }
        change.remove_files(files::keys_of(message.channel_id, &message.attachments));
        let mut event = event_ids(access);
        event["id"] = id(message.id).into();
        change.emit(Event::MessageDelete(access.scoped(event)));
        change.publish().await;
    }
    Ok(())
}

/// Whether a message was just posted or edited.
#[derive(Debug, Clone, Copy)]
enum Wrote {
    Posted,
    Edited,
}

/// Tells whoever sees the channel of `message` (MESSAGE_CREATE or MESSAGE_UPDATE), or, for an
/// ephemeral message, `viewer` only; the message as the event carried it.
async fn announce(
    state: &AppState,
    conn: &mut Connection,
    access: &ChannelAccess,
    message: &Message,
    wrote: Wrote,
    viewer: i64,
) -> Result<Value, ApiError> {
    let data = event_message(state, conn, access, message).await?;
    let event = if message.flags & flags::EPHEMERAL == 0 {
        let change = message_change(access, message, data.clone());
        match wrote {
            Wrote::Posted => Event::MessageCreate(change),
            Wrote::Edited => Event::MessageUpdate(change),
        }
    } else {
        let only = Ephemeral {
            user_id: viewer,
            guild_id: access.channel.guild_id,
            message: data.clone(),
        };
        match wrote {
            Wrote::Posted => Event::EphemeralMessageCreate(only),
            Wrote::Edited => Event::EphemeralMessageUpdate(only),
        }
    };
    state.publish(&event);
    Ok(data)
}
