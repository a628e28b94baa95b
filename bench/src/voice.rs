//! `spacebar-bench voice`: the SFU's forwarding rate (issue 6).
//!
//! A room of `--speakers` × `--listeners`: everyone is a real client (main gateway session,
//! op 4 join, voice gateway, a `webrtc` 0.21 peer connection negotiated from SDP fragments as
//! browsers do). Speakers send 50 Opus-sized RTP packets a second, each stamped with the
//! speaker and its send time; every other participant (listeners and the other speakers)
//! receives every speaker. Over `--duration` s it reports forwarded packets/s, loss, the
//! latency sender → SFU → receiver, the server's CPU and forwarded packets/s per core of it,
//! and the server's memory per participant.
//!
//! Timeline: register and build the guild over REST (one actix-rt system); then, on another,
//! join everyone (`--join-concurrency` at a time), wait until every (speaker, receiver) pair
//! has had a packet, read the server's RSS, measure, drain, hang up.

pub(crate) mod meter;
pub(crate) mod participant;
pub(crate) mod peer;
pub(crate) mod sdp;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::http::Method;
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use crate::stats::{format_counts, nearest_rank};
use crate::target::Target;
use crate::{rest, setup, sys, BoxError};
use meter::Meter;
use participant::Room;

#[derive(Args)]
pub struct VoiceArgs {
    #[command(flatten)]
    load: Load,
}

/// A room's load: who sends, who receives, and how the run is timed (the voice and the rooms
/// runs alike, so their figures compare).
#[derive(Args)]
pub struct Load {
    #[command(flatten)]
    pub target: Target,
    /// Participants who send audio (each also receives the other speakers).
    #[arg(long, default_value_t = 10)]
    pub speakers: usize,
    /// Participants who only receive.
    #[arg(long, default_value_t = 100)]
    pub listeners: usize,
    /// Seconds of measurement once every stream flows.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// PID of the server process: its CPU over the window and RSS per participant.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// RTP payload bytes per packet (Opus at 20 ms is ~60-120).
    #[arg(long, default_value_t = 100)]
    pub packet_bytes: usize,
    /// Participants joining at once.
    #[arg(long, default_value_t = 8)]
    pub join_concurrency: usize,
    /// Longest wait, in seconds, for every stream to reach every receiver after all joined;
    /// then it measures anyway and says how many pairs flow.
    #[arg(long, default_value_t = 60)]
    pub settle: u64,
    /// Seconds to wait after the window for packets still in flight.
    #[arg(long, default_value_t = 2)]
    pub drain: u64,
    /// Threads of the client's media runtime (its peer connections).
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// Registration and join requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
}

/// The guild and users built over REST.
struct World {
    gateway_url: String,
    guild_id: String,
    channel_id: String,
    /// Speakers first.
    tokens: Vec<String>,
}

pub fn run(args: VoiceArgs) -> Result<(), BoxError> {
    let args = args.load;
    args.check()?;
    let world = actix_rt::System::new().block_on(build_world(&args))?;
    args.run(|shared| voice_phase(&args, &world, shared))
}

/// A participant who joined, held until the run ends: its first error, if any.
pub type Held = futures_util::future::LocalBoxFuture<'static, Result<(), String>>;

/// What every participant of a run shares: the meter, the client's media runtime, and the end.
#[derive(Clone)]
pub struct Shared {
    pub meter: Arc<Meter>,
    pub media: tokio::runtime::Handle,
    /// Turns true when the run ends.
    pub stop: watch::Receiver<bool>,
    stop_tx: Rc<watch::Sender<bool>>,
}

impl Load {
    pub fn check(&self) -> Result<(), BoxError> {
        if self.speakers == 0 || self.join_concurrency == 0 || self.client_threads == 0 {
            return Err(
                "--speakers, --join-concurrency and --client-threads must be at least 1".into(),
            );
        }
        if self.speakers + self.listeners < 2 {
            return Err("a room needs at least two participants".into());
        }
        // Two sockets per participant plus its UDP socket.
        sys::raise_nofile_limit()?;
        Ok(())
    }

    /// Runs `phase` (which joins everyone through [`Load::measure`]) on an actix-rt system,
    /// with a client media runtime of its own, and prints the figures.
    pub fn run<F>(&self, phase: impl FnOnce(Shared) -> F) -> Result<(), BoxError>
    where
        F: std::future::Future<Output = Result<Figures, BoxError>>,
    {
        let media = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.client_threads)
            .thread_name("bench-media")
            .enable_all()
            .build()?;
        let meter = Arc::new(Meter::new(self.speakers, self.speakers + self.listeners));
        let (stop_tx, stop) = watch::channel(false);
        let shared = Shared {
            meter,
            media: media.handle().clone(),
            stop,
            stop_tx: Rc::new(stop_tx),
        };
        let result = actix_rt::System::new().block_on(phase(shared));
        media.shutdown_timeout(Duration::from_secs(2));
        let figures = result?;
        print_figures(self, &figures);
        Ok(())
    }
}

async fn build_world(args: &Load) -> Result<World, BoxError> {
    let target = &args.target;
    let api = target.api();
    let client = rest::client(target.timeout());
    let gateway = match &target.gateway_url {
        Some(url) => url.clone(),
        None => rest::discover_gateway(&client, &api).await?,
    };
    let gateway_url = rest::gateway_ws_url(
        &target.base(),
        target.gateway_url.as_deref(),
        &gateway,
        target.api_version,
        false,
    )?;
    let users = args.speakers + args.listeners;
    let run_id = crate::target::run_id();
    println!("registering {users} users at {api} (run id {run_id})");
    let reg = rest::register_all(&client, &api, users, args.setup_concurrency, &run_id).await;
    if reg.tokens.len() < users {
        return Err(format!("registration failed: {}", format_counts(&reg.errors)).into());
    }
    let tokens = reg.tokens;
    let owner = tokens.first().ok_or("no users")?;
    let made = setup::create_guilds(&client, &api, owner, 1, 1, &run_id).await;
    let guild = made
        .ok
        .into_iter()
        .next()
        .ok_or_else(|| format!("creating the guild: {}", format_counts(&made.errors)))?;
    let channel_id = setup::voice_channel(&client, &api, owner, &guild.id).await?;
    // 0 = no user limit: the room must hold everyone.
    let unlimited = json!({ "user_limit": 0 });
    let url = format!("{api}/channels/{channel_id}");
    if let Err(e) = rest::call_ok::<serde_json::Value>(
        &client,
        Method::PATCH,
        &url,
        Some(owner),
        Some(&unlimited),
        "PATCH /channels/{id}",
    )
    .await
    {
        eprintln!("warning: could not lift the voice channel's user limit: {e}");
    }
    let guilds = [guild];
    let (joins, _) =
        setup::join_all(&client, &api, &tokens[1..], &guilds, args.setup_concurrency).await;
    println!("guild joins: {}", joins.describe());
    if !joins.failed.is_empty() {
        return Err("not everyone could join the guild".into());
    }
    let [guild] = guilds;
    Ok(World {
        gateway_url,
        guild_id: guild.id,
        channel_id,
        tokens,
    })
}

/// What the run measured.
pub struct Figures {
    joined: usize,
    join_errors: std::collections::BTreeMap<String, usize>,
    join_secs: f64,
    pairs: (usize, usize),
    meter: Arc<Meter>,
    server_cpu: Option<f64>,
    cpu_note: String,
    rss: Option<(u64, u64)>,
    hold_errors: std::collections::BTreeMap<String, usize>,
}

async fn voice_phase(args: &Load, world: &World, shared: Shared) -> Result<Figures, BoxError> {
    let room = Rc::new(Room {
        gateway_url: world.gateway_url.clone(),
        guild_id: world.guild_id.clone(),
        channel_id: world.channel_id.clone(),
        meter: shared.meter.clone(),
        media: shared.media.clone(),
        timeout: args.target.timeout(),
        packet_bytes: args.packet_bytes,
        stop: shared.stop.clone(),
    });
    let client = rest::client(args.target.timeout());
    measure(args, &shared, |index| {
        let (room, client) = (room.clone(), client.clone());
        let token = world.tokens.get(index).cloned().unwrap_or_default();
        async move {
            let joined =
                participant::join(&client, &room, index, index < args.speakers, &token).await?;
            Ok(Box::pin(async move { participant::hold(&room, joined).await }) as Held)
        }
    })
    .await
}

/// Joins participants 0 … n−1 (`join(index)`, speakers first) a few at a time, holds each on
/// its own task, waits for every stream to flow, measures, and hangs up.
pub async fn measure<J>(
    args: &Load,
    shared: &Shared,
    join: impl Fn(usize) -> J,
) -> Result<Figures, BoxError>
where
    J: std::future::Future<Output = Result<Held, String>>,
{
    let participants = args.speakers + args.listeners;
    let meter = shared.meter.clone();
    let rss_before = args.server_pid.map(sys::rss_kib).transpose()?;
    // Join everyone, a few at a time; each joined participant is then held on its own task.
    println!(
        "joining {participants} participants ({} speakers), {} at a time",
        args.speakers, args.join_concurrency
    );
    let started = Instant::now();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    let joins: Vec<Result<(), String>> = futures_util::stream::iter(0..participants)
        .map(|index| {
            let held_tx = held_tx.clone();
            let joining = join(index);
            async move {
                let held = joining.await?;
                actix_rt::spawn(async move {
                    let _ = held_tx.send(held.await);
                });
                Ok(())
            }
        })
        .buffer_unordered(args.join_concurrency)
        .collect()
        .await;
    drop(held_tx);
    let join_secs = started.elapsed().as_secs_f64();
    let mut join_errors = std::collections::BTreeMap::new();
    for e in joins.iter().filter_map(|r| r.as_ref().err()) {
        *join_errors.entry(e.clone()).or_insert(0) += 1;
    }
    let joined = joins.iter().filter(|r| r.is_ok()).count();
    println!("joined: {joined}/{participants} in {join_secs:.1} s");

    let pairs = wait_for_streams(&meter, Duration::from_secs(args.settle)).await;
    let rss_after = args.server_pid.map(sys::rss_kib).transpose()?;

    println!("measuring for {} s", args.duration);
    let server_before = args.server_pid.and_then(|p| sys::cpu_time(Some(p)).ok());
    let window = sys::CpuWindow::start(args.server_pid.as_slice());
    meter.open();
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    meter.close();
    let wall = opened.elapsed().as_secs_f64();
    let server_after = args.server_pid.and_then(|p| sys::cpu_time(Some(p)).ok());
    let cpu_note = window.describe();
    // Packets sent at the window's end are still on their way.
    tokio::time::sleep(Duration::from_secs(args.drain)).await;

    let _ = shared.stop_tx.send(true);
    let mut hold_errors = std::collections::BTreeMap::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(outcome) = held_rx.recv().await {
            if let Err(e) = outcome {
                *hold_errors.entry(e).or_insert(0) += 1;
            }
        }
    })
    .await;
    Ok(Figures {
        joined,
        join_errors,
        join_secs,
        pairs,
        meter,
        server_cpu: server_before
            .zip(server_after)
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64() / wall.max(1e-9)),
        cpu_note,
        rss: rss_before.zip(rss_after),
        hold_errors,
    })
}

/// Waits until every (speaker, receiver) pair has had a packet, or `settle` passes.
async fn wait_for_streams(meter: &Meter, settle: Duration) -> (usize, usize) {
    let deadline = Instant::now() + settle;
    let mut next_note = Instant::now() + Duration::from_secs(5);
    loop {
        let (flowing, all) = meter.pairs_flowing();
        if flowing == all || Instant::now() >= deadline {
            println!("streams flowing: {flowing}/{all} (speaker, receiver) pairs");
            return (flowing, all);
        }
        if Instant::now() >= next_note {
            eprintln!("  streams flowing: {flowing}/{all}");
            next_note += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn print_figures(args: &Load, f: &Figures) {
    let participants = args.speakers + args.listeners;
    println!();
    println!("{}", crate::target::machine_note(&args.target.base()));
    println!(
        "participants: {}/{participants} joined in {:.1} s ({} speakers x {} listeners)",
        f.joined, f.join_secs, args.speakers, args.listeners
    );
    if !f.join_errors.is_empty() {
        println!("join errors: {}", format_counts(&f.join_errors));
    }
    if !f.hold_errors.is_empty() {
        println!("errors while held: {}", format_counts(&f.hold_errors));
    }
    println!(
        "streams flowing before the window: {}/{} pairs",
        f.pairs.0, f.pairs.1
    );
    let m = &f.meter;
    let partly = m.partly_heard();
    if !partly.is_empty() {
        let list: Vec<String> = partly
            .iter()
            .map(|(speaker, heard)| format!("speaker {speaker} by {heard}"))
            .collect();
        println!(
            "speakers not heard by all {} others: {}",
            participants - 1,
            list.join(", ")
        );
    }
    let secs = m.window_secs().max(1e-9);
    let (expected, delivered) = (m.expected(), m.delivered());
    let loss = 100.0 * expected.saturating_sub(delivered) as f64 / expected.max(1) as f64;
    println!(
        "sent: {} packets of {} B payload in {secs:.1} s ({:.0}/s; {} write errors)",
        m.sent(),
        args.packet_bytes,
        m.sent() as f64 / secs,
        m.send_errors()
    );
    println!("forwarded: {delivered} received of {expected} expected, loss {loss:.3}%");
    let rate = delivered as f64 / secs;
    println!("forwarded packets/s: {rate:.0}");
    let lat = m.latencies_ms();
    let pct =
        |p: f64| nearest_rank(&lat, p).map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} ms"));
    println!(
        "latency speaker -> SFU -> receiver (end to end over loopback, both client stacks included): \
         p50 {}, p99 {}, max {}",
        pct(50.0),
        pct(99.0),
        pct(100.0)
    );
    println!("cpu over the window: {}", f.cpu_note);
    match f.server_cpu {
        Some(cpu) if cpu > 0.0 => println!(
            "forwarded packets/s per core of server CPU: {:.0} (server used {:.0}% of one core)",
            rate / cpu,
            100.0 * cpu
        ),
        _ => println!("forwarded packets/s per core: n/a (pass --server-pid)"),
    }
    match f.rss {
        Some((before, after)) => println!(
            "server RSS: {:.1} MiB before joining, {:.1} MiB with everyone in, {:.1} KiB per participant",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after as f64 - before as f64) / f.joined.max(1) as f64
        ),
        None => println!("server RSS: not measured (pass --server-pid)"),
    }
}
