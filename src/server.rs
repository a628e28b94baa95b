//! Putting the server together: the shared state every handler sees, the supervision tree,
//! and the one HTTP listener that serves the API, the gateway and the rest.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use actix_http::body::MessageBody;
use actix_http::h1::ExpectHandler;
use actix_http::{HttpService, KeepAlive, Request};
use actix_server::GracefulShutdownSignal;
use actix_service::{IntoServiceFactory, ServiceFactory};
use actix_web::dev::{AppConfig, ServerHandle, ServiceResponse};
use actix_web::middleware::{from_fn, NormalizePath};
use actix_web::web::{Data, PayloadConfig};
use actix_web::App;
use spacebar_actors::interest::{Alone, Interest};
use spacebar_actors::presence::Board;
use spacebar_actors::registry::{ReconnectAll, SessionIds, TakeSession};
use spacebar_actors::rooms::{RoomLimits, RoomPorts};
use spacebar_actors::session::SessionConfig;
use spacebar_actors::tree::SessionThreads;
use spacebar_actors::voice::{Media, MediaSettings, MediaStartError};
use spacebar_actors::Tree;
use tokio::signal::unix::{signal, SignalKind};

use crate::cdn::{Cdn, CdnError};
use crate::cluster::nodes::ThisNode;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::credentials::TokenSigner;
use crate::db::guild_state::DbGuildStore;
use crate::db::instance_bans::InstanceBan;
use crate::db::instance_config::StoredKey;
use crate::db::{self, DbError};
use crate::http::rate_limits::RateLimiter;
use crate::http::upgrades::{Connection, Upgrades, WorkerApp};
use crate::metrics::Metrics;
use crate::request_threads::RequestThreads;
use crate::rooms::directory::DbRoomDirectory;
use crate::rooms::events::event_log;
use crate::rooms::RoomTokens;
use crate::snowflake::Snowflakes;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Cdn(#[from] CdnError),
    #[error(transparent)]
    Media(#[from] MediaStartError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("cannot listen on {addr} (http.listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A built server, bound and ready to run.
pub struct Server {
    /// Where it listens (useful with port 0).
    pub addr: SocketAddr,
    /// The supervision tree, to reach the actors (a graceful stop tells every session first).
    pub tree: Tree,
    server: actix_web::dev::Server,
    state: Weak<AppState>,
}

impl Server {
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// What stops this server gracefully, from any thread.
    pub fn stopping(&self) -> Stopping {
        Stopping {
            state: self.state.clone(),
            handle: self.server.handle(),
        }
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully (see [`Stopping`]).
    pub async fn run(self) -> std::io::Result<()> {
        let stopping = self.stopping();
        let drain_asked = self.state.upgrade().map(|state| state.node.drain_asked());
        actix_web::rt::spawn(async move {
            let Ok(mut terminate) = signal(SignalKind::terminate()) else {
                return;
            };
            let Ok(mut interrupt) = signal(SignalKind::interrupt()) else {
                return;
            };
            let asked = async {
                match drain_asked {
                    Some(asked) => asked.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
                _ = asked => {}
            }
            tracing::info!("shutting down: telling every gateway session to reconnect");
            stopping.stop_gracefully().await;
        });
        self.server.await
    }
}

/// Stops a server gracefully (SIGTERM does, and tests).
#[derive(Clone)]
pub struct Stopping {
    state: Weak<AppState>,
    handle: ServerHandle,
}

impl Stopping {
    /// The server's state while it runs (the in-process tests look at what a node holds).
    pub fn state(&self) -> Option<Arc<AppState>> {
        self.state.upgrade()
    }

    /// Marks the node draining (it takes no new gateway connections), tells every gateway
    /// client to reconnect and resume (op 7); in a cluster gives its voice rooms up at once,
    /// waits for its sessions to resume on other nodes (`cluster.drain_timeout_ms` at most)
    /// and leaves the rest in Redis, where any node resumes them; takes the node out of the
    /// cluster's registry, gives the frames a moment to leave, then stops the server, letting
    /// in-flight requests finish.
    pub async fn stop_gracefully(&self) {
        if let Some(state) = self.state.upgrade() {
            state.node.drain();
            let told = state.tree.sessions.send(ReconnectAll).await.unwrap_or(0);
            tracing::info!(sessions = told, "sessions told to reconnect");
            if let Some(cluster) = &state.cluster {
                cluster.placement.give_up(&state).await;
                hand_over_sessions(&state, cluster).await;
                cluster.leave().await;
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
        self.handle.stop(true).await;
    }
}

/// Draining a cluster node: waits for its sessions to resume on other nodes (each RESUME there
/// takes its session from here), then leaves those left in Redis.
async fn hand_over_sessions(state: &AppState, cluster: &Cluster) {
    let config = state.config();
    let deadline = Instant::now() + Duration::from_millis(config.cluster.drain_timeout_ms);
    let mut left = state
        .tree
        .sessions
        .send(SessionIds)
        .await
        .unwrap_or_default();
    while !left.is_empty() && Instant::now() < deadline {
        actix_web::rt::time::sleep(DRAIN_CHECK).await;
        left = state
            .tree
            .sessions
            .send(SessionIds)
            .await
            .unwrap_or_default();
    }
    if left.is_empty() {
        return tracing::info!("every session resumed on another node");
    }
    let mut parked = Vec::with_capacity(left.len());
    for session_id in left {
        let take = TakeSession {
            session_id: session_id.to_string(),
            release: true,
        };
        if let Ok(Some(handover)) = state.tree.sessions.send(take).await {
            parked.push(handover);
        }
    }
    let window = Duration::from_millis(config.gateway.resume_window_ms);
    match cluster.park(&parked, window).await {
        Ok(()) => tracing::info!(sessions = parked.len(), "sessions left in Redis to resume"),
        Err(error) => {
            tracing::error!(%error, "sessions could not be left in Redis: they start over")
        }
    }
}

/// How often a draining node looks whether its sessions have gone.
const DRAIN_CHECK: Duration = Duration::from_millis(100);

/// Builds the server on the current actix system, bound and ready to run: the configuration
/// operators changed through the admin API (kept in the database) is laid over `config`.
pub async fn build(
    config: Config,
    database_url: &str,
    secret: &[u8],
) -> Result<Server, ServerError> {
    let metrics = Metrics::default();
    let request_threads = RequestThreads::start(cores()).map_err(DbError::from)?;
    let pool = db::pool_waiting(
        database_url,
        config.database.pool_size,
        config.database.pool_wait(),
        metrics.db_statements(),
        Some(request_threads.clone()),
    )?;
    let (config, banned_ips) = {
        let mut conn = pool.get().await.map_err(|e| DbError::Pool(e.to_string()))?;
        let changes = StoredKey::all(&mut conn).await.map_err(DbError::from)?;
        let config = config.with_changes(&changes)?;
        let banned = InstanceBan::banned_ips(&mut conn)
            .await
            .map_err(DbError::from)?;
        (config, banned)
    };
    let sessions = Arc::new(SessionConfig {
        heartbeat_interval: Duration::from_millis(config.gateway.heartbeat_interval_ms),
        heartbeat_grace: Duration::from_millis(config.gateway.heartbeat_grace_ms),
        identify_timeout: Duration::from_millis(config.gateway.identify_timeout_ms),
        max_frame_bytes: config.gateway.max_frame_bytes,
        resume_window: Duration::from_millis(config.gateway.resume_window_ms),
        resume_buffer: config.gateway.resume_buffer,
        commands_per_minute: config.gateway.commands_per_minute,
        outbound_queue: config.gateway.outbound_queue,
        outbound_bytes: config.gateway.outbound_queue_bytes,
        min_large_threshold: config.gateway.min_large_threshold,
    });
    // Bound before any actor starts: a taken port is then a plain error, with nothing to stop.
    let listen_addr = config.http.listen;
    let listener = listen(listen_addr)?;
    let cdn = Cdn::new(&config)?;
    let media = Media::start(MediaSettings {
        bind_ip: config.voice.bind_ip,
        public_ip: config.voice.public_ip()?,
        port_min: config.voice.udp_port_min,
        port_max: config.voice.udp_port_max,
        bot_port: config.voice.bot_udp_port,
        threads: config.voice.media_threads,
        room_loops: config.voice.room_loops,
        room_limit: config.voice.room_limit,
    })?;
    let tls = match (config.http.tls_cert.as_str(), config.http.tls_key.as_str()) {
        ("", "") => None,
        (cert, key) => Some(crate::tls::server_config(cert.as_ref(), key.as_ref())?),
    };
    let workers = config.http.workers;
    let max_body = config.http.max_json_bytes;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: listen_addr,
        source,
    })?;
    let node = ThisNode::new(node_id(&config, addr), addr, &config.cluster.advertise_url);
    let cluster = match config.cluster.enabled() {
        true => {
            crate::cluster::nodes::warn_if_private_storage(&config);
            Some(Cluster::connect(&config.cluster, node.id.clone()).await?)
        }
        false => None,
    };
    let snowflakes = cluster.as_ref().map_or_else(
        || Snowflakes::new(config.instance.worker_id),
        |cluster| Snowflakes::for_node(cluster.worker()),
    );
    let interest = cluster
        .as_ref()
        .map_or_else(|| Arc::new(Alone) as Arc<dyn Interest>, Cluster::interest);
    let board = cluster
        .as_ref()
        .map_or_else(|| Arc::new(Alone) as Arc<dyn Board>, Cluster::board);
    let session_threads = SessionThreads::new(config.gateway.session_threads);
    let (room_events, room_event_writer) = event_log();
    let room_limits = RoomLimits {
        max_rooms: usize::try_from(config.rooms.max_rooms).unwrap_or(usize::MAX),
        max_participants: config.rooms.max_participants,
        outbound_bytes: config.rooms.outbound_queue_bytes,
    };
    let state = Data::new(AppState {
        live_config: RwLock::new(Arc::new(config)),
        banned_ips: RwLock::new(banned_ips),
        rate_limiter: RateLimiter::default(),
        pool: pool.clone(),
        tokens: Arc::new(TokenSigner::new(secret)),
        room_tokens: RoomTokens::new(secret),
        room_webhooks: Default::default(),
        snowflakes,
        tree: Tree::start(
            Arc::new(DbGuildStore { pool: pool.clone() }),
            interest,
            board,
            cores(),
            media,
            RoomPorts {
                directory: Arc::new(DbRoomDirectory { pool: pool.clone() }),
                observer: Arc::new(room_events),
                limits: room_limits,
            },
            session_threads,
        ),
        metrics,
        sessions,
        cdn,
        cluster,
        node,
        request_threads,
    });
    let weak_state = Arc::downgrade(&state.clone().into_inner());
    room_event_writer.run(weak_state.clone());
    if let Some(cluster) = &state.cluster {
        cluster.listen(weak_state.clone());
        // Changes made by other nodes between reading them above and hearing the every-node
        // channel (in `Cluster::connect`) are read again now.
        if let Err(error) = state.reload_shared().await {
            tracing::error!(%error, "the shared configuration did not reload");
        }
    }
    let tree = state.tree.clone();
    let app = move || {
        App::new()
            .app_data(state.clone())
            .app_data(PayloadConfig::new(max_body))
            .configure(crate::http::configure)
            .configure(crate::cdn::configure)
            .default_service(actix_web::web::to(crate::http::not_found))
            .wrap(from_fn(crate::http::body_deadline::bound_body))
            .wrap(from_fn(crate::http::rate_limits::limit))
            .wrap(from_fn(crate::http::banned::refuse_banned))
            .wrap(from_fn(crate::http::nul::refuse_nul))
            .wrap(from_fn(crate::metrics::count_requests))
            .wrap(from_fn(crate::http::request_span::trace_request))
            .wrap(NormalizePath::trim())
            .wrap(from_fn(crate::http::cors::cors))
    };
    let mut builder = actix_server::Server::build()
        .shutdown_timeout(5)
        // Signals are ours: sessions are told to reconnect before the listener stops.
        .disable_signals();
    if workers > 0 {
        builder = builder.workers(workers);
    }
    let stopping = builder.graceful_shutdown_signal();
    let served = match tls {
        Some(tls) => builder.listen("spacebar-https", listener, move || {
            http_service(app(), addr, true, &stopping).rustls_0_23(tls.clone())
        }),
        None => builder.listen("spacebar-http", listener, move || {
            http_service(app(), addr, false, &stopping).tcp()
        }),
    };
    let server = served.map_err(|source| ServerError::Bind { addr, source })?;
    Ok(Server {
        addr,
        tree,
        server: server.run(),
        state: weak_state,
    })
}

/// One worker's HTTP service, set up as actix-web's `HttpServer` sets it up, except that an
/// upgraded connection (a WebSocket) leaves actix-http's dispatcher once answered (see
/// [`crate::http::upgrades`]).
fn http_service<A, B, T>(
    app: impl IntoServiceFactory<A, Request>,
    addr: SocketAddr,
    secure: bool,
    stopping: &GracefulShutdownSignal,
) -> HttpService<T, WorkerApp<A::Service>, B, ExpectHandler, Upgrades<A::Service>>
where
    A: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
    T: Connection,
{
    // What `HttpServer` gives the application: the host when a request names none, and the
    // scheme. actix-web exposes this constructor only as this name; the lock file pins it.
    let config = AppConfig::__priv_test_new(secure, addr.to_string(), addr);
    let app_service = WorkerApp::new(app, config);
    let stopping = stopping.clone();
    HttpService::build()
        // Idle keep-alive connections close as soon as the server starts stopping.
        .graceful_shutdown_signal(move || {
            let stopping = stopping.clone();
            async move { stopping.notified().await }
        })
        .keep_alive(KeepAlive::default())
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .h1_allow_half_closed(true)
        // Gateway frames are small and latency-bound: no Nagle delay on top of clients' delayed
        // ACKs.
        .tcp_nodelay(true)
        .local_addr(addr)
        .upgrade(Upgrades(app_service.clone()))
        .finish(app_service)
}

/// The listening socket, as actix-web would make it (address reuse, a deep accept backlog).
fn listen(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    use socket2::{Domain, Socket, Type};
    let bind = || {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(2048)?;
        Ok(socket.into())
    };
    bind().map_err(|source| ServerError::Bind { addr, source })
}

/// This node's name among the others: as configured, or `<host name>:<port>`.
fn node_id(config: &Config, bound: SocketAddr) -> Arc<str> {
    if !config.cluster.node_id.is_empty() {
        return config.cluster.node_id.as_str().into();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), bound.port()).into()
}

/// Threads for guild actors (so fan-out of different guilds runs in parallel) and for requests'
/// database work: one per core each.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
