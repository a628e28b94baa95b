//! The database pool against one busy account: requests that wait on slow work (decoding an
//! uploaded image, bcrypt) hold no connection while they wait, so everyone else's requests keep
//! answering. The harness's pool has 4 connections; the image queue here is deliberately larger
//! than the pool, so only not holding a connection keeps the pool free.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgba, RgbaImage};
use serde_json::json;

use crate::cdn::data_url;
use crate::common::http::{account, get, patch, Account};
use crate::common::{Server, TestServer};

/// Avatars sent at once, and the frames of each.
const FLOOD: usize = 6;
/// Each frame costs a whole 2048×2048 canvas to check (a debug build: about a second each).
const FRAMES: u32 = 2;

/// How long another user may wait for `GET /users/@me` while an attack runs.
const RESPONSIVE: Duration = Duration::from_secs(2);

/// Runs `attack` while `bystander` keeps asking for `GET /users/@me`, each answer 200 within
/// [`RESPONSIVE`]: the attack's result and the slowest answer.
async fn watched<T>(
    server: &impl Server,
    bystander: &Account,
    attack: impl Future<Output = T>,
) -> (T, Duration) {
    let done = Cell::new(false);
    let attack = async {
        let result = attack.await;
        done.set(true);
        result
    };
    let probe = async {
        let mut slowest = Duration::ZERO;
        while !done.get() {
            let started = Instant::now();
            let me = tokio::time::timeout(
                RESPONSIVE,
                get(server, "/api/v9/users/@me", Some(&bystander.token)),
            )
            .await
            .expect("GET /users/@me hung during the attack");
            assert_eq!(me.status, 200, "{:?}", me.body);
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest
    };
    futures_util::future::join(attack, probe).await
}

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
    let (answers, slowest) = watched(&server, &bystander, async {
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
}
