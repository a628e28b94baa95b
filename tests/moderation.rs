//! Roles, members, bans and invites over real HTTP and gateways: invites that expire and run
//! out, joining through one, the role hierarchy (ADMINISTRATOR included), nicknames, kicks and
//! bans with what each member's gateway hears.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use awc::http::Method;
use serde_json::{json, Value};

use crate::common::gateway::{Event, Gateway};
use crate::common::http::{account, Account};
use crate::common::http::{assert_form_error, get, patch, post, request, Response};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";

const KICK_MEMBERS: u64 = 1 << 1;
const BAN_MEMBERS: u64 = 1 << 2;
const ADMINISTRATOR: u64 = 1 << 3;
const MANAGE_CHANNELS: u64 = 1 << 4;
const CHANGE_NICKNAME: u64 = 1 << 26;
const MANAGE_NICKNAMES: u64 = 1 << 27;
const MANAGE_ROLES: u64 = 1 << 28;
const MODERATE_MEMBERS: u64 = 1 << 40;

/// A guild owned by `owner`: (guild id, its text channel's id).
async fn guild(server: &TestServer, owner: &Account) -> (String, String) {
    let created = post(
        server,
        &format!("{V9}/guilds"),
        Some(&owner.token),
        json!({ "name": "Moderated" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let channel = created.body["system_channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    (id, channel)
}

async fn create_invite(server: &TestServer, token: &str, channel: &str, body: Value) -> Response {
    post(
        server,
        &format!("{V9}/channels/{channel}/invites"),
        Some(token),
        body,
    )
    .await
}

/// An unlimited invite code to `channel`.
async fn invite_code(server: &TestServer, token: &str, channel: &str) -> String {
    let invite = create_invite(
        server,
        token,
        channel,
        json!({ "max_age": 0, "unique": true }),
    )
    .await;
    assert_eq!(invite.status, 200, "{:?}", invite.body);
    invite.body["code"].as_str().unwrap().to_string()
}

async fn accept(server: &TestServer, token: &str, code: &str) -> Response {
    post(
        server,
        &format!("{V9}/invites/{code}"),
        Some(token),
        json!({}),
    )
    .await
}

/// Registers `name` and joins them through `code`.
async fn member(server: &TestServer, code: &str, name: &str) -> Account {
    let account = account(server, name).await;
    let joined = accept(server, &account.token, code).await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    account
}

async fn put(server: &TestServer, path: &str, token: &str, body: Option<Value>) -> Response {
    request(server, Method::PUT, path, Some(token), body).await
}

async fn delete(server: &TestServer, path: &str, token: &str) -> Response {
    request(server, Method::DELETE, path, Some(token), None).await
}

/// A role made by `token`: its id.
async fn role(server: &TestServer, token: &str, guild: &str, body: Value) -> String {
    let role = post(
        server,
        &format!("{V9}/guilds/{guild}/roles"),
        Some(token),
        body,
    )
    .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    role.body["id"].as_str().unwrap().to_string()
}

async fn give_role(server: &TestServer, owner: &Account, guild: &str, user: &str, role: &str) {
    let path = format!("{V9}/guilds/{guild}/members/{user}/roles/{role}");
    assert_eq!(put(server, &path, &owner.token, None).await.status, 204);
}

fn assert_error(response: &Response, status: u16, code: u64) {
    assert_eq!(
        (response.status.as_u16(), response.body["code"].as_u64()),
        (status, Some(code)),
        "{:?}",
        response.body
    );
}

/// A connected, identified gateway.
async fn gateway(server: &TestServer, account: &Account) -> Gateway {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.identify(&account.token).await;
    gateway.dispatch("READY_SUPPLEMENTAL").await;
    gateway
}

/// Asserts that no `event` arrives for a while (what is received meanwhile is dropped).
async fn assert_quiet(gateway: &mut Gateway, event: &str) {
    let until = tokio::time::Instant::now() + Duration::from_millis(700);
    loop {
        match tokio::time::timeout_at(until, gateway.next()).await {
            Err(_) => return,
            Ok(Event::Payload(payload)) => assert_ne!(payload["t"], event, "{payload:?}"),
            Ok(Event::Closed(code)) => panic!("closed with {code:?}"),
        }
    }
}

/// The first snowflake of the moment `ago` before now.
fn snowflake_ago(ago: Duration) -> i64 {
    let ms = (SystemTime::now() - ago)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (ms - 1_420_070_400_000) << 22
}

#[actix_web::test]
async fn invites_preview_join_and_run_out() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let mut owner_gateway = gateway(&server, &owner).await;

    // Numbers may arrive as strings.
    let created = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_age": "86400", "max_uses": "1", "temporary": false }),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let invite = &created.body;
    let code = invite["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    assert_eq!(invite["type"], 0);
    assert_eq!(
        (&invite["max_age"], &invite["max_uses"], &invite["uses"]),
        (&json!(86400), &json!(1), &json!(0))
    );
    assert_eq!(invite["guild"]["id"], guild_id.as_str());
    assert_eq!(invite["guild"]["name"], "Moderated");
    assert!(invite["guild"]["features"].is_array());
    assert_eq!(invite["channel"]["id"], channel.as_str());
    assert_eq!(invite["channel"]["type"], 0);
    assert_eq!(invite["inviter"]["id"], owner.id.as_str());
    assert!(invite["expires_at"].is_string() && invite["created_at"].is_string());
    let announced = owner_gateway.dispatch("INVITE_CREATE").await;
    assert_eq!(announced["d"]["code"], code.as_str());
    assert_eq!(announced["d"]["channel_id"], channel.as_str());

    // Anyone may look at it, signed in or not.
    let preview = get(
        &server,
        &format!("{V9}/invites/{code}?with_counts=true"),
        None,
    )
    .await;
    assert_eq!(preview.status, 200, "{:?}", preview.body);
    assert_eq!(preview.body["guild"]["name"], "Moderated");
    assert_eq!(preview.body["approximate_member_count"], 1);
    assert!(preview.body["approximate_presence_count"].is_number());
    assert_error(
        &get(&server, &format!("{V9}/invites/nothere1"), None).await,
        404,
        10006,
    );

    // Joining: GUILD_MEMBER_ADD to the members, GUILD_CREATE to the joiner.
    let bob = account(&server, "bob").await;
    let mut bob_gateway = gateway(&server, &bob).await;
    let joined = accept(&server, &bob.token, &code).await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    assert_eq!(joined.body["new_member"], true);
    assert_eq!(joined.body["uses"], 1);
    assert_eq!(joined.body["guild"]["id"], guild_id.as_str());
    let added = owner_gateway.dispatch("GUILD_MEMBER_ADD").await;
    assert_eq!(added["d"]["guild_id"], guild_id.as_str());
    assert_eq!(added["d"]["user"]["id"], bob.id.as_str());
    assert_eq!(added["d"]["roles"], json!([]));
    let guild_create = bob_gateway.dispatch("GUILD_CREATE").await;
    assert_eq!(guild_create["d"]["id"], guild_id.as_str());
    assert!(guild_create["d"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == channel.as_str()));
    assert!(guild_create["d"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user"]["id"] == bob.id.as_str()));
    // From now on Bob hears the guild.
    role(&server, &owner.token, &guild_id, json!({ "name": "heard" })).await;
    let heard = bob_gateway.dispatch("GUILD_ROLE_CREATE").await;
    assert_eq!(heard["d"]["role"]["name"], "heard");

    // Bots never join through invites; accounts without the JOIN_GUILDS right neither.
    let open = invite_code(&server, &owner.token, &channel).await;
    let robot = account(&server, "robot").await;
    server
        .sql(&format!(
            "UPDATE users SET bot = true WHERE id = {}",
            robot.id
        ))
        .await;
    assert_error(&accept(&server, &robot.token, &open).await, 403, 20001);
    let hermit = account(&server, "hermit").await;
    server
        .sql(&format!(
            "UPDATE users SET rights = 0 WHERE id = {}",
            hermit.id
        ))
        .await;
    assert_error(&accept(&server, &hermit.token, &open).await, 403, 50013);

    // Its one use is gone: refused, and the invite with it.
    let carol = account(&server, "carol").await;
    assert_error(&accept(&server, &carol.token, &code).await, 404, 10006);
    assert_eq!(
        server
            .count(&format!("invites WHERE code = '{code}'"))
            .await,
        0
    );
    assert_eq!(
        server
            .count(&format!("members WHERE guild_id = {guild_id}"))
            .await,
        2
    );

    // Someone already in the guild uses nothing.
    let again = accept(&server, &bob.token, &open).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["new_member"], false);
    assert_eq!(again.body["uses"], 0);
    assert_error(
        &post(&server, &format!("{V9}/invites/{open}"), None, json!({})).await,
        401,
        0,
    );
}

#[actix_web::test]
async fn invites_expire_and_are_managed() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let bob = member(&server, &code, "bob").await;

    // Out-of-range and non-numeric settings.
    let too_old = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_age": 604801 }),
    )
    .await;
    assert_form_error(&too_old, "max_age", "NUMBER_TYPE_MAX");
    let too_many = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_uses": "101" }),
    )
    .await;
    assert_form_error(&too_many, "max_uses", "NUMBER_TYPE_MAX");
    let negative = create_invite(&server, &owner.token, &channel, json!({ "max_uses": -1 })).await;
    assert_form_error(&negative, "max_uses", "NUMBER_TYPE_MIN");
    let words = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_age": "soon" }),
    )
    .await;
    assert_form_error(&words, "max_age", "NUMBER_TYPE_COERCE");

    // Defaults: a day, unlimited uses. Without `unique` the same settings give the same code.
    let first = create_invite(&server, &bob.token, &channel, json!({})).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        (&first.body["max_age"], &first.body["max_uses"]),
        (&json!(86400), &json!(0))
    );
    let same = create_invite(&server, &bob.token, &channel, json!({})).await;
    assert_eq!(same.body["code"], first.body["code"]);
    let unique = create_invite(&server, &bob.token, &channel, json!({ "unique": true })).await;
    assert_ne!(unique.body["code"], first.body["code"]);
    let never = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_age": 0, "unique": true }),
    )
    .await;
    assert_eq!(never.body["max_age"], 0);
    assert!(never.body["expires_at"].is_null());

    // An invite whose time has passed is unknown, to look at and to accept, and is deleted.
    let expiring = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_age": 60, "unique": true }),
    )
    .await;
    let expiring = expiring.body["code"].as_str().unwrap().to_string();
    server
        .sql(&format!(
            "UPDATE invites SET expires_at = now() - interval '1 minute' WHERE code = '{expiring}'"
        ))
        .await;
    let carol = account(&server, "carol").await;
    assert_error(&accept(&server, &carol.token, &expiring).await, 404, 10006);
    assert_eq!(
        server
            .count(&format!("invites WHERE code = '{expiring}'"))
            .await,
        0
    );
    let old = create_invite(
        &server,
        &owner.token,
        &channel,
        json!({ "max_age": 60, "unique": true }),
    )
    .await;
    let old = old.body["code"].as_str().unwrap().to_string();
    server
        .sql(&format!(
            "UPDATE invites SET expires_at = now() - interval '1 second' WHERE code = '{old}'"
        ))
        .await;
    assert_error(
        &get(&server, &format!("{V9}/invites/{old}"), None).await,
        404,
        10006,
    );
    assert_eq!(
        server
            .count(&format!("members WHERE user_id = {}", carol.id))
            .await,
        0
    );

    // Listing needs MANAGE_CHANNELS (channel) or MANAGE_GUILD (guild); uses are included.
    let listed = get(
        &server,
        &format!("{V9}/channels/{channel}/invites"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let codes: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 4, "{codes:?}");
    assert!(codes.contains(&code.as_str()) && !codes.contains(&expiring.as_str()));
    let first_listed = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code.as_str())
        .unwrap();
    assert_eq!(first_listed["uses"], 1);
    let by_guild = get(
        &server,
        &format!("{V9}/guilds/{guild_id}/invites"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(by_guild.body.as_array().unwrap().len(), 4);
    assert_error(
        &get(
            &server,
            &format!("{V9}/channels/{channel}/invites"),
            Some(&bob.token),
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &get(
            &server,
            &format!("{V9}/guilds/{guild_id}/invites"),
            Some(&bob.token),
        )
        .await,
        403,
        50013,
    );

    // Deleting: the inviter, or whoever manages channels; nobody else.
    let mut owner_gateway = gateway(&server, &owner).await;
    let owners_code = never.body["code"].as_str().unwrap();
    assert_error(
        &delete(&server, &format!("{V9}/invites/{owners_code}"), &bob.token).await,
        403,
        50013,
    );
    let bobs_code = unique.body["code"].as_str().unwrap();
    let deleted = delete(&server, &format!("{V9}/invites/{bobs_code}"), &bob.token).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(deleted.body["code"], bobs_code);
    let gone = owner_gateway.dispatch("INVITE_DELETE").await;
    assert_eq!(
        gone["d"],
        json!({ "code": bobs_code, "guild_id": guild_id, "channel_id": channel })
    );
    let by_owner = delete(
        &server,
        &format!("{V9}/invites/{}", first.body["code"].as_str().unwrap()),
        &owner.token,
    )
    .await;
    assert_eq!(by_owner.status, 200);
    assert_error(
        &delete(&server, &format!("{V9}/invites/{bobs_code}"), &owner.token).await,
        404,
        10006,
    );

    // Someone without CREATE_INSTANT_INVITE cannot make one; a category takes none.
    patch(
        &server,
        &format!("{V9}/guilds/{guild_id}/roles/{guild_id}"),
        &owner.token,
        json!({ "permissions": "1024" }),
    )
    .await;
    assert_error(
        &create_invite(&server, &bob.token, &channel, json!({})).await,
        403,
        50013,
    );
    let channels = get(
        &server,
        &format!("{V9}/guilds/{guild_id}/channels"),
        Some(&owner.token),
    )
    .await;
    let category = channels
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == 4)
        .unwrap();
    let category = category["id"].as_str().unwrap();
    assert_error(
        &create_invite(&server, &owner.token, category, json!({})).await,
        400,
        50024,
    );
    // MANAGE_CHANNELS lists them.
    let lister = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "permissions": MANAGE_CHANNELS | 1024 }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &bob.id, &lister).await;
    let listed = get(
        &server,
        &format!("{V9}/channels/{channel}/invites"),
        Some(&bob.token),
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
}

#[actix_web::test]
async fn roles_are_created_moved_changed_and_deleted_with_events() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let bob = member(&server, &code, "bob").await;
    let mut bob_gateway = gateway(&server, &bob).await;
    let roles_path = format!("{V9}/guilds/{guild_id}/roles");

    let created = post(
        &server,
        &roles_path,
        Some(&owner.token),
        json!({ "name": "mods", "permissions": MANAGE_ROLES.to_string(), "color": 0xff0000, "hoist": true }),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let mods = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["position"], 1);
    assert_eq!(created.body["permissions"], MANAGE_ROLES.to_string());
    assert_eq!(
        (&created.body["color"], &created.body["hoist"]),
        (&json!(0xff0000), &json!(true))
    );
    let event = bob_gateway.dispatch("GUILD_ROLE_CREATE").await;
    assert_eq!(event["d"]["guild_id"], guild_id.as_str());
    assert_eq!(event["d"]["role"]["id"], mods.as_str());

    // A second new role takes position 1 and pushes the first up.
    let default = post(
        &server,
        &roles_path,
        Some(&owner.token),
        json!({ "permissions": 0 }),
    )
    .await;
    assert_eq!(default.body["name"], "new role");
    assert_eq!(default.body["position"], 1);
    let plain = default.body["id"].as_str().unwrap().to_string();
    let created = bob_gateway.dispatch("GUILD_ROLE_CREATE").await;
    assert_eq!(created["d"]["role"]["id"], plain.as_str());
    let pushed = bob_gateway.dispatch("GUILD_ROLE_UPDATE").await;
    assert_eq!(pushed["d"]["role"]["id"], mods.as_str());
    assert_eq!(pushed["d"]["role"]["position"], 2);
    let listed = get(&server, &roles_path, Some(&bob.token)).await;
    let positions: Vec<(String, i64)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["position"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        positions,
        vec![(guild_id.clone(), 0), (plain.clone(), 1), (mods.clone(), 2)]
    );
    let one = get(&server, &format!("{roles_path}/{mods}"), Some(&bob.token)).await;
    assert_eq!(one.body["name"], "mods");

    // Modify: name, permissions as a number, mentionable.
    let changed = patch(
        &server,
        &format!("{roles_path}/{plain}"),
        &owner.token,
        json!({ "name": "regulars", "permissions": KICK_MEMBERS, "mentionable": true }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["name"], "regulars");
    assert_eq!(changed.body["permissions"], KICK_MEMBERS.to_string());
    let update = bob_gateway.dispatch("GUILD_ROLE_UPDATE").await;
    assert_eq!(update["d"]["role"]["name"], "regulars");
    let bad = patch(
        &server,
        &format!("{roles_path}/{plain}"),
        &owner.token,
        json!({ "name": "x".repeat(101) }),
    )
    .await;
    assert_form_error(&bad, "name", "BASE_TYPE_BAD_LENGTH");
    assert_error(
        &patch(
            &server,
            &format!("{roles_path}/1234"),
            &owner.token,
            json!({}),
        )
        .await,
        404,
        10011,
    );

    // Reorder: the moved role takes its place; everything is numbered again from 1.
    let moved = patch(
        &server,
        &roles_path,
        &owner.token,
        json!([{ "id": plain, "position": "2" }]),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let order: Vec<&str> = moved
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![guild_id.as_str(), mods.as_str(), plain.as_str()]
    );
    let mut updates = Vec::new();
    for _ in 0..2 {
        let update = bob_gateway.dispatch("GUILD_ROLE_UPDATE").await;
        updates.push((
            update["d"]["role"]["id"].as_str().unwrap().to_string(),
            update["d"]["role"]["position"].as_i64().unwrap(),
        ));
    }
    updates.sort();
    let mut expected = vec![(mods.clone(), 1), (plain.clone(), 2)];
    expected.sort();
    assert_eq!(updates, expected);
    let unknown = patch(
        &server,
        &roles_path,
        &owner.token,
        json!([{ "id": "1234", "position": 1 }]),
    )
    .await;
    assert_form_error(&unknown, "0.id", "ROLE_INVALID");

    // Delete: not @everyone; members lose the role.
    give_role(&server, &owner, &guild_id, &bob.id, &plain).await;
    bob_gateway.dispatch("GUILD_MEMBER_UPDATE").await;
    assert_error(
        &delete(&server, &format!("{roles_path}/{guild_id}"), &owner.token).await,
        400,
        50028,
    );
    assert_eq!(
        delete(&server, &format!("{roles_path}/{plain}"), &owner.token)
            .await
            .status,
        204
    );
    let deleted = bob_gateway.dispatch("GUILD_ROLE_DELETE").await;
    assert_eq!(
        deleted["d"],
        json!({ "guild_id": guild_id, "role_id": plain })
    );
    let bob_now = get(
        &server,
        &format!("{V9}/guilds/{guild_id}/members/{}", bob.id),
        Some(&owner.token),
    )
    .await;
    assert_eq!(bob_now.body["roles"], json!([]));
    assert_error(
        &delete(&server, &format!("{roles_path}/{plain}"), &owner.token).await,
        404,
        10011,
    );
    assert_eq!(
        get(&server, &roles_path, Some(&bob.token))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Without MANAGE_ROLES: nothing.
    assert_error(
        &post(&server, &roles_path, Some(&bob.token), json!({})).await,
        403,
        50013,
    );
}

#[actix_web::test]
async fn the_role_limit_is_enforced() {
    let server = TestServer::with(&[("limits.guild_max_roles", "2")]).await;
    let owner = account(&server, "owner").await;
    let (guild_id, _) = guild(&server, &owner).await;
    let path = format!("{V9}/guilds/{guild_id}/roles");
    for _ in 0..2 {
        assert_eq!(
            post(&server, &path, Some(&owner.token), json!({}))
                .await
                .status,
            200
        );
    }
    assert_error(
        &post(&server, &path, Some(&owner.token), json!({})).await,
        400,
        30005,
    );
}

#[actix_web::test]
async fn the_role_hierarchy_binds_moderators_and_administrators() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let moderator = member(&server, &code, "moderator").await;
    let admin = member(&server, &code, "admin").await;
    let roles_path = format!("{V9}/guilds/{guild_id}/roles");
    // Each new role goes in at 1: top 4, mods 3, low 2, admins 1.
    let top = role(&server, &owner.token, &guild_id, json!({ "name": "top" })).await;
    let mods = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "name": "mods", "permissions": MANAGE_ROLES | KICK_MEMBERS | MANAGE_NICKNAMES }),
    )
    .await;
    let low = role(&server, &owner.token, &guild_id, json!({ "name": "low" })).await;
    let admins = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "name": "admins", "permissions": ADMINISTRATOR }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &moderator.id, &mods).await;
    give_role(&server, &owner, &guild_id, &admin.id, &admins).await;
    let modify = |role: &str| format!("{roles_path}/{role}");

    // A moderator edits only roles below their own, and grants only what they have.
    assert_error(
        &patch(
            &server,
            &modify(&top),
            &moderator.token,
            json!({ "name": "mine" }),
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &patch(
            &server,
            &modify(&mods),
            &moderator.token,
            json!({ "name": "mine" }),
        )
        .await,
        403,
        50013,
    );
    assert_eq!(
        patch(
            &server,
            &modify(&low),
            &moderator.token,
            json!({ "name": "lower" })
        )
        .await
        .status,
        200
    );
    assert_error(
        &patch(
            &server,
            &modify(&low),
            &moderator.token,
            json!({ "permissions": ADMINISTRATOR }),
        )
        .await,
        403,
        50013,
    );
    assert_eq!(
        patch(
            &server,
            &modify(&low),
            &moderator.token,
            json!({ "permissions": KICK_MEMBERS })
        )
        .await
        .status,
        200
    );
    assert_error(
        &post(
            &server,
            &roles_path,
            Some(&moderator.token),
            json!({ "permissions": BAN_MEMBERS }),
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &delete(&server, &modify(&top), &moderator.token).await,
        403,
        50013,
    );

    // Nor can they give themselves a higher role, or move one up past their own.
    let own_role = |role: &str| {
        format!(
            "{V9}/guilds/{guild_id}/members/{}/roles/{role}",
            moderator.id
        )
    };
    assert_error(
        &put(&server, &own_role(&top), &moderator.token, None).await,
        403,
        50013,
    );
    assert_error(
        &put(&server, &own_role(&mods), &moderator.token, None).await,
        403,
        50013,
    );
    let member_path = format!("{V9}/guilds/{guild_id}/members/{}", moderator.id);
    assert_error(
        &patch(
            &server,
            &member_path,
            &moderator.token,
            json!({ "roles": [mods, top] }),
        )
        .await,
        403,
        50013,
    );
    assert_eq!(
        put(&server, &own_role(&low), &moderator.token, None)
            .await
            .status,
        204
    );
    assert_error(
        &patch(
            &server,
            &roles_path,
            &moderator.token,
            json!([{ "id": low, "position": 3 }]),
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &patch(
            &server,
            &roles_path,
            &moderator.token,
            json!([{ "id": top, "position": 1 }]),
        )
        .await,
        403,
        50013,
    );
    let swapped = patch(
        &server,
        &roles_path,
        &moderator.token,
        json!([{ "id": low, "position": 1 }]),
    )
    .await;
    assert_eq!(swapped.status, 200, "{:?}", swapped.body);
    // Nor take a role from someone that sits above their own.
    give_role(&server, &owner, &guild_id, &admin.id, &top).await;
    let admins_top = format!("{V9}/guilds/{guild_id}/members/{}/roles/{top}", admin.id);
    assert_error(
        &delete(&server, &admins_top, &moderator.token).await,
        403,
        50013,
    );
    request(
        &server,
        Method::DELETE,
        &admins_top,
        Some(&owner.token),
        None,
    )
    .await;

    // ADMINISTRATOR grants every permission but no rank: admins sits at 2 now, below mods.
    assert_error(
        &patch(
            &server,
            &modify(&mods),
            &admin.token,
            json!({ "name": "taken" }),
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &put(
            &server,
            &format!("{V9}/guilds/{guild_id}/members/{}/roles/{mods}", admin.id),
            &admin.token,
            None,
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &delete(
            &server,
            &format!("{V9}/guilds/{guild_id}/members/{}", moderator.id),
            &admin.token,
        )
        .await,
        403,
        50013,
    );
    // The moderator outranks the administrator.
    let nick = patch(
        &server,
        &format!("{V9}/guilds/{guild_id}/members/{}", admin.id),
        &moderator.token,
        json!({ "nick": "renamed" }),
    )
    .await;
    assert_eq!(nick.status, 200, "{:?}", nick.body);

    // The owner is above everything.
    assert_eq!(
        patch(
            &server,
            &modify(&top),
            &owner.token,
            json!({ "name": "owned" })
        )
        .await
        .status,
        200
    );
    assert_error(
        &patch(
            &server,
            &format!("{V9}/guilds/{guild_id}/members/{}", owner.id),
            &moderator.token,
            json!({ "nick": "boss" }),
        )
        .await,
        403,
        50013,
    );
    assert_error(
        &delete(
            &server,
            &format!("{V9}/guilds/{guild_id}/members/{}", owner.id),
            &moderator.token,
        )
        .await,
        403,
        50013,
    );
}

#[actix_web::test]
async fn members_are_listed_and_changed_within_their_rights() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let bob = member(&server, &code, "bob").await;
    let carol = member(&server, &code, "carol").await;
    let mut owner_gateway = gateway(&server, &owner).await;
    let members = format!("{V9}/guilds/{guild_id}/members");

    // List: one by default, by user id, `after` and `limit` within 1..1000.
    let first = get(&server, &members, Some(&bob.token)).await;
    assert_eq!(first.body.as_array().unwrap().len(), 1);
    let all = get(&server, &format!("{members}?limit=1000"), Some(&bob.token)).await;
    let ids: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap())
        .collect();
    let mut sorted = vec![owner.id.as_str(), bob.id.as_str(), carol.id.as_str()];
    sorted.sort_by_key(|id| id.parse::<i64>().unwrap());
    assert_eq!(ids, sorted);
    assert_eq!(first.body[0]["user"]["id"], sorted[0]);
    let rest = get(
        &server,
        &format!("{members}?limit=2&after={}", sorted[0]),
        Some(&bob.token),
    )
    .await;
    let rest: Vec<&str> = rest
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, sorted[1..].to_vec());
    assert_form_error(
        &get(&server, &format!("{members}?limit=0"), Some(&bob.token)).await,
        "limit",
        "NUMBER_TYPE_MIN",
    );
    assert_form_error(
        &get(&server, &format!("{members}?limit=1001"), Some(&bob.token)).await,
        "limit",
        "NUMBER_TYPE_MAX",
    );
    assert_form_error(
        &get(&server, &format!("{members}?limit=many"), Some(&bob.token)).await,
        "limit",
        "NUMBER_TYPE_COERCE",
    );
    let outsider = account(&server, "outsider").await;
    assert_error(
        &get(&server, &members, Some(&outsider.token)).await,
        404,
        10004,
    );

    // One member.
    let one = get(
        &server,
        &format!("{members}/{}", carol.id),
        Some(&bob.token),
    )
    .await;
    assert_eq!(one.status, 200);
    assert_eq!(
        (&one.body["user"]["username"], &one.body["flags"]),
        (&json!("carol"), &json!(0))
    );
    assert!(one.body["joined_at"].is_string());
    assert_error(
        &get(
            &server,
            &format!("{members}/{}", outsider.id),
            Some(&bob.token),
        )
        .await,
        404,
        10007,
    );

    // Own nickname: CHANGE_NICKNAME (which @everyone has), through @me and the old @me/nick.
    let nicked = patch(
        &server,
        &format!("{members}/@me"),
        &bob.token,
        json!({ "nick": "Bobby" }),
    )
    .await;
    assert_eq!(nicked.status, 200, "{:?}", nicked.body);
    assert_eq!(nicked.body["nick"], "Bobby");
    let update = owner_gateway.dispatch("GUILD_MEMBER_UPDATE").await;
    assert_eq!(
        (
            &update["d"]["guild_id"],
            &update["d"]["user"]["id"],
            &update["d"]["nick"]
        ),
        (&json!(guild_id), &json!(bob.id), &json!("Bobby"))
    );
    let old = patch(
        &server,
        &format!("{members}/@me/nick"),
        &bob.token,
        json!({ "nick": "Rob" }),
    )
    .await;
    assert_eq!(old.body, json!({ "nick": "Rob" }));
    let long = patch(
        &server,
        &format!("{members}/@me"),
        &bob.token,
        json!({ "nick": "n".repeat(33) }),
    )
    .await;
    assert_form_error(&long, "nick", "BASE_TYPE_BAD_LENGTH");
    let reset = patch(
        &server,
        &format!("{members}/@me"),
        &bob.token,
        json!({ "nick": null }),
    )
    .await;
    assert!(reset.body["nick"].is_null());
    // Someone else's: MANAGE_NICKNAMES.
    assert_error(
        &patch(
            &server,
            &format!("{members}/{}", carol.id),
            &bob.token,
            json!({ "nick": "C" }),
        )
        .await,
        403,
        50013,
    );
    // Without CHANGE_NICKNAME on @everyone, not even one's own.
    let everyone = 1024 | (1 << 11);
    patch(
        &server,
        &format!("{V9}/guilds/{guild_id}/roles/{guild_id}"),
        &owner.token,
        json!({ "permissions": everyone }),
    )
    .await;
    assert_error(
        &patch(
            &server,
            &format!("{members}/@me/nick"),
            &bob.token,
            json!({ "nick": "Rob" }),
        )
        .await,
        403,
        50013,
    );
    let nicks = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "permissions": CHANGE_NICKNAME }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &bob.id, &nicks).await;
    assert_eq!(
        patch(
            &server,
            &format!("{members}/@me/nick"),
            &bob.token,
            json!({ "nick": "Rob" })
        )
        .await
        .status,
        200
    );

    // Roles through PATCH: the owner sets them; unknown roles are refused; the member hears it.
    let mut bob_gateway = gateway(&server, &bob).await;
    let helpers = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "name": "helpers" }),
    )
    .await;
    let set = patch(
        &server,
        &format!("{members}/{}", bob.id),
        &owner.token,
        json!({ "roles": [helpers, nicks, guild_id] }),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["roles"], json!([helpers, nicks]));
    let heard = bob_gateway.dispatch("GUILD_MEMBER_UPDATE").await;
    assert_eq!(heard["d"]["roles"], json!([helpers, nicks]));
    assert_error(
        &patch(
            &server,
            &format!("{members}/{}", bob.id),
            &owner.token,
            json!({ "roles": ["1234"] }),
        )
        .await,
        404,
        10011,
    );
    assert_error(
        &patch(
            &server,
            &format!("{members}/{}", carol.id),
            &bob.token,
            json!({ "roles": [helpers] }),
        )
        .await,
        403,
        50013,
    );
    let taken = delete(
        &server,
        &format!("{members}/{}/roles/{helpers}", bob.id),
        &owner.token,
    )
    .await;
    assert_eq!(taken.status, 204);
    assert_eq!(
        bob_gateway.dispatch("GUILD_MEMBER_UPDATE").await["d"]["roles"],
        json!([nicks])
    );
    assert_error(
        &put(
            &server,
            &format!("{members}/{}/roles/1234", bob.id),
            &owner.token,
            None,
        )
        .await,
        404,
        10011,
    );
    assert_error(
        &put(
            &server,
            &format!("{members}/{}/roles/{helpers}", outsider.id),
            &owner.token,
            None,
        )
        .await,
        404,
        10007,
    );

    // Voice mute/deafen and timeouts, each with its permission.
    assert_error(
        &patch(
            &server,
            &format!("{members}/{}", carol.id),
            &bob.token,
            json!({ "mute": true }),
        )
        .await,
        403,
        50013,
    );
    let muted = patch(
        &server,
        &format!("{members}/{}", carol.id),
        &owner.token,
        json!({ "mute": true, "deaf": true }),
    )
    .await;
    assert_eq!(
        (&muted.body["mute"], &muted.body["deaf"]),
        (&json!(true), &json!(true))
    );
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_error(
        &patch(
            &server,
            &format!("{members}/{}", carol.id),
            &bob.token,
            json!({ "communication_disabled_until": soon }),
        )
        .await,
        403,
        50013,
    );
    let timed_out = patch(
        &server,
        &format!("{members}/{}", carol.id),
        &owner.token,
        json!({ "communication_disabled_until": soon }),
    )
    .await;
    assert_eq!(timed_out.status, 200, "{:?}", timed_out.body);
    assert!(timed_out.body["communication_disabled_until"].is_string());
    let far = (chrono::Utc::now() + chrono::Duration::days(29)).to_rfc3339();
    let too_long = patch(
        &server,
        &format!("{members}/{}", carol.id),
        &owner.token,
        json!({ "communication_disabled_until": far }),
    )
    .await;
    assert_form_error(
        &too_long,
        "communication_disabled_until",
        "BASE_TYPE_BAD_TIMESTAMP",
    );
    let moderators = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "permissions": MODERATE_MEMBERS }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &bob.id, &moderators).await;
    assert_error(
        &patch(
            &server,
            &format!("{members}/{}", owner.id),
            &bob.token,
            json!({ "communication_disabled_until": soon }),
        )
        .await,
        403,
        50013,
    );
    let lifted = patch(
        &server,
        &format!("{members}/{}", carol.id),
        &bob.token,
        json!({ "communication_disabled_until": null }),
    )
    .await;
    assert_eq!(lifted.status, 200, "{:?}", lifted.body);
    assert!(lifted.body["communication_disabled_until"].is_null());
    // Administrators cannot be timed out, not even by the owner.
    let admins = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "permissions": ADMINISTRATOR }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &carol.id, &admins).await;
    let admin_timeout = patch(
        &server,
        &format!("{members}/{}", carol.id),
        &owner.token,
        json!({ "communication_disabled_until": soon }),
    )
    .await;
    assert_error(&admin_timeout, 403, 50013);
}

#[actix_web::test]
async fn a_kicked_member_is_told_and_hears_no_more() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let moderator = member(&server, &code, "moderator").await;
    let peer = member(&server, &code, "peer").await;
    let bob = member(&server, &code, "bob").await;
    let mods = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "permissions": KICK_MEMBERS }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &moderator.id, &mods).await;
    give_role(&server, &owner, &guild_id, &peer.id, &mods).await;
    let members = format!("{V9}/guilds/{guild_id}/members");
    let mut owner_gateway = gateway(&server, &owner).await;
    let mut bob_gateway = gateway(&server, &bob).await;

    // Refusals: no KICK_MEMBERS, an equal, the owner, a non-member.
    assert_error(
        &delete(&server, &format!("{members}/{}", peer.id), &bob.token).await,
        403,
        50013,
    );
    assert_error(
        &delete(&server, &format!("{members}/{}", peer.id), &moderator.token).await,
        403,
        50013,
    );
    assert_error(
        &delete(
            &server,
            &format!("{members}/{}", owner.id),
            &moderator.token,
        )
        .await,
        403,
        50013,
    );
    let outsider = account(&server, "outsider").await;
    assert_error(
        &delete(
            &server,
            &format!("{members}/{}", outsider.id),
            &moderator.token,
        )
        .await,
        404,
        10007,
    );

    assert_eq!(
        delete(&server, &format!("{members}/{}", bob.id), &moderator.token)
            .await
            .status,
        204
    );
    let removed = owner_gateway.dispatch("GUILD_MEMBER_REMOVE").await;
    assert_eq!(removed["d"]["guild_id"], guild_id.as_str());
    assert_eq!(removed["d"]["user"]["id"], bob.id.as_str());
    let gone = bob_gateway.dispatch("GUILD_DELETE").await;
    assert_eq!(gone["d"], json!({ "id": guild_id, "unavailable": false }));
    assert_error(&get(&server, &members, Some(&bob.token)).await, 404, 10004);

    // The guild's events no longer reach Bob.
    role(&server, &owner.token, &guild_id, json!({ "name": "after" })).await;
    owner_gateway.dispatch("GUILD_ROLE_CREATE").await;
    assert_quiet(&mut bob_gateway, "GUILD_ROLE_CREATE").await;

    // A kick is not a ban: Bob may come back.
    let back = accept(&server, &bob.token, &code).await;
    assert_eq!(back.body["new_member"], true);
}

#[actix_web::test]
async fn bans_remove_purge_and_keep_out() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let bob = member(&server, &code, "bob").await;
    let carol = member(&server, &code, "carol").await;
    let mut owner_gateway = gateway(&server, &owner).await;
    let mut bob_gateway = gateway(&server, &bob).await;
    let bans = format!("{V9}/guilds/{guild_id}/bans");

    // Bob's messages: one from a minute ago, one from two hours ago; and one of Carol's.
    let recent = snowflake_ago(Duration::from_secs(60));
    let older = snowflake_ago(Duration::from_secs(7200));
    let carols = snowflake_ago(Duration::from_secs(30));
    server
        .sql(&format!(
            "INSERT INTO messages (id, channel_id, guild_id, author_id, content) VALUES \
             ({recent}, {channel}, {guild_id}, {}, 'recent'), \
             ({older}, {channel}, {guild_id}, {}, 'older'), \
             ({carols}, {channel}, {guild_id}, {}, 'carol')",
            bob.id, bob.id, carol.id
        ))
        .await;

    // Out-of-range windows; no BAN_MEMBERS; the owner; an unknown user.
    let path = format!("{bans}/{}", bob.id);
    let too_long = put(
        &server,
        &path,
        &owner.token,
        Some(json!({ "delete_message_seconds": 604801 })),
    )
    .await;
    assert_form_error(&too_long, "delete_message_seconds", "NUMBER_TYPE_MAX");
    let too_many_days = put(
        &server,
        &path,
        &owner.token,
        Some(json!({ "delete_message_days": 8 })),
    )
    .await;
    assert_form_error(&too_many_days, "delete_message_days", "NUMBER_TYPE_MAX");
    assert_error(&put(&server, &path, &carol.token, None).await, 403, 50013);
    assert_error(&get(&server, &bans, Some(&carol.token)).await, 403, 50013);
    assert_error(
        &put(&server, &format!("{bans}/{}", owner.id), &owner.token, None).await,
        403,
        50013,
    );
    assert_error(
        &put(&server, &format!("{bans}/1234"), &owner.token, None).await,
        404,
        10013,
    );

    // The ban, with a URL-encoded reason header, deleting the last hour of Bob's messages.
    let response = awc::Client::new()
        .put(server.url(&path))
        .insert_header(("Authorization", owner.token.as_str()))
        .insert_header(("X-Audit-Log-Reason", "spamming%20links"))
        .send_json(&json!({ "delete_message_seconds": "3600" }))
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let removed = owner_gateway.dispatch("GUILD_MEMBER_REMOVE").await;
    assert_eq!(removed["d"]["user"]["id"], bob.id.as_str());
    let banned = owner_gateway.dispatch("GUILD_BAN_ADD").await;
    assert_eq!(
        (&banned["d"]["guild_id"], &banned["d"]["user"]["id"]),
        (&json!(guild_id), &json!(bob.id))
    );
    let purged = owner_gateway.dispatch("MESSAGE_DELETE_BULK").await;
    assert_eq!(purged["d"]["ids"], json!([recent.to_string()]));
    assert_eq!(purged["d"]["channel_id"], channel.as_str());
    assert_eq!(
        bob_gateway.dispatch("GUILD_DELETE").await["d"]["id"],
        guild_id.as_str()
    );
    assert_eq!(
        server.count(&format!("messages WHERE id = {recent}")).await,
        0
    );
    assert_eq!(
        server
            .count(&format!("messages WHERE id IN ({older}, {carols})"))
            .await,
        2
    );
    assert_eq!(
        server
            .count(&format!("members WHERE user_id = {}", bob.id))
            .await,
        0
    );

    let ban = get(&server, &path, Some(&owner.token)).await;
    assert_eq!(ban.status, 200, "{:?}", ban.body);
    assert_eq!(ban.body["reason"], "spamming links");
    assert_eq!(ban.body["user"]["id"], bob.id.as_str());
    assert_error(
        &get(&server, &format!("{bans}/{}", carol.id), Some(&owner.token)).await,
        404,
        10026,
    );

    // A banned user cannot come back.
    assert_error(&accept(&server, &bob.token, &code).await, 403, 40007);

    // Non-members can be banned too (legacy days as a string, reason in the body).
    let dave = account(&server, "dave").await;
    let dave_ban = put(
        &server,
        &format!("{bans}/{}", dave.id),
        &owner.token,
        Some(json!({ "delete_message_days": "1", "reason": "pre-emptive" })),
    )
    .await;
    assert_eq!(dave_ban.status, 204, "{:?}", dave_ban.body);
    assert_error(&accept(&server, &dave.token, &code).await, 403, 40007);

    // The list, by user id, with limit/after/before.
    let mut ids = [bob.id.clone(), dave.id.clone()];
    ids.sort_by_key(|id| id.parse::<i64>().unwrap());
    let all = get(&server, &bans, Some(&owner.token)).await;
    let listed: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let dave_listed = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["user"]["id"] == dave.id.as_str())
        .unwrap();
    assert_eq!(dave_listed["reason"], "pre-emptive");
    let first = get(&server, &format!("{bans}?limit=1"), Some(&owner.token)).await;
    assert_eq!(first.body.as_array().unwrap().len(), 1);
    assert_eq!(first.body[0]["user"]["id"], ids[0].as_str());
    let after = get(
        &server,
        &format!("{bans}?after={}", ids[0]),
        Some(&owner.token),
    )
    .await;
    assert_eq!(after.body.as_array().unwrap().len(), 1);
    assert_eq!(after.body[0]["user"]["id"], ids[1].as_str());
    let before = get(
        &server,
        &format!("{bans}?before={}", ids[1]),
        Some(&owner.token),
    )
    .await;
    assert_eq!(before.body[0]["user"]["id"], ids[0].as_str());
    assert_form_error(
        &get(&server, &format!("{bans}?limit=1001"), Some(&owner.token)).await,
        "limit",
        "NUMBER_TYPE_MAX",
    );

    // A moderator with BAN_MEMBERS cannot ban someone of equal rank.
    let banners = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "permissions": BAN_MEMBERS }),
    )
    .await;
    let erin = member(&server, &code, "erin").await;
    give_role(&server, &owner, &guild_id, &carol.id, &banners).await;
    give_role(&server, &owner, &guild_id, &erin.id, &banners).await;
    assert_error(
        &put(&server, &format!("{bans}/{}", erin.id), &carol.token, None).await,
        403,
        50013,
    );

    // Lifting the ban lets Bob back in.
    assert_eq!(delete(&server, &path, &owner.token).await.status, 204);
    let lifted = owner_gateway.dispatch("GUILD_BAN_REMOVE").await;
    assert_eq!(lifted["d"]["user"]["id"], bob.id.as_str());
    assert_error(&delete(&server, &path, &owner.token).await, 404, 10026);
    assert_eq!(
        accept(&server, &bob.token, &code).await.body["new_member"],
        true
    );
}

#[actix_web::test]
async fn creators_change_their_own_emojis_and_only_moderators_change_others() {
    const CREATE_GUILD_EXPRESSIONS: u64 = 1 << 43;
    let server = TestServer::start().await;
    let owner = account(&server, "curator").await;
    let (guild_id, channel) = guild(&server, &owner).await;
    let code = invite_code(&server, &owner.token, &channel).await;
    let artist = member(&server, &code, "artist").await;
    let emojis = format!("{V9}/guilds/{guild_id}/emojis");
    let image = crate::cdn::data_url("image/png", &crate::cdn::png(8, 8));
    let create = |token: &str, name: &str| {
        let body = json!({ "name": name, "image": image });
        let token = token.to_string();
        let server = &server;
        let emojis = emojis.clone();
        async move { post(server, &emojis, Some(&token), body).await }
    };
    assert_error(&create(&artist.token, "denied").await, 403, 50013);

    let creators = role(
        &server,
        &owner.token,
        &guild_id,
        json!({ "name": "creators", "permissions": CREATE_GUILD_EXPRESSIONS.to_string() }),
    )
    .await;
    give_role(&server, &owner, &guild_id, &artist.id, &creators).await;
    let own = create(&artist.token, "mine").await;
    assert_eq!(own.status, 201, "{:?}", own.body);
    let own = format!("{emojis}/{}", own.body["id"].as_str().unwrap());
    let owners = create(&owner.token, "theirs").await;
    let owners = format!("{emojis}/{}", owners.body["id"].as_str().unwrap());

    let renamed = patch(
        &server,
        &own,
        &artist.token,
        json!({ "name": "still_mine" }),
    )
    .await;
    assert_eq!(renamed.body["name"], "still_mine", "{:?}", renamed.body);
    let refused = patch(&server, &owners, &artist.token, json!({ "name": "taken" })).await;
    assert_error(&refused, 403, 50013);
    assert_error(&delete(&server, &owners, &artist.token).await, 403, 50013);
    assert_eq!(delete(&server, &own, &artist.token).await.status, 204);
    let left = get(&server, &emojis, Some(&owner.token)).await;
    let names: Vec<&str> = left
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["theirs"]);
}
