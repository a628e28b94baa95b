//! HTTP helpers: JSON requests with a real client, and the account set-up most tests need.

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::Server;

pub struct Response {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Value,
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .finish()
}

/// Sends `method path` with an optional token and JSON body; the answer's body parsed as JSON
/// (`Null` when empty).
pub async fn request(
    server: &impl Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    request_with_headers(server, method, path, token, &[], body).await
}

/// [`request`] with extra headers (`X-Audit-Log-Reason` and the like).
pub async fn request_with_headers(
    server: &impl Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Response {
    let mut request = client().request(method, server.url(path));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", token));
    }
    for header in headers {
        request = request.insert_header(*header);
    }
    let mut response = match body {
        Some(body) => request.send_json(&body).await.unwrap(),
        None => request.send().await.unwrap(),
    };
    raw_response(&mut response).await
}

/// Sends raw bytes as the body (malformed JSON and the like).
pub async fn request_bytes(
    server: &impl Server,
    method: Method,
    path: &str,
    body: &'static [u8],
) -> Response {
    let mut response = client()
        .request(method, server.url(path))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body)
        .await
        .unwrap();
    raw_response(&mut response).await
}

async fn raw_response<S>(response: &mut awc::ClientResponse<S>) -> Response
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let bytes = response.body().limit(8 << 20).await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Response {
        status: response.status(),
        content_type: response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string()),
        body,
    }
}

pub async fn get(server: &impl Server, path: &str, token: Option<&str>) -> Response {
    request(server, Method::GET, path, token, None).await
}

pub async fn post(server: &impl Server, path: &str, token: Option<&str>, body: Value) -> Response {
    request(server, Method::POST, path, token, Some(body)).await
}

/// Posts `content` in `channel` as `token`'s user, which must succeed: the message.
pub async fn say(server: &impl Server, token: &str, channel: &str, content: &str) -> Value {
    let sent = post(
        server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(token),
        json!({ "content": content }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    sent.body
}

pub async fn patch(server: &impl Server, path: &str, token: &str, body: Value) -> Response {
    request(server, Method::PATCH, path, Some(token), Some(body)).await
}

/// A complete, valid registration body.
pub fn registration(username: &str, email: &str) -> Value {
    json!({
        "username": username,
        "email": email,
        "password": "correct horse",
        "consent": true,
        "date_of_birth": "2000-01-01",
    })
}

/// Registers an account (e-mail `<username>@example.org`) and returns its token.
pub async fn register(server: &impl Server, username: &str) -> String {
    let email = format!("{}@example.org", username.to_lowercase());
    let response = post(
        server,
        "/api/v9/auth/register",
        None,
        registration(username, &email),
    )
    .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    response.body["token"].as_str().unwrap().to_string()
}

/// A registered account: its token and id.
pub struct Account {
    pub token: String,
    pub id: String,
}

/// Registers an account (see [`register`]).
pub async fn account(server: &impl Server, name: &str) -> Account {
    let (token, user) = register_user(server, name).await;
    Account {
        token,
        id: user["id"].as_str().unwrap().to_string(),
    }
}

/// Registers an account and returns (token, user object).
pub async fn register_user(server: &impl Server, username: &str) -> (String, Value) {
    let token = register(server, username).await;
    let me = get(server, "/api/v9/users/@me", Some(&token)).await;
    (token, me.body)
}

/// `a` asks `b` to be friends and `b` accepts.
pub async fn befriend(server: &impl Server, a: &Account, b: &Account) {
    let asked = request(
        server,
        Method::PUT,
        &format!("/api/v9/users/@me/relationships/{}", b.id),
        Some(&a.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(asked.status, 204, "{:?}", asked.body);
    let accepted = request(
        server,
        Method::PUT,
        &format!("/api/v9/users/@me/relationships/{}", a.id),
        Some(&b.token),
        Some(json!({ "type": 1 })),
    )
    .await;
    assert_eq!(accepted.status, 204, "{:?}", accepted.body);
}

/// `from` opens (or finds) their DM with `to`; its channel id.
pub async fn open_dm(server: &impl Server, from: &Account, to: &Account) -> String {
    let opened = post(
        server,
        "/api/v9/users/@me/channels",
        Some(&from.token),
        json!({ "recipient_id": to.id }),
    )
    .await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    opened.body["id"].as_str().unwrap().to_string()
}

/// Asserts a 50035 form error with `code` at `field`.
pub fn assert_form_error(response: &Response, field: &str, code: &str) {
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(response.body["code"], 50035, "{:?}", response.body);
    let mut node = &response.body["errors"];
    for segment in field.split('.') {
        node = &node[segment];
    }
    let codes: Vec<&str> = node["_errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors at {field}: {:?}", response.body))
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&code), "{field}: {codes:?} lacks {code}");
}
