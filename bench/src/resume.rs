//! `spacebar-bench resume`: a resume storm. Every session drops its socket at
//! the same moment while messages keep flowing, reconnects and RESUMEs; the
//! tool measures how long until everyone is back and checks that no dispatch
//! was lost, repeated or reordered.
//!
//! Timeline of a run:
//! 1. register `--posters` + `--sessions` users; poster 0 creates `--guilds`
//!    guilds (text channel + invite each) and the other posters join them all;
//!    session user j joins guild j % G only, so every guild has about
//!    sessions / guilds members holding a session (and the posters, offline);
//! 2. every session user IDENTIFYs (at `--connect-rate`) and reads READY and
//!    what follows; the tool waits until the server has gone quiet (the
//!    presence storm of everyone coming online);
//! 3. the posters post `--rate` messages per second, round-robin over the
//!    guilds' channels, each with a unique number (content and nonce), for the
//!    whole run;
//! 4. after `--warmup` s, every session drops its TCP connection at once (no
//!    close frame), reconnects and sends RESUME {token, session_id, seq}; the
//!    server should replay what it missed, in order, then send RESUMED;
//! 5. `--after` s after the last RESUMED, posting stops; the tool waits for the
//!    deliveries to settle, closes the sessions and checks every session: its
//!    sequence numbers from READY on are consecutive (no gaps, no repeats, in
//!    order, the replay continuing from the seq it sent) and the messages it
//!    saw are exactly the ones posted OK to its guild.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;

use crate::fanout::{self, Deliveries, PostLog, PostPlan};
use crate::pool::{self, PoolCfg, WorkerResult};
use crate::session::{DispatchObserver, Failure, SessionReport};
use crate::setup::{self, GuildInfo};
use crate::stats::{format_counts, nearest_rank};
use crate::target::{self, Compress, Target, MESSAGE_INTENTS};
use crate::{rest, sys, BoxError};

#[derive(Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    target: Target,
    /// Gateway sessions (one user each), spread evenly over the guilds.
    #[arg(long, default_value_t = 5000)]
    sessions: usize,
    /// Guilds; each message reaches the sessions of one guild
    /// (sessions / guilds recipients).
    #[arg(long, default_value_t = 50)]
    guilds: usize,
    /// Messages posted per second in total, round-robin over the guilds, for
    /// the whole run.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of posting before every session drops its socket.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Seconds of posting after the last session has resumed.
    #[arg(long, default_value_t = 5.0)]
    after: f64,
    /// Transport compression to ask the gateway for (on both connections).
    #[arg(long, value_enum)]
    compress: Option<Compress>,
    /// Posting users (members of every guild, without a gateway session), i.e.
    /// at most this many POSTs in flight.
    #[arg(long, default_value_t = 8)]
    posters: usize,
    /// Gateway sessions opened (IDENTIFY) per second before the storm.
    #[arg(long, default_value_t = 250.0)]
    connect_rate: f64,
    /// Client threads (one actix-rt system each) for the gateway sessions.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// REST requests in flight during setup (registration, guilds, joins).
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Longest wait, in seconds, for the server to go quiet after every
    /// session is READY (no dispatch for 1 s), before posting starts.
    #[arg(long, default_value_t = 120)]
    settle: u64,
    /// Seconds to wait for outstanding deliveries after posting stopped.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// IDENTIFY's intents (default GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT).
    #[arg(long, default_value_t = MESSAGE_INTENTS)]
    intents: u64,
    /// PID of the server process, to report its CPU use during the storm.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Base URLs of the nodes of a cluster (comma-separated): session i
    /// connects to node i % N, at the gateway that node advertises; setup and
    /// posting stay on --url.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Instead of every session dropping its socket, drain the first of
    /// --nodes by sending SIGTERM to this PID: its sessions are told to
    /// reconnect (op 7) and RESUME on the next node; the others stay.
    #[arg(long, requires = "nodes", conflicts_with = "kill_pid")]
    drain_pid: Option<i32>,
    /// Instead of every session dropping its socket, kill the first of --nodes
    /// with SIGKILL (this PID): its sessions' connections break, their RESUME
    /// on the next node is refused (op 9) and they IDENTIFY there; the others
    /// stay, and must miss nothing.
    #[arg(long, requires = "nodes")]
    kill_pid: Option<i32>,
    #[command(flatten)]
    quiet: target::Quiet,
}

/// Forwards every dispatch to [`Deliveries`] and notes the ones other than
/// MESSAGE_CREATE that arrive while posting (nothing else should happen then:
/// a drop and RESUME changes no presence), with a few samples.
struct StormObserver {
    deliveries: Arc<Deliveries>,
    /// When the drop signal was sent.
    storm_at: OnceLock<Instant>,
    /// Set when the tool starts closing the sessions (their users going
    /// offline is expected then).
    closing: AtomicBool,
    noted: Mutex<Noted>,
}

#[derive(Default)]
struct Noted {
    /// (from the drop on, event) -> count.
    counts: BTreeMap<(bool, String), usize>,
    samples: Vec<String>,
}

/// Samples of unexpected dispatches kept for the summary.
const SAMPLES: usize = 5;

impl DispatchObserver for StormObserver {
    fn dispatch(&self, session: usize, event: &str, d: &str, at: Instant) {
        self.deliveries.dispatch(session, event, d, at);
        if event == "MESSAGE_CREATE"
            || !self.deliveries.posting.load(Ordering::Relaxed)
            || self.closing.load(Ordering::Relaxed)
        {
            return;
        }
        let storm = self.storm_at.get().copied();
        let Ok(mut noted) = self.noted.lock() else {
            return;
        };
        *noted
            .counts
            .entry((storm.is_some(), event.to_string()))
            .or_insert(0) += 1;
        if noted.samples.len() < SAMPLES {
            let when = match storm {
                Some(storm) => format!(
                    "{:+.3} s after the drop signal",
                    at.saturating_duration_since(storm).as_secs_f64()
                ),
                None => "before the drop".to_string(),
            };
            let d: String = d.chars().take(240).collect();
            noted
                .samples
                .push(format!("session {session}, {when}: {event} {d}"));
        }
    }
}

impl StormObserver {
    fn print(&self) {
        let Ok(noted) = self.noted.lock() else {
            return;
        };
        for (after, label) in [(false, "before the drop"), (true, "from the drop on")] {
            let counts: BTreeMap<String, usize> = noted
                .counts
                .iter()
                .filter(|((a, _), _)| *a == after)
                .map(|((_, e), n)| (e.clone(), *n))
                .collect();
            println!(
                "other dispatches while posting, {label}, until the tool closed the sessions \
                 (all sessions): {}",
                format_counts(&counts)
            );
        }
        for sample in &noted.samples {
            println!("  e.g. {sample}");
        }
    }
}

/// The world built over REST.
struct World {
    gateway: String,
    posters: Vec<String>,
    guilds: Vec<GuildInfo>,
    /// Session users' tokens, and the guild (index into `guilds`) of each.
    sessions: Vec<String>,
    guild_of: Vec<usize>,
}

/// What the coordinator saw around the storm.
struct Storm {
    /// When the drop signal was sent.
    at: Instant,
    /// Sessions open (READY, not lost) when it was sent.
    open: usize,
    /// Sessions that should resume (all open ones, or a drained node's).
    moving: usize,
    /// When every session had resumed or failed (or the wait gave up).
    settled: Instant,
    all_settled: bool,
    cpu: String,
    /// The node was killed: its sessions IDENTIFY again rather than resume.
    killed: bool,
}

pub fn run(args: ResumeArgs) -> Result<(), BoxError> {
    if args.guilds == 0 || args.sessions == 0 || args.posters == 0 || args.threads == 0 {
        return Err("--guilds, --sessions, --posters and --threads must be at least 1".into());
    }
    for (name, v) in [("--rate", args.rate), ("--connect-rate", args.connect_rate)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!("{name} must be a positive number").into());
        }
    }
    for (name, v) in [("--warmup", args.warmup), ("--after", args.after)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!("{name} must be a number >= 0").into());
        }
    }
    let run_started = Instant::now();
    let timeout = args.target.timeout();
    // Posting never runs longer than this (the storm's wait is bounded too).
    let max_posting = args.warmup + args.after + storm_wait(timeout).as_secs_f64() + 10.0;
    let cap = (args.rate * max_posting).ceil() as usize;
    if cap > u32::MAX as usize / 2 {
        return Err("--rate is too high for this run's length".into());
    }
    let needed = args.sessions + args.setup_concurrency + args.posters + 64;
    sys::ensure_open_files(needed, args.sessions, "--sessions")?;

    let base = args.target.base();
    let api = args.target.api();
    let run_id = target::run_id();
    println!("{}", target::machine_note(&base));
    let per_guild = args.sessions as f64 / args.guilds as f64;
    println!(
        "plan: {} sessions in {} guilds (~{per_guild:.0} each); {} msg/s x ~{per_guild:.0} \
         recipients = ~{:.0} deliveries/s; all sessions drop and RESUME after {} s of messages",
        args.sessions,
        args.guilds,
        args.rate,
        args.rate * per_guild,
        args.warmup
    );

    // 1. Setup over REST.
    let world = actix_rt::System::new().block_on(build_world(&args, &api, &run_id))?;

    // 2. One gateway session per session user.
    let compress = args.compress.is_some();
    let urls = match args.nodes.is_empty() {
        true => vec![rest::gateway_ws_url(
            &base,
            args.target.gateway_url.as_deref(),
            &world.gateway,
            args.target.api_version,
            compress,
        )?],
        false => actix_rt::System::new().block_on(rest::node_gateways(
            &rest::client(timeout),
            &args.nodes,
            args.target.api_version,
            compress,
        ))?,
    };
    let url = urls.join(", ");
    let n = world.sessions.len();
    let epoch = Instant::now();
    let nonce_base = fanout::new_nonce_base();
    let prealloc = (per_guild.ceil() as usize).saturating_mul(cap);
    let deliveries = Arc::new(Deliveries::new(epoch, nonce_base, cap as u64, prealloc));
    println!(
        "opening {n} sessions to {url} at {}/s on {} threads",
        args.connect_rate, args.threads
    );
    let watch = Arc::new(StormObserver {
        deliveries: deliveries.clone(),
        storm_at: OnceLock::new(),
        closing: AtomicBool::new(false),
        noted: Mutex::new(Noted::default()),
    });
    let observer: Arc<dyn DispatchObserver> = watch.clone();
    let pool = pool::start_ready(
        world.sessions.clone(),
        &PoolCfg {
            urls: urls.clone(),
            compress,
            timeout,
            rate: args.connect_rate,
            threads: args.threads,
            intents: args.intents,
            capabilities: 0,
            observer: Some(observer),
            resumable: true,
            follow_reconnect: args.drain_pid.is_some() || args.kill_pid.is_some(),
        },
    )?;
    fanout::wait_until_quiet(&deliveries, Duration::from_secs(args.settle));
    args.quiet.wait();
    let idle_cpu = sys::CpuWindow::start(args.server_pid.as_slice());
    thread::sleep(Duration::from_secs(1));
    println!(
        "CPU with the sessions idle (1 s, 100% = one core): {}",
        idle_cpu.describe()
    );

    // 3.-4. Post for the whole run; the storm in the middle.
    println!(
        "posting {}/s from {} posters over {} channel(s); the drop comes after {} s",
        args.rate,
        world.posters.len(),
        world.guilds.len(),
        args.warmup
    );
    deliveries.posting.store(true, Ordering::Relaxed);
    let stop_posting = AtomicBool::new(false);
    let post_start = Instant::now() + Duration::from_millis(100);
    let posting_cpu = sys::CpuWindow::start(args.server_pid.as_slice());
    let (post_log, storm) = thread::scope(|scope| {
        let posting = scope.spawn(|| {
            actix_rt::System::new().block_on(async {
                let plan = PostPlan {
                    client: rest::client(timeout),
                    api: api.clone(),
                    tokens: &world.posters,
                    guilds: &world.guilds,
                    epoch,
                    start: post_start,
                    rate: args.rate,
                    total: cap,
                    nonce_base,
                    deadline: post_start + Duration::from_secs_f64(max_posting),
                    stop: Some(&stop_posting),
                    label: "resume",
                };
                fanout::post_all(&plan, world.posters.len()).await
            })
        });
        thread::sleep(
            (post_start + Duration::from_secs_f64(args.warmup))
                .saturating_duration_since(Instant::now()),
        );
        // Draining or killed: the sessions on the first node (i % N == 0) move.
        let moving = n.div_ceil(urls.len());
        let fault = match (args.drain_pid, args.kill_pid) {
            (Some(pid), _) => Fault::Node {
                pid,
                moving,
                kill: false,
            },
            (None, Some(pid)) => Fault::Node {
                pid,
                moving,
                kill: true,
            },
            (None, None) => Fault::DropAll,
        };
        let storm = storm(&pool, &watch, fault, args.server_pid, timeout);
        thread::sleep(Duration::from_secs_f64(args.after));
        stop_posting.store(true, Ordering::Relaxed);
        posting
            .join()
            .map(|log| (log, storm))
            .map_err(|_| BoxError::from("the posting thread panicked"))
    })?;
    if post_log.ok.last() == Some(&true) {
        println!("warning: posting hit its cap of {cap} messages before the run was over");
    }

    // 5. Drain, close, check.
    let expected = expected_deliveries(&post_log, &world);
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain);
    let mut last = (deliveries.received.load(Ordering::Relaxed), Instant::now());
    loop {
        let received = deliveries.received.load(Ordering::Relaxed);
        let now = Instant::now();
        if received >= expected || now >= drain_deadline {
            break;
        }
        if received != last.0 {
            last = (received, now);
        } else if now - last.1 >= Duration::from_secs(2) {
            break; // nothing more is coming
        }
        thread::sleep(Duration::from_millis(20));
    }
    // A little longer, so late duplicates show up too.
    thread::sleep(Duration::from_millis(500));
    let posting_secs = post_start.elapsed().as_secs_f64();
    let posting_cpu = posting_cpu.describe();
    let open_at_end = pool.open();
    watch.closing.store(true, Ordering::Relaxed);
    let results = pool.stop()?;
    let log = match deliveries.log.lock() {
        Ok(mut log) => std::mem::take(&mut *log),
        Err(_) => return Err("delivery log poisoned".into()),
    };

    let reports: Vec<&SessionReport> = results.iter().flat_map(|r| r.reports.iter()).collect();
    print_sessions(n, &results, &reports, storm.open, open_at_end);
    println!(
        "other dispatches after READY, before posting (all sessions): {}",
        format_counts(&deliveries.others(false))
    );
    watch.print();
    let resume_ok = print_resume(&reports, &storm);
    let seq_ok = print_sequences(&reports);
    let attempted = post_log.sent_us.iter().filter(|t| **t != u32::MAX).count();
    fanout::print_posting(&post_log, attempted, args.rate, world.posters.len());
    let messages_ok = print_messages(
        log,
        &post_log,
        &world,
        &reports,
        &storm,
        epoch,
        deliveries.unreadable.load(Ordering::Relaxed),
    );
    println!(
        "CPU during the storm (drop signal -> all resumed, {:.2} s): {}",
        (storm.settled - storm.at).as_secs_f64(),
        storm.cpu
    );
    println!("CPU over the whole posting ({posting_secs:.1} s): {posting_cpu}");
    println!(
        "result: {}",
        if resume_ok && seq_ok && messages_ok && storm.killed {
            "every session of the killed node READY elsewhere; no dispatch missed, repeated or \
             out of order on the others"
        } else if resume_ok && seq_ok && messages_ok {
            "every session resumed, no dispatch missed, repeated or out of order"
        } else {
            "FAILED (see above)"
        }
    );
    println!(
        "total run time: {:.1} s",
        run_started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What moves the sessions.
enum Fault {
    /// Every session drops its socket and RESUMEs.
    DropAll,
    /// SIGTERM to a node: its `moving` sessions are told to reconnect and
    /// RESUME on another node; or (`kill`) SIGKILL: their connections break,
    /// and they RESUME elsewhere, are refused (op 9) and IDENTIFY again.
    Node { pid: i32, moving: usize, kill: bool },
}

/// Longest wait for every session to resume: reconnect, HELLO, RESUMED.
fn storm_wait(timeout: Duration) -> Duration {
    timeout * 3 + Duration::from_secs(5)
}

/// Registers the users, builds the guilds and has everyone join.
async fn build_world(args: &ResumeArgs, api: &str, run_id: &str) -> Result<World, BoxError> {
    let client = rest::client(args.target.timeout());
    let gateway = match &args.target.gateway_url {
        Some(url) => url.clone(),
        None => rest::discover_gateway(&client, api).await?,
    };
    let users = args.posters + args.sessions;
    println!(
        "registering {users} users ({} posters, {} with a session) at {api} (run id {run_id}, \
         {} requests at a time)",
        args.posters, args.sessions, args.setup_concurrency
    );
    let reg = rest::register_all(&client, api, users, args.setup_concurrency, run_id).await;
    println!("registration: {}", reg.describe(users));
    let mut tokens = reg.tokens;
    if tokens.len() <= args.posters {
        return Err("too few users could be registered (see the errors above)".into());
    }
    let sessions = tokens.split_off(args.posters);
    let mut posters = tokens;
    let made = setup::create_guilds(
        &client,
        api,
        &posters[0],
        args.guilds,
        args.setup_concurrency,
        run_id,
    )
    .await;
    println!("guilds (create, channels, invite): {}", made.describe());
    if made.ok.len() < args.guilds {
        return Err("could not set up every guild (see the errors above)".into());
    }
    let guilds = made.ok;
    let (joins, failed) =
        setup::join_all(&client, api, &posters[1..], &guilds, args.setup_concurrency).await;
    println!(
        "poster joins ({} posters x {} guilds): {}",
        posters.len() - 1,
        guilds.len(),
        joins.describe()
    );
    // Poster 0 owns the guilds; joiner j is poster j + 1.
    let mut i = 0usize;
    posters.retain(|_| {
        let keep = i == 0 || !failed.contains(&(i - 1));
        i += 1;
        keep
    });
    let pairs: Vec<(usize, usize)> = (0..sessions.len()).map(|j| (j, j % guilds.len())).collect();
    let (joins, failed) = setup::join_pairs(
        &client,
        api,
        &sessions,
        &guilds,
        &pairs,
        args.setup_concurrency,
    )
    .await;
    println!("session user joins (one guild each): {}", joins.describe());
    if !failed.is_empty() {
        println!(
            "warning: {} users could not join their guild and stay offline",
            failed.len()
        );
    }
    let (sessions, guild_of): (Vec<String>, Vec<usize>) = sessions
        .into_iter()
        .zip(pairs)
        .filter(|(_, (j, _))| !failed.contains(j))
        .map(|(token, (_, g))| (token, g))
        .unzip();
    if sessions.is_empty() {
        return Err("no session user could join a guild".into());
    }
    Ok(World {
        gateway,
        posters,
        guilds,
        sessions,
        guild_of,
    })
}

/// Sends the drop signal and waits until every open session has resumed or
/// failed (bounded), printing progress.
fn storm(
    pool: &pool::Pool,
    watch: &StormObserver,
    fault: Fault,
    server_pid: Option<u32>,
    timeout: Duration,
) -> Storm {
    let open = pool.open();
    let dropped_before = pool.dropped();
    let cpu = sys::CpuWindow::start(server_pid.as_slice());
    let at = Instant::now();
    let _ = watch.storm_at.set(at);
    let killed = matches!(fault, Fault::Node { kill: true, .. });
    let moving = match fault {
        Fault::DropAll => {
            pool.drop_all();
            println!("drop signal: {open} open sessions drop their sockets and RESUME");
            open
        }
        Fault::Node { pid, moving, kill } => {
            let (signal, name) = match kill {
                true => (libc::SIGKILL, "SIGKILL"),
                false => (libc::SIGTERM, "SIGTERM"),
            };
            // SAFETY: a signal to the process the operator named.
            if unsafe { libc::kill(pid, signal) } != 0 {
                println!("warning: {name} to {pid} failed");
            }
            match kill {
                true => println!(
                    "kill -9: SIGKILL to node {pid}; its {moving} sessions IDENTIFY elsewhere"
                ),
                false => {
                    println!("drain: SIGTERM to node {pid}; its {moving} sessions RESUME elsewhere")
                }
            }
            moving
        }
    };
    let deadline = at + storm_wait(timeout);
    let mut next_progress = at + Duration::from_secs(5);
    let all_settled = loop {
        let resumed = pool.resumed();
        let failed = pool.dropped() - dropped_before;
        if resumed + failed >= moving {
            break true;
        }
        let now = Instant::now();
        if now >= deadline {
            break false;
        }
        if now >= next_progress {
            println!(
                "  {:.1} s: {resumed} resumed, {failed} failed",
                (now - at).as_secs_f64()
            );
            next_progress += Duration::from_secs(5);
        }
        thread::sleep(Duration::from_millis(2));
    };
    let settled = Instant::now();
    if !all_settled {
        println!("warning: gave up waiting for RESUMED on some sessions");
    }
    println!(
        "{} resumed, {} failed, {:.2} s after the drop signal",
        pool.resumed(),
        pool.dropped() - dropped_before,
        (settled - at).as_secs_f64()
    );
    Storm {
        at,
        open,
        moving,
        settled,
        all_settled,
        cpu: cpu.describe(),
        killed,
    }
}

/// Messages posted OK to each guild, ascending.
fn posted_per_guild(post_log: &PostLog, guilds: usize) -> Vec<Vec<u32>> {
    let mut per_guild = vec![Vec::new(); guilds];
    for (m, ok) in post_log.ok.iter().enumerate() {
        if *ok {
            if let (Some(list), Ok(m32)) = (per_guild.get_mut(m % guilds), u32::try_from(m)) {
                list.push(m32);
            }
        }
    }
    per_guild
}

/// Every session sees every message posted OK to its guild.
fn expected_deliveries(post_log: &PostLog, world: &World) -> u64 {
    let per_guild = posted_per_guild(post_log, world.guilds.len());
    world
        .guild_of
        .iter()
        .map(|g| per_guild.get(*g).map_or(0, Vec::len) as u64)
        .sum()
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"))
}

/// p50/p90/p99/max of durations in ms (sorts `v`).
fn spread(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "p50 {}, p90 {}, p99 {}, max {}",
        ms(nearest_rank(v, 50.0)),
        ms(nearest_rank(v, 90.0)),
        ms(nearest_rank(v, 99.0)),
        ms(nearest_rank(v, 100.0))
    )
}

fn print_sessions(
    requested: usize,
    results: &[WorkerResult],
    reports: &[&SessionReport],
    open_at_storm: usize,
    open_at_end: usize,
) {
    let ready = reports.iter().filter(|r| r.ready_latency.is_some()).count();
    let mut close_codes = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for r in reports {
        let phase = match (&r.ready_latency, &r.resume) {
            (None, _) => "before READY",
            (Some(_), None) => "after READY, before the drop",
            (Some(_), Some(x)) if x.resumed_at.is_none() => "resuming",
            (Some(_), Some(_)) => "after RESUMED",
        };
        match &r.failure {
            None => {}
            Some(Failure::Closed(code)) => {
                let code = code.map_or_else(|| "no code".to_string(), |c| c.to_string());
                *close_codes.entry(format!("{code} {phase}")).or_insert(0) += 1;
            }
            Some(Failure::Error(e)) => *errors.entry(format!("{e} ({phase})")).or_insert(0) += 1,
        }
    }
    let mut latencies: Vec<f64> = reports
        .iter()
        .filter_map(|r| r.ready_latency)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let lost: usize = results.iter().map(|r| r.not_started + r.unfinished).sum();
    println!();
    println!(
        "sessions: {requested} opened, {ready} ready (IDENTIFY->READY p50 {}, p99 {}), \
         {open_at_storm} open at the drop, {open_at_end} at the end; close codes from the \
         server: {}",
        ms(nearest_rank(&latencies, 50.0)),
        ms(nearest_rank(&latencies, 99.0)),
        format_counts(&close_codes)
    );
    if !errors.is_empty() {
        println!("session errors: {}", format_counts(&errors));
    }
    if lost > 0 {
        println!("warning: {lost} sessions never started or did not finish in time");
    }
}

/// The storm's figures; `true` if every session that dropped has resumed.
fn print_resume(reports: &[&SessionReport], storm: &Storm) -> bool {
    let dropped: Vec<_> = reports.iter().filter_map(|r| r.resume.as_ref()).collect();
    if storm.killed {
        return print_reidentified(&dropped, storm);
    }
    let resumed: Vec<_> = dropped.iter().filter(|x| x.resumed_at.is_some()).collect();
    let invalid = reports
        .iter()
        .filter(|r| {
            matches!(&r.failure, Some(Failure::Error(e)) if e.contains("op 9"))
                && r.resume.as_ref().is_some_and(|x| x.resumed_at.is_none())
        })
        .count();
    println!(
        "resume storm: {} of {} sessions to move ({} open) dropped their sockets or were told \
         to reconnect; {} resumed, {invalid} got INVALID_SESSION, {} failed otherwise",
        dropped.len(),
        storm.moving,
        storm.open,
        resumed.len(),
        dropped.len() - resumed.len() - invalid
    );
    let mut lag: Vec<f64> = dropped
        .iter()
        .map(|x| {
            x.dropped_at
                .saturating_duration_since(storm.at)
                .as_secs_f64()
                * 1000.0
        })
        .collect();
    println!(
        "  drop signal -> socket dropped (this tool's own lag): {}",
        spread(&mut lag)
    );
    let since_drop = |x: &&&crate::session::ResumeReport| {
        x.resumed_at
            .map(|at| at.saturating_duration_since(x.dropped_at).as_secs_f64() * 1000.0)
    };
    let mut total: Vec<f64> = resumed.iter().filter_map(since_drop).collect();
    let mut hello: Vec<f64> = resumed
        .iter()
        .filter_map(|x| x.hello_latency)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let mut answer: Vec<f64> = resumed
        .iter()
        .filter_map(|x| Some(x.resumed_at?.saturating_duration_since(x.sent_at?)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    println!("drop -> RESUMED per session: {}", spread(&mut total));
    println!(
        "  drop -> new socket's HELLO (RESUME sent): {}",
        spread(&mut hello)
    );
    println!(
        "  RESUME -> RESUMED (replay included): {}",
        spread(&mut answer)
    );
    let last = resumed.iter().filter_map(|x| x.resumed_at).max();
    match last {
        Some(last) => println!(
            "time until ALL had resumed: {:.1} ms after the drop signal ({} of {} sessions{})",
            last.saturating_duration_since(storm.at).as_secs_f64() * 1000.0,
            resumed.len(),
            storm.moving,
            if storm.all_settled {
                ""
            } else {
                "; the wait gave up"
            }
        ),
        None => println!("time until ALL had resumed: n/a (none resumed)"),
    }
    let mut replayed: Vec<f64> = resumed.iter().map(|x| x.replayed as f64).collect();
    replayed.sort_by(f64::total_cmp);
    let right_after = resumed
        .iter()
        .filter(|x| matches!((x.sent_seq, x.first_seq), (Some(s), Some(f)) if f == s + 1))
        .count();
    println!(
        "replayed before RESUMED: {} dispatches (per session p50 {}, max {}); the first seq \
         after RESUME was the one after the seq sent on {right_after} of {} sessions",
        replayed.iter().sum::<f64>(),
        nearest_rank(&replayed, 50.0).unwrap_or(0.0),
        nearest_rank(&replayed, 100.0).unwrap_or(0.0),
        resumed.len()
    );
    resumed.len() == storm.moving && right_after == resumed.len()
}

/// A killed node's sessions: how many lost their connection, were refused
/// (op 9) on RESUME elsewhere and were READY again, and how soon; `true` if
/// every one of them is.
fn print_reidentified(dropped: &[&crate::session::ResumeReport], storm: &Storm) -> bool {
    let invalidated = dropped
        .iter()
        .filter(|x| x.invalidated_at.is_some())
        .count();
    let again: Vec<Instant> = dropped.iter().filter_map(|x| x.ready_again_at).collect();
    let resumed = dropped.iter().filter(|x| x.resumed_at.is_some()).count();
    println!(
        "kill -9: {} of the killed node's {} sessions lost their connection; {invalidated} got \
         INVALID_SESSION on RESUME elsewhere, {} were READY again (IDENTIFY), {resumed} resumed",
        dropped.len(),
        storm.moving,
        again.len()
    );
    let since_kill = |at: &Instant| at.saturating_duration_since(storm.at).as_secs_f64() * 1000.0;
    let mut refused: Vec<f64> = dropped
        .iter()
        .filter_map(|x| x.invalidated_at.as_ref().map(since_kill))
        .collect();
    println!(
        "kill -> INVALID_SESSION per session (reconnect, RESUME, the dead home not answering): \
         {}",
        spread(&mut refused)
    );
    let mut after: Vec<f64> = again.iter().map(since_kill).collect();
    println!(
        "kill -> READY again per session (after a random 1-5 s wait, as Discord asks): {}",
        spread(&mut after)
    );
    match again.iter().max() {
        Some(last) => println!(
            "time until ALL were READY again: {:.1} ms after the kill ({} of {} sessions{})",
            last.saturating_duration_since(storm.at).as_secs_f64() * 1000.0,
            again.len(),
            storm.moving,
            if storm.all_settled {
                ""
            } else {
                "; the wait gave up"
            }
        ),
        None => println!("time until ALL were READY again: n/a (none was)"),
    }
    again.len() + resumed == storm.moving
}

/// Sequence-number checks over every session that got READY; `true` if clean.
fn print_sequences(reports: &[&SessionReport]) -> bool {
    let ready: Vec<_> = reports
        .iter()
        .filter(|r| r.ready_latency.is_some())
        .collect();
    let (mut missing, mut repeated, mut out_of_order, mut out_of_range, mut affected) =
        (0u64, 0u64, 0u64, 0u64, 0usize);
    for r in &ready {
        let s = &r.seqs;
        let m = s.missing();
        missing += m;
        repeated += s.repeated;
        out_of_order += s.out_of_order;
        out_of_range += s.out_of_range;
        if m + s.repeated + s.out_of_order + s.out_of_range > 0 {
            affected += 1;
        }
    }
    let mut spans: Vec<f64> = ready
        .iter()
        .filter_map(|r| r.seqs.range())
        .map(|(a, b)| (b - a + 1) as f64)
        .collect();
    spans.sort_by(f64::total_cmp);
    println!(
        "sequence numbers from READY on ({} sessions, p50 {} numbers each): {missing} missing, \
         {repeated} repeated, {out_of_order} out of order, {out_of_range} below READY's; {affected} \
         sessions affected",
        ready.len(),
        nearest_rank(&spans, 50.0).unwrap_or(0.0)
    );
    missing + repeated + out_of_order + out_of_range == 0
}

/// Per session: the MESSAGE_CREATEs it saw against the messages posted OK to
/// its guild. Only sessions that resumed and stayed to the end are checked.
/// `true` if nothing was missed, repeated or misdelivered.
fn print_messages(
    log: Vec<fanout::Delivery>,
    post_log: &PostLog,
    world: &World,
    reports: &[&SessionReport],
    storm: &Storm,
    epoch: Instant,
    unreadable: u64,
) -> bool {
    let per_guild = posted_per_guild(post_log, world.guilds.len());
    let (keyed, unmatched) = fanout::resolve(log, post_log);
    // (session, message), sorted.
    let mut seen: Vec<(u32, u32)> = keyed
        .into_iter()
        .map(|(key, _)| ((key & u64::from(u32::MAX)) as u32, (key >> 32) as u32))
        .collect();
    seen.sort_unstable();
    let complete: Vec<usize> = reports
        .iter()
        .filter(|r| r.failure.is_none() && r.resume.as_ref().is_none_or(|x| x.resumed_at.is_some()))
        .map(|r| r.index)
        .collect();
    let storm_us = micros(epoch, storm.at);
    let settled_us = micros(epoch, storm.settled);
    // Missed/duplicated by when the message was posted: before the drop,
    // during the storm, after everyone was back.
    let phase = |m: u32| {
        let sent = post_log.sent_us.get(m as usize).copied().unwrap_or(0);
        if sent < storm_us {
            0
        } else if sent <= settled_us {
            1
        } else {
            2
        }
    };
    let (mut expected, mut received, mut missed, mut duplicated, mut foreign) =
        (0u64, 0u64, [0u64; 3], [0u64; 3], 0u64);
    let mut affected = 0usize;
    let mut examples: Vec<String> = Vec::new();
    for &s in &complete {
        let Some(list) = world.guild_of.get(s).and_then(|g| per_guild.get(*g)) else {
            continue;
        };
        let s32 = s as u32;
        let lo = seen.partition_point(|(x, _)| *x < s32);
        let hi = seen.partition_point(|(x, _)| *x <= s32);
        let got: Vec<u32> = seen[lo..hi].iter().map(|(_, m)| *m).collect();
        expected += list.len() as u64;
        received += got.len() as u64;
        let before = (missed, duplicated, foreign);
        // Merge two ascending lists.
        let (mut i, mut j) = (0, 0);
        while i < list.len() || j < got.len() {
            match (list.get(i), got.get(j)) {
                (Some(&e), Some(&g)) if e == g => {
                    i += 1;
                    j += 1;
                    while got.get(j) == Some(&g) {
                        duplicated[phase(g)] += 1;
                        j += 1;
                    }
                }
                (Some(&e), Some(&g)) if e < g => {
                    missed[phase(e)] += 1;
                    i += 1;
                }
                (Some(&e), None) => {
                    missed[phase(e)] += 1;
                    i += 1;
                }
                (_, Some(_)) => {
                    foreign += 1;
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if (missed, duplicated, foreign) != before {
            affected += 1;
            if examples.len() < 5 {
                examples.push(format!(
                    "session {s} (guild {}): missed {}, duplicated {}, foreign {}",
                    world.guild_of[s],
                    missed.iter().sum::<u64>() - before.0.iter().sum::<u64>(),
                    duplicated.iter().sum::<u64>() - before.1.iter().sum::<u64>(),
                    foreign - before.2
                ));
            }
        }
    }
    let total = |a: [u64; 3]| a.iter().sum::<u64>();
    println!(
        "MESSAGE_CREATE vs posted to the session's guild ({} sessions that stayed to the end): \
         {expected} expected, {received} received; {} missed, {} duplicated, {foreign} from \
         another guild; {affected} sessions affected",
        complete.len(),
        total(missed),
        total(duplicated)
    );
    println!(
        "  by when posted (before the drop / during the storm / after all resumed): missed \
         {}/{}/{}, duplicated {}/{}/{}",
        missed[0], missed[1], missed[2], duplicated[0], duplicated[1], duplicated[2]
    );
    for e in &examples {
        println!("  e.g. {e}");
    }
    if unmatched + unreadable > 0 {
        println!(
            "note: {unmatched} MESSAGE_CREATEs matched no message posted OK (e.g. a POST that \
             timed out but was stored), {unreadable} were unreadable"
        );
    }
    total(missed) + total(duplicated) + foreign == 0
}

fn micros(epoch: Instant, at: Instant) -> u32 {
    u32::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u32::MAX)
}
