//! Server configuration: the defaults in the repository's `config.toml` (compiled in), then an
//! optional file given with `--config`, then `SPACEBAR__SECTION__KEY` environment variables.
//! The result is passed explicitly to whatever needs it; there is no global.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The repository's `config.toml`: every key with its comment and default.
const DEFAULTS: &str = include_str!("../config.toml");

/// Keys the admin API may not change: where the database is (the changes live in it), the
/// key that signs tokens (every login would end) and how this node joins the others.
const FIXED: [&str; 3] = ["database", "security.jwt_secret", "cluster"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// A change asked for at run time (through the admin API) that cannot be made.
    #[error("configuration: {key}: {message}")]
    Change { key: String, message: String },
}

/// Whether a changed key takes effect at once or at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    Now,
    AfterRestart,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub instance: InstanceConfig,
    pub security: SecurityConfig,
    pub register: RegisterConfig,
    pub limits: LimitsConfig,
    pub gateway: GatewayConfig,
    pub rate_limits: RateLimitsConfig,
    pub cdn: CdnConfig,
    pub voice: VoiceConfig,
    pub rooms: RoomsConfig,
    pub cluster: ClusterConfig,
}

/// Running several nodes on one Redis (see `crate::cluster`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ClusterConfig {
    /// Empty: a single process.
    pub redis_url: String,
    pub node_id: String,
    pub advertise_url: String,
    pub heartbeat_ms: u64,
    /// How long a stopping node waits for its sessions to resume elsewhere before it leaves
    /// the rest in Redis and exits.
    pub drain_timeout_ms: u64,
    /// How long an ownership lease lasts unless renewed (renewed every third of it).
    pub lease_ms: u64,
}

impl ClusterConfig {
    /// Whether this node is one of several.
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }
}

/// Rate limits on the REST API (see `http::rate_limits`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    /// Every request of one caller.
    pub global: RuleConfig,
    /// Each route's bucket, per major parameter.
    pub routes: RuleConfig,
    /// Sending messages, per channel.
    pub message_create: RuleConfig,
    /// Posting as a webhook, per webhook (an interaction's follow-ups, per interaction).
    pub webhook_execute: RuleConfig,
    /// Searching messages, per guild (or channel).
    pub search: RuleConfig,
    /// Logging in and registering, per address.
    pub auth: RuleConfig,
    /// Instance discovery (policies, gateway URL, ping), per caller, apart from `global`.
    pub discovery: RuleConfig,
    /// Guests' tokens and rooms (`/rooms/guest`, `/rooms/new`), per address.
    pub room_guests: RuleConfig,
}

/// `limit` requests per `window_ms` milliseconds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct RuleConfig {
    pub limit: u32,
    pub window_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub workers: usize,
    pub max_json_bytes: usize,
    /// How slowly a request body may arrive (see `http::body_deadline`).
    pub body_grace_secs: u64,
    pub body_min_bytes_per_sec: u64,
    /// All parts of a multipart request together; 0 = derived (see [`Config::max_multipart_bytes`]).
    pub max_multipart_bytes: u64,
    /// PEM certificate chain and private key: both set = the listener speaks TLS.
    pub tls_cert: String,
    pub tls_key: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `http::client_address`).
    #[serde(deserialize_with = "addresses")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: usize,
    /// How long a request waits for a connection before it is answered 503.
    pub pool_wait_ms: u64,
    pub postgres_bin_dir: String,
}

impl DatabaseConfig {
    pub fn pool_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.pool_wait_ms)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub backend: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_endpoint: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub s3_prefix: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CdnConfig {
    pub sign_urls: bool,
    pub signing_key: String,
    pub url_lifetime_secs: u64,
    pub upload_lifetime_secs: u64,
    pub max_image_bytes: usize,
    pub max_emoji_bytes: usize,
    pub max_sticker_bytes: usize,
    pub max_image_pixels: u64,
    pub max_avatar_pixels: u64,
    pub max_animation_pixels: u64,
    pub image_workers: usize,
    pub image_queue: usize,
    pub not_found_limit: u32,
    pub not_found_window_secs: u64,
    pub memory_cache_bytes: usize,
    /// Fetch the images a webhook's `avatar_url` names (see `cdn::remote`).
    pub fetch_remote_images: bool,
    /// Fetch them from private and loopback addresses too (tests; trusted networks only).
    pub fetch_private_addresses: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct InstanceConfig {
    pub name: String,
    pub description: String,
    pub image: String,
    pub front_page: String,
    pub tos_page: String,
    pub correspondence_email: String,
    pub correspondence_user_id: String,
    /// The worker bits of snowflakes (see `snowflake`).
    pub worker_id: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SecurityConfig {
    pub jwt_secret: String,
    pub bcrypt_cost: u32,
    pub default_rights: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RegisterConfig {
    pub allow_new_registration: bool,
    pub email_required: bool,
    pub password_required: bool,
    pub password_min_length: usize,
    pub date_of_birth_required: bool,
    pub date_of_birth_minimum_age: u32,
    pub require_invite: bool,
}

/// Instance limits, published to clients and enforced by the routes they concern.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LimitsConfig {
    pub user_max_guilds: u64,
    pub user_max_username: usize,
    pub user_max_friends: u64,
    pub user_max_bio: usize,
    pub guild_max_roles: u64,
    pub guild_max_emojis: u64,
    pub guild_max_members: u64,
    pub guild_max_channels: u64,
    pub guild_max_channels_in_category: u64,
    pub message_max_characters: u64,
    pub message_max_tts_characters: u64,
    pub message_max_reactions: u64,
    pub message_max_attachment_size: u64,
    pub message_max_attachments: u64,
    pub message_max_bulk_delete: u64,
    pub message_max_embed_download_size: u64,
    pub channel_max_pins: u64,
    pub channel_max_topic: u64,
    pub channel_max_webhooks: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GatewayConfig {
    pub heartbeat_interval_ms: u64,
    pub heartbeat_grace_ms: u64,
    pub identify_timeout_ms: u64,
    pub max_frame_bytes: usize,
    pub resume_window_ms: u64,
    pub resume_buffer: usize,
    pub commands_per_minute: u32,
    pub outbound_queue: usize,
    pub outbound_queue_bytes: usize,
    pub max_guilds_per_shard: usize,
    pub min_large_threshold: usize,
    /// Threads of their own for the gateway's sessions (0: on their sockets' HTTP workers).
    pub session_threads: usize,
}

/// The voice gateway and the media server (SFU).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VoiceConfig {
    pub bind_ip: IpAddr,
    /// Empty: announce `bind_ip`.
    pub public_ip: String,
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// The one UDP port bots' voice uses (0: any free one).
    pub bot_udp_port: u16,
    pub room_limit: usize,
    pub media_threads: usize,
    pub room_loops: usize,
    pub heartbeat_interval_ms: u64,
    pub resume_window_ms: u64,
    pub max_frame_bytes: usize,
}

/// The rooms service: tokens for applications (API keys), guests and users; rooms; webhooks.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RoomsConfig {
    /// `POST /rooms/guest` and `POST /rooms/new` without an account.
    pub guests: bool,
    pub max_rooms: u32,
    pub max_participants: u32,
    pub default_empty_timeout_secs: u32,
    pub max_empty_timeout_secs: u32,
    pub max_name_chars: usize,
    pub max_metadata_bytes: usize,
    pub token_ttl_secs: u32,
    pub max_token_ttl_secs: u32,
    pub max_data_bytes: usize,
    /// A `/rooms/ws` socket silent this long is closed (4009).
    pub idle_timeout_secs: u64,
    /// Bytes that may wait for a `/rooms/ws` client not reading; past it, closed (4013).
    pub outbound_queue_bytes: usize,
    /// Where every room's webhooks go when the room's API key names no URL; empty: nowhere.
    pub webhook_url: String,
    pub webhook_secret: String,
    pub webhook_attempts: u32,
    pub webhook_backoff_ms: u64,
    pub webhook_timeout_ms: u64,
    pub webhook_queue_bytes: usize,
    pub event_log_days: u32,
}

impl VoiceConfig {
    /// The announced address, if one is configured.
    pub fn public_ip(&self) -> Result<Option<IpAddr>, ConfigError> {
        if self.public_ip.is_empty() {
            return Ok(None);
        }
        self.public_ip
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                key: "voice.public_ip",
                message: "must be an IP address or empty".into(),
            })
    }
}

impl RoomsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.into(),
        };
        if self.token_ttl_secs == 0 || self.token_ttl_secs > self.max_token_ttl_secs {
            return Err(invalid(
                "rooms.token_ttl_secs",
                "must be above zero and at most rooms.max_token_ttl_secs",
            ));
        }
        if self.idle_timeout_secs == 0 {
            return Err(invalid("rooms.idle_timeout_secs", "must be above zero"));
        }
        if self.default_empty_timeout_secs > self.max_empty_timeout_secs {
            return Err(invalid(
                "rooms.default_empty_timeout_secs",
                "must be at most rooms.max_empty_timeout_secs",
            ));
        }
        let url = &self.webhook_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "rooms.webhook_url",
                "must start with http:// or https://",
            ));
        }
        if !url.is_empty() && self.webhook_secret.is_empty() {
            return Err(invalid(
                "rooms.webhook_secret",
                "must be set when rooms.webhook_url is (the receiver checks signatures with it)",
            ));
        }
        if self.webhook_attempts == 0 || self.webhook_timeout_ms == 0 {
            return Err(invalid(
                "rooms.webhook_attempts",
                "attempts and timeout must be above zero",
            ));
        }
        Ok(())
    }
}

impl Config {
    /// The largest multipart request: `http.max_multipart_bytes`, or when that is 0 one file's
    /// worth plus the JSON body (Discord caps a message with its files at 25 MiB).
    pub fn max_multipart_bytes(&self) -> u64 {
        match self.http.max_multipart_bytes {
            0 => self
                .limits
                .message_max_attachment_size
                .saturating_add(u64::try_from(self.http.max_json_bytes).unwrap_or(u64::MAX)),
            bytes => bytes,
        }
    }

    /// Loads the defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        Self::from_builder(builder.add_source(environment()))
    }

    /// The defaults with `overrides` (dotted keys such as `"http.listen"`) laid over them;
    /// the environment is not read. Tests and tools build their configuration this way.
    pub fn with_overrides(overrides: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        for (key, value) in overrides {
            builder = builder.set_override(*key, *value)?;
        }
        Self::from_builder(builder)
    }

    fn from_builder(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<Self, ConfigError> {
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// This configuration with `changes` (dotted keys such as `"register.require_invite"`,
    /// JSON values) laid over it, checked like a loaded one. Unknown keys, values of the wrong
    /// type, and keys that cannot be changed at run time are refused.
    pub fn with_changes(
        &self,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        let mut tree = serde_json::to_value(self).map_err(|error| ConfigError::Change {
            key: String::new(),
            message: error.to_string(),
        })?;
        for (key, value) in changes {
            let refused = |message: &str| ConfigError::Change {
                key: key.clone(),
                message: message.into(),
            };
            if FIXED
                .iter()
                .any(|fixed| key == fixed || key.starts_with(&format!("{fixed}.")))
            {
                return Err(refused("cannot be changed through the API"));
            }
            let slot = key
                .split_once('.')
                .and_then(|(section, name)| tree.get_mut(section)?.get_mut(name))
                .ok_or_else(|| refused("no such key"))?;
            *slot = value.clone();
        }
        let changed: Self = serde_json::from_value(tree).map_err(|error| ConfigError::Change {
            key: changes.keys().cloned().collect::<Vec<_>>().join(", "),
            message: error.to_string(),
        })?;
        changed.validate()?;
        Ok(changed)
    }

    /// When a change of `key` takes effect: the instance's description, registration rules,
    /// limits and new accounts' rights are read per request; the rest is set up at start.
    pub fn applies(key: &str) -> Applies {
        let live = [
            "instance.",
            "register.",
            "limits.",
            "rate_limits.",
            "rooms.",
            "security.bcrypt_cost",
            "security.default_rights",
        ];
        if live.iter().any(|prefix| key.starts_with(prefix)) {
            Applies::Now
        } else {
            Applies::AfterRestart
        }
    }

    /// The configuration as an operator may read it: secrets blanked.
    pub fn redacted(&self) -> serde_json::Value {
        let mut tree = serde_json::to_value(self).unwrap_or_default();
        let secret = |value: &mut serde_json::Value| {
            if value.as_str().is_some_and(|s| !s.is_empty()) {
                *value = "<redacted>".into();
            }
        };
        for pointer in [
            "/security/jwt_secret",
            "/database/url",
            "/storage/s3_secret_access_key",
            "/cdn/signing_key",
            // May carry Redis's password.
            "/cluster/redis_url",
            "/rooms/webhook_secret",
        ] {
            if let Some(value) = tree.pointer_mut(pointer) {
                secret(value);
            }
        }
        tree
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(4..=31).contains(&self.security.bcrypt_cost) {
            return Err(ConfigError::Invalid {
                key: "security.bcrypt_cost",
                message: "must be between 4 and 31".into(),
            });
        }
        let limits = &self.rate_limits;
        for rule in [
            &limits.global,
            &limits.routes,
            &limits.message_create,
            &limits.webhook_execute,
            &limits.search,
            &limits.auth,
            &limits.room_guests,
        ] {
            if rule.limit == 0 || rule.window_ms == 0 {
                return Err(ConfigError::Invalid {
                    key: "rate_limits",
                    message: "every limit and window must be above zero".into(),
                });
            }
        }
        if self.cluster.enabled() && self.security.jwt_secret.is_empty() {
            // Otherwise each node would make its own key in its data directory, and a token
            // from one node would be refused by the others.
            return Err(ConfigError::Invalid {
                key: "security.jwt_secret",
                message: "must be set (the same on every node) when cluster.redis_url is".into(),
            });
        }
        if self.cluster.enabled() && self.cluster.heartbeat_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "cluster.heartbeat_ms",
                message: "must be above zero".into(),
            });
        }
        if self.cluster.enabled() && self.cluster.lease_ms < 300 {
            return Err(ConfigError::Invalid {
                key: "cluster.lease_ms",
                message: "must be at least 300 (it is renewed every third of it)".into(),
            });
        }
        if self.instance.worker_id > 31 {
            return Err(ConfigError::Invalid {
                key: "instance.worker_id",
                message: "must be between 0 and 31".into(),
            });
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "database.pool_size",
                message: "must be at least 1".into(),
            });
        }
        if self.database.pool_wait_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "database.pool_wait_ms",
                message: "must be above zero".into(),
            });
        }
        if self.http.body_min_bytes_per_sec == 0 {
            return Err(ConfigError::Invalid {
                key: "http.body_min_bytes_per_sec",
                message: "must be above zero".into(),
            });
        }
        if self.gateway.heartbeat_interval_ms == 0 || self.gateway.identify_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "gateway",
                message: "intervals and timeouts must be above zero".into(),
            });
        }
        if !(1..=250).contains(&self.gateway.min_large_threshold) {
            return Err(ConfigError::Invalid {
                key: "gateway.min_large_threshold",
                message: "must be between 1 and 250".into(),
            });
        }
        if self.gateway.max_guilds_per_shard == 0 {
            return Err(ConfigError::Invalid {
                key: "gateway.max_guilds_per_shard",
                message: "must be at least 1".into(),
            });
        }
        if !matches!(self.storage.backend.as_str(), "fs" | "s3") {
            return Err(ConfigError::Invalid {
                key: "storage.backend",
                message: "must be \"fs\" or \"s3\"".into(),
            });
        }
        if self.storage.backend == "s3" && self.storage.s3_bucket.is_empty() {
            return Err(ConfigError::Invalid {
                key: "storage.s3_bucket",
                message: "is required with storage.backend = \"s3\"".into(),
            });
        }
        self.voice.public_ip()?;
        let voice = &self.voice;
        if voice.udp_port_min > voice.udp_port_max || voice.room_limit == 0 {
            return Err(ConfigError::Invalid {
                key: "voice",
                message: "udp_port_min must not exceed udp_port_max; room_limit must be above zero"
                    .into(),
            });
        }
        if voice.heartbeat_interval_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "voice.heartbeat_interval_ms",
                message: "must be above zero".into(),
            });
        }
        self.rooms.validate()?;
        let public_url = self.http.public_url.trim_end_matches('/');
        let scheme_ok = public_url.starts_with("http://") || public_url.starts_with("https://");
        if !public_url.is_empty() && !scheme_ok {
            return Err(ConfigError::Invalid {
                key: "http.public_url",
                message: "must start with http:// or https://".into(),
            });
        }
        if self.http.tls_cert.is_empty() != self.http.tls_key.is_empty() {
            return Err(ConfigError::Invalid {
                key: "http.tls_key",
                message: "http.tls_cert and http.tls_key go together".into(),
            });
        }
        Ok(())
    }
}

/// A list of addresses, from TOML (`["127.0.0.1"]`) or from one comma-separated string (as an
/// environment variable gives it: `SPACEBAR__HTTP__TRUSTED_PROXIES=127.0.0.1,::1`).
fn addresses<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<std::net::IpAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<std::net::IpAddr>),
        Text(String),
    }
    match Given::deserialize(deserializer)? {
        Given::List(list) => Ok(list),
        Given::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(|address| address.parse().map_err(serde::de::Error::custom))
            .collect(),
    }
}

fn environment() -> config::Environment {
    config::Environment::with_prefix("SPACEBAR")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
}
