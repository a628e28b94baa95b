//! Rate limits in cluster mode: two nodes on one Redis count a client's requests in the same
//! buckets, so spreading requests over nodes gains nothing; with Redis hanging each node limits
//! alone (neither refusing everything nor letting everything through), and once Redis answers
//! again the buckets are shared again.

use std::time::Duration;

use serde_json::json;

use crate::common::guild::guild;
use crate::common::http::post;
use crate::common::redis::Redis;
use crate::common::TestServer;
use crate::rate_limits::{send, Answer};

/// Two nodes with the rate limits on: 5 messages per channel per 5 s.
async fn nodes(redis: &Redis) -> Vec<TestServer> {
    let limits = [
        ("rate_limits.enabled", "true"),
        ("rate_limits.message_create.limit", "5"),
        ("rate_limits.message_create.window_ms", "5000"),
    ];
    TestServer::cluster_with(2, redis, &limits).await
}

async fn say(node: &TestServer, channel: &str, token: &str) -> Answer {
    let path = format!("/api/v9/channels/{channel}/messages");
    send(
        node,
        "POST",
        &path,
        Some(token),
        Some(json!({ "content": "hi" })),
    )
    .await
}

/// Discord's 429 for a route's bucket.
fn assert_refused(refused: &Answer, bucket: &str) {
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(refused.body["message"], "You are being rate limited.");
    assert_eq!(refused.body["global"], false);
    let retry_after = refused.body["retry_after"].as_f64().unwrap();
    assert!(retry_after > 0.0 && retry_after <= 5.0, "{retry_after}");
    assert!(refused.number("retry-after") >= retry_after);
    assert_eq!(refused.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(refused.header("x-ratelimit-bucket"), Some(bucket));
    assert_eq!(refused.number("x-ratelimit-remaining"), 0.0);
}

#[actix_web::test]
async fn a_client_alternating_between_nodes_meets_one_limit() {
    let redis = Redis::start();
    let nodes = nodes(&redis).await;
    let g = guild(&nodes[0]).await;

    // A, B, A, B, A: one bucket counting down across both nodes.
    let mut bucket = None;
    for (n, remaining) in [4, 3, 2, 1, 0].into_iter().enumerate() {
        let sent = say(&nodes[n % 2], &g.channel, &g.owner.token).await;
        assert_eq!(sent.status, 200, "{:?}", sent.body);
        assert_eq!(sent.number("x-ratelimit-limit"), 5.0);
        assert_eq!(sent.number("x-ratelimit-remaining"), f64::from(remaining));
        let reset_after = sent.number("x-ratelimit-reset-after");
        assert!(reset_after > 0.0 && reset_after <= 5.0, "{reset_after}");
        let id = sent.header("x-ratelimit-bucket").unwrap().to_owned();
        assert_eq!(bucket.get_or_insert(id.clone()), &id, "one bucket");
    }
    let bucket = bucket.unwrap();
    // The sixth, through B (which saw only two), is refused; so is one through A.
    for node in [&nodes[1], &nodes[0]] {
        assert_refused(&say(node, &g.channel, &g.owner.token).await, &bucket);
    }
    assert_eq!(
        nodes[0]
            .count(&format!("messages WHERE channel_id = {}", g.channel))
            .await,
        5,
        "refused messages were not stored"
    );
}

#[actix_web::test]
async fn with_redis_hanging_each_node_limits_alone_until_it_answers() {
    let redis = Redis::start();
    let nodes = nodes(&redis).await;
    let g = guild(&nodes[0]).await;

    redis.pause();
    // Each node counts alone: five through each, then each refuses.
    for node in &nodes {
        for n in 0..5 {
            let sent = say(node, &g.channel, &g.owner.token).await;
            assert_eq!(sent.status, 200, "message {n}: {:?}", sent.body);
            assert_eq!(sent.number("x-ratelimit-remaining"), f64::from(4 - n));
        }
        let refused = say(node, &g.channel, &g.owner.token).await;
        let bucket = refused.header("x-ratelimit-bucket").unwrap().to_owned();
        assert_refused(&refused, &bucket);
    }

    redis.resume();
    // The nodes ask Redis again within a second. A new channel: a new bucket, shared again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let created = post(
        &nodes[0],
        &format!("/api/v9/guilds/{}/channels", g.id),
        Some(&g.owner.token),
        json!({ "name": "after" }),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let channel = created.body["id"].as_str().unwrap().to_owned();
    for (n, remaining) in [4, 3, 2, 1, 0].into_iter().enumerate() {
        let sent = say(&nodes[n % 2], &channel, &g.owner.token).await;
        assert_eq!(sent.status, 200, "{:?}", sent.body);
        assert_eq!(sent.number("x-ratelimit-remaining"), f64::from(remaining));
    }
    let refused = say(&nodes[1], &channel, &g.owner.token).await;
    let bucket = refused.header("x-ratelimit-bucket").unwrap().to_owned();
    assert_refused(&refused, &bucket);
}
