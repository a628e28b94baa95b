//! Messages over real HTTP and gateways: sending (nonces, replies, mentions, embeds), history
//! paging, edits, deletes and bulk deletes, reactions, pins, read states, and who hears what —
//! in a guild (with a member who may not see the channel) and in a DM.

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::guild::{shared_guild, text_channel};
use crate::common::http::{
    assert_form_error, get, patch, post, register_user, request, Account, Response,
};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";
const THUMBS_UP: &str = "%F0%9F%91%8D";
const PARTY: &str = "%F0%9F%8E%89";
const BLOB: &str = "blob:123456789";

/// A registered user with a gateway session past READY.
struct Person {
    token: String,
    id: String,
    gateway: Gateway,
}

async fn person(server: &TestServer, name: &str) -> Person {
    let (token, user) = register_user(server, name).await;
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.identify(&token).await;
    Person {
        id: user["id"].as_str().unwrap().to_string(),
        token,
        gateway,
    }
}

/// A guild owned by `owner` (who has every permission), with `members` added behind the API's
/// back before anyone connects (invites are another file's business), and its text channel.
struct Chat {
    owner: Person,
    members: Vec<Person>,
    guild_id: String,
    channel: String,
}

async fn chat(server: &TestServer, others: &[&str]) -> Chat {
    let (owner_token, owner_user) = register_user(server, "owner").await;
    let guild = post(
        server,
        "/api/v9/guilds",
        Some(&owner_token),
        json!({ "name": "Chat Guild" }),
    )
    .await;
    assert_eq!(guild.status, 201, "{:?}", guild.body);
    let guild_id = guild.body["id"].as_str().unwrap().to_string();
    let mut tokens = Vec::new();
    for name in others {
        let (token, user) = register_user(server, name).await;
        let id = user["id"].as_str().unwrap();
        server
            .sql(&format!(
                "INSERT INTO members (guild_id, user_id) VALUES ({guild_id}, {id})"
            ))
            .await;
        tokens.push((token, id.to_string()));
    }
    let channel = text_channel(server, &owner_token, &guild_id).await;
    let mut owner_gateway = Gateway::connect(server, JSON).await;
    owner_gateway.identify(&owner_token).await;
    let mut members = Vec::new();
    for (token, id) in tokens {
        let mut gateway = Gateway::connect(server, JSON).await;
        gateway.identify(&token).await;
        members.push(Person { token, id, gateway });
    }
    Chat {
        owner: Person {
            token: owner_token,
            id: owner_user["id"].as_str().unwrap().to_string(),
            gateway: owner_gateway,
        },
        members,
        guild_id,
        channel,
    }
}

fn messages(channel: &str) -> String {
    format!("/api/v9/channels/{channel}/messages")
}

fn message(channel: &str, id: &str) -> String {
    format!("/api/v9/channels/{channel}/messages/{id}")
}

async fn send(server: &TestServer, token: &str, channel: &str, body: Value) -> Response {
    post(server, &messages(channel), Some(token), body).await
}

/// Sends `content` and returns the new message's id.
async fn say(server: &TestServer, token: &str, channel: &str, content: &str) -> String {
    let sent = send(server, token, channel, json!({ "content": content })).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    sent.body["id"].as_str().unwrap().to_string()
}

async fn put(server: &TestServer, path: &str, token: &str) -> Response {
    request(server, Method::PUT, path, Some(token), None).await
}

async fn delete(server: &TestServer, path: &str, token: &str) -> Response {
    request(server, Method::DELETE, path, Some(token), None).await
}

/// Puts a member overwrite on a channel (the owner may grant or deny anything).
async fn overwrite(server: &TestServer, owner: &str, channel: &str, user: &str, deny: u64) {
    let set = request(
        server,
        Method::PUT,
        &format!("/api/v9/channels/{channel}/permissions/{user}"),
        Some(owner),
        Some(json!({ "type": 1, "allow": "0", "deny": deny.to_string() })),
    )
    .await;
    assert_eq!(set.status, 204, "{:?}", set.body);
}

fn assert_code(response: &Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code, "{:?}", response.body);
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list:?}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every dispatch up to and including the first `event` for `channel`.
async fn dispatches_until(gateway: &mut Gateway, event: &str, channel: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let payload = gateway.payload().await;
        if payload["op"] != 0 {
            continue;
        }
        let done = payload["t"] == event && payload["d"]["channel_id"] == channel;
        seen.push(payload);
        if done {
            return seen;
        }
    }
}

/// A snowflake made `days` ago.
fn snowflake_days_ago(days: i64) -> i64 {
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    let ms = u64::try_from(at.timestamp_millis()).unwrap() - spacebar::snowflake::DISCORD_EPOCH_MS;
    i64::try_from(ms << 22).unwrap()
}

#[actix_web::test]
async fn a_message_reaches_everyone_in_the_channel_with_its_nonce() {
    let server = TestServer::with(&[("limits.message_max_characters", "2000")]).await;
    let Chat {
        mut owner,
        mut members,
        guild_id,
        channel,
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];

    let sent = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": "hello", "nonce": "n-1", "tts": false }),
    )
    .await;
    assert_eq!(sent.status, 200, "Fermi takes anything else as a failure");
    let body = &sent.body;
    assert_eq!(body["content"], "hello");
    assert_eq!(body["nonce"], "n-1");
    assert_eq!(body["channel_id"], channel.as_str());
    assert_eq!(body["guild_id"], guild_id.as_str());
    assert_eq!(body["author"]["id"], owner.id.as_str());
    assert_eq!(body["author"]["username"], "owner");
    assert!(body["member"]["joined_at"].is_string(), "{body:?}");
    assert!(
        body["member"].get("user").is_none(),
        "a message's member has no user"
    );
    assert_eq!(body["type"], 0);
    assert_eq!(body["flags"], 0);
    assert_eq!(body["pinned"], false);
    assert_eq!(body["tts"], false);
    assert_eq!(body["mention_everyone"], false);
    assert!(body["timestamp"].is_string());
    assert!(body["edited_timestamp"].is_null());
    for empty in [
        "mentions",
        "mention_roles",
        "attachments",
        "embeds",
        "components",
    ] {
        assert_eq!(body[empty], json!([]), "{empty}");
    }
    assert!(body.get("reactions").is_none(), "no reactions yet");

    for gateway in [&mut bob.gateway, &mut owner.gateway] {
        let event = gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
        assert_eq!(event["id"], body["id"]);
        assert_eq!(event["nonce"], "n-1");
        assert_eq!(event["content"], "hello");
        assert_eq!(event["author"]["id"], owner.id.as_str());
        assert_eq!(event["guild_id"], guild_id.as_str());
        assert!(event["member"]["roles"].is_array(), "{event:?}");
    }

    // A number nonce comes back a number; no nonce, no nonce.
    let numbered = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "hi", "nonce": 42 }),
    )
    .await;
    assert_eq!(numbered.body["nonce"], 42);
    assert_eq!(
        bob.gateway.dispatch("MESSAGE_CREATE").await["d"]["nonce"],
        42
    );
    let plain = send(&server, &bob.token, &channel, json!({ "content": "hi" })).await;
    assert!(plain.body.get("nonce").is_none());

    // The channel remembers its last message.
    let seen = get(
        &server,
        &format!("/api/v9/channels/{channel}"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(seen.body["last_message_id"], plain.body["id"]);

    // Embeds are stored as given, typed `rich`.
    let embedded = send(
        &server,
        &bob.token,
        &channel,
        json!({ "embeds": [{ "title": "News", "description": "All good", "color": 255 }] }),
    )
    .await;
    assert_eq!(embedded.status, 200, "{:?}", embedded.body);
    assert_eq!(embedded.body["embeds"][0]["title"], "News");
    assert_eq!(embedded.body["embeds"][0]["type"], "rich");
    let fetched = get(
        &server,
        &message(&channel, embedded.body["id"].as_str().unwrap()),
        Some(&bob.token),
    )
    .await;
    assert_eq!(fetched.body["embeds"][0]["description"], "All good");

    // What cannot be sent.
    for empty in [
        json!({}),
        json!({ "content": "" }),
        json!({ "content": "   " }),
        json!({ "embeds": [] }),
    ] {
        let refused = send(&server, &bob.token, &channel, empty).await;
        assert_code(&refused, 400, 50006);
        assert_eq!(refused.body["message"], "Cannot send an empty message");
    }
    let long = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "x".repeat(2001) }),
    )
    .await;
    assert_form_error(&long, "content", "BASE_TYPE_BAD_LENGTH");
    let nonce = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "x", "nonce": "n".repeat(26) }),
    )
    .await;
    assert_form_error(&nonce, "nonce", "BASE_TYPE_BAD_LENGTH");
    let nonce = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "x", "nonce": { "a": 1 } }),
    )
    .await;
    assert_form_error(&nonce, "nonce", "BASE_TYPE_STRING");
    let forward = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "x", "message_reference": { "type": 1, "message_id": body["id"] } }),
    )
    .await;
    assert_form_error(&forward, "message_reference.type", "BASE_TYPE_CHOICES");
    let embed = send(
        &server,
        &bob.token,
        &channel,
        json!({ "embeds": [{ "title": "t".repeat(257) }] }),
    )
    .await;
    assert_form_error(&embed, "embeds.0.title", "BASE_TYPE_MAX_LENGTH");
    let not_object = send(&server, &bob.token, &channel, json!({ "embeds": ["text"] })).await;
    assert_form_error(&not_object, "embeds.0", "DICT_TYPE_CONVERT");
    let wrong_type = send(&server, &bob.token, &channel, json!({ "content": 5 })).await;
    assert_form_error(&wrong_type, "content", "BASE_TYPE_STRING");

    // Voice channels and categories take no messages; unknown channels are unknown.
    let all = get(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&bob.token),
    )
    .await;
    let voice = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == 2)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_code(
        &send(&server, &bob.token, &voice, json!({ "content": "hi" })).await,
        400,
        50008,
    );
    assert_code(
        &send(&server, &bob.token, "1", json!({ "content": "hi" })).await,
        404,
        10003,
    );
    assert_form_error(
        &send(&server, &bob.token, "abc", json!({ "content": "hi" })).await,
        "channel_id",
        "NUMBER_TYPE_COERCE",
    );
    assert_eq!(
        send(&server, "nonsense", &channel, json!({ "content": "hi" }))
            .await
            .status,
        401
    );
    // Every API version serves it.
    let v10 = post(
        &server,
        &format!("/api/v10/channels/{channel}/messages"),
        Some(&bob.token),
        json!({ "content": "v10" }),
    )
    .await;
    assert_eq!(v10.status, 200);
}

#[actix_web::test]
async fn history_is_newest_first_and_pages_every_way() {
    let server = TestServer::start().await;
    let Chat {
        owner,
        members,
        channel,
        ..
    } = chat(&server, &["bob"]).await;
    let bob = &members[0];
    let mut sent = Vec::new();
    for n in 1..=5 {
        sent.push(say(&server, &owner.token, &channel, &format!("m{n}")).await);
    }
    let page = |query: &'static str| {
        let path = format!("{}{query}", messages(&channel));
        let token = bob.token.clone();
        let server = &server;
        async move { get(server, &path, Some(&token)).await }
    };
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(ids(&page("").await.body), newest_first);
    assert_eq!(page("").await.body[0]["content"], "m5");
    assert_eq!(ids(&page("?limit=2").await.body), newest_first[..2]);
    let before = get(
        &server,
        &format!("{}?before={}", messages(&channel), sent[2]),
        Some(&bob.token),
    )
    .await;
    assert_eq!(ids(&before.body), vec![sent[1].clone(), sent[0].clone()]);
    let after = get(
        &server,
        &format!("{}?after={}&limit=2", messages(&channel), sent[1]),
        Some(&bob.token),
    )
    .await;
    assert_eq!(
        ids(&after.body),
        vec![sent[3].clone(), sent[2].clone()],
        "the two right after, newest first"
    );
    let around = get(
        &server,
        &format!("{}?around={}&limit=3", messages(&channel), sent[2]),
        Some(&bob.token),
    )
    .await;
    assert_eq!(
        ids(&around.body),
        vec![sent[3].clone(), sent[2].clone(), sent[1].clone()]
    );
    let around_one = get(
        &server,
        &format!("{}?around={}&limit=1", messages(&channel), sent[2]),
        Some(&bob.token),
    )
    .await;
    assert_eq!(ids(&around_one.body), vec![sent[2].clone()]);

    for (query, code) in [
        ("?limit=0", "NUMBER_TYPE_MIN"),
        ("?limit=101", "NUMBER_TYPE_MAX"),
        ("?limit=many", "NUMBER_TYPE_COERCE"),
    ] {
        assert_form_error(&page(query).await, "limit", code);
    }
    assert_form_error(
        &page("?before=yesterday").await,
        "before",
        "NUMBER_TYPE_COERCE",
    );

    // One message; unknown ones and ones of other channels are unknown here.
    let one = get(&server, &message(&channel, &sent[0]), Some(&bob.token)).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["content"], "m1");
    assert_code(
        &get(&server, &message(&channel, "12345"), Some(&bob.token)).await,
        404,
        10008,
    );
    let created = post(
        &server,
        &format!(
            "/api/v9/guilds/{}/channels",
            members_guild(&server, &owner.token, &channel).await
        ),
        Some(&owner.token),
        json!({ "name": "other", "type": 0 }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let other = created.body["id"].as_str().unwrap();
    assert_code(
        &get(&server, &message(other, &sent[0]), Some(&bob.token)).await,
        404,
        10008,
    );

    // Without READ_MESSAGE_HISTORY the history is empty and single messages are out of reach.
    overwrite(&server, &owner.token, &channel, &bob.id, 1 << 16).await;
    let blind = page("").await;
    assert_eq!(blind.status, 200);
    assert_eq!(blind.body, json!([]));
    assert_code(
        &get(&server, &message(&channel, &sent[0]), Some(&bob.token)).await,
        403,
        50001,
    );
    // Sending still works: history is about reading. Replying, reacting and pins are not.
    say(&server, &bob.token, &channel, "still here").await;
    let reply = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "re", "message_reference": { "message_id": sent[0] } }),
    )
    .await;
    assert_code(&reply, 403, 50013);
    let reactions = format!("{}/reactions/{THUMBS_UP}", message(&channel, &sent[0]));
    assert_code(
        &put(&server, &format!("{reactions}/@me"), &bob.token).await,
        403,
        50013,
    );
    assert_code(
        &get(&server, &reactions, Some(&bob.token)).await,
        403,
        50013,
    );
    let pins = get(
        &server,
        &format!("/api/v9/channels/{channel}/pins"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(pins.body, json!([]));
    let pages = get(
        &server,
        &format!("{}/pins", messages(&channel)),
        Some(&bob.token),
    )
    .await;
    assert_eq!(pages.body, json!({ "items": [], "has_more": false }));

    // Without SEND_MESSAGES nothing goes out.
    overwrite(&server, &owner.token, &channel, &bob.id, 1 << 11).await;
    assert_code(
        &send(
            &server,
            &bob.token,
            &channel,
            json!({ "content": "hello?" }),
        )
        .await,
        403,
        50013,
    );
}

#[actix_web::test]
async fn instance_rights_gate_even_the_owner() {
    let server = TestServer::start().await;
    let Chat { owner, channel, .. } = chat(&server, &[]).await;
    let mine = say(&server, &owner.token, &channel, "before").await;
    server
        .sql(&format!(
            "UPDATE users SET rights = 0 WHERE id = {}",
            owner.id
        ))
        .await;
    let refused = [
        (
            "SEND_MESSAGES",
            send(&server, &owner.token, &channel, json!({ "content": "x" })).await,
        ),
        (
            "SELF_EDIT_MESSAGES",
            patch(
                &server,
                &message(&channel, &mine),
                &owner.token,
                json!({ "content": "y" }),
            )
            .await,
        ),
        (
            "SELF_DELETE_MESSAGES",
            delete(&server, &message(&channel, &mine), &owner.token).await,
        ),
        (
            "SELF_ADD_REACTIONS",
            put(
                &server,
                &format!("{}/reactions/{THUMBS_UP}/@me", message(&channel, &mine)),
                &owner.token,
            )
            .await,
        ),
        (
            "PIN_MESSAGES",
            put(
                &server,
                &format!("/api/v9/channels/{channel}/pins/{mine}"),
                &owner.token,
            )
            .await,
        ),
    ];
    for (right, response) in refused {
        assert_code(&response, 403, 50013);
        assert!(
            response.body["message"].as_str().unwrap().ends_with(right),
            "{:?}",
            response.body
        );
    }
}

/// The guild a channel belongs to.
async fn members_guild(server: &TestServer, token: &str, channel: &str) -> String {
    let found = get(server, &format!("/api/v9/channels/{channel}"), Some(token)).await;
    found.body["guild_id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn replies_name_their_message_and_ping_its_author() {
    let server = TestServer::start().await;
    let Chat {
        owner,
        mut members,
        channel,
        ..
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];
    let original = say(&server, &owner.token, &channel, "question?").await;

    let reply = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "answer", "message_reference": { "message_id": original, "channel_id": channel } }),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["type"], 19);
    assert_eq!(
        reply.body["message_reference"]["message_id"],
        original.as_str()
    );
    assert_eq!(
        reply.body["message_reference"]["channel_id"],
        channel.as_str()
    );
    assert_eq!(reply.body["referenced_message"]["id"], original.as_str());
    assert_eq!(reply.body["referenced_message"]["content"], "question?");
    assert_eq!(
        ids(&reply.body["mentions"]),
        vec![owner.id.clone()],
        "a reply pings its author"
    );
    let question = bob.gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(question["id"], original.as_str());
    let event = bob.gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(event["referenced_message"]["id"], original.as_str());

    // replied_user:false keeps the reply quiet.
    let quiet = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "shh", "message_reference": { "message_id": original }, "allowed_mentions": { "parse": [] } }),
    )
    .await;
    assert_eq!(quiet.body["type"], 19);
    assert_eq!(quiet.body["mentions"], json!([]));

    // Unknown targets fail, unless the sender said not to care.
    let unknown = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "?", "message_reference": { "message_id": "12345" } }),
    )
    .await;
    assert_form_error(&unknown, "message_reference", "REPLIES_UNKNOWN_MESSAGE");
    let lenient = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "?", "message_reference": { "message_id": "12345", "fail_if_not_exists": false } }),
    )
    .await;
    assert_eq!(lenient.status, 200);
    assert_eq!(lenient.body["type"], 0);
    assert!(lenient.body.get("message_reference").is_none());
    let no_id = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "?", "message_reference": {} }),
    )
    .await;
    assert_form_error(&no_id, "message_reference.message_id", "BASE_TYPE_REQUIRED");

    // A reply whose message is gone shows referenced_message null.
    assert_eq!(
        delete(&server, &message(&channel, &original), &owner.token)
            .await
            .status,
        204
    );
    let history = get(&server, &messages(&channel), Some(&bob.token)).await;
    let answered = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"] == "answer")
        .unwrap();
    assert_eq!(answered["type"], 19);
    assert!(answered["referenced_message"].is_null(), "{answered:?}");

    // The message replied to shows whom it mentions, even people the reply does not.
    let bob_id = bob.id.clone();
    let asked = say(&server, &owner.token, &channel, &format!("ask <@{bob_id}>")).await;
    let follow_up = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": "anyone?", "message_reference": { "message_id": asked } }),
    )
    .await;
    assert_eq!(follow_up.status, 200, "{:?}", follow_up.body);
    assert_eq!(
        ids(&follow_up.body["referenced_message"]["mentions"]),
        vec![bob_id]
    );
}

#[actix_web::test]
async fn mentions_follow_the_content_permissions_and_allowed_mentions() {
    let server = TestServer::start().await;
    let Chat {
        owner,
        members,
        guild_id,
        channel,
    } = chat(&server, &["bob", "carol"]).await;
    let (bob, carol) = (&members[0], &members[1]);
    let (_, stranger) = register_user(&server, "stranger").await;
    let stranger = stranger["id"].as_str().unwrap();

    let sent = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": format!("<@{}> <@!{}> <@{}> <@{stranger}>", bob.id, bob.id, carol.id) }),
    )
    .await;
    assert_eq!(
        ids(&sent.body["mentions"]),
        vec![bob.id.clone(), carol.id.clone()],
        "each member once, strangers never"
    );
    assert_eq!(sent.body["mentions"][0]["username"], "bob");

    // Roles: a mentionable one, and one only MENTION_EVERYONE may ping.
    let (open, closed) = (900_001, 900_002);
    server
        .sql(&format!(
            "INSERT INTO roles (id, guild_id, name, position, permissions, mentionable) VALUES \
             ({open}, {guild_id}, 'open', 1, 0, true), ({closed}, {guild_id}, 'closed', 2, 0, false)"
        ))
        .await;
    let content = format!("<@&{open}> <@&{closed}> <@&{guild_id}> <@&42> @everyone");
    let by_owner = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": content }),
    )
    .await;
    assert_eq!(
        by_owner.body["mention_roles"],
        json!([open.to_string(), closed.to_string()])
    );
    assert_eq!(by_owner.body["mention_everyone"], true);

    // Bob may ping everyone (the default) until the channel says otherwise.
    let here = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "@here look" }),
    )
    .await;
    assert_eq!(here.body["mention_everyone"], true);
    overwrite(&server, &owner.token, &channel, &bob.id, 1 << 17).await;
    let by_bob = send(&server, &bob.token, &channel, json!({ "content": content })).await;
    assert_eq!(by_bob.status, 200);
    assert_eq!(by_bob.body["mention_roles"], json!([open.to_string()]));
    assert_eq!(by_bob.body["mention_everyone"], false);
    assert_eq!(by_bob.body["content"], content, "the text stays as written");

    // allowed_mentions narrows what pings.
    let narrowed = send(
        &server,
        &owner.token,
        &channel,
        json!({
            "content": format!("<@{}> <@{}> <@&{open}> @everyone", bob.id, carol.id),
            "allowed_mentions": { "users": [carol.id], "parse": ["roles"] },
        }),
    )
    .await;
    assert_eq!(ids(&narrowed.body["mentions"]), vec![carol.id.clone()]);
    assert_eq!(narrowed.body["mention_roles"], json!([open.to_string()]));
    assert_eq!(narrowed.body["mention_everyone"], false);
    let nothing = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": format!("<@{}> @everyone", bob.id), "allowed_mentions": { "parse": [] } }),
    )
    .await;
    assert_eq!(nothing.body["mentions"], json!([]));
    assert_eq!(nothing.body["mention_everyone"], false);

    let exclusive = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": "x", "allowed_mentions": { "parse": ["users"], "users": [bob.id] } }),
    )
    .await;
    assert_form_error(
        &exclusive,
        "allowed_mentions",
        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
    );
    let bogus = send(
        &server,
        &owner.token,
        &channel,
        json!({ "content": "x", "allowed_mentions": { "parse": ["users", "cats"] } }),
    )
    .await;
    assert_form_error(&bogus, "allowed_mentions.parse.1", "BASE_TYPE_CHOICES");
}

#[actix_web::test]
async fn authors_edit_and_moderators_delete() {
    let server = TestServer::start().await;
    let Chat {
        mut owner,
        mut members,
        guild_id,
        channel,
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];
    let mine = say(&server, &bob.token, &channel, "first draft").await;
    let owners = say(&server, &owner.token, &channel, "the owner's").await;

    let edited = patch(
        &server,
        &message(&channel, &mine),
        &bob.token,
        json!({ "content": format!("final <@{}>", owner.id) }),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["content"], format!("final <@{}>", owner.id));
    assert!(edited.body["edited_timestamp"].is_string());
    assert_eq!(ids(&edited.body["mentions"]), vec![owner.id.clone()]);
    let update = owner.gateway.dispatch("MESSAGE_UPDATE").await["d"].clone();
    assert_eq!(update["id"], mine.as_str());
    assert_eq!(update["content"], edited.body["content"]);
    assert_eq!(update["guild_id"], guild_id.as_str());
    let fetched = get(&server, &message(&channel, &mine), Some(&owner.token)).await;
    assert_eq!(fetched.body["content"], edited.body["content"]);

    // Nobody edits someone else's words, not even the owner.
    let theirs = patch(
        &server,
        &message(&channel, &owners),
        &bob.token,
        json!({ "content": "mine now" }),
    )
    .await;
    assert_code(&theirs, 403, 50005);
    assert_eq!(
        theirs.body["message"],
        "Cannot edit a message authored by another user"
    );
    assert_code(
        &patch(
            &server,
            &message(&channel, &mine),
            &owner.token,
            json!({ "content": "x" }),
        )
        .await,
        403,
        50005,
    );
    // Suppressing embeds on someone else's message takes MANAGE_MESSAGES.
    assert_code(
        &patch(
            &server,
            &message(&channel, &owners),
            &bob.token,
            json!({ "flags": 4 }),
        )
        .await,
        403,
        50013,
    );
    let suppressed = patch(
        &server,
        &message(&channel, &mine),
        &owner.token,
        json!({ "flags": 4 }),
    )
    .await;
    assert_eq!(suppressed.status, 200, "{:?}", suppressed.body);
    assert_eq!(suppressed.body["flags"], 4);
    assert_eq!(suppressed.body["content"], edited.body["content"]);
    // Emptying a message is not editing it.
    assert_code(
        &patch(
            &server,
            &message(&channel, &mine),
            &bob.token,
            json!({ "content": "" }),
        )
        .await,
        400,
        50006,
    );
    assert_code(
        &patch(
            &server,
            &message(&channel, "12345"),
            &bob.token,
            json!({ "content": "x" }),
        )
        .await,
        404,
        10008,
    );

    // Deleting: one's own, or anyone's with MANAGE_MESSAGES.
    assert_code(
        &delete(&server, &message(&channel, &owners), &bob.token).await,
        403,
        50013,
    );
    assert_eq!(
        delete(&server, &message(&channel, &mine), &bob.token)
            .await
            .status,
        204
    );
    let gone = owner.gateway.dispatch("MESSAGE_DELETE").await["d"].clone();
    assert_eq!(
        gone,
        json!({ "id": mine, "channel_id": channel, "guild_id": guild_id })
    );
    assert_code(
        &get(&server, &message(&channel, &mine), Some(&bob.token)).await,
        404,
        10008,
    );
    assert_code(
        &delete(&server, &message(&channel, &mine), &bob.token).await,
        404,
        10008,
    );
    let bobs = say(&server, &bob.token, &channel, "moderate me").await;
    assert_eq!(
        delete(&server, &message(&channel, &bobs), &owner.token)
            .await
            .status,
        204
    );
    let own = bob.gateway.dispatch("MESSAGE_DELETE").await["d"].clone();
    assert_eq!(own["id"], mine.as_str());
    let gone = bob.gateway.dispatch("MESSAGE_DELETE").await["d"].clone();
    assert_eq!(gone["id"], bobs.as_str());
}

#[actix_web::test]
async fn bulk_delete_takes_two_to_a_hundred_recent_messages() {
    let server = TestServer::start().await;
    let Chat {
        owner,
        mut members,
        guild_id,
        channel,
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];
    let mut sent = Vec::new();
    for n in 1..=3 {
        sent.push(say(&server, &owner.token, &channel, &format!("m{n}")).await);
    }
    let bulk = format!("{}/bulk-delete", messages(&channel));

    let refused = post(
        &server,
        &bulk,
        Some(&bob.token),
        json!({ "messages": [sent[0], sent[1]] }),
    )
    .await;
    assert_code(&refused, 403, 50013);
    let one = post(
        &server,
        &bulk,
        Some(&owner.token),
        json!({ "messages": [sent[0]] }),
    )
    .await;
    assert_code(&one, 400, 50016);
    let many: Vec<String> = (0..101)
        .map(|n| (snowflake_days_ago(1) + n).to_string())
        .collect();
    assert_code(
        &post(
            &server,
            &bulk,
            Some(&owner.token),
            json!({ "messages": many }),
        )
        .await,
        400,
        50016,
    );
    assert_form_error(
        &post(&server, &bulk, Some(&owner.token), json!({})).await,
        "messages",
        "BASE_TYPE_REQUIRED",
    );

    // A message from fifteen days ago must go on its own.
    let old = snowflake_days_ago(15);
    server
        .sql(&format!(
            "INSERT INTO messages (id, channel_id, guild_id, author_id, content, created_at) \
             VALUES ({old}, {channel}, {guild_id}, {}, 'ancient', now() - interval '15 days')",
            owner.id
        ))
        .await;
    let too_old = post(
        &server,
        &bulk,
        Some(&owner.token),
        json!({ "messages": [sent[0], old.to_string()] }),
    )
    .await;
    assert_code(&too_old, 400, 50034);
    assert_eq!(
        too_old.body["message"],
        "You can only bulk delete messages that are under 14 days old."
    );
    assert_eq!(
        server
            .count(&format!("messages WHERE channel_id = {channel}"))
            .await,
        4,
        "nothing went"
    );

    // Unknown ids are ignored; the event names what was deleted.
    let unknown = snowflake_days_ago(1).to_string();
    let done = post(
        &server,
        &bulk,
        Some(&owner.token),
        json!({ "messages": [sent[0], sent[1], unknown] }),
    )
    .await;
    assert_eq!(done.status, 204, "{:?}", done.body);
    let event = bob.gateway.dispatch("MESSAGE_DELETE_BULK").await["d"].clone();
    assert_eq!(
        event,
        json!({ "ids": [sent[0], sent[1]], "channel_id": channel, "guild_id": guild_id })
    );
    let left = get(&server, &messages(&channel), Some(&bob.token)).await;
    assert_eq!(ids(&left.body), vec![sent[2].clone(), old.to_string()]);
    // The old one still goes one by one.
    assert_eq!(
        delete(&server, &message(&channel, &old.to_string()), &owner.token)
            .await
            .status,
        204
    );
}

#[actix_web::test]
async fn reactions_unicode_and_custom() {
    let server = TestServer::with(&[("limits.message_max_reactions", "2")]).await;
    let Chat {
        mut owner,
        mut members,
        guild_id,
        channel,
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];
    let target = say(&server, &owner.token, &channel, "react to me").await;
    let reactions = format!("{}/reactions", message(&channel, &target));

    assert_eq!(
        put(&server, &format!("{reactions}/{THUMBS_UP}/@me"), &bob.token)
            .await
            .status,
        204
    );
    let added = owner.gateway.dispatch("MESSAGE_REACTION_ADD").await["d"].clone();
    assert_eq!(added["user_id"], bob.id.as_str());
    assert_eq!(added["message_id"], target.as_str());
    assert_eq!(added["channel_id"], channel.as_str());
    assert_eq!(added["guild_id"], guild_id.as_str());
    assert_eq!(added["emoji"], json!({ "id": null, "name": "👍" }));
    assert_eq!(added["member"]["user"]["id"], bob.id.as_str());
    assert_eq!(added["burst"], false);
    assert_eq!(added["type"], 0);
    // Reacting twice is reacting once.
    assert_eq!(
        put(&server, &format!("{reactions}/{THUMBS_UP}/@me"), &bob.token)
            .await
            .status,
        204
    );
    assert_eq!(
        put(
            &server,
            &format!("{reactions}/{THUMBS_UP}/@me"),
            &owner.token
        )
        .await
        .status,
        204
    );
    assert_eq!(
        put(&server, &format!("{reactions}/{BLOB}/@me"), &owner.token)
            .await
            .status,
        204
    );
    let blob = owner.gateway.dispatch("MESSAGE_REACTION_ADD").await["d"].clone();
    assert_eq!(
        blob["user_id"],
        owner.id.as_str(),
        "the repeat made no event"
    );
    let blob = owner.gateway.dispatch("MESSAGE_REACTION_ADD").await["d"].clone();
    assert_eq!(blob["emoji"], json!({ "id": "123456789", "name": "blob" }));

    // Counts for everyone, `me` for each reader.
    let as_owner = get(&server, &message(&channel, &target), Some(&owner.token))
        .await
        .body;
    assert_eq!(
        as_owner["reactions"],
        json!([
            { "count": 2, "count_details": { "burst": 0, "normal": 2 }, "me": true, "me_burst": false, "burst_colors": [], "burst_count": 0, "burst_me": false, "emoji": { "id": null, "name": "👍" } },
            { "count": 1, "count_details": { "burst": 0, "normal": 1 }, "me": true, "me_burst": false, "burst_colors": [], "burst_count": 0, "burst_me": false, "emoji": { "id": "123456789", "name": "blob" } },
        ])
    );
    let as_bob = get(&server, &messages(&channel), Some(&bob.token))
        .await
        .body;
    assert_eq!(as_bob[0]["reactions"][0]["me"], true);
    assert_eq!(as_bob[0]["reactions"][1]["me"], false);

    // Who reacted, by user id.
    let users = get(
        &server,
        &format!("{reactions}/{THUMBS_UP}"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(ids(&users.body), vec![owner.id.clone(), bob.id.clone()]);
    let first = get(
        &server,
        &format!("{reactions}/{THUMBS_UP}?limit=1"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(ids(&first.body), vec![owner.id.clone()]);
    let rest = get(
        &server,
        &format!("{reactions}/{THUMBS_UP}?after={}", owner.id),
        Some(&bob.token),
    )
    .await;
    assert_eq!(ids(&rest.body), vec![bob.id.clone()]);
    let custom = get(&server, &format!("{reactions}/{BLOB}"), Some(&bob.token)).await;
    assert_eq!(ids(&custom.body), vec![owner.id.clone()]);
    assert_form_error(
        &get(
            &server,
            &format!("{reactions}/{THUMBS_UP}?limit=101"),
            Some(&bob.token),
        )
        .await,
        "limit",
        "NUMBER_TYPE_MAX",
    );
    assert_code(
        &put(&server, &format!("{reactions}/hello/@me"), &bob.token).await,
        400,
        10014,
    );
    let full = put(&server, &format!("{reactions}/{PARTY}/@me"), &owner.token).await;
    assert_code(&full, 400, 30010);
    let burst = get(
        &server,
        &format!("{reactions}/{THUMBS_UP}?type=1"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(burst.body, json!([]), "nobody made a super reaction");
    assert_form_error(
        &delete(
            &server,
            &format!("{reactions}/{THUMBS_UP}/someone"),
            &owner.token,
        )
        .await,
        "user_id",
        "NUMBER_TYPE_COERCE",
    );
    assert_code(
        &put(
            &server,
            &format!("{}/reactions/{THUMBS_UP}/@me", message(&channel, "12345")),
            &bob.token,
        )
        .await,
        404,
        10008,
    );

    // Taking one's own back; others' only with MANAGE_MESSAGES.
    assert_eq!(
        delete(&server, &format!("{reactions}/{THUMBS_UP}/@me"), &bob.token)
            .await
            .status,
        204
    );
    let removed = owner.gateway.dispatch("MESSAGE_REACTION_REMOVE").await["d"].clone();
    assert_eq!(removed["user_id"], bob.id.as_str());
    assert_eq!(removed["emoji"]["name"], "👍");
    assert_code(
        &delete(
            &server,
            &format!("{reactions}/{BLOB}/{}", owner.id),
            &bob.token,
        )
        .await,
        403,
        50013,
    );
    assert_eq!(
        put(&server, &format!("{reactions}/{THUMBS_UP}/@me"), &bob.token)
            .await
            .status,
        204
    );
    assert_eq!(
        delete(
            &server,
            &format!("{reactions}/{THUMBS_UP}/{}", bob.id),
            &owner.token
        )
        .await
        .status,
        204
    );
    let removed = bob.gateway.dispatch("MESSAGE_REACTION_REMOVE").await["d"].clone();
    assert_eq!(removed["user_id"], bob.id.as_str());

    // Without ADD_REACTIONS one may only join reactions already there.
    overwrite(&server, &owner.token, &channel, &bob.id, 1 << 6).await;
    assert_code(
        &put(&server, &format!("{reactions}/{PARTY}/@me"), &bob.token).await,
        403,
        50013,
    );
    assert_eq!(
        put(&server, &format!("{reactions}/{THUMBS_UP}/@me"), &bob.token)
            .await
            .status,
        204
    );

    // Clearing one emoji, then all of them, takes MANAGE_MESSAGES.
    assert_code(
        &delete(&server, &format!("{reactions}/{BLOB}"), &bob.token).await,
        403,
        50013,
    );
    assert_eq!(
        delete(&server, &format!("{reactions}/{BLOB}"), &owner.token)
            .await
            .status,
        204
    );
    let cleared = bob.gateway.dispatch("MESSAGE_REACTION_REMOVE_EMOJI").await["d"].clone();
    assert_eq!(
        cleared,
        json!({ "channel_id": channel, "guild_id": guild_id, "message_id": target, "emoji": { "id": "123456789", "name": "blob" } })
    );
    assert_code(&delete(&server, &reactions, &bob.token).await, 403, 50013);
    assert_eq!(delete(&server, &reactions, &owner.token).await.status, 204);
    let all = bob.gateway.dispatch("MESSAGE_REACTION_REMOVE_ALL").await["d"].clone();
    assert_eq!(
        all,
        json!({ "channel_id": channel, "guild_id": guild_id, "message_id": target })
    );
    let bare = get(&server, &message(&channel, &target), Some(&bob.token))
        .await
        .body;
    assert!(bare.get("reactions").is_none(), "{bare:?}");
}

#[actix_web::test]
async fn pins_are_listed_newest_pin_first_up_to_the_limit() {
    let server = TestServer::with(&[("limits.channel_max_pins", "2")]).await;
    let Chat {
        owner,
        mut members,
        guild_id,
        channel,
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];
    let older = say(&server, &bob.token, &channel, "older").await;
    let newer = say(&server, &bob.token, &channel, "newer").await;
    let third = say(&server, &bob.token, &channel, "third").await;
    let pin = |id: &str| format!("/api/v9/channels/{channel}/pins/{id}");

    assert_code(&put(&server, &pin(&newer), &bob.token).await, 403, 50013);
    assert_eq!(put(&server, &pin(&newer), &owner.token).await.status, 204);
    let update = bob.gateway.dispatch("MESSAGE_UPDATE").await["d"].clone();
    assert_eq!(update["id"], newer.as_str());
    assert_eq!(update["pinned"], true);
    let notice = bob.gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(notice["type"], 6);
    assert_eq!(notice["author"]["id"], owner.id.as_str());
    assert_eq!(notice["message_reference"]["message_id"], newer.as_str());
    let pins_update = bob.gateway.dispatch("CHANNEL_PINS_UPDATE").await["d"].clone();
    assert_eq!(pins_update["channel_id"], channel.as_str());
    assert_eq!(pins_update["guild_id"], guild_id.as_str());
    let first_pin_time = pins_update["last_pin_timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    // Pinning again changes nothing; a notice cannot be pinned.
    assert_eq!(put(&server, &pin(&newer), &owner.token).await.status, 204);
    let notice_id = notice["id"].as_str().unwrap();
    assert_code(
        &put(&server, &pin(notice_id), &owner.token).await,
        400,
        50021,
    );
    assert_code(&put(&server, &pin("12345"), &owner.token).await, 404, 10008);

    // The older message pinned later comes first: pins are ordered by when they were pinned.
    assert_eq!(put(&server, &pin(&older), &owner.token).await.status, 204);
    let second_pin = dispatches_until(&mut bob.gateway, "CHANNEL_PINS_UPDATE", &channel).await;
    let second_pin_time = second_pin.last().unwrap()["d"]["last_pin_timestamp"].clone();
    assert!(second_pin_time.as_str().unwrap() > first_pin_time.as_str());
    let listed = get(
        &server,
        &format!("/api/v9/channels/{channel}/pins"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(ids(&listed.body), vec![older.clone(), newer.clone()]);
    assert_eq!(listed.body[0]["pinned"], true);
    let paged = get(
        &server,
        &format!("/api/v9/channels/{channel}/messages/pins"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(paged.status, 200, "{:?}", paged.body);
    assert_eq!(paged.body["has_more"], false);
    assert_eq!(paged.body["items"][0]["message"]["id"], older.as_str());
    assert_eq!(paged.body["items"][1]["pinned_at"], first_pin_time.as_str());
    let limited = get(
        &server,
        &format!("/api/v9/channels/{channel}/messages/pins?limit=1"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(limited.body["has_more"], true);
    assert_eq!(limited.body["items"].as_array().unwrap().len(), 1);
    let channel_now = get(
        &server,
        &format!("/api/v9/channels/{channel}"),
        Some(&bob.token),
    )
    .await;
    assert!(channel_now.body["last_pin_timestamp"].is_string());

    // The instance allows two.
    let full = put(&server, &pin(&third), &owner.token).await;
    assert_code(&full, 400, 30003);

    // Pin notices are system messages: not to be edited or replied to.
    assert_code(
        &patch(
            &server,
            &message(&channel, notice_id),
            &owner.token,
            json!({ "content": "x" }),
        )
        .await,
        400,
        50021,
    );
    let reply = send(
        &server,
        &bob.token,
        &channel,
        json!({ "content": "x", "message_reference": { "message_id": notice_id } }),
    )
    .await;
    assert_form_error(
        &reply,
        "message_reference",
        "REPLIES_CANNOT_REPLY_TO_SYSTEM_MESSAGE",
    );
    let pages = format!("/api/v9/channels/{channel}/messages/pins");
    let before = get(
        &server,
        &format!("{pages}?before={}", second_pin_time.as_str().unwrap()),
        Some(&bob.token),
    )
    .await;
    assert_eq!(
        before.body["items"].as_array().unwrap().len(),
        1,
        "{:?}",
        before.body
    );
    assert_eq!(before.body["items"][0]["message"]["id"], newer.as_str());
    assert_form_error(
        &get(
            &server,
            &format!("{pages}?before=someday"),
            Some(&bob.token),
        )
        .await,
        "before",
        "DATE_TYPE_PARSE",
    );
    assert_form_error(
        &get(&server, &format!("{pages}?limit=51"), Some(&bob.token)).await,
        "limit",
        "NUMBER_TYPE_MAX",
    );

    // Unpinning: the channel's last pin time falls back to the pin that is left, then to none.
    assert_eq!(
        delete(&server, &pin(&older), &owner.token).await.status,
        204
    );
    let unpinned = dispatches_until(&mut bob.gateway, "CHANNEL_PINS_UPDATE", &channel).await;
    let update = unpinned
        .iter()
        .rev()
        .find(|p| p["t"] == "MESSAGE_UPDATE")
        .unwrap();
    assert_eq!(update["d"]["id"], older.as_str());
    assert_eq!(update["d"]["pinned"], false);
    assert_eq!(
        unpinned.last().unwrap()["d"]["last_pin_timestamp"],
        first_pin_time.as_str()
    );
    assert_eq!(
        delete(
            &server,
            &format!("/api/v9/channels/{channel}/messages/pins/{newer}"),
            &owner.token
        )
        .await
        .status,
        204
    );
    let last = bob.gateway.dispatch("CHANNEL_PINS_UPDATE").await["d"].clone();
    assert!(last["last_pin_timestamp"].is_null(), "{last:?}");
    let listed = get(
        &server,
        &format!("/api/v9/channels/{channel}/pins"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(listed.body, json!([]));
    assert_code(&delete(&server, &pin(&older), &bob.token).await, 403, 50013);
}

#[actix_web::test]
async fn acks_reach_only_the_reader() {
    let server = TestServer::start().await;
    let Chat {
        mut owner,
        mut members,
        channel,
        ..
    } = chat(&server, &["bob"]).await;
    let bob = &mut members[0];
    let first = say(&server, &owner.token, &channel, "read me").await;
    let second = say(&server, &owner.token, &channel, "and me").await;

    let acked = post(
        &server,
        &format!("{}/ack", message(&channel, &first)),
        Some(&bob.token),
        json!({ "token": null }),
    )
    .await;
    assert_eq!(acked.status, 200, "{:?}", acked.body);
    assert_eq!(acked.body, json!({ "token": null }));
    let ack = bob.gateway.dispatch("MESSAGE_ACK").await["d"].clone();
    assert_eq!(ack["channel_id"], channel.as_str());
    assert_eq!(ack["message_id"], first.as_str());
    assert!(ack["version"].is_number());
    let stored = format!(
        "read_states WHERE user_id = {} AND channel_id = {channel} AND last_message_id = {first}",
        bob.id
    );
    assert_eq!(server.count(&stored).await, 1);

    // The owner acks with no body at all; their ack is the first the owner hears, so Bob's
    // never reached them.
    let bare = request(
        &server,
        Method::POST,
        &format!("{}/ack", message(&channel, &second)),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(bare.status, 200, "{:?}", bare.body);
    let own = owner.gateway.dispatch("MESSAGE_ACK").await["d"].clone();
    assert_eq!(own["message_id"], second.as_str());

    // Marking unread tells the reader's other sessions how many mentions to show.
    let manual = post(
        &server,
        &format!("{}/ack", message(&channel, &first)),
        Some(&bob.token),
        json!({ "manual": true, "mention_count": 1 }),
    )
    .await;
    assert_eq!(manual.status, 200);
    let ack = bob.gateway.dispatch("MESSAGE_ACK").await["d"].clone();
    assert_eq!(
        (ack["manual"].clone(), ack["mention_count"].clone()),
        (json!(true), json!(1))
    );

    // Bulk: the channel is read, the unknown one skipped; READY shows the read state.
    let bulk = post(
        &server,
        "/api/v9/read-states/ack-bulk",
        Some(&bob.token),
        json!({ "read_states": [
            { "channel_id": channel, "message_id": second, "read_state_type": 0 },
            { "channel_id": "12345", "message_id": second },
        ] }),
    )
    .await;
    assert_eq!(bulk.status, 204, "{:?}", bulk.body);
    let ack = bob.gateway.dispatch("MESSAGE_ACK").await["d"].clone();
    assert_eq!(ack["message_id"], second.as_str());
    assert_eq!(
        server
            .count(&format!("read_states WHERE user_id = {}", bob.id))
            .await,
        1
    );
    let mut again = Gateway::connect(&server, JSON).await;
    let ready = again.identify(&bob.token).await;
    let entries = ready["d"]["read_state"]["entries"]
        .as_array()
        .unwrap()
        .clone();
    let entry = entries
        .iter()
        .find(|e| e["id"] == channel.as_str())
        .unwrap();
    assert_eq!(entry["last_message_id"], second.as_str());
    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({ "channel_id": channel, "message_id": second }))
        .collect();
    let too_many = post(
        &server,
        "/api/v9/read-states/ack-bulk",
        Some(&bob.token),
        json!({ "read_states": too_many }),
    )
    .await;
    assert_form_error(&too_many, "read_states", "BASE_TYPE_MAX_LENGTH");
    // A guild-event read state (type 1) is not kept, and nothing fails for it.
    let guild_events = post(
        &server,
        "/api/v9/read-states/ack-bulk",
        Some(&bob.token),
        json!({ "read_states": [{ "channel_id": channel, "message_id": first, "read_state_type": 1 }] }),
    )
    .await;
    assert_eq!(guild_events.status, 204);
    assert_eq!(
        server
            .count(&format!(
                "read_states WHERE user_id = {} AND last_message_id = {second}",
                bob.id
            ))
            .await,
        1
    );
    let mut broken = awc::Client::new()
        .post(server.url(&format!("{}/ack", message(&channel, &first))))
        .insert_header(("Authorization", bob.token.as_str()))
        .insert_header(("Content-Type", "application/json"))
        .send_body("{nope")
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    let broken: Value = serde_json::from_slice(&broken.body().await.unwrap()).unwrap();
    assert_eq!(broken["code"], 50109);
    let malformed = post(
        &server,
        "/api/v9/read-states/ack-bulk",
        Some(&bob.token),
        json!({ "read_states": [{ "channel_id": channel }] }),
    )
    .await;
    assert_form_error(&malformed, "read_states.0.message_id", "BASE_TYPE_REQUIRED");

    // Sending reads the channel up to one's own message.
    let own_message = say(&server, &bob.token, &channel, "mine").await;
    let own_state = format!(
        "read_states WHERE user_id = {} AND last_message_id = {own_message}",
        bob.id
    );
    assert_eq!(server.count(&own_state).await, 1);
}

#[actix_web::test]
async fn a_member_who_cannot_see_the_channel_hears_nothing_of_it() {
    let server = TestServer::start().await;
    let Chat {
        owner,
        mut members,
        guild_id,
        channel,
    } = chat(&server, &["bob", "carol"]).await;
    overwrite(&server, &owner.token, &channel, &members[1].id, 1 << 10).await;
    let other = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&owner.token),
        json!({ "name": "lobby", "type": 0 }),
    )
    .await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let lobby = other.body["id"].as_str().unwrap().to_string();

    // Everything that can happen to a message, in the hidden channel.
    let bob_token = members[0].token.clone();
    let hidden = say(&server, &owner.token, &channel, "secret").await;
    let reply = send(
        &server,
        &bob_token,
        &channel,
        json!({ "content": "ok", "message_reference": { "message_id": hidden } }),
    )
    .await;
    assert_eq!(reply.status, 200);
    patch(
        &server,
        &message(&channel, &hidden),
        &owner.token,
        json!({ "content": "secret!" }),
    )
    .await;
    put(
        &server,
        &format!("{}/reactions/{THUMBS_UP}/@me", message(&channel, &hidden)),
        &bob_token,
    )
    .await;
    delete(
        &server,
        &format!("{}/reactions/{THUMBS_UP}/@me", message(&channel, &hidden)),
        &bob_token,
    )
    .await;
    put(
        &server,
        &format!("/api/v9/channels/{channel}/pins/{hidden}"),
        &owner.token,
    )
    .await;
    delete(
        &server,
        &format!("/api/v9/channels/{channel}/pins/{hidden}"),
        &owner.token,
    )
    .await;
    delete(
        &server,
        &message(&channel, reply.body["id"].as_str().unwrap()),
        &bob_token,
    )
    .await;
    let doomed = [
        say(&server, &owner.token, &channel, "a").await,
        say(&server, &owner.token, &channel, "b").await,
    ];
    post(
        &server,
        &format!("{}/bulk-delete", messages(&channel)),
        Some(&owner.token),
        json!({ "messages": doomed }),
    )
    .await;

    // Bob heard it all; Carol heard only what came after, in the lobby.
    let bob_heard =
        dispatches_until(&mut members[0].gateway, "MESSAGE_DELETE_BULK", &channel).await;
    let names: Vec<&str> = bob_heard.iter().map(|p| p["t"].as_str().unwrap()).collect();
    for event in [
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "CHANNEL_PINS_UPDATE",
        "MESSAGE_DELETE",
    ] {
        assert!(names.contains(&event), "bob missed {event}: {names:?}");
    }
    say(&server, &owner.token, &lobby, "everyone welcome").await;
    let carol_heard = dispatches_until(&mut members[1].gateway, "MESSAGE_CREATE", &lobby).await;
    for payload in &carol_heard {
        assert_ne!(
            payload["d"]["channel_id"],
            channel.as_str(),
            "carol heard {payload:?}"
        );
    }

    // And every message route is closed to her.
    let carol = &members[1].token;
    assert_code(
        &get(&server, &messages(&channel), Some(carol)).await,
        403,
        50001,
    );
    assert_code(
        &send(&server, carol, &channel, json!({ "content": "hi" })).await,
        403,
        50001,
    );
    assert_code(
        &get(&server, &message(&channel, &hidden), Some(carol)).await,
        403,
        50001,
    );
    assert_code(
        &patch(
            &server,
            &message(&channel, &hidden),
            carol,
            json!({ "content": "x" }),
        )
        .await,
        403,
        50001,
    );
    assert_code(
        &delete(&server, &message(&channel, &hidden), carol).await,
        403,
        50001,
    );
    assert_code(
        &put(
            &server,
            &format!("{}/reactions/{THUMBS_UP}/@me", message(&channel, &hidden)),
            carol,
        )
        .await,
        403,
        50001,
    );
    assert_code(
        &get(
            &server,
            &format!("{}/reactions/{THUMBS_UP}", message(&channel, &hidden)),
            Some(carol),
        )
        .await,
        403,
        50001,
    );
    assert_code(
        &get(
            &server,
            &format!("/api/v9/channels/{channel}/pins"),
            Some(carol),
        )
        .await,
        403,
        50001,
    );
    assert_code(
        &put(
            &server,
            &format!("/api/v9/channels/{channel}/pins/{hidden}"),
            carol,
        )
        .await,
        403,
        50001,
    );
    assert_code(
        &post(
            &server,
            &format!("{}/ack", message(&channel, &hidden)),
            Some(carol),
            json!({}),
        )
        .await,
        403,
        50001,
    );
    assert_code(
        &post(
            &server,
            &format!("{}/bulk-delete", messages(&channel)),
            Some(carol),
            json!({ "messages": [hidden, hidden] }),
        )
        .await,
        403,
        50001,
    );
    // Her bulk ack of the hidden channel is skipped.
    let bulk = post(
        &server,
        "/api/v9/read-states/ack-bulk",
        Some(carol),
        json!({ "read_states": [{ "channel_id": channel, "message_id": hidden }] }),
    )
    .await;
    assert_eq!(bulk.status, 204);
    assert_eq!(
        server
            .count(&format!("read_states WHERE user_id = {}", members[1].id))
            .await,
        0
    );
}

#[actix_web::test]
async fn a_dm_works_the_same_between_its_recipients() {
    let server = TestServer::start().await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let outsider = person(&server, "eve").await;
    // A DM carries messages only between people who share a guild (or are friends).
    let account = |p: &Person| Account {
        token: p.token.clone(),
        id: p.id.clone(),
    };
    shared_guild(&server, &account(&alice), &[&account(&bob)]).await;
    let dm = crate::common::http::open_dm(&server, &account(&alice), &account(&bob)).await;

    let sent = send(
        &server,
        &alice.token,
        &dm,
        json!({ "content": format!("hi <@{}>", bob.id), "nonce": "dm-1" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert!(sent.body.get("guild_id").is_none() && sent.body.get("member").is_none());
    assert_eq!(ids(&sent.body["mentions"]), vec![bob.id.clone()]);
    let hello = sent.body["id"].as_str().unwrap().to_string();
    for gateway in [&mut bob.gateway, &mut alice.gateway] {
        let event = gateway.dispatch("MESSAGE_CREATE").await["d"].clone();
        assert_eq!(event["id"], hello.as_str());
        assert_eq!(event["nonce"], "dm-1");
        assert!(event.get("guild_id").is_none());
    }

    let reply = send(
        &server,
        &bob.token,
        &dm,
        json!({ "content": "hey", "message_reference": { "message_id": hello } }),
    )
    .await;
    assert_eq!(reply.body["referenced_message"]["id"], hello.as_str());
    let reply = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        alice.gateway.dispatch("MESSAGE_CREATE").await["d"]["id"],
        reply.as_str()
    );

    assert_eq!(
        put(
            &server,
            &format!("{}/reactions/{THUMBS_UP}/@me", message(&dm, &hello)),
            &bob.token
        )
        .await
        .status,
        204
    );
    let reaction = alice.gateway.dispatch("MESSAGE_REACTION_ADD").await["d"].clone();
    assert_eq!(reaction["user_id"], bob.id.as_str());
    assert!(reaction.get("guild_id").is_none() && reaction.get("member").is_none());

    let edited = patch(
        &server,
        &message(&dm, &reply),
        &bob.token,
        json!({ "content": "hey!" }),
    )
    .await;
    assert_eq!(edited.status, 200);
    assert_eq!(
        alice.gateway.dispatch("MESSAGE_UPDATE").await["d"]["content"],
        "hey!"
    );
    assert_code(
        &patch(
            &server,
            &message(&dm, &reply),
            &alice.token,
            json!({ "content": "no" }),
        )
        .await,
        403,
        50005,
    );

    // Anyone in a DM may pin.
    assert_eq!(
        put(
            &server,
            &format!("/api/v9/channels/{dm}/pins/{reply}"),
            &alice.token
        )
        .await
        .status,
        204
    );
    let pinned = bob.gateway.dispatch("CHANNEL_PINS_UPDATE").await["d"].clone();
    assert_eq!(pinned["channel_id"], dm.as_str());
    assert!(pinned.get("guild_id").is_none());

    // Nobody moderates a DM.
    assert_code(
        &delete(&server, &message(&dm, &reply), &alice.token).await,
        403,
        50003,
    );
    assert_code(
        &post(
            &server,
            &format!("{}/bulk-delete", messages(&dm)),
            Some(&alice.token),
            json!({ "messages": [hello, reply] }),
        )
        .await,
        403,
        50003,
    );
    assert_code(
        &delete(
            &server,
            &format!("{}/reactions/{THUMBS_UP}/{}", message(&dm, &hello), bob.id),
            &alice.token,
        )
        .await,
        403,
        50003,
    );
    assert_code(
        &delete(
            &server,
            &format!("{}/reactions", message(&dm, &hello)),
            &alice.token,
        )
        .await,
        403,
        50003,
    );
    assert_code(
        &delete(
            &server,
            &format!("{}/reactions/{THUMBS_UP}", message(&dm, &hello)),
            &alice.token,
        )
        .await,
        403,
        50003,
    );
    assert_eq!(
        delete(&server, &message(&dm, &reply), &bob.token)
            .await
            .status,
        204
    );
    let gone = alice.gateway.dispatch("MESSAGE_DELETE").await["d"].clone();
    assert_eq!(gone, json!({ "id": reply, "channel_id": dm }));

    let history = get(&server, &messages(&dm), Some(&bob.token)).await;
    let contents: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        vec!["", &format!("hi <@{}>", bob.id)],
        "the pin notice, then the greeting"
    );

    // Only the recipients are in it.
    assert_code(
        &get(&server, &messages(&dm), Some(&outsider.token)).await,
        403,
        50001,
    );
    assert_code(
        &send(&server, &outsider.token, &dm, json!({ "content": "hi" })).await,
        403,
        50001,
    );

    let acked = post(
        &server,
        &format!("{}/ack", message(&dm, &hello)),
        Some(&bob.token),
        json!({}),
    )
    .await;
    assert_eq!(acked.status, 200);
    assert_eq!(
        bob.gateway.dispatch("MESSAGE_ACK").await["d"]["channel_id"],
        dm.as_str()
    );
}

/// What the server's pool has run so far (`spacebar_db_statements_total` at `/metrics`).
async fn statements_run(server: &TestServer) -> u64 {
    let metrics = get(server, "/metrics", None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|line| line.strip_prefix("spacebar_db_statements_total "))
        .unwrap_or_else(|| panic!("no statement counter in {text}"))
        .parse()
        .unwrap()
}

/// The statements one send costs the database, with nothing else running meanwhile; the
/// answer waits for its MESSAGE_CREATE, so the event's delivery has settled too.
async fn statements_of_send(server: &TestServer, chat: &mut Chat, body: Value) -> (u64, String) {
    let before = statements_run(server).await;
    let sent = send(server, &chat.owner.token, &chat.channel, body).await;
    let after = statements_run(server).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    dispatches_until(&mut chat.owner.gateway, "MESSAGE_CREATE", &chat.channel).await;
    (
        after - before,
        sent.body["id"].as_str().unwrap().to_string(),
    )
}

#[actix_web::test]
async fn a_plain_send_costs_at_most_four_statements() {
    let server = TestServer::start().await;
    let mut chat = chat(&server, &["bob"]).await;
    // The first send warms what is loaded once (the guild's actor, prepared statements).
    statements_of_send(&server, &mut chat, json!({ "content": "warm" })).await;
    let bobs = say(&server, &chat.members[0].token, &chat.channel, "from bob").await;
    dispatches_until(&mut chat.owner.gateway, "MESSAGE_CREATE", &chat.channel).await;

    let (plain, mine) = statements_of_send(&server, &mut chat, json!({ "content": "hello" })).await;
    println!("statements for a plain send: {plain}");
    let bob = chat.members[0].id.clone();
    let (mention, _) = statements_of_send(
        &server,
        &mut chat,
        json!({ "content": format!("hi <@{bob}>") }),
    )
    .await;
    println!("statements for a send with a mention: {mention}");
    for (whose, replied) in [("own", mine), ("another's", bobs)] {
        let (reply, _) = statements_of_send(
            &server,
            &mut chat,
            json!({ "content": "re", "message_reference": { "message_id": replied } }),
        )
        .await;
        println!("statements for a reply to {whose} message: {reply}");
    }
    assert!(plain <= 4, "a plain send ran {plain} statements");
}
