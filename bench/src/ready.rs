//! `spacebar-bench ready`: IDENTIFY -> READY for one user who is in many big
//! guilds.
//!
//! Timeline of a run:
//! 1. register `--members` users; user 0 (the measured user) creates
//!    `--guilds` guilds, finds each one's text channel and makes an invite;
//!    the other `--members` - 1 users (fillers) join every guild, so every
//!    guild has `--members` members;
//! 2. the measured user connects `--samples` times, one connection at a time:
//!    HELLO, IDENTIFY, READY (timed), close;
//! 3. prints the latency percentiles, READY's size and what it contains.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::session::{self, Failure, SessionCtx, Shared};
use crate::setup;
use crate::stats::{format_counts, nearest_rank};
use crate::target::{self, Compress, Target, MESSAGE_INTENTS};
use crate::{rest, sys, BoxError};

#[derive(Args)]
pub struct ReadyArgs {
    #[command(flatten)]
    target: Target,
    /// Guilds the measured user owns.
    #[arg(long, default_value_t = 100)]
    guilds: usize,
    /// Members per guild, the measured user included: N-1 filler users join
    /// every guild.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// IDENTIFY -> READY measurements (one fresh connection each, in sequence).
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Transport compression to ask the gateway for.
    #[arg(long, value_enum)]
    compress: Option<Compress>,
    /// REST requests in flight during setup (registration, guilds, joins).
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// IDENTIFY's intents (default GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT).
    #[arg(long, default_value_t = MESSAGE_INTENTS)]
    intents: u64,
    /// IDENTIFY's capabilities (Discord's web client sends e.g. 16381; bit
    /// 1<<10 asks for guilds in READY in the CLIENT_STATE_V2 shape).
    #[arg(long, default_value_t = 0)]
    capabilities: u64,
    /// Skip the setup and measure user 0 of an earlier run (its run id, as
    /// printed): logs in with `POST /auth/login`. The world is whatever that
    /// run built.
    #[arg(long)]
    reuse_run: Option<String>,
    /// PID of the server process, to report its CPU use while measuring.
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    quiet: target::Quiet,
}

pub fn run(args: ReadyArgs) -> Result<(), BoxError> {
    if args.guilds == 0 || args.members == 0 || args.samples == 0 {
        return Err("--guilds, --members and --samples must be at least 1".into());
    }
    let run_started = Instant::now();
    let timeout = args.target.timeout();
    let soft = sys::raise_nofile_limit()?;
    if soft < (args.setup_concurrency + 64) as libc::rlim_t {
        return Err(format!("the open-files limit ({soft}) is too low").into());
    }
    let base = args.target.base();
    let api = args.target.api();
    let run_id = args.reuse_run.clone().unwrap_or_else(target::run_id);
    let compress = args.compress.is_some();
    println!("{}", target::machine_note(&base));

    actix_rt::System::new().block_on(async {
        // 1. Setup over REST.
        let client = rest::client(timeout);
        let gateway = match &args.target.gateway_url {
            Some(url) => url.clone(),
            None => rest::discover_gateway(&client, &api).await?,
        };
        let url = rest::gateway_ws_url(
            &base,
            args.target.gateway_url.as_deref(),
            &gateway,
            args.target.api_version,
            compress,
        )?;
        let (user, world) = match &args.reuse_run {
            Some(run) => {
                let token = rest::login(&client, &api, 0, run).await?;
                (token, format!("user 0 of run {run}"))
            }
            None => build_world(&client, &api, &args, &run_id).await?,
        };

        // 2. Repeated IDENTIFY -> READY, one connection at a time.
        println!(
            "measuring IDENTIFY->READY for {world}: {} connections to {url}, one at a time",
            args.samples
        );
        args.quiet.wait();
        let cpu = sys::CpuWindow::start(args.server_pid.as_slice());
        let (_stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let url: Rc<str> = url.into();
        let mut latencies = Vec::with_capacity(args.samples);
        let mut sizes = Vec::with_capacity(args.samples);
        let mut wire_sizes = Vec::with_capacity(args.samples);
        let mut first_payload = None;
        let mut errors = BTreeMap::new();
        for k in 0..args.samples {
            let report = session::run(SessionCtx {
                index: k,
                client: client.clone(),
                url: url.clone(),
                token: user.clone(),
                compress,
                timeout,
                shutdown: stop_rx.clone(),
                shared: shared.clone(),
                intents: args.intents,
                capabilities: args.capabilities,
                close_after_ready: true,
                keep_ready: first_payload.is_none(),
                observer: None,
                drop_signal: None,
                reconnect_url: None,
            })
            .await;
            match (report.ready_latency, report.failure) {
                (Some(latency), _) => {
                    latencies.push(latency.as_secs_f64() * 1000.0);
                    sizes.extend(report.ready_bytes);
                    wire_sizes.extend(report.ready_wire_bytes);
                    if first_payload.is_none() {
                        first_payload = report.ready_payload;
                    }
                }
                (None, Some(Failure::Closed(code))) => {
                    let key = code.map_or_else(|| "no code".into(), |c| format!("closed {c}"));
                    *errors.entry(key).or_insert(0) += 1;
                }
                (None, Some(Failure::Error(e))) => *errors.entry(e).or_insert(0) += 1,
                (None, None) => *errors.entry("no READY".to_string()).or_insert(0) += 1,
            }
        }

        let cpu = cpu.describe();
        // 3. Figures.
        let first = latencies.first().copied();
        let mut sorted = latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            nearest_rank(&sorted, p).map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"))
        };
        println!();
        println!(
            "samples: {} ready, {} failed{}",
            latencies.len(),
            args.samples - latencies.len(),
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", format_counts(&errors))
            }
        );
        println!(
            "IDENTIFY->READY: p50 {}, p90 {}, p99 {}, max {}; first connection {}",
            pct(50.0),
            pct(90.0),
            pct(99.0),
            pct(100.0),
            first.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"))
        );
        if let Some(&size) = sizes.first() {
            let wire = match wire_sizes.first() {
                Some(&w) if compress => format!(", {w} bytes on the wire (zlib-stream)"),
                _ => String::new(),
            };
            let varies = if sizes.iter().any(|&s| s != size) {
                " (size varied between samples)"
            } else {
                ""
            };
            println!(
                "READY size: {size} bytes of JSON ({:.2} MiB){wire}{varies}",
                size as f64 / (1024.0 * 1024.0)
            );
        }
        if let Some(payload) = first_payload {
            match describe_ready(&payload) {
                Ok(text) => println!("READY contents: {text}"),
                Err(e) => println!("READY contents: could not parse ({e})"),
            }
        }
        println!("CPU while measuring (100% = one core): {cpu}");
        println!(
            "total run time: {:.1} s",
            run_started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

/// Registration, guilds and joins for a fresh world; returns the measured
/// user's token and a description of the world.
async fn build_world(
    client: &awc::Client,
    api: &str,
    args: &ReadyArgs,
    run_id: &str,
) -> Result<(String, String), BoxError> {
    println!(
        "registering {} users at {api} (run id {run_id}, {} requests at a time)",
        args.members, args.setup_concurrency
    );
    let reg = rest::register_all(client, api, args.members, args.setup_concurrency, run_id).await;
    println!("registration: {}", reg.describe(args.members));
    let tokens = reg.tokens;
    let Some(user) = tokens.first() else {
        return Err("no user could be registered".into());
    };
    let made = setup::create_guilds(
        client,
        api,
        user,
        args.guilds,
        args.setup_concurrency,
        run_id,
    )
    .await;
    println!("guilds (create, channels, invite): {}", made.describe());
    if made.ok.is_empty() {
        return Err("no guild could be set up (see the errors above)".into());
    }
    let (joins, failed_users) =
        setup::join_all(client, api, &tokens[1..], &made.ok, args.setup_concurrency).await;
    println!(
        "joins ({} filler users x {} guilds): {}",
        tokens.len() - 1,
        made.ok.len(),
        joins.describe()
    );
    if !failed_users.is_empty() || made.ok.len() < args.guilds {
        println!(
            "warning: the world is smaller than asked: {} guilds, {} joins failed",
            made.ok.len(),
            joins.failed.len()
        );
    }
    let expected_members = 1 + joins.ok.len() / made.ok.len();
    Ok((
        user.clone(),
        format!(
            "a user in {} guilds x ~{expected_members} members (run id {run_id})",
            made.ok.len()
        ),
    ))
}

#[derive(Deserialize)]
struct ReadyEnvelope<'a> {
    #[serde(borrow)]
    d: &'a RawValue,
}

#[derive(Deserialize)]
struct GuildCounts {
    #[serde(default)]
    members: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    member_count: Option<u64>,
    #[serde(default)]
    channels: Option<Vec<IgnoredAny>>,
}

/// "100 guilds (member_count total 100000, 5000 members listed, 300
/// channels); largest fields: guilds 1.2 MiB, users 20 KiB, ..."
fn describe_ready(payload: &[u8]) -> Result<String, serde_json::Error> {
    let env: ReadyEnvelope<'_> = serde_json::from_slice(payload)?;
    let fields: BTreeMap<&str, &RawValue> = serde_json::from_str(env.d.get())?;
    let mut out = String::new();
    if let Some(guilds) = fields.get("guilds") {
        let guilds: Vec<GuildCounts> = serde_json::from_str(guilds.get())?;
        let member_count: u64 = guilds.iter().filter_map(|g| g.member_count).sum();
        let listed: usize = guilds
            .iter()
            .filter_map(|g| g.members.as_ref().map(Vec::len))
            .sum();
        let channels: usize = guilds
            .iter()
            .filter_map(|g| g.channels.as_ref().map(Vec::len))
            .sum();
        out.push_str(&format!(
            "{} guilds (member_count total {member_count}, {listed} members listed, \
             {channels} channels)",
            guilds.len()
        ));
    } else {
        out.push_str("no guilds field");
    }
    for key in ["users", "merged_members"] {
        if let Some(v) = fields.get(key) {
            if let Ok(list) = serde_json::from_str::<Vec<IgnoredAny>>(v.get()) {
                out.push_str(&format!(", {key}: {}", list.len()));
            }
        }
    }
    let mut by_size: Vec<(&str, usize)> = fields.iter().map(|(k, v)| (*k, v.get().len())).collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    out.push_str("; largest fields:");
    for (i, (key, len)) in by_size.iter().take(5).enumerate() {
        out.push_str(&format!(
            "{} {key} {}",
            if i == 0 { "" } else { "," },
            human(*len)
        ));
    }
    Ok(out)
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_ready() {
        let payload = br#"{"op":0,"t":"READY","s":1,"d":{"v":9,
            "guilds":[{"id":"1","member_count":3,"members":[{},{}],"channels":[{}]},
                      {"id":"2","member_count":2,"channels":[{},{}]}],
            "users":[{"id":"5"}],"session_id":"abc"}}"#;
        let text = describe_ready(payload).unwrap();
        assert!(
            text.starts_with(
                "2 guilds (member_count total 5, 2 members listed, 3 channels), users: 1; \
                 largest fields: guilds"
            ),
            "{text}"
        );
        assert!(describe_ready(b"not json").is_err());
        assert_eq!(human(10), "10 B");
        assert_eq!(human(2048), "2.0 KiB");
        assert_eq!(human(3 << 20), "3.00 MiB");
    }
}
