//! The REST side of the benchmark: requests with rate-limit retries, many of
//! them at a bounded concurrency with progress lines, registering users and
//! discovering the gateway. Everything here runs on one actix-rt system (awc
//! clients are thread-local).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use awc::http::header::AUTHORIZATION;
use awc::http::{Method, StatusCode, Uri};
use awc::{Client, Connector};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::BoxError;

/// Password of every bench user (servers usually require >= 8 characters).
const PASSWORD: &str = "bench-password-1234";
/// Max attempts per request when the server answers 429.
const MAX_ATTEMPTS: u32 = 10;
/// Cap on one rate-limit back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// An awc client with no connection-count limit (awc defaults to 100 and
/// counts open WebSockets against it) and `timeout` per request/handshake. It
/// names itself on every request, WebSocket handshakes included, as real
/// clients do: awc adds no `User-Agent` to those, and Spacebar's TypeScript
/// gateway closes a WebSocket without one.
pub fn client(timeout: Duration) -> Client {
    Client::builder()
        .connector(Connector::new().limit(0).timeout(timeout))
        .timeout(timeout)
        .add_default_header((
            actix_http::header::USER_AGENT,
            concat!("spacebar-bench/", env!("CARGO_PKG_VERSION")),
        ))
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
    pub errors: BTreeMap<String, usize>,
    pub elapsed: Duration,
}

impl Registered {
    /// "N ok, M failed in T s (R/s)[; errors: …]", of `asked` registrations.
    pub fn describe(&self, asked: usize) -> String {
        let secs = self.elapsed.as_secs_f64();
        format!(
            "{} ok, {} failed in {secs:.2} s ({:.2}/s){}",
            self.tokens.len(),
            asked.saturating_sub(self.tokens.len()),
            self.tokens.len() as f64 / secs.max(1e-9),
            if self.errors.is_empty() {
                String::new()
            } else {
                format!("; errors: {}", crate::stats::format_counts(&self.errors))
            }
        )
    }
}

/// Registers users `bench0..bench{n-1}` with at most `concurrency` requests in flight.
pub async fn register_all(
    client: &Client,
    api: &str,
    n: usize,
    concurrency: usize,
    run_id: &str,
) -> Registered {
    let batch = run_bounded("registered", n, concurrency, |i| {
        register_one(client, api, i, run_id)
    })
    .await;
    Registered {
        tokens: batch.ok,
        errors: batch.errors,
        elapsed: batch.elapsed,
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
    let (status, bytes) = call(client, Method::POST, &url, None, Some(&body)).await?;
    if !status.is_success() {
        return Err(format!("HTTP {}: {}", status.as_u16(), snippet(&bytes)));
    }
    match serde_json::from_slice::<TokenBody>(&bytes) {
        Ok(TokenBody { token: Some(t) }) => Ok(t),
        _ => Err(format!(
            "HTTP {} without a token: {}",
            status.as_u16(),
            snippet(&bytes)
        )),
    }
}

/// `POST /auth/login` as user `i` of an earlier run (same e-mail scheme and
/// password as [`register_all`]) -> its token.
pub async fn login(client: &Client, api: &str, i: usize, run_id: &str) -> Result<String, String> {
    let body = serde_json::json!({
        "login": format!("bench-{run_id}-{i}@bench.invalid"),
        "password": PASSWORD,
    });
    let url = format!("{api}/auth/login");
    let token: TokenBody = call_ok(
        client,
        Method::POST,
        &url,
        None,
        Some(&body),
        "POST /auth/login",
    )
    .await?;
    token
        .token
        .ok_or_else(|| "POST /auth/login: no token in the answer".to_string())
}

/// Results of many requests run by [`run_bounded`].
pub struct Batch<T> {
    /// Results of the items that succeeded (in completion order).
    pub ok: Vec<T>,
    /// Indices of the items that failed.
    pub failed: Vec<usize>,
    /// Error message -> how many items failed with it.
    pub errors: BTreeMap<String, usize>,
    pub elapsed: Duration,
}

impl<T> Batch<T> {
    /// `"N ok, M failed in S s (R/s)"`, plus the errors if any.
    pub fn describe(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let mut out = format!(
            "{} ok, {} failed in {secs:.2} s ({:.0}/s)",
            self.ok.len(),
            self.failed.len(),
            (self.ok.len() + self.failed.len()) as f64 / secs.max(1e-9)
        );
        if !self.errors.is_empty() {
            out.push_str(&format!(
                "; errors: {}",
                crate::stats::format_counts(&self.errors)
            ));
        }
        out
    }
}

/// Runs `f(0..n)` with at most `concurrency` in flight, printing
/// `  {label} done/n` every 5 s.
pub async fn run_bounded<T, F, Fut>(label: &str, n: usize, concurrency: usize, f: F) -> Batch<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    let done = Cell::new(0usize);
    let next_progress = Cell::new(started + PROGRESS_EVERY);
    let results: Vec<(usize, Result<T, String>)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move { (i, fut.await) }
        })
        .buffer_unordered(concurrency.max(1))
        .inspect(|_| {
            done.set(done.get() + 1);
            if Instant::now() >= next_progress.get() {
                next_progress.set(next_progress.get() + PROGRESS_EVERY);
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "  {label} {}/{n} ({secs:.1} s, {:.0}/s)",
                    done.get(),
                    done.get() as f64 / secs.max(1e-9)
                );
            }
        })
        .collect()
        .await;
    let mut batch = Batch {
        ok: Vec::with_capacity(n),
        failed: Vec::new(),
        errors: BTreeMap::new(),
        elapsed: started.elapsed(),
    };
    for (i, r) in results {
        match r {
            Ok(v) => batch.ok.push(v),
            Err(e) => {
                batch.failed.push(i);
                *batch.errors.entry(e).or_insert(0) += 1;
            }
        }
    }
    batch.failed.sort_unstable();
    batch
}

/// One try of a request.
pub enum Attempt {
    /// The server answered (anything but 429): status and body.
    Done(StatusCode, Vec<u8>),
    /// 429: wait this long before trying again.
    RateLimited(Duration),
}

/// Sends one request (JSON body if any, `Authorization: token` if any) and
/// reads the whole response (up to 64 MiB), all bounded by the client's timeout.
pub async fn attempt(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<Attempt, String> {
    let mut req = client.request(method, url);
    if let Some(token) = token {
        req = req.insert_header((AUTHORIZATION, token));
    }
    let sent = match body {
        Some(body) => req.send_json(body).await,
        None => req.send().await,
    };
    let mut resp = sent.map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .body()
        .limit(64 << 20)
        .await
        .map_err(|e| format!("reading response: {e}"))?;
    if status != StatusCode::TOO_MANY_REQUESTS {
        return Ok(Attempt::Done(status, bytes.to_vec()));
    }
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
    Ok(Attempt::RateLimited(wait))
}

/// [`attempt`], retried after the advertised delay while the server answers
/// 429 (at most [`MAX_ATTEMPTS`] times).
pub async fn call(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(StatusCode, Vec<u8>), String> {
    for _ in 0..MAX_ATTEMPTS {
        match attempt(client, method.clone(), url, token, body).await? {
            Attempt::Done(status, bytes) => return Ok((status, bytes)),
            Attempt::RateLimited(wait) => actix_rt::time::sleep(wait).await,
        }
    }
    Err("still rate limited (429) after retries".to_string())
}

/// [`call`] expecting a 2xx answer with a JSON body of type `T`. Errors name
/// the request (`what`), e.g. `POST /guilds: HTTP 403: ...`.
pub async fn call_ok<T: DeserializeOwned>(
    client: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
    what: &str,
) -> Result<T, String> {
    let (status, bytes) = call(client, method, url, token, body)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{what}: HTTP {}: {}",
            status.as_u16(),
            snippet(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{what}: HTTP {} with an unexpected body ({e}): {}",
            status.as_u16(),
            snippet(&bytes)
        )
    })
}

/// `GET /gateway` -> the gateway's base URL (`ws://host:port`).
/// The gateway URL each node of a cluster (by base URL) advertises, ready to connect to.
pub async fn node_gateways(
    client: &Client,
    nodes: &[String],
    api_version: u32,
    compress: bool,
) -> Result<Vec<String>, BoxError> {
    let mut urls = Vec::with_capacity(nodes.len());
    for node in nodes {
        let node = node.trim_end_matches('/');
        let api = format!("{node}/api/v{api_version}");
        let discovered = discover_gateway(client, &api).await?;
        urls.push(gateway_ws_url(
            node,
            None,
            &discovered,
            api_version,
            compress,
        )?);
    }
    Ok(urls)
}

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

/// The gateway URL sessions connect to: `explicit` (`--gateway-url`) or the
/// one `GET /gateway` advertised (`discovered`), which must be on `base`'s host;
/// with `?v=..&encoding=json[&compress=zlib-stream]`.
pub fn gateway_ws_url(
    base: &str,
    explicit: Option<&str>,
    discovered: &str,
    api_version: u32,
    compress: bool,
) -> Result<String, BoxError> {
    let gateway = explicit.unwrap_or(discovered).trim_end_matches('/');
    // Never connect anywhere but the server we were pointed at.
    if explicit.is_none() && !same_host(base, gateway)? {
        return Err(format!(
            "the server advertises gateway {gateway:?}, which is not on the host of {base:?}; \
             pass --gateway-url to choose the gateway explicitly"
        )
        .into());
    }
    Ok(format!(
        "{gateway}/?v={api_version}&encoding=json{}",
        if compress {
            "&compress=zlib-stream"
        } else {
            ""
        }
    ))
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
pub fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls() {
        let url = gateway_ws_url(
            "http://127.0.0.1:3001",
            None,
            "ws://127.0.0.1:3001/",
            9,
            true,
        );
        assert_eq!(
            url.ok().as_deref(),
            Some("ws://127.0.0.1:3001/?v=9&encoding=json&compress=zlib-stream")
        );
        let url = gateway_ws_url(
            "http://127.0.0.1:3001",
            Some("ws://10.0.0.1:9"),
            "wss://gateway.example.com",
            10,
            false,
        );
        assert_eq!(
            url.ok().as_deref(),
            Some("ws://10.0.0.1:9/?v=10&encoding=json")
        );
        assert!(
            gateway_ws_url("http://127.0.0.1:3001", None, "wss://example.com", 9, false).is_err()
        );
    }

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
