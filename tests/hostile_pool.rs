//! The database pool against one busy account: requests that wait on slow work (decoding an
//! uploaded image, bcrypt) hold no connection while they wait, so everyone else's requests keep
//! answering. And files nobody may send are refused before they are stored. The harness's pool has 4 connections; the image queue here is deliberately larger
//! than the pool, so only not holding a connection keeps the pool free.

use std::path::Path;
use std::time::{Duration, Instant};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgba, RgbaImage};
use serde_json::json;

use crate::cdn::data_url;
use crate::common::guild::{guild, join};
use crate::common::http::{account, patch, post};
use crate::common::TestServer;
use crate::hostile_cdn::probed;
use crate::hostile_edge::flood;

/// Avatars sent at once, and the frames of each.
const FLOOD: usize = 6;
/// Each frame costs a whole 2048×2048 canvas to check (a debug build: about a second each).
const FRAMES: u32 = 2;

/// How long another user may wait for `GET /users/@me` while an attack runs, and a refused
/// upload for its answer.
const RESPONSIVE: Duration = Duration::from_secs(2);

/// An animated GIF avatar within every limit but as costly to check as allowed: a 2048×2048
/// canvas (`cdn.max_avatar_pixels`) and small frames after the first, each of which the server
/// decodes onto the whole canvas. (Small frames: quick to make here.)
fn big_animation(frames: u32) -> Vec<u8> {
    let delay = Delay::from_numer_denom_ms(20, 1);
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        let canvas = RgbaImage::from_pixel(2048, 2048, Rgba([0, 90, 200, 255]));
        encoder
            .encode_frame(Frame::from_parts(canvas, 0, 0, delay))
            .unwrap();
        for i in 1..frames {
            let dot = RgbaImage::from_pixel(16, 16, Rgba([255, (i * 16 % 256) as u8, 0, 255]));
            encoder
                .encode_frame(Frame::from_parts(dot, i * 32, i * 32, delay))
                .unwrap();
        }
    }
    out
}

#[actix_web::test]
async fn avatar_floods_do_not_starve_the_pool() {
    let server = TestServer::with(&[
        ("cdn.image_workers", "1"),
        ("cdn.image_queue", "16"),
        ("database.pool_wait_ms", "1000"),
    ])
    .await;
    let attacker = account(&server, "flooder").await;
    let bystander = account(&server, "bystander").await;
    let made = Instant::now();
    let avatar = data_url("image/gif", &big_animation(FRAMES));
    println!(
        "{} bytes of avatar made in {:?}",
        avatar.len(),
        made.elapsed()
    );
    let avatars = vec![avatar; FLOOD];

    let started = Instant::now();
    let (answers, slowest) = probed(&server, &bystander, async {
        futures_util::future::join_all(avatars.iter().map(|avatar| {
            let (server, token) = (&server, &attacker.token);
            let sent = Instant::now();
            async move {
                let answer = patch(
                    server,
                    "/api/v9/users/@me",
                    token,
                    json!({ "avatar": avatar }),
                )
                .await;
                println!("avatar: {} after {:?}", answer.status, sent.elapsed());
                answer
            }
        }))
        .await
    })
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    println!(
        "{FLOOD} avatar PATCHes: {statuses:?} in {:?}; slowest bystander {slowest:?}",
        started.elapsed()
    );
    // Every one is saved (or, past the queue, refused as busy); none fails for want of a
    // connection.
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(slowest < RESPONSIVE, "{slowest:?}");
}

/// How many files are under `dir` (and its subdirectories) now.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => files_under(&entry.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// Posts a 20 MB file to `channel` as `token`, watching the server's `files` directory
/// meanwhile: the status line of the answer, how long it took, and the most files the
/// directory held at any moment.
async fn post_big_file(
    server: &TestServer,
    channel: &str,
    token: &str,
) -> (String, Duration, usize) {
    let files = server.data_dir().join("files");
    let before = files_under(&files);
    let (addr, token) = (server.addr, token.to_string());
    let path = format!("/api/v9/channels/{channel}/messages");
    let started = Instant::now();
    let post = std::thread::spawn(move || flood(addr, &path, Some(&token), 1, 20 << 20));
    let mut most = 0;
    while !post.is_finished() {
        most = most.max(files_under(&files).saturating_sub(before));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answer = post.join().unwrap();
    let took = started.elapsed();
    let status = answer.lines().next().unwrap_or_default().to_string();
    (
        status,
        took,
        most.max(files_under(&files).saturating_sub(before)),
    )
}

#[actix_web::test]
async fn login_floods_neither_hold_the_pool_nor_queue_without_end() {
    let server = TestServer::with(&[
        ("security.bcrypt_cost", "8"),
        ("database.pool_wait_ms", "1000"),
    ])
    .await;
    account(&server, "victim").await;
    let bystander = account(&server, "bystander").await;
    // More than the hashing threads (one per core) and their queue (8 per core) take.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let logins = cores * 9 + 20;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let started = Instant::now();
    let (answers, slowest) = probed(&server, &bystander, async {
        futures_util::future::join_all((0..logins).map(|_| async {
            let mut answer = client
                .post(server.url("/api/v9/auth/login"))
                .send_json(&json!({ "login": "victim@example.org", "password": "guess" }))
                .await
                .unwrap();
            let retry_after = answer.headers().contains_key("retry-after");
            let body: serde_json::Value = answer.json().await.unwrap();
            (answer.status().as_u16(), retry_after, body)
        }))
        .await
    })
    .await;
    let busy = answers.iter().filter(|(status, ..)| *status == 503).count();
    println!(
        "{logins} wrong logins at once: {busy} answered 503 in {:?}; slowest bystander {slowest:?}",
        started.elapsed()
    );
    for (status, retry_after, body) in &answers {
        match status {
            400 => assert_eq!(
                body["errors"]["login"]["_errors"][0]["code"],
                "INVALID_LOGIN"
            ),
            503 => assert!(*retry_after && body["message"].is_string(), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(busy > 0, "every login queued for bcrypt");
    assert!(slowest < RESPONSIVE, "{slowest:?}");
}

#[actix_web::test]
async fn files_are_refused_before_they_are_stored() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let stranger = account(&server, "stranger").await;
    // @everyone may read and send, but not attach files.
    let everyone = patch(
        &server,
        &format!("/api/v9/guilds/{0}/roles/{0}", guild.id),
        &guild.owner.token,
        json!({ "permissions": ((1u64 << 10) | (1 << 11) | (1 << 16)).to_string() }),
    )
    .await;
    assert_eq!(everyone.status, 200, "{:?}", everyone.body);

    for (who, token, refused) in [
        ("a stranger", &stranger.token, ["403", "404"]),
        (
            "a member without ATTACH_FILES",
            &member.token,
            ["403", "403"],
        ),
    ] {
        let (status, took, stored) = post_big_file(&server, &guild.channel, token).await;
        println!("20 MB file from {who}: {status} after {took:?}; {stored} files stored");
        assert!(
            refused.iter().any(|code| status.contains(code)),
            "{who}: {status}"
        );
        assert_eq!(stored, 0, "{who}: files were written");
        assert!(took < RESPONSIVE, "{who}: {took:?}");
    }
    // The member may still send text.
    let sent = post(
        &server,
        &format!("/api/v9/channels/{}/messages", guild.channel),
        Some(&member.token),
        json!({ "content": "hi" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
}
