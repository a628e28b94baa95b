//! What client libraries hit besides the everyday routes, as they hit it: chorus's test teardown
//! (`POST /guilds/{id}/delete`, then `POST /users/@me/delete` with `{"password": null}`), the
//! instance description chorus reads before anything else (`/version`, `/ping`,
//! `/policies/instance`, `/policies/instance/limits`, deserialized here into chorus's own types,
//! copied field by field in [`chorus`]), invites with `channel_id`, the smaller routes clients
//! fetch when they open a profile, and the gateway close codes libraries wait for, each followed
//! by the server dropping the TCP connection even when the client never answers the close;
//! discord.py (`tests/clients/discord_py_shards.py`) meets the shard limit with its plain and
//! its auto-sharded client.

use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bots::{application_with_bot, authorize, guild as bot_guild};
use crate::common::gateway::Gateway;
use crate::common::guild::{guild, join};
use crate::common::http::{
    account, assert_form_error, befriend, get, post, register, registration, request, Account,
};
use crate::common::TestServer;
use crate::discord_py::{discord_py, Bot};

const JSON: &str = "v=9&encoding=json";
const SHARDS_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/discord_py_shards.py"
);
/// How long the server may keep a TCP connection after its close frame, answered or not.
const DROP_DEADLINE: Duration = Duration::from_secs(2);

/// chorus's configuration types (`src/types/config/types/`), field by field with chorus's
/// names and integer widths: what chorus deserializes `/policies/instance*` into. A field we
/// leave out, mistype or overflow fails the test as it fails the client.
#[allow(dead_code)] // Fields are there to be parsed as chorus parses them, not read.
mod chorus {
    use serde::{Deserialize, Deserializer};

    /// chorus's `Snowflake`: a decimal string (or a number) of a u64.
    fn snowflake<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<serde_json::Value>::deserialize(d)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => text
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom("failed to parse string as u64")),
            Some(serde_json::Value::Number(n)) => Ok(n.as_u64()),
            Some(other) => Err(serde::de::Error::custom(format!(
                "not a snowflake: {other}"
            ))),
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GeneralConfiguration {
        pub instance_name: String,
        pub instance_description: Option<String>,
        pub front_page: Option<String>,
        pub tos_page: Option<String>,
        pub correspondence_email: Option<String>,
        pub correspondence_user_id: Option<String>,
        pub image: Option<String>,
        #[serde(default, deserialize_with = "snowflake")]
        pub instance_id: Option<u64>,
    }

    /// `/ping`'s `instance` (chorus's `PingInstance`).
    #[derive(Debug, Deserialize)]
    pub struct PingReturn {
        pub ping: String,
        pub instance: PingInstance,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PingInstance {
        #[serde(default, deserialize_with = "snowflake")]
        pub id: Option<u64>,
        pub name: String,
        pub description: Option<String>,
    }

    /// `/version` (chorus's `VersionReturn`).
    #[derive(Debug, Deserialize)]
    pub struct VersionReturn {
        pub version: String,
        pub server: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LimitsConfiguration {
        pub user: UserLimits,
        pub guild: GuildLimits,
        pub message: MessageLimits,
        pub channel: ChannelLimits,
        pub rate: RateLimits,
        pub absolute_rate: GlobalRateLimits,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct UserLimits {
        pub max_guilds: u64,
        pub max_username: u16,
        pub max_friends: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GuildLimits {
        pub max_roles: u16,
        pub max_emojis: u16,
        pub max_members: u64,
        pub max_channels: u32,
        pub max_channels_in_category: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct MessageLimits {
        pub max_characters: u32,
        #[serde(default)]
        pub max_tts_characters: u32,
        pub max_reactions: u32,
        pub max_attachment_size: u64,
        pub max_bulk_delete: u32,
        pub max_embed_download_size: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ChannelLimits {
        pub max_pins: u16,
        pub max_topic: u16,
        pub max_webhooks: u16,
    }

    #[derive(Debug, Deserialize)]
    pub struct RateLimits {
        pub enabled: bool,
        pub ip: RateLimitOptions,
        pub global: RateLimitOptions,
        pub error: RateLimitOptions,
        pub routes: RouteRateLimit,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RateLimitOptions {
        pub bot: Option<u64>,
        pub count: u64,
        /// Seconds.
        pub window: u64,
        #[serde(default)]
        pub only_ip: bool,
    }

    #[derive(Debug, Deserialize)]
    pub struct RouteRateLimit {
        pub guild: RateLimitOptions,
        pub webhook: RateLimitOptions,
        pub channel: RateLimitOptions,
        pub auth: AuthRateLimit,
    }

    #[derive(Debug, Deserialize)]
    pub struct AuthRateLimit {
        pub login: RateLimitOptions,
        pub register: RateLimitOptions,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GlobalRateLimits {
        pub register: GlobalRateLimit,
        pub send_message: GlobalRateLimit,
    }

    #[derive(Debug, Deserialize)]
    pub struct GlobalRateLimit {
        pub limit: u64,
        pub window: u64,
        pub enabled: bool,
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Value) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn assert_code(response: &crate::common::http::Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code, "{:?}", response.body);
}

#[actix_web::test]
async fn the_instance_describes_itself_in_the_types_chorus_reads() {
    let server = TestServer::with(&[
        ("rate_limits.enabled", "true"),
        ("rate_limits.message_create.limit", "7"),
        ("rate_limits.message_create.window_ms", "2500"),
        ("rate_limits.webhook_execute.window_ms", "2000"),
    ])
    .await;
    // chorus asks `/version` first to tell servers apart, as symfonia answers it.
    let version = get(&server, "/api/version", None).await;
    assert_eq!(version.status, 200, "{:?}", version.body);
    let version: chorus::VersionReturn = parse(&version.body);
    assert_eq!(version.server, "spacebar");
    assert_eq!(version.version, env!("CARGO_PKG_VERSION"));

    let general = get(&server, "/api/policies/instance", None).await.body;
    let general: chorus::GeneralConfiguration = parse(&general);
    assert_eq!(general.instance_name, "spacebar");
    let instance_id = general.instance_id.expect("an instanceId");
    // Nothing configured is null, not an empty string a client would load as an image.
    assert_eq!(general.image, None);
    assert_eq!(general.tos_page, None);
    let ping: chorus::PingReturn = parse(&get(&server, "/api/v9/ping", None).await.body);
    assert_eq!(ping.ping, "pong!");
    assert_eq!(
        ping.instance.id,
        Some(instance_id),
        "one id for the instance"
    );

    let limits = get(&server, "/api/policies/instance/limits", None)
        .await
        .body;
    let limits: chorus::LimitsConfiguration = parse(&limits);
    assert_eq!(limits.user.max_username, 32);
    assert_eq!(limits.message.max_characters, 2000);
    // The rate limits clients pace themselves by are the ones the server keeps.
    let rate = &limits.rate;
    assert!(rate.enabled);
    let channel = &rate.routes.channel;
    assert_eq!((channel.count, channel.window), (7, 3), "2.5 s rounds up");
    let webhook = &rate.routes.webhook;
    assert_eq!((webhook.count, webhook.window), (5, 2));
    assert_eq!((rate.global.count, rate.global.window), (50, 1));
    assert_eq!((rate.routes.guild.count, rate.routes.guild.window), (50, 1));
    let login = &rate.routes.auth.login;
    assert_eq!((login.count, login.window), (10, 60));
    assert_eq!(rate.ip.count, rate.global.count);
    assert_eq!(rate.error.count, rate.global.count);
    assert!(!limits.absolute_rate.register.enabled);
    assert!(!limits.absolute_rate.send_message.enabled);

    // Fermi's flattened view carries the same.
    let flat = get(&server, "/api/v9/policies/instance/config", None)
        .await
        .body;
    assert_eq!(flat["limits_rate_routes_channel_count"], 7);

    let off = TestServer::with(&[("rate_limits.enabled", "false")]).await;
    let limits = get(&off, "/api/policies/instance/limits", None).await.body;
    let limits: chorus::LimitsConfiguration = parse(&limits);
    assert!(!limits.rate.enabled);
}

#[actix_web::test]
async fn chorus_teardown_deletes_the_guild_then_the_account() {
    let server = TestServer::start().await;
    // chorus's test accounts are registered without a password.
    let mut body = registration("integrationtestuser", "itu@example.org");
    body["password"] = Value::Null;
    let registered = post(&server, "/api/v9/auth/register", None, body).await;
    assert_eq!(registered.status, 200, "{:?}", registered.body);
    let token = registered.body["token"].as_str().unwrap().to_string();
    let created = post(
        &server,
        "/api/v9/guilds",
        Some(&token),
        json!({ "name": "Test-Guild!" }),
    )
    .await;
    let guild_id = created.body["id"].as_str().unwrap().to_string();
    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway.identify(&token).await;

    // An owner must hand their guilds over (or delete them) first.
    let refused = post(
        &server,
        "/api/users/@me/delete",
        Some(&token),
        json!({ "password": null }),
    )
    .await;
    assert_code(&refused, 400, 40011);
    assert_eq!(
        get(&server, "/api/users/@me", Some(&token)).await.status,
        200
    );

    let deleted = post(
        &server,
        &format!("/api/guilds/{guild_id}/delete"),
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let gone = post(
        &server,
        "/api/users/@me/delete",
        Some(&token),
        json!({ "password": null }),
    )
    .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    assert_eq!(gateway.closed().await, Some(4004));
    assert_eq!(
        get(&server, "/api/users/@me", Some(&token)).await.status,
        401
    );
    let mut again = Gateway::connect(&server, JSON).await;
    again
        .send(json!({ "op": 2, "d": { "token": token, "properties": {} } }))
        .await;
    assert_eq!(again.closed().await, Some(4004));
    assert_eq!(
        server
            .count("users where username = 'integrationtestuser'")
            .await,
        0
    );
}

#[actix_web::test]
async fn deleting_or_disabling_an_account_needs_its_password() {
    let server = TestServer::start().await;
    let me = account(&server, "leaver").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway.identify(&me.token).await;
    for route in ["/api/v9/users/@me/delete", "/api/v9/users/@me/disable"] {
        let wrong = post(
            &server,
            route,
            Some(&me.token),
            json!({ "password": "wrong horse" }),
        )
        .await;
        assert_form_error(&wrong, "password", "PASSWORD_DOES_NOT_MATCH");
        let missing = post(&server, route, Some(&me.token), json!({})).await;
        assert_form_error(&missing, "password", "BASE_TYPE_REQUIRED");
    }
    assert_eq!(
        get(&server, "/api/users/@me", Some(&me.token)).await.status,
        200
    );

    // Disabled: the sessions close with 4004, the token and the password stop working.
    let disabled = post(
        &server,
        "/api/v9/users/@me/disable",
        Some(&me.token),
        json!({ "password": "correct horse" }),
    )
    .await;
    assert_eq!(disabled.status, 204, "{:?}", disabled.body);
    assert_eq!(gateway.closed().await, Some(4004));
    assert_eq!(
        get(&server, "/api/users/@me", Some(&me.token)).await.status,
        401
    );
    let login = post(
        &server,
        "/api/v9/auth/login",
        None,
        json!({ "login": "leaver@example.org", "password": "correct horse" }),
    )
    .await;
    assert_ne!(login.status, 200, "{:?}", login.body);

    // Bots have no account to close.
    let owner = account(&server, "maker").await;
    let (_, bot) = application_with_bot(&server, &owner.token, "Bot").await;
    let bot = post(
        &server,
        "/api/v9/users/@me/delete",
        Some(&format!("Bot {bot}")),
        json!({ "password": null }),
    )
    .await;
    assert_code(&bot, 403, 20001);
}

#[actix_web::test]
async fn every_route_that_returns_an_invite_names_its_channel_id() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let owner = &guild.owner.token;
    let created = post(
        &server,
        &format!("/api/v9/channels/{}/invites", guild.channel),
        Some(owner),
        json!({ "max_age": 0 }),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let code = created.body["code"].as_str().unwrap().to_string();
    let visitor = account(&server, "visitor").await;
    let answers = [
        ("create", created.body.clone()),
        (
            "get",
            get(&server, &format!("/api/v9/invites/{code}"), None)
                .await
                .body,
        ),
        (
            "channel list",
            get(
                &server,
                &format!("/api/v9/channels/{}/invites", guild.channel),
                Some(owner),
            )
            .await
            .body[0]
                .clone(),
        ),
        (
            "guild list",
            get(
                &server,
                &format!("/api/v9/guilds/{}/invites", guild.id),
                Some(owner),
            )
            .await
            .body[0]
                .clone(),
        ),
        (
            "accept",
            post(
                &server,
                &format!("/api/v9/invites/{code}"),
                Some(&visitor.token),
                json!({}),
            )
            .await
            .body,
        ),
        (
            "delete",
            request(
                &server,
                Method::DELETE,
                &format!("/api/v9/invites/{code}"),
                Some(owner),
                None,
            )
            .await
            .body,
        ),
    ];
    for (route, invite) in answers {
        assert_eq!(invite["code"], code, "{route}: {invite}");
        assert_eq!(invite["channel_id"], guild.channel, "{route}: {invite}");
        assert_eq!(invite["channel"]["id"], guild.channel, "{route}: {invite}");
    }
}

#[actix_web::test]
async fn profile_side_routes_answer_in_discords_shapes() {
    let server = TestServer::start().await;
    let [ann, ben, cat, dan] = [
        account(&server, "ann").await,
        account(&server, "ben").await,
        account(&server, "cat").await,
        account(&server, "dan").await,
    ];
    let token = Some(ann.token.as_str());
    let connections = get(&server, "/api/v9/users/@me/connections", token).await;
    assert_eq!(
        (connections.status.as_u16(), connections.body),
        (200, json!([]))
    );
    let users = get(&server, "/api/v9/users/@me/affinities/users", token).await;
    assert_eq!(
        users.body,
        json!({ "user_affinities": [], "inverse_user_affinities": [] })
    );
    let guilds = get(&server, "/api/v9/users/@me/affinities/guilds", token).await;
    assert_eq!(guilds.body, json!({ "guild_affinities": [] }));

    // Mutual friends: ann and ben are both friends with cat; only ann with dan.
    befriend(&server, &ann, &cat).await;
    befriend(&server, &ben, &cat).await;
    befriend(&server, &ann, &dan).await;
    let mutual = get(
        &server,
        &format!("/api/v9/users/{}/relationships", ben.id),
        token,
    )
    .await;
    assert_eq!(mutual.status, 200, "{:?}", mutual.body);
    let ids: Vec<&Value> = mutual
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["id"])
        .collect();
    assert_eq!(ids, [&json!(cat.id)]);
    assert_eq!(mutual.body[0]["username"], "cat");
    let unknown = get(&server, "/api/v9/users/12345/relationships", token).await;
    assert_code(&unknown, 404, 10013);
}

#[actix_web::test]
async fn resuming_from_a_seq_never_sent_closes_with_4007() {
    let server = TestServer::start().await;
    let token = register(&server, "seer").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    let ready = gateway.identify(&token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_string();
    let seq = gateway.dispatch("READY_SUPPLEMENTAL").await["s"]
        .as_u64()
        .unwrap();
    drop(gateway);
    let mut resuming = Gateway::connect(&server, JSON).await;
    resuming
        .send(
            json!({ "op": 6, "d": { "token": token, "session_id": session_id, "seq": seq + 50 } }),
        )
        .await;
    assert_eq!(resuming.closed().await, Some(4007));
    // The session itself is still there to resume properly.
    let mut again = Gateway::connect(&server, JSON).await;
    again
        .send(json!({ "op": 6, "d": { "token": token, "session_id": session_id, "seq": seq } }))
        .await;
    assert_eq!(again.dispatch("RESUMED").await["t"], "RESUMED");
}

/// A bot of `owner`'s in two guilds, one on each of two shards (guilds are made until their ids
/// fall that way): (bot token, guild ids).
async fn bot_on_two_shards(server: &TestServer, owner: &Account) -> (String, Vec<String>) {
    let (app_id, bot) = application_with_bot(server, &owner.token, "Big").await;
    let mut on_shard: [Option<String>; 2] = [None, None];
    while on_shard.iter().any(Option::is_none) {
        let guild_id = bot_guild(server, &owner.token).await;
        let shard = usize::from((guild_id.parse::<u64>().unwrap() >> 22) % 2 == 1);
        if on_shard[shard].is_none() {
            let added = authorize(server, &owner.token, &app_id, &guild_id, "0").await;
            assert!(added.status.is_success(), "{:?}", added.body);
            on_shard[shard] = Some(guild_id);
        }
    }
    (bot, on_shard.into_iter().flatten().collect())
}

#[actix_web::test]
async fn a_bot_with_more_guilds_than_a_shard_holds_must_shard() {
    let server = TestServer::with(&[("gateway.max_guilds_per_shard", "1")]).await;
    let owner = account(&server, "sharder").await;
    let (bot, _) = bot_on_two_shards(&server, &owner).await;
    let bot = format!("Bot {bot}");
    let recommended = get(&server, "/api/v10/gateway/bot", Some(&bot)).await.body;
    assert_eq!(recommended["shards"], 2);

    let identify = |shard: Value| json!({ "op": 2, "d": { "token": bot, "properties": {}, "intents": 1, "shard": shard } });
    let mut unsharded = Gateway::connect(&server, JSON).await;
    unsharded.send(identify(Value::Null)).await;
    assert_eq!(unsharded.closed().await, Some(4011));
    let mut one_of_one = Gateway::connect(&server, JSON).await;
    one_of_one.send(identify(json!([0, 1]))).await;
    assert_eq!(one_of_one.closed().await, Some(4011));
    for shard in 0..2 {
        let mut gateway = Gateway::connect(&server, JSON).await;
        gateway.send(identify(json!([shard, 2]))).await;
        let ready = gateway.dispatch("READY").await;
        assert_eq!(ready["d"]["guilds"].as_array().unwrap().len(), 1);
        assert_eq!(ready["d"]["shard"], json!([shard, 2]));
    }
    // People are never asked to shard.
    let mut person = Gateway::connect(&server, JSON).await;
    person.identify(&owner.token).await;
}

/// discord.py's plain Client meets 4011 as a fatal close; its AutoShardedClient runs as many
/// shards as `/gateway/bot` recommends and gets every guild.
#[actix_web::test]
async fn discord_py_shards_a_bot_as_gateway_bot_recommends() {
    let python = discord_py();
    let server = TestServer::with(&[("gateway.max_guilds_per_shard", "1")]).await;
    let owner = account(&server, "sharder").await;
    let (bot, mut guild_ids) = bot_on_two_shards(&server, &owner).await;
    let mut plain = Bot::run(&python, SHARDS_SCRIPT, &["plain"], &server, &bot);
    assert_eq!(plain.event("closed").await["code"], 4011);
    let mut auto = Bot::run(&python, SHARDS_SCRIPT, &["auto"], &server, &bot);
    let ready = auto.event("ready").await;
    guild_ids.sort();
    assert_eq!(ready["shard_count"], 2);
    assert_eq!(ready["guilds"], json!(guild_ids));
}

/// A WebSocket opened by hand on a plain TCP socket, so the test decides what (not) to answer:
/// it never answers the server's close frame.
struct RawSocket(TcpStream);

impl RawSocket {
    async fn open(server: &TestServer, query: &str) -> Self {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        let handshake = format!(
            "GET /?{query} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr
        );
        socket.write_all(handshake.as_bytes()).await.unwrap();
        Self(socket)
    }

    /// Sends a text frame, masked as a client must (with a zero mask: the bytes go as they are).
    async fn send(&mut self, payload: &Value) {
        let text = payload.to_string();
        let mut frame = vec![0x81];
        match text.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text.as_bytes());
        self.0.write_all(&frame).await.unwrap();
    }

    /// The server closed with `code` and dropped the connection within [`DROP_DEADLINE`].
    async fn assert_dropped(&mut self, code: u16, why: &str) {
        let (closed_with, after_close) = self.until_dropped().await;
        assert_eq!(closed_with, Some(code), "{why}");
        assert!(
            after_close <= DROP_DEADLINE,
            "{why}: the connection stayed {after_close:?} after its close frame"
        );
    }

    /// Reads without answering until the server drops the connection: the close code of the
    /// last frame, and how long after the close frame the drop came. Fails if the server keeps
    /// the connection past [`DROP_DEADLINE`].
    async fn until_dropped(&mut self) -> (Option<u16>, Duration) {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 8192];
        let mut closed_at = None;
        let started = Instant::now();
        loop {
            let waited = closed_at.unwrap_or(started).elapsed();
            let left = (DROP_DEADLINE + Duration::from_secs(3)).saturating_sub(waited);
            match tokio::time::timeout(left, self.0.read(&mut buffer)).await {
                Err(_) => panic!("the connection was still open {left:?} after its close frame"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    seen.extend_from_slice(&buffer[..n]);
                    if closed_at.is_none() && close_code(&seen).is_some() {
                        closed_at = Some(Instant::now());
                    }
                }
            }
        }
        let after_close = closed_at.map_or(Duration::ZERO, |at| at.elapsed());
        (close_code(&seen), after_close)
    }
}

/// The close code of a close frame among the server's frames after the HTTP answer.
fn close_code(bytes: &[u8]) -> Option<u16> {
    let start = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut frames = bytes.get(start..)?;
    while frames.len() >= 2 {
        let opcode = frames[0] & 0x0f;
        let (len, header) = match frames[1] & 0x7f {
            126 => (
                u16::from_be_bytes([*frames.get(2)?, *frames.get(3)?]) as usize,
                4,
            ),
            127 => (
                u64::from_be_bytes(frames.get(2..10)?.try_into().ok()?) as usize,
                10,
            ),
            len => (len as usize, 2),
        };
        let payload = frames.get(header..header + len)?;
        if opcode == 0x8 {
            return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
        }
        frames = &frames[header + len..];
    }
    None
}

#[actix_web::test]
async fn a_closed_gateway_connection_is_dropped_even_when_the_client_never_answers() {
    let server = TestServer::with(&[("gateway.commands_per_minute", "3")]).await;
    let token = register(&server, "dropper").await;
    let identify = |token: &str| json!({ "op": 2, "d": { "token": token, "properties": {} } });

    // Each misbehaviour gets its code, then the TCP connection goes within the deadline.
    let mut cases: Vec<(&str, &str, Vec<Value>, u16)> = vec![
        ("an old API version", "v=3&encoding=json", vec![], 4012),
        ("an unknown encoding", "v=9&encoding=xml", vec![], 4002),
        ("a bad token", JSON, vec![identify("nope")], 4004),
        (
            "an unknown opcode",
            JSON,
            vec![json!({ "op": 99, "d": null })],
            4001,
        ),
        (
            "a command before IDENTIFY",
            JSON,
            vec![json!({ "op": 8, "d": { "guild_id": "1" } })],
            4003,
        ),
        (
            "a second IDENTIFY",
            JSON,
            vec![identify(&token), identify(&token)],
            4005,
        ),
        (
            "bad intents",
            JSON,
            vec![json!({ "op": 2, "d": { "token": token, "properties": {}, "intents": -1 } })],
            4013,
        ),
        (
            "a bad shard",
            JSON,
            vec![json!({ "op": 2, "d": { "token": token, "properties": {}, "shard": [2, 2] } })],
            4010,
        ),
    ];
    // A bot asking for a privileged intent its application lacks.
    let owner = account(&server, "dropper_owner").await;
    let (_, bot) = application_with_bot(&server, &owner.token, "Plain").await;
    cases.push((
        "a disallowed intent",
        JSON,
        vec![json!({ "op": 2, "d": { "token": bot, "properties": {}, "intents": 2 } })],
        4014,
    ));
    // A RESUME of a live session from a seq it never sent.
    let mut gateway = Gateway::connect(&server, JSON).await;
    let ready = gateway.identify(&token).await;
    let session_id = ready["d"]["session_id"].clone();
    cases.push((
        "a seq never sent",
        JSON,
        vec![json!({ "op": 6, "d": { "token": token, "session_id": session_id, "seq": 1000 } })],
        4007,
    ));
    cases.push((
        "too many commands",
        JSON,
        vec![json!({ "op": 1, "d": null }); 4],
        4008,
    ));
    for (why, query, payloads, code) in cases {
        let mut socket = RawSocket::open(&server, query).await;
        for payload in &payloads {
            socket.send(payload).await;
        }
        socket.assert_dropped(code, why).await;
    }
    // The server's own timer: a connection that never identifies.
    let quick = TestServer::with(&[("gateway.identify_timeout_ms", "300")]).await;
    let mut silent = RawSocket::open(&quick, JSON).await;
    silent.assert_dropped(4009, "no IDENTIFY").await;
}

#[actix_web::test]
async fn a_deleted_account_leaves_its_messages_to_deleted_user() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "leaver").await;
    let history = format!("/api/v9/channels/{}/messages", guild.channel);
    let sent = post(
        &server,
        &history,
        Some(&member.token),
        json!({ "content": "remember me" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    befriend(&server, &guild.owner, &member).await;

    let gone = post(
        &server,
        "/api/v9/users/@me/delete",
        Some(&member.token),
        json!({ "password": "correct horse" }),
    )
    .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&member.token))
            .await
            .status,
        401
    );

    // The message stays, by "Deleted User" and eight hex digits, #0000, without an avatar.
    let messages = get(&server, &history, Some(&guild.owner.token)).await;
    let kept = messages
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == sent.body["id"]);
    let author = &kept.expect("the message is kept")["author"];
    assert_eq!(author["id"], member.id.as_str());
    let name = author["username"].as_str().unwrap();
    let suffix = name.strip_prefix("Deleted User ").expect(name);
    assert!(suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(author["discriminator"], "0000");
    assert_eq!(author["avatar"], Value::Null);
    assert_eq!(author["global_name"], Value::Null);
    // It is no member any more; its address may register again.
    let members = get(
        &server,
        &format!("/api/v9/guilds/{}/members/{}", guild.id, member.id),
        Some(&guild.owner.token),
    )
    .await;
    assert_eq!(members.status, 404, "{:?}", members.body);
    let friends = get(
        &server,
        "/api/v9/users/@me/relationships",
        Some(&guild.owner.token),
    )
    .await;
    assert_eq!(friends.body, json!([]));
    let again = post(
        &server,
        "/api/v9/auth/register",
        None,
        registration("leaver2", "leaver@example.org"),
    )
    .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}
