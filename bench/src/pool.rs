//! Many gateway sessions on a few client threads: started at a fixed rate,
//! watched until READY, then held until told to stop.
//!
//! Session i goes to thread i % T (one actix-rt system each) and starts at
//! `start + i/rate`, so the global pace is even. The coordinator (the caller's
//! thread) only ever waits with a deadline.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::session::{self, DispatchObserver, SessionCtx, SessionReport, Shared};
use crate::{rest, BoxError};

/// How to run the sessions.
pub struct PoolCfg {
    /// Full gateway URLs (with `?v=..&encoding=json[&compress=zlib-stream]`):
    /// session i connects to `urls[i % urls.len()]` (the nodes of a cluster).
    pub urls: Vec<String>,
    pub compress: bool,
    /// Bound of every single wait of a session.
    pub timeout: Duration,
    /// Sessions started per second.
    pub rate: f64,
    pub threads: usize,
    pub intents: u64,
    pub capabilities: u64,
    pub observer: Option<Arc<dyn DispatchObserver>>,
    /// Sessions drop their sockets and RESUME on [`Pool::drop_all`].
    pub resumable: bool,
    /// Sessions told to reconnect (op 7) RESUME on the next node's URL
    /// (`urls[(i + 1) % urls.len()]`): a draining node's clients move on.
    pub follow_reconnect: bool,
}

/// What a worker thread hands back.
#[derive(Default)]
pub struct WorkerResult {
    pub reports: Vec<SessionReport>,
    /// Sessions never started because the run ended first.
    pub not_started: usize,
    /// Sessions that had not finished within the grace period after stop.
    pub unfinished: usize,
}

/// Running sessions.
pub struct Pool {
    pub shared: Arc<Shared>,
    /// When the first session starts.
    pub start: Instant,
    /// Sessions asked for.
    pub n: usize,
    rate: f64,
    timeout: Duration,
    stop_tx: watch::Sender<bool>,
    drop_tx: watch::Sender<bool>,
    workers: Vec<thread::JoinHandle<WorkerResult>>,
}

/// One session per token; `tokens[i]` gets session index i.
pub fn start(tokens: Vec<String>, cfg: &PoolCfg) -> Result<Pool, BoxError> {
    let n = tokens.len();
    if n == 0 {
        return Err("no sessions to open".into());
    }
    if cfg.urls.is_empty() {
        return Err("no gateway URL to open sessions to".into());
    }
    if !(cfg.rate.is_finite() && cfg.rate > 0.0) {
        return Err("the session rate must be a positive number".into());
    }
    let threads = cfg.threads.clamp(1, n);
    let mut shares: Vec<Vec<(usize, String)>> = vec![Vec::new(); threads];
    for (i, token) in tokens.into_iter().enumerate() {
        shares[i % threads].push((i, token));
    }
    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drop_tx, drop_rx) = watch::channel(false);
    let start = Instant::now() + Duration::from_millis(200);
    let mut workers = Vec::with_capacity(threads);
    for (k, share) in shares.into_iter().enumerate() {
        let w = Worker {
            urls: cfg.urls.clone(),
            compress: cfg.compress,
            timeout: cfg.timeout,
            rate: cfg.rate,
            start,
            intents: cfg.intents,
            capabilities: cfg.capabilities,
            observer: cfg.observer.clone(),
            shared: shared.clone(),
            stop: stop_rx.clone(),
            drop_signal: cfg.resumable.then(|| drop_rx.clone()),
            follow_reconnect: cfg.follow_reconnect,
        };
        let spawned = thread::Builder::new()
            .name(format!("bench-{k}"))
            .spawn(move || w.run(share));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                // Do not leave the threads already started running forever.
                stop_tx.send_replace(true);
                for w in workers {
                    let _ = w.join();
                }
                return Err(e.into());
            }
        }
    }
    Ok(Pool {
        shared,
        start,
        n,
        rate: cfg.rate,
        timeout: cfg.timeout,
        stop_tx,
        drop_tx,
        workers,
    })
}

/// [`start`], then waits until every session is READY or failed and prints
/// how it went; an error (the sessions closed) if none got READY.
pub fn start_ready(tokens: Vec<String>, cfg: &PoolCfg) -> Result<Pool, BoxError> {
    let pool = start(tokens, cfg)?;
    if !pool.wait_resolved() {
        println!("warning: gave up waiting for READY on some sessions");
    }
    println!(
        "{} sessions ready, {} failed after {:.2} s",
        pool.ready(),
        pool.failed(),
        pool.start.elapsed().as_secs_f64()
    );
    if pool.ready() == 0 {
        pool.stop()?;
        return Err("no gateway session got READY".into());
    }
    Ok(pool)
}

impl Pool {
    pub fn ready(&self) -> usize {
        self.shared.ready.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> usize {
        self.shared.failed.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Sessions that got RESUMED after [`Pool::drop_all`].
    pub fn resumed(&self) -> usize {
        self.shared.resumed.load(Ordering::Relaxed)
    }

    /// Every READY session drops its socket (no close frame), reconnects and
    /// RESUMEs. Only with [`PoolCfg::resumable`]; once per session.
    pub fn drop_all(&self) {
        self.drop_tx.send_replace(true);
    }

    /// Sessions READY and not lost since.
    pub fn open(&self) -> usize {
        self.ready().saturating_sub(self.dropped())
    }

    /// Blocks until every session is READY or failed (`true`), or until the
    /// last one has had 3 timeouts (connect, HELLO, READY) since its start
    /// (`false`). Prints progress every 5 s.
    pub fn wait_resolved(&self) -> bool {
        let last_start = self.start + Duration::from_secs_f64((self.n - 1) as f64 / self.rate);
        let deadline = last_start + self.timeout * 3 + Duration::from_secs(5);
        let mut next_progress = Instant::now() + Duration::from_secs(5);
        loop {
            let (ready, failed) = (self.ready(), self.failed());
            if ready + failed >= self.n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if now >= next_progress {
                println!(
                    "  {:.1} s: {ready} ready, {failed} failed",
                    now.saturating_duration_since(self.start).as_secs_f64()
                );
                next_progress += Duration::from_secs(5);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Closes every session and collects the reports.
    pub fn stop(self) -> Result<Vec<WorkerResult>, BoxError> {
        self.stop_tx.send_replace(true);
        let mut results = Vec::with_capacity(self.workers.len());
        for w in self.workers {
            match w.join() {
                Ok(r) => results.push(r),
                Err(_) => return Err("a worker thread panicked".into()),
            }
        }
        Ok(results)
    }
}

/// What a worker thread needs besides its share of tokens.
struct Worker {
    urls: Vec<String>,
    compress: bool,
    timeout: Duration,
    rate: f64,
    start: Instant,
    intents: u64,
    capabilities: u64,
    observer: Option<Arc<dyn DispatchObserver>>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    drop_signal: Option<watch::Receiver<bool>>,
    follow_reconnect: bool,
}

impl Worker {
    /// Its own actix-rt system: starts its share of the sessions on schedule,
    /// then collects their reports after the stop signal.
    fn run(self, share: Vec<(usize, String)>) -> WorkerResult {
        let total = share.len();
        actix_rt::System::new().block_on(async move {
            let client = rest::client(self.timeout);
            let urls: Vec<Rc<str>> = self.urls.into_iter().map(Rc::from).collect();
            let mut stop = self.stop.clone();
            let mut handles = Vec::with_capacity(total);
            for (i, token) in share {
                let at = self.start + Duration::from_secs_f64(i as f64 / self.rate);
                let stopped = tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => false,
                    _ = session::shutdown_signal(&mut stop) => true,
                };
                if stopped {
                    break;
                }
                handles.push(actix_rt::spawn(session::run(SessionCtx {
                    index: i,
                    client: client.clone(),
                    url: urls[i % urls.len()].clone(),
                    token,
                    compress: self.compress,
                    timeout: self.timeout,
                    shutdown: self.stop.clone(),
                    shared: self.shared.clone(),
                    intents: self.intents,
                    capabilities: self.capabilities,
                    close_after_ready: false,
                    keep_ready: false,
                    observer: self.observer.clone(),
                    drop_signal: self.drop_signal.clone(),
                    reconnect_url: self
                        .follow_reconnect
                        .then(|| urls[(i + 1) % urls.len()].clone()),
                })));
            }
            let mut result = WorkerResult {
                not_started: total - handles.len(),
                ..WorkerResult::default()
            };
            // Sessions run until stop; after it, each needs at most one send
            // timeout plus the close wait.
            session::shutdown_signal(&mut stop).await;
            let grace = tokio::time::Instant::now() + self.timeout + Duration::from_secs(5);
            for handle in handles {
                match tokio::time::timeout_at(grace, handle).await {
                    Ok(Ok(report)) => result.reports.push(report),
                    Ok(Err(_)) | Err(_) => result.unfinished += 1,
                }
            }
            result
        })
    }
}
