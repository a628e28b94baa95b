//! Images fetched from elsewhere: the `avatar_url` a webhook posts with. Discord fetches it and
//! serves it from its own CDN, and so does this server: the image is stored as an avatar of the
//! webhook and the message names its hash.
//!
//! A URL sent by anyone makes the server connect somewhere, so: http(s) only; the host's
//! addresses must all be public ones (unless `cdn.fetch_private_addresses`), and the address
//! checked is the address connected to (no second lookup to rebind); no redirects; at most
//! `cdn.max_image_bytes`, within [`FETCH_WITHIN`]; and what arrives must decode as an image.
//! A URL once fetched is remembered for its owner a while, and only so many fetches run at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use spacebar_actors::expiring::Expiring;
use tokio::sync::Semaphore;

use super::{image_hash, Cdn};
use crate::storage::{ImageArea, Key};

/// The longest a fetch may take, connecting included.
const FETCH_WITHIN: Duration = Duration::from_secs(5);
/// How long an image once fetched stands for its URL: a webhook posts with the same
/// `avatar_url` every time, and each fetch is a connection elsewhere.
const FETCHED_TTL: Duration = Duration::from_secs(600);
/// URLs remembered at once.
const FETCHED_KEPT: usize = 4096;
/// The longest URL fetched (and so remembered: 4,096 of these stay small).
const URL_MAX_LEN: usize = 2048;

/// Fetches running at once, server-wide; past that, a post keeps the webhook's own avatar.
/// Each one is a connection elsewhere and up to `cdn.max_image_bytes` in memory for seconds.
const FETCHES_AT_ONCE: usize = 16;

/// What remote fetching keeps: the images fetched lately ((area, owner, URL) → hash) and the
/// fetches running now.
pub struct Fetches {
    fetched: Expiring<(ImageArea, i64, String), String>,
    running: Semaphore,
}

impl Default for Fetches {
    fn default() -> Self {
        Self {
            fetched: Expiring::new(FETCHED_TTL, FETCHED_KEPT),
            running: Semaphore::new(FETCHES_AT_ONCE),
        }
    }
}

/// Why a remote image was not taken. None of these reach the client: the message goes out with
/// the webhook's own avatar, as on Discord.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("not an http(s) URL, or too long")]
    Url,
    #[error("the host has no address, or a private one")]
    Address,
    #[error("fetching: {0}")]
    Fetch(#[from] reqwest::Error),
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    #[error("took too long")]
    Slow,
    #[error("too many fetches running")]
    Busy,
    #[error("larger than allowed")]
    TooLarge,
    #[error("not an image")]
    NotImage,
    #[error("storing: {0}")]
    Store(String),
}

impl Cdn {
    /// Fetches the image at `url` and stores it as one of `owner_id`'s in `area`; its hash. A
    /// URL fetched for the same owner within [`FETCHED_TTL`] is not fetched again.
    pub async fn fetch_image(
        &self,
        url: &str,
        area: ImageArea,
        owner_id: i64,
    ) -> Result<String, RemoteError> {
        if url.len() > URL_MAX_LEN {
            return Err(RemoteError::Url);
        }
        let remembered = (area, owner_id, url.to_string());
        if let Some(hash) = self.fetches.fetched.get(&remembered) {
            return Ok(hash);
        }
        let _running = self
            .fetches
            .running
            .try_acquire()
            .map_err(|_| RemoteError::Busy)?;
        let key = |hash: &str| Key::image(area, owner_id, hash);
        // The whole of it, the name lookup included.
        let hash = tokio::time::timeout(FETCH_WITHIN, self.fetch(url, key))
            .await
            .map_err(|_| RemoteError::Slow)??;
        self.fetches.fetched.insert(remembered, hash.clone());
        Ok(hash)
    }

    async fn fetch(
        &self,
        url: &str,
        key: impl Fn(&str) -> Option<Key>,
    ) -> Result<String, RemoteError> {
        let url = reqwest::Url::parse(url).map_err(|_| RemoteError::Url)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RemoteError::Url);
        }
        let host = url.host_str().ok_or(RemoteError::Url)?.to_string();
        let port = url.port_or_known_default().ok_or(RemoteError::Url)?;
        let address = self.public_address(&host, port).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_WITHIN)
            .resolve(&host, address)
            .build()?;
        let mut response = client.get(url).send().await?;
        if !response.status().is_success() {
            return Err(RemoteError::Status(response.status()));
        }
        let max = self.config.max_image_bytes;
        let mut bytes = BytesMut::new();
        while let Some(chunk) = response.chunk().await? {
            if bytes.len() + chunk.len() > max {
                return Err(RemoteError::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        let bytes = bytes.freeze();
        let info = self
            .check_image("avatar_url", bytes.clone(), self.config.max_avatar_pixels)
            .await
            .map_err(|_| RemoteError::NotImage)?;
        let hash = image_hash(&bytes, info.animated);
        let key = key(&hash).ok_or(RemoteError::NotImage)?;
        self.storage
            .put(&key, bytes)
            .await
            .map_err(|error| RemoteError::Store(error.to_string()))?;
        Ok(hash)
    }

    /// The address to connect to for `host`: the first it resolves to, if every one it
    /// resolves to may be reached (a name with one private address among public ones is
    /// refused whole).
    async fn public_address(&self, host: &str, port: u16) -> Result<SocketAddr, RemoteError> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| RemoteError::Address)?
            .collect();
        let allowed = |a: &SocketAddr| self.config.fetch_private_addresses || is_public(a.ip());
        match found.first() {
            Some(first) if found.iter().all(allowed) => Ok(*first),
            _ => Err(RemoteError::Address),
        }
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (CGNAT), documentation, multicast, unspecified or the like.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_public_addresses_are_fetched_from() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
