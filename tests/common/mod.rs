//! The test harness: a throwaway socket-only PostgreSQL cluster shared by the whole test run,
//! a template database migrated once, and per test a fresh database and a real server.

pub mod etf;
pub mod gateway;
pub mod guild;
pub mod http;
pub mod process;
pub mod python;
pub mod redis;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};

use tokio::sync::Mutex;

use spacebar::config::Config;
use spacebar::db::embedded::{self, EmbeddedPostgres};

const TEMPLATE: &str = "spacebar_template";
pub const TEST_SECRET: &str = "integration-test-signing-key";

struct Cluster {
    /// Never dropped: the cluster stops when the test process ends (parent-death signal).
    _postgres: EmbeddedPostgres,
    dir: PathBuf,
    next: AtomicU32,
    /// `CREATE DATABASE … TEMPLATE` fails if two copy the template at once.
    creating: Mutex<()>,
}

/// Starts the shared cluster on first use; it lives as long as the test process.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("spacebar-test-{}", std::process::id()));
        remove_stale_clusters();
        let dir = root.join("pg");
        let cluster_dir = dir.clone();
        // Outside any async runtime: start-up and migrations block.
        let started = std::thread::spawn(move || {
            let cluster =
                EmbeddedPostgres::start(&cluster_dir, "", false).map_err(|e| e.to_string())?;
            spacebar::db::create_database(&cluster.url("postgres"), TEMPLATE)
                .and_then(|()| spacebar::db::migrate(&cluster.url(TEMPLATE)))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(cluster)
        });
        let postgres = started
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
        Cluster {
            _postgres: postgres,
            dir,
            next: AtomicU32::new(0),
            creating: Mutex::new(()),
        }
    })
}

/// Clusters left by earlier test runs whose process is gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("spacebar-test-") else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh database cloned from the migrated template; returns its URL.
pub async fn fresh_database() -> String {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let cluster = cluster();
    let name = format!("test_{}", cluster.next.fetch_add(1, Ordering::Relaxed));
    let mut conn =
        diesel_async::AsyncPgConnection::establish(&embedded::url(&cluster.dir, "postgres"))
            .await
            .unwrap();
    let _one_at_a_time = cluster.creating.lock().await;
    diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
        .execute(&mut conn)
        .await
        .unwrap();
    embedded::url(&cluster.dir, &name)
}

/// What the request helpers need of a server: where it is. An in-process [`TestServer`] and a
/// [`process::ServerProcess`] both are one.
pub trait Server {
    /// `http://127.0.0.1:port` + `path`.
    fn url(&self, path: &str) -> String;
}

impl Server for TestServer {
    fn url(&self, path: &str) -> String {
        TestServer::url(self, path)
    }
}

/// What every test server is configured with, whether in this process or a child one.
fn settings<'a>(database_url: &'a str, data_dir: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("http.listen", "127.0.0.1:0"),
        ("database.url", database_url),
        ("storage.data_dir", data_dir),
        ("security.jwt_secret", TEST_SECRET),
        ("security.bcrypt_cost", "4"),
        // Tests send bursts; the rate-limit tests turn them back on.
        ("rate_limits.enabled", "false"),
        // Every test server binds its own; a fixed port would be taken by the first.
        ("voice.bot_udp_port", "0"),
    ]
}

/// A running server on its own database, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub database_url: String,
    handle: actix_web::dev::ServerHandle,
    stopping: spacebar::server::Stopping,
    tree: spacebar_actors::Tree,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(&[]).await
    }

    /// A server with configuration keys (`"gateway.identify_timeout_ms"`, …) overridden.
    pub async fn with(overrides: &[(&str, &str)]) -> Self {
        Self::serve(fresh_database().await, overrides).await
    }

    /// Another server on an existing test database (as if the first had restarted).
    pub async fn on_database(database_url: &str) -> Self {
        Self::serve(database_url.to_string(), &[]).await
    }

    /// `n` nodes of one instance: one database, one Redis.
    pub async fn cluster(n: usize, redis: &redis::Redis) -> Vec<Self> {
        Self::cluster_with(n, redis, &[]).await
    }

    /// [`cluster`](Self::cluster) with configuration keys overridden on every node.
    pub async fn cluster_with(
        n: usize,
        redis: &redis::Redis,
        overrides: &[(&str, &str)],
    ) -> Vec<Self> {
        Self::cluster_each(redis, &vec![overrides; n]).await
    }

    /// One node per entry of `nodes`, each with its own configuration keys overridden (a node
    /// may reach Redis another way: `cluster.redis_url`).
    pub async fn cluster_each(redis: &redis::Redis, nodes: &[&[(&str, &str)]]) -> Vec<Self> {
        let database_url = fresh_database().await;
        let redis_url = redis.url();
        let mut started = Vec::with_capacity(nodes.len());
        for overrides in nodes {
            let mut node = vec![("cluster.redis_url", redis_url.as_str())];
            node.extend_from_slice(overrides);
            started.push(Self::serve(database_url.clone(), &node).await);
        }
        started
    }

    async fn serve(database_url: String, overrides: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let data_path = data_dir.path().to_string_lossy().to_string();
        let mut settings = settings(&database_url, &data_path);
        // In the test process, beside many other servers: small.
        settings.extend_from_slice(&[("http.workers", "1"), ("database.pool_size", "4")]);
        settings.extend_from_slice(overrides);
        let config = Config::with_overrides(&settings).unwrap();
        let (ready, started) = mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let url = config.database.url.clone();
                let server = spacebar::server::build(config, &url, TEST_SECRET.as_bytes())
                    .await
                    .unwrap();
                ready
                    .send((
                        server.addr,
                        server.handle(),
                        server.stopping(),
                        server.tree.clone(),
                    ))
                    .unwrap();
                server.run().await.unwrap();
            })
        });
        let (addr, handle, stopping, tree) = started.recv().unwrap();
        Self {
            addr,
            database_url,
            handle,
            stopping,
            tree,
            _data_dir: data_dir,
        }
    }

    /// The supervision tree: voice tests admit participants through it until the gateway's
    /// op 4 does, and count live transports.
    pub fn tree(&self) -> &spacebar_actors::Tree {
        &self.tree
    }

    /// The server's state, while it runs (what a cluster node owns, …).
    pub fn state(&self) -> std::sync::Arc<spacebar::state::AppState> {
        self.stopping.state().expect("the server is running")
    }

    /// Stops the server as SIGTERM would: sessions are told to reconnect first.
    pub async fn stop_gracefully(&self) {
        self.stopping.stop_gracefully().await;
    }

    /// The voice admissions the gateway writes and the voice gateway redeems.
    pub fn admissions(&self) -> &spacebar_actors::voice::Admissions {
        &self.tree.admissions
    }

    /// The server's data directory (stored files live under `files/`).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Runs SQL on this server's database directly (to look behind the API, or to break it).
    pub async fn sql(&self, sql: &str) -> usize {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        let mut conn = diesel_async::AsyncPgConnection::establish(&self.database_url)
            .await
            .unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap()
    }

    /// Runs SQL on the cluster's maintenance database (to act on this server's database).
    pub async fn admin_sql(&self, sql: &str) -> usize {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        let url = embedded::url(&cluster().dir, "postgres");
        let mut conn = diesel_async::AsyncPgConnection::establish(&url)
            .await
            .unwrap();
        diesel::sql_query(sql).execute(&mut conn).await.unwrap()
    }

    /// This server's database's name.
    pub fn database_name(&self) -> String {
        let path = self.database_url.split('?').next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or_default().to_string()
    }

    /// Counts rows with a `SELECT count(*) AS n FROM …` query.
    pub async fn count(&self, from_where: &str) -> i64 {
        use diesel::sql_types::BigInt;
        use diesel_async::{AsyncConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = diesel_async::AsyncPgConnection::establish(&self.database_url)
            .await
            .unwrap();
        let row: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {from_where}"))
            .get_result(&mut conn)
            .await
            .unwrap();
        row.n
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Sends the stop command at once; the server's thread ends when it is done.
        drop(self.handle.stop(false));
    }
}
