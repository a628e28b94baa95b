//! Cluster mode, one instance of several nodes: one signing secret, snowflake worker numbers no
//! two live nodes share, a registry of the live nodes, readiness that needs Redis, and the URL
//! a session should come back to.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::guild::guild;
use crate::common::http::{account, get, post, Account};
use crate::common::process::ServerProcess;
use crate::common::redis::Redis;
use crate::common::TestServer;

#[actix_web::test]
async fn a_cluster_node_refuses_to_start_without_a_shared_jwt_secret() {
    let redis = Redis::start();
    let (status, output) = ServerProcess::run_to_exit(&[
        ("cluster.redis_url", &redis.url()),
        ("security.jwt_secret", ""),
    ])
    .await;
    assert!(!status.success(), "{output}");
    assert!(output.contains("security.jwt_secret"), "{output}");
    assert!(output.contains("cluster.redis_url"), "{output}");
}

#[actix_web::test]
async fn a_node_refuses_to_start_when_every_worker_number_is_held() {
    let redis = Redis::start();
    let mut conn = ::redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut held = ::redis::pipe();
    for n in 0..spacebar::snowflake::NODES {
        held.set(spacebar::cluster::keys::worker(n), "elsewhere")
            .ignore();
    }
    held.query::<()>(&mut conn).unwrap();
    let (status, output) = ServerProcess::run_to_exit(&[("cluster.redis_url", &redis.url())]).await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("every snowflake worker number is leased"),
        "{output}"
    );
}

/// The worker and process bits of a snowflake: what tells its maker apart.
fn maker(id: &Value) -> i64 {
    (id.as_str().unwrap().parse::<i64>().unwrap() >> 12) & 1023
}

#[actix_web::test]
async fn nodes_creating_at_once_never_make_the_same_id() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let g = guild(&nodes[0]).await;
    let path = format!("/api/v9/channels/{}/messages", g.channel);
    let sends = nodes.iter().enumerate().flat_map(|(n, node)| {
        let (path, token) = (&path, &g.owner.token);
        (0..50).map(move |i| async move {
            let body = json!({ "content": format!("node {n} message {i}") });
            let sent = post(node, path, Some(token), body).await;
            assert_eq!(sent.status, 200, "{:?}", sent.body);
            (n, sent.body["id"].clone())
        })
    });
    let sent = join_all(sends).await;
    let ids: HashSet<&str> = sent.iter().map(|(_, id)| id.as_str().unwrap()).collect();
    assert_eq!(ids.len(), 150, "every id distinct");
    // Each node makes its ids with bits of its own (in-process nodes share a process id, so
    // without a leased number they would share them all).
    let makers: Vec<HashSet<i64>> = (0..3)
        .map(|n| {
            let of_node = sent.iter().filter(|(node, _)| *node == n);
            of_node.map(|(_, id)| maker(id)).collect()
        })
        .collect();
    for bits in &makers {
        assert_eq!(bits.len(), 1, "{makers:?}");
    }
    let all: HashSet<i64> = makers.iter().flatten().copied().collect();
    assert_eq!(all.len(), 3, "{makers:?}");
}

/// An account with the OPERATOR right on `node`'s database.
pub async fn operator(node: &TestServer) -> Account {
    let root = account(node, "root").await;
    let granted = node
        .sql(&format!(
            "UPDATE users SET rights = rights | 1 WHERE id = {}",
            root.id
        ))
        .await;
    assert_eq!(granted, 1);
    root
}

/// Asks `node` for the live nodes until there are `count` (they beat every 2 s).
async fn live_nodes(node: &TestServer, token: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = get(node, "/_spacebar/admin/nodes", Some(token)).await;
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        let nodes = listed.body.as_array().unwrap().clone();
        if nodes.len() == count || Instant::now() > deadline {
            assert_eq!(nodes.len(), count, "{nodes:?}");
            return nodes;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_registry_lists_the_live_nodes_and_a_stopped_one_leaves_it() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let root = operator(&nodes[0]).await;
    let listed = live_nodes(&nodes[1], &root.token, 3).await;
    let addresses: HashSet<String> = listed
        .iter()
        .map(|node| node["http_address"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = nodes.iter().map(|node| node.addr.to_string()).collect();
    assert_eq!(addresses, expected);
    for node in &listed {
        assert_eq!(node["draining"], false, "{node}");
        assert!(
            node["started_at"].as_str().unwrap().ends_with('Z'),
            "{node}"
        );
    }

    nodes[2].stop_gracefully().await;
    let listed = live_nodes(&nodes[0], &root.token, 2).await;
    assert!(listed
        .iter()
        .all(|node| node["http_address"] != nodes[2].addr.to_string()));

    let member = account(&nodes[0], "member").await;
    let refused = get(&nodes[0], "/_spacebar/admin/nodes", Some(&member.token)).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
}

#[actix_web::test]
async fn a_single_process_lists_itself() {
    let server = TestServer::start().await;
    let root = operator(&server).await;
    let listed = get(&server, "/_spacebar/admin/nodes", Some(&root.token)).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let nodes = listed.body.as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["http_address"], server.addr.to_string());
    assert_eq!(nodes[0]["draining"], false);
}

#[actix_web::test]
async fn a_node_is_not_ready_while_redis_does_not_answer() {
    let redis = Redis::start();
    let node = TestServer::with(&[("cluster.redis_url", &redis.url())]).await;
    assert_eq!(get(&node, "/readyz", None).await.status, 200);
    redis.pause();
    let paused = get(&node, "/readyz", None).await;
    redis.resume();
    assert_eq!(paused.status, 503, "{:?}", paused.body);
    assert_eq!(paused.body["status"], "redis unreachable");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&node, "/readyz", None).await.status != 200 {
        assert!(Instant::now() < deadline, "ready again once Redis answers");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_session_is_sent_back_to_the_advertised_node() {
    let redis = Redis::start();
    let advertised = "wss://node-a.chat.example";
    let node = TestServer::with(&[
        ("cluster.redis_url", &redis.url()),
        ("cluster.advertise_url", advertised),
    ])
    .await;
    let gateway = get(&node, "/api/v9/gateway", None).await;
    assert_eq!(gateway.body["url"], advertised, "{:?}", gateway.body);
    let user = account(&node, "traveller").await;
    let mut session = Gateway::connect(&node, "v=10&encoding=json").await;
    let ready = session.identify(&user.token).await;
    assert_eq!(ready["d"]["resume_gateway_url"], advertised);
}
