//! Cluster mode: three nodes on one database and one Redis act as one instance. Clients talk
//! to different nodes; what one node commits reaches the sessions of every node that may see
//! it, in order, and Redis going away and coming back loses no one silently.

use serde_json::json;

use crate::common::gateway::Gateway;
use crate::common::guild::guild;
use crate::common::http::{account, post, Account};
use crate::common::redis::Redis;
use crate::common::TestServer;

/// A session of `account`'s on `node`, and its session id.
struct Online {
    gateway: Gateway,
    session_id: String,
}

async fn online(node: &TestServer, account: &Account) -> Online {
    let mut gateway = Gateway::connect(node, "v=10&encoding=json").await;
    let ready = gateway.identify(&account.token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();
    Online {
        gateway,
        session_id,
    }
}

#[actix_web::test]
async fn a_message_posted_through_one_node_reaches_sessions_on_the_others() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let g = guild(&nodes[0]).await;
    let reader = account(&nodes[1], "reader").await;
    crate::common::guild::join_through_invite(&nodes[2], &g.owner.token, &g.channel, &reader.token)
        .await;
    let mut owner = online(&nodes[0], &g.owner).await.gateway;
    let mut listener = online(&nodes[1], &reader).await.gateway;

    let sent = post(
        &nodes[2],
        &format!("/api/v9/channels/{}/messages", g.channel),
        Some(&reader.token),
        json!({ "content": "across", "nonce": "n1" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    for session in [&mut owner, &mut listener] {
        let created = session.dispatch("MESSAGE_CREATE").await;
        assert_eq!(created["d"]["content"], "across");
        assert_eq!(created["d"]["id"], sent.body["id"]);
    }
}

/// A session that was told to start over: op 7 and a close; its RESUME is refused (op 9, not
/// resumable) because what it missed is in no node's buffer; a new IDENTIFY works.
async fn starts_over(mut session: Online, node: &TestServer, account: &Account) -> Gateway {
    let reconnect = loop {
        let payload = session.gateway.payload().await;
        if payload["op"] == 7 {
            break payload;
        }
    };
    assert!(reconnect["d"].is_null());
    let mut again = Gateway::connect(node, "v=10&encoding=json").await;
    let session_id = session.session_id;
    again
        .send(
            json!({ "op": 6, "d": { "token": account.token, "session_id": session_id, "seq": 1 } }),
        )
        .await;
    let refused = again.payload().await;
    assert_eq!(refused["op"], 9, "{refused}");
    assert_eq!(refused["d"], false);
    online(node, account).await.gateway
}

async fn say(node: &TestServer, g: &crate::common::guild::Guild, content: &str) -> String {
    let sent = post(
        node,
        &format!("/api/v9/channels/{}/messages", g.channel),
        Some(&g.owner.token),
        json!({ "content": content }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    sent.body["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn redis_restarting_makes_sessions_that_may_have_missed_something_start_over() {
    let mut redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let g = guild(&nodes[0]).await;
    let reader = account(&nodes[0], "reader").await;
    crate::common::guild::join_through_invite(&nodes[0], &g.owner.token, &g.channel, &reader.token)
        .await;
    let mut listener = online(&nodes[1], &reader).await;
    say(&nodes[0], &g, "before").await;
    let before = listener.gateway.dispatch("MESSAGE_CREATE").await;
    assert_eq!(before["d"]["content"], "before");

    // Everything Redis knew is gone, and whatever was published meanwhile with it.
    redis.restart();
    say(&nodes[0], &g, "while it restarted").await;
    let mut listener = starts_over(listener, &nodes[1], &reader).await;

    // Recovered: fan-out works again, through Redis.
    let id = say(&nodes[0], &g, "after").await;
    let created = listener.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["d"]["id"], id.as_str());
}

#[actix_web::test]
async fn redis_stopped_for_ten_seconds_loses_nothing_silently() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let g = guild(&nodes[0]).await;
    let reader = account(&nodes[0], "reader").await;
    crate::common::guild::join_through_invite(&nodes[0], &g.owner.token, &g.channel, &reader.token)
        .await;
    let mut listener = online(&nodes[1], &reader).await.gateway;
    say(&nodes[0], &g, "before").await;
    assert_eq!(
        listener.dispatch("MESSAGE_CREATE").await["d"]["content"],
        "before"
    );

    redis.pause();
    // The write is PostgreSQL's: it succeeds while the bus hangs.
    let during = say(&nodes[0], &g, "during").await;
    actix_web::rt::time::sleep(std::time::Duration::from_secs(10)).await;
    redis.resume();
    // Either the message arrives late, or the session is told it may have missed it (or
    // both: a publisher that gave up waiting cannot know the stopped Redis took it after all).
    let mut listener = Some(listener);
    while let Some(mut session) = listener.take() {
        let payload = session.payload().await;
        if payload["t"] == "MESSAGE_CREATE" {
            assert_eq!(payload["d"]["id"], during.as_str());
            break;
        }
        if payload["op"] != 7 {
            listener = Some(session);
        }
    }
    // Recovered, fan-out works again (a session told late to start over starts over).
    let mut listener = online(&nodes[1], &reader).await.gateway;
    let id = say(&nodes[0], &g, "after").await;
    let created = loop {
        let payload = listener.payload().await;
        assert_ne!(
            payload["op"], 7,
            "a session that started after recovery was told to start over"
        );
        if payload["t"] == "MESSAGE_CREATE" {
            break payload;
        }
    };
    assert_eq!(created["d"]["id"], id.as_str());
}

/// How many nodes listen to `channel`.
async fn listeners(redis: &Redis, channel: &str) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    counts[0].1
}

#[actix_web::test]
async fn a_node_hears_a_guild_only_while_it_holds_a_session_there() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let g = guild(&nodes[0]).await;
    let channel = format!("g:{}", g.id);
    let user = format!("u:{}", g.owner.id);
    assert_eq!(listeners(&redis, &channel).await, 0, "no session anywhere");

    let first = online(&nodes[0], &g.owner).await;
    let mut second = online(&nodes[1], &g.owner).await;
    assert_eq!(
        listeners(&redis, &channel).await,
        2,
        "the two nodes with a session"
    );
    assert_eq!(listeners(&redis, &user).await, 2);

    // The user's channel goes with their last session on a node; the guild's once the node
    // finds, on its next check, that nobody there listens.
    // Closing with 1000 ends the session (it is not kept for a RESUME).
    second.gateway.close_with(1000).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    while listeners(&redis, &channel).await != 1 || listeners(&redis, &user).await != 1 {
        assert!(std::time::Instant::now() < deadline, "node B still listens");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Coming back, node B reads the guild again: a message sent meanwhile is no surprise.
    say(&nodes[2], &g, "while B was deaf").await;
    let mut back = online(&nodes[1], &g.owner).await;
    let id = say(&nodes[2], &g, "B hears again").await;
    let heard = loop {
        let created = back.gateway.dispatch("MESSAGE_CREATE").await;
        if created["d"]["id"] == id.as_str() {
            break created;
        }
    };
    assert_eq!(heard["d"]["content"], "B hears again");
    drop(first);
}
