//! Presences over real gateways: what a user's guildmates and friends hear when they connect,
//! change their status with op 3, go invisible, or drop and do not resume; what READY says of
//! the user's sessions and online friends; that a bot without GUILD_PRESENCES hears none; and
//! that in a large guild only sessions that asked for presences (a member list, op 8) hear them.

use serde_json::{json, Value};

use crate::bots::{application_with_bot, authorize};
use crate::common::gateway::Gateway;
use crate::common::guild::shared_guild;
use crate::common::http::{account, befriend};
use crate::common::http::{patch, post, request};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";
/// GUILDS | GUILD_MESSAGES: no GUILD_PRESENCES.
const BOT_INTENTS: u64 = 1 | (1 << 9);
const GUILD_PRESENCES: u64 = 1 << 8;
/// The application flag that allows GUILD_PRESENCES.
const GATEWAY_PRESENCE: i64 = 1 << 12;

pub async fn connect(server: &TestServer, token: &str) -> (Gateway, Value) {
    let mut gateway = Gateway::connect(server, JSON).await;
    let ready = gateway.identify(token).await["d"].clone();
    (gateway, ready)
}

pub fn status(status: &str, activities: Value) -> Value {
    json!({ "op": 3, "d": { "since": 0, "activities": activities, "status": status, "afk": false } })
}

/// The next PRESENCE_UPDATE's `d`.
pub async fn presence(gateway: &mut Gateway) -> Value {
    gateway.dispatch("PRESENCE_UPDATE").await["d"].clone()
}

#[actix_web::test]
async fn guildmates_hear_status_changes_and_the_last_session_ending() {
    let server = TestServer::with(&[("gateway.resume_window_ms", "300")]).await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let (guild_id, _) = shared_guild(&server, &alice, &[&bob]).await;
    let (mut a, _) = connect(&server, &alice.token).await;

    // Bob connects: Alice hears him online, in their guild.
    let (mut b, ready) = connect(&server, &bob.token).await;
    assert_eq!(ready["sessions"][0]["status"], "online");
    assert_eq!(ready["sessions"].as_array().unwrap().len(), 1);
    let online = presence(&mut a).await;
    assert_eq!(online["user"]["id"], bob.id.as_str());
    assert_eq!(online["guild_id"], guild_id.as_str());
    assert_eq!(online["status"], "online");
    assert_eq!(online["client_status"], json!({ "web": "online" }));

    // Idle, with a game.
    let game = json!([{ "name": "Chess", "type": 0 }]);
    b.send(status("idle", game.clone())).await;
    let idle = presence(&mut a).await;
    assert_eq!(
        (idle["status"].as_str(), &idle["activities"]),
        (Some("idle"), &game)
    );

    // A second session of Bob's is listed in its READY, and online beats idle.
    let (second, ready) = connect(&server, &bob.token).await;
    assert_eq!(ready["sessions"].as_array().unwrap().len(), 2, "{ready}");
    assert_eq!(ready["sessions"][1]["status"], "idle", "{ready}");
    assert_eq!(presence(&mut a).await["status"], "online");
    // That one drops and is not resumed: once its window ends, the idle one is all there is.
    drop(second);
    assert_eq!(presence(&mut a).await["status"], "idle");

    // Invisible: others see him offline.
    b.send(status("invisible", json!([]))).await;
    let hidden = presence(&mut a).await;
    assert_eq!(hidden["status"], "offline");
    assert_eq!(hidden["activities"], json!([]));

    // Back online, then his socket drops and he does not resume: offline once the window ends.
    b.send(status("dnd", json!([]))).await;
    assert_eq!(presence(&mut a).await["status"], "dnd");
    drop(b);
    let gone = presence(&mut a).await;
    assert_eq!(gone["status"], "offline");
    assert_eq!(gone["user"]["id"], bob.id.as_str());
    assert_eq!(gone["guild_id"], guild_id.as_str());

    // A bad op 3 closes with 4002.
    let (mut c, _) = connect(&server, &bob.token).await;
    c.send(json!({ "op": 3, "d": { "status": "sleepy" } }))
        .await;
    assert_eq!(c.closed().await, Some(4002));
    let mut d = Gateway::connect(&server, JSON).await;
    d.identify(&bob.token).await;
    d.send(json!({ "op": 3, "d": { "status": "online", "activities": "chess" } }))
        .await;
    assert_eq!(d.closed().await, Some(4002));
}

#[actix_web::test]
async fn friends_hear_presence_without_a_guild_and_ready_lists_them() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let carol = account(&server, "carol").await;
    befriend(&server, &alice, &carol).await;

    let (mut a, ready) = connect(&server, &alice.token).await;
    assert_eq!(ready["presences"], json!([]), "Carol is not online yet");
    let (mut c, _) = connect(&server, &carol.token).await;
    let online = presence(&mut a).await;
    assert_eq!(online["user"]["id"], carol.id.as_str());
    assert_eq!(online["status"], "online");
    assert!(online.get("guild_id").is_none(), "{online}");

    // A later session of Alice's learns that Carol is online.
    let mut later = Gateway::connect(&server, JSON).await;
    later.identify(&alice.token).await;
    let supplemental = later.dispatch("READY_SUPPLEMENTAL").await["d"].clone();
    let friends = &supplemental["merged_presences"]["friends"];
    assert_eq!(friends[0]["user_id"], carol.id.as_str(), "{supplemental}");
    assert_eq!(friends[0]["status"], "online");

    c.send(status("dnd", json!([]))).await;
    assert_eq!(presence(&mut a).await["status"], "dnd");
    assert_eq!(presence(&mut later).await["status"], "dnd");

    // Friends made while both are online learn each other's presence at once; unfriended,
    // they hear no more.
    let dave = account(&server, "dave").await;
    let (mut d, _) = connect(&server, &dave.token).await;
    befriend(&server, &dave, &carol).await;
    let carols = presence(&mut d).await;
    assert_eq!(
        (carols["user"]["id"].as_str(), carols["status"].as_str()),
        (Some(carol.id.as_str()), Some("dnd"))
    );
    assert_eq!(presence(&mut c).await["user"]["id"], dave.id.as_str());
    let ended = request(
        &server,
        awc::http::Method::DELETE,
        &format!("{V9}/users/@me/relationships/{}", carol.id),
        Some(&dave.token),
        None,
    )
    .await;
    assert_eq!(ended.status, 204, "{:?}", ended.body);
    c.send(status("idle", json!([]))).await;
    assert_eq!(presence(&mut a).await["status"], "idle");
    // Alice heard it; Dave's next dispatch is the barrier, with no presence before it.
    let dm = post(
        &server,
        &format!("{V9}/users/@me/channels"),
        Some(&alice.token),
        json!({ "recipient_id": dave.id }),
    )
    .await;
    assert_eq!(dm.status, 200, "{:?}", dm.body);
    let seen = d.dispatches_until("CHANNEL_CREATE").await;
    assert!(seen.iter().all(|p| p["t"] != "PRESENCE_UPDATE"), "{seen:?}");
}

#[actix_web::test]
async fn a_bot_without_guild_presences_hears_none() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let (guild_id, channel) = shared_guild(&server, &alice, &[]).await;
    let (app_id, token) = application_with_bot(&server, &alice.token, "Quiet").await;
    let added = authorize(&server, &alice.token, &app_id, &guild_id, "68608").await;
    assert_eq!(added.status, 200, "{:?}", added.body);

    let bot_session = |intents: u64| {
        json!({ "op": 2, "d": {
            "token": format!("Bot {token}"),
            "properties": { "os": "linux", "browser": "test", "device": "" },
            "intents": intents,
        } })
    };
    let mut bot = Gateway::connect(&server, "v=10&encoding=json").await;
    bot.send(bot_session(BOT_INTENTS)).await;
    bot.dispatch("GUILD_CREATE").await;
    // The same bot, allowed and asking for GUILD_PRESENCES: the control.
    let flags = patch(
        &server,
        &format!("{V9}/applications/{app_id}"),
        &alice.token,
        json!({ "flags": GATEWAY_PRESENCE }),
    )
    .await;
    assert_eq!(flags.status, 200, "{:?}", flags.body);
    let mut entitled = Gateway::connect(&server, "v=10&encoding=json").await;
    entitled
        .send(bot_session(BOT_INTENTS | GUILD_PRESENCES))
        .await;
    entitled.dispatch("GUILD_CREATE").await;

    // Alice connects and changes her status: only the entitled session hears it.
    let (mut a, _) = connect(&server, &alice.token).await;
    let online = presence(&mut entitled).await;
    assert_eq!(online["user"]["id"], alice.id.as_str());
    assert_eq!(online["status"], "online");
    // Someone who joins while online is shown to the guild at once.
    let erin = account(&server, "erin").await;
    let (_e, _) = connect(&server, &erin.token).await;
    let code = post(
        &server,
        &format!("{V9}/channels/{channel}/invites"),
        Some(&alice.token),
        json!({ "max_age": 0 }),
    )
    .await
    .body["code"]
        .as_str()
        .unwrap()
        .to_string();
    let joined = post(
        &server,
        &format!("{V9}/invites/{code}"),
        Some(&erin.token),
        json!({}),
    )
    .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    let newcomer = presence(&mut a).await;
    assert_eq!(newcomer["user"]["id"], erin.id.as_str());
    assert_eq!(newcomer["guild_id"], guild_id.as_str());
    assert_eq!(
        presence(&mut entitled).await["user"]["id"],
        erin.id.as_str()
    );
    a.send(status("idle", json!([]))).await;
    assert_eq!(presence(&mut entitled).await["status"], "idle");
    no_presence_before_a_message(&server, &alice.token, &channel, &mut bot).await;
}

/// Posts a message as `token` in `channel`: `gateway` got no PRESENCE_UPDATE before it (the
/// message is a barrier behind the presences published before it).
async fn no_presence_before_a_message(
    server: &TestServer,
    token: &str,
    channel: &str,
    gateway: &mut Gateway,
) {
    let sent = post(
        server,
        &format!("{V9}/channels/{channel}/messages"),
        Some(token),
        json!({ "content": "barrier" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let seen = gateway.dispatches_until("MESSAGE_CREATE").await;
    assert!(
        seen.iter().all(|payload| payload["t"] != "PRESENCE_UPDATE"),
        "{seen:?}"
    );
}

/// A person's session for which a guild of more than two members is large.
async fn connect_large(server: &TestServer, token: &str) -> Gateway {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway
        .send(json!({ "op": 2, "d": {
            "token": token,
            "properties": { "os": "linux", "browser": "test", "device": "" },
            "large_threshold": 2,
        } }))
        .await;
    gateway.dispatch("READY").await;
    gateway
}

#[actix_web::test]
async fn in_a_large_guild_only_sessions_that_asked_hear_presences() {
    // Three members, sessions with a threshold of two: the guild is large for them.
    let server = TestServer::with(&[("gateway.min_large_threshold", "1")]).await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let carol = account(&server, "carol").await;
    let (guild_id, channel) = shared_guild(&server, &alice, &[&bob, &carol]).await;
    // Alice watches the member list (op 14), as people's clients do; Bob asks for nothing.
    let mut watcher = connect_large(&server, &alice.token).await;
    crate::gateway_members::watch(&mut watcher, &guild_id, &channel).await;
    let mut bystander = connect_large(&server, &bob.token).await;
    assert_eq!(presence(&mut watcher).await["user"]["id"], bob.id.as_str());

    let (mut c, _) = connect(&server, &carol.token).await;
    let online = presence(&mut watcher).await;
    assert_eq!(online["user"]["id"], carol.id.as_str());
    assert_eq!(online["guild_id"], guild_id.as_str());
    // Bob heard neither Alice's nor Carol's.
    no_presence_before_a_message(&server, &alice.token, &channel, &mut bystander).await;

    // Op 8 with presences: Bob gets Carol's now, and hears her changes from then on.
    let d = json!({ "guild_id": guild_id, "user_ids": [carol.id], "presences": true });
    bystander.send(json!({ "op": 8, "d": d })).await;
    let chunk = bystander.dispatch("GUILD_MEMBERS_CHUNK").await["d"].clone();
    assert_eq!(chunk["presences"][0]["user"]["id"], carol.id.as_str());
    c.send(status("idle", json!([]))).await;
    let idle = presence(&mut bystander).await;
    assert_eq!(
        (idle["user"]["id"].as_str(), idle["status"].as_str()),
        (Some(carol.id.as_str()), Some("idle"))
    );
    assert_eq!(presence(&mut watcher).await["status"], "idle");
}
