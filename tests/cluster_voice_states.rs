//! Cluster mode, guild voice states through the guild's owner (docs/cluster.md, "Ownership"):
//! whichever node a member's session is on, the owner decides their joins, moves and leaves,
//! every node's sessions hear them and every node reads them; when the owner dies a survivor
//! takes its states over and the dead node's members leave voice.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use spacebar::cluster::{keys, lease};

use crate::common::gateway::{Event, Gateway};
use crate::common::http::{account, get, patch, Account};
use crate::common::process::{ServerProcess, QUICK_FAILOVER};
use crate::common::redis::Redis;
use crate::common::{Server, TestServer};
use crate::voice_signalling::{
    channel, connect, op4, ready_lists_alone_in_voice, state_of, voice_guild,
};

const JSON: &str = "v=9&encoding=json";
const V9: &str = "/api/v9";

/// How long anything here may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// `user`'s voice state in the guild as `node` reads it (`Value::Null`: not in voice).
async fn read(node: &impl Server, guild: &str, user: &Account, asker: &Account) -> Value {
    let path = format!("{V9}/guilds/{guild}/voice-states/{}", user.id);
    let read = get(node, &path, Some(&asker.token)).await;
    match read.status.as_u16() {
        200 => read.body,
        404 => Value::Null,
        status => panic!("{status}: {:?}", read.body),
    }
}

/// Waits until every node reads `user`'s channel as `channel` (`None`: not in voice).
async fn every_node_reads<'a, S: Server + 'a>(
    nodes: impl IntoIterator<Item = &'a S>,
    guild: &str,
    user: &Account,
    asker: &Account,
    channel: Option<&str>,
) {
    let deadline = Instant::now() + PATIENCE;
    for node in nodes {
        loop {
            let state = read(node, guild, user, asker).await;
            if state["channel_id"].as_str() == channel {
                break;
            }
            assert!(Instant::now() < deadline, "{} reads {state}", node.url(""));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits for a VOICE_STATE_UPDATE putting `user` in `channel` (`None`: out of voice), skipping
/// earlier ones.
async fn hears(gateway: &mut Gateway, user: &Account, channel: Option<&str>) {
    while state_of(gateway, user).await["channel_id"].as_str() != channel {}
}

/// `moderator` changes `member` (its URL) through `node`.
async fn moderate(node: &TestServer, member: &str, moderator: &Account, body: Value) {
    let changed = patch(node, member, &moderator.token, body).await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
}

/// The next VOICE_SERVER_UPDATE's `d`.
async fn voice_server_update(gateway: &mut Gateway) -> Value {
    gateway.dispatch("VOICE_SERVER_UPDATE").await["d"].clone()
}

/// The node whose voice endpoint `endpoint` is.
fn node_of(nodes: &[impl Server], endpoint: &str) -> usize {
    nodes
        .iter()
        .position(|node| node.url("/voice") == format!("http://{endpoint}"))
        .unwrap_or_else(|| panic!("{endpoint} is no node's voice endpoint"))
}

/// Three in-process nodes (and their Redis, to keep), Alice, Bob and Carol registered on one
/// each, and a guild of Alice's the others joined, with its voice channel.
async fn three_nodes() -> (Redis, Vec<TestServer>, [Account; 3], String, String) {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let alice = account(&nodes[0], "alice").await;
    let bob = account(&nodes[1], "bob").await;
    let carol = account(&nodes[2], "carol").await;
    let (guild, voice) = voice_guild(&nodes[0], &alice, &[&bob, &carol]).await;
    (redis, nodes, [alice, bob, carol], guild, voice)
}

#[actix_web::test]
async fn every_node_hears_and_reads_what_the_owner_decides() {
    let (_redis, nodes, [alice, bob, carol], guild, voice) = three_nodes().await;
    let (mut a, alice_session) = connect(&nodes[0], &alice.token).await;
    let (mut b, _) = connect(&nodes[1], &bob.token).await;

    // Alice (node 0) joins: Bob (node 1) hears it, Alice gets her token.
    a.send(op4(&guild, Some(&voice), false)).await;
    let heard = state_of(&mut b, &alice).await;
    assert_eq!(heard["channel_id"], voice.as_str(), "{heard}");
    assert_eq!(heard["session_id"], alice_session.as_str());
    let server = voice_server_update(&mut a).await;
    assert!(server["token"].is_string(), "{server}");

    // A new session of Carol on node 2 finds Alice in voice in READY's guild.
    let mut c = Gateway::connect(&nodes[2], JSON).await;
    let ready = c.identify(&carol.token).await;
    ready_lists_alone_in_voice(&ready, &guild, &alice, &voice);
    every_node_reads(&nodes[..], &guild, &alice, &carol, Some(&voice)).await;

    // Go Live through the owner: Bob (node 1) joins and watches Alice's stream, each hearing
    // their own stream events on their own node.
    b.send(op4(&guild, Some(&voice), false)).await;
    voice_server_update(&mut b).await;
    let go_live = json!({ "op": 18, "d": { "type": "guild", "guild_id": guild, "channel_id": voice, "preferred_region": null } });
    a.send(go_live).await;
    let live = a
        .dispatches(&["STREAM_CREATE", "STREAM_SERVER_UPDATE"])
        .await;
    let key = format!("guild:{guild}:{voice}:{}", alice.id);
    assert_eq!(live[0]["d"]["stream_key"], key.as_str(), "{live:?}");
    assert!(live[1]["d"]["token"].is_string(), "{live:?}");
    while !state_of(&mut b, &alice).await["self_stream"]
        .as_bool()
        .unwrap()
    {}
    b.send(json!({ "op": 20, "d": { "stream_key": key } }))
        .await;
    let watching = b
        .dispatches(&["STREAM_CREATE", "STREAM_SERVER_UPDATE"])
        .await;
    assert!(watching[1]["d"]["token"].is_string(), "{watching:?}");
    let viewers = &a.dispatch("STREAM_UPDATE").await["d"]["viewer_ids"];
    assert_eq!(viewers, &json!([bob.id]));
    a.send(json!({ "op": 19, "d": { "stream_key": key } }))
        .await;
    for gateway in [&mut a, &mut b] {
        assert_eq!(
            gateway.dispatch("STREAM_DELETE").await["d"]["stream_key"],
            key.as_str()
        );
    }

    // Alice leaves: Bob and Carol hear it, and no node reads her in voice any more.
    a.send(op4(&guild, None, false)).await;
    for gateway in [&mut b, &mut c] {
        hears(gateway, &alice, None).await;
    }
    every_node_reads(&nodes[..], &guild, &alice, &carol, None).await;
}

#[actix_web::test]
async fn a_moderator_on_another_node_moves_and_disconnects_and_limits_hold() {
    let (_redis, nodes, [alice, bob, carol], guild, voice) = three_nodes().await;
    let other = channel(&nodes[0], &alice, &guild, 2, json!({})).await;
    let small = channel(&nodes[0], &alice, &guild, 2, json!({ "user_limit": 1 })).await;
    let (mut a, _) = connect(&nodes[0], &alice.token).await;
    let (mut b, bob_session) = connect(&nodes[1], &bob.token).await;
    let (mut c, _) = connect(&nodes[2], &carol.token).await;
    let bob_id: i64 = bob.id.parse().unwrap();

    // Bob (node 1) joins; Alice, the guild's owner, moves him from node 0.
    b.send(op4(&guild, Some(&voice), false)).await;
    voice_server_update(&mut b).await;
    assert_eq!(state_of(&mut a, &bob).await["channel_id"], voice.as_str());
    let member = format!("{V9}/guilds/{guild}/members/{}", bob.id);
    moderate(&nodes[0], &member, &alice, json!({ "channel_id": other })).await;
    // He is placed like a join: a token the new room's node redeems, for the new room.
    let own = b
        .dispatches(&["VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE"])
        .await;
    assert_eq!(own[0]["d"]["channel_id"], other.as_str(), "{own:?}");
    let server = &own[1]["d"];
    let room_node = node_of(&nodes, server["endpoint"].as_str().unwrap());
    let token = server["token"].as_str().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let admission = loop {
        let redeemed = nodes[room_node]
            .admissions()
            .redeem(&guild, bob_id, &bob_session, token);
        if let Some(admission) = redeemed {
            break admission;
        }
        assert!(
            Instant::now() < deadline,
            "the room's node has no admission"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        admission.room,
        spacebar_actors::voice::RoomKey::Guild {
            guild_id: guild.parse().unwrap(),
            channel_id: other.parse().unwrap(),
        }
    );
    for gateway in [&mut a, &mut c] {
        hears(gateway, &bob, Some(&other)).await;
    }
    every_node_reads(&nodes[..], &guild, &bob, &carol, Some(&other)).await;

    // Disconnected from node 2's REST: everyone hears it.
    moderate(&nodes[2], &member, &alice, json!({ "channel_id": null })).await;
    for gateway in [&mut a, &mut b, &mut c] {
        hears(gateway, &bob, None).await;
    }
    every_node_reads(&nodes[..], &guild, &bob, &carol, None).await;

    // The small channel is full with Bob in it: Carol's join from node 2 is refused (her next
    // op 4 is what everyone hears of her), whatever node decides.
    b.send(op4(&guild, Some(&small), false)).await;
    hears(&mut c, &bob, Some(&small)).await;
    c.send(op4(&guild, Some(&small), false)).await;
    c.send(op4(&guild, Some(&voice), false)).await;
    assert_eq!(state_of(&mut a, &carol).await["channel_id"], voice.as_str());
    every_node_reads(&nodes[..], &guild, &carol, &alice, Some(&voice)).await;
}

#[actix_web::test]
async fn when_the_owner_dies_a_survivor_takes_its_voice_states_over() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(3, &redis, &QUICK_FAILOVER).await;
    let mut members = Vec::new();
    for (node, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
        members.push(account(&nodes[node], name).await);
    }
    let (guild, voice) = voice_guild(&nodes[0], &members[0], &[&members[1], &members[2]]).await;
    let mut gateways = Vec::new();
    for (node, member) in members.iter().enumerate() {
        gateways.push(connect(&nodes[node], &member.token).await.0);
    }
    for (gateway, member) in gateways.iter_mut().zip(&members) {
        gateway.send(op4(&guild, Some(&voice), false)).await;
        assert_eq!(
            state_of(gateway, member).await["channel_id"],
            voice.as_str()
        );
    }
    for member in &members {
        every_node_reads(&nodes[..], &guild, member, &members[0], Some(&voice)).await;
    }

    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = ::redis::aio::ConnectionManager::new(client).await.unwrap();
    let key = keys::own_guild(guild.parse().unwrap());
    let (owner, epoch) = lease::holder(&mut conn, &key).await.unwrap().unwrap();
    let dead = nodes.iter().position(|n| n.node_id() == owner).unwrap();
    let killed = Instant::now();
    nodes[dead].kill9();

    // The survivors hear the dead node's member leave voice, within the lease and a few
    // seconds.
    let lapse = Duration::from_millis(3000);
    for at in (0..3).filter(|&at| at != dead) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match gateways[at].next_within(left).await {
                Event::Payload(p) if p["t"] == "VOICE_STATE_UPDATE" => {
                    if p["d"]["user_id"] == members[dead].id.as_str() {
                        assert!(p["d"]["channel_id"].is_null(), "{p}");
                        break;
                    }
                }
                Event::Payload(_) => {}
                Event::Closed(code) => panic!("closed ({code:?})"),
            }
        }
    }
    let took = killed.elapsed();
    println!("the dead node's member left voice {took:?} after it died");
    assert!(took < lapse + Duration::from_secs(8), "{took:?}");

    // A survivor owns the guild now, under a higher epoch, and still lists the others.
    let (new_owner, new_epoch) = lease::holder(&mut conn, &key).await.unwrap().unwrap();
    assert_ne!(new_owner, owner);
    assert!(new_epoch > epoch);
    let survivors: Vec<&ServerProcess> = nodes
        .iter()
        .enumerate()
        .filter(|(at, _)| *at != dead)
        .map(|(_, node)| node)
        .collect();
    let asker = &members[(dead + 1) % 3];
    for (at, member) in members.iter().enumerate() {
        let channel = (at != dead).then_some(voice.as_str());
        every_node_reads(survivors.iter().copied(), &guild, member, asker, channel).await;
    }
}
