//! The database: the schema, the queries (one file per table), the connection pool, the
//! embedded migrations, and the embedded default cluster.
//!
//! Query functions take `&mut AsyncPgConnection`, so they run alone on a pooled connection or
//! together inside one transaction.

pub mod application_commands;
pub mod applications;
pub mod audit_log;
pub mod auth_sessions;
pub mod bans;
pub mod channels;
pub mod embedded;
pub mod emojis;
pub mod guild_state;
pub mod guild_templates;
pub mod guild_welcome_screens;
pub mod guild_widgets;
pub mod guilds;
pub mod instance_bans;
pub mod instance_config;
pub mod interactions;
pub mod invites;
pub mod members;
pub mod messages;
pub mod pending_uploads;
pub mod reactions;
pub mod read_states;
pub mod registration_tokens;
pub mod relationships;
pub mod roles;
pub mod room_api_keys;
pub mod room_events;
pub mod rooms;
pub mod schema;
pub mod search;
pub mod settings_protos;
pub mod stickers;
pub mod users;
pub mod webhooks;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;
use prometheus_client::metrics::counter::Counter;

use crate::config::Config;
use crate::request_threads::RequestThreads;
use embedded::{EmbeddedError, EmbeddedPostgres};

pub use diesel_async::AsyncPgConnection as Connection;
pub type Pool = deadpool::Pool<AsyncPgConnection>;
pub type PoolError = deadpool::PoolError;
/// A connection borrowed from the pool, returned to it when dropped.
pub type Pooled = deadpool::Object<AsyncPgConnection>;

/// Every migration in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The database an embedded cluster serves the server from.
const EMBEDDED_DATABASE: &str = "spacebar";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(Box<dyn std::error::Error + Send + Sync>),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The database the server runs on: a configured URL, or the embedded cluster it started.
#[derive(Debug)]
pub struct Database {
    url: String,
    /// Kept alive for as long as the server runs; dropping it stops the cluster.
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to the configured database, or starts the embedded cluster (creating it on
    /// first run) when no URL is set, and applies pending migrations. Blocking: call it before
    /// the async runtime starts.
    pub fn open(config: &Config) -> Result<Self, DbError> {
        let database = if config.database.url.is_empty() {
            let cluster = EmbeddedPostgres::start(
                &config.storage.data_dir.join("postgres"),
                &config.database.postgres_bin_dir,
                true,
            )?;
            create_database(&cluster.url("postgres"), EMBEDDED_DATABASE)?;
            Self {
                url: cluster.url(EMBEDDED_DATABASE),
                embedded: Some(cluster),
            }
        } else {
            Self {
                url: config.database.url.clone(),
                embedded: None,
            }
        };
        migrate(&database.url)?;
        Ok(database)
    }

    /// The database as a command-line tool beside a running server uses it: that server's
    /// embedded cluster while it runs (a second postmaster on it is refused), else as
    /// [`open`](Self::open) does.
    pub fn attach(config: &Config) -> Result<Self, DbError> {
        let cluster_dir = config.storage.data_dir.join("postgres");
        match embedded::running_url(&cluster_dir, EMBEDDED_DATABASE) {
            Some(url) if config.database.url.is_empty() => {
                migrate(&url)?;
                Ok(Self {
                    url,
                    embedded: None,
                })
            }
            _ => Self::open(config),
        }
    }

    /// The server's connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this server started its own cluster.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }
}

/// Applies every pending migration. Blocking: diesel's migration harness is synchronous, so it
/// runs through diesel-async's connection wrapper on its own runtime.
pub fn migrate(url: &str) -> Result<(), DbError> {
    let mut connection =
        <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(url)?;
    connection
        .run_pending_migrations(MIGRATIONS)
        .map_err(DbError::Migration)?;
    Ok(())
}

/// Creates `name` unless it exists. Blocking.
pub fn create_database(admin_url: &str, name: &str) -> Result<(), DbError> {
    block_on(async {
        let mut connection = AsyncPgConnection::establish(admin_url).await?;
        let sql = format!("CREATE DATABASE \"{name}\"");
        match diesel::sql_query(sql).execute(&mut connection).await {
            Ok(_) => Ok(()),
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("already exists") =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    })
}

/// Runs one future to completion on a throwaway runtime (start-up and tooling only).
pub fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// [`pool_waiting`] at most `database.pool_wait_ms`'s default (tools), counting statements
/// nowhere.
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    pool_waiting(
        url,
        size,
        std::time::Duration::from_secs(5),
        Counter::default(),
        None,
    )
}

/// A pool of up to `size` connections to `url`; connections open on first use. Taking one
/// gives up after `wait` (waiting for a free one, or connecting a new one): a starved pool or
/// a database that is down is then an error to answer (503), not a request that hangs.
/// Every statement its connections run (BEGIN and COMMIT too) adds one to `statements`.
/// With `threads`, each connection's I/O runs there, not on whichever thread first asked for it
/// (see [`RequestThreads`]).
pub fn pool_waiting(
    url: &str,
    size: usize,
    wait: std::time::Duration,
    statements: Counter,
    threads: Option<RequestThreads>,
) -> Result<Pool, DbError> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // A connection is handed out without a `SELECT 1` first: that probe cost every checkout a
    // round trip. One whose socket closed is still dropped (the check is local), and one that
    // broke unnoticed fails its first statement, as it could right after any probe.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let statements = statements.clone();
        let threads = threads.clone();
        async move {
            // The connection's driver task is spawned where it is established.
            let mut connection = match threads {
                Some(threads) => {
                    let url = url.to_owned();
                    threads
                        .handle()
                        .spawn(async move { AsyncPgConnection::establish(&url).await })
                        .await
                        .map_err(|error| {
                            diesel::ConnectionError::BadConnection(error.to_string())
                        })??
                }
                None => AsyncPgConnection::establish(url).await?,
            };
            connection.set_instrumentation(CountStatements(statements));
            Ok(connection)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()
        .map_err(|error| DbError::Pool(error.to_string()))
}

/// Counts the statements a connection starts: what requests cost the database, in round
/// trips, shows as `spacebar_db_statements_total`.
struct CountStatements(Counter);

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            self.0.inc();
        }
    }
}

/// A statement built but not run yet: to run alone, or with others as one.
pub trait Statement:
    diesel::query_builder::QueryFragment<diesel::pg::Pg>
    + diesel::query_builder::QueryId
    + Send
    + 'static
{
}

impl<T> Statement for T where
    T: diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryId
        + Send
        + 'static
{
}

/// Rows a statement read as one JSON array (`json_agg`, to take a table's rows along with
/// another's in one round trip), as `T`s.
fn rows_from_json<T: serde::de::DeserializeOwned>(
    rows: serde_json::Value,
) -> diesel::QueryResult<Vec<T>> {
    serde_json::from_value(rows)
        .map_err(|error| diesel::result::Error::DeserializationError(Box::new(error)))
}
