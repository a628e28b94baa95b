//! Finding the server: well-knowns, instance policies, ping, gateway URLs, CORS, health.

use awc::http::Method;
use serde_json::json;

use crate::common::http::{get, register};
use crate::common::TestServer;

#[actix_web::test]
async fn well_knowns_point_at_the_host_the_client_used() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    for host in ["127.0.0.1", "localhost"] {
        let client = awc::Client::new();
        let url = format!("http://{host}:{port}/.well-known/spacebar/client");
        let body: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let base = format!("http://{host}:{port}");
        assert_eq!(body["api"]["baseUrl"], base);
        assert_eq!(
            body["api"]["apiVersions"],
            json!({ "default": "9", "active": ["6", "7", "8", "9", "10"] })
        );
        assert_eq!(body["cdn"]["baseUrl"], base);
        assert_eq!(body["gateway"]["baseUrl"], format!("ws://{host}:{port}"));
        assert_eq!(body["gateway"]["encoding"], json!(["json", "etf"]));
        assert_eq!(
            body["gateway"]["compression"],
            json!(["zlib-stream", "zstd-stream", null])
        );
        assert!(body["admin"]["baseUrl"].is_string());
        let short: serde_json::Value = client
            .get(format!("http://{host}:{port}/.well-known/spacebar"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(short, json!({ "api": format!("{base}/api") }));
    }
}

#[actix_web::test]
async fn a_configured_public_url_wins() {
    let server = TestServer::with(&[("http.public_url", "https://chat.example.org/")]).await;
    let domains = get(&server, "/api/policies/instance/domains", None)
        .await
        .body;
    assert_eq!(domains["cdn"], "https://chat.example.org");
    assert_eq!(domains["gateway"], "wss://chat.example.org");
    assert_eq!(domains["apiEndpoint"], "https://chat.example.org/api/v9");
}

#[actix_web::test]
async fn instance_policies_have_what_clients_read() {
    let server = TestServer::start().await;
    let domains = get(&server, "/api/policies/instance/domains", None)
        .await
        .body;
    for key in [
        "cdn",
        "gateway",
        "apiEndpoint",
        "defaultApiVersion",
        "admin",
        "api",
    ] {
        assert!(domains[key].is_string(), "domains lack {key}: {domains}");
    }
    assert_eq!(domains["defaultApiVersion"], "9");
    let limits = get(&server, "/api/policies/instance/limits", None)
        .await
        .body;
    assert_eq!(limits["user"]["maxUsername"], 32);
    assert_eq!(limits["message"]["maxCharacters"], 2000);
    let config = get(&server, "/api/v9/policies/instance/config", None).await;
    assert_eq!(config.status, 200);
    for key in [
        "limits_user_maxGuilds",
        "limits_message_maxCharacters",
        "register_requireInvite",
        "register_dateOfBirth_required",
    ] {
        assert!(config.body.get(key).is_some(), "config lacks {key}");
    }
    let general = get(&server, "/api/policies/instance", None).await.body;
    assert_eq!(general["instanceName"], "spacebar");
    let ping = get(&server, "/api/ping", None).await;
    assert_eq!(ping.body["ping"], "pong!");
    for key in [
        "id",
        "name",
        "description",
        "image",
        "correspondenceEmail",
        "correspondenceUserID",
        "frontPage",
        "tosPage",
    ] {
        assert!(
            ping.body["instance"].get(key).is_some(),
            "ping lacks instance.{key}"
        );
    }
    assert_eq!(ping.body["instance"]["id"], general["instanceId"]);
}

#[actix_web::test]
async fn gateway_urls_for_users_and_bots() {
    let server = TestServer::start().await;
    let gateway = get(&server, "/api/v9/gateway", None).await.body;
    assert_eq!(gateway["url"], format!("ws://{}", server.addr));
    assert_eq!(get(&server, "/api/v10/gateway/bot", None).await.status, 401);
    let token = register(&server, "nina").await;
    let bot = get(
        &server,
        "/api/v10/gateway/bot",
        Some(&format!("Bot {token}")),
    )
    .await
    .body;
    assert_eq!(bot["shards"], 1);
    assert_eq!(bot["session_start_limit"]["max_concurrency"], 1);
    for key in ["total", "remaining", "reset_after"] {
        assert!(bot["session_start_limit"][key].is_number());
    }
}

#[actix_web::test]
async fn cors_echoes_the_origin_and_answers_preflight_with_204() {
    let server = TestServer::start().await;
    let client = awc::Client::new();
    let preflight = client
        .request(Method::OPTIONS, server.url("/api/v9/users/@me"))
        .insert_header(("Origin", "https://fermi.example"))
        .insert_header(("Access-Control-Request-Method", "PATCH"))
        .insert_header((
            "Access-Control-Request-Headers",
            "authorization,content-type",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let header = |name: &str| {
        preflight
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("https://fermi.example")
    );
    assert_eq!(
        header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header("access-control-allow-methods").as_deref(),
        Some("PATCH")
    );
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("authorization,content-type")
    );

    let plain = client
        .get(server.url("/api/ping"))
        .insert_header(("Origin", "http://localhost:8080"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:8080"
    );
}

#[actix_web::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start().await;
    assert_eq!(get(&server, "/healthz", None).await.status, 200);
    assert_eq!(get(&server, "/readyz", None).await.status, 200);
    get(&server, "/api/v9/users/@me", None).await;
    let mut response = awc::Client::new()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("spacebar_http_requests_total{")
                && l.contains("route=\"/api/v9/users/@me\"")
                && l.contains("status=\"401\"")),
        "{text}"
    );
    assert!(text.contains("spacebar_gateway_sessions 0"), "{text}");
    assert!(text.contains("spacebar_db_pool_connections"), "{text}");

    // With its database gone, the server is alive but not ready.
    let name = server.database_name();
    server
        .admin_sql(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await;
    server
        .admin_sql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await;
    assert_eq!(get(&server, "/healthz", None).await.status, 200);
    assert_eq!(get(&server, "/readyz", None).await.status, 503);
}
