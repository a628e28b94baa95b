//! Decoding and converting images, a few at a time: one can take a core and tens of megabytes
//! for a while, so they run on a small pool of their own threads (`cdn.image_workers`, one per
//! core by default) and at most `cdn.image_queue` more wait; past that the caller is told the
//! server is busy instead of queueing memory. Own threads, not tokio's blocking pool, also
//! keep the allocator's per-thread arenas (which hold on to freed decode buffers) few.
//! The same bounded pool shape runs password hashes (`credentials::password`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use spacebar_actors::sync::lock;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error("every worker is busy and the queue is full")]
    Busy,
    #[error("an image job panicked")]
    Failed,
}

type Job = Box<dyn FnOnce() + Send>;

pub struct ImageWork {
    queue: SyncSender<Job>,
}

impl ImageWork {
    /// `workers` threads (0: one per core), `max_waiting` jobs queued for them.
    pub fn new(workers: usize, max_waiting: usize) -> Self {
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        let (queue, jobs) = sync_channel::<Job>(max_waiting);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..workers {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("image-{n}"))
                .spawn(move || work(&jobs));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start an image worker");
            }
        }
        Self { queue }
    }

    /// `job`'s result, run on a worker once one is free; `Busy` when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        self.queue.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => WorkError::Busy,
            TrySendError::Disconnected(_) => WorkError::Failed,
        })?;
        result.await.map_err(|_| WorkError::Failed)
    }
}

/// A worker: jobs one after another until the pool is dropped. A job that panics (a decoder
/// bug on hostile input) fails alone: its caller hears `Failed`, the worker goes on.
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = lock(jobs).recv();
        let Ok(job) = next else {
            return;
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("an image job panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_waiting() {
        let work = Arc::new(ImageWork::new(1, 1));
        let slow = || std::thread::sleep(Duration::from_millis(300));
        let running = tokio::spawn({
            let work = work.clone();
            async move { work.run(slow).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = tokio::spawn({
            let work = work.clone();
            async move { work.run(|| 7).await.ok() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(work.run(|| 0).await, Err(WorkError::Busy)));
        assert!(running.await.unwrap());
        assert_eq!(waiting.await.unwrap(), Some(7));
        #[allow(clippy::panic)]
        let panicked = work.run(|| panic!("a decoder bug")).await;
        assert!(matches!(panicked, Err(WorkError::Failed)));
        assert_eq!(work.run(|| 1).await.unwrap(), 1, "the worker goes on");
    }
}
