//! Cluster mode as people see it: three nodes on one database and one Redis, each person's
//! gateway on one node and their requests through others. Whatever one node commits reaches
//! every session allowed to see it, on any node, in the order it was committed; those not
//! allowed (a channel denied, a guild left, a login ended) hear nothing more from any node.
//! Where a test shows something did NOT arrive, it uses a barrier: a later event through the
//! same node that the session may see, which must come first.

use awc::http::Method;
use serde_json::json;

use crate::admin::{admin, operator, status_from};
use crate::common::gateway::Gateway;
use crate::common::guild::{guild, join_through_invite, Guild};
use crate::common::http::{
    account, befriend, get, open_dm, patch, post, registration, request, Account, Response,
};
use crate::common::redis::Redis;
use crate::common::TestServer;

/// GUILDS | GUILD_MEMBERS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS | DIRECT_MESSAGES |
/// DIRECT_MESSAGE_REACTIONS | MESSAGE_CONTENT.
const INTENTS: u64 = 1 | 2 | 512 | 1024 | 4096 | 8192 | 32768;
/// The VIEW_CHANNEL permission bit.
const VIEW_CHANNEL: &str = "1024";

/// A session of `account`'s on `node` that hears messages, reactions and DMs.
async fn online(node: &TestServer, account: &Account) -> Gateway {
    let mut gateway = Gateway::connect(node, "v=10&encoding=json").await;
    gateway
        .send(json!({
            "op": 2,
            "d": { "token": account.token, "intents": INTENTS,
                   "properties": { "os": "linux", "browser": "test", "device": "" } },
        }))
        .await;
    gateway.dispatch("READY").await;
    gateway
}

/// `author` posts `content` in `channel` through `node`; the message's id.
async fn say(node: &TestServer, author: &Account, channel: &str, content: &str) -> String {
    let sent = post(
        node,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&author.token),
        json!({ "content": content }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    sent.body["id"].as_str().unwrap().to_owned()
}

/// A new text channel in `guild`, made by its owner through `node`.
async fn another_channel(node: &TestServer, g: &Guild, name: &str) -> String {
    let made = post(
        node,
        &format!("/api/v9/guilds/{}/channels", g.id),
        Some(&g.owner.token),
        json!({ "name": name, "type": 0 }),
    )
    .await;
    assert!(made.status.is_success(), "{:?}", made.body);
    made.body["id"].as_str().unwrap().to_owned()
}

/// The owner denies `member` VIEW_CHANNEL on `channel` through `node`.
async fn hide(node: &TestServer, g: &Guild, channel: &str, member: &Account) {
    let denied = request(
        node,
        Method::PUT,
        &format!("/api/v9/channels/{channel}/permissions/{}", member.id),
        Some(&g.owner.token),
        Some(json!({ "type": 1, "allow": "0", "deny": VIEW_CHANNEL })),
    )
    .await;
    assert_eq!(denied.status, 204, "{:?}", denied.body);
}

/// Everything `session` hears up to the barrier message `barrier_id`, which must come; asserts
/// none of it is about `channel`.
async fn nothing_about(session: &mut Gateway, channel: &str, barrier_id: &str) {
    loop {
        let seen = session.dispatches_until("MESSAGE_CREATE");
        let seen = seen.await;
        for event in &seen {
            assert_ne!(
                event["d"]["channel_id"], channel,
                "heard about a channel it may not see: {event}"
            );
        }
        if seen.last().unwrap()["d"]["id"] == barrier_id {
            return;
        }
    }
}

#[actix_web::test]
async fn two_people_on_different_nodes_chat_and_a_third_who_may_not_see_hears_nothing() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let g = guild(&nodes[0]).await;
    let friend = account(&nodes[1], "friend").await;
    let outsider = account(&nodes[2], "outsider").await;
    join_through_invite(&nodes[1], &g.owner.token, &g.channel, &friend.token).await;
    join_through_invite(&nodes[2], &g.owner.token, &g.channel, &outsider.token).await;
    let lobby = another_channel(&nodes[0], &g, "lobby").await;
    hide(&nodes[0], &g, &g.channel, &outsider).await;
    let mut owner = online(&nodes[0], &g.owner).await;
    let mut other = online(&nodes[1], &friend).await;
    let mut hidden = online(&nodes[2], &outsider).await;

    // Each posts through their own node; both see both messages.
    let first = say(&nodes[0], &g.owner, &g.channel, "hello from A").await;
    let second = say(&nodes[1], &friend, &g.channel, "hello from B").await;
    for session in [&mut owner, &mut other] {
        let created = session.dispatch("MESSAGE_CREATE").await;
        assert_eq!(created["d"]["id"], first.as_str());
        let created = session.dispatch("MESSAGE_CREATE").await;
        assert_eq!(created["d"]["id"], second.as_str());
    }

    // The friend reacts to the owner's message, the owner edits it, then deletes the friend's.
    let message = |id: &str| format!("/api/v9/channels/{}/messages/{id}", g.channel);
    let reacted = request(
        &nodes[1],
        Method::PUT,
        &format!("{}/reactions/%F0%9F%91%8D/@me", message(&first)),
        Some(&friend.token),
        None,
    )
    .await;
    assert_eq!(reacted.status, 204, "{:?}", reacted.body);
    let edited = patch(
        &nodes[0],
        &message(&first),
        &g.owner.token,
        json!({ "content": "hello again from A" }),
    )
    .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    let deleted = request(
        &nodes[0],
        Method::DELETE,
        &message(&second),
        Some(&g.owner.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    for session in [&mut owner, &mut other] {
        let reaction = session.dispatch("MESSAGE_REACTION_ADD").await;
        assert_eq!(reaction["d"]["message_id"], first.as_str());
        assert_eq!(reaction["d"]["user_id"], friend.id.as_str());
        assert_eq!(reaction["d"]["emoji"]["name"], "👍");
        let update = session.dispatch("MESSAGE_UPDATE").await;
        assert_eq!(update["d"]["content"], "hello again from A");
        let delete = session.dispatch("MESSAGE_DELETE").await;
        assert_eq!(delete["d"]["id"], second.as_str());
    }

    // The outsider's first message is the one in the lobby they may see.
    let barrier = say(&nodes[0], &g.owner, &lobby, "everyone").await;
    nothing_about(&mut hidden, &g.channel, &barrier).await;
}

#[actix_web::test]
async fn a_person_online_on_two_nodes_hears_their_own_events_on_both() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let me = account(&nodes[0], "twice").await;
    let someone = account(&nodes[2], "someone").await;
    let mut here = online(&nodes[0], &me).await;
    let mut there = online(&nodes[1], &me).await;

    let changed = patch(
        &nodes[2],
        "/api/v9/users/@me",
        &me.token,
        json!({ "bio": "on every node" }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    for session in [&mut here, &mut there] {
        let update = session.dispatch("USER_UPDATE").await;
        assert_eq!(update["d"]["id"], me.id.as_str());
        assert_eq!(update["d"]["bio"], "on every node");
    }

    let asked = request(
        &nodes[2],
        Method::PUT,
        &format!("/api/v9/users/@me/relationships/{}", me.id),
        Some(&someone.token),
        Some(json!({})),
    )
    .await;
    assert_eq!(asked.status, 204, "{:?}", asked.body);
    for session in [&mut here, &mut there] {
        let added = session.dispatch("RELATIONSHIP_ADD").await;
        assert_eq!(added["d"]["id"], someone.id.as_str());
    }

    // Friends now (accepted through C), they may talk privately.
    let accepted = request(
        &nodes[2],
        Method::PUT,
        &format!("/api/v9/users/@me/relationships/{}", someone.id),
        Some(&me.token),
        Some(json!({ "type": 1 })),
    )
    .await;
    assert_eq!(accepted.status, 204, "{:?}", accepted.body);
    let dm = open_dm(&nodes[2], &someone, &me).await;
    let sent = say(&nodes[2], &someone, &dm, "psst").await;
    for session in [&mut here, &mut there] {
        let [created, message] = &session
            .dispatches(&["CHANNEL_CREATE", "MESSAGE_CREATE"])
            .await[..]
        else {
            unreachable!()
        };
        assert_eq!(created["d"]["id"], dm.as_str());
        assert_eq!(message["d"]["id"], sent.as_str());
    }
}

/// Two nodes; a guild made through A, with a second channel everyone sees, `lobby`; a member
/// registered through B who joined through A.
struct MemberOnB {
    _redis: Redis,
    nodes: Vec<TestServer>,
    g: Guild,
    member: Account,
    lobby: String,
}

impl MemberOnB {
    async fn new() -> Self {
        let redis = Redis::start();
        let nodes = TestServer::cluster(2, &redis).await;
        let g = guild(&nodes[0]).await;
        let member = account(&nodes[1], "member").await;
        join_through_invite(&nodes[0], &g.owner.token, &g.channel, &member.token).await;
        let lobby = another_channel(&nodes[0], &g, "lobby").await;
        Self {
            _redis: redis,
            nodes,
            g,
            member,
            lobby,
        }
    }

    /// The owner posts through A in the guild's first channel, then in the lobby: the member's
    /// `session` hears nothing of the first before the second.
    async fn unheard(&self, session: &mut Gateway) {
        let (a, g) = (&self.nodes[0], &self.g);
        say(a, &g.owner, &g.channel, "not for you").await;
        let barrier = say(a, &g.owner, &self.lobby, "for everyone").await;
        nothing_about(session, &g.channel, &barrier).await;
    }
}

#[actix_web::test]
async fn a_channel_hidden_through_one_node_is_hidden_at_once_on_the_others() {
    let at = MemberOnB::new().await;
    let mut session = online(&at.nodes[1], &at.member).await;
    hide(&at.nodes[0], &at.g, &at.g.channel, &at.member).await;
    at.unheard(&mut session).await;
}

#[actix_web::test]
async fn a_role_taken_through_one_node_hides_its_channel_at_once_on_the_others() {
    let at = MemberOnB::new().await;
    let (nodes, g, member) = (&at.nodes, &at.g, &at.member);
    // The channel is for the role's holders alone.
    let role = post(
        &nodes[0],
        &format!("/api/v9/guilds/{}/roles", g.id),
        Some(&g.owner.token),
        json!({ "name": "insiders" }),
    )
    .await;
    assert!(role.status.is_success(), "{:?}", role.body);
    let role = role.body["id"].as_str().unwrap().to_owned();
    for (id, kind, allow, deny) in [(&role, 0, VIEW_CHANNEL, "0"), (&g.id, 0, "0", VIEW_CHANNEL)] {
        let set = request(
            &nodes[0],
            Method::PUT,
            &format!("/api/v9/channels/{}/permissions/{id}", g.channel),
            Some(&g.owner.token),
            Some(json!({ "type": kind, "allow": allow, "deny": deny })),
        )
        .await;
        assert_eq!(set.status, 204, "{:?}", set.body);
    }
    let holder = format!("/api/v9/guilds/{}/members/{}/roles/{role}", g.id, member.id);
    let given = request(&nodes[0], Method::PUT, &holder, Some(&g.owner.token), None).await;
    assert_eq!(given.status, 204, "{:?}", given.body);
    let mut session = online(&nodes[1], member).await;
    let seen = say(&nodes[0], &g.owner, &g.channel, "insiders only").await;
    assert_eq!(
        session.dispatch("MESSAGE_CREATE").await["d"]["id"],
        seen.as_str()
    );

    let taken = request(
        &nodes[0],
        Method::DELETE,
        &holder,
        Some(&g.owner.token),
        None,
    )
    .await;
    assert_eq!(taken.status, 204, "{:?}", taken.body);
    at.unheard(&mut session).await;
}

/// A member online on node B is shut out of the guild through node A (`how`, `path` for the
/// guild and the member's ids): their session hears GUILD_DELETE before anything posted there
/// after, and none of that; a DM from the owner (the barrier, not the guild's) arrives.
async fn shut_out_through_another_node(how: Method, path: impl Fn(&str, &str) -> String) {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let g = guild(&nodes[0]).await;
    let member = account(&nodes[1], "member").await;
    join_through_invite(&nodes[0], &g.owner.token, &g.channel, &member.token).await;
    befriend(&nodes[0], &g.owner, &member).await;
    let dm = open_dm(&nodes[0], &g.owner, &member).await;
    let mut session = online(&nodes[1], &member).await;

    let body = (how == Method::PUT).then(|| json!({}));
    let removed = request(
        &nodes[0],
        how,
        &path(&g.id, &member.id),
        Some(&g.owner.token),
        body,
    )
    .await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    say(&nodes[0], &g.owner, &g.channel, "after they left").await;
    let barrier = say(&nodes[0], &g.owner, &dm, "still friends?").await;
    let seen = session.dispatches_until("GUILD_DELETE").await;
    assert_eq!(seen.last().unwrap()["d"]["id"], g.id.as_str());
    assert!(seen.iter().all(|e| e["t"] != "MESSAGE_CREATE"), "{seen:?}");
    nothing_about(&mut session, &g.channel, &barrier).await;
}

#[actix_web::test]
async fn a_ban_through_one_node_shuts_the_guild_out_before_its_next_message_on_another() {
    shut_out_through_another_node(Method::PUT, |guild, user| {
        format!("/api/v9/guilds/{guild}/bans/{user}")
    })
    .await;
}

#[actix_web::test]
async fn a_kick_through_one_node_stops_the_guild_on_another() {
    shut_out_through_another_node(Method::DELETE, |guild, user| {
        format!("/api/v9/guilds/{guild}/members/{user}")
    })
    .await;
}

/// A new login of "leaver"'s through `node`: its token.
async fn login(node: &TestServer) -> String {
    let login = post(
        node,
        "/api/v9/auth/login",
        None,
        json!({ "login": "leaver@example.org", "password": "correct horse" }),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    login.body["token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn ending_a_login_through_one_node_closes_its_sessions_on_another() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let me = account(&nodes[0], "leaver").await;

    // Logging out ends that token's session elsewhere.
    let mut session = online(&nodes[1], &me).await;
    let out = post(
        &nodes[0],
        "/api/v9/auth/logout",
        Some(&me.token),
        json!({ "provider": null }),
    )
    .await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    assert_eq!(session.closed().await, Some(4004));

    // A new password ends every other login: a session on B with another token closes.
    let kept = login(&nodes[0]).await;
    let other = Account {
        token: login(&nodes[1]).await,
        id: me.id.clone(),
    };
    let mut session = online(&nodes[1], &other).await;
    let changed = patch(
        &nodes[0],
        "/api/v9/users/@me",
        &kept,
        json!({ "password": "correct horse", "new_password": "battery staple" }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    assert_eq!(session.closed().await, Some(4004));

    // Deleting the account through A ends its last login (the one the new password made),
    // whose session is on B.
    let last = changed.body["token"].as_str().unwrap().to_owned();
    let mut session = online(
        &nodes[1],
        &Account {
            token: last.clone(),
            id: me.id.clone(),
        },
    )
    .await;
    let deleted = post(
        &nodes[0],
        "/api/v9/users/@me/delete",
        Some(&last),
        json!({ "password": "battery staple" }),
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(session.closed().await, Some(4004));
}

#[actix_web::test]
async fn a_guild_joined_through_one_node_arrives_on_a_session_on_another() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let g = guild(&nodes[0]).await;
    let joiner = account(&nodes[1], "joiner").await;
    let mut session = online(&nodes[1], &joiner).await;

    // The first message follows the join at once: B must already hear the guild by then.
    join_through_invite(&nodes[0], &g.owner.token, &g.channel, &joiner.token).await;
    let id = say(&nodes[0], &g.owner, &g.channel, "welcome").await;
    let seen = session.dispatches_until("MESSAGE_CREATE").await;
    let created = seen
        .iter()
        .find(|e| e["t"] == "GUILD_CREATE")
        .expect("GUILD_CREATE first");
    assert_eq!(created["d"]["id"], g.id.as_str());
    assert_eq!(seen.last().unwrap()["d"]["id"], id.as_str());
}

/// Asks until the answer satisfies `done`: a change made through another node arrives a
/// moment later.
async fn eventually<T, Asked: std::future::Future<Output = T>>(
    what: &str,
    done: impl Fn(&T) -> bool,
    ask: impl Fn() -> Asked,
) {
    for _ in 0..200 {
        if done(&ask().await) {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what} never happened");
}

#[actix_web::test]
async fn an_operators_changes_through_one_node_apply_on_the_others() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let root = operator(&nodes[0]).await;

    let changed = admin(
        &nodes[0],
        Method::PATCH,
        "/config",
        &root.token,
        Some(json!({ "register.allow_new_registration": false })),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    eventually(
        "the configuration change on C",
        |config: &Response| config.body["config"]["register"]["allow_new_registration"] == false,
        || admin(&nodes[2], Method::GET, "/config", &root.token, None),
    )
    .await;
    let closed = post(
        &nodes[2],
        "/api/v9/auth/register",
        None,
        registration("late", "late@example.org"),
    )
    .await;
    assert_eq!(closed.status, 400, "{:?}", closed.body);

    // An address banned through A is refused by C (127.0.0.2 is this machine too).
    let from = |ip| status_from(&nodes[2], ip, &root.token);
    assert_eq!(from("127.0.0.2").await, 200);
    let banned = admin(
        &nodes[0],
        Method::POST,
        "/bans",
        &root.token,
        Some(json!({ "ip": "127.0.0.2" })),
    )
    .await;
    assert_eq!(banned.status, 201, "{:?}", banned.body);
    eventually(
        "the address ban on C",
        |status| *status == 403,
        || from("127.0.0.2"),
    )
    .await;
    assert_eq!(from("127.0.0.1").await, 200);
    assert_eq!(
        get(&nodes[2], "/api/v9/users/@me", Some(&root.token))
            .await
            .status,
        200
    );
}
