//! Conformance with discord.py, a client this project did not write. A user sets up a guild,
//! an application and its bot over REST and adds the bot to the guild; the bot script
//! (`tests/clients/discord_py_bot.py`) runs on discord.py from PyPI against this server and
//! prints a JSON line per event it sees. The test then lets a second user join, posts "!ping"
//! and edits it, and checks what a person would see: the bot's "pong" on the user's own
//! gateway, and the bot noticing the join and the edit; then the bot sends a burst of 50
//! messages with rate limits on and must never meet a 429; registers a slash command with
//! discord.py's CommandTree and answers it; sends an embed with a file; posts through a webhook
//! (`discord.Webhook.partial(...).send(..., wait=True)`) and edits what it posted. A second test
//! has a bot join a voice channel over `protocol: "udp"` and play to a person on WebRTC there.
//!
//! discord.py is installed by the test itself, once, into a virtualenv under the target
//! directory, so a plain `cargo test --workspace` works on a fresh machine with `python3`
//! (and, on Debian's own Python, the `python3-venv` package).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::bots::{application_with_bot, authorize, guild};
use crate::common::gateway::{Event, Gateway};
use crate::common::guild::text_channel;
use crate::common::http::{account, patch, post, register_user};
use crate::common::{python, TestServer};
use crate::voice_media;
use crate::voice_signalling::voice_guild;

/// The discord.py release the test pins.
const DISCORD_PY: &str = "2.7.1";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/discord_py_bot.py"
);
/// How long discord.py may take for anything (its start-up waits up to 2 s per guild).
const PATIENCE: Duration = Duration::from_secs(60);
/// VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY.
const BOT_PERMISSIONS: &str = "68608";
/// Application flags allowing the GUILD_MEMBERS and MESSAGE_CONTENT intents.
const GATEWAY_GUILD_MEMBERS: i64 = 1 << 14;
const GATEWAY_MESSAGE_CONTENT: i64 = 1 << 18;

#[actix_web::test]
async fn a_discord_py_bot_sees_joins_and_edits_and_answers_ping() {
    let python = discord_py();
    // Rate limits on, as a real instance has them: 5 messages a second per channel.
    let server = TestServer::with(&[
        ("rate_limits.enabled", "true"),
        ("rate_limits.message_create.window_ms", "1000"),
    ])
    .await;
    let (owner, owner_user) = register_user(&server, "owner").await;
    let guild_id = guild(&server, &owner).await;
    let channel_id = text_channel(&server, &owner, &guild_id).await;
    let (app_id, token) = bot_in_guild(&server, &owner, &guild_id, "PingBot").await;
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    gateway.identify(&owner).await;

    let mut bot = Bot::start(&python, &server, &token);
    let ready = bot.event("ready").await;
    assert_eq!(ready["user_id"], app_id);
    assert_eq!(ready["bot"], true);
    assert_eq!(ready["application_id"], app_id);
    assert_eq!(ready["guilds"], json!([guild_id]));
    assert!(ready["channels"]
        .as_array()
        .unwrap()
        .contains(&json!(channel_id)));

    // discord.py's CommandTree registers the bot's slash command (a bulk overwrite).
    let synced = bot.event("synced").await;
    let command = synced["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hello")
        .unwrap()["id"]
        .clone();

    // Someone joins through an invite.
    let invite = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/invites"),
        Some(&owner),
        json!({}),
    )
    .await;
    assert!(invite.status.is_success(), "{:?}", invite.body);
    let code = invite.body["code"].as_str().unwrap();
    let (guest, guest_user) = register_user(&server, "guest").await;
    let joined = post(
        &server,
        &format!("/api/v9/invites/{code}"),
        Some(&guest),
        json!({}),
    )
    .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    let join = bot.event("member_join").await;
    assert_eq!(join["guild_id"], guild_id);
    assert_eq!(join["user_id"], guest_user["id"]);
    assert_eq!(join["username"], "guest");
    assert_eq!(join["member_count"], 3);

    // "!ping" from the owner: the bot answers in the channel, and the owner sees it.
    let ping = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages"),
        Some(&owner),
        json!({ "content": "!ping" }),
    )
    .await;
    assert_eq!(ping.status, 200, "{:?}", ping.body);
    let ping_id = ping.body["id"].as_str().unwrap().to_string();
    let pong = bot_reply(&mut gateway, &app_id).await;
    assert_eq!(pong["channel_id"], channel_id);
    assert_eq!(pong["author"]["bot"], true);
    let replied = bot.event("replied").await;
    assert_eq!(replied["message_id"], pong["id"]);

    // The owner edits it; the bot sees the edit.
    let edited = patch(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages/{ping_id}"),
        &owner,
        json!({ "content": "!ping, edited" }),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    let edit = bot.event("message_edit").await;
    assert_eq!(edit["message_id"], ping_id);
    assert_eq!(edit["channel_id"], channel_id);
    assert_eq!(edit["content"], "!ping, edited");
    assert_eq!(edit["cached"], true, "the bot had seen the message arrive");

    // A burst of 50 messages: discord.py keeps to the headers and never meets a 429 (it would
    // warn on stderr, which `assert_quiet` refuses).
    let burst = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages"),
        Some(&owner),
        json!({ "content": "!burst 50" }),
    )
    .await;
    assert_eq!(burst.status, 200, "{:?}", burst.body);
    assert_eq!(bot.event("burst_done").await["count"], 50);
    let sent = server
        .count(&format!(
            "messages WHERE author_id = {app_id} AND content LIKE 'burst %'"
        ))
        .await;
    assert_eq!(sent, 50);
    // The owner saw them all, in order.
    for n in 0..50 {
        assert_eq!(
            bot_message(&mut gateway, &app_id).await["content"],
            format!("burst {n}")
        );
    }

    // The slash command the bot registered with discord.py's CommandTree, invoked by the owner.
    let invoked = post(
        &server,
        "/api/v9/interactions",
        Some(&owner),
        json!({
            "type": 2,
            "application_id": app_id,
            "guild_id": guild_id,
            "channel_id": channel_id,
            "nonce": "slash",
            "data": { "id": command, "name": "hello", "type": 1, "options": [{ "type": 3, "name": "name", "value": "world" }] },
        }),
    )
    .await;
    assert_eq!(invoked.status, 204, "{:?}", invoked.body);
    let hello = bot_message(&mut gateway, &app_id).await;
    assert_eq!(hello["content"], "hello world");
    assert_eq!(
        hello["interaction_metadata"]["user"]["id"],
        owner_user["id"]
    );
    assert_eq!(
        bot.event("slash_answered").await["user_id"],
        owner_user["id"]
    );

    // An embed and a file, as discord.py sends them (multipart), downloadable as sent.
    let asked = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages"),
        Some(&owner),
        json!({ "content": "!report" }),
    )
    .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    let report = bot_message(&mut gateway, &app_id).await;
    assert_eq!(report["embeds"][0]["title"], "Report");
    assert_eq!(report["embeds"][0]["fields"][0]["value"], "42");
    let file = &report["attachments"][0];
    assert_eq!(file["filename"], "report.txt");
    let bytes = awc::Client::default()
        .get(file["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"report bytes\n");
    let sent = bot.event("report_sent").await;
    assert_eq!(sent["files"], json!(["report.txt"]));

    // A webhook the owner made, driven by discord.py with its id and token.
    let made = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/webhooks"),
        Some(&owner),
        json!({ "name": "Hook" }),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let hook_id = made.body["id"].as_str().unwrap().to_string();
    let hook_token = made.body["token"].as_str().unwrap();
    let asked = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages"),
        Some(&owner),
        json!({ "content": format!("!webhook {hook_id} {hook_token}") }),
    )
    .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    let hooked = bot.event("webhook_sent").await;
    assert_eq!(hooked["webhook_id"], hook_id);
    assert_eq!(hooked["author"], "Hooked");
    assert_eq!(hooked["edited"], "from a webhook, edited");
    // The owner saw it arrive with the webhook as its author.
    let seen = bot_message(&mut gateway, &hook_id).await;
    assert_eq!(seen["id"], hooked["message_id"]);
    assert_eq!(seen["webhook_id"], hook_id);
    assert_eq!(seen["author"]["username"], "Hooked");
    bot.assert_quiet();
}

/// The owner's next MESSAGE_CREATE from the bot (or whoever `bot_id` names: a webhook).
async fn bot_message(gateway: &mut Gateway, bot_id: &str) -> Value {
    loop {
        let created = gateway.dispatch("MESSAGE_CREATE").await;
        if created["d"]["author"]["id"] == bot_id {
            return created["d"].clone();
        }
    }
}

/// The owner's MESSAGE_CREATE from the bot, skipping everything else.
async fn bot_reply(gateway: &mut Gateway, bot_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match gateway.next_within(left).await {
            Event::Payload(payload)
                if payload["t"] == "MESSAGE_CREATE" && payload["d"]["author"]["id"] == bot_id =>
            {
                assert_eq!(payload["d"]["content"], "pong");
                return payload["d"].clone();
            }
            Event::Payload(_) => {}
            Event::Closed(code) => panic!("the owner's gateway closed with {code:?}"),
        }
    }
}

/// An application whose bot may use the intents the script asks for (the privileged members
/// and message content ones), added to `guild_id`: its id and the bot's token.
pub async fn bot_in_guild(
    server: &TestServer,
    owner: &str,
    guild_id: &str,
    name: &str,
) -> (String, String) {
    let (app_id, token) = application_with_bot(server, owner, name).await;
    let allowed = patch(
        server,
        &format!("/api/v9/applications/{app_id}"),
        owner,
        json!({ "flags": GATEWAY_GUILD_MEMBERS | GATEWAY_MESSAGE_CONTENT }),
    )
    .await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
    let added = authorize(server, owner, &app_id, guild_id, BOT_PERMISSIONS).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    (app_id, token)
}

/// A discord.py bot in a voice channel, the way music bots are: it joins through the gateway's
/// op 4, speaks the voice gateway's `udp` protocol (IP discovery, then Opus RTP sealed with
/// `aead_xchacha20_poly1305_rtpsize`) and plays; a person in the channel, on a browser-style
/// WebRTC client, hears it, and the bot receives the person's audio sealed with its own key.
#[actix_web::test]
async fn a_discord_py_bot_plays_audio_to_people_in_a_voice_channel() {
    let python = discord_py();
    let aiortc = voice_media::aiortc();
    let server = voice_media::voice_server().await;
    let owner = account(&server, "listener").await;
    let (guild_id, voice_channel) = voice_guild(&server, &owner, &[]).await;
    let (app_id, token) = bot_in_guild(&server, &owner.token, &guild_id, "MusicBot").await;
    let text = text_channel(&server, &owner.token, &guild_id).await;
    let mut bot = Bot::start(&python, &server, &token);
    bot.event("ready").await;

    let joined = voice_media::join(&server, &owner, &guild_id, &voice_channel).await;
    let mut listener = voice_media::Peer::start(&aiortc, &joined, "publish");
    listener.event("session_description").await;
    let asked = post(
        &server,
        &format!("/api/v9/channels/{text}/messages"),
        Some(&owner.token),
        json!({ "content": format!("!voice {voice_channel}") }),
    )
    .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    let connected = bot.event("voice_connected").await;
    assert_eq!(connected["mode"], "aead_xchacha20_poly1305_rtpsize");
    // The listener is told the bot's stream, then decodes it: 150 frames are played.
    listener
        .until("op 12 for the bot", |line| {
            line["event"] == "video" && line["d"]["user_id"] == json!(app_id)
        })
        .await;
    let (audio, _) = listener.decoded(100, 0).await;
    assert!(audio >= 100, "{audio} frames decoded");
    // And the bot hears the person: their Opus, sealed with the bot's key.
    let played = bot.event("voice_played").await;
    assert!(played["heard"].as_u64() >= Some(50), "{played}");
    listener
        .until("op 13 for the bot", |line| {
            line["event"] == "client_disconnect" && line["d"]["user_id"] == json!(app_id)
        })
        .await;
    bot.assert_quiet();
}

/// The bot script, running; killed when dropped.
pub struct Bot {
    child: Child,
    lines: UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Bot {
    pub fn start(python: &Path, server: &TestServer, token: &str) -> Self {
        Self::run(python, SCRIPT, &[], server, token)
    }

    /// Runs `script` with `args`, pointed at the server with the bot's token.
    pub fn run(
        python: &Path,
        script: &str,
        args: &[&str],
        server: &TestServer,
        token: &str,
    ) -> Self {
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .env("SPACEBAR_URL", server.url(""))
            .env("BOT_TOKEN", token)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = python::stdout_lines(&mut child);
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// The next line the script printed for `event`, skipping others.
    pub async fn event(&mut self, event: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv()).await;
            match line {
                Ok(Some(line)) => {
                    let value: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| panic!("not a JSON line: {line}"));
                    if value["event"] == event {
                        return value;
                    }
                }
                Ok(None) => panic!(
                    "the bot exited before {event}: {:?}\n{}",
                    self.child.try_wait(),
                    self.stderr.lock().unwrap()
                ),
                Err(_) => panic!(
                    "no {event} from the bot in {PATIENCE:?}; its stderr:\n{}",
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }
}

impl Bot {
    /// discord.py logs every event it fails to parse and every failed request; none may occur.
    fn assert_quiet(&self) {
        let stderr = self.stderr.lock().unwrap();
        assert!(
            !stderr.contains("Traceback") && !stderr.contains("ERROR") && !stderr.contains("429"),
            "discord.py reported errors:\n{stderr}"
        );
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of a virtualenv with discord.py, made on first use. It is built beside its final
/// place and renamed into it, so two test runs sharing the target directory never use a
/// half-installed one.
pub fn discord_py() -> PathBuf {
    let check = format!(
        "import sys, discord, nacl, davey; sys.exit(discord.__version__ != '{DISCORD_PY}')"
    );
    python::venv(
        "discord-py-venv",
        &[
            &format!("discord.py=={DISCORD_PY}"),
            // What discord.py's voice needs: libsodium's bindings and the DAVE library (which it
            // loads even when the server, as this one, does not use DAVE).
            "PyNaCl==1.6.2",
            "davey==0.1.7",
        ],
        &check,
    )
    .unwrap_or_else(|why| panic!("{why}"))
}
