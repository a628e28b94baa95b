//! A client this project did not write, in cluster mode: a discord.py bot connected to one node
//! hears what people post through another (the bot script and its venv are discord_py.rs's).

use serde_json::json;

use crate::common::guild::guild;
use crate::common::http::post;
use crate::common::redis::Redis;
use crate::common::TestServer;
use crate::discord_py::{bot_in_guild, discord_py, Bot};

#[actix_web::test]
async fn a_discord_py_bot_on_one_node_sees_a_message_posted_through_another() {
    let python = discord_py();
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let g = guild(&nodes[0]).await;
    let (app_id, token) = bot_in_guild(&nodes[0], &g.owner.token, &g.id, "ClusterBot").await;
    let mut bot = Bot::start(&python, &nodes[0], &token);
    let ready = bot.event("ready").await;
    assert_eq!(ready["user_id"], app_id);

    let sent = post(
        &nodes[2],
        &format!("/api/v9/channels/{}/messages", g.channel),
        Some(&g.owner.token),
        json!({ "content": "hello, bot on A" }),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let seen = bot.event("message").await;
    assert_eq!(seen["message_id"], sent.body["id"]);
    assert_eq!(seen["channel_id"], g.channel.as_str());
    assert_eq!(seen["author_id"], g.owner.id.as_str());
    assert_eq!(seen["content"], "hello, bot on A");
}
