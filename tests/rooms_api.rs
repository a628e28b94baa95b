//! The rooms service's server API over real HTTP (docs/rooms.md, "Server API"): API keys made
//! by operators (and the `rooms-key` command), tokens for applications, guests and users, rooms
//! and their participants managed live over `/rooms/ws`, signed webhooks received by a small
//! HTTP server here, the event log catching up what a downed webhook missed, public rooms, and
//! every bound refused with Discord's error shapes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use awc::http::Method;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::admin::{admin, operator};
use crate::common::gateway::{Event, Gateway};
use crate::common::http::{account, assert_form_error, get, post, request, Account, Response};
use crate::common::TestServer;

/// An application's key as `POST /_spacebar/admin/rooms/keys` answered it.
pub(crate) struct Key {
    id: String,
    secret: String,
    webhook_secret: String,
}

impl Key {
    fn basic(&self) -> String {
        basic(&self.id, &self.secret)
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub(crate) async fn make_key(
    server: &TestServer,
    root: &Account,
    webhook_url: Option<&str>,
) -> Key {
    let made = admin(
        server,
        Method::POST,
        "/rooms/keys",
        &root.token,
        Some(json!({ "name": "app", "webhook_url": webhook_url })),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    Key {
        id: made.body["id"].as_str().unwrap().into(),
        secret: made.body["secret"].as_str().unwrap().into(),
        webhook_secret: made.body["webhook_secret"].as_str().unwrap().into(),
    }
}

pub(crate) async fn api(
    server: &TestServer,
    method: Method,
    path: &str,
    key: &Key,
    body: Option<Value>,
) -> Response {
    request(
        server,
        method,
        &format!("/rooms/api{path}"),
        Some(&key.basic()),
        body,
    )
    .await
}

pub(crate) async fn create_room(server: &TestServer, key: &Key, body: Value) -> Value {
    let made = api(server, Method::POST, "/rooms", key, Some(body)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    made.body
}

async fn token(server: &TestServer, key: &Key, room: &str, identity: &str) -> String {
    let body = json!({ "identity": identity, "name": identity, "room": room });
    let issued = api(server, Method::POST, "/token", key, Some(body)).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    issued.body["token"].as_str().unwrap().into()
}

/// A JWT's claims, read without checking (the server checks; this looks at what it says).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Joins a room over `/rooms/ws`; the socket, after `joined`.
async fn join(server: &TestServer, token: &str) -> Gateway {
    let mut socket = Gateway::connect_at(server, "/rooms/ws", &format!("token={token}")).await;
    socket.send(json!({ "type": "join" })).await;
    let joined = next_of(&mut socket, "joined").await;
    assert_eq!(joined["type"], "joined", "{joined:?}");
    socket
}

/// The next message of `kind` (others skipped), or the close.
pub(crate) async fn next_of(socket: &mut Gateway, kind: &str) -> Value {
    loop {
        match socket.next().await {
            Event::Payload(message) if message["type"] == kind => return message,
            Event::Payload(message) if message["type"] == "error" => return message,
            Event::Payload(_) => {}
            Event::Closed(code) => return json!({ "closed": code }),
        }
    }
}

pub(crate) fn assert_error(response: &Response, status: u16, code: u64) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code, "{:?}", response.body);
}

/// A webhook endpoint: what it received (signature header, raw body) comes out of `hooks`;
/// while `refusing` is above zero it answers 503 to that many more requests.
struct Receiver {
    url: String,
    hooks: mpsc::UnboundedReceiver<(String, Bytes)>,
    refusing: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

#[derive(Clone)]
struct Endpoint {
    hooks: mpsc::UnboundedSender<(String, Bytes)>,
    refusing: Arc<AtomicUsize>,
}

async fn hook(req: HttpRequest, body: Bytes, endpoint: Data<Endpoint>) -> HttpResponse {
    let refused = endpoint
        .refusing
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if refused {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let signature = req
        .headers()
        .get("x-spacebar-signature")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    endpoint.hooks.send((signature, body)).unwrap();
    HttpResponse::Ok().finish()
}

async fn receiver() -> Receiver {
    let (sender, hooks) = mpsc::unbounded_channel();
    let refusing = Arc::new(AtomicUsize::new(0));
    let endpoint = Endpoint {
        hooks: sender,
        refusing: refusing.clone(),
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(Data::new(endpoint.clone()))
            .default_service(web::to(hook))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Receiver {
        url: format!("http://{addr}/hook"),
        hooks,
        refusing,
        handle,
    }
}

impl Receiver {
    /// The next webhook, its signature checked against `secret`: its JSON body.
    async fn next(&mut self, secret: &str) -> Value {
        let (signature, body) = tokio::time::timeout(Duration::from_secs(10), self.hooks.recv())
            .await
            .expect("no webhook in time")
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signature, format!("sha256={hex}"), "a bad signature");
        serde_json::from_slice(&body).unwrap()
    }

    /// Webhooks until one of `event`, in the order received.
    async fn until(&mut self, secret: &str, event: &str) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            let hook = self.next(secret).await;
            let done = hook["event"] == event;
            got.push(hook);
            if done {
                return got;
            }
        }
    }
}

#[actix_web::test]
async fn operators_make_and_revoke_keys_and_applications_get_tokens_and_rooms() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let someone = account(&server, "someone").await;
    let refused = admin(
        &server,
        Method::POST,
        "/rooms/keys",
        &someone.token,
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let key = make_key(&server, &root, None).await;
    let other = make_key(&server, &root, None).await;
    // Listed without secrets; of the secret only its SHA-256 is stored.
    let listed = admin(&server, Method::GET, "/rooms/keys", &root.token, None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert!(
        listed.body[0].get("secret").is_none() && listed.body[0].get("webhook_secret").is_none()
    );
    let stored = server
        .count(&format!(
            "room_api_keys WHERE secret_sha256 = sha256(convert_to('{}', 'UTF8'))",
            key.secret
        ))
        .await;
    assert_eq!(stored, 1);

    // PulseWave's body as it is: a token with an ordinary participant's grants.
    let body =
        json!({ "identity": "ada", "name": "Ada", "room": "standup", "metadata": { "team": 7 } });
    let issued = api(&server, Method::POST, "/token", &key, Some(body.clone())).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    assert!(issued.body["url"].as_str().unwrap().ends_with("/rooms/ws"));
    let said = claims(issued.body["token"].as_str().unwrap());
    assert_eq!(
        (
            said["sub"].as_str(),
            said["room"].as_str(),
            said["iss"].as_str()
        ),
        (Some("ada"), Some("standup"), Some(key.id.as_str()))
    );
    assert_eq!(said["metadata"], r#"{"team":7}"#);
    assert_eq!(said["grants"]["publish"], true);
    assert_eq!(said["grants"]["room_admin"], false);
    let granted = json!({ "identity": "bot", "room": "standup", "grants": { "join": true, "subscribe": true, "hidden": true }, "ttl": 60 });
    let issued = api(&server, Method::POST, "/token", &key, Some(granted)).await;
    let said = claims(issued.body["token"].as_str().unwrap());
    assert_eq!(
        (
            said["grants"]["publish"].as_bool(),
            said["grants"]["hidden"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(
        said["exp"].as_i64().unwrap() - said["iat"].as_i64().unwrap(),
        60
    );
    // The token made the room the application's: another application cannot take it.
    let taken = api(&server, Method::POST, "/token", &other, Some(body.clone())).await;
    assert_error(&taken, 404, 10200);
    // Wrong secret, no credentials, a user's token: 401.
    let wrong = request(
        &server,
        Method::POST,
        "/rooms/api/token",
        Some(&basic(&key.id, "guess")),
        Some(body.clone()),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let none = post(&server, "/rooms/api/token", None, body.clone()).await;
    assert_eq!(none.status, 401);
    let user = post(
        &server,
        "/rooms/api/token",
        Some(&someone.token),
        body.clone(),
    )
    .await;
    assert_eq!(user.status, 401);

    // Rooms: create, get, list (own only), change, delete.
    let room = create_room(&server, &key, json!({ "name": "Daily", "public": true, "max_participants": 10, "empty_timeout": 30, "metadata": "m" })).await;
    let id = room["id"].as_str().unwrap();
    assert_eq!(id.len(), 22, "an unguessable id");
    assert_eq!(
        (
            room["name"].as_str(),
            room["max_participants"].as_i64(),
            room["empty_timeout"].as_i64()
        ),
        (Some("Daily"), Some(10), Some(30))
    );
    let got = api(&server, Method::GET, &format!("/rooms/{id}"), &key, None).await;
    assert_eq!(
        (got.status.as_u16(), got.body["num_participants"].as_u64()),
        (200, Some(0))
    );
    assert_error(
        &api(&server, Method::GET, &format!("/rooms/{id}"), &other, None).await,
        404,
        10200,
    );
    let mine = api(&server, Method::GET, "/rooms", &key, None).await;
    let ids: Vec<_> = mine.body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&id.to_string()) && ids.contains(&"standup".to_string()),
        "{ids:?}"
    );
    let theirs = api(&server, Method::GET, "/rooms", &other, None).await;
    assert_eq!(theirs.body["rooms"], json!([]));
    let chosen = create_room(&server, &key, json!({ "id": "my-room_1" })).await;
    assert_eq!(
        (
            chosen["id"].as_str(),
            chosen["name"].as_str(),
            chosen["public"].as_bool()
        ),
        (Some("my-room_1"), Some("my-room_1"), Some(false))
    );
    let again = api(
        &server,
        Method::POST,
        "/rooms",
        &key,
        Some(json!({ "id": "my-room_1" })),
    )
    .await;
    assert_form_error(&again, "id", "ROOM_ID_TAKEN");
    let changed = api(
        &server,
        Method::PATCH,
        &format!("/rooms/{id}"),
        &key,
        Some(json!({ "name": "Weekly", "public": false })),
    )
    .await;
    assert_eq!(
        (
            changed.body["name"].as_str(),
            changed.body["public"].as_bool()
        ),
        (Some("Weekly"), Some(false))
    );
    assert_eq!(
        api(
            &server,
            Method::DELETE,
            &format!("/rooms/{id}"),
            &other,
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        api(&server, Method::DELETE, &format!("/rooms/{id}"), &key, None)
            .await
            .status,
        204
    );
    assert_error(
        &api(&server, Method::GET, &format!("/rooms/{id}"), &key, None).await,
        404,
        10200,
    );

    // Revoked: refused at once.
    let revoke = format!("/rooms/keys/{}", key.id);
    let revoked = admin(&server, Method::DELETE, &revoke, &root.token, None).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        api(&server, Method::POST, "/token", &key, Some(body))
            .await
            .status,
        401
    );
    assert_eq!(
        api(&server, Method::GET, "/rooms", &key, None).await.status,
        401
    );
    let gone = admin(&server, Method::DELETE, &revoke, &root.token, None).await;
    assert_eq!(gone.status, 404);
}

#[actix_web::test]
async fn the_command_line_makes_lists_and_revokes_keys() {
    let server = TestServer::start().await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_spacebar"))
            .arg("rooms-key")
            .args(args)
            .env("SPACEBAR__DATABASE__URL", &server.database_url)
            .env("SPACEBAR__DATABASE__POOL_SIZE", "1")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
        )
    };
    let (ok, printed) = run(&[
        "create",
        "cli app",
        "--webhook-url",
        "https://example.org/hook",
    ]);
    assert!(ok, "{printed}");
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let key = Key {
        id: field("key:"),
        secret: field("secret:"),
        webhook_secret: field("webhook secret:"),
    };
    assert_eq!(key.webhook_secret.len(), 43);
    token(&server, &key, "cli-room", "ada").await;
    let (ok, listed) = run(&["list"]);
    assert!(
        ok && listed.contains(&key.id)
            && listed.contains("cli app")
            && !listed.contains(&key.secret),
        "{listed}"
    );
    let (ok, _) = run(&["create", "bad", "--webhook-url", "ftp://example.org"]);
    assert!(!ok);
    assert!(run(&["revoke", &key.id]).0);
    assert!(!run(&["revoke", &key.id]).0);
    let refused = api(
        &server,
        Method::POST,
        "/token",
        &key,
        Some(json!({ "identity": "a", "room": "cli-room" })),
    )
    .await;
    assert_eq!(refused.status, 401);
}

#[actix_web::test]
async fn hostile_inputs_are_refused_with_their_field_and_bounds_hold() {
    let server =
        TestServer::with(&[("rooms.max_rooms", "3"), ("rooms.max_metadata_bytes", "64")]).await;
    let root = operator(&server).await;
    let key = make_key(&server, &root, None).await;
    let long = "x".repeat(200);
    let cases = [
        (
            "/token",
            json!({ "identity": "", "room": "r" }),
            "identity",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            "/token",
            json!({ "identity": long, "room": "r" }),
            "identity",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            "/token",
            json!({ "identity": "a", "name": long, "room": "r" }),
            "name",
            "BASE_TYPE_BAD_LENGTH",
        ),
        (
            "/token",
            json!({ "identity": "a", "room": "../admin" }),
            "room",
            "ROOM_ID_INVALID",
        ),
        (
            "/token",
            json!({ "identity": "a", "room": "x".repeat(65) }),
            "room",
            "ROOM_ID_INVALID",
        ),
        (
            "/token",
            json!({ "identity": "a", "room": "r", "metadata": long }),
            "metadata",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            "/token",
            json!({ "identity": "a", "room": "r", "ttl": 0 }),
            "ttl",
            "NUMBER_TYPE_MAX",
        ),
        (
            "/token",
            json!({ "identity": "a", "room": "r", "ttl": 10_000_000 }),
            "ttl",
            "NUMBER_TYPE_MAX",
        ),
        (
            "/rooms",
            json!({ "name": "" }),
            "name",
            "BASE_TYPE_BAD_LENGTH",
        ),
        ("/rooms", json!({ "id": "a b" }), "id", "ROOM_ID_INVALID"),
        (
            "/rooms",
            json!({ "max_participants": 1_000_000 }),
            "max_participants",
            "NUMBER_TYPE_MAX",
        ),
        (
            "/rooms",
            json!({ "empty_timeout": 10_000_000 }),
            "empty_timeout",
            "NUMBER_TYPE_MAX",
        ),
        (
            "/rooms",
            json!({ "metadata": long }),
            "metadata",
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            "/rooms",
            json!({ "public": "yes" }),
            "public",
            "BASE_TYPE_BOOLEAN",
        ),
    ];
    for (path, body, field, code) in cases {
        let refused = api(&server, Method::POST, path, &key, Some(body)).await;
        assert_form_error(&refused, field, code);
    }
    assert_eq!(server.count("rooms").await, 0, "nothing made");
    for limit in ["0", "1001", "x"] {
        let refused = api(
            &server,
            Method::GET,
            &format!("/rooms?limit={limit}"),
            &key,
            None,
        )
        .await;
        assert_eq!(refused.status, 400, "{limit}");
        let refused = api(
            &server,
            Method::GET,
            &format!("/rooms/r/events?limit={limit}"),
            &key,
            None,
        )
        .await;
        assert_eq!(refused.status, 400, "{limit}");
    }
    assert_form_error(
        &api(&server, Method::GET, "/rooms/r/events?after=-1", &key, None).await,
        "after",
        "NUMBER_TYPE_COERCE",
    );
    assert_form_error(
        &get(&server, "/rooms/public?limit=101", None).await,
        "limit",
        "NUMBER_TYPE_MAX",
    );
    let huge = json!({ "payload": "x".repeat(20_000) });
    create_room(&server, &key, json!({ "id": "r" })).await;
    assert_form_error(
        &api(&server, Method::POST, "/rooms/r/data", &key, Some(huge)).await,
        "payload",
        "BASE_TYPE_MAX_LENGTH",
    );
    let many = json!({ "payload": 1, "to": vec!["a"; 101] });
    assert_form_error(
        &api(&server, Method::POST, "/rooms/r/data", &key, Some(many)).await,
        "to",
        "BASE_TYPE_MAX_LENGTH",
    );
    let metadata = json!({ "metadata": long });
    assert_form_error(
        &api(
            &server,
            Method::PATCH,
            "/rooms/r/participants/a",
            &key,
            Some(metadata),
        )
        .await,
        "metadata",
        "BASE_TYPE_MAX_LENGTH",
    );
    // At most three rooms, whoever makes them: API, token, guest.
    create_room(&server, &key, json!({ "public": true })).await;
    token(&server, &key, "third", "a").await;
    let full = api(&server, Method::POST, "/rooms", &key, Some(json!({}))).await;
    assert_error(&full, 400, 30100);
    let full = api(
        &server,
        Method::POST,
        "/token",
        &key,
        Some(json!({ "identity": "a", "room": "fourth" })),
    )
    .await;
    assert_error(&full, 400, 30100);
    assert_error(
        &post(&server, "/rooms/new", None, json!({ "name": "guests'" })).await,
        400,
        30100,
    );
    assert_eq!(server.count("rooms").await, 3);
    // A room that is not live, or a participant who is not there: Discord-like 404s.
    let absent = [
        (Method::DELETE, "/rooms/r/participants/nobody", None, 10201),
        (
            Method::POST,
            "/rooms/r/participants/nobody/tracks/TR_x/mute",
            None,
            10201,
        ),
        (
            Method::POST,
            "/rooms/r/data",
            Some(json!({ "payload": 1 })),
            10203,
        ),
    ];
    for (method, path, body, code) in absent {
        assert_error(&api(&server, method, path, &key, body).await, 404, code);
    }
    assert_eq!(
        api(&server, Method::GET, "/rooms/r/participants", &key, None)
            .await
            .body,
        json!({ "participants": [] })
    );
}

#[actix_web::test]
async fn public_rooms_are_listed_and_guests_join_only_what_admits_them() {
    let server = TestServer::with(&[
        ("rate_limits.enabled", "true"),
        ("rate_limits.room_guests.limit", "6"),
    ])
    .await;
    let root = operator(&server).await;
    let key = make_key(&server, &root, None).await;
    let public = create_room(
        &server,
        &key,
        json!({ "name": "Lobby", "public": true, "metadata": "topic" }),
    )
    .await;
    let private = create_room(&server, &key, json!({ "name": "Secret" })).await;
    let listed = get(&server, "/rooms/public", None).await;
    assert_eq!(listed.status, 200);
    let rooms = listed.body["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(
        (
            rooms[0]["id"].clone(),
            rooms[0]["name"].as_str(),
            rooms[0]["metadata"].as_str()
        ),
        (public["id"].clone(), Some("Lobby"), Some("topic"))
    );
    assert_eq!(rooms[0]["num_participants"], 0);

    // A guest: a public room yes (and in it they count), a private one no (as if unknown).
    let guest = guest_token(&server, &public["id"]).await;
    let said = claims(&guest);
    assert!(said["sub"].as_str().unwrap().starts_with("guest-") && said["iss"] == "guest");
    let mut socket = join(&server, &guest).await;
    let listed = get(&server, "/rooms/public", None).await;
    assert_eq!(listed.body["rooms"][0]["num_participants"], 1);
    socket.send(json!({ "type": "leave" })).await;
    assert_error(
        &post(
            &server,
            "/rooms/guest",
            None,
            json!({ "room": private["id"], "name": "Guest" }),
        )
        .await,
        404,
        10200,
    );
    assert_error(
        &post(
            &server,
            "/rooms/guest",
            None,
            json!({ "room": "nowhere", "name": "Guest" }),
        )
        .await,
        404,
        10200,
    );
    assert_form_error(
        &post(
            &server,
            "/rooms/guest",
            None,
            json!({ "room": public["id"], "name": "  " }),
        )
        .await,
        "name",
        "BASE_TYPE_BAD_LENGTH",
    );
    // A guest opens a private room; its link admits guests; it is not listed.
    let opened = post(&server, "/rooms/new", None, json!({ "name": "Ours" })).await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    guest_token(&server, &opened.body["id"]).await;
    let listed = get(&server, "/rooms/public", None).await;
    assert_eq!(listed.body["rooms"].as_array().unwrap().len(), 1);
    // Six guest tokens a minute per address (those above counted): then 429s.
    let mut answers = Vec::new();
    for _ in 0..6 {
        let body = json!({ "room": public["id"], "name": "Guest" });
        answers.push(post(&server, "/rooms/guest", None, body).await);
    }
    let limited = answers.last().unwrap();
    assert_eq!(limited.status, 429, "{:?}", limited.body);
    assert!(limited.body["retry_after"].as_f64().unwrap() > 0.0);
    // A logged-in user exchanges their token: identity = their id.
    let ada = account(&server, "ada").await;
    let exchanged = post(
        &server,
        "/rooms/api/token/user",
        Some(&ada.token),
        json!({ "room": public["id"] }),
    )
    .await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    let said = claims(exchanged.body["token"].as_str().unwrap());
    assert_eq!(
        (said["sub"].as_str(), said["name"].as_str()),
        (Some(ada.id.as_str()), Some("ada"))
    );
    assert_eq!(said["iss"], format!("user:{}", ada.id));
    assert_error(
        &post(
            &server,
            "/rooms/api/token/user",
            Some(&ada.token),
            json!({ "room": private["id"] }),
        )
        .await,
        404,
        10200,
    );
    assert_eq!(
        post(
            &server,
            "/rooms/api/token/user",
            None,
            json!({ "room": public["id"] })
        )
        .await
        .status,
        401
    );
}

#[actix_web::test]
async fn with_guests_off_only_accounts_get_in() {
    let server = TestServer::with(&[("rooms.guests", "false")]).await;
    let root = operator(&server).await;
    let key = make_key(&server, &root, None).await;
    let public = create_room(&server, &key, json!({ "name": "Lobby", "public": true })).await;
    let refused = post(
        &server,
        "/rooms/guest",
        None,
        json!({ "room": public["id"], "name": "Guest" }),
    )
    .await;
    assert_error(&refused, 403, 50001);
    assert_error(
        &post(&server, "/rooms/new", None, json!({ "name": "Ours" })).await,
        403,
        50001,
    );
    assert_eq!(
        post(
            &server,
            "/rooms/new",
            Some("not a token"),
            json!({ "name": "Ours" })
        )
        .await
        .status,
        401
    );
    let ada = account(&server, "ada").await;
    let opened = post(
        &server,
        "/rooms/new",
        Some(&ada.token),
        json!({ "name": "Ours", "public": true }),
    )
    .await;
    assert_eq!(opened.status, 201, "{:?}", opened.body);
    let exchanged = post(
        &server,
        "/rooms/api/token/user",
        Some(&ada.token),
        json!({ "room": opened.body["id"] }),
    )
    .await;
    assert_eq!(exchanged.status, 200, "{:?}", exchanged.body);
    join(&server, exchanged.body["token"].as_str().unwrap()).await;
}

/// A guest's token for `room`, which must admit guests.
async fn guest_token(server: &TestServer, room: &Value) -> String {
    let guest = post(
        server,
        "/rooms/guest",
        None,
        json!({ "room": room, "name": "Guest" }),
    )
    .await;
    assert_eq!(guest.status, 200, "{:?}", guest.body);
    guest.body["token"].as_str().unwrap().to_string()
}

/// The ids `GET /rooms/public` lists.
async fn public_ids(server: &TestServer) -> Vec<String> {
    let listed = get(server, "/rooms/public", None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    listed.body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (generously) until `GET /rooms/public` no longer lists `id`.
async fn unlisted(server: &TestServer, id: &str) {
    for _ in 0..300 {
        if !public_ids(server).await.iter().any(|listed| listed == id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("room {id} is still listed");
}

#[actix_web::test]
async fn rooms_guests_open_are_deleted_once_empty_for_their_timeout() {
    let server = TestServer::with(&[("rooms.default_empty_timeout_secs", "1")]).await;
    let root = operator(&server).await;
    let key = make_key(&server, &root, None).await;
    // An application's room stays until the application deletes it, whatever its timeout.
    let kept = create_room(
        &server,
        &key,
        json!({ "name": "Kept", "public": true, "empty_timeout": 1 }),
    )
    .await;
    let open = |name: &str| {
        post(
            &server,
            "/rooms/new",
            None,
            json!({ "name": name, "public": true }),
        )
    };
    let busy = open("Busy").await;
    assert_eq!(busy.status, 201, "{:?}", busy.body);
    let mut socket = join(&server, &guest_token(&server, &busy.body["id"]).await).await;
    // Nobody ever joins this one: it goes a second or so after it was opened.
    let deserted = open("Deserted").await;
    assert_eq!(deserted.status, 201, "{:?}", deserted.body);
    unlisted(&server, deserted.body["id"].as_str().unwrap()).await;
    // The sweep that took it passed the older two over: one is an application's, one has a
    // guest in it.
    let ids = public_ids(&server).await;
    for room in [&kept["id"], &busy.body["id"]] {
        assert!(ids.iter().any(|id| id == room), "{room} gone: {ids:?}");
    }
    // Once the guest leaves, theirs goes too; the application's stays.
    socket.send(json!({ "type": "leave" })).await;
    unlisted(&server, busy.body["id"].as_str().unwrap()).await;
    let kept_now = api(
        &server,
        Method::GET,
        &format!("/rooms/{}", kept["id"].as_str().unwrap()),
        &key,
        None,
    )
    .await;
    assert_eq!(kept_now.status, 200, "{:?}", kept_now.body);
}

#[actix_web::test]
async fn participants_are_managed_live() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let key = make_key(&server, &root, None).await;
    let other = make_key(&server, &root, None).await;
    create_room(&server, &key, json!({ "id": "live", "name": "Live" })).await;
    let mut ada = join(&server, &token(&server, &key, "live", "ada").await).await;
    let mut bob = join(&server, &token(&server, &key, "live", "bob").await).await;
    let listed = api(&server, Method::GET, "/rooms/live/participants", &key, None).await;
    let mut names: Vec<_> = listed.body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["identity"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["ada", "bob"]);
    assert_eq!(
        api(&server, Method::GET, "/rooms/live", &key, None)
            .await
            .body["num_participants"],
        2
    );
    assert_error(
        &api(
            &server,
            Method::GET,
            "/rooms/live/participants",
            &other,
            None,
        )
        .await,
        404,
        10200,
    );

    // Metadata and grants, live.
    let body = json!({ "metadata": "speaker", "grants": { "join": true, "subscribe": true } });
    let changed = api(
        &server,
        Method::PATCH,
        "/rooms/live/participants/bob",
        &key,
        Some(body),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(
        (
            changed.body["metadata"].as_str(),
            changed.body["grants"]["publish"].as_bool()
        ),
        (Some("speaker"), Some(false))
    );
    let seen = next_of(&mut ada, "participant-updated").await;
    assert_eq!(seen["participant"]["metadata"], "speaker", "{seen:?}");
    let got = api(
        &server,
        Method::GET,
        "/rooms/live/participants/bob",
        &key,
        None,
    )
    .await;
    assert_eq!(got.body["metadata"], "speaker");
    assert_error(
        &api(
            &server,
            Method::GET,
            "/rooms/live/participants/carol",
            &key,
            None,
        )
        .await,
        404,
        10201,
    );
    assert_error(
        &api(
            &server,
            Method::POST,
            "/rooms/live/participants/bob/tracks/TR_none/mute",
            &key,
            Some(json!({ "muted": true })),
        )
        .await,
        404,
        10202,
    );

    // Data from the server, to one participant.
    let data = json!({ "payload": { "hello": 1 }, "to": ["ada"] });
    assert_eq!(
        api(&server, Method::POST, "/rooms/live/data", &key, Some(data))
            .await
            .status,
        204
    );
    let got = next_of(&mut ada, "data").await;
    assert_eq!(
        (got["payload"].clone(), got["from"].clone()),
        (json!({ "hello": 1 }), Value::Null),
        "{got:?}"
    );

    // Removed: disconnected, and gone from the list.
    assert_eq!(
        api(
            &server,
            Method::DELETE,
            "/rooms/live/participants/bob",
            &key,
            None
        )
        .await
        .status,
        204
    );
    let removed = next_of(&mut bob, "never").await;
    assert_eq!(removed["code"], 4007, "{removed:?}");
    let listed = api(&server, Method::GET, "/rooms/live/participants", &key, None).await;
    assert_eq!(listed.body["participants"].as_array().unwrap().len(), 1);
    // A change of the room reaches the live room; deleting it disconnects everyone.
    let changed = api(
        &server,
        Method::PATCH,
        "/rooms/live",
        &key,
        Some(json!({ "metadata": "v2" })),
    )
    .await;
    assert_eq!(changed.status, 200);
    let updated = next_of(&mut ada, "room-updated").await;
    assert_eq!(updated["room"]["metadata"], "v2", "{updated:?}");
    assert_eq!(
        api(&server, Method::DELETE, "/rooms/live", &key, None)
            .await
            .status,
        204
    );
    let closed = next_of(&mut ada, "never").await;
    assert_eq!(closed["code"], 4008, "{closed:?}");
}

#[actix_web::test]
async fn webhooks_are_signed_and_retried_and_the_event_log_has_what_a_downed_one_missed() {
    let mut hooks = receiver().await;
    let server = TestServer::with(&[
        ("rooms.webhook_attempts", "3"),
        ("rooms.webhook_backoff_ms", "50"),
    ])
    .await;
    let root = operator(&server).await;
    let key = make_key(&server, &root, Some(&hooks.url)).await;
    let other = make_key(&server, &root, None).await;
    create_room(&server, &key, json!({ "id": "hooked", "empty_timeout": 1 })).await;

    // The first delivery fails once and is retried; both arrive signed.
    hooks.refusing.store(1, Ordering::SeqCst);
    let mut ada = join(&server, &token(&server, &key, "hooked", "ada").await).await;
    let mut got = vec![
        hooks.next(&key.webhook_secret).await,
        hooks.next(&key.webhook_secret).await,
    ];
    got.sort_by_key(|hook| hook["id"].as_str().unwrap().parse::<i64>().unwrap());
    assert_eq!(
        (got[0]["event"].as_str(), got[1]["event"].as_str()),
        (Some("room_started"), Some("participant_joined")),
        "{got:?}"
    );
    assert_eq!(got[1]["room"], "hooked");
    assert_eq!(got[1]["participant"]["identity"], "ada");
    let seen = got[1]["id"].as_str().unwrap().to_string();

    // The endpoint goes down: nothing more arrives, every attempt refused.
    hooks.refusing.store(usize::MAX, Ordering::SeqCst);
    let mut bob = join(&server, &token(&server, &key, "hooked", "bob").await).await;
    bob.send(json!({ "type": "leave" })).await;
    let left = next_of(&mut ada, "participant-left").await;
    assert_eq!(left["identity"], "bob", "{left:?}");
    ada.send(json!({ "type": "leave" })).await;
    // The room ends a second after it empties; the log has it all, after the last id seen.
    let mut missed = Vec::new();
    for _ in 0..50 {
        let read = api(
            &server,
            Method::GET,
            &format!("/rooms/hooked/events?after={seen}"),
            &key,
            None,
        )
        .await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        missed = read.body["events"].as_array().unwrap().clone();
        if missed.last().is_some_and(|e| e["event"] == "room_finished") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Vec<_> = missed
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["participant"]["identity"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("participant_joined", Some("bob")),
            ("participant_left", Some("bob")),
            ("participant_left", Some("ada")),
            ("room_finished", None)
        ]
    );
    assert!(
        hooks.hooks.try_recv().is_err(),
        "the downed endpoint received nothing"
    );
    // Paged by cursor: `next` continues where a page ended.
    let page = api(
        &server,
        Method::GET,
        &format!("/rooms/hooked/events?after={seen}&limit=1"),
        &key,
        None,
    )
    .await;
    assert_eq!(page.body["events"].as_array().unwrap().len(), 1);
    let next = page.body["next"].as_str().unwrap();
    let rest = api(
        &server,
        Method::GET,
        &format!("/rooms/hooked/events?after={next}"),
        &key,
        None,
    )
    .await;
    assert_eq!(rest.body["events"].as_array().unwrap().len(), 3);
    // Only the application that made the room reads its log.
    let theirs = api(&server, Method::GET, "/rooms/hooked/events", &other, None).await;
    assert_eq!(theirs.body["events"], json!([]));

    // Back up: events flow again; a deleted room's room_finished still reaches its application.
    hooks.refusing.store(0, Ordering::SeqCst);
    let _carol = join(&server, &token(&server, &key, "hooked", "carol").await).await;
    hooks.until(&key.webhook_secret, "participant_joined").await;
    assert_eq!(
        api(&server, Method::DELETE, "/rooms/hooked", &key, None)
            .await
            .status,
        204
    );
    let finished = hooks.until(&key.webhook_secret, "room_finished").await;
    assert_eq!(finished.last().unwrap()["room"], "hooked");
    hooks.handle.stop(false).await;
}

#[actix_web::test]
async fn a_full_webhook_queue_drops_webhooks_but_the_log_keeps_them() {
    let mut hooks = receiver().await;
    let url = hooks.url.clone();
    // Room for one webhook body at a time, and a configured secret for rooms without a key.
    let server = TestServer::with(&[
        ("rooms.webhook_url", url.as_str()),
        ("rooms.webhook_secret", "instance secret"),
        ("rooms.webhook_queue_bytes", "400"),
        ("rooms.webhook_attempts", "2"),
        ("rooms.webhook_backoff_ms", "2000"),
    ])
    .await;
    hooks.refusing.store(usize::MAX, Ordering::SeqCst);
    let opened = post(
        &server,
        "/rooms/new",
        None,
        json!({ "name": "Ours", "public": true }),
    )
    .await;
    let room = opened.body["id"].as_str().unwrap().to_string();
    let guest = post(
        &server,
        "/rooms/guest",
        None,
        json!({ "room": room, "name": "G" }),
    )
    .await;
    let _socket = join(&server, guest.body["token"].as_str().unwrap()).await;
    // room_started is held for its retry; participant_joined (bigger than what is left) is dropped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    hooks.refusing.store(0, Ordering::SeqCst);
    let retried = hooks.next("instance secret").await;
    assert_eq!(retried["event"], "room_started");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hooks.hooks.try_recv().is_err(),
        "participant_joined was dropped"
    );
    assert_eq!(
        server
            .count("room_events WHERE event = 'participant_joined'")
            .await,
        1
    );
    hooks.handle.stop(false).await;
}
