//! Webhooks over real HTTP and gateways: only members with MANAGE_WEBHOOKS make, see, change
//! and delete them (with audit entries and WEBHOOKS_UPDATE); whoever holds the token posts as
//! the webhook (JSON and multipart, with or without `wait`), and the channel's members hear
//! the message with the webhook as its author; the webhook's messages are read, edited and
//! deleted through its token; a deleted webhook's token stops working.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Value};

use crate::cdn::{data_url, multipart, png, Part};
use crate::common::gateway::Gateway;
use crate::common::guild::{guild, join, Guild};
use crate::common::http::{
    account, assert_form_error, get, patch, post, request, request_with_headers, Account, Response,
};
use crate::common::TestServer;

const V9: &str = "/api/v9";
const MANAGE_WEBHOOKS: u64 = 1 << 29;

/// A request with a token and extra headers, the answer's body as JSON (`Null` when empty).
async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Response {
    request_with_headers(server, method, &format!("{V9}{path}"), token, headers, body).await
}

/// A multipart request (no login) to `path`.
async fn send_multipart(
    server: &TestServer,
    method: Method,
    path: &str,
    parts: &[Part<'_>],
) -> Response {
    let (content_type, body) = multipart(parts);
    let mut response = awc::Client::builder()
        .timeout(Duration::from_secs(20))
        .finish()
        .request(method, server.url(&format!("{V9}{path}")))
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .unwrap();
    let bytes = response.body().await.unwrap();
    Response {
        status: response.status(),
        content_type: None,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A webhook the owner makes in the guild's channel (with a reason); its JSON.
async fn make(server: &TestServer, guild: &Guild, name: &str) -> Value {
    let made = send(
        server,
        Method::POST,
        &format!("/channels/{}/webhooks", guild.channel),
        Some(&guild.owner.token),
        &[("X-Audit-Log-Reason", "for%20deploys")],
        Some(json!({ "name": name, "avatar": data_url("image/png", &png(8, 8)) })),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    made.body
}

fn hook_path(webhook: &Value) -> String {
    format!(
        "/webhooks/{}/{}",
        webhook["id"].as_str().unwrap(),
        webhook["token"].as_str().unwrap()
    )
}

async fn gateway(server: &TestServer, account: &Account) -> Gateway {
    let mut gateway = Gateway::connect(server, "v=9&encoding=json").await;
    gateway.identify(&account.token).await;
    gateway.dispatch("READY_SUPPLEMENTAL").await;
    gateway
}

/// The guild's audit entries of one type, newest first.
async fn entries(server: &TestServer, guild: &Guild, action_type: i64) -> Value {
    let log = get(
        server,
        &format!(
            "{V9}/guilds/{}/audit-logs?action_type={action_type}",
            guild.id
        ),
        Some(&guild.owner.token),
    )
    .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    log.body
}

fn assert_unknown_webhook(response: &Response) {
    assert_eq!(response.status, 404, "{:?}", response.body);
    assert_eq!(response.body["code"], 10015, "{:?}", response.body);
}

#[actix_web::test]
async fn only_members_with_manage_webhooks_manage_them() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let webhook = make(&server, &guild, "Deploys").await;
    let webhook_id = webhook["id"].as_str().unwrap();
    let rows = || server.count("webhooks");
    let before = rows().await;

    let refused = [
        (
            Method::POST,
            format!("/channels/{}/webhooks", guild.channel),
            Some(json!({ "name": "Mine" })),
        ),
        (
            Method::GET,
            format!("/channels/{}/webhooks", guild.channel),
            None,
        ),
        (Method::GET, format!("/guilds/{}/webhooks", guild.id), None),
        (Method::GET, format!("/webhooks/{webhook_id}"), None),
        (
            Method::PATCH,
            format!("/webhooks/{webhook_id}"),
            Some(json!({ "name": "Taken" })),
        ),
        (Method::DELETE, format!("/webhooks/{webhook_id}"), None),
    ];
    for (method, path, body) in refused {
        let answer = send(&server, method, &path, Some(&member.token), &[], body).await;
        assert_eq!(answer.status, 403, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["code"], 50013, "{path}");
    }
    assert_eq!(rows().await, before);
    let kept = get(&server, &format!("{V9}{}", hook_path(&webhook)), None).await;
    assert_eq!(kept.body["name"], "Deploys");

    // A stranger learns nothing of it; with the permission the member may.
    let stranger = account(&server, "stranger").await;
    let path = format!("{V9}/webhooks/{webhook_id}");
    assert_unknown_webhook(&get(&server, &path, Some(&stranger.token)).await);
    let role = post(
        &server,
        &format!("{V9}/guilds/{}/roles", guild.id),
        Some(&guild.owner.token),
        json!({ "name": "hooks", "permissions": MANAGE_WEBHOOKS.to_string() }),
    )
    .await;
    let role_id = role.body["id"].as_str().unwrap();
    let given = request(
        &server,
        Method::PUT,
        &format!(
            "{V9}/guilds/{}/members/{}/roles/{role_id}",
            guild.id, member.id
        ),
        Some(&guild.owner.token),
        None,
    )
    .await;
    assert_eq!(given.status, 204, "{:?}", given.body);
    let seen = get(&server, &path, Some(&member.token)).await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["user"]["id"], guild.owner.id);
}

#[actix_web::test]
async fn webhooks_are_made_listed_changed_and_deleted_with_audit_entries_and_events() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let mut owner_gateway = gateway(&server, &guild.owner).await;
    let owner = &guild.owner.token;

    // Discord's name rules.
    let channel_hooks = format!("{V9}/channels/{}/webhooks", guild.channel);
    for name in ["", "clyde", "My Discord bot", &"x".repeat(81)] {
        let refused = post(
            &server,
            &channel_hooks,
            Some(owner),
            json!({ "name": name }),
        )
        .await;
        assert_form_error(
            &refused,
            "name",
            if name.len() > 80 || name.is_empty() {
                "BASE_TYPE_BAD_LENGTH"
            } else {
                "USERNAME_INVALID_CONTAINS"
            },
        );
    }

    let webhook = make(&server, &guild, "Deploys").await;
    let webhook_id = webhook["id"].as_str().unwrap();
    assert_eq!(webhook["type"], 1);
    assert_eq!(webhook["guild_id"], guild.id);
    assert_eq!(webhook["channel_id"], guild.channel);
    assert_eq!(webhook["user"]["id"], guild.owner.id);
    assert_eq!(webhook["token"].as_str().unwrap().len(), 68);
    assert!(webhook["url"].as_str().unwrap().ends_with(&format!(
        "/api/webhooks/{webhook_id}/{}",
        webhook["token"].as_str().unwrap()
    )));
    let avatar = webhook["avatar"].as_str().unwrap();
    let image = get(
        &server,
        &format!("/avatars/{webhook_id}/{avatar}.png"),
        None,
    )
    .await;
    assert_eq!(image.status, 200);
    let event = owner_gateway.dispatch("WEBHOOKS_UPDATE").await;
    assert_eq!(
        event["d"],
        json!({ "guild_id": guild.id, "channel_id": guild.channel })
    );

    let listed = get(&server, &channel_hooks, Some(owner)).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["id"], webhook_id);
    let of_guild = get(
        &server,
        &format!("{V9}/guilds/{}/webhooks", guild.id),
        Some(owner),
    )
    .await;
    assert_eq!(of_guild.body[0]["token"], webhook["token"]);
    let by_token = get(&server, &format!("{V9}{}", hook_path(&webhook)), None).await;
    assert_eq!(by_token.status, 200);
    assert_eq!(by_token.body["name"], "Deploys");
    assert!(by_token.body.get("user").is_none(), "{:?}", by_token.body);

    // Renamed and moved to another channel of the guild.
    let other = post(
        &server,
        &format!("{V9}/guilds/{}/channels", guild.id),
        Some(owner),
        json!({ "name": "releases", "type": 0 }),
    )
    .await;
    let other_id = other.body["id"].as_str().unwrap();
    let changed = send(
        &server,
        Method::PATCH,
        &format!("/webhooks/{webhook_id}"),
        Some(owner),
        &[("X-Audit-Log-Reason", "tidy")],
        Some(json!({ "name": "Releases", "channel_id": other_id, "avatar": null })),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["name"], "Releases");
    assert_eq!(changed.body["channel_id"], other_id);
    assert_eq!(changed.body["avatar"], Value::Null);
    let mut moved = vec![
        owner_gateway.dispatch("WEBHOOKS_UPDATE").await["d"]["channel_id"].clone(),
        owner_gateway.dispatch("WEBHOOKS_UPDATE").await["d"]["channel_id"].clone(),
    ];
    moved.sort_by_key(|c| c.as_str().unwrap().parse::<i64>().unwrap());
    assert_eq!(moved, vec![json!(guild.channel), json!(other_id)]);
    let here = get(&server, &channel_hooks, Some(owner)).await;
    assert!(here.body.as_array().unwrap().is_empty());

    // The token may rename it, not move it.
    let renamed = request(
        &server,
        Method::PATCH,
        &format!("{V9}{}", hook_path(&webhook)),
        None,
        Some(json!({ "name": "Bot", "channel_id": guild.channel })),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "Bot");
    assert_eq!(renamed.body["channel_id"], other_id);

    // The audit log names the webhooks its entries are about, without their tokens.
    let log = entries(&server, &guild, 51).await;
    let named = log["webhooks"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{log:?}");
    assert_eq!(named[0]["id"], webhook_id);
    assert_eq!(named[0]["name"], "Bot");
    assert!(named[0].get("token").is_none(), "{log:?}");

    // Deleted by its token: the token stops working at once.
    let second = make(&server, &guild, "Second").await;
    let gone = request(
        &server,
        Method::DELETE,
        &format!("{V9}{}", hook_path(&webhook)),
        None,
        None,
    )
    .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    assert_unknown_webhook(&get(&server, &format!("{V9}{}", hook_path(&webhook)), None).await);
    let posted = post(
        &server,
        &format!("{V9}{}", hook_path(&webhook)),
        None,
        json!({ "content": "hi" }),
    )
    .await;
    assert_unknown_webhook(&posted);
    // And one deleted by a manager.
    let second_id = second["id"].as_str().unwrap();
    let deleted = send(
        &server,
        Method::DELETE,
        &format!("/webhooks/{second_id}"),
        Some(owner),
        &[("X-Audit-Log-Reason", "unused")],
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_unknown_webhook(&get(&server, &format!("{V9}/webhooks/{second_id}"), Some(owner)).await);

    // The audit log: made, changed, deleted, with reasons and changes, and the webhooks named.
    let created = entries(&server, &guild, 50).await;
    let first = created["audit_log_entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(first["target_id"], webhook_id);
    assert_eq!(first["user_id"], guild.owner.id);
    assert_eq!(first["reason"], "for deploys");
    assert!(first["changes"]
        .as_array()
        .unwrap()
        .contains(&json!({ "key": "name", "new_value": "Deploys" })));
    let updated = entries(&server, &guild, 51).await;
    let by_owner = updated["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "tidy")
        .unwrap()
        .clone();
    assert!(by_owner["changes"].as_array().unwrap().contains(
        &json!({ "key": "channel_id", "old_value": guild.channel, "new_value": other_id })
    ));
    let removed = entries(&server, &guild, 52).await;
    let removed = removed["audit_log_entries"].as_array().unwrap();
    assert_eq!(removed.len(), 2);
    assert!(removed
        .iter()
        .any(|e| e["target_id"] == second_id && e["reason"] == "unused"));
}

#[actix_web::test]
async fn posting_as_a_webhook_reaches_the_channel_with_the_webhook_as_author() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let webhook = make(&server, &guild, "Deploys").await;
    let webhook_id = webhook["id"].as_str().unwrap();
    let hook = format!("{V9}{}", hook_path(&webhook));
    let mut member_gateway = gateway(&server, &member).await;

    // Without `wait`: 204, and the members hear it.
    let quiet = post(&server, &hook, None, json!({ "content": "build green" })).await;
    assert_eq!(quiet.status, 204, "{:?}", quiet.body);
    let heard = member_gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(heard["content"], "build green");
    assert_eq!(heard["webhook_id"], webhook_id);
    assert_eq!(heard["author"]["id"], webhook_id);
    assert_eq!(heard["author"]["username"], "Deploys");
    assert_eq!(heard["author"]["avatar"], webhook["avatar"]);
    assert_eq!(heard["author"]["bot"], true);
    assert_eq!(heard["author"]["discriminator"], "0000");
    assert!(heard.get("member").is_none(), "{heard:?}");

    // With `wait` and a name of its own: the message, as sent. The avatar_url is on a loopback
    // address, which the server does not fetch from: the webhook's avatar stays.
    let inside = server.url(&format!(
        "/avatars/{webhook_id}/{}.png",
        webhook["avatar"].as_str().unwrap()
    ));
    let waited = post(
        &server,
        &format!("{hook}?wait=true"),
        None,
        json!({ "content": "deployed", "username": "Release Bot", "avatar_url": inside }),
    )
    .await;
    assert_eq!(waited.status, 200, "{:?}", waited.body);
    assert_eq!(waited.body["author"]["username"], "Release Bot");
    assert_eq!(waited.body["author"]["avatar"], webhook["avatar"]);
    assert_eq!(waited.body["webhook_id"], webhook_id);
    let heard = member_gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(heard["id"], waited.body["id"]);
    assert_eq!(heard["author"]["username"], "Release Bot");

    // Files, multipart with payload_json.
    let payload = json!({ "content": "the log", "username": "Logger" }).to_string();
    let sent = send_multipart(
        &server,
        Method::POST,
        &format!("{}?wait=1", hook_path(&webhook)),
        &[
            ("payload_json", None, payload.as_bytes()),
            ("files[0]", Some("build.log"), b"all tests passed\n"),
        ],
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let files = sent.body["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["filename"], "build.log");
    let url = files[0]["url"].as_str().unwrap();
    let path = &url[url.find("/attachments/").unwrap()..];
    let client = awc::Client::default();
    let mut file = client.get(server.url(path)).send().await.unwrap();
    assert_eq!(file.body().await.unwrap().as_ref(), b"all tests passed\n");
    let heard = member_gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(heard["author"]["username"], "Logger");

    // History shows the webhook as author; the member's own messages are as before.
    let own = post(
        &server,
        &format!("{V9}/channels/{}/messages", guild.channel),
        Some(&member.token),
        json!({ "content": "nice" }),
    )
    .await;
    assert_eq!(own.status, 200);
    let history = get(
        &server,
        &format!("{V9}/channels/{}/messages?limit=10", guild.channel),
        Some(&member.token),
    )
    .await;
    let authors: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|m| m["author"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["member", "Logger", "Release Bot", "Deploys"]);

    // Refused: empty, a forbidden name, a wrong token.
    let empty = post(&server, &hook, None, json!({ "content": "  " })).await;
    assert_eq!(empty.status, 400);
    assert_eq!(empty.body["code"], 50006);
    let posing = post(
        &server,
        &hook,
        None,
        json!({ "content": "x", "username": "Discord" }),
    )
    .await;
    assert_form_error(&posing, "username", "USERNAME_INVALID_CONTAINS");
    let wrong = post(
        &server,
        &format!("{V9}/webhooks/{webhook_id}/not-the-token"),
        None,
        json!({ "content": "x" }),
    )
    .await;
    assert_unknown_webhook(&wrong);
    let count = server
        .count(&format!("messages WHERE webhook_id = {webhook_id}"))
        .await;
    assert_eq!(count, 3);
}

#[actix_web::test]
async fn a_webhooks_messages_are_read_edited_and_deleted_through_its_token() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let webhook = make(&server, &guild, "Deploys").await;
    let hook = hook_path(&webhook);
    let mut member_gateway = gateway(&server, &member).await;
    let sent = post(
        &server,
        &format!("{V9}{hook}?wait=true"),
        None,
        json!({ "content": "v1" }),
    )
    .await;
    let message_id = sent.body["id"].as_str().unwrap();
    let message = format!("{hook}/messages/{message_id}");

    let read = get(&server, &format!("{V9}{message}"), None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["content"], "v1");

    let edited = request(
        &server,
        Method::PATCH,
        &format!("{V9}{message}"),
        None,
        Some(json!({ "content": "v2" })),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["content"], "v2");
    assert!(edited.body["edited_timestamp"].is_string());
    let heard = member_gateway.dispatch("MESSAGE_UPDATE").await["d"].clone();
    assert_eq!(heard["content"], "v2");
    assert_eq!(heard["author"]["username"], "Deploys");

    // A file added by a multipart edit, then dropped by naming no attachments.
    let payload = json!({ "content": "v3" }).to_string();
    let with_file = send_multipart(
        &server,
        Method::PATCH,
        &message,
        &[
            ("payload_json", None, payload.as_bytes()),
            ("files[0]", Some("notes.txt"), b"notes"),
        ],
    )
    .await;
    assert_eq!(with_file.status, 200, "{:?}", with_file.body);
    assert_eq!(with_file.body["attachments"].as_array().unwrap().len(), 1);
    let without = request(
        &server,
        Method::PATCH,
        &format!("{V9}{message}"),
        None,
        Some(json!({ "attachments": [] })),
    )
    .await;
    assert_eq!(without.status, 200, "{:?}", without.body);
    assert!(without.body["attachments"].as_array().unwrap().is_empty());
    assert_eq!(without.body["content"], "v3");

    // Someone else's message is not the webhook's to touch.
    let own = post(
        &server,
        &format!("{V9}/channels/{}/messages", guild.channel),
        Some(&member.token),
        json!({ "content": "mine" }),
    )
    .await;
    let own_id = own.body["id"].as_str().unwrap();
    let foreign = get(&server, &format!("{V9}{hook}/messages/{own_id}"), None).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["code"], 10008);
    let foreign = request(
        &server,
        Method::DELETE,
        &format!("{V9}{hook}/messages/{own_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(foreign.body["code"], 10008);

    let deleted = request(
        &server,
        Method::DELETE,
        &format!("{V9}{message}"),
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let heard = member_gateway.dispatch("MESSAGE_DELETE").await["d"].clone();
    assert_eq!(heard["id"], message_id);
    let gone = get(&server, &format!("{V9}{message}"), None).await;
    assert_eq!(gone.body["code"], 10008);

    // A member may still edit their own message and moderators delete webhooks' messages.
    let again = post(
        &server,
        &format!("{V9}{hook}?wait=true"),
        None,
        json!({ "content": "x" }),
    )
    .await;
    let again_id = again.body["id"].as_str().unwrap();
    let edit_own = patch(
        &server,
        &format!("{V9}/channels/{}/messages/{own_id}", guild.channel),
        &member.token,
        json!({ "content": "mine, edited" }),
    )
    .await;
    assert_eq!(edit_own.status, 200, "{:?}", edit_own.body);
    let moderated = request(
        &server,
        Method::DELETE,
        &format!("{V9}/channels/{}/messages/{again_id}", guild.channel),
        Some(&guild.owner.token),
        None,
    )
    .await;
    assert_eq!(moderated.status, 204, "{:?}", moderated.body);
}

#[actix_web::test]
async fn deleted_channels_and_guilds_take_their_webhooks_along() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let other = post(
        &server,
        &format!("{V9}/guilds/{}/channels", guild.id),
        Some(&guild.owner.token),
        json!({ "name": "doomed", "type": 0 }),
    )
    .await;
    let other_id = other.body["id"].as_str().unwrap();
    let made = post(
        &server,
        &format!("{V9}/channels/{other_id}/webhooks"),
        Some(&guild.owner.token),
        json!({ "name": "Doomed" }),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let hook = format!("{V9}{}", hook_path(&made.body));
    assert_eq!(
        post(&server, &hook, None, json!({ "content": "hi" }))
            .await
            .status,
        204
    );
    let deleted = request(
        &server,
        Method::DELETE,
        &format!("{V9}/channels/{other_id}"),
        Some(&guild.owner.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_unknown_webhook(&post(&server, &hook, None, json!({ "content": "hi" })).await);
    assert_eq!(server.count("webhooks").await, 0);

    let kept = make(&server, &guild, "Kept").await;
    let hook = format!("{V9}{}", hook_path(&kept));
    let gone = request(
        &server,
        Method::DELETE,
        &format!("{V9}/guilds/{}", guild.id),
        Some(&guild.owner.token),
        None,
    )
    .await;
    assert_eq!(gone.status, 204, "{:?}", gone.body);
    assert_unknown_webhook(&get(&server, &hook, None).await);
    assert_eq!(server.count("webhooks").await, 0);
}

#[actix_web::test]
async fn an_avatar_url_is_fetched_and_served_from_here() {
    // The image is on this same server, a loopback address: allowed for this test only.
    let server = TestServer::with(&[("cdn.fetch_private_addresses", "true")]).await;
    let guild = guild(&server).await;
    let webhook = make(&server, &guild, "Deploys").await;
    let webhook_id = webhook["id"].as_str().unwrap();
    let picture = patch(
        &server,
        &format!("{V9}/users/@me"),
        &guild.owner.token,
        json!({ "avatar": data_url("image/png", &png(32, 32)) }),
    )
    .await;
    assert_eq!(picture.status, 200, "{:?}", picture.body);
    let owner_avatar = picture.body["avatar"].as_str().unwrap();
    let elsewhere = server.url(&format!("/avatars/{}/{owner_avatar}.png", guild.owner.id));

    let shown = avatar_shown(&server, &webhook, &elsewhere).await;
    let shown = shown.as_str().unwrap();
    assert_ne!(Some(shown), webhook["avatar"].as_str());
    let image = get(&server, &format!("/avatars/{webhook_id}/{shown}.png"), None).await;
    assert_eq!(image.status, 200);

    // What is no image, or is not there, leaves the webhook's own avatar.
    for url in [
        server.url(&format!("{V9}/ping")),
        server.url("/avatars/1/00000000000000000000000000000000.png"),
        "ftp://example.org/a.png".to_string(),
    ] {
        let shown = avatar_shown(&server, &webhook, &url).await;
        assert_eq!(shown, webhook["avatar"], "{url}");
    }
}

/// The avatar a message the webhook posts with `avatar_url` shows.
async fn avatar_shown(server: &TestServer, webhook: &Value, avatar_url: &str) -> Value {
    let sent = post(
        server,
        &format!("{V9}{}?wait=true", hook_path(webhook)),
        None,
        json!({ "content": "hi", "avatar_url": avatar_url }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    sent.body["author"]["avatar"].clone()
}

/// An image host apart from the server under test, serving `image` as a PNG at any path; the
/// count of requests it answered.
fn image_host(image: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/picture.png", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                image.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&image);
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, served)
}

#[actix_web::test]
async fn a_webhook_posting_with_the_same_avatar_url_fetches_it_once() {
    let server = TestServer::with(&[("cdn.fetch_private_addresses", "true")]).await;
    let guild = guild(&server).await;
    let webhook = make(&server, &guild, "Deploys").await;
    let (url, served) = image_host(png(16, 16));
    let mut shown = Vec::new();
    for _ in 0..3 {
        shown.push(avatar_shown(&server, &webhook, &url).await);
    }
    assert!(shown[0].is_string() && shown[0] != webhook["avatar"]);
    assert!(shown.iter().all(|a| *a == shown[0]), "{shown:?}");
    assert_eq!(
        served.load(Ordering::SeqCst),
        1,
        "fetched once, then remembered"
    );

    // A URL too long to remember is not fetched at all.
    let long = format!("{url}?{}", "a".repeat(3000));
    assert_eq!(
        avatar_shown(&server, &webhook, &long).await,
        webhook["avatar"]
    );
    assert_eq!(served.load(Ordering::SeqCst), 1);
}
