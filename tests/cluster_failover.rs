//! Cluster mode, losing a node: nodes here are `spacebar serve` processes, killed (SIGKILL) or
//! drained (SIGTERM) while clients use them. A killed node's sessions start over elsewhere; a
//! drained node's sessions resume elsewhere without missing anything; a RESUME may reach any node.

use std::time::Duration;

use serde_json::json;

use crate::common::gateway::Gateway;
use crate::common::http::account;
use crate::common::process::ServerProcess;
use crate::common::redis::Redis;

/// Waits for op 7 RECONNECT on `gateway`, skipping dispatches.
async fn told_to_reconnect(gateway: &mut Gateway) {
    loop {
        let payload = gateway.payload().await;
        if payload["op"] == 7 {
            return;
        }
    }
}

#[actix_web::test]
async fn a_killed_nodes_sessions_cannot_resume_elsewhere_and_identify_again() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(2, &redis, &[]).await;
    let user = account(&nodes[0], "user").await;
    let mut gateway = Gateway::connect(&nodes[0], "v=10&encoding=json").await;
    let ready = gateway.identify(&user.token).await;
    let session_id = ready["d"]["session_id"].as_str().unwrap().to_owned();

    nodes[0].kill9();
    // Its buffer died with it: nothing can be replayed, the client must start over.
    let mut again = Gateway::connect(&nodes[1], "v=10&encoding=json").await;
    again
        .send(json!({ "op": 6, "d": { "token": user.token, "session_id": session_id, "seq": 1 } }))
        .await;
    let refused = again.payload().await;
    assert_eq!(refused["op"], 9, "{refused}");
    assert_eq!(refused["d"], false);
    let mut fresh = Gateway::connect(&nodes[1], "v=10&encoding=json").await;
    fresh.identify(&user.token).await;
}

#[actix_web::test]
async fn a_terminated_node_tells_its_clients_to_reconnect_and_exits() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(2, &redis, &[]).await;
    assert_eq!(nodes[1].node_id(), "node1");
    let user = account(&nodes[0], "user").await;
    let mut gateway = Gateway::connect(&nodes[0], "v=10&encoding=json").await;
    gateway.identify(&user.token).await;

    nodes[0].terminate();
    told_to_reconnect(&mut gateway).await;
    let status = nodes[0].wait_exit(Duration::from_secs(60)).await;
    assert!(status.is_some_and(|status| status.success()), "{status:?}");
}
