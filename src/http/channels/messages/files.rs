//! Files sent with a message: a multipart body (`payload_json` with `files[n]`, or the older
//! `content` and `file` fields) or pre-uploads named by `attachments[].uploaded_filename`.
//! Multipart files are written to storage as they arrive (never held in memory whole), under
//! a key of their own until their message takes them; a file no message took is removed.
//! Everything is checked before a message gets its files: a rejected message leaves no file
//! behind, and a message whose commit fails has its files removed (pre-uploads put back).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::web;
use actix_web::HttpRequest;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::cdn::imaging;
use crate::cdn::store_stream;
use crate::db::pending_uploads::PendingUpload;
use crate::db::Connection;
use crate::http::error::{ApiError, FormErrors};
use crate::state::AppState;
use crate::storage::{clean_filename, Key, Storage};

/// An entry of a message's `attachments`: which multipart file (`id` = its index) or which
/// pre-upload (`uploaded_filename`) it is, and what to call it.
#[derive(Debug, Deserialize)]
pub struct AttachmentBody {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    uploaded_filename: Option<String>,
}

impl AttachmentBody {
    /// Whether this entry names the stored attachment `id` (an edit keeping it).
    pub fn names(&self, id: Option<&str>) -> bool {
        let named = match &self.id {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        id.is_some_and(|id| named.as_deref() == Some(id))
    }
}

/// A file part of a multipart body, stored as it arrived.
pub struct SentFile {
    index: usize,
    filename: String,
    /// Its first bytes, which tell what it is.
    head: Bytes,
    size: u64,
    staged: Staged,
}

/// An object written ahead of its message: deleted when dropped, unless it was moved on.
struct Staged {
    storage: Arc<dyn Storage>,
    key: Key,
    moved: AtomicBool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.moved.load(Ordering::Relaxed) {
            return;
        }
        let (storage, key) = (self.storage.clone(), self.key.clone());
        actix_web::rt::spawn(async move {
            if let Err(error) = storage.delete(&key).await {
                tracing::warn!(%error, "a file no message took was not removed");
            }
        });
    }
}

/// The message body as JSON, with the files of a multipart body: no file above the attachment
/// limit, no more files than a message takes, and all parts together within
/// [`Config::max_multipart_bytes`] (40005 as soon as the body goes past it). Unless
/// `accept_files`, the first file part is refused (50013) before any of it is stored.
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    accept_files: bool,
) -> Result<(Value, Vec<SentFile>), ApiError> {
    let config = state.config();
    let (max_json, limits) = (config.http.max_json_bytes, &config.limits);
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if !multipart {
        let bytes = read_limited(payload, max_json).await?;
        let value = serde_json::from_slice(&bytes).map_err(|_| ApiError::InvalidJson)?;
        return Ok((value, Vec::new()));
    }
    let max_files = usize::try_from(limits.message_max_attachments).unwrap_or(usize::MAX);
    // What the parts still read may add up to.
    let mut left = config.max_multipart_bytes();
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let mut body = Value::Object(Map::new());
    let mut legacy = Map::new();
    let mut files = Vec::new();
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|_| ApiError::InvalidJson)?;
        let name = part.name().unwrap_or_default().to_string();
        let filename = part
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        if let Some(filename) = filename {
            if !accept_files {
                return Err(ApiError::MissingPermissions);
            }
            if files.len() == max_files {
                return Err(too_many(max_files));
            }
            let key = staging_key().ok_or(ApiError::TooLarge)?;
            let storage = &state.cdn.storage;
            let max = limits.message_max_attachment_size.min(left);
            let (size, head) = store_stream(&**storage, &key, &mut part, max, SNIFF_BYTES).await?;
            left -= size;
            files.push(SentFile {
                index: file_index(&name).unwrap_or(files.len()),
                filename,
                head,
                size,
                staged: Staged {
                    storage: storage.clone(),
                    key,
                    moved: AtomicBool::new(false),
                },
            });
            continue;
        }
        let mut bytes = BytesMut::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| ApiError::TooLarge)?;
            let read = u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX);
            if bytes.len() + chunk.len() > max_json || read > left {
                return Err(ApiError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        left -= u64::try_from(bytes.len()).unwrap_or(left);
        match name.as_str() {
            "payload_json" => {
                body = serde_json::from_slice(&bytes).map_err(|_| ApiError::InvalidJson)?;
            }
            field @ ("content" | "nonce") => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                legacy.insert(field.to_string(), Value::String(text));
            }
            "tts" => {
                legacy.insert("tts".into(), Value::Bool(&bytes[..] == b"true"));
            }
            _ => {}
        }
    }
    if let Some(fields) = body.as_object_mut() {
        for (field, value) in legacy {
            fields.entry(field).or_insert(value);
        }
    }
    Ok((body, files))
}

/// A fresh key to write a sent file under until its message takes it (beside pre-uploads).
fn staging_key() -> Option<Key> {
    Key::upload(&format!("{:032x}", rand::random::<u128>()))
}

/// `files[3]` → 3, `file2` → 2, `file` → 0.
fn file_index(name: &str) -> Option<usize> {
    if name == "file" {
        return Some(0);
    }
    let rest = name
        .strip_prefix("files[")
        .and_then(|r| r.strip_suffix(']'));
    rest.or_else(|| name.strip_prefix("file"))?.parse().ok()
}

async fn read_limited(mut payload: web::Payload, max: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::TooLarge)?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn too_many(max: usize) -> ApiError {
    FormErrors::field(
        "files",
        "BASE_TYPE_MAX_LENGTH",
        format!("Must be {max} or fewer in length."),
    )
    .into()
}

/// How much of a pre-upload is read to tell its type and image size (headers come first).
const SNIFF_BYTES: usize = 1 << 20;

/// How one attachment gets to its key.
enum Source {
    /// A multipart file, moved from where it was written as it arrived.
    Sent(Staged),
    /// A pre-upload, moved from its upload key.
    Uploaded { from: Key, token: String },
}

struct Planned {
    key: Key,
    source: Source,
}

/// A message's attachments, checked and described, not yet stored.
#[derive(Default)]
pub struct Attachments {
    /// As the message carries them.
    pub list: Vec<Value>,
    planned: Vec<Planned>,
}

impl Attachments {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The pre-upload tokens to take in the message's transaction.
    pub fn upload_tokens(&self) -> impl Iterator<Item = &str> {
        self.planned.iter().filter_map(|p| match &p.source {
            Source::Uploaded { token, .. } => Some(token.as_str()),
            Source::Sent(_) => None,
        })
    }

    /// Checks and describes the files of a message in `channel_id`: the multipart `files` and
    /// the pre-uploads the body's `attachments` name.
    pub async fn prepare(
        state: &AppState,
        conn: &mut Connection,
        base: &str,
        channel_id: i64,
        user_id: i64,
        bodies: Vec<AttachmentBody>,
        files: Vec<SentFile>,
    ) -> Result<Self, ApiError> {
        let limits = &state.config().limits;
        let max = usize::try_from(limits.message_max_attachments).unwrap_or(usize::MAX);
        let uploaded = bodies
            .iter()
            .filter(|b| b.uploaded_filename.is_some())
            .count();
        if files.len() + uploaded > max {
            return Err(too_many(max));
        }
        let described = |index: usize| {
            bodies.iter().find(|b| {
                b.uploaded_filename.is_none()
                    && b.id.as_ref().is_some_and(|id| match id {
                        Value::String(s) => s.parse::<usize>().ok() == Some(index),
                        Value::Number(n) => n.as_u64() == u64::try_from(index).ok(),
                        _ => false,
                    })
            })
        };
        let mut attachments = Self::default();
        for file in files {
            let body = described(file.index);
            let name = body
                .and_then(|b| b.filename.as_deref())
                .unwrap_or(&file.filename);
            let description = body.and_then(|b| b.description.clone());
            attachments.add(
                state,
                base,
                channel_id,
                name,
                description,
                (&file.head, file.size),
                Source::Sent(file.staged),
            )?;
        }
        let since = Utc::now() - super::super::attachments::upload_lifetime(state);
        for (index, body) in bodies.iter().enumerate() {
            let Some(uploaded) = &body.uploaded_filename else {
                continue;
            };
            let field = format!("attachments.{index}.uploaded_filename");
            let unknown = || {
                ApiError::from(FormErrors::field(
                    &field,
                    "ATTACHMENT_NOT_FOUND",
                    "Unknown upload.",
                ))
            };
            let token = uploaded
                .split('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let from = Key::upload(&token).ok_or_else(unknown)?;
            let upload = PendingUpload::find(conn, &token, since)
                .await?
                .filter(|u| u.user_id == user_id && u.channel_id == channel_id && u.uploaded)
                .ok_or_else(unknown)?;
            // Its first bytes tell what it is; the file itself may be large and stays put.
            let object = state
                .cdn
                .storage
                .get(&from, Some(0..SNIFF_BYTES as u64))
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(unknown)?;
            let name = body.filename.as_deref().unwrap_or(&upload.filename);
            attachments.add(
                state,
                base,
                channel_id,
                name,
                body.description.clone(),
                (&object.bytes, object.total),
                Source::Uploaded { from, token },
            )?;
        }
        Ok(attachments)
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        state: &AppState,
        base: &str,
        channel_id: i64,
        name: &str,
        description: Option<String>,
        (head, size): (&[u8], u64),
        source: Source,
    ) -> Result<(), ApiError> {
        if size > state.config().limits.message_max_attachment_size {
            return Err(ApiError::TooLarge);
        }
        let id = state.snowflakes.next();
        let filename = clean_filename(name);
        let key = Key::attachment(channel_id, id, &filename).ok_or(ApiError::TooLarge)?;
        let url = crate::cdn::attachment_url(base, channel_id, id, &filename);
        let mut value = json!({
            "id": id.to_string(),
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url,
            "content_type": imaging::content_type(head, &filename),
        });
        if let Some(info) = imaging::sniff(head).and_then(|_| imaging::inspect(head)) {
            value["width"] = info.width.into();
            value["height"] = info.height.into();
        }
        if let Some(description) = description.filter(|d| !d.is_empty()) {
            value["description"] = description.chars().take(1024).collect::<String>().into();
        }
        self.list.push(value);
        self.planned.push(Planned { key, source });
        Ok(())
    }

    /// Stores every file under its attachment key; on a failure, undoes what was done.
    pub async fn store(&self, state: &AppState) -> Result<(), ApiError> {
        let storage = &state.cdn.storage;
        for (done, planned) in self.planned.iter().enumerate() {
            let stored = match &planned.source {
                Source::Sent(staged) => {
                    let moved = storage.rename(&staged.key, &planned.key).await;
                    staged.moved.store(moved.is_ok(), Ordering::Relaxed);
                    moved
                }
                Source::Uploaded { from, .. } => storage.rename(from, &planned.key).await,
            };
            if let Err(error) = stored {
                self.undo_first(state, done).await;
                return Err(ApiError::internal(error));
            }
        }
        Ok(())
    }

    /// The message was not saved: sent files are removed, pre-uploads put back.
    pub async fn undo(&self, state: &AppState) {
        self.undo_first(state, self.planned.len()).await;
    }

    async fn undo_first(&self, state: &AppState, count: usize) {
        for planned in self.planned.iter().take(count) {
            match &planned.source {
                Source::Sent(_) => state.cdn.remove(&planned.key).await,
                Source::Uploaded { from, .. } => {
                    if let Err(error) = state.cdn.storage.rename(&planned.key, from).await {
                        tracing::warn!(%error, "cannot put a pre-upload back");
                    }
                }
            }
        }
    }
}

/// The storage keys of deleted messages' files, given as (channel id, attachments).
pub fn keys(messages: impl IntoIterator<Item = (i64, Value)>) -> Vec<Key> {
    messages
        .into_iter()
        .flat_map(|(channel_id, attachments)| keys_of(channel_id, &attachments))
        .collect()
}

/// Removes the files of deleted messages, given as (channel id, attachments).
pub async fn remove_files(state: &AppState, messages: impl IntoIterator<Item = (i64, Value)>) {
    for (channel_id, attachments) in messages {
        for key in keys_of(channel_id, &attachments) {
            state.cdn.remove(&key).await;
        }
    }
}

/// The storage keys of a stored message's attachments (to remove with the message).
pub fn keys_of(channel_id: i64, attachments: &Value) -> Vec<Key> {
    attachments
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    let id = a.get("id")?.as_str()?.parse().ok()?;
                    Key::attachment(channel_id, id, a.get("filename")?.as_str()?)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::file_index;

    #[test]
    fn file_fields_name_their_index() {
        assert_eq!(file_index("file"), Some(0));
        assert_eq!(file_index("files[3]"), Some(3));
        assert_eq!(file_index("file2"), Some(2));
        assert_eq!(file_index("avatar"), None);
    }
}
