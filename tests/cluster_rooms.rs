//! Cluster mode, rooms-service rooms (docs/cluster.md, "Rooms"): a room lives on one node.
//! Tokens from any node name that node's `/rooms/ws`; a socket on another node is told where
//! the room is (4014, with its `url`) and closed; the rooms API acting on the live room answers
//! on its node and names it elsewhere (421, 10204). When its node stops, the room is placed
//! anew.

use awc::http::Method;
use serde_json::{json, Value};

use crate::admin::operator;
use crate::common::gateway::{Event, Gateway};
use crate::common::redis::Redis;
use crate::common::{Server, TestServer};
use crate::rooms_api::{api, assert_error, create_room, make_key, next_of, Key};

/// A server known by the URL a token named (`ws://host:port/rooms/ws`).
struct Named(String);

impl Server for Named {
    fn url(&self, path: &str) -> String {
        let base = self.0.trim_end_matches("/rooms/ws");
        format!("{}{path}", base.replacen("ws://", "http://", 1))
    }
}

/// A token for `identity` in `room`, asked of `node`: the token and the socket it names.
async fn token(node: &TestServer, key: &Key, room: &str, identity: &str) -> (String, String) {
    let body = json!({ "identity": identity, "name": identity, "room": room });
    let issued = api(node, Method::POST, "/token", key, Some(body)).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let field = |name: &str| issued.body[name].as_str().unwrap().to_owned();
    (field("token"), field("url"))
}

/// Joins over the socket at `server`; the socket and its first answer (`joined`, or the
/// refusal).
async fn join(server: &impl Server, token: &str) -> (Gateway, Value) {
    let mut socket = Gateway::connect_at(server, "/rooms/ws", &format!("token={token}")).await;
    socket.send(json!({ "type": "join" })).await;
    let answer = next_of(&mut socket, "joined").await;
    (socket, answer)
}

#[actix_web::test]
async fn a_room_lives_on_one_node_and_every_node_sends_joins_there() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let root = operator(&nodes[0]).await;
    let key = make_key(&nodes[0], &root, None).await;
    create_room(&nodes[1], &key, json!({ "id": "shared" })).await;

    // Tokens from either node name the same node's socket.
    let (ada, url) = token(&nodes[0], &key, "shared", "ada").await;
    let (bob, bob_url) = token(&nodes[1], &key, "shared", "bob").await;
    assert_eq!(url, bob_url);
    let sockets: Vec<String> = nodes
        .iter()
        .map(|node| node.url("/rooms/ws").replacen("http://", "ws://", 1))
        .collect();
    let home = sockets.iter().position(|socket| *socket == url);
    let home = home.unwrap_or_else(|| panic!("{url} is none of {sockets:?}"));
    let away = 1 - home;

    // The other node sends the socket there, then closes.
    let (mut wrong, refused) = join(&nodes[away], &ada).await;
    assert_eq!(refused["type"], "error", "{refused:?}");
    assert_eq!(refused["code"], 4014, "{refused:?}");
    assert_eq!(refused["url"], url.as_str(), "{refused:?}");
    assert!(matches!(wrong.next().await, Event::Closed(Some(4014))));

    // There, both join (tokens from either node) and see each other.
    let (mut ada, joined) = join(&Named(url.clone()), &ada).await;
    assert_eq!(joined["type"], "joined", "{joined:?}");
    let (_bob, joined) = join(&Named(url), &bob).await;
    assert_eq!(joined["type"], "joined", "{joined:?}");
    assert_eq!(joined["participants"][0]["identity"], "ada", "{joined:?}");
    let heard = next_of(&mut ada, "participant-joined").await;
    assert_eq!(heard["participant"]["identity"], "bob", "{heard:?}");

    // The API acting on the live room answers on its node and names it elsewhere.
    let path = "/rooms/shared/participants";
    let listed = api(&nodes[home], Method::GET, path, &key, None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["participants"].as_array().unwrap().len(), 2);
    let elsewhere = api(&nodes[away], Method::GET, path, &key, None).await;
    assert_error(&elsewhere, 421, 10204);
    assert_eq!(
        elsewhere.body["url"],
        nodes[home].url(""),
        "{:?}",
        elsewhere.body
    );

    // Its node stops: the room closes there and its lease is given up, so the next token
    // places it on the node left.
    nodes[home].stop_gracefully().await;
    let closed = next_of(&mut ada, "none").await;
    assert_eq!(closed["code"], 4008, "{closed:?}");
    let (carol, moved) = token(&nodes[away], &key, "shared", "carol").await;
    assert_eq!(moved, sockets[away]);
    let (_carol, joined) = join(&nodes[away], &carol).await;
    assert_eq!(joined["type"], "joined", "{joined:?}");
}
