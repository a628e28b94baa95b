//! The admin API at `/_spacebar/admin` over real HTTP: the first operator made with the real
//! `spacebar admin grant-operator` command, a sweep showing every route refuses non-operators
//! and changes nothing, users and guilds listed, forced in and deleted with streamed progress,
//! configuration changed at run time and kept, registration tokens, instance bans by account
//! and by address, and rights granted and revoked.

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cdn::{attach, fetch};
use crate::common::gateway::Gateway;
use crate::common::guild::{guild, join};
use crate::common::http::{account, get, post, registration, request, Account};
use crate::common::TestServer;

const ADMIN: &str = "/_spacebar/admin";

/// Makes `account` an operator the way a new instance's owner does: with the command line.
fn grant_operator(server: &TestServer, who: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_spacebar"))
        .args(["admin", "grant-operator", who])
        .env("SPACEBAR__DATABASE__URL", &server.database_url)
        .env("SPACEBAR__DATABASE__POOL_SIZE", "1")
        .output()
        .unwrap()
}

pub async fn operator(server: &TestServer) -> Account {
    let root = account(server, "root").await;
    let made = grant_operator(server, &root.id);
    assert!(made.status.success(), "{made:?}");
    root
}

pub async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> crate::common::http::Response {
    request(server, method, &format!("{ADMIN}{path}"), Some(token), body).await
}

/// The status `GET /users/@me` with `token` gets from `server` when asked from the address
/// `ip` (any of 127.0.0.0/8 is this machine).
pub async fn status_from(server: &TestServer, ip: &str, token: &str) -> StatusCode {
    let connector = awc::Connector::new().local_address(ip.parse().unwrap());
    let client = awc::Client::builder().connector(connector).finish();
    client
        .get(server.url("/api/v9/users/@me"))
        .insert_header(("Authorization", token))
        .send()
        .await
        .unwrap()
        .status()
}

/// The lines of a streamed answer.
fn lines(body: &Value) -> Vec<Value> {
    body.as_str()
        .map(|text| {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .unwrap_or_else(|| vec![body.clone()])
}

async fn guild_with_channel(server: &TestServer, owner: &Account) -> (String, String) {
    let created = post(
        server,
        "/api/v9/guilds",
        Some(&owner.token),
        json!({ "name": "Admin" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    (
        created.body["id"].as_str().unwrap().to_string(),
        created.body["system_channel_id"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// The operator `root` deletes `channel_id`, and a member's `gateway` hears CHANNEL_DELETE.
async fn delete_channel(
    server: &TestServer,
    root: &Account,
    channel_id: &str,
    gateway: &mut Gateway,
) {
    let gone = admin(
        server,
        Method::DELETE,
        &format!("/channels/{channel_id}"),
        &root.token,
        None,
    )
    .await;
    assert_eq!(gone.status, 200, "{:?}", gone.body);
    assert_eq!(
        gateway.dispatch("CHANNEL_DELETE").await["d"]["id"],
        channel_id
    );
}

#[actix_web::test]
async fn the_first_operator_is_made_on_the_command_line() {
    let server = TestServer::start().await;
    let pinged = get(&server, &format!("{ADMIN}/ping"), None).await;
    assert_eq!(pinged.status, 200);
    assert_eq!(pinged.body["ping"], "pong!");

    let root = account(&server, "root").await;
    let who = get(&server, &format!("{ADMIN}/whoami"), Some(&root.token)).await;
    assert_eq!(who.body["operator"], false, "{:?}", who.body);
    assert_eq!(
        get(&server, &format!("{ADMIN}/users"), Some(&root.token))
            .await
            .status,
        403
    );

    let unknown = grant_operator(&server, "nobody#0000");
    assert!(!unknown.status.success());
    // The error is logged (stdout, as the server logs).
    let said = [unknown.stdout.as_slice(), unknown.stderr.as_slice()].concat();
    assert!(
        String::from_utf8_lossy(&said).contains("no account"),
        "{unknown:?}"
    );

    let me = get(&server, "/api/v9/users/@me", Some(&root.token)).await;
    let tag = format!("root#{}", me.body["discriminator"].as_str().unwrap());
    assert!(grant_operator(&server, &tag).status.success());
    let who = get(&server, &format!("{ADMIN}/whoami"), Some(&root.token)).await;
    assert_eq!(who.body["operator"], true, "{:?}", who.body);
    assert_eq!(who.body["id"], root.id.as_str());
    assert_eq!(
        get(&server, &format!("{ADMIN}/users"), Some(&root.token))
            .await
            .status,
        200
    );
    // The discovery document tells clients where the admin API is.
    let client = get(&server, "/.well-known/spacebar/client", None).await;
    assert!(client.body["admin"]["baseUrl"]
        .as_str()
        .unwrap()
        .starts_with("http://"));
}

#[actix_web::test]
async fn every_admin_route_refuses_non_operators_and_changes_nothing() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let mallory = account(&server, "mallory").await;
    let (guild_id, channel_id) = guild_with_channel(&server, &root).await;
    let token = admin(
        &server,
        Method::POST,
        "/registration-tokens",
        &root.token,
        None,
    )
    .await;
    let token = token.body["token"].as_str().unwrap().to_string();
    let banned = admin(
        &server,
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "ip": "10.0.0.9" })),
    )
    .await;
    let ban_id = banned.body["id"].as_str().unwrap().to_string();
    let victim = &root.id;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/users".into(), None),
        (Method::GET, format!("/users/{victim}"), None),
        (
            Method::PATCH,
            format!("/users/{victim}"),
            Some(json!({ "disabled": true })),
        ),
        (Method::DELETE, format!("/users/{victim}"), None),
        (
            Method::PUT,
            format!("/users/{}/rights/OPERATOR", mallory.id),
            None,
        ),
        (
            Method::DELETE,
            format!("/users/{victim}/rights/OPERATOR"),
            None,
        ),
        (Method::GET, "/guilds".into(), None),
        (Method::GET, format!("/guilds/{guild_id}"), None),
        (Method::DELETE, format!("/guilds/{guild_id}"), None),
        (
            Method::PUT,
            format!("/guilds/{guild_id}/members/{}", mallory.id),
            Some(json!({ "owner": true })),
        ),
        (Method::DELETE, format!("/channels/{channel_id}"), None),
        (Method::GET, "/config".into(), None),
        (
            Method::PATCH,
            "/config".into(),
            Some(json!({ "register.allow_new_registration": false })),
        ),
        (Method::POST, "/registration-tokens".into(), None),
        (Method::GET, "/registration-tokens".into(), None),
        (
            Method::DELETE,
            format!("/registration-tokens/{token}"),
            None,
        ),
        (
            Method::POST,
            "/bans".into(),
            Some(json!({ "user_id": victim })),
        ),
        (Method::GET, "/bans".into(), None),
        (Method::DELETE, format!("/bans/{ban_id}"), None),
        (Method::GET, "/nodes".into(), None),
    ];
    let before = (
        server.count("users WHERE NOT disabled").await,
        server.count("guilds").await,
        server.count("channels").await,
        server.count("members").await,
        server.count("registration_tokens").await,
        server.count("instance_bans").await,
        server.count("instance_config").await,
        server.count("users WHERE rights & 1 = 1").await,
    );
    for (method, path, body) in &routes {
        let refused = admin(&server, method.clone(), path, &mallory.token, body.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            refused.body
        );
        assert_eq!(refused.body["code"], 50013, "{method} {path}");
        let anonymous = request(
            &server,
            method.clone(),
            &format!("{ADMIN}{path}"),
            None,
            body.clone(),
        )
        .await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    let after = (
        server.count("users WHERE NOT disabled").await,
        server.count("guilds").await,
        server.count("channels").await,
        server.count("members").await,
        server.count("registration_tokens").await,
        server.count("instance_bans").await,
        server.count("instance_config").await,
        server.count("users WHERE rights & 1 = 1").await,
    );
    assert_eq!(before, after, "a refused request changed something");
    // Registration is still open, and the operator still works.
    assert_eq!(
        post(
            &server,
            "/api/v9/auth/register",
            None,
            registration("late", "late@example.org")
        )
        .await
        .status,
        200
    );
    for (method, path, body) in routes.iter().filter(|(m, _, _)| *m == Method::GET) {
        let allowed = admin(&server, method.clone(), path, &root.token, body.clone()).await;
        assert_eq!(allowed.status, 200, "{path}: {:?}", allowed.body);
    }
}

#[actix_web::test]
async fn users_are_listed_disabled_and_deleted_with_progress() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let spammer = account(&server, "spammer").await;
    let bystander = account(&server, "bystander").await;
    let (guild_id, channel_id) = guild_with_channel(&server, &root).await;
    let (own_guild, _) = guild_with_channel(&server, &spammer).await;
    server
        .sql(&format!(
            "INSERT INTO members (guild_id, user_id) VALUES ({guild_id}, {}), ({guild_id}, {})",
            spammer.id, bystander.id
        ))
        .await;
    // 1,500 messages from the spammer: more than one batch.
    server
        .sql(&format!(
            "INSERT INTO messages (id, channel_id, guild_id, author_id, content) \
             SELECT 1000 + n, {channel_id}, {guild_id}, {}, 'spam ' || n FROM generate_series(1, 1500) n",
            spammer.id
        ))
        .await;
    let kept = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages"),
        Some(&bystander.token),
        json!({ "content": "hello" }),
    )
    .await;
    assert_eq!(kept.status, 200, "{:?}", kept.body);

    // Paged by id, either way.
    let first = admin(&server, Method::GET, "/users?limit=2", &root.token, None).await;
    let ids: Vec<&str> = first
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [root.id.as_str(), spammer.id.as_str()]);
    let next = admin(
        &server,
        Method::GET,
        &format!("/users?after={}", spammer.id),
        &root.token,
        None,
    )
    .await;
    assert_eq!(next.body[0]["id"], bystander.id.as_str());
    let newest = admin(
        &server,
        Method::GET,
        "/users?order=desc&limit=1",
        &root.token,
        None,
    )
    .await;
    assert_eq!(newest.body[0]["id"], bystander.id.as_str());
    assert_eq!(
        admin(&server, Method::GET, "/users?limit=0", &root.token, None)
            .await
            .status,
        400
    );

    // Disabled: the account's gateway closes and its token stops working; enabled again.
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    gateway.identify(&spammer.token).await;
    let disabled = admin(
        &server,
        Method::PATCH,
        &format!("/users/{}", spammer.id),
        &root.token,
        Some(json!({ "disabled": true })),
    )
    .await;
    assert_eq!(disabled.body["disabled"], true, "{:?}", disabled.body);
    assert_eq!(gateway.closed().await, Some(4004));
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&spammer.token))
            .await
            .status,
        401
    );
    admin(
        &server,
        Method::PATCH,
        &format!("/users/{}", spammer.id),
        &root.token,
        Some(json!({ "disabled": false })),
    )
    .await;
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&spammer.token))
            .await
            .status,
        200
    );

    // Deleted, step by step, the progress streamed.
    let deleted = admin(
        &server,
        Method::DELETE,
        &format!("/users/{}", spammer.id),
        &root.token,
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.content_type.as_deref(),
        Some("application/x-ndjson")
    );
    let steps = lines(&deleted.body);
    assert_eq!(steps.last().unwrap()["done"], true, "{steps:?}");
    let counts: Vec<u64> = steps
        .iter()
        .filter(|s| s["step"] == "messages")
        .map(|s| s["deleted"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1000, 1500], "{steps:?}");
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "guild" && s["guild_id"] == own_guild.as_str()),
        "{steps:?}"
    );
    assert_eq!(
        server
            .count(&format!("users WHERE id = {}", spammer.id))
            .await,
        0
    );
    assert_eq!(
        server
            .count(&format!("messages WHERE author_id = {}", spammer.id))
            .await,
        0
    );
    assert_eq!(
        server
            .count(&format!("guilds WHERE id = {own_guild}"))
            .await,
        0
    );
    assert_eq!(
        server
            .count(&format!("messages WHERE channel_id = {channel_id}"))
            .await,
        1,
        "the bystander's message stays"
    );
    assert_eq!(
        admin(
            &server,
            Method::GET,
            &format!("/users/{}", spammer.id),
            &root.token,
            None
        )
        .await
        .status,
        404
    );

    // A deletion cut short (the account marked, its messages still there) finishes when asked
    // again.
    server
        .sql(&format!(
            "UPDATE users SET deleted = true, disabled = true WHERE id = {}",
            bystander.id
        ))
        .await;
    let again = admin(
        &server,
        Method::DELETE,
        &format!("/users/{}", bystander.id),
        &root.token,
        None,
    )
    .await;
    assert_eq!(lines(&again.body).last().unwrap()["done"], true);
    assert_eq!(
        server
            .count(&format!("messages WHERE channel_id = {channel_id}"))
            .await,
        0
    );
}

#[actix_web::test]
async fn guilds_are_listed_joined_by_force_and_deleted() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let alice = account(&server, "alice").await;
    let newcomer = account(&server, "newcomer").await;
    let (guild_id, channel_id) = guild_with_channel(&server, &alice).await;
    let listed = admin(&server, Method::GET, "/guilds", &root.token, None).await;
    assert_eq!(listed.body[0]["id"], guild_id.as_str());
    assert_eq!(listed.body[0]["member_count"], 1);

    // The newcomer is put in, and made owner.
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    gateway.identify(&newcomer.token).await;
    let forced = admin(
        &server,
        Method::PUT,
        &format!("/guilds/{guild_id}/members/{}", newcomer.id),
        &root.token,
        Some(json!({ "owner": true })),
    )
    .await;
    assert_eq!(forced.status, 200, "{:?}", forced.body);
    assert_eq!(forced.body["joined"], true);
    assert_eq!(forced.body["guild"]["owner_id"], newcomer.id.as_str());
    let created = gateway.dispatch("GUILD_CREATE").await;
    assert_eq!(created["d"]["id"], guild_id.as_str());
    let seen = get(
        &server,
        &format!("/api/v9/guilds/{guild_id}"),
        Some(&newcomer.token),
    )
    .await;
    assert_eq!(seen.body["owner_id"], newcomer.id.as_str());

    // A channel, then the guild with its messages.
    let said = post(
        &server,
        &format!("/api/v9/channels/{channel_id}/messages"),
        Some(&alice.token),
        json!({ "content": "bye" }),
    )
    .await;
    assert_eq!(said.status, 200);
    let channel = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&newcomer.token),
        json!({ "name": "extra" }),
    )
    .await;
    let extra = channel.body["id"].as_str().unwrap();
    delete_channel(&server, &root, extra, &mut gateway).await;
    let deleted = admin(
        &server,
        Method::DELETE,
        &format!("/guilds/{guild_id}"),
        &root.token,
        None,
    )
    .await;
    let steps = lines(&deleted.body);
    assert_eq!(steps.last().unwrap()["done"], true, "{steps:?}");
    assert_eq!(
        gateway.dispatch("GUILD_DELETE").await["d"]["id"],
        guild_id.as_str()
    );
    assert_eq!(server.count("guilds").await, 0);
    assert_eq!(server.count("messages").await, 0);
    assert_eq!(
        admin(
            &server,
            Method::GET,
            &format!("/guilds/{guild_id}"),
            &root.token,
            None
        )
        .await
        .status,
        404
    );
}

#[actix_web::test]
async fn deleting_a_channel_removes_its_files_and_tells_its_members() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let guild = guild(&server).await;
    let bob = join(&server, &guild, "bob").await;
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    gateway.identify(&bob.token).await;
    let url = attach(&server, &guild.owner, &guild.channel, "notes.txt", b"notes").await;
    assert_eq!(fetch(&server, &url, &[]).await.status, 200);

    delete_channel(&server, &root, &guild.channel, &mut gateway).await;
    // As `DELETE /channels/{id}` does: the attachment goes with its channel.
    assert_eq!(fetch(&server, &url, &[]).await.status, 404, "{url}");
}

#[actix_web::test]
async fn configuration_changes_apply_now_or_after_a_restart_and_are_kept() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let config = admin(&server, Method::GET, "/config", &root.token, None).await;
    assert_eq!(
        config.body["config"]["register"]["allow_new_registration"],
        true
    );
    assert_eq!(
        config.body["config"]["security"]["jwt_secret"],
        "<redacted>"
    );

    // Bad changes store nothing.
    for bad in [
        json!({ "register.no_such_key": true }),
        json!({ "register.allow_new_registration": "sometimes" }),
        json!({ "database.url": "postgres://elsewhere" }),
        json!({ "security.jwt_secret": "x" }),
        json!({ "security.bcrypt_cost": 99, "register.allow_new_registration": false }),
    ] {
        let refused = admin(
            &server,
            Method::PATCH,
            "/config",
            &root.token,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
        assert_eq!(refused.body["code"], 50035, "{bad}");
    }
    assert_eq!(server.count("instance_config").await, 0);

    let changed = admin(
        &server,
        Method::PATCH,
        "/config",
        &root.token,
        Some(json!({ "register.allow_new_registration": false, "http.workers": 3 })),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(
        changed.body["applied"],
        json!(["register.allow_new_registration"])
    );
    assert_eq!(changed.body["restart_required"], json!(["http.workers"]));
    let closed = post(
        &server,
        "/api/v9/auth/register",
        None,
        registration("late", "late@example.org"),
    )
    .await;
    assert_eq!(closed.status, 400, "{:?}", closed.body);
    let stored = admin(&server, Method::GET, "/config", &root.token, None).await;
    assert_eq!(stored.body["stored"]["http.workers"], 3);

    // Registration tokens let people in while registration is closed, once each.
    let token = admin(
        &server,
        Method::POST,
        "/registration-tokens",
        &root.token,
        None,
    )
    .await;
    assert_eq!(token.status, 201, "{:?}", token.body);
    let token = token.body["token"].as_str().unwrap().to_string();
    let with_token = post(
        &server,
        &format!("/api/v9/auth/register?token={token}"),
        None,
        registration("invited", "invited@example.org"),
    )
    .await;
    assert_eq!(with_token.status, 200, "{:?}", with_token.body);
    let again = post(
        &server,
        &format!("/api/v9/auth/register?token={token}"),
        None,
        registration("again", "again@example.org"),
    )
    .await;
    assert_eq!(again.status, 400);
    let mut body = registration("bodied", "bodied@example.org");
    let second = admin(
        &server,
        Method::POST,
        "/registration-tokens",
        &root.token,
        None,
    )
    .await;
    body["registration_token"] = second.body["token"].clone();
    let revoked = admin(
        &server,
        Method::DELETE,
        &format!(
            "/registration-tokens/{}",
            second.body["token"].as_str().unwrap()
        ),
        &root.token,
        None,
    )
    .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        post(&server, "/api/v9/auth/register", None, body)
            .await
            .status,
        400
    );
    let expired = admin(
        &server,
        Method::POST,
        "/registration-tokens",
        &root.token,
        Some(json!({ "expires_in": 60 })),
    )
    .await;
    server
        .sql("UPDATE registration_tokens SET expires_at = now() - interval '1 second'")
        .await;
    let late = format!(
        "/api/v9/auth/register?token={}",
        expired.body["token"].as_str().unwrap()
    );
    assert_eq!(
        post(
            &server,
            &late,
            None,
            registration("tardy", "tardy@example.org")
        )
        .await
        .status,
        400
    );
    assert_eq!(server.count("users").await, 2, "root and the one invited");

    // The stored change outlives a restart: a new server on the same database starts closed.
    let restarted = TestServer::on_database(&server.database_url).await;
    let closed = post(
        &restarted,
        "/api/v9/auth/register",
        None,
        registration("later", "later@example.org"),
    )
    .await;
    assert_eq!(closed.status, 400, "{:?}", closed.body);
}

#[actix_web::test]
async fn instance_bans_shut_out_accounts_and_addresses() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let troll = account(&server, "troll").await;

    let banned = admin(
        &server,
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "user_id": troll.id, "reason": "spam" })),
    )
    .await;
    assert_eq!(banned.status, 201, "{:?}", banned.body);
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&troll.token))
            .await
            .status,
        401
    );
    let login = post(
        &server,
        "/api/v9/auth/login",
        None,
        json!({ "login": "troll@example.org", "password": "correct horse" }),
    )
    .await;
    assert_ne!(login.status, 200, "{:?}", login.body);
    let twice = admin(
        &server,
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "user_id": troll.id })),
    )
    .await;
    assert_eq!(twice.status, 400);
    let lifted = admin(
        &server,
        Method::DELETE,
        &format!("/bans/{}", banned.body["id"].as_str().unwrap()),
        &root.token,
        None,
    )
    .await;
    assert_eq!(lifted.status, 204);
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&troll.token))
            .await
            .status,
        200
    );

    // An address: every request from it is refused (127.0.0.2 is this machine too).
    let from = |ip| status_from(&server, ip, &troll.token);
    assert_eq!(from("127.0.0.2").await, 200);
    let by_ip = admin(
        &server,
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "ip": "127.0.0.2" })),
    )
    .await;
    assert_eq!(by_ip.status, 201, "{:?}", by_ip.body);
    assert_eq!(from("127.0.0.2").await, 403);
    assert_eq!(from("127.0.0.1").await, 200);
    let bad = admin(
        &server,
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "ip": "not an address" })),
    )
    .await;
    assert_eq!(bad.status, 400);
    admin(
        &server,
        Method::DELETE,
        &format!("/bans/{}", by_ip.body["id"].as_str().unwrap()),
        &root.token,
        None,
    )
    .await;
    assert_eq!(from("127.0.0.2").await, 200);
}

#[actix_web::test]
async fn rights_are_granted_and_revoked_by_name_or_bit() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let helper = account(&server, "helper").await;
    let path = |right: &str| format!("/users/{}/rights/{right}", helper.id);
    let granted = admin(&server, Method::PUT, &path("operator"), &root.token, None).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    let rights: i64 = granted.body["rights"].as_str().unwrap().parse().unwrap();
    assert_eq!(rights & 1, 1);
    // Now an operator, the helper may use the admin API…
    assert_eq!(
        admin(&server, Method::GET, "/users", &helper.token, None)
            .await
            .status,
        200
    );
    // …until the bit is taken back.
    let revoked = admin(&server, Method::DELETE, &path("0"), &root.token, None).await;
    let rights: i64 = revoked.body["rights"].as_str().unwrap().parse().unwrap();
    assert_eq!(rights & 1, 0);
    assert_eq!(
        admin(&server, Method::GET, "/users", &helper.token, None)
            .await
            .status,
        403
    );
    assert_eq!(
        admin(&server, Method::PUT, &path("FLYING"), &root.token, None)
            .await
            .status,
        400
    );
    // A right other than OPERATOR shows in the bits, and can be revoked alone.
    let manage = admin(
        &server,
        Method::PUT,
        &path("MANAGE_USERS"),
        &root.token,
        None,
    )
    .await;
    let rights: i64 = manage.body["rights"].as_str().unwrap().parse().unwrap();
    assert_eq!(rights & (1 << 7), 1 << 7);
}

#[actix_web::test]
async fn behind_a_trusted_proxy_bans_apply_to_the_forwarded_address_only() {
    let server = TestServer::with(&[("http.trusted_proxies", "127.0.0.2")]).await;
    let root = operator(&server).await;
    let visitor = account(&server, "visitor").await;
    let by_ip = admin(
        &server,
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "ip": "203.0.113.9" })),
    )
    .await;
    assert_eq!(by_ip.status, 201, "{:?}", by_ip.body);
    // (peer, X-Forwarded-For) → status.
    let from = |peer: &'static str, forwarded: &'static str| {
        let url = server.url("/api/v9/users/@me");
        let token = visitor.token.clone();
        async move {
            let connector = awc::Connector::new().local_address(peer.parse().unwrap());
            let client = awc::Client::builder().connector(connector).finish();
            client
                .get(url)
                .insert_header(("Authorization", token))
                .insert_header(("X-Forwarded-For", forwarded))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Through the proxy, the address it appended last is the client's.
    assert_eq!(from("127.0.0.2", "203.0.113.9").await, 403);
    assert_eq!(from("127.0.0.2", "198.51.100.1, 203.0.113.9").await, 403);
    // What the client itself put first is not believed.
    assert_eq!(from("127.0.0.2", "203.0.113.9, 198.51.100.1").await, 200);
    // Nor is the header of a peer that is no trusted proxy.
    assert_eq!(from("127.0.0.1", "203.0.113.9").await, 200);
}
