//! Gateway op 8 REQUEST_GUILD_MEMBERS over real WebSockets: by name prefix (username or
//! nickname, ignoring case, `limit` kept), the whole list in chunks of 1,000, by user id with
//! `not_found`, the nonce echoed, presences when asked for, nothing for a guild the asker is not in,
//! Discord's RATE_LIMITED for asking for everyone twice, and 4002 for malformed requests.
//! And op 14 / op 37 member lists: a SYNC of the asked rows, then INSERT / UPDATE / DELETE as
//! members join, come online, get a hoisted role and leave, checked by applying them as a
//! client does and comparing with a fresh SYNC.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::gateway::{Event, Gateway};
use crate::common::guild::text_channel;
use crate::common::http::{account, Account};
use crate::common::http::{patch, post, request as http};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";

/// A guild of `owner`'s: (guild id, an invite code to it).
async fn guild(server: &TestServer, owner: &Account) -> (String, String) {
    let created = post(
        server,
        &format!("{V9}/guilds"),
        Some(&owner.token),
        json!({ "name": "Members" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let guild_id = created.body["id"].as_str().unwrap().to_string();
    let channel = created.body["system_channel_id"].as_str().unwrap();
    let invite = post(
        server,
        &format!("{V9}/channels/{channel}/invites"),
        Some(&owner.token),
        json!({ "max_age": 0, "unique": true }),
    )
    .await;
    assert_eq!(invite.status, 200, "{:?}", invite.body);
    (guild_id, invite.body["code"].as_str().unwrap().to_string())
}

/// Registers `name` and joins them through `code`.
async fn member(server: &TestServer, code: &str, name: &str) -> Account {
    let account = account(server, name).await;
    let joined = post(
        server,
        &format!("{V9}/invites/{code}"),
        Some(&account.token),
        json!({}),
    )
    .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    account
}

/// A gateway identified as `token`, past READY_SUPPLEMENTAL.
async fn gateway(server: &TestServer, token: &str) -> Gateway {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.identify(token).await;
    gateway.dispatch("READY_SUPPLEMENTAL").await;
    gateway
}

async fn request(gateway: &mut Gateway, d: Value) -> Value {
    gateway.send(json!({ "op": 8, "d": d })).await;
    gateway.dispatch("GUILD_MEMBERS_CHUNK").await["d"].clone()
}

/// The user ids of a chunk's members, sorted.
fn ids(chunk: &Value) -> Vec<String> {
    let mut ids: Vec<String> = chunk["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted<'a>(ids: impl IntoIterator<Item = &'a Account>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().map(|a| a.id.clone()).collect();
    ids.sort();
    ids
}

/// A guild of five: owner, Alice, alberto, Bob (nicknamed "ALfie") and carol.
struct Fixture {
    server: TestServer,
    owner: Account,
    alice: Account,
    alberto: Account,
    bob: Account,
    carol: Account,
    guild_id: String,
}

async fn fixture() -> Fixture {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, code) = guild(&server, &owner).await;
    let alice = member(&server, &code, "Alice").await;
    let alberto = member(&server, &code, "alberto").await;
    let bob = member(&server, &code, "Bob").await;
    let carol = member(&server, &code, "carol").await;
    let nicked = patch(
        &server,
        &format!("{V9}/guilds/{guild_id}/members/@me"),
        &bob.token,
        json!({ "nick": "ALfie" }),
    )
    .await;
    assert_eq!(nicked.status, 200, "{:?}", nicked.body);
    Fixture {
        server,
        owner,
        alice,
        alberto,
        bob,
        carol,
        guild_id,
    }
}

#[actix_web::test]
async fn a_query_is_a_case_insensitive_prefix_of_username_or_nickname() {
    let f = fixture().await;
    let mut gateway = gateway(&f.server, &f.carol.token).await;
    let guild_id = f.guild_id.as_str();

    let chunk = request(
        &mut gateway,
        json!({ "guild_id": guild_id, "query": "aL", "limit": 10, "nonce": "prefix" }),
    )
    .await;
    assert_eq!(
        ids(&chunk),
        sorted([&f.alice, &f.alberto, &f.bob]),
        "{chunk}"
    );
    assert_eq!(chunk["guild_id"], guild_id);
    assert_eq!(
        (&chunk["chunk_index"], &chunk["chunk_count"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(chunk["nonce"], "prefix");
    assert!(chunk.get("presences").is_none(), "not asked for: {chunk}");
    assert_eq!(chunk["not_found"], json!([]));
    let bob = chunk["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == f.bob.id.as_str())
        .unwrap();
    assert_eq!(bob["nick"], "ALfie");
    assert_eq!(bob["user"]["username"], "Bob");
    for field in ["roles", "joined_at", "flags", "id"] {
        assert!(!bob[field].is_null(), "member without {field}: {bob}");
    }

    // `limit` is kept: two of the three, in a stable order (by id).
    let limited = request(
        &mut gateway,
        json!({ "guild_id": guild_id, "query": "AL", "limit": 2 }),
    )
    .await;
    assert_eq!(limited["members"].as_array().unwrap().len(), 2, "{limited}");
    assert!(
        limited.get("nonce").is_none(),
        "no nonce was sent: {limited}"
    );

    // A username prefix only someone's username has; LIKE's wildcards match themselves only.
    let carol = request(
        &mut gateway,
        json!({ "guild_id": guild_id, "query": "CAR", "limit": 100 }),
    )
    .await;
    assert_eq!(ids(&carol), sorted([&f.carol]));
    for wildcard in ["%", "_", "a%", "\\"] {
        let none = request(
            &mut gateway,
            json!({ "guild_id": guild_id, "query": wildcard, "limit": 100 }),
        )
        .await;
        assert_eq!(none["members"], json!([]), "{wildcard:?}: {none}");
        assert_eq!(none["chunk_count"], 1);
    }

    // An empty query with a limit: that many members; a nonce over 32 bytes is dropped.
    let some = request(
        &mut gateway,
        json!({ "guild_id": guild_id, "query": "", "limit": 3, "nonce": "n".repeat(33) }),
    )
    .await;
    assert_eq!(some["members"].as_array().unwrap().len(), 3, "{some}");
    assert!(some.get("nonce").is_none(), "{some}");
}

#[actix_web::test]
async fn user_ids_answer_with_members_and_not_found() {
    let f = fixture().await;
    let outsider = account(&f.server, "outsider").await;
    let mut gateway = gateway(&f.server, &f.alice.token).await;
    // Carol is online (and idle); the owner is not.
    let mut carol = crate::gateway_members::gateway(&f.server, &f.carol.token).await;
    let idle = json!({ "status": "idle", "since": 0, "activities": [], "afk": true });
    carol.send(json!({ "op": 3, "d": idle })).await;
    while gateway.dispatch("PRESENCE_UPDATE").await["d"]["status"] != "idle" {}

    let chunk = request(
        &mut gateway,
        json!({
            "guild_id": f.guild_id,
            "user_ids": [f.owner.id, outsider.id, "1234", f.carol.id],
            "presences": true,
            "nonce": "by-id",
        }),
    )
    .await;
    assert_eq!(ids(&chunk), sorted([&f.owner, &f.carol]), "{chunk}");
    assert_eq!(chunk["not_found"], json!([outsider.id, "1234"]));
    assert_eq!(chunk["nonce"], "by-id");
    let presences = chunk["presences"].as_array().unwrap();
    assert_eq!(presences.len(), 1, "only Carol is online: {chunk}");
    assert_eq!(presences[0]["user"]["id"], f.carol.id.as_str());
    assert_eq!(presences[0]["status"], "idle");

    // One id, as a bare snowflake; and a limit sent alongside (discord.py does) is ignored.
    let one = request(
        &mut gateway,
        json!({ "guild_id": f.guild_id, "user_ids": f.bob.id, "limit": 1 }),
    )
    .await;
    assert_eq!(ids(&one), sorted([&f.bob]));
    assert_eq!(one["not_found"], json!([]));
}

#[actix_web::test]
async fn everyone_comes_in_chunks_of_a_thousand_and_twice_is_rate_limited() {
    let f = fixture().await;
    // 1,000 more members, behind the API's back.
    f.server
        .sql(
            "INSERT INTO users (id, username, discriminator) \
             SELECT 9000000000 + n, 'filler' || n, '0001' FROM generate_series(1, 1000) AS n",
        )
        .await;
    f.server
        .sql(&format!(
            "INSERT INTO members (guild_id, user_id) \
             SELECT {}, 9000000000 + n FROM generate_series(1, 1000) AS n",
            f.guild_id
        ))
        .await;
    let mut gateway = gateway(&f.server, &f.bob.token).await;
    gateway
        .send(json!({ "op": 8, "d": { "guild_id": f.guild_id, "query": "", "limit": 0, "nonce": "all" } }))
        .await;
    let first = gateway.dispatch("GUILD_MEMBERS_CHUNK").await;
    let second = gateway.dispatch("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(
        second["s"].as_u64().unwrap(),
        first["s"].as_u64().unwrap() + 1,
        "chunks are sequenced dispatches"
    );
    let (first, second) = (&first["d"], &second["d"]);
    assert_eq!(first["members"].as_array().unwrap().len(), 1000);
    assert_eq!(second["members"].as_array().unwrap().len(), 5);
    for (index, chunk) in [first, second].into_iter().enumerate() {
        assert_eq!(chunk["chunk_index"], index);
        assert_eq!(chunk["chunk_count"], 2);
        assert_eq!(chunk["nonce"], "all");
        assert_eq!(chunk["guild_id"], f.guild_id.as_str());
    }
    let everyone: BTreeSet<String> = ids(first).into_iter().chain(ids(second)).collect();
    assert_eq!(everyone.len(), 1005, "every member exactly once");
    for account in [&f.owner, &f.alice, &f.alberto, &f.bob, &f.carol] {
        assert!(everyone.contains(&account.id));
    }

    // Asking for everyone again within 30 seconds: RATE_LIMITED, as Discord answers.
    gateway
        .send(json!({ "op": 8, "d": { "guild_id": f.guild_id, "query": "", "limit": 0, "nonce": "again" } }))
        .await;
    let limited = gateway.dispatch("RATE_LIMITED").await["d"].clone();
    assert_eq!(limited["opcode"], 8);
    let retry_after = limited["retry_after"].as_f64().unwrap();
    assert!(retry_after > 0.0 && retry_after <= 30.0, "{limited}");
    assert_eq!(
        limited["meta"],
        json!({ "guild_id": f.guild_id, "nonce": "again" })
    );
    // Other requests are not limited.
    let some = request(
        &mut gateway,
        json!({ "guild_id": f.guild_id, "query": "filler1", "limit": 100 }),
    )
    .await;
    assert_eq!(some["members"].as_array().unwrap().len(), 100, "{some}");
}

#[actix_web::test]
async fn a_guild_the_asker_is_not_in_gets_no_answer() {
    let f = fixture().await;
    let outsider = account(&f.server, "outsider").await;
    let (own_guild, _) = guild(&f.server, &outsider).await;
    let mut gateway = gateway(&f.server, &outsider.token).await;

    for d in [
        json!({ "guild_id": f.guild_id, "query": "", "limit": 0, "nonce": "theirs" }),
        json!({ "guild_id": f.guild_id, "user_ids": [f.owner.id], "nonce": "theirs" }),
        json!({ "guild_id": "4242424242", "query": "a", "limit": 5, "nonce": "nowhere" }),
    ] {
        gateway.send(json!({ "op": 8, "d": d })).await;
    }
    gateway.send(json!({ "op": 1, "d": null })).await;
    let next = gateway.payload().await;
    assert_eq!(next["op"], 11, "only the heartbeat ACK: {next}");

    // Requests are answered in order: the first chunk after these is the own guild's.
    gateway
        .send(json!({ "op": 8, "d": { "guild_id": f.guild_id, "query": "", "limit": 5, "nonce": "theirs" } }))
        .await;
    gateway
        .send(json!({ "op": 8, "d": { "guild_id": own_guild, "query": "", "limit": 5, "nonce": "mine" } }))
        .await;
    let chunk = gateway.dispatch("GUILD_MEMBERS_CHUNK").await["d"].clone();
    assert_eq!(chunk["nonce"], "mine", "{chunk}");
    assert_eq!(ids(&chunk), sorted([&outsider]));
}

#[actix_web::test]
async fn listing_members_needs_the_guild_members_intent_for_bots() {
    let f = fixture().await;
    let (app_id, bot_token) =
        crate::bots::application_with_bot(&f.server, &f.owner.token, "Lister").await;
    let added = crate::bots::authorize(&f.server, &f.owner.token, &app_id, &f.guild_id, "0").await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let bot_token = format!("Bot {bot_token}");

    // IDENTIFY with GUILDS | GUILD_MESSAGES only: an empty query is ignored, with any limit.
    let mut without = gateway(&f.server, &bot_token).await;
    for limit in [0, 10] {
        without
            .send(json!({ "op": 8, "d": { "guild_id": f.guild_id, "query": "", "limit": limit } }))
            .await;
    }
    without.send(json!({ "op": 1, "d": null })).await;
    let next = without.payload().await;
    assert_eq!(next["op"], 11, "only the heartbeat ACK: {next}");
    // A prefix or user ids need no intent.
    let prefix = request(
        &mut without,
        json!({ "guild_id": f.guild_id, "query": "car", "limit": 5 }),
    )
    .await;
    assert_eq!(ids(&prefix), sorted([&f.carol]));
    let by_id = request(
        &mut without,
        json!({ "guild_id": f.guild_id, "user_ids": [f.alice.id] }),
    )
    .await;
    assert_eq!(ids(&by_id), sorted([&f.alice]));

    // With GUILD_MEMBERS (which its application is allowed): everyone, the bot included.
    f.server
        .sql(&format!(
            "UPDATE applications SET flags = {} WHERE id = {app_id}",
            1 << 14
        ))
        .await;
    let mut with = Gateway::connect(&f.server, JSON).await;
    with.send(json!({
        "op": 2,
        "d": { "token": bot_token, "properties": {}, "intents": 1 | 2 | 512 },
    }))
    .await;
    with.dispatch("READY_SUPPLEMENTAL").await;
    let everyone = request(
        &mut with,
        json!({ "guild_id": f.guild_id, "query": "", "limit": 0 }),
    )
    .await;
    assert_eq!(
        everyone["members"].as_array().unwrap().len(),
        6,
        "{everyone}"
    );
    assert!(ids(&everyone).contains(&app_id));
}

#[actix_web::test]
async fn chunks_are_replayed_on_resume() {
    let f = fixture().await;
    let mut gateway = Gateway::connect(&f.server, JSON).await;
    let ready = gateway.identify(&f.alice.token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_string();
    let before = gateway.dispatch("READY_SUPPLEMENTAL").await["s"]
        .as_u64()
        .unwrap();
    gateway
        .send(json!({ "op": 8, "d": { "guild_id": f.guild_id, "user_ids": [f.alice.id], "nonce": "kept" } }))
        .await;
    let chunk = gateway.dispatch("GUILD_MEMBERS_CHUNK").await;
    drop(gateway);

    let mut resumed = Gateway::connect(&f.server, JSON).await;
    resumed
        .send(json!({ "op": 6, "d": { "token": f.alice.token, "session_id": session_id, "seq": before } }))
        .await;
    let replayed = resumed.dispatch("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(replayed, chunk);
    resumed.dispatch("RESUMED").await;
}

#[actix_web::test]
async fn malformed_requests_close_with_4002() {
    let f = fixture().await;
    let many: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    for d in [
        json!({ "query": "", "limit": 0 }),
        json!({ "guild_id": f.guild_id }),
        json!({ "guild_id": f.guild_id, "limit": 10 }),
        json!({ "guild_id": f.guild_id, "query": "a" }),
        json!({ "guild_id": f.guild_id, "query": "", "limit": 0, "user_ids": [f.owner.id] }),
        json!({ "guild_id": f.guild_id, "user_ids": many }),
        json!({ "guild_id": "not a snowflake", "query": "", "limit": 0 }),
        json!({ "guild_id": f.guild_id, "query": 5, "limit": 0 }),
        json!({ "guild_id": f.guild_id, "query": "", "limit": -1 }),
        json!(null),
    ] {
        let mut gateway = gateway(&f.server, &f.alice.token).await;
        gateway.send(json!({ "op": 8, "d": d })).await;
        assert_eq!(gateway.closed().await, Some(4002), "{d}");
    }

    // Before IDENTIFY: 4003.
    let mut early = Gateway::connect(&f.server, JSON).await;
    early
        .send(json!({ "op": 8, "d": { "guild_id": f.guild_id, "query": "", "limit": 0 } }))
        .await;
    assert!(matches!(early.next().await, Event::Closed(Some(4003))));
}

/// A client's copy of a member list: the rows, as GUILD_MEMBER_LIST_UPDATE ops leave them.
#[derive(Default)]
pub struct Sidebar {
    rows: Vec<Value>,
    ops: Vec<String>,
}

impl Sidebar {
    fn apply(&mut self, d: &Value) {
        for op in d["ops"].as_array().unwrap() {
            let index = |key: &str| op[key].as_u64().unwrap() as usize;
            self.ops.push(op["op"].as_str().unwrap().to_string());
            match op["op"].as_str().unwrap() {
                "SYNC" => {
                    let start = op["range"][0].as_u64().unwrap() as usize;
                    let items = op["items"].as_array().unwrap();
                    self.rows.truncate(start);
                    self.rows.extend(items.iter().cloned());
                }
                "INSERT" => self.rows.insert(index("index"), op["item"].clone()),
                "UPDATE" => self.rows[index("index")] = op["item"].clone(),
                "DELETE" => {
                    self.rows.remove(index("index"));
                }
                other => panic!("unexpected op {other}"),
            }
        }
    }

    /// The rows as `group:count` and `username:status`.
    pub fn summary(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|row| match (&row["group"], &row["member"]) {
                (Value::Object(group), _) => format!("{}:{}", group["id"], group["count"]),
                (_, Value::Object(member)) => format!(
                    "{}:{}",
                    member["user"]["username"].as_str().unwrap(),
                    member["presence"]["status"].as_str().unwrap()
                ),
                _ => panic!("not a row: {row}"),
            })
            .map(|row| row.replace('"', ""))
            .collect()
    }
}

/// Watches rows 0-99 of the channel's member list; the SYNC that answers.
pub async fn watch(gateway: &mut Gateway, guild_id: &str, channel_id: &str) -> Sidebar {
    let d = json!({ "guild_id": guild_id, "typing": true, "channels": { channel_id: [[0, 99]] } });
    gateway.send(json!({ "op": 14, "d": d })).await;
    let update = gateway.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    assert_eq!(update["d"]["guild_id"], guild_id);
    assert_eq!(update["d"]["id"], "everyone");
    let mut sidebar = Sidebar::default();
    sidebar.apply(&update["d"]);
    sidebar
}

/// Applies the next update; the counts it carries.
pub async fn next_update(gateway: &mut Gateway, sidebar: &mut Sidebar) -> (u64, u64) {
    let update = gateway.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    sidebar.apply(&update["d"]);
    let count = |key: &str| update["d"][key].as_u64().unwrap();
    (count("member_count"), count("online_count"))
}

#[actix_web::test]
async fn member_lists_are_synced_then_kept_live_with_inserts_updates_and_deletes() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, code) = guild(&server, &owner).await;
    let alice = member(&server, &code, "alice").await;
    let channel_id = text_channel(&server, &alice.token, &guild_id).await;
    let mut alice_gateway = gateway(&server, &alice.token).await;

    let mut sidebar = watch(&mut alice_gateway, &guild_id, &channel_id).await;
    assert_eq!(
        sidebar.summary(),
        ["online:1", "alice:online", "offline:1", "owner:offline"]
    );

    // Bob joins: a row appears among the offline members.
    let bob = member(&server, &code, "bob").await;
    assert_eq!(next_update(&mut alice_gateway, &mut sidebar).await, (3, 1));
    assert_eq!(
        sidebar.summary(),
        [
            "online:1",
            "alice:online",
            "offline:2",
            "bob:offline",
            "owner:offline"
        ]
    );
    assert!(
        sidebar.ops.contains(&"INSERT".to_string()),
        "{:?}",
        sidebar.ops
    );

    // Bob comes online: he moves up.
    let mut bob_gateway = gateway(&server, &bob.token).await;
    assert_eq!(next_update(&mut alice_gateway, &mut sidebar).await, (3, 2));
    assert_eq!(
        sidebar.summary(),
        [
            "online:2",
            "alice:online",
            "bob:online",
            "offline:1",
            "owner:offline"
        ]
    );

    // A hoisted role for Alice: she gets a group of her own, above "online".
    let role = post(
        &server,
        &format!("{V9}/guilds/{guild_id}/roles"),
        Some(&owner.token),
        json!({ "name": "Mods", "hoist": true }),
    )
    .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    let role_id = role.body["id"].as_str().unwrap();
    let mods = format!("{role_id}:1");
    let given = http(
        &server,
        awc::http::Method::PUT,
        &format!(
            "{V9}/guilds/{guild_id}/members/{}/roles/{role_id}",
            alice.id
        ),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(given.status, 204, "{:?}", given.body);
    next_update(&mut alice_gateway, &mut sidebar).await;
    assert_eq!(
        sidebar.summary(),
        [
            mods.as_str(),
            "alice:online",
            "online:1",
            "bob:online",
            "offline:1",
            "owner:offline"
        ]
    );

    // Bob leaves: his row goes.
    bob_gateway.close_with(1000).await;
    next_update(&mut alice_gateway, &mut sidebar).await;
    let left = http(
        &server,
        awc::http::Method::DELETE,
        &format!("{V9}/users/@me/guilds/{guild_id}"),
        Some(&bob.token),
        None,
    )
    .await;
    assert_eq!(left.status, 204, "{:?}", left.body);
    assert_eq!(next_update(&mut alice_gateway, &mut sidebar).await, (2, 1));
    assert!(
        sidebar.ops.contains(&"DELETE".to_string()),
        "{:?}",
        sidebar.ops
    );
    let expected = [mods.as_str(), "alice:online", "offline:1", "owner:offline"];
    assert_eq!(sidebar.summary(), expected);

    // The copy kept by ops is exactly what a fresh SYNC says.
    let mut fresh = gateway(&server, &alice.token).await;
    let synced = watch(&mut fresh, &guild_id, &channel_id).await;
    assert_eq!(synced.rows, sidebar.rows);
}

#[actix_web::test]
async fn bulk_member_list_requests_are_answered_and_malformed_ones_close_with_4002() {
    let f = fixture().await;
    let channel_id = text_channel(&f.server, &f.alice.token, &f.guild_id).await;
    let mut gateway = gateway(&f.server, &f.alice.token).await;
    let d = json!({ "subscriptions": { &f.guild_id: { "typing": true, "channels": { &channel_id: [[0, 1]] } } } });
    gateway.send(json!({ "op": 37, "d": d })).await;
    let update = gateway.dispatch("GUILD_MEMBER_LIST_UPDATE").await;
    let ops = update["d"]["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["range"], json!([0, 1]));
    // Only the rows asked for: the "online" group and the one member online (Alice).
    assert_eq!(ops[0]["items"].as_array().unwrap().len(), 2, "{update}");
    assert_eq!(update["d"]["member_count"], 5);

    for (op, d) in [
        (14, json!({ "channels": { &channel_id: [[0, 99]] } })),
        (
            14,
            json!({ "guild_id": f.guild_id, "channels": { &channel_id: [[99, 0]] } }),
        ),
        (
            14,
            json!({ "guild_id": f.guild_id, "channels": { "general": [[0, 99]] } }),
        ),
        (37, json!({ "subscriptions": [f.guild_id] })),
    ] {
        let mut gateway = crate::gateway_members::gateway(&f.server, &f.alice.token).await;
        gateway.send(json!({ "op": op, "d": d })).await;
        assert_eq!(gateway.closed().await, Some(4002), "{d}");
    }
}
