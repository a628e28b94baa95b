//! Cluster mode, one owner per object: leases with a rising epoch (the fencing token), renewed
//! by their holder and lost by a node that cannot reach Redis; a guild's owner answers the
//! other nodes, hands its guilds over when it stops, and fences itself when cut off.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use spacebar::cluster::{keys, lease};

use crate::cluster_nodes::operator;
use crate::common::gateway::Gateway;
use crate::common::guild::{guild, Guild};
use crate::common::http::{account, get};
use crate::common::redis::Redis;
use crate::common::TestServer;
use crate::voice_signalling::{op4, voice_guild};

async fn connect(redis: &Redis) -> ConnectionManager {
    let client = ::redis::Client::open(redis.url()).unwrap();
    ConnectionManager::new(client).await.unwrap()
}

const TTL: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn a_lease_has_one_holder_and_every_new_holder_a_higher_epoch() {
    let redis = Redis::start();
    let mut conn = connect(&redis).await;
    let key = keys::own_guild(1);
    let a = lease::acquire(&mut conn, &key, "host:1", TTL)
        .await
        .unwrap();
    let a = a.expect("a free lease is taken");
    assert!(a.is_valid());
    assert_eq!(
        lease::holder(&mut conn, &key).await.unwrap(),
        Some(("host:1".to_owned(), a.epoch()))
    );
    // Held: nobody else takes it, not even the holder again.
    for node in ["host:2", "host:1"] {
        let taken = lease::acquire(&mut conn, &key, node, TTL).await.unwrap();
        assert!(taken.is_none(), "{node} took a held lease");
    }
    lease::release(&mut conn, &a).await.unwrap();
    assert_eq!(lease::holder(&mut conn, &key).await.unwrap(), None);
    let b = lease::acquire(&mut conn, &key, "host:2", TTL)
        .await
        .unwrap();
    let mut b = b.expect("a released lease is free");
    assert!(b.epoch() > a.epoch());
    // The old holder can neither renew nor release what is now another's.
    let mut stale = a.clone();
    assert!(!lease::renew(&mut conn, &mut stale, TTL).await.unwrap());
    assert!(!stale.is_valid(), "a lost lease stops being valid at once");
    lease::release(&mut conn, &a).await.unwrap();
    assert_eq!(
        lease::holder(&mut conn, &key).await.unwrap(),
        Some(("host:2".to_owned(), b.epoch()))
    );
    assert!(lease::renew(&mut conn, &mut b, TTL).await.unwrap());
    assert!(b.is_valid());
}

#[actix_web::test]
async fn a_lapsed_lease_is_not_renewed_and_goes_to_a_new_epoch() {
    let redis = Redis::start();
    let mut conn = connect(&redis).await;
    let key = keys::own_room("7");
    let short = Duration::from_millis(300);
    let mut a = lease::acquire(&mut conn, &key, "a", short)
        .await
        .unwrap()
        .unwrap();
    // Valid for less than the lease lasts in Redis.
    assert!(a.remaining() < short);
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert!(!a.is_valid());
    assert_eq!(lease::holder(&mut conn, &key).await.unwrap(), None);
    // Renewing a lapsed lease does not take it back: the next owner needs a new epoch.
    assert!(!lease::renew(&mut conn, &mut a, short).await.unwrap());
    assert_eq!(lease::holder(&mut conn, &key).await.unwrap(), None);
    let b = lease::acquire(&mut conn, &key, "b", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(b.epoch() > a.epoch());
}

#[actix_web::test]
async fn epochs_keep_rising_after_redis_loses_its_counters() {
    let mut redis = Redis::start();
    let mut conn = connect(&redis).await;
    let key = keys::own_guild(2);
    let a = lease::acquire(&mut conn, &key, "a", TTL)
        .await
        .unwrap()
        .unwrap();
    redis.restart();
    let mut conn = connect(&redis).await;
    let b = lease::acquire(&mut conn, &key, "b", TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(b.epoch() > a.epoch(), "{} then {}", a.epoch(), b.epoch());
}

/// `nodes[i]` owns `guild_id` now: under which epoch.
fn owns(node: &TestServer, guild_id: i64) -> Option<u64> {
    node.state()
        .cluster
        .as_ref()
        .unwrap()
        .ownership
        .owns(guild_id)
}

fn node_id(node: &TestServer) -> String {
    node.state().cluster.as_ref().unwrap().node_id().to_owned()
}

/// Who owns `guild_id`, as the nodes themselves say: never more than one.
fn owner(nodes: &[TestServer], guild_id: i64) -> Option<(usize, u64)> {
    let owning: Vec<(usize, u64)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(n, node)| owns(node, guild_id).map(|epoch| (n, epoch)))
        .collect();
    assert!(owning.len() <= 1, "two owners at once: {owning:?}");
    owning.first().copied()
}

/// Waits (generously) until `found` gives something.
async fn until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(found) = found() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within 40 s");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gateway session on `node` (its guilds are heard there, so the node may own them).
async fn online(node: &TestServer, token: &str) -> Gateway {
    let mut gateway = Gateway::connect(node, "v=10&encoding=json").await;
    gateway.identify(token).await;
    gateway
}

/// Reads the session until op 7 (a reconnect).
async fn told_to_reconnect(gateway: &mut Gateway) {
    while gateway.payload().await["op"] != 7 {}
}

fn id(guild: &Guild) -> i64 {
    guild.id.parse().unwrap()
}

#[actix_web::test]
async fn a_guild_has_one_owner_whom_the_others_ask() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(3, &redis).await;
    let mut conn = connect(&redis).await;
    let owner_account = account(&nodes[0], "owner").await;
    let (guild_id, voice) = voice_guild(&nodes[0], &owner_account, &[]).await;
    let g: i64 = guild_id.parse().unwrap();
    // Only node 0 hears the guild: it takes it.
    let mut session = online(&nodes[0], &owner_account.token).await;
    let epoch = until("node 0 owns the guild", || owns(&nodes[0], g)).await;
    assert_eq!(
        lease::holder(&mut conn, &keys::own_guild(g)).await.unwrap(),
        Some((node_id(&nodes[0]), epoch))
    );
    session.send(op4(&guild_id, Some(&voice), false)).await;
    session.dispatch("VOICE_STATE_UPDATE").await;
    // Node 1 holds nothing of the guild: it asks the owner.
    let path = format!("/api/v9/guilds/{guild_id}/voice-states/@me");
    let state = get(&nodes[1], &path, Some(&owner_account.token)).await;
    assert_eq!(state.status, 200, "{:?}", state.body);
    assert_eq!(state.body["channel_id"], voice.as_str());
    assert_eq!(owner(&nodes, g), Some((0, epoch)), "asking took nothing");
}

#[actix_web::test]
async fn a_node_stopping_gracefully_hands_its_guilds_over_at_once() {
    let redis = Redis::start();
    // Leases of a minute: only a handover, not a lapse, can move the guild in time.
    let nodes = TestServer::cluster_with(3, &redis, &[("cluster.lease_ms", "60000")]).await;
    let g = guild(&nodes[0]).await;
    let _first = online(&nodes[0], &g.owner.token).await;
    let (_, epoch) = until("node 0 owns the guild", || owner(&nodes, id(&g))).await;
    let _others = (
        online(&nodes[1], &g.owner.token).await,
        online(&nodes[2], &g.owner.token).await,
    );
    assert_eq!(owner(&nodes, id(&g)), Some((0, epoch)));
    nodes[0].stop_gracefully().await;
    let started = Instant::now();
    let (next, later) = until("another node owns the guild", || owner(&nodes[1..], id(&g))).await;
    assert!(later > epoch, "epoch {later} after {epoch}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "taken over by a handover, not a lapse"
    );
    let mut conn = connect(&redis).await;
    assert_eq!(
        lease::holder(&mut conn, &keys::own_guild(id(&g)))
            .await
            .unwrap(),
        Some((node_id(&nodes[next + 1]), later))
    );
}

/// Every 50 ms until told to stop: who owns `guild_id` as the nodes say (never two at once),
/// recording each owner in turn.
async fn watch_owners(
    nodes: &[TestServer],
    guild_id: i64,
    stop: &AtomicBool,
) -> Vec<Option<(usize, u64)>> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let now = owner(nodes, guild_id);
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// Each owner in turn has a higher epoch than the one before.
fn assert_epochs_rise(seen: &[Option<(usize, u64)>]) {
    let epochs: Vec<u64> = seen.iter().flatten().map(|(_, epoch)| *epoch).collect();
    assert!(
        epochs.windows(2).all(|pair| pair[0] < pair[1]),
        "owners in turn: {seen:?}"
    );
}

#[actix_web::test]
async fn redis_stopped_for_ten_seconds_never_makes_two_owners() {
    let redis = Redis::start();
    let nodes = TestServer::cluster_with(3, &redis, &[("cluster.lease_ms", "3000")]).await;
    let g = guild(&nodes[0]).await;
    let mut sessions = Vec::new();
    for node in &nodes {
        sessions.push(online(node, &g.owner.token).await);
    }
    let (_, before) = until("a node owns the guild", || owner(&nodes, id(&g))).await;
    let stop = AtomicBool::new(false);
    let faults = async {
        redis.pause();
        actix_web::rt::time::sleep(Duration::from_secs(10)).await;
        // Every lease lapsed meanwhile: nobody acts as owner.
        assert_eq!(owner(&nodes, id(&g)), None, "an owner through the outage");
        redis.resume();
        // Cut off for longer than a lease, each node told its sessions to reconnect; one
        // comes back, and its node takes the guild again.
        for session in &mut sessions {
            told_to_reconnect(session).await;
        }
        let _back = online(&nodes[1], &g.owner.token).await;
        let (_, after) = until("a node owns the guild again", || owner(&nodes, id(&g))).await;
        stop.store(true, Ordering::Release);
        after
    };
    let (seen, after) = futures_util::join!(watch_owners(&nodes, id(&g), &stop), faults);
    assert!(after > before, "epoch {after} after {before}");
    assert_epochs_rise(&seen);
}

/// A TCP proxy to `to` that can blackhole: while it does, bytes either way vanish and the
/// connections stay open, as on a cut network. On threads of its own: the test's runtime
/// blocks while a node starts.
struct Blackhole {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl Blackhole {
    fn start(to: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cutting = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(("127.0.0.1", to)))
                else {
                    continue;
                };
                let (client_side, server_side) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (up, down) = (cutting.clone(), cutting.clone());
                std::thread::spawn(move || pump(client, server_side, &up));
                std::thread::spawn(move || pump(server, client_side, &down));
            }
        });
        Self { port, cut }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buffer = vec![0; 16 * 1024];
    while let Ok(read @ 1..) = from.read(&mut buffer) {
        if !cut.load(Ordering::Acquire) && to.write_all(&buffer[..read]).is_err() {
            return;
        }
    }
}

#[actix_web::test]
async fn a_node_cut_off_from_redis_fences_itself_and_its_clients_move() {
    let redis = Redis::start();
    let proxy = Blackhole::start(redis.port);
    let lease = ("cluster.lease_ms", "3000");
    let through_proxy = proxy.url();
    let nodes = TestServer::cluster_each(
        &redis,
        &[
            &[lease],
            &[lease],
            &[lease, ("cluster.redis_url", &through_proxy)],
        ],
    )
    .await;
    let g = guild(&nodes[0]).await;
    // Node 2 hears the guild first and takes it; node 0 hears it too.
    let mut cut_off = online(&nodes[2], &g.owner.token).await;
    let (_, before) = until("node 2 owns the guild", || {
        owner(&nodes, id(&g)).filter(|(n, _)| *n == 2)
    })
    .await;
    let _elsewhere = online(&nodes[0], &g.owner.token).await;

    let stop = AtomicBool::new(false);
    let faults = async {
        proxy.cut.store(true, Ordering::Release);
        // Node 2 stops owning and tells its client to go elsewhere; node 0 takes over.
        told_to_reconnect(&mut cut_off).await;
        let (next, after) = until("node 0 owns the guild", || {
            owner(&nodes, id(&g)).filter(|(n, _)| *n != 2)
        })
        .await;
        assert_eq!(owns(&nodes[2], id(&g)), None);
        stop.store(true, Ordering::Release);
        (next, after)
    };
    let (seen, (next, after)) = futures_util::join!(watch_owners(&nodes, id(&g), &stop), faults);
    assert_eq!(next, 0, "the other node that hears the guild");
    assert!(after > before, "epoch {after} after {before}");
    assert_epochs_rise(&seen);
    // The client moves: another node takes it.
    online(&nodes[1], &g.owner.token).await;
    let mut conn = connect(&redis).await;
    assert_eq!(
        lease::holder(&mut conn, &keys::own_guild(id(&g)))
            .await
            .unwrap(),
        Some((node_id(&nodes[0]), after))
    );
}

#[actix_web::test]
async fn each_node_reports_its_sessions_voice_rooms_and_load() {
    let redis = Redis::start();
    let nodes = TestServer::cluster(2, &redis).await;
    let root = operator(&nodes[0]).await;
    let _sessions = (
        online(&nodes[1], &root.token).await,
        online(&nodes[1], &root.token).await,
    );
    let busy = node_id(&nodes[1]);
    let deadline = Instant::now() + Duration::from_secs(40);
    let entry = loop {
        let listed = get(&nodes[0], "/_spacebar/admin/nodes", Some(&root.token)).await;
        assert_eq!(listed.status, 200, "{:?}", listed.body);
        let entry = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|node| node["id"] == busy.as_str())
            .cloned();
        if let Some(entry) = entry.filter(|entry| entry["sessions"] == 2) {
            break entry;
        }
        assert!(Instant::now() < deadline, "{:?}", listed.body);
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(entry["voice_rooms"], 0, "{entry}");
    // Sessions, and each voice peer connection weighted (none here).
    assert_eq!(entry["load"], 2, "{entry}");
    assert_eq!(entry["draining"], false, "{entry}");
}
