//! `spacebar-bench presence`: a presence storm. `--members` users of one guild come online at
//! `--connect-rate`; every PRESENCE_UPDATE the sessions receive is counted (everyone telling
//! everyone is members × (members − 1)), and IDENTIFY -> READY is timed while it happens. Then,
//! with the sessions idle, the server's memory per session.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use crate::fanout::{new_nonce_base, wait_until_quiet, Deliveries};
use crate::pool::{self, PoolCfg};
use crate::session::DispatchObserver;
use crate::stats::{format_counts, nearest_rank};
use crate::target::{self, Compress, Target, MESSAGE_INTENTS};
use crate::{rest, setup, sys, BoxError};

#[derive(Args)]
pub struct StormArgs {
    #[command(flatten)]
    target: Target,
    /// Members of the one guild, the owner included; each comes online with one session.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    #[command(flatten)]
    opening: target::Opening,
    /// Transport compression to ask the gateway for.
    #[arg(long, value_enum)]
    compress: Option<Compress>,
    /// IDENTIFY's intents (people's clients send none; servers ignore them for people).
    #[arg(long, default_value_t = MESSAGE_INTENTS)]
    intents: u64,
    /// IDENTIFY's capabilities (Discord's web client sends e.g. 16381).
    #[arg(long, default_value_t = 0)]
    capabilities: u64,
    /// PID of the server, for its CPU during the storm and its memory per idle session.
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    quiet: target::Quiet,
}

pub fn run(args: StormArgs) -> Result<(), BoxError> {
    if args.members < 2 || args.opening.threads == 0 || args.opening.setup_concurrency == 0 {
        return Err("--members must be at least 2; --threads, --setup-concurrency 1".into());
    }
    let timeout = args.target.timeout();
    let needed = args.members + args.opening.setup_concurrency + 64;
    sys::ensure_open_files(needed, args.members, "--members")?;
    let base = args.target.base();
    let api = args.target.api();
    let run_id = target::run_id();
    println!("{}", target::machine_note(&base));
    let (gateway, tokens) = actix_rt::System::new().block_on(async {
        let client = rest::client(timeout);
        let gateway = match &args.target.gateway_url {
            Some(url) => url.clone(),
            None => rest::discover_gateway(&client, &api).await?,
        };
        let (tokens, _) = setup::populate(
            &client,
            &api,
            args.members,
            1,
            args.opening.setup_concurrency,
            &run_id,
        )
        .await?;
        Ok::<_, BoxError>((gateway, tokens))
    })?;
    let url = rest::gateway_ws_url(
        &base,
        args.target.gateway_url.as_deref(),
        &gateway,
        args.target.api_version,
        args.compress.is_some(),
    )?;

    args.quiet.wait();
    let pids: Vec<u32> = args.server_pid.into_iter().collect();
    let rss_before = args.server_pid.map(sys::rss_kib).transpose()?;
    let sessions = tokens.len();
    println!(
        "{sessions} members of one guild come online at {}/s",
        args.opening.connect_rate
    );
    let seen = Arc::new(Deliveries::new(Instant::now(), new_nonce_base(), 0, 0));
    let observer: Arc<dyn DispatchObserver> = seen.clone();
    let cpu = sys::CpuWindow::start(&pids);
    let started = Instant::now();
    let pool = pool::start_ready(
        tokens,
        &PoolCfg {
            urls: vec![url],
            compress: args.compress.is_some(),
            timeout,
            rate: args.opening.connect_rate,
            threads: args.opening.threads,
            intents: args.intents,
            capabilities: args.capabilities,
            observer: Some(observer),
            resumable: false,
            follow_reconnect: false,
        },
    )?;
    wait_until_quiet(&seen, timeout);
    // The last second was quiet: the storm ended a second before.
    let storm_secs = (started.elapsed().as_secs_f64() - 1.0).max(0.0);
    let cpu_line = cpu.describe();
    let server_cpu = cpu.server_cpu();
    let open = pool.open();
    let rss_after = args.server_pid.map(sys::rss_kib).transpose()?;
    let results = pool.stop()?;

    let mut latencies: Vec<f64> = results
        .iter()
        .flat_map(|r| r.reports.iter())
        .filter_map(|r| r.ready_latency)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"));
    let others = seen.others(false);
    let presences = others.get("PRESENCE_UPDATE").copied().unwrap_or(0);
    println!();
    println!(
        "sessions: {sessions} opened, {} ready, {open} open after the storm",
        latencies.len()
    );
    println!(
        "IDENTIFY->READY while members came online: p50 {}, p99 {}, max {}",
        ms(nearest_rank(&latencies, 50.0)),
        ms(nearest_rank(&latencies, 99.0)),
        ms(nearest_rank(&latencies, 100.0)),
    );
    println!(
        "PRESENCE_UPDATEs received: {presences} in total, {:.1} per session (everyone telling \
         everyone: {})",
        presences as f64 / sessions as f64,
        sessions * (sessions - 1)
    );
    println!(
        "all dispatches after READY (all sessions): {}",
        format_counts(&others)
    );
    println!("CPU during the storm ({storm_secs:.1} s, 100% = one core): {cpu_line}");
    if let Some(cpu) = server_cpu {
        println!(
            "server CPU for the storm: {:.2} s ({:.0} µs per session coming online)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / sessions as f64
        );
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "server RSS: before {:.1} MiB, after {:.1} MiB, per idle session {:.1} KiB ({open} \
             sessions open)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / open.max(1) as f64
        );
    }
    Ok(())
}
