//! Cluster mode, voice placement (docs/cluster.md, "Voice placement"): whichever nodes its
//! participants' sessions are on, a voice room is served by exactly one node; when that node
//! dies its participants hear a null endpoint, then a new one, and talk again there. Nodes are
//! `spacebar serve` processes (one is killed); the peers are aiortc clients
//! (`tests/clients/voice_peer.py`).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::gateway::{Event, Gateway};
use crate::common::http::{account, Account};
use crate::common::process::{ServerProcess, QUICK_FAILOVER};
use crate::common::redis::Redis;
use crate::common::{Server, TestServer};
use crate::voice_media::{aiortc, Joined, Peer};
use crate::voice_signalling::{connect, op4, voice_guild};

/// Members joining the channel at once.
const JOINERS: usize = 50;
const NODES: usize = 3;
/// How long a lost room may take to come back: its lease's lapse, a check, a placement.
const PATIENCE: Duration = Duration::from_secs(60);

/// One member's gateway session, on node `node`.
struct Member {
    account: Account,
    node: usize,
    gateway: Gateway,
    session_id: String,
}

impl Member {
    /// `account`'s session on `nodes[node]`.
    async fn connect(nodes: &[impl Server], node: usize, account: Account) -> Self {
        let (gateway, session_id) = connect(&nodes[node], &account.token).await;
        Self {
            account,
            node,
            gateway,
            session_id,
        }
    }
}

/// The next VOICE_SERVER_UPDATE's `d`, skipping other messages, within [`PATIENCE`].
async fn voice_server_update(gateway: &mut Gateway) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match gateway.next_within(left).await {
            Event::Payload(payload) if payload["t"] == "VOICE_SERVER_UPDATE" => {
                return payload["d"].clone()
            }
            Event::Payload(_) => {}
            Event::Closed(code) => {
                panic!("the gateway closed ({code:?}) before VOICE_SERVER_UPDATE")
            }
        }
    }
}

/// The node whose voice endpoint (`host:port/voice`) `endpoint` is.
fn node_of(nodes: &[impl Server], endpoint: &str) -> usize {
    nodes
        .iter()
        .position(|node| node.url("/voice") == format!("http://{endpoint}"))
        .unwrap_or_else(|| panic!("{endpoint} is no node's voice endpoint"))
}

/// What the node registry says each node serves: `voice_rooms` by node id.
async fn voice_rooms(
    redis: &mut redis::aio::ConnectionManager,
    nodes: &[ServerProcess],
) -> Vec<u64> {
    let mut rooms = Vec::new();
    for node in nodes {
        let key = spacebar::cluster::keys::node(node.node_id());
        let served: Option<u64> = redis::cmd("HGET")
            .arg(key)
            .arg("voice_rooms")
            .query_async(redis)
            .await
            .unwrap();
        rooms.push(served.unwrap_or(0));
    }
    rooms
}

/// What `member`'s client connects to the voice gateway with, from VOICE_SERVER_UPDATE's `d`.
fn ticket(member: &Member, update: &Value) -> Joined {
    Joined::from_update(update, &member.account.id, &member.session_id)
}

/// A listener on one node's session and a speaker on another's, both hearing each other
/// through the room at their VOICE_SERVER_UPDATEs' endpoint: the listener decodes audio.
async fn talk(python: &std::path::Path, listener: Joined, speaker: Joined) -> (Peer, Peer) {
    let mut listener = Peer::start(python, &listener, "listen");
    listener.event("ready").await;
    let mut speaker = Peer::start(python, &speaker, "publish");
    speaker.event("ready").await;
    listener.decoded(50, 0).await;
    (listener, speaker)
}

#[actix_web::test]
async fn fifty_joins_over_three_nodes_make_one_room_which_moves_when_its_node_dies() {
    let python = aiortc();
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(
        NODES,
        &redis,
        &[
            QUICK_FAILOVER.as_slice(),
            &[
                ("voice.bind_ip", "127.0.0.1"),
                ("voice.heartbeat_interval_ms", "1000"),
            ],
        ]
        .concat(),
    )
    .await;
    let owner = account(&nodes[0], "owner").await;
    let mut others = Vec::new();
    for i in 1..JOINERS {
        others.push(account(&nodes[i % NODES], &format!("member{i}")).await);
    }
    let invited: Vec<&Account> = others.iter().collect();
    let (guild_id, channel_id) = voice_guild(&nodes[0], &owner, &invited).await;

    let mut members = Vec::new();
    for (i, account) in std::iter::once(owner).chain(others).enumerate() {
        members.push(Member::connect(&nodes, i % NODES, account).await);
    }

    // Every member asks to join at once, through three nodes.
    let updates = join_all(members.iter_mut().map(|member| {
        let join = op4(&guild_id, Some(&channel_id), false);
        async move {
            member.gateway.send(join).await;
            voice_server_update(&mut member.gateway).await
        }
    }))
    .await;
    let endpoint = updates[0]["endpoint"].as_str().unwrap().to_owned();
    for update in &updates {
        assert_eq!(update["endpoint"], endpoint.as_str(), "{updates:?}");
    }
    let room_node = node_of(&nodes, &endpoint);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    let key = spacebar::cluster::keys::own_room(&format!("guild:{guild_id}:{channel_id}"));
    let holder = spacebar::cluster::lease::holder(&mut conn, &key)
        .await
        .unwrap();
    assert_eq!(
        holder.map(|(node, _)| node).as_deref(),
        Some(nodes[room_node].node_id())
    );

    // Two members whose sessions are on the two other nodes talk through the room.
    let listener_at = members
        .iter()
        .position(|m| m.node == (room_node + 1) % NODES)
        .unwrap();
    let speaker_at = members
        .iter()
        .position(|m| m.node == (room_node + 2) % NODES)
        .unwrap();
    let peers = talk(
        &python,
        ticket(&members[listener_at], &updates[listener_at]),
        ticket(&members[speaker_at], &updates[speaker_at]),
    )
    .await;
    // One room in the whole cluster, on that node.
    let deadline = Instant::now() + PATIENCE;
    let mut expected = vec![0; NODES];
    expected[room_node] = 1;
    while voice_rooms(&mut conn, &nodes).await != expected {
        assert!(
            Instant::now() < deadline,
            "rooms by node: {:?}",
            voice_rooms(&mut conn, &nodes).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The room's node dies: every participant elsewhere hears a null endpoint, then the new one.
    let killed = Instant::now();
    nodes[room_node].kill9();
    drop(peers);
    let survivors: Vec<&mut Member> = members.iter_mut().filter(|m| m.node != room_node).collect();
    let moved = join_all(survivors.into_iter().map(|member| async move {
        let gone = voice_server_update(&mut member.gateway).await;
        assert!(gone["endpoint"].is_null(), "{gone}");
        voice_server_update(&mut member.gateway).await
    }))
    .await;
    // The target: within 15 s of a node's death (here the lease is 3 s).
    let took = killed.elapsed();
    println!("every participant had the new endpoint {took:?} after the room's node died");
    assert!(took < Duration::from_secs(15), "{took:?}");
    let new_endpoint = moved[0]["endpoint"].as_str().unwrap().to_owned();
    for update in &moved {
        assert_eq!(update["endpoint"], new_endpoint.as_str(), "{moved:?}");
    }
    assert_ne!(node_of(&nodes, &new_endpoint), room_node);

    // The two reconnect there with their new tokens and talk again.
    let survivor_update = |at: usize| {
        let index = members[..at].iter().filter(|m| m.node != room_node).count();
        moved[index].clone()
    };
    talk(
        &python,
        ticket(&members[listener_at], &survivor_update(listener_at)),
        ticket(&members[speaker_at], &survivor_update(speaker_at)),
    )
    .await;
}

/// IDENTIFY on the voice gateway at `endpoint` with `update`'s token: READY (op 2).
async fn redeem(member: &Member, update: &Value, nodes: &[TestServer]) {
    let node = &nodes[node_of(nodes, update["endpoint"].as_str().unwrap())];
    let mut voice = Gateway::connect_at(node, "/voice", "v=8").await;
    assert_eq!(voice.payload().await["op"], 8);
    voice
        .send(json!({ "op": 0, "d": {
            "server_id": update["guild_id"],
            "user_id": member.account.id,
            "session_id": member.session_id,
            "token": update["token"],
        } }))
        .await;
    let ready = voice.payload().await;
    assert_eq!(ready["op"], 2, "{ready}");
}

#[actix_web::test]
async fn a_draining_node_gives_its_rooms_up_and_their_participants_move_at_once() {
    let redis = Redis::start();
    let nodes = TestServer::cluster_with(
        2,
        &redis,
        &[
            ("cluster.heartbeat_ms", "500"),
            ("cluster.lease_ms", "10000"),
            ("voice.bind_ip", "127.0.0.1"),
        ],
    )
    .await;
    let owner = account(&nodes[0], "owner").await;
    let other = account(&nodes[1], "other").await;
    let (guild_id, channel_id) = voice_guild(&nodes[0], &owner, &[&other]).await;
    let mut members = Vec::new();
    for (node, account) in [(0, owner), (1, other)] {
        members.push(Member::connect(&nodes, node, account).await);
    }
    let mut updates = Vec::new();
    for member in &mut members {
        member
            .gateway
            .send(op4(&guild_id, Some(&channel_id), false))
            .await;
        updates.push(voice_server_update(&mut member.gateway).await);
    }
    assert_eq!(updates[0]["endpoint"], updates[1]["endpoint"]);
    let room_node = node_of(&nodes, updates[0]["endpoint"].as_str().unwrap());
    for (member, update) in members.iter().zip(&updates) {
        redeem(member, update, &nodes).await;
    }

    // The room's node stops gracefully: the participant on the other node is told to wait,
    // then where the room is now, well before the room's lease (10 s) could have lapsed.
    let stopped = Instant::now();
    let survivor = &mut members[1 - room_node];
    let (_, (gone, moved, took)) = futures_util::join!(nodes[room_node].stop_gracefully(), async {
        let gone = voice_server_update(&mut survivor.gateway).await;
        let moved = voice_server_update(&mut survivor.gateway).await;
        (gone, moved, stopped.elapsed())
    });
    assert!(gone["endpoint"].is_null(), "{gone}");
    assert_eq!(
        moved["endpoint"],
        format!("{}/voice", nodes[1 - room_node].addr),
        "{moved}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    redeem(&members[1 - room_node], &moved, &nodes).await;
}
