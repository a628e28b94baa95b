//! Signed webhooks: each event of a room is POSTed as JSON to its API key's URL (or the
//! instance's, `rooms.webhook_url`), with `X-Spacebar-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the raw body under the webhook secret. A failed delivery (no answer, or not
//! 2xx) is tried again after a wait that doubles each time, up to `rooms.webhook_attempts`.
//!
//! Deliveries waiting or under way are bounded in bytes of body (`rooms.webhook_queue_bytes`):
//! an endpoint that is down cannot grow memory without limit. Beyond the bound a webhook is
//! dropped and logged; the room's event log still has the event, which is what it is for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::RoomsConfig;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Spacebar-Signature";

/// Where a webhook goes and the secret it is signed with.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub secret: String,
}

/// How hard a delivery tries, from `[rooms]`.
#[derive(Debug, Clone, Copy)]
struct Retry {
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
}

#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
    /// Bytes of body waiting or under way.
    queued: Arc<AtomicUsize>,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            client: reqwest::Client::new(),
            queued: Arc::default(),
        }
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

impl Webhooks {
    /// Queues `body` for `target`; false when the queue is full and it was dropped.
    pub fn send(&self, target: Target, body: Bytes, config: &RoomsConfig) -> bool {
        let size = body.len();
        let limit = config.webhook_queue_bytes;
        let taken = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                queued.checked_add(size).filter(|total| *total <= limit)
            });
        if taken.is_err() {
            tracing::warn!(url = %target.url, bytes = size, "webhook queue full: webhook dropped");
            return false;
        }
        let retry = Retry {
            attempts: config.webhook_attempts,
            backoff: Duration::from_millis(config.webhook_backoff_ms),
            timeout: Duration::from_millis(config.webhook_timeout_ms),
        };
        let client = self.client.clone();
        let queued = self.queued.clone();
        actix_web::rt::spawn(async move {
            deliver(&client, &target, body, retry).await;
            queued.fetch_sub(size, Ordering::AcqRel);
        });
        true
    }
}

async fn deliver(client: &reqwest::Client, target: &Target, body: Bytes, retry: Retry) {
    let signature = signature(&target.secret, &body);
    let mut wait = retry.backoff;
    for attempt in 1..=retry.attempts {
        let sent = client
            .post(&target.url)
            .timeout(retry.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &signature)
            .body(body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => response.status().to_string(),
            Err(error) => error.to_string(),
        };
        tracing::warn!(url = %target.url, attempt, %failure, "webhook not delivered");
        if attempt < retry.attempts {
            actix_web::rt::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    tracing::warn!(url = %target.url, "webhook given up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
