//! Interactions end to end over real HTTP and gateways: a bot registers a command, a person
//! invokes it, the bot defers and then edits `@original` through the follow-up webhook, and the
//! person's gateway sees it all (INTERACTION_CREATE, the thinking message, the answer,
//! INTERACTION_SUCCESS); follow-ups, a second answer refused, the token surviving a restart,
//! INTERACTION_FAILURE when the bot stays silent, buttons answered with UPDATE_MESSAGE, and
//! the checks on who may invoke what.

use awc::http::Method;
use serde_json::{json, Value};

use crate::bots::{application_with_bot, authorize, guild};
use crate::common::gateway::Gateway;
use crate::common::guild::text_channel;
use crate::common::http::{account, get, patch, post, request, Account};
use crate::common::TestServer;

/// VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY.
const BOT_PERMISSIONS: &str = "68608";
const LOADING: u64 = 1 << 7;

struct World {
    server: TestServer,
    owner: Account,
    guild_id: String,
    channel_id: String,
    app_id: String,
    bot: String,
    command_id: String,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let guild_id = guild(&server, &owner.token).await;
    let channel_id = text_channel(&server, &owner.token, &guild_id).await;
    let (app_id, token) = application_with_bot(&server, &owner.token, "Answerer").await;
    assert_eq!(
        authorize(&server, &owner.token, &app_id, &guild_id, BOT_PERMISSIONS)
            .await
            .status,
        200
    );
    let bot = format!("Bot {token}");
    let command = post(
        &server,
        &format!("/api/v10/applications/{app_id}/guilds/{guild_id}/commands"),
        Some(&bot),
        json!({ "name": "ping", "description": "Answers pong", "options": [{ "type": 3, "name": "word", "description": "Say it" }] }),
    )
    .await;
    assert_eq!(command.status, 201, "{:?}", command.body);
    World {
        command_id: command.body["id"].as_str().unwrap().to_string(),
        server,
        owner,
        guild_id,
        channel_id,
        app_id,
        bot,
    }
}

async fn gateway(server: &TestServer, token: &str) -> Gateway {
    let mut gateway = Gateway::connect(server, "v=10&encoding=json").await;
    gateway.identify(token).await;
    gateway
}

impl World {
    fn invocation(&self, nonce: &str) -> Value {
        json!({
            "type": 2,
            "application_id": self.app_id,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "session_id": "abc",
            "nonce": nonce,
            "data": { "id": self.command_id, "name": "ping", "type": 1, "options": [{ "type": 3, "name": "word", "value": "hi" }] },
        })
    }

    async fn invoke(&self, token: &str, body: Value) -> crate::common::http::Response {
        post(&self.server, "/api/v9/interactions", Some(token), body).await
    }

    async fn callback(&self, created: &Value, body: Value) -> crate::common::http::Response {
        let path = format!(
            "/api/v10/interactions/{}/{}/callback",
            created["id"].as_str().unwrap(),
            created["token"].as_str().unwrap()
        );
        post(&self.server, &path, None, body).await
    }

    fn webhook(&self, created: &Value) -> String {
        format!(
            "/api/v10/webhooks/{}/{}",
            self.app_id,
            created["token"].as_str().unwrap()
        )
    }
}

#[actix_web::test]
async fn a_command_is_invoked_deferred_and_answered_through_the_follow_up_webhook() {
    let w = world().await;
    let mut bot = gateway(&w.server, &w.bot).await;
    let mut person = gateway(&w.server, &w.owner.token).await;

    let invoked = w.invoke(&w.owner.token, w.invocation("n1")).await;
    assert_eq!(invoked.status, 204, "{:?}", invoked.body);
    let receipt = person.dispatch("INTERACTION_CREATE").await["d"].clone();
    assert_eq!(receipt["nonce"], "n1");
    let created = bot.dispatch("INTERACTION_CREATE").await["d"].clone();
    assert_eq!(created["id"], receipt["id"]);
    assert_eq!(created["type"], 2);
    assert_eq!(created["data"]["name"], "ping");
    assert_eq!(created["data"]["options"][0]["value"], "hi");
    assert_eq!(created["guild_id"], w.guild_id.as_str());
    assert_eq!(created["channel_id"], w.channel_id.as_str());
    assert_eq!(created["member"]["user"]["id"], w.owner.id.as_str());
    assert!(created["member"]["permissions"].is_string());
    assert!(created["token"].as_str().unwrap().len() >= 32);

    // The bot defers: the person sees the thinking message, and that it worked.
    let deferred = w.callback(&created, json!({ "type": 5 })).await;
    assert_eq!(deferred.status, 204, "{:?}", deferred.body);
    let heard = person
        .dispatches(&["MESSAGE_CREATE", "INTERACTION_SUCCESS"])
        .await;
    let thinking = heard[0]["d"].clone();
    assert_eq!(thinking["author"]["id"], w.app_id.as_str());
    assert_eq!(thinking["flags"].as_u64().unwrap() & LOADING, LOADING);
    assert_eq!(thinking["type"], 20);
    assert_eq!(
        thinking["interaction_metadata"]["user"]["id"],
        w.owner.id.as_str()
    );
    assert_eq!(thinking["interaction"]["name"], "ping");
    let success = heard[1]["d"].clone();
    assert_eq!(success["id"], receipt["id"]);
    assert_eq!(success["nonce"], "n1");
    let again = w
        .callback(
            &created,
            json!({ "type": 4, "data": { "content": "twice" } }),
        )
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.body["code"], 40060);

    // …then edits @original: the answer.
    let original = format!("{}/messages/@original", w.webhook(&created));
    let answered = patch(&w.server, &original, "", json!({ "content": "pong" })).await;
    assert_eq!(answered.status, 200, "{:?}", answered.body);
    assert_eq!(answered.body["content"], "pong");
    assert_eq!(answered.body["flags"].as_u64().unwrap() & LOADING, 0);
    let update = person.dispatch("MESSAGE_UPDATE").await["d"].clone();
    assert_eq!(update["id"], thinking["id"]);
    assert_eq!(update["content"], "pong");
    assert_eq!(
        get(&w.server, &original, None).await.body["content"],
        "pong"
    );

    // A follow-up, read back and deleted.
    let followed = post(
        &w.server,
        &w.webhook(&created),
        None,
        json!({ "content": "and more" }),
    )
    .await;
    assert_eq!(followed.status, 200, "{:?}", followed.body);
    let follow_up = format!(
        "{}/messages/{}",
        w.webhook(&created),
        followed.body["id"].as_str().unwrap()
    );
    assert_eq!(
        get(&w.server, &follow_up, None).await.body["content"],
        "and more"
    );
    assert_eq!(
        person.dispatch("MESSAGE_CREATE").await["d"]["content"],
        "and more"
    );
    assert_eq!(
        request(&w.server, Method::DELETE, &follow_up, None, None)
            .await
            .status,
        204
    );
    assert_eq!(
        person.dispatch("MESSAGE_DELETE").await["d"]["id"],
        followed.body["id"]
    );
    // An ephemeral follow-up reaches the person alone and never shows in history.
    let secret = post(
        &w.server,
        &w.webhook(&created),
        None,
        json!({ "content": "psst", "flags": 64 }),
    )
    .await;
    assert_eq!(secret.status, 200, "{:?}", secret.body);
    assert_eq!(
        person.dispatch("MESSAGE_CREATE").await["d"]["content"],
        "psst"
    );
    let history = get(
        &w.server,
        &format!("/api/v9/channels/{}/messages", w.channel_id),
        Some(&w.owner.token),
    )
    .await;
    assert!(
        history
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["content"] != "psst"),
        "{:?}",
        history.body
    );
    // Someone else's message is not the webhook's to touch.
    let other = post(
        &w.server,
        &format!("/api/v9/channels/{}/messages", w.channel_id),
        Some(&w.owner.token),
        json!({ "content": "mine" }),
    )
    .await;
    let foreign = format!(
        "{}/messages/{}",
        w.webhook(&created),
        other.body["id"].as_str().unwrap()
    );
    assert_eq!(get(&w.server, &foreign, None).await.status, 404);
    // A wrong token is no webhook at all.
    let wrong = format!(
        "/api/v10/webhooks/{}/nottherighttoken/messages/@original",
        w.app_id
    );
    assert_eq!(get(&w.server, &wrong, None).await.body["code"], 10015);

    // The interaction lives in the database: a restarted server still takes the edit.
    let restarted = TestServer::on_database(&w.server.database_url).await;
    let later = patch(
        &restarted,
        &original,
        "",
        json!({ "content": "pong, after a restart" }),
    )
    .await;
    assert_eq!(later.status, 200, "{:?}", later.body);
    let history = get(
        &w.server,
        &format!(
            "/api/v9/channels/{}/messages/{}",
            w.channel_id,
            thinking["id"].as_str().unwrap()
        ),
        Some(&w.owner.token),
    )
    .await;
    assert_eq!(history.body["content"], "pong, after a restart");
}

#[actix_web::test]
async fn silence_fails_and_buttons_are_answered_by_updating_the_message() {
    let w = world().await;
    let mut bot = gateway(&w.server, &w.bot).await;
    let mut person = gateway(&w.server, &w.owner.token).await;

    // The bot hears it and says nothing: the person is told it failed.
    assert_eq!(
        w.invoke(&w.owner.token, w.invocation("quiet")).await.status,
        204
    );
    let created = bot.dispatch("INTERACTION_CREATE").await["d"].clone();
    let failure = person.dispatch("INTERACTION_FAILURE").await["d"].clone();
    assert_eq!(failure["id"], created["id"]);
    assert_eq!(failure["nonce"], "quiet");

    // An answer with a button; the person presses it; the bot updates the message.
    assert_eq!(
        w.invoke(&w.owner.token, w.invocation("menu")).await.status,
        204
    );
    let created = bot.dispatch("INTERACTION_CREATE").await["d"].clone();
    let button = json!([{ "type": 1, "components": [{ "type": 2, "style": 1, "label": "Press", "custom_id": "press" }] }]);
    let answered = w
        .callback(
            &created,
            json!({ "type": 4, "data": { "content": "menu", "components": button } }),
        )
        .await;
    assert_eq!(answered.status, 204, "{:?}", answered.body);
    let menu = person.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(menu["components"], button);
    // Only components answer with 6 and 7.
    assert_eq!(w.callback(&created, json!({ "type": 7 })).await.status, 400);

    let pressed = w
        .invoke(
            &w.owner.token,
            json!({
                "type": 3,
                "application_id": w.app_id,
                "guild_id": w.guild_id,
                "channel_id": w.channel_id,
                "message_id": menu["id"],
                "nonce": "press",
                "data": { "custom_id": "press", "component_type": 2 },
            }),
        )
        .await;
    assert_eq!(pressed.status, 204, "{:?}", pressed.body);
    let click = bot.dispatch("INTERACTION_CREATE").await["d"].clone();
    assert_eq!(click["type"], 3);
    assert_eq!(click["data"]["custom_id"], "press");
    assert_eq!(click["message"]["id"], menu["id"]);
    let updated = w
        .callback(
            &click,
            json!({ "type": 7, "data": { "content": "pressed", "components": [] } }),
        )
        .await;
    assert_eq!(updated.status, 204, "{:?}", updated.body);
    let update = person.dispatch("MESSAGE_UPDATE").await["d"].clone();
    assert_eq!(update["id"], menu["id"]);
    assert_eq!(update["content"], "pressed");
    assert_eq!(update["components"], json!([]));
}

#[actix_web::test]
async fn who_may_invoke_what_is_checked() {
    let w = world().await;
    let stranger = account(&w.server, "stranger").await;
    // Not in the guild.
    assert_eq!(
        w.invoke(&stranger.token, w.invocation("x")).await.status,
        404
    );

    // A member without USE_APPLICATION_COMMANDS.
    let invite = post(
        &w.server,
        &format!("/api/v9/channels/{}/invites", w.channel_id),
        Some(&w.owner.token),
        json!({}),
    )
    .await;
    let code = invite.body["code"].as_str().unwrap();
    assert_eq!(
        post(
            &w.server,
            &format!("/api/v9/invites/{code}"),
            Some(&stranger.token),
            json!({})
        )
        .await
        .status,
        200
    );
    let everyone = get(
        &w.server,
        &format!("/api/v9/guilds/{}/roles", w.guild_id),
        Some(&w.owner.token),
    )
    .await;
    let everyone = everyone
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == w.guild_id.as_str())
        .unwrap()
        .clone();
    let without: u64 = everyone["permissions"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap()
        & !(1 << 31);
    let changed = patch(
        &w.server,
        &format!("/api/v9/guilds/{}/roles/{}", w.guild_id, w.guild_id),
        &w.owner.token,
        json!({ "permissions": without.to_string() }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let refused = w.invoke(&stranger.token, w.invocation("x")).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);

    // Commands that are not the application's, or not of this guild.
    let mut wrong = w.invocation("x");
    wrong["data"]["id"] = json!("123456");
    assert_eq!(w.invoke(&w.owner.token, wrong).await.body["code"], 10063);
    let (other_app, _) = application_with_bot(&w.server, &w.owner.token, "Other").await;
    let mut elsewhere = w.invocation("x");
    elsewhere["application_id"] = json!(other_app);
    assert_eq!(
        w.invoke(&w.owner.token, elsewhere).await.status,
        403,
        "its bot is not in the guild"
    );
    let mut bad = w.invocation("x");
    bad["type"] = json!(9);
    assert_eq!(w.invoke(&w.owner.token, bad).await.status, 400);
    // Callbacks need the right token.
    let fake = post(
        &w.server,
        "/api/v10/interactions/1/nope/callback",
        None,
        json!({ "type": 4 }),
    )
    .await;
    assert_eq!(fake.body["code"], 10062);
}
