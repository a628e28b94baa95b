//! Operational endpoints: `/healthz` (the process answers), `/readyz` (the database answers,
//! and a pooled connection is free within a second: a starved pool is not ready; in a cluster,
//! Redis answers too: without the bus this node's sessions miss what the others do),
//! `/metrics` (Prometheus text).

use std::time::Duration;

use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use deadpool::managed::Timeouts;
use diesel_async::RunQueryDsl;
use spacebar_actors::registry::SessionCount;

use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// How long `/readyz` waits for a pooled connection: probes time out quickly, and a pool with
/// none free for this long is starved.
const READY_WAIT: Duration = Duration::from_secs(1);

async fn readyz(state: Data<AppState>) -> HttpResponse {
    let timeouts = Timeouts {
        wait: Some(READY_WAIT.min(state.config().database.pool_wait())),
        ..state.pool.timeouts()
    };
    let reachable = match state.pool.timeout_get(&timeouts).await {
        Ok(mut conn) => diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if !reachable {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "database unreachable" }));
    }
    if let Some(cluster) = &state.cluster {
        // Draining: the balancer should send no one here any more.
        if state.node.is_draining() {
            return HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "draining" }));
        }
        if !cluster.reachable(READY_WAIT).await {
            return HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "redis unreachable" }));
        }
    }
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(state: Data<AppState>) -> HttpResponse {
    let sessions = state.tree.sessions.send(SessionCount).await.unwrap_or(0);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            state
                .metrics
                .render(sessions, state.tree.voice.live_transports(), &state.pool),
        )
}
