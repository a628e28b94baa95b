//! `spacebar-bench gateway`: many idle gateway sessions against one server.
//!
//! Timeline of a run:
//! 1. discover the gateway (`GET /gateway`) and register N users (`POST /auth/register`);
//! 2. read the server's RSS (optional), then start N sessions at `--rate`/s,
//!    spread over `--threads` actix-rt systems (see [`crate::pool`]);
//! 3. once every session is READY (or failed), let them idle `--settle` s,
//!    read the server's RSS again, keep holding until `--hold` s have passed;
//! 4. tell every session to close, collect the per-session reports, print a summary.
//!
//! The coordinator (main thread) never waits without a deadline, and every
//! session wait is bounded by `--timeout`, so the run always ends.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::pool::{self, PoolCfg, WorkerResult};
use crate::session::Failure;
use crate::stats::{format_counts, nearest_rank};
use crate::target::Compress;
use crate::{rest, sys, BoxError};

#[derive(Args)]
pub struct GatewayArgs {
    /// Base URL of the server (its REST API lives under /api/v{api-version}).
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    url: String,
    /// Number of users to register and gateway sessions to open.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Sessions started per second (paced evenly).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds to keep the sessions open once all are READY.
    #[arg(long, default_value_t = 20)]
    hold: u64,
    /// Transport compression to ask the gateway for.
    #[arg(long, value_enum)]
    compress: Option<Compress>,
    /// PID of the server process, to report its memory per idle session.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Client threads (one actix-rt system each) sharing the sessions.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Registration requests in flight at once.
    #[arg(long, default_value_t = 16)]
    register_concurrency: usize,
    /// REST API version (also used as the gateway's `v=`).
    #[arg(long, default_value_t = 9)]
    api_version: u32,
    /// Gateway base URL (ws://host:port), skipping `GET /gateway` discovery.
    #[arg(long)]
    gateway_url: Option<String>,
    /// Upper bound, in seconds, of every single wait: HTTP request, connect,
    /// HELLO, IDENTIFY->READY, a send.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Seconds the sessions idle after the last READY before the server's RSS
    /// is read (capped by --hold).
    #[arg(long, default_value_t = 5)]
    settle: u64,
}

pub fn run(args: GatewayArgs) -> Result<(), BoxError> {
    if args.sessions == 0 || args.threads == 0 || args.register_concurrency == 0 {
        return Err("--sessions, --threads and --register-concurrency must be at least 1".into());
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err("--rate must be a positive number".into());
    }
    let run_started = Instant::now();
    let timeout = Duration::from_secs(args.timeout.max(1));

    // One socket per session, plus registration connections and some slack.
    let soft = sys::raise_nofile_limit()?;
    let needed = args.sessions + args.register_concurrency + 64;
    if soft < needed as libc::rlim_t {
        return Err(format!(
            "the open-files limit is {soft} even after raising it to the hard limit, but {} \
             sessions need about {needed}; raise the hard limit (e.g. `ulimit -Hn {needed}` as \
             root, or LimitNOFILE= in a systemd unit) or use fewer --sessions",
            args.sessions
        )
        .into());
    }
    if let Some(pid) = args.server_pid {
        match sys::nofile_limit_of(pid) {
            Some(limit) if limit < args.sessions as u64 + 64 => eprintln!(
                "warning: server pid {pid} may only open {limit} files; {} sessions need more",
                args.sessions
            ),
            _ => {}
        }
    }

    // 1. Gateway discovery, then registration (REST, one actix-rt system).
    let base = args.url.trim_end_matches('/').to_string();
    let api = format!("{base}/api/v{}", args.api_version);
    let run_id = crate::target::run_id();
    let (gateway, registered) = actix_rt::System::new().block_on(async {
        let client = rest::client(timeout);
        let gateway = match &args.gateway_url {
            Some(url) => url.clone(),
            None => rest::discover_gateway(&client, &api).await?,
        };
        println!(
            "registering {} users at {api} (run id {run_id}, {} at a time)",
            args.sessions, args.register_concurrency
        );
        let registered = rest::register_all(
            &client,
            &api,
            args.sessions,
            args.register_concurrency,
            &run_id,
        )
        .await;
        Ok::<_, BoxError>((gateway, registered))
    })?;
    let reg_failed = args.sessions - registered.tokens.len();
    let reg_secs = registered.elapsed.as_secs_f64();
    println!(
        "registration: {} ok, {reg_failed} failed in {reg_secs:.2} s ({:.0}/s)",
        registered.tokens.len(),
        registered.tokens.len() as f64 / reg_secs.max(1e-9)
    );
    if !registered.errors.is_empty() {
        println!("registration errors: {}", format_counts(&registered.errors));
    }
    if registered.tokens.is_empty() {
        return Err("no user could be registered".into());
    }

    let compress = args.compress.is_some();
    let url = rest::gateway_ws_url(
        &base,
        args.gateway_url.as_deref(),
        &gateway,
        args.api_version,
        compress,
    )?;

    // 2. Start the sessions.
    let rss_before = args.server_pid.map(sys::rss_kib).transpose()?;
    let n = registered.tokens.len();
    let threads = args.threads.min(n);
    println!(
        "opening {n} sessions to {url} at {}/s on {threads} threads",
        args.rate
    );
    let pool = pool::start(
        registered.tokens,
        &PoolCfg {
            urls: vec![url],
            compress,
            timeout,
            rate: args.rate,
            threads,
            intents: 0,
            capabilities: 0,
            observer: None,
            resumable: false,
            follow_reconnect: false,
        },
    )?;

    // 3. Wait until every session is READY or failed.
    let resolved_in_time = pool.wait_resolved();
    let all_resolved = Instant::now();
    if !resolved_in_time {
        println!("warning: gave up waiting for READY on some sessions");
    }
    println!(
        "{} sessions ready after {:.2} s; holding {} s",
        pool.ready(),
        all_resolved
            .saturating_duration_since(pool.start)
            .as_secs_f64(),
        args.hold
    );

    // Idle, then read RSS, then hold until --hold has passed.
    let hold = Duration::from_secs(args.hold);
    thread::sleep(Duration::from_secs(args.settle).min(hold));
    let rss_after = args.server_pid.map(sys::rss_kib).transpose()?;
    let open_at_rss = pool.open();
    thread::sleep(hold.saturating_sub(all_resolved.elapsed()));

    // 4. Close everything and collect the reports.
    let results = pool.stop()?;

    print_summary(&Summary {
        requested: args.sessions,
        compress,
        rate: args.rate,
        results,
        rss_before,
        rss_after,
        open_at_rss,
        total: run_started.elapsed(),
    });
    Ok(())
}

struct Summary {
    requested: usize,
    compress: bool,
    rate: f64,
    results: Vec<WorkerResult>,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    open_at_rss: usize,
    total: Duration,
}

fn print_summary(s: &Summary) {
    let reports = || s.results.iter().flat_map(|r| r.reports.iter());
    let not_started: usize = s.results.iter().map(|r| r.not_started).sum();
    let unfinished: usize = s.results.iter().map(|r| r.unfinished).sum();

    let mut latencies_ms: Vec<f64> = reports()
        .filter_map(|r| r.ready_latency)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    let ready = latencies_ms.len();

    let mut close_codes = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut dropped = 0usize;
    for r in reports() {
        match &r.failure {
            None => continue,
            Some(Failure::Closed(code)) => {
                let key = code.map_or_else(|| "no code".to_string(), |c| c.to_string());
                *close_codes.entry(key).or_insert(0) += 1;
            }
            Some(Failure::Error(e)) => *errors.entry(e.clone()).or_insert(0) += 1,
        }
        if r.ready_latency.is_some() {
            dropped += 1;
        }
    }
    if not_started > 0 {
        errors.insert("never started (run ended first)".to_string(), not_started);
    }
    if unfinished > 0 {
        errors.insert("did not finish after stop".to_string(), unfinished);
    }

    println!();
    println!(
        "sessions: {} requested, {ready} ready, {} failed (close codes: {})",
        s.requested,
        s.requested - ready,
        format_counts(&close_codes)
    );
    if !errors.is_empty() {
        println!("errors: {}", format_counts(&errors));
    }
    if dropped > 0 {
        println!("dropped after READY: {dropped}");
    }

    // Achieved rate: READYs per second between the first and the last READY.
    let first = reports().filter_map(|r| r.ready_at).min();
    let last = reports().filter_map(|r| r.ready_at).max();
    let achieved = match (first, last) {
        (Some(a), Some(b)) if ready > 1 && b > a => {
            format!("{:.1}/s", (ready - 1) as f64 / (b - a).as_secs_f64())
        }
        _ => "n/a".to_string(),
    };
    println!("connect rate: {:.1}/s target, {achieved} achieved", s.rate);

    let pct = |p: f64| {
        nearest_rank(&latencies_ms, p).map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"))
    };
    println!(
        "IDENTIFY->READY: p50 {}, p90 {}, p99 {}, max {}",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0)
    );

    let sent: u64 = reports().map(|r| r.heartbeats_sent).sum();
    let acked: u64 = reports().map(|r| r.acks).sum();
    let missed: u64 = reports().map(|r| r.missed_acks).sum();
    println!("heartbeats: {sent} sent, {acked} acked, {missed} missed acks");

    let messages: u64 = reports().map(|r| r.messages).sum();
    let zlib: u64 = reports().map(|r| r.zlib_messages).sum();
    println!("messages received: {messages} ({zlib} via zlib-stream)");
    if s.compress && zlib < messages {
        println!(
            "warning: zlib-stream was requested but the server sent some messages uncompressed"
        );
    }

    match (s.rss_before, s.rss_after) {
        (Some(before), Some(after)) => {
            let per = if s.open_at_rss > 0 {
                format!(
                    "{:.1} KiB",
                    (after as f64 - before as f64) / s.open_at_rss as f64
                )
            } else {
                "n/a".to_string()
            };
            println!(
                "server RSS: before {:.1} MiB, after {:.1} MiB, per idle session {per} ({} sessions open)",
                before as f64 / 1024.0,
                after as f64 / 1024.0,
                s.open_at_rss
            );
        }
        _ => println!("server RSS: not measured (pass --server-pid)"),
    }
    println!("total run time: {:.1} s", s.total.as_secs_f64());
}
