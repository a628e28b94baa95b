//! `spacebar-bench fanout`: how fast messages posted over REST reach every
//! member's gateway session.
//!
//! Timeline of a run:
//! 1. register `--members` users; user 0 creates `--guilds` guilds, finds each
//!    one's text channel and makes an invite; every other user joins every
//!    guild through the invites (so each guild has `--members` members);
//! 2. every member opens ONE gateway session (IDENTIFY -> READY), which
//!    receives the events of all its guilds;
//! 3. `--posters` users post `--rate` messages per second in total for
//!    `--duration` s, round-robin over the guilds' text channels, each with a
//!    unique `nonce`; message i is due at `start + i/rate` and is sent by
//!    whichever poster is free (so a slow server shows up as a lower
//!    sustained rate, not as a queue inside the tool);
//! 4. every session records when each MESSAGE_CREATE arrives (matched by
//!    nonce, else by message id); after the last POST the tool waits up to
//!    `--drain` s for outstanding deliveries, closes the sessions and prints
//!    the figures.
//!
//! Latencies run from just before a POST is sent to the moment the whole
//! gateway message was read (and inflated) by the receiving session.
//!
//! With `--nodes` (a cluster), steps 2-4 run twice with the same users and
//! guilds: every session on `--url`, then the sessions spread over the nodes;
//! a comparison of the two follows. Without it, the run is the first one alone.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use awc::http::Method;
use awc::Client;
use clap::Args;
use serde::Deserialize;

use crate::pool::{self, PoolCfg, WorkerResult};
use crate::rest::{self, Attempt};
use crate::session::{DispatchObserver, Failure};
use crate::setup::{self, GuildInfo};
use crate::stats::{format_counts, nearest_rank};
use crate::target::{self, Compress, Target, MESSAGE_INTENTS};
use crate::{sys, BoxError};

#[derive(Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    target: Target,
    /// Guilds to create; messages go round-robin to their text channels.
    #[arg(long, default_value_t = 1)]
    guilds: usize,
    /// Members per guild, the owner included. That many users register, join
    /// every guild and open one gateway session each.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Messages posted per second, in total.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Seconds of posting.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Transport compression to ask the gateway for.
    #[arg(long, value_enum)]
    compress: Option<Compress>,
    /// Concurrent posters (users 0..P, members of every guild), i.e. at most
    /// this many POSTs in flight.
    #[arg(long, default_value_t = 8)]
    posters: usize,
    #[command(flatten)]
    opening: target::Opening,
    /// Seconds to wait for outstanding deliveries after the last POST.
    #[arg(long, default_value_t = 10)]
    drain: u64,
    /// IDENTIFY's intents (default GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT).
    #[arg(long, default_value_t = MESSAGE_INTENTS)]
    intents: u64,
    /// Base URLs of the nodes of a cluster (comma-separated) to spread the
    /// sessions over: session i connects to node i % N, at the gateway that
    /// node advertises. Setup and posting stay on --url. The run then measures
    /// the same load twice, first with every session on --url, then spread
    /// over these nodes, and compares the two.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// PIDs of the server's processes (comma-separated or repeated; e.g. every
    /// node of a cluster), to report their CPU use while posting, summed, and
    /// per delivery.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Skip the last step: the same posts again with no session open, which measures the
    /// server CPU of the POSTs alone (only run with --server-pid).
    #[arg(long)]
    skip_posts_alone: bool,
    #[command(flatten)]
    quiet: target::Quiet,
}

/// Set on a recorded key that is a message number (from our nonce); clear on
/// a key that is a message id (snowflake, < 2^63), resolved after the run.
const NONCE_FLAG: u64 = 1 << 63;
/// Attempts per message when the server answers 429.
const MAX_POST_ATTEMPTS: u32 = 5;
/// Upper bound on preallocated delivery records.
const MAX_PREALLOC: usize = 32 << 20;

/// One MESSAGE_CREATE received by one session.
#[derive(Clone, Copy)]
pub(crate) struct Delivery {
    key: u64,
    session: u32,
    /// Microseconds since [`Deliveries::epoch`].
    at_us: u32,
}

/// The observer shared by all sessions: records every MESSAGE_CREATE (also
/// used by the resume benchmark).
pub(crate) struct Deliveries {
    epoch: Instant,
    nonce_base: u64,
    messages: u64,
    /// MESSAGE_CREATEs recorded (ours, or carrying an id).
    pub(crate) received: AtomicU64,
    /// MESSAGE_CREATEs with neither our nonce nor a readable id.
    pub(crate) unreadable: AtomicU64,
    /// MESSAGE_CREATEs whose `d` had no nonce (matched by id instead).
    pub(crate) without_nonce: AtomicU64,
    /// Every dispatch seen, of any type (to tell when the server went quiet).
    pub(crate) dispatches: AtomicU64,
    pub(crate) log: Mutex<Vec<Delivery>>,
    /// Set once posting starts.
    pub(crate) posting: AtomicBool,
    /// Other dispatches: (during posting, event name) -> count, over all sessions.
    pub(crate) others: Mutex<BTreeMap<(bool, String), u64>>,
}

impl Deliveries {
    /// For messages `nonce_base..nonce_base + messages`, with room for
    /// `prealloc` deliveries (capped).
    pub(crate) fn new(epoch: Instant, nonce_base: u64, messages: u64, prealloc: usize) -> Self {
        Self {
            epoch,
            nonce_base,
            messages,
            received: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            without_nonce: AtomicU64::new(0),
            dispatches: AtomicU64::new(0),
            log: Mutex::new(Vec::with_capacity(prealloc.min(MAX_PREALLOC))),
            posting: AtomicBool::new(false),
            others: Mutex::new(BTreeMap::new()),
        }
    }

    /// The other dispatches (not MESSAGE_CREATE) before or while posting.
    pub(crate) fn others(&self, while_posting: bool) -> BTreeMap<String, usize> {
        let Ok(others) = self.others.lock() else {
            return BTreeMap::new();
        };
        others
            .iter()
            .filter(|((d, _), _)| *d == while_posting)
            .map(|((_, e), n)| (e.clone(), usize::try_from(*n).unwrap_or(usize::MAX)))
            .collect()
    }
}

/// A nonce base unlikely to collide with other runs' (or other clients') nonces.
pub(crate) fn new_nonce_base() -> u64 {
    1_000_000_000_000_000 + (rand::random::<u64>() % 1_000_000_000_000_000)
}

impl DispatchObserver for Deliveries {
    fn dispatch(&self, session: usize, event: &str, d: &str, at: Instant) {
        self.dispatches.fetch_add(1, Ordering::Relaxed);
        if event != "MESSAGE_CREATE" {
            let during = self.posting.load(Ordering::Relaxed);
            if let Ok(mut others) = self.others.lock() {
                match others.get_mut(&(during, event.to_string())) {
                    Some(n) => *n += 1,
                    None => {
                        others.insert((during, event.to_string()), 1);
                    }
                }
            }
            return;
        }
        let nonce = nonce_of(d);
        let key = match nonce {
            Some(n) if n >= self.nonce_base && n - self.nonce_base < self.messages => {
                NONCE_FLAG | (n - self.nonce_base)
            }
            _ => {
                if nonce.is_none() {
                    self.without_nonce.fetch_add(1, Ordering::Relaxed);
                }
                match message_id(d) {
                    Some(id) => id & !NONCE_FLAG,
                    None => {
                        self.unreadable.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        };
        let record = Delivery {
            key,
            session: u32::try_from(session).unwrap_or(u32::MAX),
            at_us: micros_since(self.epoch, at),
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(record);
        }
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

fn micros_since(epoch: Instant, at: Instant) -> u32 {
    u32::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u32::MAX)
}

/// The top-level `nonce` of a message's JSON, as a number (from `"123"` or
/// `123`), found without parsing the whole message. A `"nonce"` key can only
/// appear unescaped as a key, never inside a string value, and our messages
/// have no nested objects with a nonce.
fn nonce_of(d: &str) -> Option<u64> {
    const KEY: &str = "\"nonce\"";
    let at = d.find(KEY)?;
    let rest = d[at + KEY.len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let digits = rest.strip_prefix('"').unwrap_or(rest);
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A message's `id` (full parse: nested objects have ids too).
fn message_id(d: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<IdValue>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IdValue {
        Text(String),
        Number(u64),
    }
    match serde_json::from_str::<IdOnly>(d).ok()?.id? {
        IdValue::Text(s) => s.parse().ok(),
        IdValue::Number(n) => Some(n),
    }
}

/// What the posters did, per message number.
pub(crate) struct PostLog {
    /// Microseconds since the epoch just before the (last) POST attempt;
    /// `u32::MAX` if never sent.
    pub(crate) sent_us: Vec<u32>,
    /// When the response arrived.
    pub(crate) done_us: Vec<u32>,
    pub(crate) ok: Vec<bool>,
    /// Message id from the response.
    pub(crate) ids: Vec<Option<u64>>,
    pub(crate) errors: BTreeMap<String, usize>,
    pub(crate) rate_limited: u64,
    /// Latest a POST went out after its due time.
    pub(crate) max_lag: Duration,
}

/// What every poster shares. Message i goes to `guilds[i % guilds.len()]`
/// with content `"{label} message {i}"` and nonce `nonce_base + i`.
pub(crate) struct PostPlan<'a> {
    pub(crate) client: Client,
    pub(crate) api: String,
    /// Poster k posts as `tokens[k]` (a member of every guild).
    pub(crate) tokens: &'a [String],
    pub(crate) guilds: &'a [GuildInfo],
    pub(crate) epoch: Instant,
    pub(crate) start: Instant,
    pub(crate) rate: f64,
    /// Messages at most.
    pub(crate) total: usize,
    pub(crate) nonce_base: u64,
    /// No new POST starts after this.
    pub(crate) deadline: Instant,
    /// No new POST starts once this is set (posting for an open-ended time).
    pub(crate) stop: Option<&'a AtomicBool>,
    pub(crate) label: &'a str,
}

pub fn run(args: FanoutArgs) -> Result<(), BoxError> {
    if args.guilds == 0 || args.members == 0 || args.posters == 0 || args.opening.threads == 0 {
        return Err("--guilds, --members, --posters and --threads must be at least 1".into());
    }
    for (name, v) in [
        ("--rate", args.rate),
        ("--duration", args.duration),
        ("--connect-rate", args.opening.connect_rate),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(format!("{name} must be a positive number").into());
        }
    }
    let total = (args.rate * args.duration).round() as usize;
    if total == 0 || total > u32::MAX as usize / 2 {
        return Err("--rate x --duration must be between 1 and 2^31 messages".into());
    }
    let run_started = Instant::now();
    let timeout = args.target.timeout();
    let needed = args.members + args.opening.setup_concurrency + args.posters + 64;
    sys::ensure_open_files(needed, args.members, "--members")?;

    let base = args.target.base();
    let api = args.target.api();
    let run_id = target::run_id();
    println!("{}", target::machine_note(&base));

    // 1. Setup over REST.
    let (gateway, node_gateways, tokens, guilds) = actix_rt::System::new().block_on(async {
        let client = rest::client(timeout);
        let gateway = match &args.target.gateway_url {
            Some(url) => url.clone(),
            None => rest::discover_gateway(&client, &api).await?,
        };
        let node_gateways = rest::node_gateways(
            &client,
            &args.nodes,
            args.target.api_version,
            args.compress.is_some(),
        )
        .await?;
        let (tokens, guilds) = setup::populate(
            &client,
            &api,
            args.members,
            args.guilds,
            args.opening.setup_concurrency,
            &run_id,
        )
        .await?;
        Ok::<_, BoxError>((gateway, node_gateways, tokens, guilds))
    })?;

    // 2.-4. The same load once per layout of the sessions: all on --url, then
    // (with --nodes) spread over the nodes.
    let compress = args.compress.is_some();
    let mut layouts = vec![Layout {
        label: format!("sessions on 1 node ({base})"),
        urls: vec![rest::gateway_ws_url(
            &base,
            args.target.gateway_url.as_deref(),
            &gateway,
            args.target.api_version,
            compress,
        )?],
    }];
    if !node_gateways.is_empty() {
        layouts.push(Layout {
            label: format!("sessions over {} nodes", node_gateways.len()),
            urls: node_gateways,
        });
    }
    let run = Run {
        args: &args,
        tokens: &tokens,
        guilds: &guilds,
        api: &api,
        total,
        timeout,
    };
    let mut outcomes = Vec::with_capacity(layouts.len());
    for layout in &layouts {
        outcomes.push(run.measure(layout)?);
    }
    if outcomes.len() > 1 {
        print_comparison(&layouts, &outcomes);
    }
    if !args.server_pid.is_empty() && !args.skip_posts_alone {
        if let Some(per_post) = run.posts_alone() {
            print_fanout_alone(&layouts, &outcomes, per_post);
        }
    }
    println!(
        "total run time: {:.1} s",
        run_started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where the sessions connect: session i to `urls[i % urls.len()]`.
struct Layout {
    label: String,
    urls: Vec<String>,
}

/// What every measurement of a run shares: the users, guilds and load.
struct Run<'a> {
    args: &'a FanoutArgs,
    /// One session per token; the first `--posters` post.
    tokens: &'a [String],
    guilds: &'a [GuildInfo],
    api: &'a str,
    total: usize,
    timeout: Duration,
}

/// The figures a layout is compared by.
struct Outcome {
    per_second: f64,
    all_p50_ms: Option<f64>,
    all_p99_ms: Option<f64>,
    /// Server CPU (all `--server-pid`s) per delivery, in µs.
    cpu_per_delivery_us: Option<f64>,
    /// Server CPU while posting and draining, POSTs answered 2xx, deliveries received.
    server_cpu: Option<Duration>,
    posted_ok: usize,
    deliveries: u64,
}

impl Run<'_> {
    /// Posts the run's messages (at most `--posters` in flight).
    fn post(&self, epoch: Instant, nonce_base: u64) -> PostLog {
        let args = self.args;
        let posters = args.posters.min(self.tokens.len());
        actix_rt::System::new().block_on(async {
            let start = Instant::now() + Duration::from_millis(100);
            let plan = PostPlan {
                client: rest::client(self.timeout),
                api: self.api.to_string(),
                tokens: &self.tokens[..posters],
                guilds: self.guilds,
                epoch,
                start,
                rate: args.rate,
                total: self.total,
                nonce_base,
                deadline: start + Duration::from_secs_f64(args.duration) + self.timeout,
                stop: None,
                label: "fanout",
            };
            post_all(&plan, posters).await
        })
    }

    /// The same posts with no session open (fan-out off): the server CPU the POSTs cost by
    /// themselves, per POST answered 2xx.
    fn posts_alone(&self) -> Option<Duration> {
        let args = self.args;
        println!();
        println!("== the same posts with no sessions open (fan-out off) ==");
        let cpu = sys::CpuWindow::start(&args.server_pid);
        let started = Instant::now();
        let post_log = self.post(Instant::now(), new_nonce_base());
        let server_cpu = cpu.server_cpu();
        print_posting(
            &post_log,
            self.total,
            args.rate,
            args.posters.min(self.tokens.len()),
        );
        println!(
            "CPU while posting ({:.1} s, 100% = one core): {}",
            started.elapsed().as_secs_f64(),
            cpu.describe()
        );
        let posted_ok = post_log.ok.iter().filter(|ok| **ok).count();
        let per_post = server_cpu
            .filter(|_| posted_ok > 0)?
            .div_f64(posted_ok as f64);
        println!(
            "server CPU per POST with nobody to deliver to: {:.0} µs ({posted_ok} POSTs)",
            per_post.as_secs_f64() * 1e6
        );
        Some(per_post)
    }

    /// Opens one session per member as `layout` says, posts, drains, closes
    /// the sessions and prints the figures.
    fn measure(&self, layout: &Layout) -> Result<Outcome, BoxError> {
        let args = self.args;
        let total = self.total;
        println!();
        println!("== {} ==", layout.label);
        let sessions = self.tokens.len();
        let posters = args.posters.min(sessions);
        let epoch = Instant::now();
        let nonce_base = new_nonce_base();
        let deliveries = Arc::new(Deliveries::new(
            epoch,
            nonce_base,
            total as u64,
            total.saturating_mul(sessions),
        ));
        println!(
            "opening {sessions} sessions to {} at {}/s on {} threads",
            layout.urls.join(", "),
            args.opening.connect_rate,
            args.opening.threads
        );
        let observer: Arc<dyn DispatchObserver> = deliveries.clone();
        let pool = pool::start_ready(
            self.tokens.to_vec(),
            &PoolCfg {
                urls: layout.urls.clone(),
                compress: args.compress.is_some(),
                timeout: self.timeout,
                rate: args.opening.connect_rate,
                threads: args.opening.threads,
                intents: args.intents,
                capabilities: 0,
                observer: Some(observer),
                resumable: false,
                follow_reconnect: false,
            },
        )?;
        // Let the server finish what it does after READY (presence updates of
        // everyone coming online); meanwhile see how busy the machine is with
        // the sessions idle (other jobs show up here).
        wait_until_quiet(&deliveries, self.timeout);
        args.quiet.wait();
        let idle_cpu = sys::CpuWindow::start(&args.server_pid);
        thread::sleep(Duration::from_secs(1));
        println!(
            "CPU with the sessions idle (1 s, 100% = one core): {}",
            idle_cpu.describe()
        );
        let recipients = pool.open();

        // Post.
        println!(
            "posting {total} messages: {}/s for {} s from {posters} posters over {} channel(s), \
             {recipients} recipients each",
            args.rate,
            args.duration,
            self.guilds.len()
        );
        deliveries.posting.store(true, Ordering::Relaxed);
        let post_started = Instant::now();
        let cpu = sys::CpuWindow::start(&args.server_pid);
        let post_log = self.post(epoch, nonce_base);
        let posted_ok = post_log.ok.iter().filter(|ok| **ok).count();

        // Drain, then close the sessions.
        let expected = (posted_ok * recipients) as u64;
        let drain_deadline = Instant::now() + Duration::from_secs(args.drain);
        while deliveries.received.load(Ordering::Relaxed) < expected
            && Instant::now() < drain_deadline
        {
            thread::sleep(Duration::from_millis(20));
        }
        let server_cpu = cpu.server_cpu();
        let cpu = cpu.describe();
        let posting_secs = post_started.elapsed().as_secs_f64();
        let open_at_end = pool.open();
        let results = pool.stop()?;
        let log = match deliveries.log.lock() {
            Ok(mut log) => std::mem::take(&mut *log),
            Err(_) => return Err("delivery log poisoned".into()),
        };

        print_sessions(sessions, &results, open_at_end, recipients);
        for (during, label) in [(false, "before posting"), (true, "while posting")] {
            println!(
                "other dispatches after READY, {label} (all sessions): {}",
                format_counts(&deliveries.others(during))
            );
        }
        let agg = print_figures(Figures {
            args,
            total,
            posters,
            recipients,
            post_log: &post_log,
            log,
            unreadable: deliveries.unreadable.load(Ordering::Relaxed),
            without_nonce: deliveries.without_nonce.load(Ordering::Relaxed),
        });
        println!("CPU while posting and draining ({posting_secs:.1} s, 100% = one core): {cpu}");
        let cpu_per_delivery_us = server_cpu
            .filter(|_| agg.deliveries > 0)
            .map(|d| d.as_secs_f64() * 1e6 / agg.deliveries as f64);
        if let (Some(d), Some(per)) = (server_cpu, cpu_per_delivery_us) {
            println!(
                "server CPU per delivery: {per:.1} µs ({:.2} s CPU of {} process(es) over {} \
                 deliveries)",
                d.as_secs_f64(),
                args.server_pid.len(),
                agg.deliveries
            );
        }
        Ok(Outcome {
            per_second: agg.per_second(),
            all_p50_ms: nearest_rank(&agg.last_ms, 50.0),
            all_p99_ms: nearest_rank(&agg.last_ms, 99.0),
            cpu_per_delivery_us,
            server_cpu,
            posted_ok,
            deliveries: agg.deliveries,
        })
    }
}

/// Server CPU per delivery with what the POSTs cost by themselves (measured with no sessions)
/// taken out: the fan-out's own cost.
fn print_fanout_alone(layouts: &[Layout], outcomes: &[Outcome], per_post: Duration) {
    for (layout, o) in layouts.iter().zip(outcomes) {
        let Some(cpu) = o.server_cpu.filter(|_| o.deliveries > 0) else {
            continue;
        };
        let posts = per_post.as_secs_f64() * o.posted_ok as f64;
        let fanout = (cpu.as_secs_f64() - posts).max(0.0);
        println!(
            "{}: server CPU per delivery {:.2} µs with the POSTs, {:.2} µs without them ({:.2} s \
             of {:.2} s CPU was the POSTs' own)",
            layout.label,
            cpu.as_secs_f64() * 1e6 / o.deliveries as f64,
            fanout * 1e6 / o.deliveries as f64,
            posts,
            cpu.as_secs_f64()
        );
    }
}

/// The layouts side by side: what spreading the sessions over nodes adds.
fn print_comparison(layouts: &[Layout], outcomes: &[Outcome]) {
    println!();
    println!("comparison (same users, guilds and load):");
    for (layout, o) in layouts.iter().zip(outcomes) {
        println!(
            "  {}: {:.0} deliveries/s; POST -> all recipients p50 {}, p99 {}; server CPU per \
             delivery {}",
            layout.label,
            o.per_second,
            ms(o.all_p50_ms),
            ms(o.all_p99_ms),
            o.cpu_per_delivery_us.map_or_else(
                || "n/a (pass --server-pid)".to_string(),
                |v| format!("{v:.1} µs")
            )
        );
    }
    let (Some(one), Some(spread)) = (outcomes.first(), outcomes.last()) else {
        return;
    };
    let p99_added = one
        .all_p99_ms
        .zip(spread.all_p99_ms)
        .map_or_else(|| "n/a".to_string(), |(a, b)| format!("{:+.1} ms", b - a));
    let cpu_added = one
        .cpu_per_delivery_us
        .zip(spread.cpu_per_delivery_us)
        .filter(|(a, _)| *a > 0.0)
        .map_or_else(
            || "n/a".to_string(),
            |(a, b)| format!("{:+.0}%", 100.0 * (b - a) / a),
        );
    println!(
        "  spread over nodes vs one node: server CPU per delivery {cpu_added}, POST -> all \
         recipients p99 {p99_added}"
    );
}

/// Waits until no dispatch has arrived for 1 s (READY_SUPPLEMENTAL, the
/// presence updates of everyone coming online...), at most `max`.
pub(crate) fn wait_until_quiet(deliveries: &Deliveries, max: Duration) {
    let started = Instant::now();
    let mut last = deliveries.dispatches.load(Ordering::Relaxed);
    loop {
        thread::sleep(Duration::from_secs(1));
        let now = deliveries.dispatches.load(Ordering::Relaxed);
        if now == last {
            println!(
                "server quiet after {:.1} s ({now} dispatches after READY so far)",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if started.elapsed() >= max {
            println!(
                "warning: dispatches still flowing after {} s ({} in the last second), \
                 starting anyway",
                max.as_secs(),
                now - last
            );
            return;
        }
        last = now;
    }
}

/// Runs `posters` posters until every message is posted (or the deadline, or
/// the stop flag).
pub(crate) async fn post_all(plan: &PostPlan<'_>, posters: usize) -> PostLog {
    let log = RefCell::new(PostLog {
        sent_us: vec![u32::MAX; plan.total],
        done_us: vec![u32::MAX; plan.total],
        ok: vec![false; plan.total],
        ids: vec![None; plan.total],
        errors: BTreeMap::new(),
        rate_limited: 0,
        max_lag: Duration::ZERO,
    });
    let next = Cell::new(0usize);
    let tasks = (0..posters).map(|k| poster(plan, k, &log, &next));
    futures_util::future::join_all(tasks).await;
    log.into_inner()
}

/// One poster: takes the next due message, waits for its time, posts it.
async fn poster(plan: &PostPlan<'_>, k: usize, log: &RefCell<PostLog>, next: &Cell<usize>) {
    let Some(token) = plan.tokens.get(k) else {
        return;
    };
    let g = plan.guilds.len().max(1);
    loop {
        let i = next.get();
        if i >= plan.total {
            return;
        }
        next.set(i + 1);
        let due = plan.start + Duration::from_secs_f64(i as f64 / plan.rate);
        if due > plan.deadline {
            return;
        }
        tokio::time::sleep_until(due.into()).await;
        if plan.stop.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            return;
        }
        let now = Instant::now();
        if now > plan.deadline {
            let mut l = log.borrow_mut();
            *l.errors
                .entry("not sent: posting deadline passed".into())
                .or_insert(0) += 1;
            continue;
        }
        {
            let mut l = log.borrow_mut();
            l.max_lag = l.max_lag.max(now - due);
        }
        let Some(guild) = plan.guilds.get(i % g) else {
            return;
        };
        let url = format!("{}/channels/{}/messages", plan.api, guild.channel_id);
        let body = serde_json::json!({
            "content": format!("{} message {i}", plan.label),
            "nonce": (plan.nonce_base + i as u64).to_string(),
        });
        let result = post_one(plan, &url, token, &body, i, log).await;
        let mut l = log.borrow_mut();
        l.done_us[i] = micros_since(plan.epoch, Instant::now());
        match result {
            Ok(id) => {
                l.ok[i] = true;
                l.ids[i] = id;
            }
            Err(e) => *l.errors.entry(e).or_insert(0) += 1,
        }
    }
}

/// POSTs one message, retrying 429s (the send time is that of the last try).
/// Returns the message id of the response, if it has one.
async fn post_one(
    plan: &PostPlan<'_>,
    url: &str,
    token: &str,
    body: &serde_json::Value,
    i: usize,
    log: &RefCell<PostLog>,
) -> Result<Option<u64>, String> {
    for _ in 0..MAX_POST_ATTEMPTS {
        log.borrow_mut().sent_us[i] = micros_since(plan.epoch, Instant::now());
        match rest::attempt(&plan.client, Method::POST, url, Some(token), Some(body)).await? {
            Attempt::RateLimited(wait) => {
                log.borrow_mut().rate_limited += 1;
                if Instant::now() + wait > plan.deadline {
                    return Err("429, retry_after beyond the posting deadline".into());
                }
                actix_rt::time::sleep(wait).await;
            }
            Attempt::Done(status, bytes) if status.is_success() => {
                return Ok(std::str::from_utf8(&bytes).ok().and_then(message_id));
            }
            Attempt::Done(status, bytes) => {
                let text: String = rest::snippet(&bytes).chars().take(120).collect();
                return Err(format!("HTTP {}: {text}", status.as_u16()));
            }
        }
    }
    Err("still rate limited (429) after retries".into())
}

fn print_sessions(
    requested: usize,
    results: &[WorkerResult],
    open_at_end: usize,
    recipients: usize,
) {
    let reports = || results.iter().flat_map(|r| r.reports.iter());
    let ready = reports().filter(|r| r.ready_latency.is_some()).count();
    let mut close_codes = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for r in reports() {
        match &r.failure {
            None => {}
            Some(Failure::Closed(code)) => {
                let key = code.map_or_else(|| "no code".to_string(), |c| c.to_string());
                *close_codes.entry(key).or_insert(0) += 1;
            }
            Some(Failure::Error(e)) => *errors.entry(e.clone()).or_insert(0) += 1,
        }
    }
    let mut latencies: Vec<f64> = reports()
        .filter_map(|r| r.ready_latency)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!();
    println!(
        "sessions: {requested} opened, {ready} ready (IDENTIFY->READY p50 {}, p99 {}), \
         {recipients} open when posting started, {open_at_end} at the end; \
         close codes from the server: {}",
        ms(nearest_rank(&latencies, 50.0)),
        ms(nearest_rank(&latencies, 99.0)),
        format_counts(&close_codes)
    );
    if !errors.is_empty() {
        println!("session errors: {}", format_counts(&errors));
    }
}

struct Figures<'a> {
    args: &'a FanoutArgs,
    total: usize,
    posters: usize,
    recipients: usize,
    post_log: &'a PostLog,
    log: Vec<Delivery>,
    unreadable: u64,
    without_nonce: u64,
}

/// Per-message aggregation of the deliveries.
#[derive(Default, Debug, PartialEq)]
struct Aggregate {
    /// Distinct (message, session) deliveries of messages posted OK.
    deliveries: u64,
    duplicates: u64,
    /// Deliveries matching no message of this run (or of a failed POST).
    unmatched: u64,
    /// Per delivery, ms from POST to arrival.
    per_delivery_ms: Vec<f64>,
    /// Per message delivered to all recipients: ms to the first and last one.
    first_ms: Vec<f64>,
    last_ms: Vec<f64>,
    /// Messages posted OK that missed at least one recipient.
    incomplete: u64,
    /// Earliest send and latest arrival (µs since epoch), for the rate.
    first_sent_us: u32,
    last_arrival_us: u32,
}

impl Aggregate {
    /// Deliveries per second, from the first POST to the last arrival.
    fn per_second(&self) -> f64 {
        let span = f64::from(self.last_arrival_us.saturating_sub(self.first_sent_us)) / 1e6;
        if span > 0.0 {
            self.deliveries as f64 / span
        } else {
            0.0
        }
    }
}

/// Resolves deliveries to message numbers (by nonce, else by the message ids
/// the POSTs returned): `((message << 32) | session, arrival µs)` for the
/// messages posted OK, and how many matched none of them.
pub(crate) fn resolve(mut log: Vec<Delivery>, post_log: &PostLog) -> (Vec<(u64, u32)>, u64) {
    let by_id: HashMap<u64, u32> = post_log
        .ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| Some(((*id)?, u32::try_from(i).ok()?)))
        .collect();
    let mut unmatched = 0;
    let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(log.len());
    for d in log.drain(..) {
        let msg = if d.key & NONCE_FLAG != 0 {
            u32::try_from(d.key & !NONCE_FLAG).ok()
        } else {
            by_id.get(&d.key).copied()
        };
        match msg {
            Some(m) if post_log.ok.get(m as usize).copied().unwrap_or(false) => {
                keyed.push(((u64::from(m) << 32) | u64::from(d.session), d.at_us));
            }
            _ => unmatched += 1,
        }
    }
    (keyed, unmatched)
}

/// Resolves deliveries to message numbers, drops duplicates and computes the
/// latencies. `post_log.ok[i]` says whether message i was posted.
fn aggregate(log: Vec<Delivery>, post_log: &PostLog, recipients: usize) -> Aggregate {
    let total = post_log.ok.len();
    let (mut keyed, unmatched) = resolve(log, post_log);
    let mut agg = Aggregate {
        first_sent_us: post_log.sent_us.iter().copied().min().unwrap_or(u32::MAX),
        unmatched,
        ..Aggregate::default()
    };
    // Keyed by message number (high 32 bits) and session.
    keyed.sort_unstable();
    agg.per_delivery_ms.reserve(keyed.len());
    let mut received_per_msg = vec![0usize; total];
    let mut first_at = vec![u32::MAX; total];
    let mut last_at = vec![0u32; total];
    let mut prev: Option<u64> = None;
    for (key, at) in keyed {
        if prev == Some(key) {
            agg.duplicates += 1;
            continue;
        }
        prev = Some(key);
        let m = (key >> 32) as usize;
        let sent = post_log.sent_us[m];
        agg.deliveries += 1;
        agg.per_delivery_ms
            .push(f64::from(at.saturating_sub(sent)) / 1000.0);
        received_per_msg[m] += 1;
        first_at[m] = first_at[m].min(at);
        last_at[m] = last_at[m].max(at);
        agg.last_arrival_us = agg.last_arrival_us.max(at);
    }
    for m in 0..total {
        if !post_log.ok[m] {
            continue;
        }
        if received_per_msg[m] >= recipients && recipients > 0 {
            let sent = post_log.sent_us[m];
            agg.first_ms
                .push(f64::from(first_at[m].saturating_sub(sent)) / 1000.0);
            agg.last_ms
                .push(f64::from(last_at[m].saturating_sub(sent)) / 1000.0);
        } else {
            agg.incomplete += 1;
        }
    }
    agg.per_delivery_ms.sort_by(f64::total_cmp);
    agg.first_ms.sort_by(f64::total_cmp);
    agg.last_ms.sort_by(f64::total_cmp);
    agg
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} ms"))
}

/// The `posted:` and `POST round trip:` lines (and `post errors:`, if any).
pub(crate) fn print_posting(pl: &PostLog, total: usize, rate: f64, posters: usize) {
    let posted_ok = pl.ok.iter().filter(|ok| **ok).count();
    let failed: usize = pl.errors.values().sum();

    // Posting: sustained rate between the first send and the last response.
    let first_sent = pl.sent_us.iter().copied().filter(|&t| t != u32::MAX).min();
    let last_done = pl.done_us.iter().copied().filter(|&t| t != u32::MAX).max();
    let sustained = match (first_sent, last_done) {
        (Some(a), Some(b)) if b > a => {
            format!("{:.1}/s", posted_ok as f64 / (f64::from(b - a) / 1e6))
        }
        _ => "n/a".to_string(),
    };
    let mut post_ms: Vec<f64> = (0..pl.ok.len())
        .filter(|&i| pl.ok[i])
        .map(|i| f64::from(pl.done_us[i].saturating_sub(pl.sent_us[i])) / 1000.0)
        .collect();
    post_ms.sort_by(f64::total_cmp);
    println!(
        "posted: {posted_ok} of {total} OK ({rate} target/s, {sustained} sustained), {failed} \
         failed, {} answers 429; latest POST start {:.1} ms behind schedule",
        pl.rate_limited,
        pl.max_lag.as_secs_f64() * 1000.0
    );
    println!(
        "POST round trip: p50 {}, p99 {}, max {} ({posters} posters)",
        ms(nearest_rank(&post_ms, 50.0)),
        ms(nearest_rank(&post_ms, 99.0)),
        ms(nearest_rank(&post_ms, 100.0)),
    );
    if !pl.errors.is_empty() {
        println!("post errors: {}", format_counts(&pl.errors));
    }
}

/// Prints the posting and delivery figures; returns them.
fn print_figures(f: Figures<'_>) -> Aggregate {
    let pl = f.post_log;
    print_posting(pl, f.total, f.args.rate, f.posters);
    let posted_ok = pl.ok.iter().filter(|ok| **ok).count();

    let agg = aggregate(f.log, pl, f.recipients);
    let expected = (posted_ok * f.recipients) as u64;
    println!(
        "deliveries: {expected} expected ({posted_ok} messages x {} recipients), {} received \
         ({:.2}%), {:.0}/s; {} duplicates, {} unmatched, {} unreadable",
        f.recipients,
        agg.deliveries,
        100.0 * agg.deliveries as f64 / (expected.max(1) as f64),
        agg.per_second(),
        agg.duplicates,
        agg.unmatched,
        f.unreadable
    );
    if f.without_nonce > 0 {
        println!(
            "note: {} MESSAGE_CREATE dispatches carried no nonce (matched by message id instead)",
            f.without_nonce
        );
    }
    let pct = |v: &[f64], p: f64| ms(nearest_rank(v, p));
    println!(
        "POST -> MESSAGE_CREATE at ALL recipients (last one): p50 {}, p90 {}, p99 {}, max {} \
         ({} messages reached everyone, {} did not)",
        pct(&agg.last_ms, 50.0),
        pct(&agg.last_ms, 90.0),
        pct(&agg.last_ms, 99.0),
        pct(&agg.last_ms, 100.0),
        agg.last_ms.len(),
        agg.incomplete
    );
    println!(
        "POST -> first recipient: p50 {}, p99 {}; per delivery: p50 {}, p99 {}",
        pct(&agg.first_ms, 50.0),
        pct(&agg.first_ms, 99.0),
        pct(&agg.per_delivery_ms, 50.0),
        pct(&agg.per_delivery_ms, 99.0)
    );
    agg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nonce_without_full_parse() {
        let d = r#"{"attachments":[],"author":{"id":"9"},"content":"say \"nonce\": 5",
                    "id":"77","nonce":"1000000000000000042","type":0}"#;
        assert_eq!(nonce_of(d), Some(1_000_000_000_000_000_042));
        assert_eq!(nonce_of(r#"{"nonce" : 17,"id":"1"}"#), Some(17));
        assert_eq!(nonce_of(r#"{"nonce":null,"id":"1"}"#), None);
        assert_eq!(nonce_of(r#"{"id":"1"}"#), None);
        assert_eq!(nonce_of(r#"{"nonce":"abc"}"#), None);
    }

    #[test]
    fn reads_top_level_message_id() {
        let d = r#"{"author":{"id":"9"},"id":"77","mentions":[{"id":"3"}]}"#;
        assert_eq!(message_id(d), Some(77));
        assert_eq!(message_id(r#"{"id":12}"#), Some(12));
        assert_eq!(message_id(r#"{"content":"x"}"#), None);
    }

    #[test]
    fn observer_records_only_message_creates() {
        let epoch = Instant::now();
        let deliveries = Deliveries::new(epoch, 1000, 10, 0);
        let at = epoch + Duration::from_millis(5);
        deliveries.dispatch(3, "MESSAGE_CREATE", r#"{"id":"50","nonce":"1004"}"#, at);
        deliveries.dispatch(4, "MESSAGE_CREATE", r#"{"id":"51"}"#, at);
        deliveries.dispatch(4, "MESSAGE_CREATE", r#"{"id":"52","nonce":"99"}"#, at);
        deliveries.dispatch(4, "MESSAGE_CREATE", r#"{"content":"?"}"#, at);
        deliveries.dispatch(4, "TYPING_START", r#"{"nonce":"1004"}"#, at);
        let others = deliveries.others.lock().unwrap().clone();
        assert_eq!(others.get(&(false, "TYPING_START".to_string())), Some(&1));
        let log = deliveries.log.into_inner().unwrap();
        let keys: Vec<(u64, u32, u32)> = log.iter().map(|d| (d.key, d.session, d.at_us)).collect();
        assert_eq!(
            keys,
            vec![(NONCE_FLAG | 4, 3, 5000), (51, 4, 5000), (52, 4, 5000)]
        );
        assert_eq!(deliveries.received.load(Ordering::Relaxed), 3);
        assert_eq!(deliveries.unreadable.load(Ordering::Relaxed), 1);
        assert_eq!(deliveries.without_nonce.load(Ordering::Relaxed), 2);
        assert_eq!(deliveries.dispatches.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn aggregates_latencies_per_message() {
        // 3 messages, 2 recipients. Message 0 sent at 1 ms, reaches both
        // (one by nonce, one by id, one duplicate); message 1 reaches only
        // session 0; message 2's POST failed but is delivered anyway.
        let post_log = PostLog {
            sent_us: vec![1000, 2000, 3000],
            done_us: vec![1500, 2500, 3500],
            ok: vec![true, true, false],
            ids: vec![Some(500), Some(501), None],
            errors: BTreeMap::new(),
            rate_limited: 0,
            max_lag: Duration::ZERO,
        };
        let d = |key, session, at_us| Delivery {
            key,
            session,
            at_us,
        };
        let log = vec![
            d(NONCE_FLAG, 0, 4000),
            d(500, 1, 9000),
            d(NONCE_FLAG, 0, 4500),
            d(NONCE_FLAG | 1, 0, 2600),
            d(NONCE_FLAG | 2, 1, 5000),
            d(12345, 1, 5000),
        ];
        let agg = aggregate(log, &post_log, 2);
        assert_eq!(agg.deliveries, 3);
        assert_eq!(agg.duplicates, 1);
        assert_eq!(agg.unmatched, 2);
        assert_eq!(agg.incomplete, 1);
        assert_eq!(agg.first_ms, vec![3.0]);
        assert_eq!(agg.last_ms, vec![8.0]);
        assert_eq!(agg.per_delivery_ms, vec![0.6, 3.0, 8.0]);
        assert_eq!(agg.first_sent_us, 1000);
        assert_eq!(agg.last_arrival_us, 9000);
    }
}
