//! The real `spacebar` binary as a child process, for tests that watch what an attack costs the
//! server (its resident memory) apart from the test process and every other test in it, and
//! for the command line itself; and several of them as the nodes of one cluster, for tests that
//! kill a node (SIGKILL) or drain it (SIGTERM).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{fresh_database, redis::Redis, settings, Server};

/// Where the voice UDP ranges of cluster nodes begin: above the fixed ranges the voice tests
/// use (42000–43999), below the default one (50000–50999).
const FIRST_NODE_PORT: u16 = 44000;
/// UDP ports each cluster node's media server gets to itself.
const PORTS_PER_NODE: u16 = 100;

/// Overrides for tests that kill a node and wait for the others to take over: nodes beat every
/// half second and leases last 3 s, so take-overs come within seconds. The test sessions send no
/// heartbeats, so the gateway's interval is made longer than any such test.
pub const QUICK_FAILOVER: [(&str, &str); 3] = [
    ("cluster.heartbeat_ms", "500"),
    ("cluster.lease_ms", "3000"),
    ("gateway.heartbeat_interval_ms", "600000"),
];

/// A `spacebar serve` process on a fresh test database; killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub database_url: String,
    overrides: Vec<(String, String)>,
    child: Child,
    data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts the binary with the test defaults and `overrides` (dotted keys, as
    /// `TestServer::with` takes them), passed as `SPACEBAR__SECTION__KEY` variables.
    pub async fn start(overrides: &[(&str, &str)]) -> Self {
        Self::spawn(fresh_database().await, overrides)
    }

    /// `n` processes as the nodes of one cluster: one fresh database, `redis`, the test
    /// settings (one JWT secret), each its own HTTP port, its own voice UDP range and the node
    /// id `node{i}`; `overrides` apply to every node.
    pub async fn cluster(n: usize, redis: &Redis, overrides: &[(&str, &str)]) -> Vec<Self> {
        static NEXT_PORT: AtomicU16 = AtomicU16::new(FIRST_NODE_PORT);
        let database_url = fresh_database().await;
        let redis_url = redis.url();
        (0..n)
            .map(|i| {
                let first = NEXT_PORT.fetch_add(PORTS_PER_NODE, Ordering::Relaxed);
                assert!(first < 50000 - PORTS_PER_NODE, "out of voice UDP ranges");
                let (min, max) = (first.to_string(), (first + PORTS_PER_NODE - 1).to_string());
                let node_id = format!("node{i}");
                let mut node = vec![
                    ("cluster.redis_url", redis_url.as_str()),
                    ("cluster.node_id", node_id.as_str()),
                    ("voice.udp_port_min", min.as_str()),
                    ("voice.udp_port_max", max.as_str()),
                ];
                node.extend_from_slice(overrides);
                Self::spawn(database_url.clone(), &node)
            })
            .collect()
    }

    fn spawn(database_url: String, overrides: &[(&str, &str)]) -> Self {
        let data_dir = data_dir();
        let mut child = command(&database_url, data_dir.path(), overrides, &["serve"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = listening_address(&mut child);
        Self {
            addr,
            database_url,
            overrides: overrides
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            child,
            data_dir,
        }
    }

    /// Runs the binary as [`start`](Self::start) would, for a start that is meant to fail:
    /// its exit status and its whole output (log lines and any panic message).
    pub async fn run_to_exit(overrides: &[(&str, &str)]) -> (ExitStatus, String) {
        let database_url = fresh_database().await;
        let data_dir = data_dir();
        let output = command(&database_url, data_dir.path(), overrides, &["serve"])
            .output()
            .unwrap();
        (output.status, text(&output))
    }

    /// Runs `spacebar ARGS…` beside this server with its configuration (data directory,
    /// database): its exit status and its whole output.
    pub fn run(&self, args: &[&str]) -> (ExitStatus, String) {
        let overrides: Vec<(&str, &str)> = self
            .overrides
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let output = command(&self.database_url, self.data_dir.path(), &overrides, args)
            .output()
            .unwrap();
        (output.status, text(&output))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident set size now, in bytes (`VmRSS` in /proc).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// Whether the process is still running (it has not crashed or exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The node id it was started with (`cluster.node_id`; empty outside a cluster).
    pub fn node_id(&self) -> &str {
        self.overrides
            .iter()
            .find(|(key, _)| key == "cluster.node_id")
            .map_or("", |(_, value)| value.as_str())
    }

    /// SIGKILL: the process dies at once, telling no one (and is reaped).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the process stops gracefully (see [`wait_exit`](Self::wait_exit)).
    pub fn terminate(&mut self) {
        let pid = libc::pid_t::try_from(self.pid()).unwrap();
        // SAFETY: a signal to the child this harness started (not yet reaped: still its pid).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits up to `timeout` for the process to exit: its status, or `None` if it still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Server for ServerProcess {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory the embedded PostgreSQL (run as `postgres` when the tests run as root) can
/// enter.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `spacebar ARGS…` on `database_url` with the test settings and `overrides`.
fn command(
    database_url: &str,
    data_dir: &Path,
    overrides: &[(&str, &str)],
    args: &[&str],
) -> Command {
    let data_path = data_dir.to_string_lossy().to_string();
    let mut settings = settings(database_url, &data_path);
    settings.extend_from_slice(overrides);
    let mut command = Command::new(env!("CARGO_BIN_EXE_spacebar"));
    command
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in settings {
        let name = format!("SPACEBAR__{}", key.replace('.', "__").to_uppercase());
        command.env(name, value);
    }
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Reads the child's log until its `listening addr=…` line; the rest of the log is passed on
/// to the test's own output.
fn listening_address(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().unwrap();
    let (found, address) = mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line
                .split_once("listening addr=")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|addr| addr.parse::<SocketAddr>().ok())
            {
                if let Some(found) = found.take() {
                    let _ = found.send(addr);
                }
            }
            println!("[server] {line}");
        }
    });
    address
        .recv_timeout(Duration::from_secs(60))
        .expect("the server process did not start listening")
}
