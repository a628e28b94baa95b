//! Cluster mode, DM calls (docs/cluster.md, "Calls"): a call has one owner node whichever
//! nodes its participants' sessions are on. Recipients on any node hear its CALL_* and
//! VOICE_STATE_UPDATE dispatches once, every participant's VOICE_SERVER_UPDATE names the one
//! room, ringing works from any node, and when the owner's node dies a node whose session is
//! in the call takes it over and tells the others who left with the dead node.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde_json::{json, Value};
use spacebar::cluster::{keys, lease};

use crate::common::gateway::{Event, Gateway};
use crate::common::http::{account, post, Account};
use crate::common::process::{ServerProcess, QUICK_FAILOVER};
use crate::common::redis::Redis;
use crate::common::{Server, TestServer};
use crate::voice_signalling::{connect, decline};

const V9: &str = "/api/v9";
/// How long a change may take to cross nodes, or a dead owner to be replaced (a loaded CI box).
const PATIENCE: Duration = Duration::from_secs(45);

/// Op 4 in a DM call (`None`: hang up).
fn call(channel_id: Option<&str>) -> Value {
    json!({ "op": 4, "d": { "guild_id": null, "channel_id": channel_id, "self_mute": false, "self_deaf": false } })
}

/// Every dispatch up to and including the next `event` for which `done` holds, within
/// [`PATIENCE`]; panics if the gateway closes first.
async fn until(gateway: &mut Gateway, event: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match gateway.next_within(left).await {
            Event::Payload(payload) if payload["op"] == 0 => {
                let found = payload["t"] == event && done(&payload["d"]);
                seen.push(payload);
                if found {
                    return seen;
                }
            }
            Event::Payload(_) => {}
            Event::Closed(code) => panic!("the gateway closed ({code:?}) before {event}"),
        }
    }
}

/// How many of `seen` are `event`.
fn count(seen: &[Value], event: &str) -> usize {
    seen.iter().filter(|p| p["t"] == event).count()
}

/// The user ids in a call's `voice_states`, sorted.
fn inside(call: &Value) -> Vec<String> {
    let mut users: Vec<String> = call["voice_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_id"].as_str().unwrap().to_owned())
        .collect();
    users.sort_unstable();
    users
}

fn sorted(accounts: &[&Account]) -> Vec<String> {
    let mut ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    ids.sort_unstable();
    ids
}

/// `alice`'s DM with `bob`.
async fn dm(server: &impl Server, alice: &Account, bob: &Account) -> String {
    let dm = post(
        server,
        &format!("{V9}/users/@me/channels"),
        Some(&alice.token),
        json!({ "recipient_id": bob.id }),
    )
    .await;
    assert_eq!(dm.status, 200, "{:?}", dm.body);
    dm.body["id"].as_str().unwrap().to_owned()
}

async fn redis_of(redis: &Redis) -> ConnectionManager {
    let client = ::redis::Client::open(redis.url()).unwrap();
    ConnectionManager::new(client).await.unwrap()
}

#[actix_web::test]
async fn a_dm_call_over_two_nodes_is_one_call_heard_once_on_both() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let mut conn = redis_of(&redis).await;
    let alice = account(&nodes[0], "alice").await;
    let bob = account(&nodes[1], "bob").await;
    let dm = dm(&nodes[0], &alice, &bob).await;
    let (mut a, _) = connect(&nodes[0], &alice.token).await;
    let (mut b, _) = connect(&nodes[1], &bob.token).await;
    let is_dm = |d: &Value| d["channel_id"] == dm.as_str();

    // Alice (node 0) calls: Bob (node 1) is rung, once; Alice's node owns the call.
    a.send(call(Some(&dm))).await;
    let alice_in = |d: &Value| d["user_id"] == alice.id.as_str() && d["channel_id"] == dm.as_str();
    let seen = until(&mut b, "VOICE_STATE_UPDATE", alice_in).await;
    assert_eq!(count(&seen, "CALL_CREATE"), 1, "{seen:?}");
    let created = seen.iter().find(|p| p["t"] == "CALL_CREATE").unwrap();
    assert_eq!(created["d"]["channel_id"], dm.as_str());
    assert_eq!(created["d"]["ringing"], json!([bob.id]));
    let alice_server = until(&mut a, "VOICE_SERVER_UPDATE", is_dm).await;
    let alice_server = alice_server.last().unwrap()["d"].clone();
    assert!(alice_server["token"].is_string());
    let channel_id: i64 = dm.parse().unwrap();
    let owner = lease::holder(&mut conn, &keys::own_call(channel_id))
        .await
        .unwrap();
    let node0 = nodes[0]
        .state()
        .cluster
        .as_ref()
        .unwrap()
        .node_id()
        .to_owned();
    assert_eq!(owner.map(|(node, _)| node), Some(node0));

    // Bob declines from node 1: the owner on node 0 stops ringing him, both hear it.
    decline(&nodes[1], &bob, &dm).await;
    for gateway in [&mut a, &mut b] {
        let seen = until(gateway, "CALL_UPDATE", is_dm).await;
        assert_eq!(seen.last().unwrap()["d"]["ringing"], json!([]));
    }

    // Bob joins from node 1 anyway: one call with both, on both sides, and both
    // VOICE_SERVER_UPDATEs name the same room's endpoint.
    b.send(call(Some(&dm))).await;
    let both = sorted(&[&alice, &bob]);
    for gateway in [&mut a, &mut b] {
        let seen = until(gateway, "CALL_UPDATE", |d| inside(d) == both).await;
        assert_eq!(count(&seen, "CALL_CREATE"), 0, "a second call: {seen:?}");
    }
    let bob_server = until(&mut b, "VOICE_SERVER_UPDATE", is_dm).await;
    let bob_server = bob_server.last().unwrap()["d"].clone();
    assert_eq!(bob_server["endpoint"], alice_server["endpoint"]);
    assert_ne!(bob_server["token"], alice_server["token"]);

    // Alice hangs up, then Bob: the call ends on both sides, and so do its lease and record.
    a.send(call(None)).await;
    for gateway in [&mut a, &mut b] {
        let seen = until(gateway, "CALL_UPDATE", |d| inside(d) == [bob.id.clone()]).await;
        assert_eq!(count(&seen, "CALL_DELETE"), 0, "{seen:?}");
    }
    b.send(call(None)).await;
    for gateway in [&mut a, &mut b] {
        let seen = until(gateway, "CALL_DELETE", is_dm).await;
        assert_eq!(count(&seen, "CALL_DELETE"), 1);
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let held = lease::holder(&mut conn, &keys::own_call(channel_id))
            .await
            .unwrap();
        let stored: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(keys::call(channel_id))
            .query_async(&mut conn)
            .await
            .unwrap();
        if held.is_none() && stored.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ended call's lease or record stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_call_survives_its_owners_node_and_hears_its_participant_leave() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(2, &redis, &QUICK_FAILOVER).await;
    let mut conn = redis_of(&redis).await;
    let alice = account(&nodes[0], "alice").await;
    let bob = account(&nodes[1], "bob").await;
    let dm = dm(&nodes[0], &alice, &bob).await;
    let channel_id: i64 = dm.parse().unwrap();
    let (mut a, _) = connect(&nodes[0], &alice.token).await;
    let (mut b, _) = connect(&nodes[1], &bob.token).await;

    // Alice on node 0 starts the call (node 0 owns it), Bob on node 1 joins.
    a.send(call(Some(&dm))).await;
    until(&mut b, "CALL_CREATE", |d| d["channel_id"] == dm.as_str()).await;
    b.send(call(Some(&dm))).await;
    let both = sorted(&[&alice, &bob]);
    until(&mut b, "CALL_UPDATE", |d| inside(d) == both).await;
    let key = keys::own_call(channel_id);
    let (owner, epoch) = lease::holder(&mut conn, &key).await.unwrap().unwrap();
    assert_eq!(owner, nodes[0].node_id());

    // Node 0 dies with Alice's session and the call's owner: Bob still has the call, under a
    // new owner, and hears Alice leave it.
    nodes[0].kill9();
    let killed = Instant::now();
    let seen = until(&mut b, "CALL_UPDATE", |d| inside(d) == [bob.id.clone()]).await;
    assert_eq!(count(&seen, "CALL_DELETE"), 0, "{seen:?}");
    let left = seen.iter().find(|p| {
        p["t"] == "VOICE_STATE_UPDATE"
            && p["d"]["user_id"] == alice.id.as_str()
            && p["d"]["channel_id"].is_null()
    });
    assert!(left.is_some(), "Bob did not hear Alice leave: {seen:?}");
    let (new_owner, new_epoch) = lease::holder(&mut conn, &key).await.unwrap().unwrap();
    assert_eq!(new_owner, nodes[1].node_id());
    assert!(new_epoch > epoch, "{new_epoch} after {epoch}");
    eprintln!(
        "the call was taken over {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );

    // The new owner carries on: Bob hangs up and the call ends.
    b.send(call(None)).await;
    until(&mut b, "CALL_DELETE", |d| d["channel_id"] == dm.as_str()).await;
}
