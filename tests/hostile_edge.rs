//! A public instance with hostile users: request bodies sent slowly or hugely, a starved
//! database pool, a database that is down. Each test attacks over real sockets and checks what
//! everyone else sees: the server keeps answering, and answers 503 (not 500, not never) while
//! the database cannot serve it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::guild::{guild, Guild};
use crate::common::http::{account, get, post};
use crate::common::process::ServerProcess;
use crate::common::{Server, TestServer};

/// How long another user may wait for `GET /users/@me` while an attack runs.
const RESPONSIVE: Duration = Duration::from_secs(2);

/// What a raw connection got back.
struct Answer {
    text: String,
    /// When the first bytes of the answer came, counted from the end of the request head.
    after: Option<Duration>,
    /// Whether the server closed the connection.
    closed: bool,
}

/// Sends `head`, then the body one byte every `every`, until the server answers and closes
/// or `give_up` passes.
fn drip(addr: SocketAddr, head: String, every: Duration, give_up: Duration) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(every)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = Answer {
        text: String::new(),
        after: None,
        closed: false,
    };
    let mut buf = [0u8; 4096];
    while started.elapsed() < give_up {
        match stream.read(&mut buf) {
            Ok(0) => {
                answer.closed = true;
                break;
            }
            Ok(n) => {
                answer.after.get_or_insert(started.elapsed());
                answer.text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Nothing to read yet: one more byte (the server may have stopped reading).
                let _ = stream.write_all(b"x");
            }
            Err(_) => {
                answer.closed = true;
                break;
            }
        }
    }
    answer
}

/// `GET /users/@me` as `token`, which must answer 200 within [`RESPONSIVE`]: how long it took.
async fn responsive(server: &impl Server, token: &str) -> Duration {
    let started = Instant::now();
    let me = tokio::time::timeout(RESPONSIVE, get(server, "/api/v9/users/@me", Some(token)))
        .await
        .expect("GET /users/@me hung during the attack");
    assert_eq!(me.status, 200, "{:?}", me.body);
    started.elapsed()
}

/// The path of an absolute URL the server handed out.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
}

/// `count` pre-upload slots for files of `size` bytes in the guild's channel.
async fn pre_uploads(server: &impl Server, guild: &Guild, count: usize, size: usize) -> Vec<Value> {
    let files: Vec<_> = (0..count)
        .map(|i| json!({ "id": i.to_string(), "filename": "big.bin", "file_size": size }))
        .collect();
    let asked = post(
        server,
        &format!("/api/v9/channels/{}/attachments", guild.channel),
        Some(&guild.owner.token),
        json!({ "files": files }),
    )
    .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    asked.body["attachments"].as_array().unwrap().clone()
}

/// A server asking request bodies for `rate` bytes a second after `grace` seconds.
async fn paced(grace: u64, rate: u64) -> TestServer {
    let (grace, rate) = (grace.to_string(), rate.to_string());
    TestServer::with(&[
        ("http.body_grace_secs", grace.as_str()),
        ("http.body_min_bytes_per_sec", rate.as_str()),
    ])
    .await
}

#[actix_web::test]
async fn slow_uploads_neither_starve_the_pool_nor_last() {
    // The harness's pool has 4 connections; 8 uploads each sending 10 bytes of a declared
    // megabyte, then a byte every 200 ms (5 B/s, far under the 1 KiB/s asked for here).
    let server = paced(2, 1024).await;
    let guild = guild(&server).await;
    let addr = server.addr;
    let attackers: Vec<_> = pre_uploads(&server, &guild, 8, 1_000_000)
        .await
        .iter()
        .map(|slot| {
            let path = path_of(slot["upload_url"].as_str().unwrap());
            let head = format!(
                "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000\r\n\r\n0123456789"
            );
            std::thread::spawn(move || {
                drip(
                    addr,
                    head,
                    Duration::from_millis(200),
                    Duration::from_secs(15),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = responsive(&server, &guild.owner.token).await;
    println!("GET /users/@me during 8 slow uploads: {took:?}");
    for attacker in attackers {
        let answer = tokio::task::spawn_blocking(move || attacker.join().unwrap())
            .await
            .unwrap();
        assert!(
            answer.text.starts_with("HTTP/1.1 408"),
            "a slow upload is cut with 408: {:?}",
            answer.text
        );
        let after = answer.after.unwrap();
        println!("slow upload cut after {after:?}");
        assert!(after < Duration::from_secs(5), "cut late: {after:?}");
        assert!(answer.closed, "the connection of a slow body is closed");
    }
    responsive(&server, &guild.owner.token).await;
}

#[actix_web::test]
async fn slow_bodies_of_members_hold_no_connection() {
    // Eight members' PATCHes of a channel pass the check of who they are and what they may do
    // (on a pooled connection), then send their body a byte at a time: the pool's 4
    // connections must not wait for them.
    let server = paced(30, 1).await;
    let guild = guild(&server).await;
    let addr = server.addr;
    let (channel, token) = (guild.channel.clone(), guild.owner.token.clone());
    let attackers: Vec<_> = (0..8)
        .map(|_| {
            let head = format!(
                "PATCH /api/v9/channels/{channel} HTTP/1.1\r\nHost: {addr}\r\n\
                 Authorization: {token}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100000\r\n\r\n{{\"name\": \""
            );
            std::thread::spawn(move || {
                drip(
                    addr,
                    head,
                    Duration::from_millis(200),
                    Duration::from_secs(4),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let took = responsive(&server, &guild.owner.token).await;
    println!("GET /users/@me during 8 slow member bodies: {took:?}");
    responsive(&server, &guild.owner.token).await;
    for attacker in attackers {
        tokio::task::spawn_blocking(move || attacker.join().unwrap())
            .await
            .unwrap();
    }
}

#[actix_web::test]
async fn a_quiet_gateway_connection_is_no_slow_body() {
    // A WebSocket's "body" is the socket: the pace asked of request bodies does not apply.
    let server = paced(1, 1_000_000).await;
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    gateway.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(gateway.payload().await["op"], 11);
}

#[actix_web::test]
async fn a_starved_pool_answers_503_and_readyz_says_so() {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let server = TestServer::with(&[("database.pool_wait_ms", "500")]).await;
    let alice = account(&server, "alice").await;
    // Every query on users waits behind this lock: the requests that reach one hold all 4
    // pooled connections, and the next finds none.
    let mut locker = diesel_async::AsyncPgConnection::establish(&server.database_url)
        .await
        .unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut locker)
        .await
        .unwrap();
    diesel::sql_query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let waiting: Vec<_> = (0..4)
        .map(|_| {
            let url = server.url("/api/v9/users/@me");
            let token = alice.token.clone();
            actix_web::rt::spawn(async move {
                let client = awc::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .finish();
                let response = client
                    .get(url)
                    .insert_header(("Authorization", token))
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let starved = unavailable(&server, &alice.token).await;
    println!(
        "a request to a starved pool answered in {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < RESPONSIVE);
    drop(starved);
    let ready = awc::Client::new()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "/readyz reports a starved pool");
    let healthy = get(&server, "/healthz", None).await;
    assert_eq!(healthy.status, 200);
    diesel::sql_query("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
    for waiter in waiting {
        assert_eq!(waiter.await.unwrap(), 200, "the held requests finish");
    }
    let ready = get(&server, "/readyz", None).await;
    assert_eq!(ready.status, 200);
    responsive(&server, &alice.token).await;
}

/// `GET /users/@me`, which must be 503 with `Retry-After` and Discord's error shape.
async fn unavailable(server: &impl Server, token: &str) -> Value {
    let mut response = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish()
        .get(server.url("/api/v9/users/@me"))
        .insert_header(("Authorization", token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        retry.is_some_and(|r| r.parse::<u64>().is_ok()),
        "Retry-After"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 0, "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}

#[actix_web::test]
async fn a_database_that_is_down_is_503_until_it_is_back() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let name = server.database_name();
    server
        .admin_sql(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
        ))
        .await;
    server
        .admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;
    for _ in 0..3 {
        unavailable(&server, &alice.token).await;
    }
    let ready = get(&server, "/readyz", None).await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    server
        .admin_sql(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .await;
    responsive(&server, &alice.token).await;
    let ready = get(&server, "/readyz", None).await;
    assert_eq!(ready.status, 200);
}

/// Posts a multipart message of `files` files of `size` bytes each to `path` over a raw
/// connection (as `token` when given), as fast as the server takes it: the server's answer.
pub(crate) fn flood(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    files: usize,
    size: usize,
) -> String {
    let boundary = "hostileboundary";
    let json = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n\
         {{\"content\":\"hi\"}}\r\n"
    );
    let part = |i: usize| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files[{i}]\"; \
             filename=\"f{i}.bin\"\r\n\r\n"
        )
    };
    let tail = format!("--{boundary}--\r\n");
    let length =
        json.len() + (0..files).map(|i| part(i).len() + size + 2).sum::<usize>() + tail.len();
    let mut stream = TcpStream::connect(addr).unwrap();
    // The answer is read as it comes: the server may answer, and close, long before the end.
    let mut reading = stream.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut answer = Vec::new();
        let _ = reading.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    let authorization = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
    );
    let chunk = vec![b'a'; 1 << 20];
    // Stops at the first write the server refuses (it answered and closed).
    let _ = (|| -> std::io::Result<()> {
        stream.write_all(head.as_bytes())?;
        stream.write_all(json.as_bytes())?;
        for i in 0..files {
            stream.write_all(part(i).as_bytes())?;
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len());
                stream.write_all(&chunk[..n])?;
                left -= n;
            }
            stream.write_all(b"\r\n")?;
        }
        stream.write_all(tail.as_bytes())
    })();
    reader.join().unwrap()
}

#[actix_web::test]
async fn a_multipart_message_is_capped_as_a_whole() {
    let server = TestServer::with(&[("http.max_multipart_bytes", "3000")]).await;
    let path = webhook(&server).await;
    let addr = server.addr;
    let (one, three) = tokio::task::spawn_blocking(move || {
        (
            flood(addr, &path, None, 1, 1000),
            flood(addr, &path, None, 3, 1000),
        )
    })
    .await
    .unwrap();
    assert!(one.starts_with("HTTP/1.1 204"), "{one}");
    assert!(three.starts_with("HTTP/1.1 413"), "{three}");
    assert!(three.contains("40005"), "{three}");
    // The files of the refused message, written as they came, are gone again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let uploads = server.data_dir().join("files/uploads");
    let left = std::fs::read_dir(&uploads).map_or(0, |dir| dir.count());
    assert_eq!(left, 0, "files left in {uploads:?}");
}

/// A webhook of a new guild's: its execute path.
async fn webhook(server: &impl Server) -> String {
    let guild = guild(server).await;
    let hook = post(
        server,
        &format!("/api/v9/channels/{}/webhooks", guild.channel),
        Some(&guild.owner.token),
        json!({ "name": "hook" }),
    )
    .await;
    assert_eq!(hook.status, 200, "{:?}", hook.body);
    format!(
        "/api/v9/webhooks/{}/{}",
        hook.body["id"].as_str().unwrap(),
        hook.body["token"].as_str().unwrap()
    )
}

#[actix_web::test]
async fn message_files_go_to_storage_without_being_held() {
    let server = ServerProcess::start(&[]).await;
    let path = webhook(&server).await;
    let watch = PeakRss::watch(&server);
    let addr = server.addr;
    // 4 messages at once, each with one file just under 25 MiB.
    let posts: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || flood(addr, &path, None, 1, (25 << 20) - 4096))
        })
        .collect();
    for post in posts {
        let answer = tokio::task::spawn_blocking(move || post.join().unwrap())
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer:.300}");
    }
    watch.assert_bounded("4 x 25 MiB webhook messages");
}

/// The highest resident set size of a server process while it is watched.
struct PeakRss {
    before: u64,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl PeakRss {
    fn watch(server: &ServerProcess) -> Self {
        let (pid, before) = (server.pid(), server.rss_bytes());
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_of(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            before,
            peak,
            done,
            sampler,
        }
    }

    /// Stops watching: the growth during `attack` stayed under [`RSS_BOUND`].
    fn assert_bounded(self, attack: &str) {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap();
        let grown = self
            .peak
            .load(Ordering::Relaxed)
            .saturating_sub(self.before);
        println!("{attack}: RSS +{} MiB", grown >> 20);
        assert!(
            grown < RSS_BOUND,
            "{attack}: RSS grew by {} MiB",
            grown >> 20
        );
    }
}

/// How much an attack may grow the server's resident memory.
const RSS_BOUND: u64 = 64 << 20;

#[actix_web::test]
async fn bogus_webhook_tokens_cost_no_memory() {
    let mut server = ServerProcess::start(&[]).await;
    let alice = account(&server, "alice").await;
    responsive(&server, &alice.token).await;
    let watch = PeakRss::watch(&server);
    // 4 posts at once of 10 files of 25 MiB each to a webhook whose token is wrong.
    let addr = server.addr;
    let posts: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let path = format!("/api/v9/webhooks/{}/not-a-token", 1000 + i);
                // Just under the attachment limit each (25 MiB), as the attack was.
                flood(addr, &path, None, 10, (25 << 20) - 4096)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    responsive(&server, &alice.token).await;
    for post in posts {
        let answer = tokio::task::spawn_blocking(move || post.join().unwrap())
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer:.200}");
        assert!(answer.contains("10015"), "Unknown Webhook: {answer:.400}");
    }
    watch.assert_bounded("4 x 250 MiB bogus-token webhook posts");
    assert!(server.is_running(), "the server survived");
}

#[actix_web::test]
async fn pre_uploads_go_to_storage_without_being_held() {
    let server = ServerProcess::start(&[]).await;
    let guild = guild(&server).await;
    let size = (25 << 20) - 4096;
    let slots = pre_uploads(&server, &guild, 8, size).await;
    let watch = PeakRss::watch(&server);
    let addr = server.addr;
    let puts: Vec<_> = slots
        .iter()
        .map(|slot| {
            let path = path_of(slot["upload_url"].as_str().unwrap());
            std::thread::spawn(move || put_raw(addr, &path, size))
        })
        .collect();
    for put in puts {
        let answer = tokio::task::spawn_blocking(move || put.join().unwrap())
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
    }
    // The message that takes all 8 reads what they are, not all 200 MiB of them.
    let attachments: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| json!({ "id": i.to_string(), "uploaded_filename": slot["upload_filename"] }))
        .collect();
    let sent = post(
        &server,
        &format!("/api/v9/channels/{}/messages", guild.channel),
        Some(&guild.owner.token),
        json!({ "attachments": attachments }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(sent.body["attachments"][7]["size"], size);
    watch.assert_bounded("8 x 25 MiB pre-uploads and their message");
}

/// `PUT path` with `size` bytes, over a raw connection: the server's answer.
fn put_raw(addr: SocketAddr, path: &str, size: usize) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {size}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A process's resident set size in bytes, while it runs.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
