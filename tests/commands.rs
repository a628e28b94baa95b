//! Application commands over real HTTP: a bot registers global and guild commands, replaces
//! one by name, overwrites them in bulk, edits and deletes them; the guild's members see them
//! in the command index and hear APPLICATION_COMMAND_* events; nobody else may touch them.

use awc::http::Method;
use serde_json::{json, Value};

use crate::bots::{application_with_bot, authorize};
use crate::common::gateway::Gateway;
use crate::common::http::{account, get, patch, post, request};
use crate::common::TestServer;

const BOT_PERMISSIONS: &str = "68608";

async fn guild(server: &TestServer, token: &str) -> String {
    let created = post(
        server,
        "/api/v9/guilds",
        Some(token),
        json!({ "name": "Commands" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[actix_web::test]
async fn a_bot_manages_its_global_and_guild_commands() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let stranger = account(&server, "stranger").await;
    let guild_id = guild(&server, &owner.token).await;
    let (app_id, token) = application_with_bot(&server, &owner.token, "Helper").await;
    let bot = format!("Bot {token}");
    let global = format!("/api/v10/applications/{app_id}/commands");
    let local = format!("/api/v10/applications/{app_id}/guilds/{guild_id}/commands");

    // Not in the guild yet: its guild commands are out of reach.
    let early = post(
        &server,
        &local,
        Some(&bot),
        json!({ "name": "ping", "description": "Ping" }),
    )
    .await;
    assert_eq!(early.status, 403, "{:?}", early.body);
    assert_eq!(
        authorize(&server, &owner.token, &app_id, &guild_id, BOT_PERMISSIONS)
            .await
            .status,
        200
    );
    let mut watcher = Gateway::connect(&server, "v=9&encoding=json").await;
    watcher.identify(&owner.token).await;

    let created = post(&server, &local, Some(&bot), json!({ "name": "ping", "description": "Ping", "options": [{ "type": 3, "name": "text", "description": "What" }] })).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["guild_id"], guild_id.as_str());
    assert_eq!(created.body["application_id"], app_id.as_str());
    let event = watcher.dispatch("APPLICATION_COMMAND_CREATE").await;
    assert_eq!(event["d"]["id"], created.body["id"]);

    // The same name again replaces it, keeping its id.
    let replaced = post(
        &server,
        &local,
        Some(&bot),
        json!({ "name": "ping", "description": "Ping again" }),
    )
    .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_eq!(replaced.body["id"], created.body["id"]);
    assert_eq!(replaced.body["options"], json!([]));

    // Global ones, managed by the owner too.
    let global_one = post(
        &server,
        &global,
        Some(&owner.token),
        json!({ "name": "help", "description": "Help" }),
    )
    .await;
    assert_eq!(global_one.status, 201, "{:?}", global_one.body);
    let message_command = post(
        &server,
        &global,
        Some(&bot),
        json!({ "name": "Quote This", "type": 3 }),
    )
    .await;
    assert_eq!(message_command.status, 201, "{:?}", message_command.body);

    // Bad commands are form errors.
    for bad in [
        json!({ "name": "Has Spaces", "description": "x" }),
        json!({ "name": "ok", "description": "" }),
        json!({ "name": "ok", "description": "x", "type": 9 }),
        json!({ "name": "menu", "description": "not for menus", "type": 2 }),
    ] {
        let refused = post(&server, &global, Some(&bot), bad.clone()).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.body["code"], 50035, "{bad}");
    }

    // Members see what they can invoke.
    let index = get(
        &server,
        &format!("/api/v9/guilds/{guild_id}/application-command-index"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(index.status, 200, "{:?}", index.body);
    assert_eq!(
        names(&index.body["application_commands"]),
        ["Quote This", "help", "ping"]
    );
    assert_eq!(index.body["applications"][0]["id"], app_id.as_str());
    let outside = get(
        &server,
        &format!("/api/v9/guilds/{guild_id}/application-command-index"),
        Some(&stranger.token),
    )
    .await;
    assert_eq!(outside.status, 404);

    // Edit, get, delete.
    let command = format!("{global}/{}", global_one.body["id"].as_str().unwrap());
    let edited = patch(
        &server,
        &command,
        &bot,
        json!({ "description": "More help" }),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["name"], "help");
    assert_ne!(edited.body["version"], global_one.body["version"]);
    assert_eq!(
        get(&server, &command, Some(&bot)).await.body["description"],
        "More help"
    );
    assert_eq!(
        get(&server, &command, Some(&stranger.token)).await.status,
        404
    );
    assert_eq!(
        request(
            &server,
            Method::DELETE,
            &command,
            Some(&stranger.token),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        request(&server, Method::DELETE, &command, Some(&bot), None)
            .await
            .status,
        204
    );
    assert_eq!(get(&server, &command, Some(&bot)).await.status, 404);

    // A bulk overwrite leaves exactly what it names.
    let bulk = request(
        &server,
        Method::PUT,
        &local,
        Some(&bot),
        Some(json!([
            { "name": "ping", "description": "Still here" },
            { "name": "roll", "description": "Dice" },
        ])),
    )
    .await;
    assert_eq!(bulk.status, 200, "{:?}", bulk.body);
    assert_eq!(names(&bulk.body), ["ping", "roll"]);
    assert_eq!(bulk.body[0]["id"], created.body["id"], "kept by name");
    let bad_bulk = request(&server, Method::PUT, &local, Some(&bot), Some(json!([{ "name": "fine", "description": "ok" }, { "name": "BAD NAME", "description": "x" }]))).await;
    assert_eq!(bad_bulk.status, 400);
    assert!(
        bad_bulk.body["errors"]["1"]["name"].is_object(),
        "{:?}",
        bad_bulk.body
    );
    assert_eq!(
        names(&get(&server, &local, Some(&bot)).await.body),
        ["ping", "roll"],
        "nothing changed"
    );
    let emptied = request(&server, Method::PUT, &global, Some(&bot), Some(json!([]))).await;
    assert_eq!(emptied.body, json!([]));
    assert_eq!(
        get(&server, &global, Some(&stranger.token)).await.status,
        404
    );
}
