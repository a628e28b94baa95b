//! Presences in cluster mode: a user's presence is that of all their sessions on every node,
//! and their friends and guildmates hear it whichever node they are on; READY on one node
//! lists friends online only on another.

use serde_json::json;

use crate::common::gateway::Gateway;
use crate::common::guild::shared_guild;
use crate::common::http::{account, befriend};
use crate::common::redis::Redis;
use crate::common::TestServer;
use crate::gateway_members::{next_update, watch};
use crate::presence::{connect, presence, status};

/// Closes with 1000: the session ends at once (no resume window).
async fn leave(mut gateway: Gateway) {
    gateway.close_with(1000).await;
    gateway.closed().await;
}

#[actix_web::test]
async fn friends_on_different_nodes_see_each_other_come_online_go_idle_and_offline() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let alice = account(&nodes[0], "alice").await;
    let bob = account(&nodes[0], "bob").await;
    befriend(&nodes[1], &alice, &bob).await;
    let (mut a, _) = connect(&nodes[0], &alice.token).await;

    let (mut b, ready) = connect(&nodes[1], &bob.token).await;
    let online = &ready["presences"][0];
    assert_eq!(online["user"]["id"], alice.id.as_str(), "{ready}");
    assert_eq!(online["status"], "online");
    let heard = presence(&mut a).await;
    assert_eq!(heard["user"]["id"], bob.id.as_str());
    assert_eq!(heard["status"], "online");
    assert!(heard.get("guild_id").is_none(), "{heard}");

    let game = json!([{ "name": "Go", "type": 0 }]);
    a.send(status("idle", game.clone())).await;
    let idle = presence(&mut b).await;
    assert_eq!(idle["user"]["id"], alice.id.as_str());
    assert_eq!(
        (idle["status"].as_str(), &idle["activities"]),
        (Some("idle"), &game)
    );

    b.send(status("dnd", json!([]))).await;
    assert_eq!(presence(&mut a).await["status"], "dnd");
    leave(b).await;
    let offline = presence(&mut a).await;
    assert_eq!(offline["user"]["id"], bob.id.as_str());
    assert_eq!(offline["status"], "offline");

    // New friends, both online on different nodes: each hears the other at once.
    let frank = account(&nodes[0], "frank").await;
    let (mut f, _) = connect(&nodes[1], &frank.token).await;
    befriend(&nodes[1], &frank, &alice).await;
    let heard = presence(&mut f).await;
    assert_eq!(heard["user"]["id"], alice.id.as_str());
    assert_eq!(
        (heard["status"].as_str(), &heard["activities"]),
        (Some("idle"), &game)
    );
    let heard = presence(&mut a).await;
    assert_eq!(heard["user"]["id"], frank.id.as_str());
    assert_eq!(heard["status"], "online");
}

#[actix_web::test]
async fn a_user_on_two_nodes_stays_online_until_their_last_session_ends() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let owner = account(&nodes[2], "owner").await;
    let carol = account(&nodes[2], "carol").await;
    let (guild_id, _) = shared_guild(&nodes[2], &owner, &[&carol]).await;
    let (mut peer, _) = connect(&nodes[2], &owner.token).await;

    let (mut first, _) = connect(&nodes[0], &carol.token).await;
    let online = presence(&mut peer).await;
    assert_eq!(
        (online["user"]["id"].as_str(), online["status"].as_str()),
        (Some(carol.id.as_str()), Some("online"))
    );
    assert_eq!(online["guild_id"], guild_id.as_str());
    first.send(status("idle", json!([]))).await;
    assert_eq!(presence(&mut peer).await["status"], "idle");

    // Idle on one node, online on the other: online.
    let (mut second, _) = connect(&nodes[1], &carol.token).await;
    let both = presence(&mut peer).await;
    assert_eq!(both["user"]["id"], carol.id.as_str());
    assert_eq!(both["status"], "online", "idle + online is online");
    assert_eq!(both["client_status"], json!({ "web": "online" }));
    let game = json!([{ "name": "Chess", "type": 0 }]);
    second.send(status("online", game.clone())).await;
    assert_eq!(presence(&mut peer).await["activities"], game);

    // The second node's session ends: the first one's idle is all there is, not offline.
    leave(second).await;
    let idle = presence(&mut peer).await;
    assert_eq!(idle["user"]["id"], carol.id.as_str());
    assert_eq!(idle["status"], "idle");
    assert_eq!(idle["activities"], json!([]));

    leave(first).await;
    let offline = presence(&mut peer).await;
    assert_eq!(offline["user"]["id"], carol.id.as_str());
    assert_eq!(offline["status"], "offline");
}

#[actix_web::test]
async fn ready_on_a_third_node_lists_a_friend_online_only_on_the_first() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let alice = account(&nodes[0], "alice").await;
    let dave = account(&nodes[0], "dave").await;
    let erin = account(&nodes[0], "erin").await;
    befriend(&nodes[0], &alice, &dave).await;
    befriend(&nodes[0], &erin, &dave).await;
    let (mut a, _) = connect(&nodes[0], &alice.token).await;
    // Erin came and went: nothing of hers is left.
    let (e, _) = connect(&nodes[1], &erin.token).await;
    leave(e).await;

    // Alice's op 3 is recorded (a friend on another node hears it) before READY asks.
    let (mut watcher, _) = connect(&nodes[1], &dave.token).await;
    let game = json!([{ "name": "Tetris", "type": 0 }]);
    a.send(status("dnd", game.clone())).await;
    while presence(&mut watcher).await["status"] != "dnd" {}
    leave(watcher).await;

    let (_d, ready) = connect(&nodes[2], &dave.token).await;
    let presences = ready["presences"].as_array().unwrap();
    assert_eq!(presences.len(), 1, "only Alice is online: {ready}");
    let listed = &presences[0];
    assert_eq!(listed["user"]["id"], alice.id.as_str());
    assert_eq!(listed["status"], "dnd");
    assert_eq!(listed["activities"], game);
}

#[actix_web::test]
async fn member_lists_show_members_online_on_other_nodes() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let owner = account(&nodes[0], "owner").await;
    let alice = account(&nodes[0], "alice").await;
    let bob = account(&nodes[0], "bob").await;
    let (guild_id, channel) = shared_guild(&nodes[0], &owner, &[&alice, &bob]).await;
    let (mut a, _) = connect(&nodes[1], &alice.token).await;
    let (mut o, _) = connect(&nodes[0], &owner.token).await;
    o.send(status("idle", json!([]))).await;
    while presence(&mut a).await["status"] != "idle" {}

    // The list is built on Alice's node, where the owner has no session.
    let mut sidebar = watch(&mut a, &guild_id, &channel).await;
    assert_eq!(
        sidebar.summary(),
        [
            "online:2",
            "alice:online",
            "owner:idle",
            "offline:1",
            "bob:offline"
        ]
    );

    // Bob comes online on the other node, then leaves: the list follows.
    let (b, _) = connect(&nodes[0], &bob.token).await;
    assert_eq!(next_update(&mut a, &mut sidebar).await, (3, 3));
    assert!(sidebar.summary().contains(&"bob:online".to_owned()));
    leave(b).await;
    assert_eq!(next_update(&mut a, &mut sidebar).await, (3, 2));
    assert!(sidebar.summary().contains(&"bob:offline".to_owned()));
}

#[actix_web::test]
async fn two_nodes_changing_at_once_leave_the_latest_presence_shown() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let carol = account(&nodes[0], "carol").await;
    let peer = account(&nodes[0], "peer").await;
    befriend(&nodes[0], &carol, &peer).await;
    let (mut p, _) = connect(&nodes[2], &peer.token).await;
    let (mut first, _) = connect(&nodes[0], &carol.token).await;
    let (mut second, _) = connect(&nodes[1], &carol.token).await;

    for round in 0..10 {
        let game = json!([{ "name": format!("round {round}"), "type": 0 }]);
        first.send(status("dnd", game.clone())).await;
        second.send(status("online", game)).await;
    }
    let last = json!([{ "name": "last", "type": 0 }]);
    first.send(status("invisible", json!([]))).await;
    second.send(status("idle", last.clone())).await;

    // Whatever order the changes crossed in, the last one heard is the last one made.
    let mut shown = presence(&mut p).await;
    let quiet = std::time::Duration::from_secs(1);
    while let Ok(later) = tokio::time::timeout(quiet, presence(&mut p)).await {
        shown = later;
    }
    assert_eq!(
        (shown["status"].as_str(), &shown["activities"]),
        (Some("idle"), &last)
    );
    let (_again, ready) = connect(&nodes[2], &peer.token).await;
    let listed = &ready["presences"][0];
    assert_eq!(
        (listed["status"].as_str(), &listed["activities"]),
        (Some("idle"), &last)
    );
}

#[actix_web::test]
async fn a_renamed_user_is_shown_renamed_to_friends_on_other_nodes() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let alice = account(&nodes[0], "alice").await;
    let bob = account(&nodes[0], "bob").await;
    befriend(&nodes[0], &alice, &bob).await;
    let (_a, _) = connect(&nodes[0], &alice.token).await;
    let (mut b, _) = connect(&nodes[1], &bob.token).await;

    // Through the third node, where neither has a session.
    let renamed = crate::common::http::patch(
        &nodes[2],
        "/api/v9/users/@me",
        &alice.token,
        json!({ "global_name": "Alice Renamed" }),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    let heard = loop {
        let heard = presence(&mut b).await;
        if heard["user"]["global_name"] == "Alice Renamed" {
            break heard;
        }
    };
    assert_eq!(heard["user"]["id"], alice.id.as_str());
    assert_eq!(
        heard["status"], "online",
        "the presence of her session on the first node"
    );
}
