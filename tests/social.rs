//! DMs, group DMs and relationships over real HTTP and gateways: what each side's sessions hear
//! when a DM opens, a group DM gains or loses someone, a friend request is sent, accepted,
//! declined or ended, and when someone is blocked.

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::http::{assert_form_error, get, post, register_user, request, Response};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";

/// A registered user with a gateway session that got READY.
struct Person {
    token: String,
    id: String,
    user: Value,
    gateway: Gateway,
}

async fn person(server: &TestServer, name: &str) -> Person {
    let (token, user) = register_user(server, name).await;
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.identify(&token).await;
    Person {
        id: user["id"].as_str().unwrap().to_string(),
        token,
        user,
        gateway,
    }
}

async fn put(server: &TestServer, path: &str, token: &str, body: Value) -> Response {
    request(server, Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(server: &TestServer, path: &str, token: &str) -> Response {
    request(server, Method::DELETE, path, Some(token), None).await
}

fn assert_code(response: &Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code, "{:?}", response.body);
}

/// `a` asks, `b` accepts; both drain the four RELATIONSHIP_ADDs.
async fn befriend(server: &TestServer, a: &mut Person, b: &mut Person) {
    let asked = put(
        server,
        &format!("/api/v9/users/@me/relationships/{}", b.id),
        &a.token,
        json!({}),
    )
    .await;
    assert_eq!(asked.status, 204, "{:?}", asked.body);
    let accepted = put(
        server,
        &format!("/api/v9/users/@me/relationships/{}", a.id),
        &b.token,
        json!({ "type": 1 }),
    )
    .await;
    assert_eq!(accepted.status, 204, "{:?}", accepted.body);
    for person in [a, b] {
        for expected in [[4, 3], [1, 1]] {
            let added = person.gateway.dispatch("RELATIONSHIP_ADD").await;
            assert!(expected.contains(&added["d"]["type"].as_i64().unwrap()));
        }
    }
}

async fn open_dm(server: &TestServer, token: &str, body: Value) -> Response {
    post(server, "/api/v9/users/@me/channels", Some(token), body).await
}

#[actix_web::test]
async fn a_dm_is_made_once_and_reaches_the_other_side() {
    let server = TestServer::start().await;
    let alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;

    let opened = open_dm(&server, &alice.token, json!({ "recipient_id": bob.id })).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    let dm = opened.body;
    assert_eq!(dm["type"], 1);
    assert_eq!(dm["recipients"].as_array().unwrap().len(), 1);
    assert_eq!(dm["recipients"][0]["id"], bob.user["id"]);
    assert_eq!(dm["recipients"][0]["username"], "bob");
    for key in ["last_message_id", "name", "icon", "owner_id", "flags"] {
        assert!(dm.get(key).is_some(), "a DM lacks {key}");
    }

    let created = bob.gateway.dispatch("CHANNEL_CREATE").await["d"].clone();
    assert_eq!(created["id"], dm["id"]);
    assert_eq!(created["recipients"][0]["id"], alice.user["id"]);

    // The same DM however it is asked for, from either side (Discord's client sends a list).
    let again = open_dm(&server, &alice.token, json!({ "recipient_id": bob.id })).await;
    assert_eq!(again.body["id"], dm["id"]);
    let other_side = open_dm(&server, &bob.token, json!({ "recipients": [alice.id] })).await;
    assert_eq!(other_side.status, 200);
    assert_eq!(other_side.body["id"], dm["id"]);
    assert_eq!(other_side.body["recipients"][0]["id"], alice.user["id"]);

    let listed = get(&server, "/api/v9/users/@me/channels", Some(&bob.token)).await;
    assert_eq!(listed.status, 200);
    let listed = listed.body.as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], dm["id"]);
    assert_eq!(listed[0]["recipients"][0]["id"], alice.user["id"]);

    // A new session sees it in READY.
    let mut later = Gateway::connect(&server, JSON).await;
    let ready = later.identify(&alice.token).await;
    assert_eq!(ready["d"]["private_channels"][0]["id"], dm["id"]);

    assert_code(
        &open_dm(&server, &alice.token, json!({ "recipient_id": alice.id })).await,
        403,
        50007,
    );
    assert_code(
        &open_dm(&server, &alice.token, json!({ "recipient_id": "12345" })).await,
        400,
        50033,
    );
    assert_form_error(
        &open_dm(&server, &alice.token, json!({})).await,
        "recipient_id",
        "BASE_TYPE_REQUIRED",
    );
    assert_form_error(
        &open_dm(&server, &alice.token, json!({ "recipient_id": "soon" })).await,
        "recipient_id",
        "NUMBER_TYPE_COERCE",
    );
}

#[actix_web::test]
async fn blocked_users_cannot_be_dmed_either_way() {
    let server = TestServer::start().await;
    let mut alice = person(&server, "alice").await;
    let bob = person(&server, "bob").await;
    let blocked = put(
        &server,
        &format!("/api/v9/users/@me/relationships/{}", bob.id),
        &alice.token,
        json!({ "type": 2 }),
    )
    .await;
    assert_eq!(blocked.status, 204, "{:?}", blocked.body);
    let added = alice.gateway.dispatch("RELATIONSHIP_ADD").await["d"].clone();
    assert_eq!(added["type"], 2);
    assert_eq!(added["user"]["id"], bob.user["id"]);

    for (from, to) in [(&bob, &alice), (&alice, &bob)] {
        let refused = open_dm(&server, &from.token, json!({ "recipient_id": to.id })).await;
        assert_code(&refused, 403, 50007);
        assert_eq!(refused.body["message"], "Cannot send messages to this user");
    }
    // Nor brought into a group DM.
    let carol = person(&server, "carol").await;
    assert_code(
        &open_dm(
            &server,
            &alice.token,
            json!({ "recipients": [bob.id, carol.id] }),
        )
        .await,
        403,
        50007,
    );
    assert_eq!(server.count("channels").await, 0);

    // Unblocked, they may talk again.
    let unblocked = delete(
        &server,
        &format!("/api/v9/users/@me/relationships/{}", bob.id),
        &alice.token,
    )
    .await;
    assert_eq!(unblocked.status, 204);
    let removed = alice.gateway.dispatch("RELATIONSHIP_REMOVE").await["d"].clone();
    assert_eq!(removed["id"], bob.user["id"]);
    assert_eq!(removed["type"], 2);
    let opened = open_dm(&server, &bob.token, json!({ "recipient_id": alice.id })).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
}

#[actix_web::test]
async fn friend_requests_are_sent_accepted_and_ended_on_both_sides() {
    let server = TestServer::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let to_bob = format!("/api/v9/users/@me/relationships/{}", bob.id);
    let to_alice = format!("/api/v9/users/@me/relationships/{}", alice.id);

    // A request: outgoing for the sender, incoming for the other, on their gateways.
    assert_eq!(
        put(&server, &to_bob, &alice.token, json!({})).await.status,
        204
    );
    let outgoing = alice.gateway.dispatch("RELATIONSHIP_ADD").await["d"].clone();
    assert_eq!(outgoing["type"], 4);
    assert_eq!(outgoing["id"], bob.user["id"]);
    assert_eq!(outgoing["user"]["username"], "bob");
    assert!(outgoing["since"].is_string());
    let incoming = bob.gateway.dispatch("RELATIONSHIP_ADD").await["d"].clone();
    assert_eq!(incoming["type"], 3);
    assert_eq!(incoming["user"]["id"], alice.user["id"]);

    // Asking again changes nothing.
    assert_eq!(
        put(&server, &to_bob, &alice.token, json!({})).await.status,
        204
    );
    let listed = get(&server, "/api/v9/users/@me/relationships", Some(&bob.token)).await;
    assert_eq!(listed.status, 200);
    let listed = listed.body.as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["type"], 3);
    assert_eq!(listed[0]["id"], alice.user["id"]);
    assert!(listed[0].get("nickname").is_some());

    // Accepting makes both friends.
    let accepted = put(&server, &to_alice, &bob.token, json!({ "type": "1" })).await;
    assert_eq!(accepted.status, 204, "{:?}", accepted.body);
    for person in [&mut alice, &mut bob] {
        let friend = person.gateway.dispatch("RELATIONSHIP_ADD").await["d"].clone();
        assert_eq!(friend["type"], 1);
    }
    let mut fresh = Gateway::connect(&server, JSON).await;
    let ready = fresh.identify(&alice.token).await;
    assert_eq!(ready["d"]["relationships"][0]["type"], 1);
    assert_eq!(ready["d"]["relationships"][0]["user"]["id"], bob.user["id"]);

    // Unfriending ends it for both.
    assert_eq!(delete(&server, &to_bob, &alice.token).await.status, 204);
    let (alice_user, bob_user) = (alice.user.clone(), bob.user.clone());
    for (person, other) in [(&mut alice, &bob_user), (&mut bob, &alice_user)] {
        let removed = person.gateway.dispatch("RELATIONSHIP_REMOVE").await["d"].clone();
        assert_eq!(removed["id"], other["id"]);
        assert_eq!(removed["type"], 1);
    }
    assert_eq!(server.count("relationships").await, 0);
    assert_eq!(delete(&server, &to_bob, &alice.token).await.status, 204);

    // By tag, then declined by the other side.
    let by_tag = post(
        &server,
        "/api/v9/users/@me/relationships",
        Some(&alice.token),
        json!({ "username": "BOB", "discriminator": bob.user["discriminator"].as_str().unwrap().parse::<u32>().unwrap() }),
    )
    .await;
    assert_eq!(by_tag.status, 204, "{:?}", by_tag.body);
    assert_eq!(
        bob.gateway.dispatch("RELATIONSHIP_ADD").await["d"]["type"],
        3
    );
    assert_eq!(delete(&server, &to_alice, &bob.token).await.status, 204);
    let declined = alice.gateway.dispatch("RELATIONSHIP_REMOVE").await["d"].clone();
    assert_eq!(declined["type"], 4);
    assert_eq!(server.count("relationships").await, 0);

    // The name alone finds someone whose name nobody shares.
    let by_name = post(
        &server,
        "/api/v9/users/@me/relationships",
        Some(&alice.token),
        json!({ "username": "bob", "discriminator": null }),
    )
    .await;
    assert_eq!(by_name.status, 204, "{:?}", by_name.body);

    let unknown = post(
        &server,
        "/api/v9/users/@me/relationships",
        Some(&alice.token),
        json!({ "username": "nobody", "discriminator": 1 }),
    )
    .await;
    assert_code(&unknown, 400, 80004);
    assert_eq!(unknown.body["message"], "No users with DiscordTag exist.");
    let me = format!("/api/v9/users/@me/relationships/{}", alice.id);
    assert_code(
        &put(&server, &me, &alice.token, json!({})).await,
        400,
        80003,
    );
    assert_code(
        &put(&server, &me, &alice.token, json!({ "type": 2 })).await,
        400,
        80003,
    );
    assert_form_error(
        &put(&server, &to_bob, &alice.token, json!({ "type": 3 })).await,
        "type",
        "BASE_TYPE_CHOICES",
    );
    assert_code(
        &put(
            &server,
            "/api/v9/users/@me/relationships/12345",
            &alice.token,
            json!({}),
        )
        .await,
        404,
        10013,
    );
}

#[actix_web::test]
async fn blocking_ends_friendship_and_refuses_requests() {
    let server = TestServer::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    befriend(&server, &mut alice, &mut bob).await;
    let to_bob = format!("/api/v9/users/@me/relationships/{}", bob.id);
    let to_alice = format!("/api/v9/users/@me/relationships/{}", alice.id);

    assert_eq!(
        put(&server, &to_bob, &alice.token, json!({ "type": 2 }))
            .await
            .status,
        204
    );
    assert_eq!(
        alice.gateway.dispatch("RELATIONSHIP_ADD").await["d"]["type"],
        2
    );
    let gone = bob.gateway.dispatch("RELATIONSHIP_REMOVE").await["d"].clone();
    assert_eq!(gone["id"], alice.user["id"]);
    assert_eq!(gone["type"], 1);
    let bobs = get(&server, "/api/v9/users/@me/relationships", Some(&bob.token)).await;
    assert_eq!(bobs.body, json!([]));

    // The blocked side's requests are refused without saying why.
    let refused = put(&server, &to_alice, &bob.token, json!({})).await;
    assert_code(&refused, 400, 80000);
    // Blocking back is allowed; unblocking is one-sided and leaves the other's block.
    assert_eq!(
        put(&server, &to_alice, &bob.token, json!({ "type": 2 }))
            .await
            .status,
        204
    );
    assert_eq!(delete(&server, &to_alice, &bob.token).await.status, 204);
    assert_eq!(server.count("relationships").await, 1);
    let alices = get(
        &server,
        "/api/v9/users/@me/relationships",
        Some(&alice.token),
    )
    .await;
    assert_eq!(alices.body[0]["type"], 2);

    // A request to someone one blocked replaces the block.
    assert_eq!(
        put(&server, &to_bob, &alice.token, json!({})).await.status,
        204
    );
    let alices = get(
        &server,
        "/api/v9/users/@me/relationships",
        Some(&alice.token),
    )
    .await;
    assert_eq!(alices.body[0]["type"], 4);
}

#[actix_web::test]
async fn the_friend_limit_holds() {
    let server = TestServer::with(&[("limits.user_max_friends", "1")]).await;
    let alice = person(&server, "alice").await;
    let bob = person(&server, "bob").await;
    let carol = person(&server, "carol").await;
    let first = put(
        &server,
        &format!("/api/v9/users/@me/relationships/{}", bob.id),
        &alice.token,
        json!({}),
    )
    .await;
    assert_eq!(first.status, 204);
    let second = put(
        &server,
        &format!("/api/v9/users/@me/relationships/{}", carol.id),
        &alice.token,
        json!({}),
    )
    .await;
    assert_code(&second, 400, 30002);
}

#[actix_web::test]
async fn group_dms_gain_and_lose_recipients() {
    let server = TestServer::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let mut carol = person(&server, "carol").await;
    let mut dave = person(&server, "dave").await;
    befriend(&server, &mut alice, &mut bob).await;
    befriend(&server, &mut alice, &mut carol).await;

    // Only friends may be brought in.
    assert_code(
        &open_dm(
            &server,
            &alice.token,
            json!({ "recipients": [bob.id, dave.id] }),
        )
        .await,
        400,
        50033,
    );
    let created = open_dm(
        &server,
        &alice.token,
        json!({ "recipients": [bob.id, carol.id] }),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let group = created.body;
    assert_eq!(group["type"], 3);
    assert_eq!(group["owner_id"], alice.user["id"]);
    assert_eq!(group["recipients"].as_array().unwrap().len(), 2);
    let channel_id = group["id"].as_str().unwrap().to_string();
    for (person, count) in [(&mut bob, 2), (&mut carol, 2)] {
        let seen = person.gateway.dispatch("CHANNEL_CREATE").await["d"].clone();
        assert_eq!(seen["id"], group["id"]);
        assert_eq!(seen["type"], 3);
        assert_eq!(seen["recipients"].as_array().unwrap().len(), count);
    }

    let add_dave = format!("/api/v9/channels/{channel_id}/recipients/{}", dave.id);
    assert_code(
        &put(&server, &add_dave, &alice.token, json!({})).await,
        400,
        50033,
    );
    befriend(&server, &mut alice, &mut dave).await;
    assert_eq!(
        put(&server, &add_dave, &alice.token, json!({}))
            .await
            .status,
        204
    );
    let joined = dave.gateway.dispatch("CHANNEL_CREATE").await["d"].clone();
    assert_eq!(joined["id"], group["id"]);
    assert_eq!(joined["recipients"].as_array().unwrap().len(), 3);
    let added = bob.gateway.dispatch("CHANNEL_RECIPIENT_ADD").await["d"].clone();
    assert_eq!(added["channel_id"], group["id"]);
    assert_eq!(added["user"]["id"], dave.user["id"]);
    assert_eq!(
        alice.gateway.dispatch("CHANNEL_RECIPIENT_ADD").await["d"]["user"]["id"],
        dave.user["id"]
    );

    // Only the owner removes others.
    let remove_dave = format!("/api/v9/channels/{channel_id}/recipients/{}", dave.id);
    assert_code(&delete(&server, &remove_dave, &bob.token).await, 403, 50013);
    assert_eq!(
        delete(&server, &remove_dave, &alice.token).await.status,
        204
    );
    assert_eq!(
        dave.gateway.dispatch("CHANNEL_DELETE").await["d"]["id"],
        group["id"]
    );
    for person in [&mut bob, &mut carol] {
        let removed = person.gateway.dispatch("CHANNEL_RECIPIENT_REMOVE").await["d"].clone();
        assert_eq!(removed["user"]["id"], dave.user["id"]);
    }
    assert_code(
        &delete(&server, &remove_dave, &alice.token).await,
        404,
        10013,
    );
    // Dave is out: the channel is no longer his to see.
    assert_code(
        &get(
            &server,
            &format!("/api/v9/channels/{channel_id}"),
            Some(&dave.token),
        )
        .await,
        403,
        50001,
    );

    // The owner leaving hands the group on.
    let leave = format!("/api/v9/channels/{channel_id}/recipients/{}", alice.id);
    assert_eq!(delete(&server, &leave, &alice.token).await.status, 204);
    let left = carol.gateway.dispatch("CHANNEL_RECIPIENT_REMOVE").await["d"].clone();
    assert_eq!(left["user"]["id"], alice.user["id"]);
    let updated = carol.gateway.dispatch("CHANNEL_UPDATE").await["d"].clone();
    let heir = std::cmp::min(
        bob.id.parse::<i64>().unwrap(),
        carol.id.parse::<i64>().unwrap(),
    );
    assert_eq!(updated["owner_id"], heir.to_string());
    assert_eq!(updated["recipients"].as_array().unwrap().len(), 1);

    // The last one out takes the group with them.
    for person in [&bob, &carol] {
        let leave = format!("/api/v9/channels/{channel_id}/recipients/{}", person.id);
        assert_eq!(delete(&server, &leave, &person.token).await.status, 204);
    }
    assert_eq!(
        server
            .count(&format!("channels WHERE id = {channel_id}"))
            .await,
        0
    );

    // Recipients belong to group DMs only.
    let dm = open_dm(&server, &alice.token, json!({ "recipient_id": bob.id })).await;
    let dm_id = dm.body["id"].as_str().unwrap();
    assert_code(
        &put(
            &server,
            &format!("/api/v9/channels/{dm_id}/recipients/{}", carol.id),
            &alice.token,
            json!({}),
        )
        .await,
        400,
        50024,
    );
}

#[actix_web::test]
async fn dms_need_the_instance_rights() {
    let server = TestServer::start().await;
    let alice = person(&server, "alice").await;
    let bob = person(&server, "bob").await;
    server
        .sql(&format!(
            "UPDATE users SET rights = 0 WHERE id = {}",
            alice.id
        ))
        .await;
    for body in [
        json!({ "recipient_id": bob.id }),
        json!({ "recipients": [] }),
    ] {
        assert_code(&open_dm(&server, &alice.token, body).await, 403, 50013);
    }
}

#[actix_web::test]
async fn a_group_dm_holds_ten_people_at_most() {
    let server = TestServer::start().await;
    let mut owner = person(&server, "owner").await;
    let mut friends = Vec::new();
    for n in 0..10 {
        let mut friend = person(&server, &format!("friend{n}")).await;
        befriend(&server, &mut owner, &mut friend).await;
        friends.push(friend);
    }
    let ids: Vec<&str> = friends.iter().map(|f| f.id.as_str()).collect();
    assert_form_error(
        &open_dm(&server, &owner.token, json!({ "recipients": ids })).await,
        "recipients",
        "BASE_TYPE_MAX_LENGTH",
    );
    let full = open_dm(&server, &owner.token, json!({ "recipients": ids[..9] })).await;
    assert_eq!(full.status, 200, "{:?}", full.body);
    assert_eq!(full.body["recipients"].as_array().unwrap().len(), 9);
    let channel_id = full.body["id"].as_str().unwrap();
    assert_form_error(
        &put(
            &server,
            &format!("/api/v9/channels/{channel_id}/recipients/{}", ids[9]),
            &owner.token,
            json!({}),
        )
        .await,
        "recipients",
        "BASE_TYPE_MAX_LENGTH",
    );
    // A group of one is allowed, as on Discord.
    let alone = open_dm(&server, &owner.token, json!({ "recipients": [] })).await;
    assert_eq!(alone.status, 200);
    assert_eq!(alone.body["type"], 3);
    assert_eq!(alone.body["recipients"], json!([]));
}
