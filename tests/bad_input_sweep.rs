//! Every REST route against bad input: malformed JSON, bodies of the wrong shape, wrong types,
//! NUL bytes, huge strings, ids that overflow (99999999999999999999999, -1), unknown fields, and
//! bad path segments. A Discord error is fine; a 5xx, a dropped connection or a server that
//! stops answering is not.
//!
//! The route list is read from the source (`.route("…", web::method()…)` in `src/http/`), so a
//! new route is swept without touching this file; `route_table_is_read` guards the reader itself.

use std::path::Path;
use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Map, Value};

use crate::common::guild::{guild, join};
use crate::common::http::{post, request};
use crate::common::TestServer;

/// A registered route: its method and its pattern with `{params}`, as clients see it.
#[derive(Debug, Clone)]
struct Route {
    method: Method,
    pattern: String,
}

/// Where an area's routes are mounted (see `src/http/mod.rs`): the admin API under its own
/// scope, the well-known and health routes at the root, everything else under `/api/v9`.
fn mount_point(file: &Path) -> &'static str {
    let path = file.to_string_lossy();
    if path.contains("http/admin/") {
        "/_spacebar/admin"
    } else if path.ends_with("well_known.rs") || path.ends_with("health.rs") {
        ""
    } else {
        "/api/v9"
    }
}

/// Every `.route(PATH, web::METHOD()` in the HTTP sources, with PATH a literal or a `const`.
fn routes() -> Vec<Route> {
    let mut files = Vec::new();
    collect_sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut files,
    );
    let mut routes = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let prefix = mount_point(&file);
        for (start, _) in source.match_indices(".route(") {
            let rest = source[start + ".route(".len()..].trim_start();
            let (path, rest) = match rest.strip_prefix('"') {
                Some(literal) => {
                    let end = literal.find('"').unwrap();
                    (literal[..end].to_string(), &literal[end + 1..])
                }
                None => {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap();
                    let name = &rest[..end];
                    let Some(value) = constant(&source, name) else {
                        continue;
                    };
                    (value, &rest[end..])
                }
            };
            let Some(rest) = rest.trim_start().strip_prefix(',') else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix("web::") else {
                continue;
            };
            let method = rest.split("()").next().unwrap().to_uppercase();
            let Ok(method) = Method::from_bytes(method.as_bytes()) else {
                continue;
            };
            routes.push(Route {
                method,
                pattern: format!("{prefix}{path}"),
            });
        }
    }
    routes
}

fn collect_sources(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The value of `const NAME: &str = "…";` in `source`.
fn constant(source: &str, name: &str) -> Option<String> {
    let declaration = format!("const {name}: &str = \"");
    let start = source.find(&declaration)? + declaration.len();
    let end = source[start..].find('"')?;
    Some(source[start..start + end].to_string())
}

/// The order to sweep in: routes that destroy what the others need (deleting, logging out)
/// last, the most specific first (a reaction before its message, a channel before its guild).
fn sweep_order(routes: &mut [Route]) {
    let destructive = |route: &Route| {
        route.method == Method::DELETE
            || route.pattern.contains("logout")
            || route.pattern.ends_with("/delete")
            || route.pattern.ends_with("/disable")
    };
    routes.sort_by_key(|route| {
        (
            destructive(route),
            std::cmp::Reverse(route.pattern.matches('/').count()),
        )
    });
}

/// Fills a route's `{params}` from `values` (a name not in it gets `fallback`).
fn fill(pattern: &str, values: &dyn Fn(&str) -> String) -> String {
    let mut path = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        path.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').unwrap();
        let name = rest[open + 1..close].split(':').next().unwrap();
        path.push_str(&values(name));
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

/// Field names the routes read, so the bodies below reach past "missing field" into handlers.
const FIELDS: &[&str] = &[
    "name",
    "content",
    "topic",
    "description",
    "nick",
    "reason",
    "username",
    "global_name",
    "password",
    "new_password",
    "email",
    "login",
    "code",
    "type",
    "position",
    "permissions",
    "color",
    "hoist",
    "mentionable",
    "roles",
    "parent_id",
    "user_limit",
    "bitrate",
    "rate_limit_per_user",
    "nsfw",
    "permission_overwrites",
    "icon",
    "avatar",
    "banner",
    "embeds",
    "allowed_mentions",
    "message_reference",
    "nonce",
    "tts",
    "flags",
    "max_age",
    "max_uses",
    "temporary",
    "unique",
    "target_type",
    "target_user_id",
    "channel_id",
    "guild_id",
    "message_id",
    "id",
    "messages",
    "preferred_locale",
    "locale",
    "custom_status",
    "status",
    "theme",
    "delete_message_days",
    "delete_message_seconds",
    "afk_channel_id",
    "afk_timeout",
    "system_channel_id",
    "verification_level",
    "explicit_content_filter",
    "default_message_notifications",
    "mute",
    "deaf",
    "communication_disabled_until",
    "recipients",
    "recipient_id",
    "access_tokens",
    "nicks",
    "consent",
    "date_of_birth",
    "tags",
    "image",
    "sticker_ids",
    "attachments",
    "components",
    "data",
    "options",
    "bio",
    "pronouns",
    "accent_color",
    "version",
    "rights",
    "application_id",
    "read_states",
    "token",
    "message_notifications",
    "suppress_everyone",
    "channel_overrides",
    "emoji_id",
    "emoji_name",
    "region",
    "rtc_region",
    "video_quality_mode",
    "default_auto_archive_duration",
    "invitable",
    "archived",
    "locked",
    "enabled",
    "reason_text",
    "user_id",
    "users",
    "until",
    "expires_at",
    "limit",
    "query",
    "max_members",
    "features",
    "premium",
    "bot_public",
    "redirect_uris",
    "guild_ids",
    "undelete",
    "captcha_key",
    "gift_code_sku_id",
    "invite",
    "webhook_id",
];

/// A body with every known field set to `value`.
fn every_field(value: Value) -> Value {
    let mut map = Map::new();
    for field in FIELDS {
        map.insert((*field).to_string(), value.clone());
    }
    Value::Object(map)
}

/// The bad bodies each route gets: raw bytes, so malformed JSON goes through as it is.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let json_bodies = [
        ("array", json!([1, "x"])),
        ("null", Value::Null),
        ("unknown field", json!({ "zz_unknown": { "deep": [1] } })),
        ("numbers for everything", every_field(json!(12))),
        ("strings for everything", every_field(json!("text"))),
        ("objects for everything", every_field(json!({ "a": 1 }))),
        ("lists of anything", every_field(json!([null, {}, "x", -1]))),
        ("NUL", every_field(json!("bad\u{0}byte"))),
        ("huge strings", every_field(json!("x".repeat(6000)))),
        ("i64 max", every_field(json!(i64::MAX))),
        ("-1", every_field(json!(-1))),
        ("float", every_field(json!(1.5e300))),
        (
            "overflowing id as text",
            every_field(json!("99999999999999999999999")),
        ),
        (
            "nested",
            every_field(
                json!([{ "id": "-1", "type": 0, "name": "\u{0}", "allow": "x",
                "deny": "99999999999999999999999", "title": "\u{0}", "value": "x" }]),
            ),
        ),
    ];
    let mut bodies: Vec<(&'static str, Vec<u8>)> = vec![
        ("no body", Vec::new()),
        ("malformed JSON", b"{\"name\": ".to_vec()),
        ("not UTF-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        // Bare numbers too large for any integer type, where serde_json meets them as text.
        (
            "overflowing id",
            br#"{"id":99999999999999999999999,"channel_id":99999999999999999999999,"position":99999999999999999999999,"max_age":99999999999999999999999,"roles":[99999999999999999999999],"permissions":99999999999999999999999,"color":99999999999999999999999}"#.to_vec(),
        ),
    ];
    for (name, body) in json_bodies {
        bodies.push((name, serde_json::to_vec(&body).unwrap()));
    }
    bodies
}

/// What went wrong on one request, when it did.
async fn send(
    client: &awc::Client,
    server: &TestServer,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Option<String> {
    let mut request = client
        .request(method.clone(), server.url(path))
        .insert_header(("Content-Type", "application/json"));
    if body.windows(6).any(|w| w == b"\\u0000") {
        // NUL in the audit log reason too, with the body that has it.
        request = request.insert_header(("X-Audit-Log-Reason", "%00bad%00"));
    }
    if let Some(token) = token {
        request = request.insert_header(("Authorization", token));
    }
    match request.send_body(body.to_vec()).await {
        Ok(mut response) if response.status().is_server_error() => {
            let bytes = response.body().await.unwrap_or_default();
            Some(format!(
                "{} {}",
                response.status(),
                String::from_utf8_lossy(&bytes)
            ))
        }
        Ok(_) => None,
        Err(error) => Some(format!("no answer: {error}")),
    }
}

/// Ids that are not ids: too large for any integer, negative, NUL, absurdly long.
const BAD_SEGMENTS: &[&str] = &["99999999999999999999999", "-1", "%00"];

/// Sends every route each of `bodies` (with real ids from `ids`), and the bad path segments;
/// what went wrong, one line each.
async fn sweep(
    server: &TestServer,
    token: Option<&str>,
    ids: &dyn Fn(&str) -> String,
    bodies: &[(&'static str, Vec<u8>)],
) -> Vec<String> {
    let mut routes = routes();
    sweep_order(&mut routes);
    let long = "9".repeat(3000);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut failures = Vec::new();
    for route in &routes {
        let path = fill(&route.pattern, ids);
        for (name, body) in bodies {
            if let Some(failure) = send(&client, server, &route.method, &path, token, body).await {
                failures.push(format!("{} {path} [{name}]: {failure}", route.method));
            }
        }
        if !route.pattern.contains('{') {
            continue;
        }
        for segment in BAD_SEGMENTS.iter().copied().chain([long.as_str()]) {
            let path = fill(&route.pattern, &|_| segment.to_string());
            for (name, body) in bodies.iter().take(1) {
                if let Some(failure) =
                    send(&client, server, &route.method, &path, token, body).await
                {
                    let shown: String = path.chars().take(120).collect();
                    failures.push(format!("{} {shown} [{name}]: {failure}", route.method));
                }
            }
        }
    }
    failures
}

#[actix_web::test]
async fn route_table_is_read() {
    let routes = routes();
    let has = |method: Method, pattern: &str| {
        routes
            .iter()
            .any(|r| r.method == method && r.pattern == pattern)
    };
    assert!(routes.len() > 100, "only {} routes found", routes.len());
    assert!(has(Method::POST, "/api/v9/channels/{channel_id}/messages"));
    assert!(has(
        Method::PATCH,
        "/api/v9/guilds/{guild_id}/members/{user_id}"
    ));
    assert!(has(Method::GET, "/_spacebar/admin/whoami"));
    assert!(has(Method::GET, "/healthz"));
}

/// The sweep as an anonymous caller and as a guild's owner (an operator, so the admin API lets
/// them in too), with real ids in the path so handlers get past their look-ups.
#[actix_web::test]
async fn no_route_answers_bad_input_with_a_server_error() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let owner = &guild.owner;
    server
        .sql(&format!(
            "UPDATE users SET rights = rights | 1 WHERE id = {}",
            owner.id
        ))
        .await;
    // One of each thing the paths name, made by the owner: (path, body) → the created object.
    let made = |path: String, body: Value| {
        let (server, token) = (&server, owner.token.as_str());
        async move { post(server, &path, Some(token), body).await.body }
    };
    let channel = guild.channel.as_str();
    let message = made(
        format!("/api/v9/channels/{channel}/messages"),
        json!({ "content": "hi" }),
    )
    .await;
    let role = made(
        format!("/api/v9/guilds/{}/roles", guild.id),
        json!({ "name": "role" }),
    )
    .await;
    let invite = made(format!("/api/v9/channels/{channel}/invites"), json!({})).await;
    let webhook = made(
        format!("/api/v9/channels/{channel}/webhooks"),
        json!({ "name": "hook" }),
    )
    .await;
    let application = made("/api/v9/applications".into(), json!({ "name": "app" })).await;
    let text = |value: &Value| value.as_str().unwrap_or("1").to_string();
    let (message_id, role_id) = (text(&message["id"]), text(&role["id"]));
    let (invite_code, application_id) = (text(&invite["code"]), text(&application["id"]));
    let (webhook_id, webhook_token) = (text(&webhook["id"]), text(&webhook["token"]));

    let ids = |name: &str| -> String {
        match name {
            "guild_id" => guild.id.clone(),
            "channel_id" => guild.channel.clone(),
            "message_id" => message_id.clone(),
            "role_id" | "overwrite_id" => role_id.clone(),
            "user_id" => member.id.clone(),
            "code" => invite_code.clone(),
            "webhook_id" => webhook_id.clone(),
            "token" => webhook_token.clone(),
            "application_id" => application_id.clone(),
            "emoji" => "%F0%9F%91%8D".to_string(),
            "right" => "OPERATOR".to_string(),
            _ => "1".to_string(),
        }
    };
    // Anonymous callers mostly meet the 401 first: a few bodies are enough to show it.
    let anonymous: Vec<_> = bodies()
        .into_iter()
        .filter(|(name, _)| ["no body", "malformed JSON", "NUL", "overflowing id"].contains(name))
        .collect();
    println!("sweeping {} routes", routes().len());
    let mut failures = sweep(&server, None, &ids, &anonymous).await;
    failures.extend(sweep(&server, Some(&owner.token), &ids, &bodies()).await);

    let alive = request(&server, Method::GET, "/api/v9/gateway", None, None).await;
    assert_eq!(alive.status, 200, "the server still answers");
    assert!(
        failures.is_empty(),
        "{} server errors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
