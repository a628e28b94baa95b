//! What a Fermi user hits: guilds in the shape their session asked for, roles created with
//! `"permissions": ""`, avatar and name changes others see, and the routes Fermi calls at
//! start-up and in its settings (profile, login sessions, GIFs, settings protos, teams,
//! templates, welcome screen, widget).

use awc::http::Method;
use serde_json::{json, Value};

use crate::cdn::{data_url, png};
use crate::common::gateway::{Event, Gateway};
use crate::common::guild::{guild, join, join_through_invite, shared_guild};
use crate::common::http::befriend;
use crate::common::http::{account, assert_form_error, get, patch, post, request, Account};
use crate::common::TestServer;

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";
/// The capabilities Fermi identifies with (CLIENT_STATE_V2 among them).
const FERMI_CAPABILITIES: u64 = 16381;

/// A session that identified as Fermi does; returns it after READY.
async fn fermi(server: &TestServer, token: &str) -> Gateway {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway
        .send(json!({ "op": 2, "d": { "token": token, "capabilities": FERMI_CAPABILITIES, "properties": {} } }))
        .await;
    gateway.dispatch("READY").await;
    gateway
}

/// A session that identified without capabilities (a bot library, chorus).
async fn classic(server: &TestServer, token: &str) -> Gateway {
    let mut gateway = Gateway::connect(server, JSON).await;
    gateway.identify(token).await;
    gateway
}

/// A CLIENT_STATE_V2 guild as Fermi reads it: the name and owner under `properties`, and the
/// user's own member among `members`.
fn assert_client_state_v2(d: &Value, name: &str, me: &Account, owner: &Account) {
    assert_eq!(d["properties"]["name"], name, "{d}");
    assert_eq!(d["properties"]["owner_id"], owner.id.as_str(), "{d}");
    assert!(d.get("name").is_none(), "classic fields leaked: {d}");
    for key in ["channels", "threads", "stickers", "roles", "emojis"] {
        assert!(d[key].is_array(), "{key} missing: {d}");
    }
    let members = d["members"].as_array().unwrap();
    assert!(members.iter().any(|m| m["id"] == me.id.as_str()), "{d}");
}

#[actix_web::test]
async fn live_guild_creates_come_in_the_shape_each_session_asked_for() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let mut v2 = fermi(&server, &owner.token).await;
    let mut plain = classic(&server, &owner.token).await;

    let created = post(
        &server,
        &format!("{V9}/guilds"),
        Some(&owner.token),
        json!({ "name": "Fermi guild" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let shaped = v2.dispatch("GUILD_CREATE").await["d"].clone();
    assert_client_state_v2(&shaped, "Fermi guild", &owner, &owner);
    let flat = plain.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(flat["name"], "Fermi guild");
    assert_eq!(flat["owner_id"], owner.id.as_str());
    assert!(flat.get("properties").is_none());

    // Joining through an invite: the same.
    let joiner = account(&server, "joiner").await;
    let mut joiner_v2 = fermi(&server, &joiner.token).await;
    let guild_id = created.body["id"].as_str().unwrap();
    let channel = created.body["system_channel_id"].as_str().unwrap();
    join_through_invite(&server, &owner.token, channel, &joiner.token).await;
    let shaped = joiner_v2.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(shaped["id"], guild_id);
    assert_client_state_v2(&shaped, "Fermi guild", &joiner, &owner);
}

#[actix_web::test]
async fn an_empty_permission_string_means_no_permissions() {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let token = Some(g.owner.token.as_str());
    // Exactly what Fermi sends.
    let role = post(
        &server,
        &format!("{V9}/guilds/{}/roles", g.id),
        token,
        json!({ "color": 0, "name": "Testers", "permissions": "" }),
    )
    .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    assert_eq!(role.body["name"], "Testers");
    assert_eq!(role.body["permissions"], "0");
    let role_id = role.body["id"].as_str().unwrap();

    let changed = patch(
        &server,
        &format!("{V9}/guilds/{}/roles/{role_id}", g.id),
        &g.owner.token,
        json!({ "permissions": "", "name": "Testers 2" }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["permissions"], "0");

    let overwrite = request(
        &server,
        Method::PUT,
        &format!("{V9}/channels/{}/permissions/{role_id}", g.channel),
        token,
        Some(json!({ "type": 0, "allow": "", "deny": "" })),
    )
    .await;
    assert_eq!(overwrite.status, 204, "{:?}", overwrite.body);

    // Anything else that is not a number still is an error.
    let bad = post(
        &server,
        &format!("{V9}/guilds/{}/roles", g.id),
        token,
        json!({ "name": "x", "permissions": "lots" }),
    )
    .await;
    assert_form_error(&bad, "permissions", "NUMBER_TYPE_COERCE");
}

#[actix_web::test]
async fn avatar_and_name_changes_reach_guildmates_and_friends() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let carol = account(&server, "carol").await;
    let (guild_id, _) = shared_guild(&server, &alice, &[&bob]).await;
    befriend(&server, &alice, &carol).await;
    let mut own = classic(&server, &alice.token).await;
    let mut guildmate = fermi(&server, &bob.token).await;
    let mut friend = classic(&server, &carol.token).await;
    // No guild in common, no friendship: hears nothing of it.
    let dave = account(&server, "dave").await;
    let mut stranger = classic(&server, &dave.token).await;

    let changed = patch(
        &server,
        &format!("{V9}/users/@me"),
        &alice.token,
        json!({ "avatar": data_url("image/png", &png(64, 64)), "global_name": "Alice A" }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let avatar = changed.body["avatar"].as_str().unwrap();

    let user_update = own.dispatch("USER_UPDATE").await["d"].clone();
    assert_eq!(user_update["avatar"], avatar);
    let member = guildmate.dispatch("GUILD_MEMBER_UPDATE").await["d"].clone();
    assert_eq!(member["guild_id"], guild_id.as_str());
    assert_eq!(member["user"]["id"], alice.id.as_str());
    assert_eq!(member["user"]["avatar"], avatar);
    assert_eq!(member["user"]["global_name"], "Alice A");
    let presence = loop {
        let d = friend.dispatch("PRESENCE_UPDATE").await["d"].clone();
        if d["user"]["avatar"] == avatar {
            break d;
        }
    };
    assert_eq!(presence["user"]["id"], alice.id.as_str());
    assert_eq!(presence["user"]["global_name"], "Alice A");
    assert!(presence.get("guild_id").is_none());

    let quiet_until = tokio::time::Instant::now() + std::time::Duration::from_millis(750);
    while let Ok(event) = tokio::time::timeout_at(quiet_until, stranger.next()).await {
        let Event::Payload(payload) = event else {
            panic!("the stranger's session closed");
        };
        let about_alice = payload["d"]["id"] == alice.id.as_str()
            || payload["d"]["user"]["id"] == alice.id.as_str();
        assert!(
            !(about_alice
                && ["USER_UPDATE", "GUILD_MEMBER_UPDATE", "PRESENCE_UPDATE"]
                    .contains(&payload["t"].as_str().unwrap_or_default())),
            "a stranger heard of the change: {payload}"
        );
    }
}

#[actix_web::test]
async fn profiles_are_read_and_changed_where_fermi_looks() {
    let server = TestServer::start().await;
    let me = account(&server, "me").await;
    let other = account(&server, "other").await;
    let changed = patch(
        &server,
        &format!("{V9}/users/@me/profile"),
        &me.token,
        json!({ "bio": "hello", "pronouns": "they/them", "accent_color": 255 }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(changed.body["bio"], "hello");
    let mine = get(&server, &format!("{V9}/users/@me/profile"), Some(&me.token)).await;
    assert_eq!(mine.status, 200, "{:?}", mine.body);
    assert_eq!(mine.body["user_profile"]["pronouns"], "they/them");
    assert_eq!(mine.body["user_profile"]["accent_color"], 255);
    let seen = get(
        &server,
        &format!("{V9}/users/{}/profile", me.id),
        Some(&other.token),
    )
    .await;
    assert_eq!(seen.body["user_profile"]["bio"], "hello");
    let too_long = patch(
        &server,
        &format!("{V9}/users/@me/profile"),
        &me.token,
        json!({ "pronouns": "x".repeat(41) }),
    )
    .await;
    assert_form_error(&too_long, "pronouns", "BASE_TYPE_BAD_LENGTH");
}

#[actix_web::test]
async fn login_sessions_are_listed_and_ended_by_hash() {
    let server = TestServer::start().await;
    let me = account(&server, "me").await;
    let login = post(
        &server,
        &format!("{V9}/auth/login"),
        None,
        json!({ "login": "me@example.org", "password": "correct horse" }),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let second = login.body["token"].as_str().unwrap().to_string();
    let mut gateway = classic(&server, &second).await;

    let listed = get(
        &server,
        &format!("{V9}/auth/sessions?extended=true"),
        Some(&me.token),
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let sessions = listed.body["user_sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    // The newest login is the second token's: end it.
    let newest = sessions.last().unwrap();
    assert!(newest["approx_last_used_time"].is_string());
    let ended = post(
        &server,
        &format!("{V9}/auth/sessions/logout"),
        Some(&me.token),
        json!({ "session_id_hashes": [newest["id_hash"]] }),
    )
    .await;
    assert_eq!(ended.status, 204, "{:?}", ended.body);
    assert_eq!(gateway.closed().await, Some(4004));
    let refused = get(&server, &format!("{V9}/users/@me"), Some(&second)).await;
    assert_eq!(refused.status, 401);
    let left = get(&server, &format!("{V9}/auth/sessions"), Some(&me.token)).await;
    assert_eq!(left.body["user_sessions"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn gifs_and_teams_answer_empty_in_their_shapes() {
    let server = TestServer::start().await;
    let me = account(&server, "me").await;
    let token = Some(me.token.as_str());
    for (path, expected) in [
        ("/gifs", json!([])),
        ("/gifs/trending", json!({ "categories": [], "gifs": [] })),
        ("/gifs/trending-gifs", json!([])),
        ("/gifs/search?q=cat", json!([])),
        ("/teams", json!([])),
    ] {
        let answer = get(&server, &format!("{V9}{path}"), token).await;
        assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
        assert_eq!(answer.body, expected, "{path}");
    }
    let unnamed = get(&server, &format!("{V9}/gifs/search"), token).await;
    assert_form_error(&unnamed, "q", "BASE_TYPE_REQUIRED");
    assert_eq!(get(&server, &format!("{V9}/teams"), None).await.status, 401);
}

#[actix_web::test]
async fn settings_protos_are_kept_opaque_and_as_json() {
    let server = TestServer::start().await;
    let me = account(&server, "me").await;
    let path = |suffix: &str| format!("{V9}/users/@me/settings-proto/{suffix}");
    let empty = get(&server, &path("1"), Some(&me.token)).await;
    assert_eq!(empty.status, 200, "{:?}", empty.body);
    assert_eq!(empty.body, json!({ "settings": "" }));
    let mut gateway = classic(&server, &me.token).await;
    let saved = patch(
        &server,
        &path("1"),
        &me.token,
        json!({ "settings": "CgIIAQ==" }),
    )
    .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    assert_eq!(saved.body["settings"], "CgIIAQ==");
    let event = gateway.dispatch("USER_SETTINGS_PROTO_UPDATE").await["d"].clone();
    assert_eq!(event["settings"], json!({ "proto": "CgIIAQ==", "type": 1 }));
    let read = get(&server, &path("1"), Some(&me.token)).await;
    assert_eq!(read.body["settings"], "CgIIAQ==");
    let not_base64 = patch(&server, &path("2"), &me.token, json!({ "settings": "%%%" })).await;
    assert_form_error(&not_base64, "settings", "BASE_TYPE_INVALID");
    let huge = "A".repeat(100_004);
    let too_big = patch(&server, &path("2"), &me.token, json!({ "settings": huge })).await;
    assert_form_error(&too_big, "settings", "BASE_TYPE_MAX_LENGTH");
    assert_eq!(get(&server, &path("3"), Some(&me.token)).await.status, 404);

    // Spacebar's JSON variant, as Fermi's favourites use it: top-level keys laid over.
    let first = json!({ "favoriteGifs": { "gifs": {} }, "versions": { "dataVersion": 1 } });
    let saved = patch(
        &server,
        &path("2/json"),
        &me.token,
        json!({ "settings": first }),
    )
    .await;
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    let second = json!({ "favorite_emojis": { "emojis": ["x"] } });
    patch(
        &server,
        &path("2/json"),
        &me.token,
        json!({ "settings": second }),
    )
    .await;
    let read = get(&server, &path("2/json"), Some(&me.token)).await;
    assert_eq!(read.body["settings"]["favoriteGifs"], json!({ "gifs": {} }));
    assert_eq!(read.body["settings"]["favorite_emojis"]["emojis"][0], "x");
}

#[actix_web::test]
async fn templates_copy_a_guild_and_need_manage_guild() {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let member = join(&server, &g, "member").await;
    let owner = Some(g.owner.token.as_str());
    let role = post(
        &server,
        &format!("{V9}/guilds/{}/roles", g.id),
        owner,
        json!({ "name": "Mods", "permissions": "8192", "hoist": true }),
    )
    .await;
    let role_id = role.body["id"].as_str().unwrap();
    let put = request(
        &server,
        Method::PUT,
        &format!("{V9}/channels/{}/permissions/{role_id}", g.channel),
        owner,
        Some(json!({ "type": 0, "allow": "1024", "deny": "0" })),
    )
    .await;
    assert_eq!(put.status, 204, "{:?}", put.body);

    let templates = format!("{V9}/guilds/{}/templates", g.id);
    let refused = post(
        &server,
        &templates,
        Some(&member.token),
        json!({ "name": "T" }),
    )
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let long = post(
        &server,
        &templates,
        owner,
        json!({ "name": "x".repeat(101) }),
    )
    .await;
    assert_form_error(&long, "name", "BASE_TYPE_BAD_LENGTH");
    let made = post(
        &server,
        &templates,
        owner,
        json!({ "name": "Starter", "description": "a start" }),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let code = made.body["code"].as_str().unwrap();
    assert_eq!(made.body["source_guild_id"], g.id.as_str());
    assert_eq!(made.body["creator_id"], g.owner.id.as_str());
    let source = &made.body["serialized_source_guild"];
    assert_eq!(source["roles"][0]["name"], "@everyone");
    assert_eq!(source["roles"][1]["name"], "Mods");
    let again = post(&server, &templates, owner, json!({ "name": "Again" })).await;
    assert_eq!(again.status, 400, "{:?}", again.body);
    assert_eq!(again.body["code"], 30031);
    let listed = get(&server, &templates, owner).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    // Anyone logged in may look at it and found a guild from it.
    let stranger = account(&server, "stranger").await;
    let mut v2 = fermi(&server, &stranger.token).await;
    let looked = get(
        &server,
        &format!("{V9}/guilds/templates/{code}"),
        Some(&stranger.token),
    )
    .await;
    assert_eq!(looked.status, 200, "{:?}", looked.body);
    assert_eq!(looked.body["name"], "Starter");
    let founded = post(
        &server,
        &format!("{V9}/guilds/templates/{code}"),
        Some(&stranger.token),
        json!({ "name": "From a template" }),
    )
    .await;
    assert_eq!(founded.status, 201, "{:?}", founded.body);
    assert_eq!(founded.body["owner_id"], stranger.id.as_str());
    let roles = founded.body["roles"].as_array().unwrap();
    let mods = roles.iter().find(|r| r["name"] == "Mods").unwrap();
    assert_eq!(mods["permissions"], "8192");
    assert_ne!(mods["id"], role_id);
    let created = v2.dispatch("GUILD_CREATE").await["d"].clone();
    assert_eq!(created["properties"]["name"], "From a template");
    let channels = created["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 4, "{channels:?}");
    let general = channels.iter().find(|c| c["name"] == "general").unwrap();
    assert_eq!(general["permission_overwrites"][0]["id"], mods["id"]);
    assert_eq!(general["permission_overwrites"][0]["allow"], "1024");
    let category = channels.iter().find(|c| c["id"] == general["parent_id"]);
    assert_eq!(category.unwrap()["name"], "Text Channels");
    let used = get(&server, &format!("{V9}/guilds/templates/{code}"), owner).await;
    assert_eq!(used.body["usage_count"], 1);

    // Sync, rename, delete.
    let one = format!("{templates}/{code}");
    let synced = request(&server, Method::PUT, &one, owner, None).await;
    assert_eq!(synced.status, 200, "{:?}", synced.body);
    let renamed = patch(&server, &one, &g.owner.token, json!({ "name": "Renamed" })).await;
    assert_eq!(renamed.body["name"], "Renamed");
    let deleted = request(&server, Method::DELETE, &one, owner, None).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let gone = get(&server, &format!("{V9}/guilds/templates/{code}"), owner).await;
    assert_eq!(
        (gone.status.as_u16(), gone.body["code"].clone()),
        (404, json!(10057))
    );
}

#[actix_web::test]
async fn welcome_screen_and_widget_follow_discords_rules() {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let member = join(&server, &g, "member").await;
    let screen = format!("{V9}/guilds/{}/welcome-screen", g.id);
    // Disabled: only those with MANAGE_GUILD may read it.
    let hidden = get(&server, &screen, Some(&member.token)).await;
    assert_eq!(hidden.status, 403, "{:?}", hidden.body);
    let refused = patch(&server, &screen, &member.token, json!({ "enabled": true })).await;
    assert_eq!(refused.status, 403);
    let too_long = patch(
        &server,
        &screen,
        &g.owner.token,
        json!({ "description": "x".repeat(141) }),
    )
    .await;
    assert_form_error(&too_long, "description", "BASE_TYPE_MAX_LENGTH");
    let elsewhere = patch(
        &server,
        &screen,
        &g.owner.token,
        json!({ "welcome_channels": [{ "channel_id": "1", "description": "hi" }] }),
    )
    .await;
    assert_form_error(
        &elsewhere,
        "welcome_channels.0.channel_id",
        "CHANNEL_INVALID",
    );
    let long_emoji = patch(
        &server,
        &screen,
        &g.owner.token,
        json!({ "welcome_channels": [{ "channel_id": g.channel, "description": "hi",
                                       "emoji_name": "e".repeat(33) }] }),
    )
    .await;
    assert_form_error(
        &long_emoji,
        "welcome_channels.0.emoji_name",
        "BASE_TYPE_MAX_LENGTH",
    );
    let set = patch(
        &server,
        &screen,
        &g.owner.token,
        json!({ "enabled": true, "description": "Welcome!",
                "welcome_channels": [{ "channel_id": g.channel, "description": "Say hi" }] }),
    )
    .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let seen = get(&server, &screen, Some(&member.token)).await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["enabled"], true);
    assert_eq!(seen.body["description"], "Welcome!");
    assert_eq!(
        seen.body["welcome_channels"][0]["channel_id"],
        g.channel.as_str()
    );
    assert_eq!(seen.body["welcome_channels"][0]["emoji_id"], Value::Null);

    let widget = format!("{V9}/guilds/{}/widget", g.id);
    let public = format!("{V9}/guilds/{}/widget.json", g.id);
    assert_eq!(get(&server, &widget, Some(&member.token)).await.status, 403);
    let off = get(&server, &widget, Some(&g.owner.token)).await;
    assert_eq!(off.body, json!({ "enabled": false, "channel_id": null }));
    let disabled = get(&server, &public, None).await;
    assert_eq!(
        (disabled.status.as_u16(), disabled.body["code"].clone()),
        (403, json!(50004))
    );
    let on = patch(
        &server,
        &widget,
        &g.owner.token,
        json!({ "enabled": true, "channel_id": g.channel }),
    )
    .await;
    assert_eq!(on.body, json!({ "enabled": true, "channel_id": g.channel }));
    // A category is no channel to invite to.
    let category = get(
        &server,
        &format!("{V9}/channels/{}", g.channel),
        Some(&g.owner.token),
    )
    .await
    .body["parent_id"]
        .clone();
    assert!(category.is_string());
    let to_category = patch(
        &server,
        &widget,
        &g.owner.token,
        json!({ "channel_id": category }),
    )
    .await;
    assert_form_error(&to_category, "channel_id", "CHANNEL_INVALID");
    let shown = get(&server, &public, None).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(shown.body["name"], "Test guild");
    let voice = shown.body["channels"].as_array().unwrap();
    assert_eq!(voice.len(), 1, "{voice:?}");
    assert_eq!(voice[0]["name"], "General");
}

#[actix_web::test]
async fn a_guild_past_discords_limits_makes_no_template() {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let templates = format!("{V9}/guilds/{}/templates", g.id);
    // The new guild's four channels and 497 more: 501.
    server
        .sql(&format!(
            "INSERT INTO channels (id, type, guild_id, name) \
             SELECT (SELECT max(id) FROM channels) + n, 0, {}, 'c' || n \
             FROM generate_series(1, 497) AS n",
            g.id
        ))
        .await;
    let refused = post(
        &server,
        &templates,
        Some(&g.owner.token),
        json!({ "name": "huge" }),
    )
    .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["code"], 30013);

    // At the limit it is made.
    server
        .sql(&format!(
            "DELETE FROM channels WHERE id = (SELECT max(id) FROM channels WHERE guild_id = {})",
            g.id
        ))
        .await;
    let made = post(
        &server,
        &templates,
        Some(&g.owner.token),
        json!({ "name": "large" }),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
}
