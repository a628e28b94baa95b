//! Gateway intents, privileged intents, MESSAGE_CONTENT and sharding, over real gateways: what
//! a bot hears depends on the intents it identified with and on what its application allows;
//! a sharded bot hears each guild on one shard only, and DMs on shard 0.

use awc::http::Method;
use serde_json::{json, Value};

use crate::bots::{application_with_bot, authorize, guild};
use crate::common::gateway::{Event, Gateway};
use crate::common::guild::text_channel;
use crate::common::http::{get, patch, post, register_user, request, say};
use crate::common::TestServer;

const JSON: &str = "v=10&encoding=json";
/// VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY.
const BOT_PERMISSIONS: &str = "68608";

const GUILDS: u64 = 1 << 0;
const GUILD_MEMBERS: u64 = 1 << 1;
const GUILD_PRESENCES: u64 = 1 << 8;
const GUILD_MESSAGES: u64 = 1 << 9;
const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
const GUILD_MESSAGE_TYPING: u64 = 1 << 11;
const DIRECT_MESSAGES: u64 = 1 << 12;
const MESSAGE_CONTENT: u64 = 1 << 15;
/// A bit no intent uses yet: valid (below 1 << 26), and it changes nothing.
const UNASSIGNED: u64 = 1 << 17;

/// Application flags that allow the privileged intents.
const GATEWAY_PRESENCE: i64 = 1 << 12;
const GATEWAY_GUILD_MEMBERS_LIMITED: i64 = 1 << 15;
const GATEWAY_MESSAGE_CONTENT_LIMITED: i64 = 1 << 19;

/// IDENTIFY with `token` and the other fields of `extra` (`intents`, `shard`, …).
fn identify_payload(token: &str, extra: Value) -> Value {
    let mut d = json!({
        "token": token,
        "properties": { "os": "linux", "browser": "test", "device": "" },
    });
    if let (Some(d), Value::Object(extra)) = (d.as_object_mut(), extra) {
        d.extend(extra);
    }
    json!({ "op": 2, "d": d })
}

/// A new connection identified with `extra`: the connection and READY's `d`.
async fn connect(server: &TestServer, token: &str, extra: Value) -> (Gateway, Value) {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.send(identify_payload(token, extra)).await;
    let ready = gateway.dispatch("READY").await["d"].clone();
    (gateway, ready)
}

/// The close code an IDENTIFY with `extra` gets (it must get no READY).
async fn refused(server: &TestServer, token: &str, extra: Value) -> Option<u16> {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.send(identify_payload(token, extra)).await;
    match gateway.next().await {
        Event::Closed(code) => code,
        Event::Payload(payload) => panic!("expected a close, got {payload}"),
    }
}

async fn set_flags(server: &TestServer, token: &str, app_id: &str, flags: i64) -> Value {
    let changed = patch(
        server,
        &format!("/api/v9/applications/{app_id}"),
        token,
        json!({ "flags": flags }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    changed.body
}

/// Alice's guild with her application's bot in it (not yet connected): Alice's token, the
/// guild's id, its text channel's id, the application's id (the bot's user id) and
/// `Bot <token>`.
async fn bot_in_guild(
    server: &TestServer,
    bot_name: &str,
) -> (String, String, String, String, String) {
    let (alice, _) = register_user(server, "alice").await;
    let guild_id = guild(server, &alice).await;
    let channel = text_channel(server, &alice, &guild_id).await;
    let (app_id, token) = application_with_bot(server, &alice, bot_name).await;
    let added = authorize(server, &alice, &app_id, &guild_id, BOT_PERMISSIONS).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    (alice, guild_id, channel, app_id, format!("Bot {token}"))
}

/// The same bot twice: identified with GUILDS | GUILD_MESSAGES, and with `more` intents too.
async fn narrow_and_wide(server: &TestServer, bot: &str, more: u64) -> (Gateway, Gateway) {
    let few = GUILDS | GUILD_MESSAGES;
    let (narrow, _) = connect(server, bot, json!({ "intents": few })).await;
    let (wide, _) = connect(server, bot, json!({ "intents": few | more })).await;
    (narrow, wide)
}

/// The event names of dispatches, in order.
fn names(seen: &[Value]) -> Vec<String> {
    seen.iter()
        .map(|d| d["t"].as_str().unwrap().to_string())
        .collect()
}

/// The next MESSAGE_CREATE's `d`.
async fn next_message(gateway: &mut Gateway) -> Value {
    gateway.dispatch("MESSAGE_CREATE").await["d"].clone()
}

fn assert_redacted(message: &Value) {
    assert_eq!(message["content"], "", "{message}");
    assert_eq!(message["embeds"], json!([]));
    assert_eq!(message["attachments"], json!([]));
    assert_eq!(message["components"], json!([]));
}

#[actix_web::test]
async fn without_message_content_a_bot_reads_only_what_concerns_it() {
    let server = TestServer::start().await;
    let (alice, guild_id, channel, app_id, bot) = bot_in_guild(&server, "Reader").await;
    let (mut watcher, _) = connect(&server, &alice, json!({ "intents": 513 })).await;

    let intents = GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES;
    let (mut gateway, ready) = connect(&server, &bot, json!({ "intents": intents })).await;
    assert_eq!(ready["application"]["flags"], 0);

    // Someone else's message in the guild: the bot learns it was sent, not what it says.
    say(&server, &alice, &channel, "the secret plan").await;
    let seen = next_message(&mut gateway).await;
    assert_redacted(&seen);
    assert_eq!(seen["channel_id"], channel.as_str());
    assert_eq!(seen["guild_id"], guild_id.as_str());
    // People always read it (even with intents that lack MESSAGE_CONTENT).
    assert_eq!(
        next_message(&mut watcher).await["content"],
        "the secret plan"
    );

    // A message that mentions the bot, and the bot's own message: whole.
    let mention = format!("<@{app_id}> what is the plan?");
    say(&server, &alice, &channel, &mention).await;
    assert_eq!(
        next_message(&mut gateway).await["content"],
        mention.as_str()
    );
    say(&server, &bot, &channel, "my own words").await;
    assert_eq!(next_message(&mut gateway).await["content"], "my own words");

    // Edits follow the same rule.
    let edited = say(&server, &alice, &channel, "draft").await;
    assert_redacted(&next_message(&mut gateway).await);
    let edit = patch(
        &server,
        &format!(
            "/api/v9/channels/{channel}/messages/{}",
            edited["id"].as_str().unwrap()
        ),
        &alice,
        json!({ "content": "final" }),
    )
    .await;
    assert_eq!(edit.status, 200, "{:?}", edit.body);
    assert_redacted(&gateway.dispatch("MESSAGE_UPDATE").await["d"]);

    // In a DM the bot reads everything.
    let dm = post(
        &server,
        "/api/v9/users/@me/channels",
        Some(&alice),
        json!({ "recipient_id": app_id }),
    )
    .await;
    assert_eq!(dm.status, 200, "{:?}", dm.body);
    let dm_id = dm.body["id"].as_str().unwrap().to_string();
    say(&server, &alice, &dm_id, "just between us").await;
    let private = next_message(&mut gateway).await;
    assert_eq!(private["channel_id"], dm_id.as_str());
    assert_eq!(private["content"], "just between us");

    // Over REST the same: history, one message, pins.
    let history = |token: String| {
        let server = &server;
        let path = format!("/api/v9/channels/{channel}/messages?limit=100");
        async move { get(server, &path, Some(&token)).await.body }
    };
    let contents = |history: &Value| -> Vec<String> {
        let mut contents: Vec<String> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect();
        contents.sort();
        contents
    };
    let mut readable = vec![
        String::new(),
        String::new(),
        mention.clone(),
        "my own words".into(),
    ];
    readable.sort();
    assert_eq!(contents(&history(bot.clone()).await), readable);
    for message in history(bot.clone()).await.as_array().unwrap() {
        if message["content"] == "" {
            assert_redacted(message);
        }
    }
    let one = get(
        &server,
        &format!(
            "/api/v9/channels/{channel}/messages/{}",
            edited["id"].as_str().unwrap()
        ),
        Some(&bot),
    )
    .await;
    assert_redacted(&one.body);
    let mut everything = vec![
        "the secret plan".to_string(),
        mention.clone(),
        "my own words".into(),
        "final".into(),
    ];
    everything.sort();
    assert_eq!(contents(&history(alice.clone()).await), everything);
    let dm_history = get(
        &server,
        &format!("/api/v9/channels/{dm_id}/messages"),
        Some(&bot),
    )
    .await;
    assert_eq!(dm_history.body[0]["content"], "just between us");

    // Asking for MESSAGE_CONTENT takes the application's flag first.
    let asked = json!({ "intents": intents | MESSAGE_CONTENT });
    assert_eq!(refused(&server, &bot, asked.clone()).await, Some(4014));
    let app = set_flags(&server, &alice, &app_id, GATEWAY_MESSAGE_CONTENT_LIMITED).await;
    assert_eq!(app["flags"], GATEWAY_MESSAGE_CONTENT_LIMITED);
    let (mut entitled, ready) = connect(&server, &bot, asked).await;
    assert_eq!(
        ready["application"]["flags"],
        GATEWAY_MESSAGE_CONTENT_LIMITED
    );
    say(&server, &alice, &channel, "now you may read").await;
    assert_eq!(
        next_message(&mut entitled).await["content"],
        "now you may read"
    );
    // The session that identified without the intent still gets it redacted.
    assert_redacted(&next_message(&mut gateway).await);
    // REST follows the application's flags.
    assert_eq!(history(bot.clone()).await[0]["content"], "now you may read");
}

#[actix_web::test]
async fn a_bot_hears_only_the_events_of_its_intents() {
    let server = TestServer::start().await;
    let (alice, _, channel, app_id, bot) = bot_in_guild(&server, "Listener").await;
    set_flags(&server, &alice, &app_id, GATEWAY_GUILD_MEMBERS_LIMITED).await;

    let (mut narrow, mut wide) =
        narrow_and_wide(&server, &bot, GUILD_MESSAGE_TYPING | GUILD_MEMBERS).await;

    // Someone joins and types, then a message (which both hear) closes the round.
    let invite = post(
        &server,
        &format!("/api/v9/channels/{channel}/invites"),
        Some(&alice),
        json!({}),
    )
    .await;
    assert!(invite.status.is_success(), "{:?}", invite.body);
    let code = invite.body["code"].as_str().unwrap();
    let (bob, bob_user) = register_user(&server, "bob").await;
    let joined = post(
        &server,
        &format!("/api/v9/invites/{code}"),
        Some(&bob),
        json!({}),
    )
    .await;
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    let typing = post(
        &server,
        &format!("/api/v9/channels/{channel}/typing"),
        Some(&bob),
        json!({}),
    )
    .await;
    assert_eq!(typing.status, 204, "{:?}", typing.body);
    say(&server, &alice, &channel, "barrier").await;

    let heard = wide.dispatches_until("MESSAGE_CREATE").await;
    let heard_names = names(&heard);
    assert!(
        heard_names.contains(&"GUILD_MEMBER_ADD".to_string()),
        "{heard_names:?}"
    );
    assert!(
        heard_names.contains(&"TYPING_START".to_string()),
        "{heard_names:?}"
    );
    let member = heard.iter().find(|d| d["t"] == "GUILD_MEMBER_ADD").unwrap();
    assert_eq!(member["d"]["user"]["id"], bob_user["id"]);

    let quiet = narrow.dispatches_until("MESSAGE_CREATE").await;
    let quiet_names = names(&quiet);
    assert!(
        !quiet_names
            .iter()
            .any(|t| t == "GUILD_MEMBER_ADD" || t == "TYPING_START"),
        "{quiet_names:?}"
    );
    // Both stopped at the same barrier message.
    assert_eq!(
        quiet.last().unwrap()["d"]["id"],
        heard.last().unwrap()["d"]["id"]
    );
}

#[actix_web::test]
async fn without_guild_message_reactions_no_reaction_route_reaches_the_bot() {
    let server = TestServer::start().await;
    let (alice, _, channel, app_id, bot) = bot_in_guild(&server, "Reactions").await;
    let message = say(&server, &alice, &channel, "react to me").await;

    let (mut narrow, mut wide) = narrow_and_wide(&server, &bot, GUILD_MESSAGE_REACTIONS).await;

    // Every reaction route once (the owner, Alice, removes the bot's reaction: another's).
    let reactions = format!(
        "/api/v9/channels/{channel}/messages/{}/reactions",
        message["id"].as_str().unwrap()
    );
    let thumbs_up = format!("{reactions}/%F0%9F%91%8D");
    let mine = format!("{thumbs_up}/@me");
    for (method, path, token) in [
        (Method::PUT, &mine, &alice),
        (Method::DELETE, &mine, &alice),
        (Method::PUT, &mine, &bot),
        (Method::DELETE, &format!("{thumbs_up}/{app_id}"), &alice),
        (Method::PUT, &mine, &alice),
        (Method::DELETE, &thumbs_up, &alice),
        (Method::PUT, &mine, &alice),
        (Method::DELETE, &reactions, &alice),
    ] {
        let done = request(&server, method, path, Some(token), None).await;
        assert_eq!(done.status, 204, "{path}: {:?}", done.body);
    }
    say(&server, &alice, &channel, "barrier").await;

    // Message events only (GUILD_CREATE and the like come and go), up to the barrier.
    async fn message_events(gateway: &mut Gateway) -> Vec<String> {
        let seen = gateway.dispatches_until("MESSAGE_CREATE").await;
        let mut heard = names(&seen);
        heard.retain(|t| t.starts_with("MESSAGE_"));
        heard
    }
    let (add, remove) = ("MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE");
    assert_eq!(
        message_events(&mut wide).await,
        [
            add,
            remove,
            add,
            remove,
            add,
            "MESSAGE_REACTION_REMOVE_EMOJI",
            add,
            "MESSAGE_REACTION_REMOVE_ALL",
            "MESSAGE_CREATE",
        ]
    );
    assert_eq!(message_events(&mut narrow).await, ["MESSAGE_CREATE"]);
}

#[actix_web::test]
async fn bad_intents_privileged_intents_and_bad_shards_close_the_connection() {
    let server = TestServer::start().await;
    let (alice, _) = register_user(&server, "alice").await;
    let (mallory, _) = register_user(&server, "mallory").await;
    let (app_id, token) = application_with_bot(&server, &alice, "Strict").await;
    let bot = format!("Bot {token}");

    // Intents beyond the known bits, or negative: 4013, for anyone.
    for intents in [json!(-1), json!(1u64 << 26), json!("x"), json!(1.5)] {
        assert_eq!(
            refused(&server, &alice, json!({ "intents": intents })).await,
            Some(4013),
            "{intents}"
        );
    }
    assert_eq!(
        refused(&server, &bot, json!({ "intents": 1u64 << 40 })).await,
        Some(4013)
    );

    // Privileged intents the application lacks: 4014 for its bot; people may ask for any.
    for intents in [GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT] {
        assert_eq!(
            refused(&server, &bot, json!({ "intents": GUILDS | intents })).await,
            Some(4014)
        );
    }
    let all = (1u64 << 26) - 1;
    connect(&server, &alice, json!({ "intents": all })).await;
    // A bot without intents hears what its application allows: no close.
    connect(&server, &bot, json!({})).await;

    // Only the owner changes the flags, and only the intent flags.
    let path = format!("/api/v9/applications/{app_id}");
    let stranger = patch(
        &server,
        &path,
        &mallory,
        json!({ "flags": GATEWAY_PRESENCE }),
    )
    .await;
    assert_eq!(stranger.status, 404, "{:?}", stranger.body);
    assert_eq!(stranger.body["code"], 10002);
    let other_bit = patch(&server, &path, &alice, json!({ "flags": 1 << 23 })).await;
    assert_eq!(other_bit.status, 400, "{:?}", other_bit.body);
    assert_eq!(other_bit.body["code"], 50035);
    let flags = GATEWAY_PRESENCE | GATEWAY_GUILD_MEMBERS_LIMITED;
    let changed = patch(
        &server,
        &path,
        &alice,
        json!({ "flags": flags.to_string() }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["flags"], flags);
    assert_eq!(get(&server, &path, Some(&alice)).await.body["flags"], flags);
    let (_, ready) = connect(
        &server,
        &bot,
        json!({ "intents": GUILDS | GUILD_MEMBERS | GUILD_PRESENCES }),
    )
    .await;
    assert_eq!(ready["application"]["flags"], flags);
    assert_eq!(
        refused(
            &server,
            &bot,
            json!({ "intents": GUILDS | MESSAGE_CONTENT })
        )
        .await,
        Some(4014)
    );

    // Shards: [id, count] with id < count.
    for shard in [
        json!([1, 1]),
        json!([0, 0]),
        json!([3, 2]),
        json!([-1, 2]),
        json!([0]),
    ] {
        assert_eq!(
            refused(&server, &bot, json!({ "intents": GUILDS, "shard": shard })).await,
            Some(4010),
            "{shard}"
        );
    }
    connect(&server, &bot, json!({ "intents": GUILDS, "shard": [1, 2] })).await;
}

/// `(guild_id >> 22) % 2`: the shard of two that hears a guild.
fn shard_of(guild_id: &str) -> u64 {
    (guild_id.parse::<u64>().unwrap() >> 22) % 2
}

#[actix_web::test]
async fn two_shards_split_the_guilds_and_dms_go_to_shard_zero() {
    let server = TestServer::start().await;
    let (alice, _) = register_user(&server, "alice").await;
    let (app_id, token) = application_with_bot(&server, &alice, "Sharded").await;
    let bot = format!("Bot {token}");
    // One guild for each shard (ids are time-based: try until both parities exist).
    let mut by_shard: [Option<String>; 2] = [None, None];
    for _ in 0..50 {
        let id = guild(&server, &alice).await;
        let slot = &mut by_shard[usize::try_from(shard_of(&id)).unwrap()];
        if slot.is_none() {
            *slot = Some(id);
        }
        if by_shard.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let [Some(even), Some(odd)] = by_shard else {
        panic!("no guild ids of both parities")
    };
    // The bot is in the even guild before it connects, and joins the odd one afterwards.
    assert_eq!(
        authorize(&server, &alice, &app_id, &even, BOT_PERMISSIONS)
            .await
            .status,
        200
    );

    let intents = json!(GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | UNASSIGNED);
    let (mut zero, ready) = connect(
        &server,
        &bot,
        json!({ "intents": intents, "shard": [0, 2] }),
    )
    .await;
    assert_eq!(
        ready["guilds"],
        json!([{ "id": even, "unavailable": true }])
    );
    assert_eq!(
        zero.dispatch("GUILD_CREATE").await["d"]["id"],
        even.as_str()
    );
    let (mut one, ready) = connect(
        &server,
        &bot,
        json!({ "intents": intents, "shard": [1, 2] }),
    )
    .await;
    assert_eq!(ready["guilds"], json!([]));

    // Joining the odd guild: only shard 1 hears of it (shard 0 sees the next event instead).
    assert_eq!(
        authorize(&server, &alice, &app_id, &odd, BOT_PERMISSIONS)
            .await
            .status,
        200
    );
    assert_eq!(one.dispatch("GUILD_CREATE").await["d"]["id"], odd.as_str());

    let even_channel = text_channel(&server, &alice, &even).await;
    let odd_channel = text_channel(&server, &alice, &odd).await;
    let dm = post(
        &server,
        "/api/v9/users/@me/channels",
        Some(&alice),
        json!({ "recipient_id": app_id }),
    )
    .await;
    assert_eq!(dm.status, 200, "{:?}", dm.body);
    let dm_id = dm.body["id"].as_str().unwrap().to_string();

    say(&server, &alice, &odd_channel, "odd one").await;
    say(&server, &alice, &dm_id, "direct").await;
    say(&server, &alice, &even_channel, "even one").await;
    say(&server, &alice, &odd_channel, "odd two").await;

    // "guild:content" of each message (and any GUILD_CREATE) a shard heard, up to its second
    // message. Without MESSAGE_CONTENT a guild message reads as "", but a DM is whole.
    async fn heard(gateway: &mut Gateway) -> Vec<String> {
        let mut seen = gateway.dispatches_until("MESSAGE_CREATE").await;
        seen.extend(gateway.dispatches_until("MESSAGE_CREATE").await);
        seen.iter()
            .filter(|p| p["t"] == "MESSAGE_CREATE" || p["t"] == "GUILD_CREATE")
            .map(|p| {
                let d = &p["d"];
                match d["content"].as_str() {
                    Some(content) => {
                        format!("{}:{content}", d["guild_id"].as_str().unwrap_or("dm"))
                    }
                    None => format!("GUILD_CREATE {}", d["id"]),
                }
            })
            .collect()
    }
    assert_eq!(
        heard(&mut zero).await,
        ["dm:direct".to_string(), format!("{even}:")]
    );
    assert_eq!(
        heard(&mut one).await,
        [format!("{odd}:"), format!("{odd}:")]
    );
}

/// Alice, her guild of 61 members (60 of them added behind the API's back, who never
/// connect), and her application's bot with GATEWAY_PRESENCE, not in the guild yet.
struct Crowded {
    alice: String,
    alice_user: Value,
    guild_id: String,
    app_id: String,
    /// The bot's `Authorization`.
    bot: String,
}

async fn crowded(server: &TestServer) -> Crowded {
    let (alice, alice_user) = register_user(server, "alice").await;
    let guild_id = guild(server, &alice).await;
    let (app_id, token) = application_with_bot(server, &alice, "Counter").await;
    set_flags(server, &alice, &app_id, GATEWAY_PRESENCE).await;
    server
        .sql(
            "INSERT INTO users (id, username, discriminator) \
             SELECT 1000000 + g, 'filler', lpad(g::text, 4, '0') FROM generate_series(1, 60) g",
        )
        .await;
    server
        .sql(&format!(
            "INSERT INTO members (guild_id, user_id) \
             SELECT {guild_id}, 1000000 + g FROM generate_series(1, 60) g"
        ))
        .await;
    Crowded {
        alice,
        alice_user,
        guild_id,
        app_id,
        bot: format!("Bot {token}"),
    }
}

/// The user ids of a GUILD_CREATE's `members` or `presences`.
fn user_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["user"]["id"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn a_guild_joined_after_ready_is_large_by_each_sessions_threshold() {
    let server = TestServer::start().await;
    let crowd = crowded(&server).await;
    let (app_id, bot) = (&crowd.app_id, &crowd.bot);
    // Two sessions of the bot, identified before it is in the guild, with thresholds either
    // side of the 62 members it will have.
    let intents = GUILDS | GUILD_PRESENCES;
    let extra = |threshold: u64| json!({ "intents": intents, "large_threshold": threshold });
    let (mut fifty, _) = connect(&server, bot, extra(50)).await;
    let (mut most, _) = connect(&server, bot, extra(250)).await;
    let added = authorize(
        &server,
        &crowd.alice,
        app_id,
        &crowd.guild_id,
        BOT_PERMISSIONS,
    )
    .await;
    assert_eq!(added.status, 200, "{:?}", added.body);

    // Large to the first: only who is online is listed, the bot itself (Alice has no session).
    let large = fifty.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(
        (large["member_count"].as_i64(), large["large"].as_bool()),
        (Some(62), Some(true))
    );
    let listed = user_ids(&large["members"]);
    assert_eq!(listed, [app_id.as_str()]);
    // Not to the second: everyone.
    let small = most.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(small["large"], false);
    assert_eq!(small["members"].as_array().unwrap().len(), 62);
}

#[actix_web::test]
async fn large_guilds_list_only_online_members_and_the_bots_own() {
    let server = TestServer::start().await;
    let Crowded {
        alice,
        alice_user,
        guild_id,
        app_id,
        bot,
    } = crowded(&server).await;
    assert_eq!(
        authorize(&server, &alice, &app_id, &guild_id, BOT_PERMISSIONS)
            .await
            .status,
        200
    );

    let guild_create = |threshold: u64, intents: u64| {
        let server = &server;
        let bot = bot.clone();
        async move {
            let extra = json!({ "intents": intents, "large_threshold": threshold });
            let (mut gateway, _) = connect(server, &bot, extra).await;
            gateway.dispatch("GUILD_CREATE").await["d"].clone()
        }
    };
    let own_only = |created: &Value| {
        let members = created["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{members:?}");
        assert_eq!(members[0]["user"]["id"], app_id.as_str());
    };

    // Above the threshold: large, and only who is online: the bot itself.
    let large = guild_create(50, GUILDS | GUILD_PRESENCES).await;
    assert_eq!(large["member_count"], 62);
    assert_eq!(large["large"], true);
    own_only(&large);

    // Under it, with GUILD_PRESENCES: everyone, and the presences of those online (Alice,
    // not the fillers).
    let (_alice_online, _) = connect(&server, &alice, json!({})).await;
    let alice_id = alice_user["id"].as_str().unwrap();
    // Above it once Alice is online: she is listed too, with her presence; the fillers are not.
    let large = guild_create(50, GUILDS | GUILD_PRESENCES).await;
    assert_eq!(large["large"], true);
    let mut listed = user_ids(&large["members"]);
    listed.sort_unstable();
    let mut expected = [alice_id, app_id.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    // Presences of those listed who are online (the bot's earlier sessions may still be).
    let presences = large["presences"].as_array().unwrap();
    assert!(
        presences.iter().any(|p| p["user"]["id"] == alice_id)
            && presences
                .iter()
                .all(|p| listed.contains(&p["user"]["id"].as_str().unwrap())),
        "{presences:?}"
    );
    let small = guild_create(250, GUILDS | GUILD_PRESENCES).await;
    assert_eq!(small["large"], false);
    assert_eq!(small["members"].as_array().unwrap().len(), 62);
    let online = user_ids(&small["presences"]);
    assert!(online.contains(&alice_id), "{online:?}");
    assert!(
        online.iter().all(|id| !id.starts_with("10000")),
        "{online:?}"
    );

    // Without GUILD_PRESENCES only the bot itself, as on Discord.
    own_only(&guild_create(250, GUILDS).await);
}
