//! Cluster mode, losing a node: nodes here are `spacebar serve` processes, killed (SIGKILL) or
//! drained (SIGTERM, or an operator's request) while clients use them. A killed node's
//! sessions start over elsewhere; a drained node's sessions resume elsewhere without missing
//! anything; a RESUME may reach any node.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::gateway::{Event, Gateway};
use crate::common::guild::{guild, join, Guild};
use crate::common::http::{account, get, post, Account};
use crate::common::process::ServerProcess;
use crate::common::redis::Redis;
use crate::common::Server;

/// Short beats: a killed node is taken for dead within a second and a half.
const FAST: &[(&str, &str)] = &[("cluster.heartbeat_ms", "500")];
const QUERY: &str = "v=10&encoding=json";

/// A gateway client that keeps what a client keeps to resume (its session id and last
/// sequence number) and every message it saw, in order.
struct Client {
    account: Account,
    gateway: Gateway,
    session_id: String,
    seq: u64,
    messages: Vec<String>,
    /// Sequence numbers that did not follow the one before (there should be none).
    gaps: Vec<(u64, u64)>,
}

impl Client {
    async fn identify(node: &impl Server, account: Account) -> Self {
        let mut gateway = Gateway::connect(node, QUERY).await;
        let ready = gateway.identify(&account.token).await;
        Self {
            session_id: ready["d"]["session_id"].as_str().unwrap().to_owned(),
            seq: ready["s"].as_u64().unwrap(),
            account,
            gateway,
            messages: Vec::new(),
            gaps: Vec::new(),
        }
    }

    /// Notes a payload; true if it was op 7 RECONNECT.
    fn note(&mut self, payload: &Value) -> bool {
        if let Some(seq) = payload["s"].as_u64() {
            if seq != self.seq + 1 {
                self.gaps.push((self.seq, seq));
            }
            self.seq = seq;
        }
        if payload["t"] == "MESSAGE_CREATE" {
            self.messages
                .push(payload["d"]["id"].as_str().unwrap().to_owned());
        }
        payload["op"] == 7
    }

    /// Reads until the message `id` arrives; false if told to reconnect (or closed) first.
    async fn read_until(&mut self, id: &str) -> bool {
        loop {
            match self.gateway.next_or_broken().await {
                Event::Payload(payload) => {
                    if self.note(&payload) {
                        return false;
                    }
                    if payload["t"] == "MESSAGE_CREATE" && payload["d"]["id"] == id {
                        return true;
                    }
                }
                Event::Closed(_) => return false,
            }
        }
    }

    /// Reads until op 7 RECONNECT or the socket closes.
    async fn read_until_told(&mut self) {
        while let Event::Payload(payload) = self.gateway.next_or_broken().await {
            if self.note(&payload) {
                return;
            }
        }
    }

    /// RESUMEs on `node`: RESUMED after the replay (the replay noted), or the INVALID_SESSION
    /// payload.
    async fn resume(&mut self, node: &impl Server) -> Result<(), Value> {
        self.gateway = Gateway::connect(node, QUERY).await;
        let resume = json!({ "op": 6, "d": {
            "token": self.account.token, "session_id": self.session_id, "seq": self.seq,
        } });
        self.gateway.send(resume).await;
        loop {
            let payload = self.gateway.payload().await;
            if payload["op"] == 9 {
                return Err(payload);
            }
            self.note(&payload);
            if payload["t"] == "RESUMED" {
                return Ok(());
            }
        }
    }
}

/// Posts `content` in the guild's channel through `node`: the message id if it got a 200.
async fn say(node: &impl Server, g: &Guild, content: &str) -> Option<String> {
    say_in(node, &g.channel, &g.owner.token, content).await
}

async fn say_in(node: &impl Server, channel: &str, token: &str, content: &str) -> Option<String> {
    let sent = post(
        node,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(token),
        json!({ "content": content }),
    )
    .await;
    (sent.status == 200).then(|| sent.body["id"].as_str().unwrap().to_owned())
}

/// Posts in the guild's channel through `nodes` in turn, one message at a time, until `stop`:
/// the ids that got a 200.
fn load(
    nodes: Vec<std::net::SocketAddr>,
    g: &Guild,
    stop: Arc<AtomicBool>,
) -> actix_web::rt::task::JoinHandle<Vec<String>> {
    let (channel, token) = (g.channel.clone(), g.owner.token.clone());
    actix_web::rt::spawn(async move {
        let mut sent = Vec::new();
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let node = Addr(nodes[n % nodes.len()]);
            if let Some(id) = say_in(&node, &channel, &token, &format!("load {n}")).await {
                sent.push(id);
            }
            n += 1;
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    })
}

/// A node by its address alone (for tasks that outlive a borrow of the nodes).
struct Addr(std::net::SocketAddr);

impl Server for Addr {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.0)
    }
}

/// `n` members of the guild (besides its owner), made through `node`.
async fn members(node: &impl Server, g: &Guild, n: usize) -> Vec<Account> {
    let mut members = Vec::with_capacity(n);
    for i in 0..n {
        members.push(join(node, g, &format!("member{i}")).await);
    }
    members
}

/// Asserts `client` saw each of `sent` once and nothing else, with no gap in its numbering
/// (messages posted through different nodes may reach it in another order than they were
/// posted: each node delivers its own at once).
fn saw_everything(client: &Client, sent: &[String]) {
    assert!(client.gaps.is_empty(), "sequence gaps: {:?}", client.gaps);
    let seen: HashSet<&String> = client.messages.iter().collect();
    assert_eq!(seen.len(), client.messages.len(), "a message twice");
    let missing: Vec<&String> = sent.iter().filter(|id| !seen.contains(id)).collect();
    assert!(missing.is_empty(), "missing {missing:?}");
    assert_eq!(seen.len(), sent.len(), "a message not sent");
}

#[actix_web::test]
async fn a_resume_sent_to_the_wrong_node_replays_everything_it_missed() {
    let redis = Redis::start();
    let nodes = ServerProcess::cluster(2, &redis, FAST).await;
    let g = guild(&nodes[0]).await;
    let reader = join(&nodes[0], &g, "reader").await;
    let mut client = Client::identify(&nodes[0], reader).await;
    let first = say(&nodes[0], &g, "before").await.unwrap();
    assert!(client.read_until(&first).await);

    client.gateway.close_with(4000).await;
    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(say(&nodes[1], &g, &format!("missed {i}")).await.unwrap());
    }
    // Its home (node 0) holds them; node 1 takes the session over.
    client.resume(&nodes[1]).await.unwrap();
    assert_eq!(client.messages[1..], missed[..]);
    // It lives on node 1 now: what node 0 commits reaches it there.
    let after = say(&nodes[0], &g, "after").await.unwrap();
    assert!(client.read_until(&after).await);
    let mut all = vec![first];
    all.extend(missed);
    all.push(after);
    saw_everything(&client, &all);

    // Resumed once more, back on the first node.
    client.gateway.close_with(4000).await;
    let last = say(&nodes[1], &g, "last").await.unwrap();
    client.resume(&nodes[0]).await.unwrap();
    all.push(last);
    saw_everything(&client, &all);
}

#[actix_web::test]
async fn a_drained_nodes_clients_resume_elsewhere_missing_nothing_under_load() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(3, &redis, FAST).await;
    let g = guild(&nodes[1]).await;
    let mut clients = Vec::new();
    for account in members(&nodes[1], &g, 6).await {
        clients.push(Client::identify(&nodes[0], account).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sending = load(vec![nodes[1].addr, nodes[2].addr], &g, stop.clone());
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    nodes[0].terminate();
    let drained = Instant::now();
    let others = [Addr(nodes[1].addr), Addr(nodes[2].addr)];
    let resuming = clients.into_iter().enumerate().map(|(i, mut client)| {
        let node = &others[i % 2];
        async move {
            client.read_until_told().await;
            client.resume(node).await.unwrap();
            client
        }
    });
    let mut clients = futures_util::future::join_all(resuming).await;
    println!(
        "drain: every client resumed elsewhere {:?} after SIGTERM",
        drained.elapsed()
    );
    let status = nodes[0].wait_exit(Duration::from_secs(60)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = sending.await.unwrap();
    sent.push(say(&nodes[2], &g, "barrier").await.unwrap());
    for client in &mut clients {
        assert!(client.read_until(sent.last().unwrap()).await);
        saw_everything(client, &sent);
    }
}

#[actix_web::test]
async fn an_operator_drains_another_node_through_any() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(2, &redis, FAST).await;
    let root = account(&nodes[1], "root").await;
    let (granted, output) = nodes[1].run(&["admin", "grant-operator", &root.id]);
    assert!(granted.success(), "{output}");
    let user = account(&nodes[1], "user").await;
    let mut client = Client::identify(&nodes[0], user).await;

    let path = format!("/_spacebar/admin/nodes/{}/drain", nodes[0].node_id());
    let drain = post(&nodes[1], &path, Some(&root.token), json!({})).await;
    assert_eq!(drain.status, 202, "{:?}", drain.body);
    client.read_until_told().await;
    client.resume(&nodes[1]).await.unwrap();
    let status = nodes[0].wait_exit(Duration::from_secs(60)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let listed = get(&nodes[1], "/_spacebar/admin/nodes", Some(&root.token)).await;
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["node1"]);
    let unknown = post(
        &nodes[1],
        "/_spacebar/admin/nodes/nowhere/drain",
        Some(&root.token),
        json!({}),
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[actix_web::test]
async fn a_killed_node_under_load_loses_nothing_and_its_clients_start_over_elsewhere() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(3, &redis, FAST).await;
    let g = guild(&nodes[1]).await;
    let mut doomed = Vec::new();
    let mut survivors = Vec::new();
    for (i, account) in members(&nodes[1], &g, 6).await.into_iter().enumerate() {
        let client = Client::identify(&nodes[i % 3], account).await;
        match i % 3 {
            0 => doomed.push(client),
            _ => survivors.push(client),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sending = load(vec![nodes[1].addr, nodes[2].addr], &g, stop.clone());
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    nodes[0].kill9();
    let killed = Instant::now();
    let others = [Addr(nodes[1].addr), Addr(nodes[2].addr)];
    let restarting = doomed.into_iter().enumerate().map(|(i, mut client)| {
        let node = &others[i % 2];
        async move {
            client.read_until_told().await;
            let refused = client.resume(node).await.unwrap_err();
            assert_eq!(refused["d"], false, "{refused}");
            Client::identify(node, client.account).await;
            killed.elapsed()
        }
    });
    let took = futures_util::future::join_all(restarting).await;
    let slowest = took.iter().max().unwrap();
    println!("kill -9: every client READY elsewhere {slowest:?} after the kill");
    // The lease expiry (10 s by default) + 2 s.
    assert!(
        *slowest < Duration::from_secs(12),
        "READY again after {slowest:?}"
    );

    stop.store(true, Ordering::Relaxed);
    let mut sent = sending.await.unwrap();
    sent.push(say(&nodes[2], &g, "barrier").await.unwrap());
    for client in &mut survivors {
        assert!(client.read_until(sent.last().unwrap()).await);
        saw_everything(client, &sent);
    }
    // Every message that got a 200 is in the history.
    let mut history = HashSet::new();
    let mut before = String::new();
    loop {
        let path = format!("/api/v9/channels/{}/messages?limit=100{before}", g.channel);
        let page = get(&nodes[2], &path, Some(&g.owner.token)).await;
        let page = page.body.as_array().unwrap().clone();
        let Some(oldest) = page.last() else { break };
        before = format!("&before={}", oldest["id"].as_str().unwrap());
        history.extend(page.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
    }
    let missing: Vec<&String> = sent.iter().filter(|id| !history.contains(*id)).collect();
    assert!(missing.is_empty(), "not in history: {missing:?}");
}

#[actix_web::test]
async fn a_killed_nodes_users_turn_offline_for_the_others() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(2, &redis, FAST).await;
    let g = guild(&nodes[1]).await;
    let doomed = join(&nodes[1], &g, "doomed").await;
    let mut watcher = Gateway::connect(&nodes[1], QUERY).await;
    watcher.identify(&g.owner.token).await;
    let mut gone = Gateway::connect(&nodes[0], QUERY).await;
    gone.identify(&doomed.token).await;
    let online = presence_of(&mut watcher, &doomed.id).await;
    assert_eq!(online["status"], "online");

    nodes[0].kill9();
    let offline = presence_of(&mut watcher, &doomed.id).await;
    assert_eq!(offline["status"], "offline", "{offline}");
}

/// The next PRESENCE_UPDATE about `user_id`.
async fn presence_of(gateway: &mut Gateway, user_id: &str) -> Value {
    loop {
        let update = gateway.dispatch("PRESENCE_UPDATE").await;
        if update["d"]["user"]["id"] == user_id {
            return update["d"].clone();
        }
    }
}

#[actix_web::test]
async fn a_killed_nodes_sessions_cannot_resume_elsewhere_and_identify_again() {
    let redis = Redis::start();
    let mut nodes = ServerProcess::cluster(2, &redis, &[]).await;
    let user = account(&nodes[0], "user").await;
    let mut client = Client::identify(&nodes[0], user).await;

    nodes[0].kill9();
    // Its buffer died with it: nothing can be replayed, the client must start over.
    let refused = client.resume(&nodes[1]).await.unwrap_err();
    assert_eq!(refused["d"], false);
    Client::identify(&nodes[1], client.account).await;
}
