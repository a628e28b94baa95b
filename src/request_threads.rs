//! Threads for requests' database work, apart from the HTTP workers.
//!
//! The HTTP workers also run every gateway connection (actix-web serves the WebSocket on the
//! worker that accepted it), so while a message fans out to thousands of sessions each worker
//! has a long queue of connection tasks. A request resumed on a worker after each database
//! round trip waits behind that queue every time: a POST with ten awaits waited ten queues
//! (p50 85 ms under fan-out, 5 ms idle). Work run here waits for no connection task, and the
//! database connections' own I/O runs here too, so a query's answer is read at once. These
//! threads mostly sleep, which is what the kernel's scheduler favours when they wake.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tracing::Instrument;

/// The threads, each a single-threaded runtime (tasks stay where they start); they stop when
/// this is dropped.
#[derive(Clone)]
pub struct RequestThreads {
    inner: Arc<Inner>,
}

struct Inner {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropped with the last clone: each thread's runtime then finishes, on its own thread.
    _stop: Vec<oneshot::Sender<()>>,
}

/// The threads stopped (the server is stopping) before the work finished.
#[derive(Debug, thiserror::Error)]
#[error("the server is stopping")]
pub struct Stopped;

impl RequestThreads {
    /// Starts `threads` threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for index in 0..threads.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("requests-{index}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                handles,
                next: AtomicUsize::new(0),
                _stop: stops,
            }),
        })
    }

    /// The next thread's runtime, in turn.
    pub fn handle(&self) -> &Handle {
        let next = self.inner.next.fetch_add(1, Ordering::Relaxed);
        &self.inner.handles[next % self.inner.handles.len()]
    }

    /// Runs `work` on one of the threads, in the caller's span, and waits for its result. A
    /// panic there is a panic here, as if `work` had run in place.
    pub async fn run<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Stopped> + Send + 'static,
    {
        let task = self
            .handle()
            .spawn(work.instrument(tracing::Span::current()));
        match task.await {
            Ok(done) => done,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(Stopped.into()),
        }
    }
}
