//! The REST side of the benchmark: registering users and discovering the gateway.
//! Everything here runs on one actix-rt system (awc clients are thread-local).

use std::cell::Cell;
use std::time::{Duration, Instant};

use awc::http::{StatusCode, Uri};
use awc::{Client, Connector};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::BoxError;

/// Password of every bench user (servers usually require >= 8 characters).
const PASSWORD: &str = "bench-password-1234";
/// Max attempts per registration when the server answers 429.
const MAX_ATTEMPTS: u32 = 10;
/// Cap on one rate-limit back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// An awc client with no connection-count limit (awc defaults to 100 and
/// counts open WebSockets against it) and `timeout` per request/handshake.
pub fn client(timeout: Duration) -> Client {
    Client::builder()
        .connector(Connector::new().limit(0).timeout(timeout))
        .timeout(timeout)
        .finish()
}

#[derive(Deserialize)]
struct TokenBody {
    token: Option<String>,
}

#[derive(Deserialize)]
struct RateLimitBody {
    retry_after: Option<f64>,
}

#[derive(Deserialize)]
struct GatewayBody {
    url: String,
}

/// Outcome of registering all users.
pub struct Registered {
    pub tokens: Vec<String>,
    /// Error message -> how many registrations failed with it.
    pub errors: std::collections::BTreeMap<String, usize>,
    pub elapsed: Duration,
}

/// Registers users `bench0..bench{n-1}` with at most `concurrency` requests in flight.
pub async fn register_all(
    client: &Client,
    api: &str,
    n: usize,
    concurrency: usize,
    run_id: &str,
) -> Registered {
    let started = Instant::now();
    // Progress line every 5 s, for slow (bcrypt-bound) registrations.
    let done = Cell::new(0usize);
    let next_progress = Cell::new(started + PROGRESS_EVERY);
    let results: Vec<Result<String, String>> = futures_util::stream::iter(0..n)
        .map(|i| register_one(client, api, i, run_id))
        .buffer_unordered(concurrency.max(1))
        .inspect(|_| {
            done.set(done.get() + 1);
            if Instant::now() >= next_progress.get() {
                next_progress.set(next_progress.get() + PROGRESS_EVERY);
                eprintln!(
                    "  registered {}/{n} ({:.1} s)",
                    done.get(),
                    started.elapsed().as_secs_f64()
                );
            }
        })
        .collect()
        .await;
    let mut tokens = Vec::with_capacity(n);
    let mut errors = std::collections::BTreeMap::new();
    for r in results {
        match r {
            Ok(token) => tokens.push(token),
            Err(e) => *errors.entry(e).or_insert(0) += 1,
        }
    }
    Registered {
        tokens,
        errors,
        elapsed: started.elapsed(),
    }
}

/// `POST /auth/register`, retrying on 429 after the advertised delay.
async fn register_one(
    client: &Client,
    api: &str,
    i: usize,
    run_id: &str,
) -> Result<String, String> {
    let body = serde_json::json!({
        "username": format!("bench{i}"),
        "password": PASSWORD,
        "email": format!("bench-{run_id}-{i}@bench.invalid"),
        "consent": true,
        "date_of_birth": "2000-01-01",
    });
    let url = format!("{api}/auth/register");
    for _ in 0..MAX_ATTEMPTS {
        let mut resp = client
            .post(&url)
            .send_json(&body)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .body()
            .limit(1 << 20)
            .await
            .map_err(|e| format!("reading response: {e}"))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = serde_json::from_slice::<RateLimitBody>(&bytes)
                .ok()
                .and_then(|b| b.retry_after)
                .or_else(|| {
                    resp.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(1.0);
            let wait = Duration::try_from_secs_f64(wait.max(0.05))
                .unwrap_or(MAX_BACKOFF)
                .min(MAX_BACKOFF);
            actix_rt::time::sleep(wait).await;
            continue;
        }
        if !status.is_success() {
            return Err(format!("HTTP {}: {}", status.as_u16(), snippet(&bytes)));
        }
        return match serde_json::from_slice::<TokenBody>(&bytes) {
            Ok(TokenBody { token: Some(t) }) => Ok(t),
            _ => Err(format!(
                "HTTP {} without a token: {}",
                status.as_u16(),
                snippet(&bytes)
            )),
        };
    }
    Err("still rate limited (429) after retries".to_string())
}

/// `GET /gateway` -> the gateway's base URL (`ws://host:port`).
pub async fn discover_gateway(client: &Client, api: &str) -> Result<String, BoxError> {
    let url = format!("{api}/gateway");
    let mut resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let bytes = resp.body().limit(1 << 20).await?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}: {}", resp.status(), snippet(&bytes)).into());
    }
    let body: GatewayBody = serde_json::from_slice(&bytes)
        .map_err(|e| format!("GET {url}: unexpected body ({e}): {}", snippet(&bytes)))?;
    Ok(body.url)
}

/// Whether `gateway` points at the same host as `base` (or both are loopback),
/// so the bench never wanders off to a host it was not pointed at.
pub fn same_host(base: &str, gateway: &str) -> Result<bool, BoxError> {
    let base_host = host_of(base)?;
    let gw_host = host_of(gateway)?;
    Ok(base_host == gw_host || (is_loopback(&base_host) && is_loopback(&gw_host)))
}

fn host_of(url: &str) -> Result<String, BoxError> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    uri.host()
        .map(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        })
        .ok_or_else(|| format!("URL {url:?} has no host").into())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// First 200 characters of a response body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_matching() {
        assert!(matches!(
            same_host("http://127.0.0.1:3001", "ws://127.0.0.1:3002"),
            Ok(true)
        ));
        assert!(matches!(
            same_host("http://127.0.0.1:3001", "ws://localhost:3001"),
            Ok(true)
        ));
        assert!(matches!(
            same_host("http://[::1]:3001", "ws://localhost"),
            Ok(true)
        ));
        assert!(matches!(
            same_host("http://127.0.0.1:3001", "wss://gateway.example.com"),
            Ok(false)
        ));
    }
}
