//! What a hostile client can make the server hold or do: a gateway reader that never reads (bounded
//! in bytes, not only in dispatches), work that grows with the input before any permission check,
//! fields without Discord's length and count limits, and NUL bytes PostgreSQL cannot store.

use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::guild::{guild, join};
use crate::common::http::{assert_form_error, get, patch, post, request, request_with_headers};
use crate::common::process::ServerProcess;
use crate::common::TestServer;

const MIB: u64 = 1 << 20;

/// 800 messages of 250 KB (200 MB) go to a client that stopped reading. Counted in dispatches,
/// the server kept thousands of them for it (about 1 GB at 4,000); counted in bytes, it lets the
/// client go after a few MiB and its memory stays flat.
#[actix_web::test]
async fn a_client_that_never_reads_pins_a_bounded_number_of_bytes() {
    let mut server = ServerProcess::start(&[("limits.message_max_characters", "300000")]).await;
    let guild = guild(&server).await;
    let mut sloth = Gateway::connect(&server, "v=9&encoding=json").await;
    sloth.identify(&guild.owner.token).await;
    // From here on the client reads nothing: what the server sends piles up on its side.

    let filler = "x".repeat(250_000);
    let before = server.rss_bytes();
    let mut peak = before;
    for n in 0..800 {
        let sent = post(
            &server,
            &format!("/api/v9/channels/{}/messages", guild.channel),
            Some(&guild.owner.token),
            json!({ "content": format!("{n}:{filler}") }),
        )
        .await;
        assert_eq!(sent.status, 200, "{:?}", sent.body);
        peak = peak.max(server.rss_bytes());
    }
    let grown = peak.saturating_sub(before);
    println!(
        "RSS {} MiB before, peak {} MiB: grew {} MiB",
        before / MIB,
        peak / MIB,
        grown / MIB
    );
    assert!(
        grown < 80 * MIB,
        "the server holds {} MiB for a client that reads nothing",
        grown / MIB
    );

    // When it reads again, it finds what fitted, then the close a laggard gets.
    let code = loop {
        match sloth.next_within(Duration::from_secs(20)).await {
            crate::common::gateway::Event::Payload(_) => continue,
            crate::common::gateway::Event::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(4000));
    assert!(server.is_running());
}

#[actix_web::test]
async fn messages_are_2000_characters_by_default() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let path = format!("/api/v9/channels/{}/messages", guild.channel);
    let fits = post(
        &server,
        &path,
        Some(&guild.owner.token),
        json!({ "content": "é".repeat(2000) }),
    )
    .await;
    assert_eq!(fits.status, 200, "{:?}", fits.body);
    // 90,000 mentions: refused by length before any of them is looked at.
    let started = Instant::now();
    let mentions = post(
        &server,
        &path,
        Some(&guild.owner.token),
        json!({ "content": "<@1>".repeat(90_000) }),
    )
    .await;
    println!("90,000 mentions answered in {:?}", started.elapsed());
    assert_form_error(&mentions, "content", "BASE_TYPE_BAD_LENGTH");
}

/// 60,000 role ids in a member PATCH: a member without MANAGE_ROLES is refused for that before
/// the list is looked at (50013); the owner is refused at once by its count (50035).
#[actix_web::test]
async fn a_member_patch_with_60000_roles_is_refused_by_its_count() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let roles: Vec<String> = (1..=60_000).map(|id| id.to_string()).collect();
    let roles_of = |target: &str| format!("/api/v9/guilds/{}/members/{target}", guild.id);
    let started = Instant::now();
    let changed = patch(
        &server,
        &roles_of(&guild.owner.id),
        &member.token,
        json!({ "roles": roles }),
    )
    .await;
    println!(
        "60,000 roles without MANAGE_ROLES answered in {:?}",
        started.elapsed()
    );
    assert_eq!(changed.status, 403, "{:?}", changed.body);
    assert_eq!(changed.body["code"], 50013, "{:?}", changed.body);
    let started = Instant::now();
    let changed = patch(
        &server,
        &roles_of(&member.id),
        &guild.owner.token,
        json!({ "roles": roles }),
    )
    .await;
    println!("60,000 roles answered in {:?}", started.elapsed());
    assert_form_error(&changed, "roles", "BASE_TYPE_MAX_LENGTH");
    // For scale: a body as large, refused by its one field, is mostly parsing.
    let started = Instant::now();
    let nick = patch(
        &server,
        &format!("/api/v9/guilds/{}/members/{}", guild.id, member.id),
        &guild.owner.token,
        json!({ "nick": "n".repeat(roles.len() * 8) }),
    )
    .await;
    println!("as large a nick answered in {:?}", started.elapsed());
    assert_eq!(nick.status, 400, "{:?}", nick.body);
    // A list with the same role many times is one role, and fine.
    let role = post(
        &server,
        &format!("/api/v9/guilds/{}/roles", guild.id),
        Some(&guild.owner.token),
        json!({ "name": "twice" }),
    )
    .await;
    let role_id = role.body["id"].as_str().unwrap();
    let changed = patch(
        &server,
        &format!("/api/v9/guilds/{}/members/{}", guild.id, member.id),
        &guild.owner.token,
        json!({ "roles": [role_id, role_id, role_id] }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["roles"], json!([role_id]));
}

/// Each field's limit holds on every path that writes it, create and modify alike.
#[actix_web::test]
async fn field_limits_hold_on_create_and_modify() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let token = guild.owner.token.as_str();
    let huge = "x".repeat(900_000);
    let channels = format!("/api/v9/guilds/{}/channels", guild.id);

    let topic = post(
        &server,
        &channels,
        Some(token),
        json!({ "name": "a", "topic": huge }),
    )
    .await;
    assert_form_error(&topic, "topic", "BASE_TYPE_MAX_LENGTH");
    let topic = patch(
        &server,
        &format!("/api/v9/channels/{}", guild.channel),
        token,
        json!({ "topic": "x".repeat(1025) }),
    )
    .await;
    assert_form_error(&topic, "topic", "BASE_TYPE_MAX_LENGTH");

    let overwrites: Vec<Value> = (0..5000)
        .map(|n| json!({ "id": (1_000_000 + n).to_string(), "type": 1, "allow": "0", "deny": "0" }))
        .collect();
    let many = post(
        &server,
        &channels,
        Some(token),
        json!({ "name": "b", "permission_overwrites": overwrites }),
    )
    .await;
    assert_form_error(&many, "permission_overwrites", "BASE_TYPE_MAX_LENGTH");
    // PATCH takes the same limit: 20,000 overwrites are refused before any is written.
    let channel_path = format!("/api/v9/channels/{}", guild.channel);
    let overwrites: Vec<Value> = (0..20_000)
        .map(|n| json!({ "id": (1_000_000 + n).to_string(), "type": 1, "allow": "0", "deny": "0" }))
        .collect();
    let many = patch(
        &server,
        &channel_path,
        token,
        json!({ "permission_overwrites": overwrites }),
    )
    .await;
    assert_form_error(&many, "permission_overwrites", "BASE_TYPE_MAX_LENGTH");
    // Each target once, on create and on modify.
    let twice = json!([
        { "id": guild.id, "type": 0, "allow": "0", "deny": "1024" },
        { "id": guild.id, "type": 0, "allow": "1024", "deny": "0" },
    ]);
    let created = post(
        &server,
        &channels,
        Some(token),
        json!({ "name": "c", "permission_overwrites": twice }),
    )
    .await;
    assert_form_error(
        &created,
        "permission_overwrites.1.id",
        "SET_TYPE_ALREADY_CONTAINS_VALUE",
    );
    let modified = patch(
        &server,
        &channel_path,
        token,
        json!({ "permission_overwrites": twice }),
    )
    .await;
    assert_form_error(
        &modified,
        "permission_overwrites.1.id",
        "SET_TYPE_ALREADY_CONTAINS_VALUE",
    );
    // 100 distinct targets are fine, written in one statement, and read back.
    let hundred: Vec<Value> = (0..100)
        .map(|n| json!({ "id": (2_000_000 + n).to_string(), "type": 1, "allow": "0", "deny": "1024" }))
        .collect();
    let fine = patch(
        &server,
        &channel_path,
        token,
        json!({ "permission_overwrites": hundred }),
    )
    .await;
    assert_eq!(fine.status, 200, "{:?}", fine.body);
    assert_eq!(
        fine.body["permission_overwrites"].as_array().map(Vec::len),
        Some(100)
    );
    let read = get(&server, &channel_path, Some(token)).await;
    assert_eq!(
        read.body["permission_overwrites"].as_array().map(Vec::len),
        Some(100)
    );

    let long = "d".repeat(500_000);
    let created = post(
        &server,
        "/api/v9/guilds",
        Some(token),
        json!({ "name": "described", "description": long }),
    )
    .await;
    assert_form_error(&created, "description", "BASE_TYPE_MAX_LENGTH");
    let guild_path = format!("/api/v9/guilds/{}", guild.id);
    let described = patch(&server, &guild_path, token, json!({ "description": long })).await;
    assert_form_error(&described, "description", "BASE_TYPE_MAX_LENGTH");
    let locale = patch(
        &server,
        &guild_path,
        token,
        json!({ "preferred_locale": long }),
    )
    .await;
    assert_form_error(&locale, "preferred_locale", "BASE_TYPE_BAD_LENGTH");
    let fine = patch(
        &server,
        &guild_path,
        token,
        json!({ "preferred_locale": "es-419", "description": "A guild." }),
    )
    .await;
    assert_eq!(fine.status, 200, "{:?}", fine.body);

    let emoji = post(
        &server,
        &format!("/api/v9/guilds/{}/roles", guild.id),
        Some(token),
        json!({ "name": "r", "unicode_emoji": huge }),
    )
    .await;
    assert_form_error(&emoji, "unicode_emoji", "BASE_TYPE_MAX_LENGTH");
    let display = patch(
        &server,
        "/api/v9/users/@me",
        token,
        json!({ "global_name": huge }),
    )
    .await;
    assert_form_error(&display, "global_name", "BASE_TYPE_MAX_LENGTH");

    let settings = "/api/v9/users/@me/settings";
    let locale = patch(&server, settings, token, json!({ "locale": huge })).await;
    assert_form_error(&locale, "locale", "BASE_TYPE_BAD_LENGTH");
    let status = patch(
        &server,
        settings,
        token,
        json!({ "custom_status": { "text": huge } }),
    )
    .await;
    assert_form_error(&status, "custom_status.text", "BASE_TYPE_MAX_LENGTH");
    let fine = patch(
        &server,
        settings,
        token,
        json!({ "locale": "de", "custom_status": { "text": "away" } }),
    )
    .await;
    assert_eq!(fine.status, 200, "{:?}", fine.body);
}

/// NUL is refused where it comes in (a 50035 naming the field, or 404 for a path), never a 500.
#[actix_web::test]
async fn nul_bytes_are_refused_where_they_come_in() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let member = join(&server, &guild, "member").await;
    let token = guild.owner.token.as_str();
    let nul = "bad\u{0}name";
    let channel = guild.channel.as_str();
    let member_path = format!("/api/v9/guilds/{}/members/{}", guild.id, member.id);
    let checks = [
        (
            Method::POST,
            format!("/api/v9/channels/{channel}/messages"),
            json!({ "content": nul }),
            "content",
        ),
        (
            Method::POST,
            "/api/v9/guilds".into(),
            json!({ "name": nul }),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v9/guilds/{}/roles", guild.id),
            json!({ "name": nul }),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v9/guilds/{}/channels", guild.id),
            json!({ "name": nul }),
            "name",
        ),
        (
            Method::PATCH,
            member_path.clone(),
            json!({ "nick": nul }),
            "nick",
        ),
        (
            Method::PUT,
            format!("/api/v9/guilds/{}/bans/{}", guild.id, member.id),
            json!({ "reason": nul }),
            "reason",
        ),
        (
            Method::POST,
            format!("/api/v9/channels/{channel}/messages"),
            json!({ "content": "fine", "embeds": [{ "title": nul }] }),
            "embeds.0.title",
        ),
    ];
    for (method, path, body, field) in checks {
        let response = request(&server, method, &path, Some(token), Some(body)).await;
        assert_form_error(&response, field, "STRING_TYPE_INVALID_CHARACTERS");
    }
    let login = post(
        &server,
        "/api/v9/auth/login",
        None,
        json!({ "login": nul, "password": "x" }),
    )
    .await;
    assert_form_error(&login, "login", "STRING_TYPE_INVALID_CHARACTERS");

    let reason = request_with_headers(
        &server,
        Method::PATCH,
        &format!("/api/v9/guilds/{}", guild.id),
        Some(token),
        &[("X-Audit-Log-Reason", "spam%00")],
        Some(json!({ "name": "renamed" })),
    )
    .await;
    assert_form_error(
        &reason,
        "X-Audit-Log-Reason",
        "STRING_TYPE_INVALID_CHARACTERS",
    );

    let invite = get(&server, "/api/v9/invites/%00", None).await;
    assert_eq!(invite.status, 404, "{:?}", invite.body);
    let listed = get(
        &server,
        &format!("/api/v9/guilds/{}/members?after=1%00", guild.id),
        Some(token),
    )
    .await;
    assert_form_error(&listed, "after", "STRING_TYPE_INVALID_CHARACTERS");

    // Nothing was written: the member is still there, unbanned, with no nick.
    let still = get(&server, &member_path, Some(token)).await;
    assert_eq!(still.status, 200, "{:?}", still.body);
    assert_eq!(still.body["nick"], Value::Null);
}

/// A profile PATCH that changes nothing (only fields this server does not keep) is a 200 with
/// the profile as it was, not a failed empty UPDATE.
#[actix_web::test]
async fn an_empty_profile_patch_changes_nothing() {
    let server = TestServer::start().await;
    let guild = guild(&server).await;
    let unchanged = patch(
        &server,
        "/api/v9/users/@me",
        &guild.owner.token,
        json!({ "not_a_field": 1 }),
    )
    .await;
    assert_eq!(unchanged.status, 200, "{:?}", unchanged.body);
    assert_eq!(unchanged.body["id"], guild.owner.id.as_str());
}
