//! The `/rooms/` page in real Chromium (Debian's `chromium`, driven by `playwright-core` from
//! npm through tests/browser/rooms.mjs, with fake microphone and camera): two guests join one
//! public room from the page's list, each receives the other's audio, the speaking indicator
//! lights, chat arrives, a mute shows on the other's page, and a private room made on the page is
//! joined by its link only. Also: the page's files and their headers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::http::post;
use crate::common::TestServer;

/// Tests of one run are threads of one process: one `npm ci` at a time.
static INSTALLING: Mutex<()> = Mutex::new(());

/// The whole browser run's bound (Chromium's start, two joins, media, chat, mute, the private
/// room): the script stops itself after 200 s; this is the last resort.
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `playwright-core`, installed from the committed lockfile unless it is there (`.ci/run` and
/// the README's first command install it; a plain `cargo test` on a fresh checkout does too).
fn playwright() -> PathBuf {
    let _installing = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = browser_dir();
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            // Debian's Chromium is the browser; playwright's own download is not reachable.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .status()
            .expect("npm (on Debian: apt-get install nodejs npm)");
        assert!(status.success(), "npm ci in {}", dir.display());
    }
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium missing: apt-get install chromium"
    );
    dir.join("rooms.mjs")
}

#[actix_web::test]
async fn two_guests_hear_each_other_chat_and_see_a_mute_in_chromium() {
    let script = playwright();
    let server = TestServer::start().await;
    let room = post(
        &server,
        "/rooms/new",
        None,
        json!({ "name": "Browser room", "public": true }),
    )
    .await;
    assert_eq!(room.status, 201, "{:?}", room.body);

    let base = server.url("");
    let run = actix_web::rt::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args([base.as_str(), "Browser room"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
    });
    let output = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("the browser run took too long")
        .unwrap()
        .expect("node (on Debian: apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no result from the script:\n{stdout}\n{stderr}"));
    // The figures (audio bytes each way), seen with --nocapture.
    println!("{result}");

    assert_eq!(result["joined"], json!([true, true]), "{result}\n{stderr}");
    for (who, bytes) in ["Alice", "Bob"]
        .iter()
        .zip(result["audioBytesReceived"].as_array().unwrap())
    {
        assert!(
            bytes.as_u64().unwrap() > 0,
            "{who} received no audio: {result}"
        );
    }
    assert_eq!(result["chatReceived"], true, "{result}");
    assert_eq!(result["speakingShown"], true, "{result}");
    assert_eq!(result["muteShown"], true, "{result}");
    assert_eq!(result["privateByLink"], true, "{result}");
    assert_eq!(result["errors"], json!([]), "{result}");
}

#[actix_web::test]
async fn the_page_and_client_are_served_with_their_types_and_a_strict_policy() {
    let server = TestServer::start().await;
    let client = awc::Client::default();
    for (path, content_type) in [
        ("/rooms/", "text/html"),
        ("/rooms", "text/html"),
        ("/rooms/client.js", "text/javascript"),
        ("/rooms/app.js", "text/javascript"),
        ("/rooms/style.css", "text/css"),
    ] {
        let mut response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let served_as = header("content-type");
        assert!(served_as.starts_with(content_type), "{path}: {served_as}");
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let body = response.body().await.unwrap();
        if path == "/rooms/client.js" {
            // The module integrators import names its entry points.
            let text = String::from_utf8_lossy(&body);
            for export in [
                "export class Room",
                "export async function guestToken",
                "export async function publicRooms",
                "export async function createRoom",
            ] {
                assert!(text.contains(export), "{export}");
            }
        }
    }
}
