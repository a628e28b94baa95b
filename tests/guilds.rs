//! Guilds and channels over real HTTP and gateways: creation, READY shapes, settings, channel
//! visibility by permission overwrites, typing, leaving and deletion.

use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::guild::text_channel;
use crate::common::http::{assert_form_error, get, patch, post, register_user, request};
use crate::common::TestServer;
use awc::http::Method;

const JSON: &str = "v=9&encoding=json";

/// A guild owned by a new user, and a second member added behind the API's back (invites are
/// tested with the invite routes). Returns (owner token, member token, guild, member id).
async fn guild_with_member(server: &TestServer) -> (String, String, Value, String) {
    let (owner, _) = register_user(server, "owner").await;
    let (member, member_user) = register_user(server, "member").await;
    let guild = post(
        server,
        "/api/v9/guilds",
        Some(&owner),
        json!({ "name": "Test Guild" }),
    )
    .await;
    assert_eq!(guild.status, 201, "{:?}", guild.body);
    let member_id = member_user["id"].as_str().unwrap().to_string();
    let guild_id = guild.body["id"].as_str().unwrap();
    server
        .sql(&format!(
            "INSERT INTO members (guild_id, user_id) VALUES ({guild_id}, {member_id})"
        ))
        .await;
    (owner, member, guild.body, member_id)
}

/// The guild's `approximate_member_count`, as its owner sees it.
async fn member_count(server: &TestServer, token: &str, guild_id: &str) -> Value {
    get(
        server,
        &format!("/api/v9/guilds/{guild_id}?with_counts=true"),
        Some(token),
    )
    .await
    .body["approximate_member_count"]
        .clone()
}

#[actix_web::test]
async fn creating_a_guild_gives_roles_channels_and_a_guild_create() {
    let server = TestServer::start().await;
    let (token, me) = register_user(&server, "founder").await;
    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway.identify(&token).await;
    let created = post(
        &server,
        "/api/v9/guilds",
        Some(&token),
        json!({ "name": "My Place" }),
    )
    .await;
    assert_eq!(created.status, 201);
    let guild = created.body;
    assert_eq!(guild["owner_id"], me["id"]);
    assert_eq!(
        guild["roles"][0]["id"], guild["id"],
        "@everyone shares the guild's id"
    );
    assert_eq!(guild["roles"][0]["name"], "@everyone");

    let event = gateway.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(event["id"], guild["id"]);
    assert_eq!(event["member_count"], 1);
    let names: Vec<&str> = event["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&"general") && names.contains(&"General"));
    assert_eq!(event["members"][0]["user"]["id"], me["id"]);

    let id = guild["id"].as_str().unwrap();
    let fetched = get(
        &server,
        &format!("/api/v9/guilds/{id}?with_counts=true"),
        Some(&token),
    )
    .await
    .body;
    assert_eq!(fetched["name"], "My Place");
    assert_eq!(fetched["approximate_member_count"], 1);
    let mine = get(&server, "/api/v9/users/@me/guilds", Some(&token))
        .await
        .body;
    assert_eq!(mine[0]["id"], guild["id"]);
    assert_eq!(mine[0]["owner"], true);
    assert_eq!(mine[0]["permissions"], ((1u64 << 51) - 1).to_string());

    assert_form_error(
        &post(
            &server,
            "/api/v9/guilds",
            Some(&token),
            json!({ "name": "x" }),
        )
        .await,
        "name",
        "BASE_TYPE_BAD_LENGTH",
    );
    assert_eq!(
        post(&server, "/api/v9/guilds", None, json!({ "name": "nope" }))
            .await
            .status,
        401
    );
    let user_id = me["id"].as_str().unwrap();
    server
        .sql(&format!("UPDATE users SET rights = 0 WHERE id = {user_id}"))
        .await;
    let refused = post(
        &server,
        "/api/v9/guilds",
        Some(&token),
        json!({ "name": "Another" }),
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.body["code"].as_u64()),
        (403, Some(50013))
    );
}

#[actix_web::test]
async fn ready_carries_guilds_in_the_shape_the_client_asked_for() {
    let server = TestServer::start().await;
    let (owner, member, guild, _) = guild_with_member(&server).await;
    for token in [&owner, &member] {
        let mut classic = Gateway::connect(&server, JSON).await;
        let ready = classic.identify(token).await["d"].clone();
        assert_eq!(ready["guilds"][0]["id"], guild["id"]);
        assert_eq!(ready["guilds"][0]["name"], "Test Guild");
        assert_eq!(ready["guilds"][0]["channels"].as_array().unwrap().len(), 4);
        assert!(ready["guilds"][0]["roles"].is_array() && ready["guilds"][0]["threads"].is_array());
        assert_eq!(ready["merged_members"][0][0]["id"], ready["user"]["id"]);
        let supplemental = classic.dispatch("READY_SUPPLEMENTAL").await;
        assert_eq!(supplemental["d"]["guilds"][0]["id"], guild["id"]);
    }
    let mut fermi = Gateway::connect(&server, JSON).await;
    fermi
        .send(json!({ "op": 2, "d": { "token": member, "capabilities": 16381, "properties": {} } }))
        .await;
    let ready = fermi.dispatch("READY").await["d"].clone();
    let entry = &ready["guilds"][0];
    assert_eq!(entry["properties"]["name"], "Test Guild");
    assert_eq!(entry["properties"]["owner_id"], guild["owner_id"]);
    for key in [
        "channels",
        "threads",
        "stickers",
        "roles",
        "emojis",
        "member_count",
    ] {
        assert!(
            entry.get(key).is_some(),
            "CLIENT_STATE_V2 guild lacks {key}"
        );
    }
    assert_eq!(entry["member_count"], 2);
}

#[actix_web::test]
async fn guild_settings_need_manage_guild_and_reach_members() {
    let server = TestServer::start().await;
    let (owner, member, guild, _) = guild_with_member(&server).await;
    let id = guild["id"].as_str().unwrap();
    let mut watcher = Gateway::connect(&server, JSON).await;
    watcher.identify(&member).await;
    let refused = patch(
        &server,
        &format!("/api/v9/guilds/{id}"),
        &member,
        json!({ "name": "Mine now" }),
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.body["code"].as_u64()),
        (403, Some(50013))
    );
    let changed = patch(
        &server,
        &format!("/api/v9/guilds/{id}"),
        &owner,
        json!({ "name": "Renamed", "description": "hi" }),
    )
    .await;
    assert_eq!(changed.body["name"], "Renamed");
    let update = watcher.dispatch("GUILD_UPDATE").await;
    assert_eq!(update["d"]["name"], "Renamed");
    assert_eq!(update["d"]["description"], "hi");
    let bad = patch(
        &server,
        &format!("/api/v9/guilds/{id}"),
        &owner,
        json!({ "system_channel_id": "123" }),
    )
    .await;
    assert_form_error(&bad, "system_channel_id", "CHANNEL_INVALID");

    let (stranger, _) = register_user(&server, "stranger").await;
    let unknown = get(&server, &format!("/api/v9/guilds/{id}"), Some(&stranger)).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.body["code"].as_u64()),
        (404, Some(10004))
    );
}

#[actix_web::test]
async fn overwrites_decide_who_sees_a_channel_and_its_events() {
    let server = TestServer::start().await;
    let (owner, member, guild, member_id) = guild_with_member(&server).await;
    let guild_id = guild["id"].as_str().unwrap();
    let mut owner_gw = Gateway::connect(&server, JSON).await;
    owner_gw.identify(&owner).await;
    let mut member_gw = Gateway::connect(&server, JSON).await;
    member_gw.identify(&member).await;

    // A channel hidden from @everyone: only the owner hears of it.
    let hidden = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&owner),
        json!({
            "name": "Secret Plans", "type": 0,
            "permission_overwrites": [{ "id": guild_id, "type": 0, "allow": "0", "deny": "1024" }],
        }),
    )
    .await;
    assert_eq!(hidden.status, 201, "{:?}", hidden.body);
    assert_eq!(hidden.body["name"], "secret-plans");
    let hidden_id = hidden.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        owner_gw.dispatch("CHANNEL_CREATE").await["d"]["id"],
        hidden_id.as_str()
    );
    let public = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&owner),
        json!({ "name": "lobby" }),
    )
    .await;
    let seen = member_gw.dispatches_until("CHANNEL_CREATE").await;
    assert_eq!(
        seen.last().unwrap()["d"]["id"],
        public.body["id"],
        "the member heard of the hidden channel first"
    );

    let refused = get(
        &server,
        &format!("/api/v9/channels/{hidden_id}"),
        Some(&member),
    )
    .await;
    assert_eq!(
        (refused.status.as_u16(), refused.body["code"].as_u64()),
        (403, Some(50001))
    );
    let listed = get(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&member),
    )
    .await
    .body;
    assert!(!listed
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == hidden_id.as_str()));
    let typing = request(
        &server,
        Method::POST,
        &format!("/api/v9/channels/{hidden_id}/typing"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(typing.status, 403);

    // Typing in the hidden channel reaches the owner only; then the member is let in.
    request(
        &server,
        Method::POST,
        &format!("/api/v9/channels/{hidden_id}/typing"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(
        owner_gw.dispatch("TYPING_START").await["d"]["channel_id"],
        hidden_id.as_str()
    );
    let let_in = request(
        &server,
        Method::PUT,
        &format!("/api/v9/channels/{hidden_id}/permissions/{member_id}"),
        Some(&owner),
        Some(json!({ "type": 1, "allow": "1024", "deny": "0" })),
    )
    .await;
    assert_eq!(let_in.status, 204);
    let seen = member_gw.dispatches_until("CHANNEL_UPDATE").await;
    assert!(
        !seen.iter().any(|e| e["t"] == "TYPING_START"),
        "the member saw typing in a hidden channel"
    );
    assert_eq!(seen.last().unwrap()["d"]["id"], hidden_id.as_str());
    request(
        &server,
        Method::POST,
        &format!("/api/v9/channels/{hidden_id}/typing"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(
        member_gw.dispatch("TYPING_START").await["d"]["user_id"],
        guild["owner_id"]
    );
    assert_eq!(
        get(
            &server,
            &format!("/api/v9/channels/{hidden_id}"),
            Some(&member)
        )
        .await
        .status,
        200
    );

    // Members without MANAGE_ROLES cannot touch overwrites; unknown overwrites are 10009.
    let denied = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/channels/{hidden_id}/permissions/{member_id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(denied.status, 403);
    let unknown = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/channels/{hidden_id}/permissions/1"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(unknown.body["code"], 10009);
}

#[actix_web::test]
async fn channels_are_created_checked_moved_and_deleted() {
    let server = TestServer::start().await;
    let (owner, member, guild, _) = guild_with_member(&server).await;
    let guild_id = guild["id"].as_str().unwrap();
    let path = format!("/api/v9/guilds/{guild_id}/channels");
    let channels = get(&server, &path, Some(&owner)).await.body;
    let text = text_channel(&server, &owner, guild_id).await;
    let category = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == 4)
        .unwrap()["id"]
        .clone();

    assert_form_error(
        &post(
            &server,
            &path,
            Some(&owner),
            json!({ "name": "x", "type": 99 }),
        )
        .await,
        "type",
        "BASE_TYPE_CHOICES",
    );
    assert_form_error(
        &post(
            &server,
            &path,
            Some(&owner),
            json!({ "name": "x", "parent_id": text }),
        )
        .await,
        "parent_id",
        "CHANNEL_PARENT_INVALID",
    );
    assert_eq!(
        post(&server, &path, Some(&member), json!({ "name": "mine" }))
            .await
            .status,
        403
    );
    let voice = post(
        &server,
        &path,
        Some(&owner),
        json!({ "name": "Talk", "type": "2", "parent_id": category, "user_limit": 5 }),
    )
    .await
    .body;
    assert_eq!(
        (voice["type"].as_u64(), voice["user_limit"].as_u64()),
        (Some(2), Some(5))
    );
    assert_eq!(voice["parent_id"], category);

    let mut gateway = Gateway::connect(&server, JSON).await;
    gateway.identify(&member).await;
    let moved = request(
        &server,
        Method::PATCH,
        &path,
        Some(&owner),
        Some(json!([{ "id": voice["id"], "position": 7, "parent_id": null }])),
    )
    .await;
    assert_eq!(moved.status, 204);
    let update = gateway.dispatch("CHANNEL_UPDATE").await["d"].clone();
    assert_eq!(
        (update["position"].as_u64(), update["parent_id"].clone()),
        (Some(7), Value::Null)
    );

    let voice_id = voice["id"].as_str().unwrap();
    let renamed = patch(
        &server,
        &format!("/api/v9/channels/{text}"),
        &owner,
        json!({ "name": "Main Hall", "topic": "welcome" }),
    )
    .await;
    assert_eq!(
        (
            renamed.body["name"].as_str(),
            renamed.body["topic"].as_str()
        ),
        (Some("main-hall"), Some("welcome"))
    );
    assert_eq!(
        gateway.dispatch("CHANNEL_UPDATE").await["d"]["name"],
        "main-hall"
    );
    assert_eq!(
        request(
            &server,
            Method::DELETE,
            &format!("/api/v9/channels/{voice_id}"),
            Some(&member),
            None
        )
        .await
        .status,
        403
    );
    let deleted = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/channels/{voice_id}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        gateway.dispatch("CHANNEL_DELETE").await["d"]["id"],
        voice_id
    );
    let gone = get(
        &server,
        &format!("/api/v9/channels/{voice_id}"),
        Some(&owner),
    )
    .await;
    assert_eq!(gone.body["code"], 10003);
}

#[actix_web::test]
async fn leaving_and_deleting_a_guild() {
    let server = TestServer::start().await;
    let (owner, member, guild, member_id) = guild_with_member(&server).await;
    let id = guild["id"].as_str().unwrap();
    let mut owner_gw = Gateway::connect(&server, JSON).await;
    owner_gw.identify(&owner).await;
    let mut member_gw = Gateway::connect(&server, JSON).await;
    member_gw.identify(&member).await;

    let owner_leaves = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/users/@me/guilds/{id}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(owner_leaves.status, 400);
    assert_eq!(member_count(&server, &owner, id).await, 2);
    let left = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/users/@me/guilds/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(left.status, 204);
    assert_eq!(
        owner_gw.dispatch("GUILD_MEMBER_REMOVE").await["d"]["user"]["id"],
        member_id.as_str()
    );
    assert_eq!(member_gw.dispatch("GUILD_DELETE").await["d"]["id"], id);
    assert_eq!(
        member_count(&server, &owner, id).await,
        1,
        "the count follows"
    );
    assert_eq!(
        get(&server, &format!("/api/v9/guilds/{id}"), Some(&member))
            .await
            .status,
        404
    );

    server
        .sql(&format!(
            "INSERT INTO members (guild_id, user_id) VALUES ({id}, {member_id})"
        ))
        .await;
    assert_eq!(
        request(
            &server,
            Method::DELETE,
            &format!("/api/v9/guilds/{id}"),
            Some(&member),
            None
        )
        .await
        .status,
        403
    );
    // Clients delete with POST …/delete, bots with DELETE.
    let deleted = request(
        &server,
        Method::POST,
        &format!("/api/v9/guilds/{id}/delete"),
        Some(&owner),
        Some(json!({})),
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(owner_gw.dispatch("GUILD_DELETE").await["d"]["id"], id);
    assert_eq!(
        get(&server, &format!("/api/v9/guilds/{id}"), Some(&owner))
            .await
            .body["code"],
        10004
    );
    assert_eq!(
        server.count("channels").await,
        0,
        "the guild's channels went with it"
    );
}
