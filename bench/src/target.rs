//! Options every subcommand shares: which server, which API version, timeouts,
//! compression; and the machine-level notes printed with the figures.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// The server under test.
#[derive(Args)]
pub struct Target {
    /// Base URL of the server (its REST API lives under /api/v{api-version}).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    pub url: String,
    /// REST API version (also used as the gateway's `v=`).
    #[arg(long, default_value_t = 9)]
    pub api_version: u32,
    /// Gateway base URL (ws://host:port), skipping `GET /gateway` discovery.
    #[arg(long)]
    pub gateway_url: Option<String>,
    /// Upper bound, in seconds, of every single wait: HTTP request, connect,
    /// HELLO, IDENTIFY->READY, a send.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

impl Target {
    /// `--url` without a trailing slash.
    pub fn base(&self) -> String {
        self.url.trim_end_matches('/').to_string()
    }

    /// The REST API root, e.g. `http://127.0.0.1:3001/api/v9`.
    pub fn api(&self) -> String {
        format!("{}/api/v{}", self.base(), self.api_version)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Compress {
    /// One zlib stream per connection, sync-flushed per message.
    ZlibStream,
}

/// Discord intents GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT: what a client
/// that wants guild messages asks for (servers that ignore intents don't care).
pub const MESSAGE_INTENTS: u64 = 1 | (1 << 9) | (1 << 15);

/// How a run sets up its users and guilds and opens its sessions.
#[derive(Args)]
pub struct Opening {
    /// Gateway sessions opened per second.
    #[arg(long, default_value_t = 200.0)]
    pub connect_rate: f64,
    /// Client threads (one actix-rt system each) for the gateway sessions.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// REST requests in flight during setup (registration, guilds, joins).
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
}

/// Waiting for other jobs on a shared machine before measuring.
#[derive(Args)]
pub struct Quiet {
    /// Before the measured phase, wait until the whole machine uses less than
    /// this much CPU (percent of one core, over 2 s), e.g. 30. Off by default.
    #[arg(long)]
    pub quiet_below: Option<f64>,
    /// Longest wait for --quiet-below, in seconds; then it measures anyway
    /// and says so.
    #[arg(long, default_value_t = 600)]
    pub quiet_wait: u64,
}

impl Quiet {
    /// Waits as asked and prints the outcome.
    pub fn wait(&self) {
        let Some(below) = self.quiet_below else {
            return;
        };
        let (quiet, busy) =
            crate::sys::wait_for_quiet(below, std::time::Duration::from_secs(self.quiet_wait));
        if quiet {
            println!("machine quiet: {busy:.0}% busy (< {below:.0}%), measuring");
        } else {
            println!(
                "warning: machine still {busy:.0}% busy after {} s (wanted < {below:.0}%), \
                 measuring anyway: other jobs share the CPU",
                self.quiet_wait
            );
        }
    }
}

/// A run id for unique e-mail addresses and names, so re-runs do not collide.
pub fn run_id() -> String {
    format!("{:012x}", rand::random::<u64>() >> 16)
}

/// "machine: 2 CPUs, shared by this tool and the server (loopback URL)".
pub fn machine_note(base: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let local = crate::rest::same_host(base, "http://127.0.0.1").unwrap_or(false);
    if local {
        format!(
            "machine: {cpus} CPUs, shared by this tool and the server (loopback URL): \
             figures include the tool's own CPU use"
        )
    } else {
        format!("machine: {cpus} CPUs for this tool; the server runs elsewhere")
    }
}
