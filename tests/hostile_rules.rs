//! Discord's permission rules that a hostile user on the open internet would probe: a timeout
//! leaves reading only (and ends by itself), overwrites are checked on channel creation like
//! anywhere else, ephemeral answers stay their invoker's, DMs need a shared guild or a friendship
//! and end with a block, a kicked inviter loses their invite, and a login's timing does not tell
//! which e-mails have accounts.

use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::{json, Value};

use crate::bots::{application_with_bot, authorize};
use crate::common::gateway::Gateway;
use crate::common::guild::{guild, join, shared_guild, text_channel};
use crate::common::http::{account, get, open_dm, patch, post, request, Account, Response};
use crate::common::TestServer;
use crate::voice_signalling::{connect, op4, voice_guild};

const V9: &str = "/api/v9";
const THUMBS_UP: &str = "%F0%9F%91%8D";

fn assert_code(response: &Response, status: u16, code: u32) {
    assert_eq!(response.status, status, "{:?}", response.body);
    assert_eq!(response.body["code"], code, "{:?}", response.body);
}

async fn put(server: &TestServer, path: &str, token: &str, body: Value) -> Response {
    request(server, Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(server: &TestServer, path: &str, token: &str) -> Response {
    request(server, Method::DELETE, path, Some(token), None).await
}

async fn send(server: &TestServer, channel: &str, token: &str, body: Value) -> Response {
    post(
        server,
        &format!("{V9}/channels/{channel}/messages"),
        Some(token),
        body,
    )
    .await
}

/// The channel of the next VOICE_STATE_UPDATE about `user`.
async fn voice_channel_of(gateway: &mut Gateway, user: &Account) -> Value {
    loop {
        let state = gateway.dispatch("VOICE_STATE_UPDATE").await["d"].clone();
        if state["user_id"] == user.id.as_str() {
            return state["channel_id"].clone();
        }
    }
}

#[actix_web::test]
async fn a_timed_out_member_only_reads_until_the_timeout_ends() {
    let server = TestServer::start().await;
    let owner = account(&server, "owner").await;
    let muted = account(&server, "muted").await;
    let (guild_id, voice) = voice_guild(&server, &owner, &[&muted]).await;
    let channel = text_channel(&server, &owner.token, &guild_id).await;
    let other_voice = post(
        &server,
        &format!("{V9}/guilds/{guild_id}/channels"),
        Some(&owner.token),
        json!({ "name": "Second", "type": 2 }),
    )
    .await;
    assert_eq!(other_voice.status, 201, "{:?}", other_voice.body);
    let other_voice = other_voice.body["id"].as_str().unwrap().to_string();
    let said = send(
        &server,
        &channel,
        &owner.token,
        json!({ "content": "hello" }),
    )
    .await;
    let said = said.body["id"].as_str().unwrap().to_string();
    let reaction = format!("{V9}/channels/{channel}/messages/{said}/reactions/{THUMBS_UP}/@me");
    assert_eq!(
        put(&server, &reaction, &owner.token, json!({}))
            .await
            .status,
        204
    );
    let (mut watcher, _) = connect(&server, &owner.token).await;
    let (mut member, _) = connect(&server, &muted.token).await;
    member.send(op4(&guild_id, Some(&voice), false)).await;
    assert_eq!(voice_channel_of(&mut watcher, &muted).await, voice.as_str());

    let ends = chrono::Utc::now() + chrono::Duration::seconds(6);
    let timed_out = patch(
        &server,
        &format!("{V9}/guilds/{guild_id}/members/{}", muted.id),
        &owner.token,
        json!({ "communication_disabled_until": ends.to_rfc3339() }),
    )
    .await;
    assert_eq!(timed_out.status, 200, "{:?}", timed_out.body);
    // The timeout takes them out of voice.
    assert_eq!(voice_channel_of(&mut watcher, &muted).await, Value::Null);

    // Reading is all that is left: no message, typing, reaction (not even joining one),
    // invite, nickname or voice.
    let history = get(
        &server,
        &format!("{V9}/channels/{channel}/messages"),
        Some(&muted.token),
    )
    .await;
    assert_eq!(history.status, 200, "{:?}", history.body);
    assert_code(
        &send(&server, &channel, &muted.token, json!({ "content": "hi" })).await,
        403,
        50013,
    );
    let typing = post(
        &server,
        &format!("{V9}/channels/{channel}/typing"),
        Some(&muted.token),
        json!({}),
    )
    .await;
    assert_code(&typing, 403, 50013);
    assert_code(
        &put(&server, &reaction, &muted.token, json!({})).await,
        403,
        50013,
    );
    let invite = post(
        &server,
        &format!("{V9}/channels/{channel}/invites"),
        Some(&muted.token),
        json!({}),
    )
    .await;
    assert_code(&invite, 403, 50013);
    let nick = patch(
        &server,
        &format!("{V9}/guilds/{guild_id}/members/@me"),
        &muted.token,
        json!({ "nick": "loud" }),
    )
    .await;
    assert_code(&nick, 403, 50013);
    // The guild actor refuses the voice join (op 4s are taken in order: the first voice
    // state anyone sees of the member is the later join's).
    member.send(op4(&guild_id, Some(&voice), false)).await;

    // When the timeout passes, everything is back with nothing written.
    let left = (ends - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(300)).await;
    member.send(op4(&guild_id, Some(&other_voice), false)).await;
    assert_eq!(
        voice_channel_of(&mut watcher, &muted).await,
        other_voice.as_str()
    );
    let spoke = send(
        &server,
        &channel,
        &muted.token,
        json!({ "content": "back" }),
    )
    .await;
    assert_eq!(spoke.status, 200, "{:?}", spoke.body);
    assert_eq!(
        put(&server, &reaction, &muted.token, json!({}))
            .await
            .status,
        204
    );
}

#[actix_web::test]
async fn overwrites_grant_only_what_their_writer_has_on_every_path() {
    const MANAGE_CHANNELS: u64 = 1 << 4;
    const VIEW_CHANNEL: u64 = 1 << 10;
    const MANAGE_ROLES: u64 = 1 << 28;
    const MANAGE_WEBHOOKS: u64 = 1 << 29;
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let builder = join(&server, &g, "builder").await;
    let role = post(
        &server,
        &format!("{V9}/guilds/{}/roles", g.id),
        Some(&g.owner.token),
        json!({ "name": "builders", "permissions": MANAGE_CHANNELS.to_string() }),
    )
    .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    let role_id = role.body["id"].as_str().unwrap().to_string();
    let given = put(
        &server,
        &format!(
            "{V9}/guilds/{}/members/{}/roles/{role_id}",
            g.id, builder.id
        ),
        &g.owner.token,
        json!({}),
    )
    .await;
    assert_eq!(given.status, 204, "{:?}", given.body);
    let channels_before = server.count("channels").await;
    let overwrites_before = server.count("permission_overwrites").await;
    let overwrite =
        |allow: u64| json!({ "id": role_id, "type": 0, "allow": allow.to_string(), "deny": "0" });
    let create = |overwrites: Value| {
        let (server, path, token) = (
            &server,
            format!("{V9}/guilds/{}/channels", g.id),
            &builder.token,
        );
        async move {
            post(
                server,
                &path,
                Some(token),
                json!({ "name": "sneaky", "permission_overwrites": overwrites }),
            )
            .await
        }
    };
    let channel = format!("{V9}/channels/{}", g.channel);

    // With MANAGE_CHANNELS alone, a new channel's overwrite handed the role what it lacked.
    let escalating = overwrite(MANAGE_ROLES | MANAGE_WEBHOOKS);
    assert_code(&create(json!([escalating])).await, 403, 50013);
    assert_eq!(server.count("channels").await, channels_before);

    // With MANAGE_ROLES too, no path grants MANAGE_WEBHOOKS: creating, PATCH, PUT.
    let raised = patch(
        &server,
        &format!("{V9}/guilds/{}/roles/{role_id}", g.id),
        &g.owner.token,
        json!({ "permissions": (MANAGE_CHANNELS | MANAGE_ROLES).to_string() }),
    )
    .await;
    assert_eq!(raised.status, 200, "{:?}", raised.body);
    let webhooks = overwrite(MANAGE_WEBHOOKS);
    assert_code(&create(json!([webhooks])).await, 403, 50013);
    let patched = patch(
        &server,
        &channel,
        &builder.token,
        json!({ "permission_overwrites": [webhooks] }),
    )
    .await;
    assert_code(&patched, 403, 50013);
    let put_one = put(
        &server,
        &format!("{channel}/permissions/{role_id}"),
        &builder.token,
        webhooks.clone(),
    )
    .await;
    assert_code(&put_one, 403, 50013);
    assert_eq!(server.count("channels").await, channels_before);
    assert_eq!(
        server.count("permission_overwrites").await,
        overwrites_before
    );

    // What the writer holds they may hand out or take away, on each path.
    let private = json!([{ "id": g.id, "type": 0, "allow": "0", "deny": VIEW_CHANNEL.to_string() },
                         overwrite(VIEW_CHANNEL)]);
    let created = create(private.clone()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let patched = patch(
        &server,
        &channel,
        &builder.token,
        json!({ "permission_overwrites": private }),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(
        patched.body["permission_overwrites"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let read_back = get(&server, &channel, Some(&g.owner.token)).await;
    assert_eq!(
        read_back.body["permission_overwrites"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{:?}",
        read_back.body
    );
}

/// A person invokes a bot's command in a guild channel and the bot answers ephemerally:
/// (server, channel, invoker (the guild's owner), a bystander member, the answer's id).
async fn ephemeral_answer() -> (TestServer, String, Account, Account, String) {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let bystander = join(&server, &g, "bystander").await;
    let (app_id, token) = application_with_bot(&server, &g.owner.token, "Whisperer").await;
    // VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY.
    let authorized = authorize(&server, &g.owner.token, &app_id, &g.id, "68608").await;
    assert_eq!(authorized.status, 200, "{:?}", authorized.body);
    let bot = format!("Bot {token}");
    let command = post(
        &server,
        &format!("/api/v10/applications/{app_id}/guilds/{}/commands", g.id),
        Some(&bot),
        json!({ "name": "secret", "description": "Tells you a secret" }),
    )
    .await;
    assert_eq!(command.status, 201, "{:?}", command.body);
    let mut bot_gateway = Gateway::connect(&server, "v=10&encoding=json").await;
    bot_gateway.identify(&bot).await;
    let invoked = post(
        &server,
        &format!("{V9}/interactions"),
        Some(&g.owner.token),
        json!({
            "type": 2, "application_id": app_id, "guild_id": g.id, "channel_id": g.channel,
            "session_id": "s", "nonce": "n",
            "data": { "id": command.body["id"], "name": "secret", "type": 1 },
        }),
    )
    .await;
    assert_eq!(invoked.status, 204, "{:?}", invoked.body);
    let created = bot_gateway.dispatch("INTERACTION_CREATE").await["d"].clone();
    let (id, interaction_token) = (
        created["id"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    let answered = post(
        &server,
        &format!("/api/v10/interactions/{id}/{interaction_token}/callback"),
        None,
        json!({ "type": 4, "data": { "content": "the password is swordfish", "flags": 64 } }),
    )
    .await;
    assert_eq!(answered.status, 204, "{:?}", answered.body);
    let original = get(
        &server,
        &format!("/api/v10/webhooks/{app_id}/{interaction_token}/messages/@original"),
        None,
    )
    .await;
    assert_eq!(original.status, 200, "{:?}", original.body);
    let message_id = original.body["id"].as_str().unwrap().to_string();
    (server, g.channel, g.owner, bystander, message_id)
}

#[actix_web::test]
async fn an_ephemeral_answer_is_nobody_elses_to_read_reply_to_react_to_or_pin() {
    let (server, channel, owner, bystander, message_id) = ephemeral_answer().await;
    let message = format!("{V9}/channels/{channel}/messages/{message_id}");

    let fetched = get(&server, &message, Some(&bystander.token)).await;
    assert_code(&fetched, 404, 10008);
    assert!(!format!("{:?}", fetched.body).contains("swordfish"));
    let reply = send(
        &server,
        &channel,
        &bystander.token,
        json!({ "content": "what?", "message_reference": { "message_id": message_id } }),
    )
    .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert!(!format!("{:?}", reply.body).contains("swordfish"));
    let reacted = put(
        &server,
        &format!("{message}/reactions/{THUMBS_UP}/@me"),
        &bystander.token,
        json!({}),
    )
    .await;
    assert_code(&reacted, 404, 10008);
    // Not even the channel's moderator (who invoked it) can pin it into everyone's view.
    let pinned = put(
        &server,
        &format!("{V9}/channels/{channel}/pins/{message_id}"),
        &owner.token,
        json!({}),
    )
    .await;
    assert_code(&pinned, 404, 10008);
    let history = get(
        &server,
        &format!("{V9}/channels/{channel}/messages"),
        Some(&bystander.token),
    )
    .await;
    assert!(
        !format!("{:?}", history.body).contains("swordfish"),
        "{:?}",
        history.body
    );
}

#[actix_web::test]
async fn dms_need_a_shared_guild_or_a_friendship_and_end_with_a_block() {
    let server = TestServer::start().await;
    let alice = account(&server, "alice").await;
    let bob = account(&server, "bob").await;
    let carol = account(&server, "carol").await;

    // Strangers may open the DM; the message is refused.
    let to_bob = open_dm(&server, &alice, &bob).await;
    let refused = send(&server, &to_bob, &alice.token, json!({ "content": "hi" })).await;
    assert_code(&refused, 403, 50007);
    assert_eq!(refused.body["message"], "Cannot send messages to this user");

    // Friends may talk without a guild.
    let asked = put(
        &server,
        &format!("{V9}/users/@me/relationships/{}", bob.id),
        &alice.token,
        json!({}),
    )
    .await;
    assert_eq!(asked.status, 204, "{:?}", asked.body);
    let accepted = put(
        &server,
        &format!("{V9}/users/@me/relationships/{}", alice.id),
        &bob.token,
        json!({ "type": 1 }),
    )
    .await;
    assert_eq!(accepted.status, 204, "{:?}", accepted.body);
    let sent = send(&server, &to_bob, &alice.token, json!({ "content": "hi" })).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);

    // So may people who share a guild, until one blocks the other: then neither may.
    shared_guild(&server, &carol, &[&alice]).await;
    let to_carol = open_dm(&server, &alice, &carol).await;
    let sent = send(
        &server,
        &to_carol,
        &alice.token,
        json!({ "content": "hey" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let blocked = put(
        &server,
        &format!("{V9}/users/@me/relationships/{}", alice.id),
        &carol.token,
        json!({ "type": 2 }),
    )
    .await;
    assert_eq!(blocked.status, 204, "{:?}", blocked.body);
    for token in [&alice.token, &carol.token] {
        let refused = send(&server, &to_carol, token, json!({ "content": "hey" })).await;
        assert_code(&refused, 403, 50007);
    }
}

#[actix_web::test]
async fn a_kicked_inviter_cannot_delete_their_invite() {
    let server = TestServer::start().await;
    let g = guild(&server).await;
    let inviter = join(&server, &g, "inviter").await;
    let make_invite = async || {
        let invite = post(
            &server,
            &format!("{V9}/channels/{}/invites", g.channel),
            Some(&inviter.token),
            json!({ "max_age": 0, "unique": true }),
        )
        .await;
        assert_eq!(invite.status, 200, "{:?}", invite.body);
        invite.body["code"].as_str().unwrap().to_string()
    };
    // A member deletes their own invite.
    let own = make_invite().await;
    let deleted = delete(&server, &format!("{V9}/invites/{own}"), &inviter.token).await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);

    let kept = make_invite().await;
    let kicked = delete(
        &server,
        &format!("{V9}/guilds/{}/members/{}", g.id, inviter.id),
        &g.owner.token,
    )
    .await;
    assert_eq!(kicked.status, 204, "{:?}", kicked.body);
    let refused = delete(&server, &format!("{V9}/invites/{kept}"), &inviter.token).await;
    assert!(
        matches!(refused.status.as_u16(), 403 | 404),
        "{} {:?}",
        refused.status,
        refused.body
    );
    assert_eq!(
        get(&server, &format!("{V9}/invites/{kept}"), None)
            .await
            .status,
        200
    );
}

/// The median of some durations.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[actix_web::test]
async fn an_unknown_email_takes_as_long_to_refuse_as_a_wrong_password() {
    // A cost high enough that bcrypt's work dwarfs the rest of a login.
    let server = TestServer::with(&[
        ("security.bcrypt_cost", "9"),
        ("rate_limits.enabled", "false"),
    ])
    .await;
    account(&server, "known").await;
    let login = async |email: &str| {
        let started = Instant::now();
        let refused = post(
            &server,
            &format!("{V9}/auth/login"),
            None,
            json!({ "login": email, "password": "not the password" }),
        )
        .await;
        assert_eq!(refused.status, 400, "{:?}", refused.body);
        started.elapsed()
    };
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        wrong.push(login("known@example.org").await);
        unknown.push(login("nobody@example.org").await);
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    eprintln!("login medians: unknown e-mail {unknown:?}, wrong password {wrong:?}");
    // Generous slack for a busy machine; without the decoy hash, unknown is ~20x faster.
    assert!(
        unknown * 2 >= wrong,
        "unknown e-mail {unknown:?}, wrong password {wrong:?}"
    );
}
