//! The CDN, on the same port as the API and under Discord's paths: attachments, avatars,
//! icons, banners, splashes, role icons, emojis, stickers, member avatars and the default
//! avatars. Images are resized and converted on request (`?size=` and the extension) and the
//! results cached (`cache`); attachment URLs can be signed (`signing`). The files themselves
//! are kept by a [`Storage`] backend.

mod cache;
pub mod default_avatars;
pub mod imaging;
mod misses;
pub mod remote;
mod serve;
pub mod signing;
mod upload;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use cache::VariantCache;
use imaging::{Budget, ImageInfo};
use misses::Misses;
pub use signing::Signer;
pub use upload::store_stream;
use work::ImageWork;

use crate::config::{CdnConfig, Config};
use crate::error::Error;
use crate::storage::{self, Key, Storage, StorageError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    serve::configure(cfg);
}

#[derive(Debug, thiserror::Error)]
pub enum CdnError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("CDN signing key: {0}")]
    Key(std::io::Error),
}

/// What the CDN routes and the upload-taking API routes share.
pub struct Cdn {
    pub storage: Arc<dyn Storage>,
    pub signer: Signer,
    pub cache: VariantCache,
    pub config: CdnConfig,
    /// Decoding and converting, a few at a time.
    pub work: ImageWork,
    /// Addresses' misses, so ids are not walked.
    pub misses: Misses,
    /// Images fetched from elsewhere (webhooks' `avatar_url`): lately, and now.
    fetches: remote::Fetches,
    default_avatars: Vec<Bytes>,
    /// `http.public_url`, when set: attachment URLs are always shown under it.
    public_base: Option<String>,
}

impl Cdn {
    pub fn new(config: &Config) -> Result<Self, CdnError> {
        let data_dir = &config.storage.data_dir;
        let key = crate::credentials::token::load_named_secret(
            &config.cdn.signing_key,
            data_dir,
            "cdn_signing_key",
        )
        .map_err(CdnError::Key)?;
        Ok(Self {
            storage: storage::from_config(config)?,
            signer: Signer::new(key, config.cdn.sign_urls, config.cdn.url_lifetime_secs),
            cache: VariantCache::new(data_dir.join("cdn-cache"), config.cdn.memory_cache_bytes),
            config: config.cdn.clone(),
            work: ImageWork::new(config.cdn.image_workers, config.cdn.image_queue),
            misses: Misses::new(
                config.cdn.not_found_limit,
                Duration::from_secs(config.cdn.not_found_window_secs),
            ),
            fetches: remote::Fetches::default(),
            default_avatars: default_avatars::draw_all(),
            public_base: Some(config.http.public_url.trim_end_matches('/').to_string())
                .filter(|base| !base.is_empty()),
        })
    }

    pub fn default_avatar(&self, index: usize) -> Option<Bytes> {
        self.default_avatars.get(index).cloned()
    }

    /// Removes an object and its cached variants. Failures are logged: the row that named the
    /// object is already gone, and an orphaned file harms no one.
    pub async fn remove(&self, key: &Key) {
        if let Err(error) = self.storage.delete(key).await {
            tracing::warn!(%error, %key, "cannot delete a stored file");
        }
        self.cache.purge(key).await;
    }

    /// Stores the image of a data URL sent in `field` (an avatar, banner, icon, splash, role
    /// icon or emoji: at most `cdn.max_avatar_pixels`) under the key `key` makes of its hash;
    /// returns the hash (`a_` first when animated) and what the image is.
    pub async fn store_data_url(
        &self,
        field: &str,
        data_url: &str,
        max_bytes: usize,
        key: impl Fn(&str) -> Option<Key>,
    ) -> Result<(String, ImageInfo), Error> {
        let bytes = decode_data_url(field, data_url, max_bytes)?;
        let info = self
            .check_image(field, bytes.clone(), self.config.max_avatar_pixels)
            .await?;
        let hash = image_hash(&bytes, info.animated);
        let key = key(&hash).ok_or_else(|| Error::invalid_image(field))?;
        self.storage.put(&key, bytes).await?;
        Ok((hash, info))
    }

    /// What decoding may cost: `pixels` for one image, and the animation budget.
    pub fn budget(&self, pixels: u64) -> Budget {
        Budget {
            pixels,
            animation_pixels: self.config.max_animation_pixels,
        }
    }

    /// What the image in `bytes` (at most `cdn.max_image_pixels`) is, once all of it decoded,
    /// or the field's form error.
    pub async fn checked_image(&self, field: &str, bytes: Bytes) -> Result<ImageInfo, Error> {
        self.check_image(field, bytes, self.config.max_image_pixels)
            .await
    }

    /// [`checked_image`](Self::checked_image) within `max_pixels`, decoded by the image
    /// workers.
    async fn check_image(
        &self,
        field: &str,
        bytes: Bytes,
        max_pixels: u64,
    ) -> Result<ImageInfo, Error> {
        let budget = self.budget(max_pixels);
        let checked = self
            .work
            .run(move || {
                imaging::decodes(&bytes, budget)
                    .then(|| imaging::inspect(&bytes))
                    .flatten()
            })
            .await?;
        checked.ok_or_else(|| Error::invalid_image(field))
    }

    /// A profile image field of a PATCH: absent (`None`) leaves it, `null` clears it, a data URL
    /// replaces it. Returns the new value, the new file stored already.
    pub async fn image_field(
        &self,
        field: &str,
        value: Option<Option<String>>,
        key: impl Fn(&str) -> Option<Key>,
    ) -> Result<Option<Option<String>>, Error> {
        match value {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(text)) if text.is_empty() => Ok(Some(None)),
            Some(Some(text)) => {
                let (hash, _) = self
                    .store_data_url(field, &text, self.config.max_image_bytes, key)
                    .await?;
                Ok(Some(Some(hash)))
            }
        }
    }

    /// After a commit (`saved`) or a failed one: the file no longer named is removed: the old
    /// one when the change was saved, the new one when it was not.
    pub async fn settle_image(
        &self,
        saved: bool,
        old: Option<&str>,
        new: Option<&str>,
        key: impl Fn(&str) -> Option<Key>,
    ) {
        if old == new {
            return;
        }
        let gone = if saved { old } else { new };
        if let Some(key) = gone.and_then(key) {
            self.remove(&key).await;
        }
    }

    /// The `url` and `proxy_url` of each attachment of a message as clients get them: under
    /// `http.public_url` when it is set (whatever host the upload came in on), and signed
    /// when signing is on.
    pub fn sign_attachments(&self, attachments: &mut Value) {
        if !self.signer.enabled() && self.public_base.is_none() {
            return;
        }
        let Some(list) = attachments.as_array_mut() else {
            return;
        };
        for attachment in list {
            for field in ["url", "proxy_url"] {
                let Some(url) = attachment.get(field).and_then(Value::as_str) else {
                    continue;
                };
                let rebased = match (&self.public_base, signing::attachment_path(url)) {
                    (Some(base), Some(path)) => format!("{base}{path}"),
                    _ => url.to_string(),
                };
                attachment[field] = Value::String(self.signer.sign_url(&rebased));
            }
        }
    }
}

/// The URL of an attachment under `base` (unsigned; signatures are added when it is shown).
pub fn attachment_url(base: &str, channel_id: i64, attachment_id: i64, filename: &str) -> String {
    format!("{base}/attachments/{channel_id}/{attachment_id}/{filename}")
}

/// Discord's image hash: 32 hex digits of the content's digest, `a_` first when animated.
pub fn image_hash(bytes: &[u8], animated: bool) -> String {
    let digest = Sha256::digest(bytes);
    let hex = signing::hex(&digest[..16]);
    if animated {
        format!("a_{hex}")
    } else {
        hex
    }
}

/// The bytes of a `data:image/…;base64,…` URL, at most `max_bytes` of them.
pub fn decode_data_url(field: &str, text: &str, max_bytes: usize) -> Result<Bytes, Error> {
    let (header, data) = text
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .ok_or_else(|| Error::invalid_image(field))?;
    if !header.ends_with(";base64") {
        return Err(Error::invalid_image(field));
    }
    if data.len() / 4 * 3 > max_bytes.saturating_add(3) {
        return Err(Error::file_too_large(field, max_bytes));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| Error::invalid_image(field))?;
    if bytes.len() > max_bytes {
        return Err(Error::file_too_large(field, max_bytes));
    }
    Ok(Bytes::from(bytes))
}

/// A checked file size for `field`, or its form error.
pub fn check_size(field: &str, length: usize, max_bytes: usize) -> Result<(), Error> {
    if length > max_bytes {
        Err(Error::file_too_large(field, max_bytes))
    } else {
        Ok(())
    }
}
