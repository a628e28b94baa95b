//! The audit log over real HTTP and gateways: what moderators do is written with their reason
//! and Discord's changes, the log filters, only those with VIEW_AUDIT_LOG read it or hear
//! GUILD_AUDIT_LOG_ENTRY_CREATE; and the permission sweep: every guild moderation route (and
//! every webhook route) refuses a member without the right, changing nothing and logging nothing.

use std::time::Duration;

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::gateway::{Event, Gateway};
use crate::common::guild::{guild, join, Guild};
use crate::common::http::{
    account, get, patch, post, request, request_with_headers, Account, Response,
};
use crate::common::TestServer;

const V9: &str = "/api/v9";

const KICK_MEMBERS: u64 = 1 << 1;
const BAN_MEMBERS: u64 = 1 << 2;
const ADMINISTRATOR: u64 = 1 << 3;
const MANAGE_CHANNELS: u64 = 1 << 4;
const VIEW_AUDIT_LOG: u64 = 1 << 7;
const VIEW_CHANNEL: u64 = 1 << 10;
const MANAGE_MESSAGES: u64 = 1 << 13;
const MANAGE_NICKNAMES: u64 = 1 << 27;
const MANAGE_ROLES: u64 = 1 << 28;

/// A request with extra headers; the body as JSON (`Null` when empty).
async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Response {
    request_with_headers(
        server,
        method,
        &format!("{V9}{path}"),
        Some(token),
        headers,
        body,
    )
    .await
}

/// `method path` as `account` with no reason.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    account: &Account,
    body: Option<Value>,
) -> Response {
    send(server, method, path, &account.token, &[], body).await
}

/// A role with `permissions` made by the owner; its id.
async fn role(server: &TestServer, guild: &Guild, name: &str, permissions: u64) -> String {
    let role = post(
        server,
        &format!("{V9}/guilds/{}/roles", guild.id),
        Some(&guild.owner.token),
        json!({ "name": name, "permissions": permissions.to_string() }),
    )
    .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    role.body["id"].as_str().unwrap().to_string()
}

/// The owner gives `member` the role.
async fn give(server: &TestServer, guild: &Guild, member: &Account, role_id: &str) {
    let path = format!("/guilds/{}/members/{}/roles/{role_id}", guild.id, member.id);
    let given = call(server, Method::PUT, &path, &guild.owner, None).await;
    assert_eq!(given.status, 204, "{:?}", given.body);
}

/// A message by `author` in the guild's channel; its id.
async fn message(server: &TestServer, guild: &Guild, author: &Account, content: &str) -> String {
    let sent = post(
        server,
        &format!("{V9}/channels/{}/messages", guild.channel),
        Some(&author.token),
        json!({ "content": content }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    sent.body["id"].as_str().unwrap().to_string()
}

async fn audit_log(server: &TestServer, guild: &Guild, who: &Account, query: &str) -> Response {
    get(
        server,
        &format!("{V9}/guilds/{}/audit-logs{query}", guild.id),
        Some(&who.token),
    )
    .await
}

/// The entries of the log (as the owner sees them) with this action type, newest first.
async fn entries(server: &TestServer, guild: &Guild, action_type: i64) -> Vec<Value> {
    let log = audit_log(
        server,
        guild,
        &guild.owner,
        &format!("?action_type={action_type}"),
    )
    .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    log.body["audit_log_entries"].as_array().unwrap().clone()
}

fn change<'a>(entry: &'a Value, key: &str) -> &'a Value {
    entry["changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|c| c["key"] == key))
        .unwrap_or_else(|| panic!("no change {key} in {entry}"))
}

#[actix_web::test]
async fn moderator_actions_are_logged_with_reasons_and_changes() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let moderator = join(&server, &guild, "moderator").await;
    let member = join(&server, &guild, "member").await;
    let rowdy = join(&server, &guild, "rowdy").await;
    let powers = MANAGE_CHANNELS
        | MANAGE_ROLES
        | KICK_MEMBERS
        | BAN_MEMBERS
        | VIEW_AUDIT_LOG
        | MANAGE_NICKNAMES
        | MANAGE_MESSAGES;
    let mods = role(&server, &guild, "mods", powers).await;
    let helpers = role(&server, &guild, "helpers", 0).await;
    // The moderator's role must sit above the one they hand out.
    let moved = call(
        &server,
        Method::PATCH,
        &format!("/guilds/{}/roles", guild.id),
        &guild.owner,
        Some(json!([{ "id": mods, "position": 2 }, { "id": helpers, "position": 1 }])),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    give(&server, &guild, &moderator, &mods).await;
    let reason = [("X-Audit-Log-Reason", "tidying%20up%20%C3%A9")];

    let created = send(
        &server,
        Method::POST,
        &format!("/guilds/{}/channels", guild.id),
        &moderator.token,
        &reason,
        Some(json!({ "name": "rules", "topic": "be nice" })),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let channel_id = created.body["id"].as_str().unwrap().to_string();
    let renamed = send(
        &server,
        Method::PATCH,
        &format!("/channels/{channel_id}"),
        &moderator.token,
        &[],
        Some(json!({ "name": "the-rules" })),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let nick = send(
        &server,
        Method::PATCH,
        &format!("/guilds/{}/members/{}", guild.id, member.id),
        &moderator.token,
        &[("X-Audit-Log-Reason", "rude name")],
        Some(json!({ "nick": "polite" })),
    )
    .await;
    assert_eq!(nick.status, 200, "{:?}", nick.body);
    let path = format!("/guilds/{}/members/{}/roles/{helpers}", guild.id, member.id);
    let given = call(&server, Method::PUT, &path, &moderator, None).await;
    assert_eq!(given.status, 204, "{:?}", given.body);
    let said = message(&server, &guild, &member, "pin me").await;
    let path = format!("/channels/{}/messages/pins/{said}", guild.channel);
    let pinned = call(&server, Method::PUT, &path, &moderator, None).await;
    assert_eq!(pinned.status, 204, "{:?}", pinned.body);
    let rude = message(&server, &guild, &member, "rude").await;
    let path = format!("/channels/{}/messages/{rude}", guild.channel);
    let deleted = call(&server, Method::DELETE, &path, &moderator, None).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let path = format!("/guilds/{}/members/{}", guild.id, member.id);
    let kicked = send(
        &server,
        Method::DELETE,
        &path,
        &moderator.token,
        &[("X-Audit-Log-Reason", "bye")],
        None,
    )
    .await;
    assert_eq!(kicked.status, 204, "{:?}", kicked.body);
    let path = format!("/guilds/{}/bans/{}", guild.id, rowdy.id);
    let banned = send(
        &server,
        Method::PUT,
        &path,
        &moderator.token,
        &[("X-Audit-Log-Reason", "spam")],
        Some(json!({})),
    )
    .await;
    assert_eq!(banned.status, 204, "{:?}", banned.body);

    let log = audit_log(&server, &guild, &moderator, "").await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    for key in [
        "integrations",
        "webhooks",
        "guild_scheduled_events",
        "threads",
        "application_commands",
        "auto_moderation_rules",
    ] {
        assert_eq!(log.body[key], json!([]), "{key}");
    }
    let all = log.body["audit_log_entries"].as_array().unwrap();
    let by_moderator: Vec<i64> = all
        .iter()
        .filter(|e| e["user_id"] == moderator.id.as_str())
        .map(|e| e["action_type"].as_i64().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        by_moderator,
        vec![22, 20, 72, 74, 25, 24, 11, 10],
        "{all:?}"
    );
    let ids: Vec<u64> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let users: Vec<&str> = log.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    for id in [&moderator.id, &member.id, &rowdy.id, &guild.owner.id] {
        assert!(users.contains(&id.as_str()), "{users:?} lacks {id}");
    }

    let find = |action: i64| {
        all.iter()
            .find(|e| e["action_type"] == action && e["user_id"] == moderator.id.as_str())
            .unwrap()
            .clone()
    };
    let create = find(10);
    assert_eq!(create["reason"], "tidying up é");
    assert_eq!(create["target_id"], channel_id);
    assert_eq!(change(&create, "name")["new_value"], "rules");
    assert_eq!(change(&create, "topic")["new_value"], "be nice");
    assert!(change(&create, "name").get("old_value").is_none());
    let update = find(11);
    assert!(update.get("reason").is_none(), "{update}");
    assert_eq!(change(&update, "name")["old_value"], "rules");
    assert_eq!(change(&update, "name")["new_value"], "the-rules");
    assert_eq!(update["changes"].as_array().unwrap().len(), 1, "{update}");
    let nick = find(24);
    assert_eq!(nick["reason"], "rude name");
    assert_eq!(nick["target_id"], member.id);
    assert_eq!(change(&nick, "nick")["new_value"], "polite");
    let roles = find(25);
    assert_eq!(roles["target_id"], member.id);
    assert_eq!(
        change(&roles, "$add")["new_value"],
        json!([{ "id": helpers, "name": "helpers" }])
    );
    let pin = find(74);
    assert_eq!(pin["target_id"], member.id);
    assert_eq!(pin["options"]["channel_id"], guild.channel);
    assert_eq!(pin["options"]["message_id"], said);
    let delete = find(72);
    assert_eq!(delete["target_id"], member.id);
    assert_eq!(delete["options"]["channel_id"], guild.channel);
    assert_eq!(delete["options"]["count"], "1");
    let kick = find(20);
    assert_eq!(
        (&kick["reason"], &kick["target_id"]),
        (&json!("bye"), &json!(member.id))
    );
    let ban = find(22);
    assert_eq!(
        (&ban["reason"], &ban["target_id"]),
        (&json!("spam"), &json!(rowdy.id))
    );
    // The ban itself keeps the reason too.
    let kept = get(
        &server,
        &format!("{V9}/guilds/{}/bans/{}", guild.id, rowdy.id),
        Some(&moderator.token),
    )
    .await;
    assert_eq!(kept.body["reason"], "spam");

    // The owner's set-up was logged as theirs: the roles made and the role given.
    let owner_roles = entries(&server, &guild, 30).await;
    assert_eq!(owner_roles.len(), 2);
    assert_eq!(owner_roles[0]["user_id"], guild.owner.id);
    assert_eq!(change(&owner_roles[0], "name")["new_value"], "helpers");
    let given = entries(&server, &guild, 25).await;
    assert_eq!(given.len(), 2, "{given:?}");
    assert_eq!(given[1]["target_id"], moderator.id);
    // Removing a role, unbanning and deleting the channel are logged as well.
    let path = format!("/guilds/{}/members/{}/roles/{mods}", guild.id, moderator.id);
    let taken = call(&server, Method::DELETE, &path, &guild.owner, None).await;
    assert_eq!(taken.status, 204);
    let removed = &entries(&server, &guild, 25).await[0];
    assert_eq!(
        change(removed, "$remove")["new_value"],
        json!([{ "id": mods, "name": "mods" }])
    );
    let path = format!("/guilds/{}/bans/{}", guild.id, rowdy.id);
    assert_eq!(
        call(&server, Method::DELETE, &path, &guild.owner, None)
            .await
            .status,
        204
    );
    assert_eq!(entries(&server, &guild, 23).await[0]["target_id"], rowdy.id);
    let path = format!("/channels/{channel_id}");
    assert_eq!(
        call(&server, Method::DELETE, &path, &guild.owner, None)
            .await
            .status,
        200
    );
    let gone = &entries(&server, &guild, 12).await[0];
    assert_eq!(change(gone, "name")["old_value"], "the-rules");
}

#[actix_web::test]
async fn configuration_changes_are_logged() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let owner = &guild.owner;
    let renamed = patch(
        &server,
        &format!("{V9}/guilds/{}", guild.id),
        &owner.token,
        json!({ "name": "Renamed", "description": "about" }),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let update = &entries(&server, &guild, 1).await[0];
    assert_eq!(update["target_id"], guild.id);
    assert_eq!(change(update, "name")["old_value"], "Test guild");
    assert_eq!(change(update, "name")["new_value"], "Renamed");
    assert_eq!(change(update, "description")["new_value"], "about");

    let helpers = role(&server, &guild, "helpers", 0).await;
    let path = format!("/guilds/{}/roles/{helpers}", guild.id);
    let edited = call(
        &server,
        Method::PATCH,
        &path,
        owner,
        Some(json!({ "color": 255 })),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    let edit = &entries(&server, &guild, 31).await[0];
    assert_eq!(change(edit, "color")["new_value"], 255);
    assert_eq!(edit["changes"].as_array().unwrap().len(), 1, "{edit}");

    let path = format!("/channels/{}/permissions/{helpers}", guild.channel);
    let body = json!({ "type": 0, "allow": VIEW_CHANNEL.to_string(), "deny": "0" });
    assert_eq!(
        call(&server, Method::PUT, &path, owner, Some(body))
            .await
            .status,
        204
    );
    let body = json!({ "type": 0, "allow": "0", "deny": VIEW_CHANNEL.to_string() });
    assert_eq!(
        call(&server, Method::PUT, &path, owner, Some(body))
            .await
            .status,
        204
    );
    assert_eq!(
        call(&server, Method::DELETE, &path, owner, None)
            .await
            .status,
        204
    );
    let made = &entries(&server, &guild, 13).await[0];
    assert_eq!(made["target_id"], guild.channel);
    assert_eq!(
        made["options"],
        json!({ "id": helpers, "type": "0", "role_name": "helpers" })
    );
    assert_eq!(change(made, "allow")["new_value"], VIEW_CHANNEL.to_string());
    let changed = &entries(&server, &guild, 14).await[0];
    assert_eq!(change(changed, "deny")["old_value"], "0");
    assert_eq!(
        change(changed, "deny")["new_value"],
        VIEW_CHANNEL.to_string()
    );
    let dropped = &entries(&server, &guild, 15).await[0];
    assert_eq!(
        change(dropped, "deny")["old_value"],
        VIEW_CHANNEL.to_string()
    );

    let path = format!("/guilds/{}/roles/{helpers}", guild.id);
    assert_eq!(
        call(&server, Method::DELETE, &path, owner, None)
            .await
            .status,
        204
    );
    assert_eq!(
        change(&entries(&server, &guild, 32).await[0], "name")["old_value"],
        "helpers"
    );

    let invite = post(
        &server,
        &format!("{V9}/channels/{}/invites", guild.channel),
        Some(&owner.token),
        json!({ "max_age": 0, "max_uses": 5, "unique": true }),
    )
    .await;
    let code = invite.body["code"].as_str().unwrap();
    let made = &entries(&server, &guild, 40).await[0];
    assert_eq!(change(made, "code")["new_value"], code);
    assert_eq!(change(made, "max_uses")["new_value"], 5);
    assert_eq!(change(made, "channel_id")["new_value"], guild.channel);
    let path = format!("/invites/{code}");
    assert_eq!(
        call(&server, Method::DELETE, &path, owner, None)
            .await
            .status,
        200
    );
    assert_eq!(
        change(&entries(&server, &guild, 42).await[0], "code")["old_value"],
        code
    );

    // Expressions (made behind the API: their images are the CDN's business).
    let (emoji, sticker) = expressions(&server, &guild).await;
    let path = format!("/guilds/{}/emojis/{emoji}", guild.id);
    let body = Some(json!({ "name": "wave2" }));
    assert_eq!(
        call(&server, Method::PATCH, &path, owner, body)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&server, Method::DELETE, &path, owner, None)
            .await
            .status,
        204
    );
    let edit = &entries(&server, &guild, 61).await[0];
    assert_eq!(change(edit, "name")["old_value"], "wave");
    assert_eq!(change(edit, "name")["new_value"], "wave2");
    assert_eq!(
        change(&entries(&server, &guild, 62).await[0], "name")["old_value"],
        "wave2"
    );
    let path = format!("/guilds/{}/stickers/{sticker}", guild.id);
    let body = Some(json!({ "name": "hello", "tags": "hi" }));
    assert_eq!(
        call(&server, Method::PATCH, &path, owner, body)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&server, Method::DELETE, &path, owner, None)
            .await
            .status,
        204
    );
    let edit = &entries(&server, &guild, 91).await[0];
    assert_eq!(change(edit, "tags")["new_value"], "hi");
    assert_eq!(entries(&server, &guild, 92).await[0]["target_id"], sticker);

    // Bulk delete and unpin.
    let first = message(&server, &guild, owner, "one").await;
    let second = message(&server, &guild, owner, "two").await;
    let path = format!("/channels/{}/messages/pins/{first}", guild.channel);
    assert_eq!(
        call(&server, Method::PUT, &path, owner, None).await.status,
        204
    );
    assert_eq!(
        call(&server, Method::DELETE, &path, owner, None)
            .await
            .status,
        204
    );
    let unpin = &entries(&server, &guild, 75).await[0];
    assert_eq!(unpin["options"]["message_id"], first);
    let path = format!("/channels/{}/messages/bulk-delete", guild.channel);
    let body = Some(json!({ "messages": [first, second] }));
    assert_eq!(
        call(&server, Method::POST, &path, owner, body).await.status,
        204
    );
    let bulk = &entries(&server, &guild, 73).await[0];
    assert_eq!(bulk["target_id"], guild.channel);
    assert_eq!(bulk["options"]["count"], "2");
}

/// An emoji named `wave` and a sticker named `wave`, written straight into the database.
async fn expressions(server: &TestServer, guild: &Guild) -> (String, String) {
    let (emoji, sticker) = ("7001", "7002");
    server
        .sql(&format!(
            "INSERT INTO emojis (id, guild_id, name, user_id, animated, available, roles, created_at) \
             VALUES ({emoji}, {}, 'wave', {}, false, true, '{{}}', now())",
            guild.id, guild.owner.id
        ))
        .await;
    server
        .sql(&format!(
            "INSERT INTO stickers (id, guild_id, name, description, tags, format_type, available, user_id, created_at) \
             VALUES ({sticker}, {}, 'wave', NULL, 'wave', 1, true, {}, now())",
            guild.id, guild.owner.id
        ))
        .await;
    (emoji.to_string(), sticker.to_string())
}

#[actix_web::test]
async fn audit_log_filters() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let admin = join(&server, &guild, "admin").await;
    let admins = role(&server, &guild, "admins", ADMINISTRATOR).await;
    give(&server, &guild, &admin, &admins).await;
    for name in ["a", "b", "c"] {
        let path = format!("/guilds/{}/channels", guild.id);
        let body = Some(json!({ "name": name }));
        assert_eq!(
            call(&server, Method::POST, &path, &admin, body)
                .await
                .status,
            201
        );
    }
    // Owner: the invite the admin joined with (40), role create (30), role given (25).
    // Admin: three channels (10).
    let all = audit_log(&server, &guild, &admin, "").await.body["audit_log_entries"].clone();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 6, "{all:?}");
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();

    let by_admin = audit_log(&server, &guild, &admin, &format!("?user_id={}", admin.id)).await;
    let by_admin = by_admin.body["audit_log_entries"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(by_admin.len(), 3);
    assert!(by_admin.iter().all(|e| e["user_id"] == admin.id.as_str()));
    let roles = audit_log(&server, &guild, &admin, "?action_type=30").await;
    let roles = roles.body["audit_log_entries"].as_array().unwrap().clone();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["target_id"], admins);
    let both = format!("?user_id={}&action_type=30", admin.id);
    let none = audit_log(&server, &guild, &admin, &both).await;
    assert_eq!(none.body["audit_log_entries"], json!([]));

    let limited = audit_log(&server, &guild, &admin, "?limit=2").await;
    let limited: Vec<&str> = limited.body["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(limited, ids[..2]);
    let before = audit_log(&server, &guild, &admin, &format!("?before={}", ids[1])).await;
    let before: Vec<&str> = before.body["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(before, ids[2..]);
    let after = audit_log(&server, &guild, &admin, &format!("?after={}", ids[3])).await;
    let after: Vec<&str> = after.body["audit_log_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(after, ids[..3]);
    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?user_id=me",
        "?action_type=x",
    ] {
        let refused = audit_log(&server, &guild, &admin, bad).await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
    }
}

#[actix_web::test]
async fn audit_log_needs_view_audit_log() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let refused = audit_log(&server, &guild, &member, "").await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert_eq!(refused.body["code"], 50013);
    let viewers = role(&server, &guild, "viewers", VIEW_AUDIT_LOG).await;
    give(&server, &guild, &member, &viewers).await;
    assert_eq!(audit_log(&server, &guild, &member, "").await.status, 200);
    let stranger = account(&server, "stranger").await;
    assert_eq!(audit_log(&server, &guild, &stranger, "").await.status, 404);
}

/// A connected, identified gateway.
async fn gateway(server: &TestServer, account: &Account) -> Gateway {
    let mut gateway = Gateway::connect(server, "v=9&encoding=json").await;
    gateway.identify(&account.token).await;
    gateway.dispatch("READY_SUPPLEMENTAL").await;
    gateway
}

/// Reads until `barrier` arrives; whether `event` came before it.
async fn heard_before(gateway: &mut Gateway, event: &str, barrier: &str) -> Option<Value> {
    let seen = gateway.dispatches_until(barrier).await;
    seen.into_iter().find(|p| p["t"] == event)
}

#[actix_web::test]
async fn entry_create_reaches_only_those_who_may_view_the_log() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let admin = join(&server, &guild, "admin").await;
    let member = join(&server, &guild, "member").await;
    let admins = role(&server, &guild, "admins", ADMINISTRATOR).await;
    give(&server, &guild, &admin, &admins).await;
    let mut owner_gateway = gateway(&server, &guild.owner).await;
    let mut admin_gateway = gateway(&server, &admin).await;
    let mut member_gateway = gateway(&server, &member).await;

    let renamed = send(
        &server,
        Method::PATCH,
        &format!("/guilds/{}", guild.id),
        &guild.owner.token,
        &[("X-Audit-Log-Reason", "fresh%20start")],
        Some(json!({ "name": "Renamed" })),
    )
    .await;
    assert_eq!(renamed.status, 200);
    for gateway in [&mut owner_gateway, &mut admin_gateway] {
        let event = gateway.dispatch("GUILD_AUDIT_LOG_ENTRY_CREATE").await;
        assert_eq!(event["d"]["guild_id"], guild.id);
        assert_eq!(event["d"]["action_type"], 1);
        assert_eq!(event["d"]["user_id"], guild.owner.id);
        assert_eq!(event["d"]["reason"], "fresh start");
        assert_eq!(change(&event["d"], "name")["new_value"], "Renamed");
    }
    // The member hears the guild change, never the entry (GUILD_UPDATE follows the entry).
    let heard = heard_before(
        &mut member_gateway,
        "GUILD_AUDIT_LOG_ENTRY_CREATE",
        "GUILD_UPDATE",
    );
    assert!(heard.await.is_none());
    let quiet = tokio::time::timeout(Duration::from_millis(500), member_gateway.next()).await;
    if let Ok(Event::Payload(payload)) = quiet {
        assert_ne!(payload["t"], "GUILD_AUDIT_LOG_ENTRY_CREATE", "{payload:?}");
    }
}

/// What the sweep compares before and after each refused request: every row of the tables a
/// moderation route can touch.
async fn snapshot(server: &TestServer) -> Vec<String> {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        v: String,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&server.database_url)
        .await
        .unwrap();
    let mut out = Vec::new();
    for table in [
        "guilds",
        "channels",
        "permission_overwrites",
        "roles",
        "members",
        "bans",
        "invites",
        "emojis",
        "stickers",
        "messages",
        "webhooks",
        "audit_log_entries",
    ] {
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT t::text AS v FROM {table} t ORDER BY t::text"
        ))
        .load(&mut conn)
        .await
        .unwrap();
        out.extend(rows.into_iter().map(|r| format!("{table}: {}", r.v)));
    }
    out
}

#[actix_web::test]
async fn permission_sweep_every_moderation_route_refuses_without_the_right() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let owner = &guild.owner;
    let plain = join(&server, &guild, "plain").await;
    let other = join(&server, &guild, "other").await;
    let banned = account(&server, "banned").await;
    let (g, c) = (guild.id.clone(), guild.channel.clone());
    let helpers = role(&server, &guild, "helpers", 0).await;
    give(&server, &guild, &other, &helpers).await;
    let path = format!("/channels/{c}/permissions/{helpers}");
    let body = Some(json!({ "type": 0, "allow": "0", "deny": "0" }));
    assert_eq!(
        call(&server, Method::PUT, &path, owner, body).await.status,
        204
    );
    let path = format!("/guilds/{g}/bans/{}", banned.id);
    assert_eq!(
        call(&server, Method::PUT, &path, owner, Some(json!({})))
            .await
            .status,
        204
    );
    let invite = post(
        &server,
        &format!("{V9}/channels/{c}/invites"),
        Some(&owner.token),
        json!({ "max_age": 0, "unique": true }),
    )
    .await;
    let code = invite.body["code"].as_str().unwrap().to_string();
    let (emoji, sticker) = expressions(&server, &guild).await;
    let said = message(&server, &guild, owner, "mine").await;
    let also = message(&server, &guild, owner, "mine too").await;
    let pinned = message(&server, &guild, owner, "pinned").await;
    let path = format!("/channels/{c}/messages/pins/{pinned}");
    assert_eq!(
        call(&server, Method::PUT, &path, owner, None).await.status,
        204
    );
    let (other_id, banned_id) = (other.id.clone(), banned.id.clone());
    let hook = post(
        &server,
        &format!("{V9}/channels/{c}/webhooks"),
        Some(&owner.token),
        json!({ "name": "Hook" }),
    )
    .await;
    let hook = hook.body["id"].as_str().unwrap().to_string();

    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            format!("/guilds/{g}"),
            Some(json!({ "name": "Mine" })),
        ),
        (Method::DELETE, format!("/guilds/{g}"), None),
        (Method::POST, format!("/guilds/{g}/delete"), Some(json!({}))),
        (
            Method::POST,
            format!("/guilds/{g}/channels"),
            Some(json!({ "name": "x" })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/channels"),
            Some(json!([{ "id": c, "position": 5 }])),
        ),
        (
            Method::PATCH,
            format!("/channels/{c}"),
            Some(json!({ "name": "x" })),
        ),
        (Method::DELETE, format!("/channels/{c}"), None),
        (
            Method::PUT,
            format!("/channels/{c}/permissions/{helpers}"),
            Some(json!({ "type": 0, "allow": "1024", "deny": "0" })),
        ),
        (
            Method::DELETE,
            format!("/channels/{c}/permissions/{helpers}"),
            None,
        ),
        (
            Method::POST,
            format!("/guilds/{g}/roles"),
            Some(json!({ "name": "x" })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/roles/{helpers}"),
            Some(json!({ "name": "x" })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/roles"),
            Some(json!([{ "id": helpers, "position": 3 }])),
        ),
        (Method::DELETE, format!("/guilds/{g}/roles/{helpers}"), None),
        (
            Method::PATCH,
            format!("/guilds/{g}/members/{other_id}"),
            Some(json!({ "nick": "x" })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/members/{other_id}"),
            Some(json!({ "roles": [] })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/members/{other_id}"),
            Some(json!({ "mute": true })),
        ),
        (
            Method::DELETE,
            format!("/guilds/{g}/members/{other_id}"),
            None,
        ),
        (
            Method::PUT,
            format!("/guilds/{g}/members/{}/roles/{helpers}", plain.id),
            None,
        ),
        (
            Method::DELETE,
            format!("/guilds/{g}/members/{other_id}/roles/{helpers}"),
            None,
        ),
        (
            Method::PUT,
            format!("/guilds/{g}/bans/{other_id}"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/guilds/{g}/bans/{banned_id}"),
            None,
        ),
        (Method::DELETE, format!("/invites/{code}"), None),
        (
            Method::POST,
            format!("/guilds/{g}/emojis"),
            Some(json!({ "name": "xx", "image": "data:image/png;base64,iVBORw0KGgo=" })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/emojis/{emoji}"),
            Some(json!({ "name": "xx" })),
        ),
        (Method::DELETE, format!("/guilds/{g}/emojis/{emoji}"), None),
        (
            Method::POST,
            format!("/guilds/{g}/stickers"),
            Some(json!({ "name": "xx" })),
        ),
        (
            Method::PATCH,
            format!("/guilds/{g}/stickers/{sticker}"),
            Some(json!({ "name": "xx" })),
        ),
        (
            Method::DELETE,
            format!("/guilds/{g}/stickers/{sticker}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/channels/{c}/messages/{said}"),
            None,
        ),
        (
            Method::POST,
            format!("/channels/{c}/messages/bulk-delete"),
            Some(json!({ "messages": [said, also] })),
        ),
        (
            Method::PUT,
            format!("/channels/{c}/messages/pins/{said}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/channels/{c}/messages/pins/{pinned}"),
            None,
        ),
        (Method::PUT, format!("/channels/{c}/pins/{said}"), None),
        (Method::DELETE, format!("/channels/{c}/pins/{pinned}"), None),
        (Method::GET, format!("/guilds/{g}/audit-logs"), None),
        (
            Method::POST,
            format!("/channels/{c}/webhooks"),
            Some(json!({ "name": "x" })),
        ),
        (Method::GET, format!("/channels/{c}/webhooks"), None),
        (Method::GET, format!("/guilds/{g}/webhooks"), None),
        (Method::GET, format!("/webhooks/{hook}"), None),
        (
            Method::PATCH,
            format!("/webhooks/{hook}"),
            Some(json!({ "name": "x" })),
        ),
        (Method::DELETE, format!("/webhooks/{hook}"), None),
    ];
    let entries_before = server.count("audit_log_entries").await;
    for (method, path, body) in routes {
        let before = snapshot(&server).await;
        let refused = call(&server, method.clone(), &path, &plain, body).await;
        assert_eq!(refused.status, 403, "{method} {path}: {:?}", refused.body);
        assert!(
            [50013, 50001].contains(&refused.body["code"].as_i64().unwrap_or_default()),
            "{method} {path}: {:?}",
            refused.body
        );
        assert_eq!(
            snapshot(&server).await,
            before,
            "{method} {path} changed something"
        );
    }
    assert_eq!(server.count("audit_log_entries").await, entries_before);
    // The same routes work for the owner (the sweep refused for the right reason).
    let path = format!("/guilds/{g}/members/{other_id}");
    let nick = call(
        &server,
        Method::PATCH,
        &path,
        owner,
        Some(json!({ "nick": "x" })),
    )
    .await;
    assert_eq!(nick.status, 200, "{:?}", nick.body);
    assert_eq!(server.count("audit_log_entries").await, entries_before + 1);
}

/// A request without an `Authorization` header never reaches the log.
#[actix_web::test]
async fn audit_log_needs_a_login() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let anonymous = request(
        &server,
        Method::GET,
        &format!("{V9}/guilds/{}/audit-logs", guild.id),
        None,
        None,
    )
    .await;
    assert_eq!(anonymous.status, 401);
}

#[actix_web::test]
async fn adding_a_bot_is_logged() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (app_id, bot_token) =
        crate::bots::application_with_bot(&server, &owner.token, "Helper").await;
    let guild_id = crate::bots::guild(&server, &owner.token).await;
    let added = crate::bots::authorize(&server, &owner.token, &app_id, &guild_id, "0").await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let bot = get(
        &server,
        &format!("{V9}/users/@me"),
        Some(&format!("Bot {bot_token}")),
    )
    .await;
    let log = get(
        &server,
        &format!("{V9}/guilds/{guild_id}/audit-logs?action_type=28"),
        Some(&owner.token),
    )
    .await;
    let entries = log.body["audit_log_entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{:?}", log.body);
    assert_eq!(entries[0]["user_id"], owner.id);
    assert_eq!(entries[0]["target_id"], bot.body["id"]);
}
