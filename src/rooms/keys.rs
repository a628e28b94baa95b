//! Applications' API keys: an id (public, `API…`) and a secret shown once at creation.
//!
//! The secret is 32 random bytes, and only its SHA-256 is stored. bcrypt (as for passwords)
//! would buy nothing: its slowness protects secrets people choose, which can be guessed from a
//! list; 256 random bits cannot be guessed whatever the hash's speed, and a fast hash keeps every
//! API request from costing a bcrypt round.
//!
//! Each key also has a webhook secret, which signs the webhooks sent for its rooms. The server
//! must sign with it, so it is kept as it is; it is shown once too, with the API secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::room_api_keys::RoomApiKey;

/// Longest key name and webhook URL.
const MAX_NAME_CHARS: usize = 100;
const MAX_URL_BYTES: usize = 2048;

/// Why a key cannot be made as asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a key's name is 1 to {MAX_NAME_CHARS} characters")]
    Name,
    #[error("the webhook URL must be a well-formed http(s) URL of at most {MAX_URL_BYTES} bytes")]
    WebhookUrl,
}

/// Checks a new key's name and webhook URL.
pub fn check(name: &str, webhook_url: Option<&str>) -> Result<(), KeyError> {
    if !(1..=MAX_NAME_CHARS).contains(&name.chars().count()) {
        return Err(KeyError::Name);
    }
    if let Some(url) = webhook_url {
        let scheme = url.starts_with("http://") || url.starts_with("https://");
        if !scheme || url.len() > MAX_URL_BYTES || reqwest::Url::parse(url).is_err() {
            return Err(KeyError::WebhookUrl);
        }
    }
    Ok(())
}

/// A key just made, with its secrets in clear: the only time they are seen.
pub struct NewKey {
    pub key: RoomApiKey,
    pub secret: String,
}

/// Makes a key named `name`, whose rooms' webhooks go to `webhook_url`.
pub fn generate(name: String, webhook_url: Option<String>, created_by: Option<i64>) -> NewKey {
    let secret = random_secret();
    let key = RoomApiKey {
        id: format!("API{}", Alphanumeric.sample_string(&mut rand::rng(), 12)),
        name,
        secret_sha256: digest(&secret),
        webhook_url,
        webhook_secret: random_secret(),
        created_by,
        created_at: Utc::now(),
    };
    NewKey { key, secret }
}

/// Whether `secret` is the key's.
pub fn matches(key: &RoomApiKey, secret: &str) -> bool {
    // Comparing digests: what an attacker learns from the time a comparison takes is about the
    // digest of their guess, which tells them nothing about the secret.
    digest(secret) == key.secret_sha256
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// 32 random bytes, base64url without padding (43 characters).
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_are_bounded() {
        assert_eq!(check("app", Some("https://example.org/hook")), Ok(()));
        assert_eq!(check("", None), Err(KeyError::Name));
        assert_eq!(check("app", Some("ftp://x")), Err(KeyError::WebhookUrl));
        let long = format!("https://x.org/{}", "a".repeat(2048));
        assert_eq!(check("app", Some(&long)), Err(KeyError::WebhookUrl));
    }

    #[test]
    fn only_the_shown_secret_matches_and_it_is_not_stored() {
        let new = generate("app".into(), None, None);
        assert!(new.key.id.starts_with("API") && new.key.id.len() == 15);
        assert_eq!(new.secret.len(), 43);
        assert!(matches(&new.key, &new.secret));
        assert!(!matches(&new.key, "guess"));
        assert_ne!(new.key.secret_sha256, new.secret.as_bytes());
        assert_ne!(new.key.webhook_secret, new.secret);
    }
}
