//! Prometheus metrics at `/metrics`: HTTP requests by route, method and status; live gateway
//! sessions; open voice transports; database pool usage and statements run.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    gateway_sessions: Gauge,
    voice_transports: Gauge,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_waiting: Gauge,
    db_statements: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("spacebar");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let db_statements = Counter::default();
        registry.register(
            "db_statements",
            "Statements run on pooled database connections",
            db_statements.clone(),
        );
        let mut metrics = Self {
            requests,
            gateway_sessions: Gauge::default(),
            voice_transports: Gauge::default(),
            pool_connections: Gauge::default(),
            pool_idle: Gauge::default(),
            pool_waiting: Gauge::default(),
            db_statements,
            registry,
        };
        let gauges = [
            (
                "gateway_sessions",
                "Gateway sessions that reached READY",
                &metrics.gateway_sessions,
            ),
            (
                "voice_transports",
                "Open WebRTC peer connections (one per voice participant)",
                &metrics.voice_transports,
            ),
            (
                "db_pool_connections",
                "Open database connections",
                &metrics.pool_connections,
            ),
            (
                "db_pool_idle",
                "Idle database connections",
                &metrics.pool_idle,
            ),
            (
                "db_pool_waiting",
                "Requests waiting for a connection",
                &metrics.pool_waiting,
            ),
        ]
        .map(|(name, help, gauge)| (name, help, gauge.clone()));
        for (name, help, gauge) in gauges {
            metrics.registry.register(name, help, gauge);
        }
        metrics
    }
}

impl Metrics {
    /// The counter the database pool adds its statements to.
    pub fn db_statements(&self) -> Counter {
        self.db_statements.clone()
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, sessions: usize, transports: usize, pool: &crate::db::Pool) -> String {
        let pool = pool.status();
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.gateway_sessions.set(as_gauge(sessions));
        self.voice_transports.set(as_gauge(transports));
        self.pool_connections.set(as_gauge(pool.size));
        self.pool_idle.set(pool.available.try_into().unwrap_or(0));
        self.pool_waiting.set(as_gauge(pool.waiting));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("metrics did not encode");
        }
        text
    }
}

/// Middleware counting every answered request by its route pattern.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let state = req.app_data::<Data<AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let labels = RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        };
        state.metrics.requests.get_or_create(&labels).inc();
    }
    Ok(response)
}
