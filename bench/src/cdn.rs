//! `cdn`: the CDN under concurrent load. Sets up one user with an avatar and one message with
//! a 1 MiB attachment, warms the avatar's 128 px variant, then for each of the two URLs runs
//! `--connections` keep-alive loops for `--duration` seconds and prints requests/s and
//! latency percentiles. Last, the resize throughput of this server's own image code
//! (a 1024² PNG to 128 px PNG), measured in-process.

use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::http::Method;
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use crate::rest::{call_ok, client, register_all};
use crate::stats::nearest_rank;
use crate::target::{machine_note, run_id, Quiet, Target};
use crate::BoxError;

#[derive(Args)]
pub struct CdnArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    quiet: Quiet,
    /// Concurrent keep-alive connections (spread over --threads).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Client threads, each with its own event loop.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds of load per URL.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Resizes to time for the resize throughput.
    #[arg(long, default_value_t = 40)]
    resizes: usize,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Me {
    id: String,
    avatar: Option<String>,
}

pub fn run(args: CdnArgs) -> Result<(), BoxError> {
    let (avatar_url, attachment_url) = actix_rt::System::new().block_on(set_up(&args))?;
    println!("{}", machine_note(&args.target.base()));
    args.quiet.wait();
    for (label, url) in [
        ("cached 128px avatar", &avatar_url),
        ("1 MiB attachment", &attachment_url),
    ] {
        let outcome = load(&args, url);
        print_outcome(label, &outcome, args.duration);
    }
    resize_throughput(args.resizes);
    Ok(())
}

/// A 1024² PNG with a gradient and a pattern (no flat colour that compresses to nothing).
fn picture(size: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(size, size, |x, y| {
        image::Rgba([(x % 251) as u8, (y % 241) as u8, ((x ^ y) % 256) as u8, 255])
    });
    let mut out = Vec::new();
    let _ = image::DynamicImage::ImageRgba8(image)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png);
    out
}

async fn set_up(args: &CdnArgs) -> Result<(String, String), BoxError> {
    use base64::Engine;
    let target = &args.target;
    let api = target.api();
    let http = client(target.timeout());
    let registered = register_all(&http, &api, 1, 1, &run_id()).await;
    let token = registered
        .tokens
        .first()
        .ok_or("registering the bench user failed")?
        .clone();
    let avatar = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(picture(512))
    );
    let me: Me = call_ok(
        &http,
        Method::PATCH,
        &format!("{api}/users/@me"),
        Some(&token),
        Some(&json!({ "avatar": avatar })),
        "PATCH /users/@me",
    )
    .await?;
    let hash = me.avatar.ok_or("the server kept no avatar")?;
    let guild: Id = call_ok(
        &http,
        Method::POST,
        &format!("{api}/guilds"),
        Some(&token),
        Some(&json!({ "name": "cdn bench" })),
        "POST /guilds",
    )
    .await?;
    let channels: Vec<serde_json::Value> = call_ok(
        &http,
        Method::GET,
        &format!("{api}/guilds/{}/channels", guild.id),
        Some(&token),
        None,
        "GET /guilds/{id}/channels",
    )
    .await?;
    let channel = channels
        .iter()
        .find(|c| c["type"] == 0)
        .and_then(|c| c["id"].as_str())
        .ok_or("the guild has no text channel")?
        .to_string();
    let boundary = "spacebar-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; \
         filename=\"one-mebibyte.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend((0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut response = http
        .post(format!("{api}/channels/{channel}/messages"))
        .insert_header(("Authorization", token.as_str()))
        .insert_header((
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .send_body(body)
        .await
        .map_err(|e| format!("POST message with a file: {e}"))?;
    let bytes = response.body().limit(1 << 20).await?;
    let message: serde_json::Value = serde_json::from_slice(&bytes)?;
    let attachment = message["attachments"][0]["url"]
        .as_str()
        .ok_or_else(|| format!("no attachment in {message}"))?
        .to_string();
    let avatar = format!("{}/avatars/{}/{hash}.png?size=128", target.base(), me.id);
    // The first request makes the variant; the measured ones find it cached.
    let started = Instant::now();
    let mut warm = http.get(&avatar).send().await?;
    let _ = warm.body().await?;
    println!(
        "avatar variant made on first request in {:.1} ms (HTTP {})",
        started.elapsed().as_secs_f64() * 1000.0,
        warm.status().as_u16()
    );
    Ok((avatar, attachment))
}

struct Outcome {
    latencies_ms: Vec<f64>,
    failures: usize,
    elapsed: Duration,
}

/// `--connections` loops over `--threads` threads, each GETting `url` until the time is up.
fn load(args: &CdnArgs, url: &str) -> Outcome {
    let threads = args.threads.max(1);
    let per_thread = args.connections.max(1).div_ceil(threads);
    let duration = Duration::from_secs(args.duration.max(1));
    let timeout = args.target.timeout();
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let url = url.to_string();
            std::thread::spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let http = Rc::new(client(timeout));
                    let deadline = Instant::now() + duration;
                    let loops = (0..per_thread).map(|_| {
                        let http = http.clone();
                        let url = url.clone();
                        async move {
                            let mut latencies = Vec::new();
                            let mut failures = 0;
                            while Instant::now() < deadline {
                                let sent = Instant::now();
                                let ok = match http.get(&url).send().await {
                                    Ok(mut response) => {
                                        response.status().is_success()
                                            && response.body().limit(2 << 20).await.is_ok()
                                    }
                                    Err(_) => false,
                                };
                                if ok {
                                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                                } else {
                                    failures += 1;
                                }
                            }
                            (latencies, failures)
                        }
                    });
                    futures_util::future::join_all(loops).await
                })
            })
        })
        .collect();
    let mut outcome = Outcome {
        latencies_ms: Vec::new(),
        failures: 0,
        elapsed: Duration::ZERO,
    };
    for handle in handles {
        if let Ok(results) = handle.join() {
            for (latencies, failures) in results {
                outcome.latencies_ms.extend(latencies);
                outcome.failures += failures;
            }
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn print_outcome(label: &str, outcome: &Outcome, duration: u64) {
    let mut sorted = outcome.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let rate = sorted.len() as f64 / outcome.elapsed.as_secs_f64().max(0.001);
    let p = |q| nearest_rank(&sorted, q).unwrap_or(f64::NAN);
    println!(
        "{label}: {} requests in {duration} s, {rate:.0} req/s, {} failed; latency p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        outcome.failures,
        p(50.0),
        p(99.0),
        p(100.0)
    );
}

/// This server's resize path (decode, fit to 128 px, encode PNG) on a 1024² PNG.
fn resize_throughput(count: usize) {
    let original = picture(1024);
    let count = count.max(1);
    let started = Instant::now();
    let mut failed = 0;
    for _ in 0..count {
        if spacebar::cdn::imaging::convert(
            &original,
            Some(128),
            spacebar::cdn::imaging::Format::Png,
            spacebar::cdn::imaging::Budget {
                pixels: u64::MAX,
                animation_pixels: u64::MAX,
            },
        )
        .is_err()
        {
            failed += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "resize 1024x1024 PNG ({} KiB) -> 128 px PNG: {:.1} resizes/s on one core \
         ({:.1} ms each, {failed} failed)",
        original.len() / 1024,
        count as f64 / elapsed.max(1e-9),
        elapsed * 1000.0 / count as f64
    );
}
