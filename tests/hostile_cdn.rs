//! Hostile input against the CDN and the image paths, on the real binary where memory is
//! watched: a GIF frame bomb set as an avatar, a dozen huge avatars at once; and walking
//! guessable ids for attachments nobody handed out.
//!
//! Memory is measured as the server process's peak resident size (`VmHWM`) after the attack
//! minus its resident size before it; each attack may add less than [`BUDGET`]. Meanwhile
//! another account's `GET /users/@me` must keep answering within 2 s.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{Delay, Frame, ImageEncoder, Rgba, RgbaImage};
use serde_json::{json, Value};

use crate::cdn::{attach, data_url, owner_with_channel};
use crate::common::http::{account, get, patch, post, Account};
use crate::common::process::ServerProcess;
use crate::common::{Server, TestServer};

/// What one attack may add to the server's peak memory.
const BUDGET: u64 = 64 << 20;
/// How long a bystander's request may take while an attack runs.
const RESPONSIVE: Duration = Duration::from_secs(2);

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .finish()
}

/// A field of `/proc/{pid}/status`, in bytes.
fn proc_status(server: &ServerProcess, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Runs `attack` while `bystander` keeps asking for `GET /users/@me`: the attack's result, how
/// much it added to the server's peak memory, and the slowest answer the bystander got.
async fn watched<T>(
    server: &ServerProcess,
    bystander: &Account,
    attack: impl Future<Output = T>,
) -> (T, u64, Duration) {
    let before = server.rss_bytes();
    let (result, slowest) = probed(server, bystander, attack).await;
    let grown = proc_status(server, "VmHWM:").saturating_sub(before);
    (result, grown, slowest)
}

/// Runs `attack` while `bystander` keeps asking for `GET /users/@me`, each answer a 200: the
/// attack's result and the slowest answer the bystander got.
pub(crate) async fn probed<T>(
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
        loop {
            let started = Instant::now();
            let answer = tokio::time::timeout(
                Duration::from_secs(30),
                get(server, "/api/v9/users/@me", Some(&bystander.token)),
            )
            .await;
            slowest = slowest.max(started.elapsed());
            assert!(answer.is_ok_and(|answer| answer.status == 200));
            if done.get() {
                return slowest;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    futures_util::join!(attack, probe)
}

/// A 1024×1024 canvas and 200 frames, all but the first a single pixel: a few KB that decode
/// to 200 full canvases.
fn frame_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        let delay = Delay::from_numer_denom_ms(20, 1);
        let canvas = RgbaImage::from_pixel(1024, 1024, Rgba([0, 0, 0, 255]));
        encoder
            .encode_frame(Frame::from_parts(canvas, 0, 0, delay))
            .unwrap();
        for i in 1..200u32 {
            let pixel = RgbaImage::from_pixel(1, 1, Rgba([255, (i % 256) as u8, 0, 255]));
            encoder
                .encode_frame(Frame::from_parts(pixel, i * 5, i * 5, delay))
                .unwrap();
        }
    }
    out
}

/// A PNG of one colour: small to send, `side`×`side`×3 bytes to decode.
pub(crate) fn plain_png(side: u32, shade: u8) -> Vec<u8> {
    let pixels = vec![shade; side as usize * side as usize * 3];
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::NoFilter)
        .write_image(&pixels, side, side, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// The status of `method path`; no answer within the client's 120 s counts as 504.
async fn fetch_status(server: &impl Server, method: Method, path: &str) -> StatusCode {
    match client().request(method, server.url(path)).send().await {
        Ok(response) => response.status(),
        Err(awc::error::SendRequestError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
        Err(error) => panic!("{path}: {error}"),
    }
}

fn form_error_code(body: &Value, field: &str) -> Option<String> {
    body["errors"][field]["_errors"][0]["code"]
        .as_str()
        .map(str::to_string)
}

#[actix_web::test]
async fn a_gif_frame_bomb_avatar_is_refused_and_costs_little() {
    let mut server = ServerProcess::start(&[]).await;
    let attacker = account(&server, "bomber").await;
    let bystander = account(&server, "bystander").await;
    let bomb = frame_bomb();
    assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());

    let ((set, fetched), grown, slowest) = watched(&server, &bystander, async {
        let set = patch(
            &server,
            "/api/v9/users/@me",
            &attacker.token,
            json!({ "avatar": data_url("image/gif", &bomb) }),
        )
        .await;
        // Anonymous, as any page showing the avatar would ask.
        let fetched = match set.body["avatar"].as_str() {
            Some(hash) if set.status == 200 => Some(
                fetch_status(
                    &server,
                    Method::GET,
                    &format!("/avatars/{}/{hash}.gif?size=16", attacker.id),
                )
                .await,
            ),
            _ => None,
        };
        (set, fetched)
    })
    .await;
    println!(
        "GIF bomb: avatar {} then {fetched:?}; peak memory +{} MiB; slowest bystander {slowest:?}",
        set.status,
        grown >> 20
    );
    assert!(server.is_running());
    assert!(grown < BUDGET, "+{} MiB", grown >> 20);
    assert!(slowest < RESPONSIVE, "{slowest:?}");
    assert_eq!(set.status, 400, "{:?}", set.body);
    assert_eq!(
        form_error_code(&set.body, "avatar").as_deref(),
        Some("IMAGE_INVALID")
    );
}

/// Sets every one of `avatars` on `attacker` at once, watched (see [`watched`]): the answers,
/// after printing what they cost and asserting the server stayed up, within [`BUDGET`] and
/// responsive.
async fn avatars_at_once(
    server: &mut ServerProcess,
    attacker: &Account,
    bystander: &Account,
    what: &str,
    avatars: &[String],
) -> Vec<crate::common::http::Response> {
    let (answers, grown, slowest) = watched(server, bystander, async {
        futures_util::future::join_all(avatars.iter().map(|avatar| {
            patch(
                &*server,
                "/api/v9/users/@me",
                &attacker.token,
                json!({ "avatar": avatar }),
            )
        }))
        .await
    })
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    println!(
        "{what}: {statuses:?}; peak memory +{} MiB; slowest bystander {slowest:?}",
        grown >> 20
    );
    assert!(server.is_running());
    assert!(grown < BUDGET, "+{} MiB", grown >> 20);
    assert!(slowest < RESPONSIVE, "{slowest:?}");
    answers
}

#[actix_web::test]
async fn a_dozen_huge_avatars_at_once_cost_little() {
    let mut server = ServerProcess::start(&[]).await;
    let attacker = account(&server, "painter").await;
    let bystander = account(&server, "onlooker").await;

    // 5792×5792: 33.5 million pixels, 100 MB decoded, ~100 KB sent. Twelve at once.
    let huge = vec![data_url("image/png", &plain_png(5792, 200)); 12];
    let answers = avatars_at_once(&mut server, &attacker, &bystander, "12 huge", &huge).await;
    for answer in &answers {
        assert_eq!(answer.status, 400, "{:?}", answer.body);
        assert_eq!(
            form_error_code(&answer.body, "avatar").as_deref(),
            Some("IMAGE_INVALID")
        );
    }

    // Twelve of the largest allowed at once: decoded a few at a time, the first
    // `cdn.image_queue` (8) at least saved, any past the queue told to come back (503).
    let allowed: Vec<String> = (0..12)
        .map(|i| data_url("image/png", &plain_png(2048, i)))
        .collect();
    let answers = avatars_at_once(&mut server, &attacker, &bystander, "12 allowed", &allowed).await;
    for answer in &answers {
        assert!(
            [200, 503].contains(&answer.status.as_u16()),
            "{:?}",
            answer.body
        );
    }
    let saved = answers.iter().filter(|a| a.status == 200).count();
    assert!(saved >= 8, "{saved} saved");
}

/// The low 22 bits of a snowflake: worker, process and increment.
fn low_bits(id: &str) -> u64 {
    id.parse::<u64>().unwrap() & ((1 << 22) - 1)
}

#[actix_web::test]
async fn attachment_ids_cannot_be_walked() {
    let server = TestServer::start().await;
    let (owner, _, channel) = owner_with_channel(&server, "keeper").await;

    // Ids made one after another carry more than the clock: their low bits are not a counter
    // restarting at 0 every millisecond.
    let mut ids = Vec::new();
    for i in 0..6 {
        let sent = post(
            &server,
            &format!("/api/v9/channels/{channel}/messages"),
            Some(&owner.token),
            json!({ "content": format!("message {i}") }),
        )
        .await;
        ids.push(low_bits(sent.body["id"].as_str().unwrap()));
    }
    println!("low 22 bits of six message ids: {ids:?}");
    assert!(ids.iter().any(|bits| bits & 0xfff >= 64), "{ids:?}");

    // An attachment's URL is signed by default; without the signature it is not served.
    let url = attach(&server, &owner, &channel, "secret.txt", b"private bytes").await;
    assert!(url.contains("hm="), "{url}");
    let path = &url[url.find("/attachments/").unwrap()..];
    let bare = path.split('?').next().unwrap();
    assert_eq!(
        fetch_status(&server, Method::GET, path).await,
        200,
        "the URL handed out works"
    );
    assert_eq!(
        fetch_status(&server, Method::HEAD, bare).await,
        404,
        "the bare path does not"
    );

    // A walker asking for ids near it runs into 429 after a few dozen misses.
    let attachment_id: u64 = bare.split('/').nth(3).unwrap().parse().unwrap();
    let mut misses = 1;
    let mut limited = None;
    for step in 1..=200u64 {
        let guess = format!("/attachments/{channel}/{}/secret.txt", attachment_id - step);
        match fetch_status(&server, Method::HEAD, &guess).await.as_u16() {
            404 => misses += 1,
            429 => {
                limited = Some(misses);
                break;
            }
            other => panic!("{guess}: {other}"),
        }
    }
    println!("CDN misses before 429: {limited:?}");
    let misses = limited.expect("no 429 after 200 misses");
    assert!((10..=60).contains(&misses), "{misses}");
    // Limited, the walker learns nothing, not even about a URL that would work.
    assert_eq!(fetch_status(&server, Method::GET, path).await, 429);
    // Others are not limited by the walker's misses: their images still load (from another
    // address the real file would; here the default avatars are never limited).
    assert_eq!(
        fetch_status(&server, Method::GET, "/embed/avatars/0.png").await,
        200
    );
}

/// A user's own 20 MiB attachment, asked for by 40 anonymous connections that never read:
/// the file is streamed, so each holds a small buffer rather than the whole file.
#[actix_web::test]
async fn slow_readers_of_a_large_attachment_cost_little() {
    use std::io::Write;

    let mut server = ServerProcess::start(&[]).await;
    let (owner, _, channel) = owner_with_channel(&server, "uploader").await;
    let bystander = account(&server, "reader").await;
    let file: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let url = attach(&server, &owner, &channel, "big.bin", &file).await;
    let path = &url[url.find("/attachments/").unwrap()..];
    drop(file);

    let address = server.url("");
    let address = address
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let before = server.rss_bytes();
    let started = Instant::now();
    let readers: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
            stream
        })
        .collect();
    // Long enough for the server to have read whatever it would read for them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = Instant::now();
    let me = get(&server, "/api/v9/users/@me", Some(&bystander.token)).await;
    let answered = asked.elapsed();
    let grown = server.rss_bytes().saturating_sub(before);
    println!(
        "40 slow readers of 20 MiB: memory +{} MiB after {:?}; bystander answered in {answered:?}",
        grown >> 20,
        started.elapsed()
    );
    assert!(server.is_running());
    assert_eq!(me.status, 200);
    assert!(answered < RESPONSIVE, "{answered:?}");
    assert!(grown < BUDGET, "+{} MiB", grown >> 20);
    drop(readers);
}
