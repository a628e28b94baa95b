//! Long deletions answered as they go: the work runs on its own task (it finishes even when the
//! client hangs up, and every step commits, so a deletion cut short by a restart is resumed by
//! asking again), and the response streams one JSON object per line (`application/x-ndjson`)
//! for each step, ending with `{"done": true}` or `{"error": …}`.

use std::future::Future;

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::stream;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::http::error::ApiError;

/// Where a job reports its steps.
#[derive(Clone)]
pub struct Progress(mpsc::UnboundedSender<Bytes>);

impl Progress {
    pub fn step(&self, step: Value) {
        let mut line = step.to_string();
        line.push('\n');
        // The client may have gone; the work goes on.
        let _ = self.0.send(Bytes::from(line));
    }
}

/// Starts `job` and answers 200 with its progress.
pub fn stream<Job, Fut>(job: Job) -> HttpResponse
where
    Job: FnOnce(Progress) -> Fut,
    Fut: Future<Output = Result<(), ApiError>> + 'static,
{
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let progress = Progress(sender);
    let work = job(progress.clone());
    actix_web::rt::spawn(async move {
        match work.await {
            Ok(()) => progress.step(json!({ "done": true })),
            Err(error) => {
                tracing::error!(%error, "admin job failed");
                progress.step(json!({ "done": false, "error": error.to_string() }));
            }
        }
    });
    let lines = stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|line| line.map(Ok::<_, actix_web::Error>))
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(lines)
}
