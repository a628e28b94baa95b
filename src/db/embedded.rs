//! The embedded default database: a private PostgreSQL cluster under the data directory, run
//! from the PostgreSQL binaries installed on the machine. It listens on a Unix socket inside
//! its own directory only (no TCP port), runs as the `postgres` system user when the server
//! runs as root (PostgreSQL refuses root), is started again if it dies, dies with the server
//! (parent-death signal) and is stopped with a fast shutdown when dropped.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest path a Unix socket address holds.
const SOCKET_PATH_MAX: usize = 107;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
const RESTARTS_PER_MINUTE: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no database.url is configured and the PostgreSQL server binaries (initdb, postgres) \
         were not found; install them (Debian: apt-get install postgresql) or set \
         SPACEBAR__DATABASE__URL"
    )]
    NotInstalled,
    #[error(
        "running as root, the embedded PostgreSQL must run as the `postgres` system user, which \
         does not exist (Debian's postgresql package creates it)"
    )]
    NoPostgresUser,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database socket path {0} is longer than a Unix socket allows; choose a shorter storage.data_dir")]
    SocketPathTooLong(PathBuf),
    #[error("initdb failed: {0}")]
    Initdb(String),
    #[error("PostgreSQL did not start (log: {log}): {message}")]
    Start { log: PathBuf, message: String },
}

/// A running private cluster, watched by a thread of its own that restarts PostgreSQL if it
/// dies; stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    dir: PathBuf,
    stop: mpsc::Sender<()>,
    watcher: Option<thread::JoinHandle<()>>,
}

/// Who owns the cluster's files and processes when the server runs as root.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// Everything needed to start the postmaster, again if need be.
#[derive(Debug)]
struct Launcher {
    bin: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    owner: Option<Owner>,
    durable: bool,
}

impl EmbeddedPostgres {
    /// Initialises `dir` on first use and starts PostgreSQL on it. `durable: false` turns off
    /// fsync and friends, for throwaway test clusters.
    pub fn start(dir: &Path, bin_dir: &str, durable: bool) -> Result<Self, EmbeddedError> {
        let bin = find_binaries(bin_dir)?;
        let owner = owner()?;
        let dir = std::path::absolute(dir).map_err(|source| io(dir, source))?;
        let socket = dir.join(".s.PGSQL.5432");
        if socket.as_os_str().len() > SOCKET_PATH_MAX {
            return Err(EmbeddedError::SocketPathTooLong(socket));
        }
        if !dir.join("PG_VERSION").exists() {
            init(&bin, &dir, owner, durable)?;
        }
        let launcher = Launcher {
            bin,
            log: dir.with_extension("log"),
            dir: dir.clone(),
            owner,
            durable,
        };
        let (started, result) = mpsc::channel();
        let (stop, stopped) = mpsc::channel();
        // The watcher starts PostgreSQL itself: the parent-death signal is tied to the thread
        // that forked, and this thread lives exactly as long as the cluster should.
        let watcher = thread::Builder::new()
            .name("embedded-postgres".into())
            .spawn(move || watch(&launcher, &started, &stopped))
            .map_err(|source| io(&dir, source))?;
        match result.recv() {
            Ok(Ok(())) => Ok(Self {
                dir,
                stop,
                watcher: Some(watcher),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(EmbeddedError::Start {
                log: dir.with_extension("log"),
                message: "the watcher thread ended".into(),
            }),
        }
    }

    /// A connection URL for `database` through the cluster's socket.
    pub fn url(&self, database: &str) -> String {
        url(&self.dir, database)
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Starts PostgreSQL, then watches it until told to stop: a postmaster that dies is started
/// again (at most RESTARTS_PER_MINUTE times a minute), so the server's pool reconnects.
fn watch(
    launcher: &Launcher,
    started: &mpsc::Sender<Result<(), EmbeddedError>>,
    stop: &mpsc::Receiver<()>,
) {
    let mut child = match launcher.launch() {
        Ok(child) => {
            let _ = started.send(Ok(()));
            child
        }
        Err(error) => {
            let _ = started.send(Err(error));
            return;
        }
    };
    let mut restarts: Vec<Instant> = Vec::new();
    loop {
        match stop.recv_timeout(WATCH_INTERVAL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return shut_down(&mut child),
        }
        let Ok(Some(status)) = child.try_wait() else {
            continue;
        };
        restarts.retain(|at| at.elapsed() < Duration::from_secs(60));
        if restarts.len() >= RESTARTS_PER_MINUTE {
            continue; // keep checking the stop signal; readiness reports the outage
        }
        restarts.push(Instant::now());
        tracing::error!(%status, "embedded PostgreSQL exited; starting it again");
        match launcher.launch() {
            Ok(restarted) => child = restarted,
            Err(error) => tracing::error!(%error, "embedded PostgreSQL did not restart"),
        }
    }
}

impl Launcher {
    fn launch(&self) -> Result<Child, EmbeddedError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| io(&self.log, source))?;
        let log_err = log.try_clone().map_err(|source| io(&self.log, source))?;
        let postgres = self.bin.join("postgres");
        let mut command = Command::new(&postgres);
        command
            .arg("-D")
            .arg(&self.dir)
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args([
                "-c",
                "unix_socket_permissions=0700",
                "-c",
                "max_connections=300",
            ])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a terminal's Ctrl-C reaches the server, which then stops
            // PostgreSQL in order, after its last connection is closed.
            .process_group(0);
        if !self.durable {
            command.args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
            command.args(["-c", "full_page_writes=off"]);
        }
        as_owner(&mut command, self.owner);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec, after
        // the uid change (which would reset it), and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                // If the server dies, even by SIGKILL, PostgreSQL gets a fast-shutdown signal.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| io(&postgres, source))?;
        match self.wait_ready(&mut child) {
            Ok(()) => Ok(child),
            Err(error) => {
                shut_down(&mut child);
                Err(error)
            }
        }
    }

    fn wait_ready(&self, child: &mut Child) -> Result<(), EmbeddedError> {
        let started = Instant::now();
        let pid_file = self.dir.join("postmaster.pid");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(EmbeddedError::Start {
                    log: self.log.clone(),
                    message: format!("postgres exited ({status}): {}", tail(&self.log)),
                });
            }
            // A stale file from a dead postmaster names another pid.
            if ready_postmaster(&pid_file) == Some(child.id()) {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(EmbeddedError::Start {
                    log: self.log.clone(),
                    message: "not ready after 60 s".into(),
                });
            }
            thread::sleep(Duration::from_millis(25));
        }
    }
}

/// The pid of the postmaster `pid_file` (a cluster's `postmaster.pid`) names, if it accepts
/// connections: the file's eighth line reads "ready" once it does.
fn ready_postmaster(pid_file: &Path) -> Option<u32> {
    let text = fs::read_to_string(pid_file).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    (lines.nth(6)?.trim() == "ready").then_some(pid)
}

/// A connection URL for `database` on the cluster in `dir` if another process (a running
/// server) has it up: command-line tools then use it instead of starting it a second time,
/// which PostgreSQL refuses.
pub fn running_url(dir: &Path, database: &str) -> Option<String> {
    let dir = std::path::absolute(dir).ok()?;
    let pid = ready_postmaster(&dir.join("postmaster.pid"))?;
    let alive = Path::new(&format!("/proc/{pid}")).exists();
    (alive && dir.join(".s.PGSQL.5432").exists()).then(|| url(&dir, database))
}

/// Fast shutdown: running transactions are rolled back, the cluster is left consistent.
fn shut_down(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signals our own child process, whose pid we hold and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
    let started = Instant::now();
    while started.elapsed() < STOP_TIMEOUT {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!("embedded PostgreSQL did not stop in time; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

fn init(bin: &Path, dir: &Path, owner: Option<Owner>, durable: bool) -> Result<(), EmbeddedError> {
    fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|source| io(dir, source))?;
    if let Some(owner) = owner {
        chown(dir, Some(owner.uid), Some(owner.gid)).map_err(|source| io(dir, source))?;
    }
    let mut command = Command::new(bin.join("initdb"));
    command
        .arg("-D")
        .arg(dir)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
        .arg("--no-instructions")
        .current_dir(dir)
        .stdin(Stdio::null());
    if !durable {
        command.arg("--no-sync");
    }
    as_owner(&mut command, owner);
    let output = command
        .output()
        .map_err(|source| io(&bin.join("initdb"), source))?;
    if !output.status.success() {
        return Err(EmbeddedError::Initdb(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

fn as_owner(command: &mut Command, owner: Option<Owner>) {
    if let Some(owner) = owner {
        command.uid(owner.uid).gid(owner.gid).env("HOME", "/tmp");
    }
}

/// The `postgres` user when running as root, none otherwise.
fn owner() -> Result<Option<Owner>, EmbeddedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: the name is a NUL-terminated literal; the returned record is copied out at once,
    // before any other call that could overwrite it (startup is single-threaded here).
    let record = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if record.is_null() {
        return Err(EmbeddedError::NoPostgresUser);
    }
    // SAFETY: non-null, points at getpwnam's static record.
    let (uid, gid) = unsafe { ((*record).pw_uid, (*record).pw_gid) };
    Ok(Some(Owner { uid, gid }))
}

/// The directory holding `initdb` and `postgres`: the configured one, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`.
fn find_binaries(configured: &str) -> Result<PathBuf, EmbeddedError> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if !configured.is_empty() {
        let dir = PathBuf::from(configured);
        return if has_both(&dir) {
            Ok(dir)
        } else {
            Err(EmbeddedError::NotInstalled)
        };
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
        .ok_or(EmbeddedError::NotInstalled)
}

fn io(path: &Path, source: std::io::Error) -> EmbeddedError {
    EmbeddedError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    let _ = fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// A connection URL for `database` on the cluster whose socket is in `dir`.
pub fn url(dir: &Path, database: &str) -> String {
    format!(
        "postgresql:///{database}?host={}&user=postgres",
        percent_encode(&dir.to_string_lossy())
    )
}

/// Percent-encodes everything but unreserved characters and `/`, for a URL query value.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
