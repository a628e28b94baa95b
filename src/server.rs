//! Putting the server together: the shared state every handler sees, the supervision tree,
//! and the one HTTP listener that serves the API, the gateway and the rest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::{from_fn, NormalizePath};
use actix_web::web::{Data, PayloadConfig};
use actix_web::{App, HttpServer};
use spacebar_actors::session::SessionConfig;
use spacebar_actors::Tree;

use crate::config::Config;
use crate::credentials::TokenSigner;
use crate::db::guild_state::DbGuildStore;
use crate::db::{self, DbError, Pool};
use crate::metrics::Metrics;
use crate::snowflake::Snowflakes;

/// What every handler and every gateway session shares. Created once per server.
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub tokens: Arc<TokenSigner>,
    pub snowflakes: Snowflakes,
    pub tree: Tree,
    pub metrics: Metrics,
    pub sessions: Arc<SessionConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Builds the server on the current actix system, bound and ready to be awaited. Returns it with
/// the address it listens on (useful with port 0).
pub fn build(
    config: Config,
    database_url: &str,
    secret: &[u8],
) -> Result<(actix_web::dev::Server, SocketAddr), ServerError> {
    let pool = db::pool(database_url, config.database.pool_size)?;
    let sessions = Arc::new(SessionConfig {
        heartbeat_interval: Duration::from_millis(config.gateway.heartbeat_interval_ms),
        heartbeat_grace: Duration::from_millis(config.gateway.heartbeat_grace_ms),
        identify_timeout: Duration::from_millis(config.gateway.identify_timeout_ms),
        max_frame_bytes: config.gateway.max_frame_bytes,
    });
    let listen = config.http.listen;
    let workers = config.http.workers;
    let max_body = config.http.max_json_bytes;
    let state = Data::new(AppState {
        config: Arc::new(config),
        pool: pool.clone(),
        tokens: Arc::new(TokenSigner::new(secret)),
        snowflakes: Snowflakes::default(),
        tree: Tree::start(
            Arc::new(DbGuildStore { pool: pool.clone() }),
            guild_threads(),
        ),
        metrics: Metrics::default(),
        sessions,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(PayloadConfig::new(max_body))
            .configure(crate::http::configure)
            .default_service(actix_web::web::to(crate::http::not_found))
            .wrap(from_fn(crate::metrics::count_requests))
            .wrap(NormalizePath::trim())
            .wrap(from_fn(crate::http::cors::cors))
    })
    .shutdown_timeout(5);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = server.bind(listen).map_err(|source| ServerError::Bind {
        addr: listen,
        source,
    })?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((server.run(), addr))
}

/// Threads for guild actors: one per core, so fan-out of different guilds runs in parallel.
fn guild_threads() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
