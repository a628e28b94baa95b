//! REST rate limits over real HTTP, with the limits on: the `X-RateLimit-*` headers count down,
//! the 429 comes exactly when they said and tells how long to wait, waiting that long is enough,
//! buckets are per channel, the global limit, per-address limits on login, and accounts with
//! BYPASS_RATE_LIMITS are not limited. A refused request changes nothing.

use std::time::Duration;

use awc::http::header::HeaderMap;
use serde_json::{json, Value};

use crate::common::http::{account, register};
use crate::common::TestServer;

pub struct Answer {
    pub status: u16,
    headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn number(&self, name: &str) -> f64 {
        self.header(name).unwrap().parse().unwrap()
    }
}

pub async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let client = awc::Client::default();
    let mut request = client.request(method.parse().unwrap(), server.url(path));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", token));
    }
    let mut response = match body {
        Some(body) => request.send_json(&body).await.unwrap(),
        None => request.send().await.unwrap(),
    };
    let bytes = response.body().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn limited(overrides: &[(&str, &str)]) -> TestServer {
    let mut settings = vec![("rate_limits.enabled", "true")];
    settings.extend_from_slice(overrides);
    TestServer::with(&settings).await
}

async fn channel(server: &TestServer, token: &str) -> String {
    let guild = send(
        server,
        "POST",
        "/api/v9/guilds",
        Some(token),
        Some(json!({ "name": "Limits" })),
    )
    .await;
    assert_eq!(guild.status, 201, "{:?}", guild.body);
    guild.body["system_channel_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn the_headers_count_down_and_the_429_comes_when_they_said() {
    let server = limited(&[
        ("rate_limits.message_create.limit", "3"),
        ("rate_limits.message_create.window_ms", "2000"),
    ])
    .await;
    let alice = account(&server, "alice").await;
    let general = channel(&server, &alice.token).await;
    let path = format!("/api/v9/channels/{general}/messages");
    let say = |n: u32| {
        send(
            &server,
            "POST",
            &path,
            Some(&alice.token),
            Some(json!({ "content": format!("n{n}") })),
        )
    };

    let mut bucket = None;
    for (n, remaining) in [(1, 2), (2, 1), (3, 0)] {
        let sent = say(n).await;
        assert_eq!(sent.status, 200, "{:?}", sent.body);
        assert_eq!(sent.number("x-ratelimit-limit"), 3.0);
        assert_eq!(sent.number("x-ratelimit-remaining"), f64::from(remaining));
        let reset_after = sent.number("x-ratelimit-reset-after");
        assert!(reset_after > 0.0 && reset_after <= 2.0, "{reset_after}");
        let reset = sent.number("x-ratelimit-reset");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (reset - now - reset_after).abs() < 0.5,
            "reset {reset} now {now}"
        );
        let id = sent.header("x-ratelimit-bucket").unwrap().to_string();
        assert_eq!(bucket.get_or_insert(id.clone()), &id, "one bucket");
    }

    // The headers said 0 left: the next one is refused, and says how long to wait.
    let refused = say(4).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(refused.body["global"], false);
    assert_eq!(refused.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(refused.number("x-ratelimit-remaining"), 0.0);
    let retry_after = refused.body["retry_after"].as_f64().unwrap();
    assert!(retry_after > 0.0 && retry_after <= 2.0, "{retry_after}");
    assert!(refused.number("retry-after") >= retry_after);
    assert_eq!(
        server
            .count(&format!("messages WHERE channel_id = {general}"))
            .await,
        3,
        "the refused message was not stored"
    );

    // Another channel is another bucket.
    let other = channel(&server, &alice.token).await;
    let elsewhere = send(
        &server,
        "POST",
        &format!("/api/v9/channels/{other}/messages"),
        Some(&alice.token),
        Some(json!({ "content": "hi" })),
    )
    .await;
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.number("x-ratelimit-remaining"), 2.0);

    // Waiting as long as the 429 said is enough.
    tokio::time::sleep(Duration::from_secs_f64(retry_after)).await;
    let again = say(5).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.number("x-ratelimit-remaining"), 2.0);
}

#[actix_web::test]
async fn the_global_limit_and_logins_per_address() {
    let server = limited(&[
        ("rate_limits.global.limit", "4"),
        ("rate_limits.global.window_ms", "60000"),
        ("rate_limits.auth.limit", "2"),
    ])
    .await;
    // `account` reads /users/@me once: one of the account's four.
    let bob = account(&server, "bob").await;
    for _ in 0..3 {
        assert_eq!(
            send(&server, "GET", "/api/v9/users/@me", Some(&bob.token), None)
                .await
                .status,
            200
        );
    }
    let refused = send(&server, "GET", "/api/v9/users/@me", Some(&bob.token), None).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["global"], true);
    assert_eq!(refused.header("x-ratelimit-global"), Some("true"));
    assert_eq!(refused.header("x-ratelimit-scope"), Some("global"));

    let login = json!({ "login": "bob@example.org", "password": "correct horse" });
    let first = send(
        &server,
        "POST",
        "/api/v9/auth/login",
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.number("x-ratelimit-remaining"), 1.0);
    let second = send(
        &server,
        "POST",
        "/api/v9/auth/login",
        None,
        Some(login.clone()),
    )
    .await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(
        send(&server, "POST", "/api/v9/auth/login", None, Some(login))
            .await
            .status,
        429
    );
}

#[actix_web::test]
async fn accounts_with_bypass_rate_limits_are_not_limited() {
    let server = limited(&[
        ("rate_limits.global.limit", "2"),
        ("rate_limits.global.window_ms", "60000"),
    ])
    .await;
    // Given the right before its first request (rights are read at most every 30 s).
    let carol = register(&server, "carol").await;
    server
        .sql("UPDATE users SET rights = rights | (1 << 9) WHERE username = 'carol'")
        .await;
    for _ in 0..5 {
        let answer = send(&server, "GET", "/api/v9/users/@me", Some(&carol), None).await;
        assert_eq!(answer.status, 200);
        assert!(answer.header("x-ratelimit-limit").is_none());
    }
}

#[actix_web::test]
async fn posting_as_a_webhook_is_limited_per_webhook() {
    let server = limited(&[
        ("rate_limits.webhook_execute.limit", "2"),
        ("rate_limits.webhook_execute.window_ms", "60000"),
    ])
    .await;
    let alice = account(&server, "alice").await;
    let general = channel(&server, &alice.token).await;
    let mut hooks = Vec::new();
    for name in ["First", "Second"] {
        let made = send(
            &server,
            "POST",
            &format!("/api/v9/channels/{general}/webhooks"),
            Some(&alice.token),
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(made.status, 200, "{:?}", made.body);
        let (id, token) = (&made.body["id"], &made.body["token"]);
        hooks.push(format!(
            "/api/v9/webhooks/{}/{}",
            id.as_str().unwrap(),
            token.as_str().unwrap()
        ));
    }
    let post = |path: String| {
        let server = &server;
        async move {
            send(
                server,
                "POST",
                &path,
                None,
                Some(json!({ "content": "hi" })),
            )
            .await
        }
    };

    for remaining in [1.0, 0.0] {
        let posted = post(hooks[0].clone()).await;
        assert_eq!(posted.status, 204, "{:?}", posted.body);
        assert_eq!(posted.number("x-ratelimit-limit"), 2.0);
        assert_eq!(posted.number("x-ratelimit-remaining"), remaining);
    }
    let refused = post(hooks[0].clone()).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    // The other webhook of the same channel has its own bucket.
    let other = post(hooks[1].clone()).await;
    assert_eq!(other.status, 204, "{:?}", other.body);
    assert_eq!(
        server.count("messages WHERE webhook_id IS NOT NULL").await,
        3
    );
}

/// A client test suite runs several connections from one address, each asking the instance's
/// policies and gateway URL before it starts: discovery does not spend the address's global
/// bucket (nor is it refused by an empty one), yet is bounded by a rule of its own.
#[actix_web::test]
async fn discovery_has_a_bucket_of_its_own() {
    let server = limited(&[
        ("rate_limits.global.limit", "5"),
        ("rate_limits.global.window_ms", "60000"),
        ("rate_limits.discovery.limit", "40"),
        ("rate_limits.discovery.window_ms", "60000"),
    ])
    .await;
    let paths = [
        "/api/v9/policies/instance/domains",
        "/api/v9/policies/instance/limits",
        "/api/policies/instance",
        "/api/v9/gateway",
        "/api/v9/ping",
    ];
    // Four clients, eight discovery requests each: 32, past the global limit of 5.
    let clients = (0..4).map(|_| async {
        let mut statuses = Vec::new();
        for path in paths.iter().cycle().take(8) {
            statuses.push(send(&server, "GET", path, None, None).await.status);
        }
        statuses
    });
    for statuses in futures_util::future::join_all(clients).await {
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    // The global bucket is untouched: an anonymous request elsewhere still passes.
    let user = send(&server, "GET", "/api/v9/users/1", None, None).await;
    assert_ne!(user.status, 429, "{:?}", user.body);
    // Discovery's own bucket is per route, and bounded.
    let mut last = 0;
    for _ in 0..40 {
        last = send(&server, "GET", "/api/v9/gateway", None, None)
            .await
            .status;
    }
    assert_eq!(last, 429);
}
