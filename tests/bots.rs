//! Applications, bot users and adding bots to guilds over real HTTP and gateways: what a bot's
//! token can do, what its gateway says, and what a guild sees when a bot joins.

use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::http::{assert_form_error, get, post, register_user, Response};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";

fn assert_code(response: &Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code, "{:?}", response.body);
}

/// A new application of `token`'s owner, with its bot: (application id, bot token).
pub async fn application_with_bot(
    server: &TestServer,
    token: &str,
    name: &str,
) -> (String, String) {
    let app = post(
        server,
        "/api/v9/applications",
        Some(token),
        json!({ "name": name }),
    )
    .await;
    assert_eq!(app.status, 201, "{:?}", app.body);
    let id = app.body["id"].as_str().unwrap().to_string();
    let bot = post(
        server,
        &format!("/api/v9/applications/{id}/bot"),
        Some(token),
        json!({}),
    )
    .await;
    assert_eq!(bot.status, 200, "{:?}", bot.body);
    (id, bot.body["token"].as_str().unwrap().to_string())
}

/// A guild of `token`'s owner: its id.
pub async fn guild(server: &TestServer, token: &str) -> String {
    let guild = post(
        server,
        "/api/v9/guilds",
        Some(token),
        json!({ "name": "Bot Testing" }),
    )
    .await;
    assert_eq!(guild.status, 201, "{:?}", guild.body);
    guild.body["id"].as_str().unwrap().to_string()
}

/// `POST /oauth2/authorize` adding `application_id`'s bot to `guild_id`.
pub async fn authorize(
    server: &TestServer,
    token: &str,
    application_id: &str,
    guild_id: &str,
    permissions: &str,
) -> Response {
    post(
        server,
        &format!("/api/v9/oauth2/authorize?client_id={application_id}&scope=bot"),
        Some(token),
        json!({ "guild_id": guild_id, "permissions": permissions, "authorize": true }),
    )
    .await
}

#[actix_web::test]
async fn applications_belong_to_their_owner_and_make_one_bot() {
    let server = TestServer::start().await;
    let (alice, alice_user) = register_user(&server, "alice").await;
    let (bob, _) = register_user(&server, "bob").await;

    let created = post(
        &server,
        "/api/v9/applications",
        Some(&alice),
        json!({ "name": "Helper" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let app = created.body;
    let app_id = app["id"].as_str().unwrap().to_string();
    assert_eq!(app["name"], "Helper");
    assert_eq!(app["owner"]["id"], alice_user["id"]);
    assert_eq!(app["bot"], Value::Null);
    assert_eq!(app["verify_key"].as_str().unwrap().len(), 64);
    assert_form_error(
        &post(
            &server,
            "/api/v9/applications",
            Some(&alice),
            json!({ "name": "x" }),
        )
        .await,
        "name",
        "BASE_TYPE_BAD_LENGTH",
    );

    // Only accounts with the CREATE_APPLICATIONS right make applications.
    let bob_id = get(&server, "/api/v9/users/@me", Some(&bob)).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .sql(&format!("UPDATE users SET rights = 0 WHERE id = {bob_id}"))
        .await;
    assert_code(
        &post(
            &server,
            "/api/v9/applications",
            Some(&bob),
            json!({ "name": "Mine" }),
        )
        .await,
        403,
        50013,
    );

    let mine = get(&server, "/api/v9/applications", Some(&alice)).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    assert_eq!(
        get(&server, "/api/v9/applications", Some(&bob)).await.body,
        json!([])
    );
    let path = format!("/api/v9/applications/{app_id}");
    assert_eq!(
        get(&server, &path, Some(&alice)).await.body["id"],
        app["id"]
    );
    assert_code(&get(&server, &path, Some(&bob)).await, 404, 10002);

    // The bot: only the owner makes it, once.
    let bot_path = format!("/api/v9/applications/{app_id}/bot");
    assert_code(
        &post(&server, &bot_path, Some(&bob), json!({})).await,
        404,
        10002,
    );
    let made = post(&server, &bot_path, Some(&alice), json!({})).await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    assert_eq!(
        made.body["id"], app["id"],
        "a bot shares its application's id"
    );
    assert_eq!(made.body["bot"], true);
    assert_eq!(made.body["username"], "Helper");
    let token = made.body["token"].as_str().unwrap().to_string();
    let again = post(&server, &bot_path, Some(&alice), json!({})).await;
    assert_eq!(again.status, 400, "{:?}", again.body);

    // The token works with Discord's `Bot ` prefix, and names its application.
    let bot_token = format!("Bot {token}");
    let me = get(&server, "/api/v10/users/@me", Some(&bot_token)).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["id"], app["id"]);
    assert_eq!(me.body["bot"], true);
    let own = get(
        &server,
        "/api/v10/oauth2/applications/@me",
        Some(&bot_token),
    )
    .await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    for key in [
        "id",
        "name",
        "description",
        "icon",
        "bot_public",
        "bot_require_code_grant",
        "owner",
        "verify_key",
        "flags",
        "team",
    ] {
        assert!(own.body.get(key).is_some(), "the application lacks {key}");
    }
    assert_eq!(own.body["id"], app["id"]);
    assert_eq!(own.body["owner"]["id"], alice_user["id"]);
    assert_eq!(own.body["bot"]["id"], app["id"]);
    assert_eq!(
        get(&server, "/api/v10/applications/@me", Some(&bot_token))
            .await
            .body["id"],
        app["id"]
    );
    assert_code(
        &get(&server, "/api/v9/oauth2/applications/@me", Some(&alice)).await,
        404,
        10002,
    );

    // What only people may do.
    assert_code(
        &post(
            &server,
            "/api/v9/applications",
            Some(&bot_token),
            json!({ "name": "Sub" }),
        )
        .await,
        403,
        20001,
    );
    assert_code(
        &get(&server, "/api/v9/users/@me/relationships", Some(&bot_token)).await,
        403,
        20001,
    );
    // Nobody befriends a bot.
    let befriend_bot = crate::common::http::request(
        &server,
        awc::http::Method::PUT,
        &format!("/api/v9/users/@me/relationships/{app_id}"),
        Some(&alice),
        Some(json!({})),
    )
    .await;
    assert_code(&befriend_bot, 400, 80002);

    // A reset ends the old token and hands out a new one.
    let reset_path = format!("/api/v9/applications/{app_id}/bot/reset");
    assert_code(
        &post(&server, &reset_path, Some(&bob), json!({})).await,
        404,
        10002,
    );
    let reset = post(&server, &reset_path, Some(&alice), json!({})).await;
    assert_eq!(reset.status, 200, "{:?}", reset.body);
    let new_token = reset.body["token"].as_str().unwrap();
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&bot_token))
            .await
            .status,
        401
    );
    assert_eq!(
        get(
            &server,
            "/api/v9/users/@me",
            Some(&format!("Bot {new_token}"))
        )
        .await
        .status,
        200
    );
    // An application's name must make a valid username for its bot.
    let hashed = post(
        &server,
        "/api/v9/applications",
        Some(&alice),
        json!({ "name": "Hash#Tag" }),
    )
    .await;
    assert_eq!(hashed.status, 201, "{:?}", hashed.body);
    let hashed_id = hashed.body["id"].as_str().unwrap();
    assert_form_error(
        &post(
            &server,
            &format!("/api/v9/applications/{hashed_id}/bot"),
            Some(&alice),
            json!({}),
        )
        .await,
        "username",
        "USERNAME_INVALID_CONTAINS",
    );
    let botless = post(
        &server,
        "/api/v9/applications",
        Some(&alice),
        json!({ "name": "Botless" }),
    )
    .await;
    let botless_id = botless.body["id"].as_str().unwrap();
    assert_code(
        &post(
            &server,
            &format!("/api/v9/applications/{botless_id}/bot/reset"),
            Some(&alice),
            json!({}),
        )
        .await,
        400,
        50010,
    );
}

#[actix_web::test]
async fn a_bots_ready_has_its_application_then_one_guild_create_per_guild() {
    let server = TestServer::start().await;
    let (alice, _) = register_user(&server, "alice").await;
    let guild_id = guild(&server, &alice).await;
    let (app_id, token) = application_with_bot(&server, &alice, "Greeter").await;
    let added = authorize(&server, &alice, &app_id, &guild_id, "0").await;
    assert_eq!(added.status, 200, "{:?}", added.body);

    let mut gateway = Gateway::connect(&server, "v=10&encoding=json").await;
    let ready = gateway.identify(&format!("Bot {token}")).await["d"].clone();
    assert_eq!(ready["user"]["bot"], true);
    assert_eq!(ready["application"]["id"], app_id);
    assert!(ready["application"]["flags"].is_number());
    assert_eq!(
        ready["guilds"],
        json!([{ "id": guild_id, "unavailable": true }])
    );
    let created = gateway.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(created["id"], guild_id);
    assert_eq!(created["member_count"], 2);
    let members = created["members"].as_array().unwrap();
    assert!(members.iter().any(|m| m["user"]["id"] == app_id));
}

#[actix_web::test]
async fn authorizing_adds_the_bot_with_a_managed_role() {
    let server = TestServer::start().await;
    let (alice, alice_user) = register_user(&server, "alice").await;
    let (bob, bob_user) = register_user(&server, "bob").await;
    let (carol, _) = register_user(&server, "carol").await;
    let guild_id = guild(&server, &alice).await;
    let (app_id, token) = application_with_bot(&server, &alice, "Moderator").await;

    let mut watcher = Gateway::connect(&server, JSON).await;
    watcher.identify(&alice).await;
    let mut bot = Gateway::connect(&server, JSON).await;
    let ready = bot.identify(&format!("Bot {token}")).await;
    assert_eq!(ready["d"]["guilds"], json!([]));

    // The authorize screen lists the guilds the caller manages.
    let screen = get(
        &server,
        &format!("/api/v9/oauth2/authorize?client_id={app_id}&scope=bot"),
        Some(&alice),
    )
    .await;
    assert_eq!(screen.status, 200, "{:?}", screen.body);
    assert_eq!(screen.body["application"]["id"], app_id);
    assert_eq!(screen.body["bot"]["id"], app_id);
    assert_eq!(screen.body["user"]["id"], alice_user["id"]);
    assert_eq!(screen.body["guilds"][0]["id"], guild_id);

    // A member without MANAGE_GUILD may not; a stranger does not see the guild.
    let bob_id = bob_user["id"].as_str().unwrap();
    server
        .sql(&format!(
            "INSERT INTO members (guild_id, user_id) VALUES ({guild_id}, {bob_id})"
        ))
        .await;
    let bobs_screen = get(
        &server,
        &format!("/api/v9/oauth2/authorize?client_id={app_id}"),
        Some(&bob),
    )
    .await;
    assert_eq!(bobs_screen.body["guilds"], json!([]));
    assert_code(
        &authorize(&server, &bob, &app_id, &guild_id, "8").await,
        403,
        50013,
    );
    assert_code(
        &authorize(&server, &carol, &app_id, &guild_id, "8").await,
        404,
        10004,
    );
    // Bots do not add bots.
    assert_code(
        &authorize(&server, &format!("Bot {token}"), &app_id, &guild_id, "8").await,
        403,
        20001,
    );
    assert_code(
        &authorize(&server, &alice, "12345", &guild_id, "8").await,
        404,
        10002,
    );
    let botless = post(
        &server,
        "/api/v9/applications",
        Some(&alice),
        json!({ "name": "Botless" }),
    )
    .await;
    let botless_id = botless.body["id"].as_str().unwrap();
    assert_code(
        &authorize(&server, &alice, botless_id, &guild_id, "8").await,
        400,
        50010,
    );
    assert_form_error(
        &post(
            &server,
            &format!("/api/v9/oauth2/authorize?client_id={app_id}&scope=bot"),
            Some(&alice),
            json!({ "authorize": true }),
        )
        .await,
        "guild_id",
        "BASE_TYPE_REQUIRED",
    );
    assert_form_error(
        &get(&server, "/api/v9/oauth2/authorize?scope=bot", Some(&alice)).await,
        "client_id",
        "BASE_TYPE_REQUIRED",
    );
    let denied = post(
        &server,
        &format!("/api/v9/oauth2/authorize?client_id={app_id}&scope=bot"),
        Some(&alice),
        json!({ "guild_id": guild_id, "authorize": false }),
    )
    .await;
    assert_eq!(denied.status, 200);
    assert!(denied.body["location"]
        .as_str()
        .unwrap()
        .contains("error=access_denied"));
    assert_eq!(
        server
            .count(&format!("members WHERE user_id = {app_id}"))
            .await,
        0
    );

    // The owner adds it, with permissions from the query string.
    let added = post(
        &server,
        &format!("/api/v9/oauth2/authorize?client_id={app_id}&scope=bot&permissions=8"),
        Some(&alice),
        json!({ "guild_id": guild_id, "authorize": true }),
    )
    .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert!(added.body["location"].is_string());

    let role = watcher.dispatch("GUILD_ROLE_CREATE").await["d"].clone();
    assert_eq!(role["guild_id"], guild_id);
    assert_eq!(role["role"]["name"], "Moderator");
    assert_eq!(role["role"]["managed"], true);
    assert_eq!(role["role"]["permissions"], "8");
    assert_eq!(role["role"]["position"], 1);
    assert_eq!(role["role"]["tags"]["bot_id"], app_id);
    let member = watcher.dispatch("GUILD_MEMBER_ADD").await["d"].clone();
    assert_eq!(member["guild_id"], guild_id);
    assert_eq!(member["user"]["id"], app_id);
    assert_eq!(member["user"]["bot"], true);
    assert_eq!(member["roles"], json!([role["role"]["id"]]));
    let joined = bot.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(joined["id"], guild_id);
    assert!(joined["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == role["role"]["id"]));

    // The bot now hears the guild: a channel made after it joined reaches it.
    let channel = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/channels"),
        Some(&alice),
        json!({ "name": "bots-only" }),
    )
    .await;
    assert_eq!(channel.status, 201, "{:?}", channel.body);
    assert_eq!(
        bot.dispatch("CHANNEL_CREATE").await["d"]["name"],
        "bots-only"
    );

    // Authorizing again changes nothing.
    assert_eq!(
        authorize(&server, &alice, &app_id, &guild_id, "8")
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .count(&format!("roles WHERE guild_id = {guild_id} AND managed"))
            .await,
        1
    );
}

#[actix_web::test]
async fn a_bot_granted_nothing_gets_no_role_and_a_banned_bot_cannot_join() {
    let server = TestServer::start().await;
    let (alice, _) = register_user(&server, "alice").await;
    let guild_id = guild(&server, &alice).await;
    let (quiet, _) = application_with_bot(&server, &alice, "Quiet").await;
    let added = authorize(&server, &alice, &quiet, &guild_id, "0").await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(
        server
            .count(&format!("roles WHERE guild_id = {guild_id} AND managed"))
            .await,
        0
    );
    assert_eq!(
        server
            .count(&format!(
                "members WHERE user_id = {quiet} AND roles = '{{}}'"
            ))
            .await,
        1
    );

    let (banned, _) = application_with_bot(&server, &alice, "Banned").await;
    server
        .sql(&format!(
            "INSERT INTO bans (guild_id, user_id) VALUES ({guild_id}, {banned})"
        ))
        .await;
    assert_code(
        &authorize(&server, &alice, &banned, &guild_id, "8").await,
        403,
        40007,
    );
}

#[actix_web::test]
async fn a_reset_closes_the_old_tokens_gateway_and_deleting_the_application_removes_its_bot() {
    let server = TestServer::start().await;
    let (alice, _) = register_user(&server, "alice").await;
    let (bob, _) = register_user(&server, "bob").await;
    let guild_id = guild(&server, &alice).await;
    let (app_id, token) = application_with_bot(&server, &alice, "Temporary").await;
    let added = authorize(&server, &alice, &app_id, &guild_id, "68608").await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let mut old = Gateway::connect(&server, "v=10&encoding=json").await;
    old.identify(&format!("Bot {token}")).await;
    let reset = post(
        &server,
        &format!("/api/v9/applications/{app_id}/bot/reset"),
        Some(&alice),
        json!({}),
    )
    .await;
    assert_eq!(
        old.closed().await,
        Some(4004),
        "the old token's session ends"
    );
    let bot = format!("Bot {}", reset.body["token"].as_str().unwrap());
    let command = post(
        &server,
        &format!("/api/v10/applications/{app_id}/commands"),
        Some(&bot),
        json!({ "name": "gone", "description": "Soon" }),
    )
    .await;
    assert_eq!(command.status, 201, "{:?}", command.body);

    let mut watcher = Gateway::connect(&server, "v=9&encoding=json").await;
    watcher.identify(&alice).await;
    let path = format!("/api/v9/applications/{app_id}/delete");
    assert_code(
        &post(&server, &path, Some(&bob), json!({})).await,
        404,
        10002,
    );
    let deleted = post(&server, &path, Some(&alice), json!({})).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let removed = watcher.dispatch("GUILD_MEMBER_REMOVE").await;
    assert_eq!(removed["d"]["user"]["id"], app_id.as_str());
    assert_eq!(
        get(&server, "/api/v9/users/@me", Some(&bot)).await.status,
        401
    );
    assert_code(
        &get(
            &server,
            &format!("/api/v9/applications/{app_id}"),
            Some(&alice),
        )
        .await,
        404,
        10002,
    );
    assert_eq!(
        server
            .count(&format!(
                "application_commands WHERE application_id = {app_id}"
            ))
            .await,
        0
    );
    assert_eq!(
        server
            .count(&format!("members WHERE user_id = {app_id}"))
            .await,
        0
    );
}
