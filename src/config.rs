//! Server configuration: the defaults in the repository's `config.toml` (compiled in), then an
//! optional file given with `--config`, then `SPACEBAR__SECTION__KEY` environment variables.
//! The result is passed explicitly to whatever needs it; there is no global.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The repository's `config.toml`: every key with its comment and default.
const DEFAULTS: &str = include_str!("../config.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub instance: InstanceConfig,
    pub security: SecurityConfig,
    pub register: RegisterConfig,
    pub limits: LimitsConfig,
    pub gateway: GatewayConfig,
    pub cdn: CdnConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub workers: usize,
    pub max_json_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: usize,
    pub postgres_bin_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct CdnConfig {
    pub sign_urls: bool,
    pub signing_key: String,
    pub url_lifetime_secs: u64,
    pub upload_lifetime_secs: u64,
    pub max_image_bytes: usize,
    pub max_emoji_bytes: usize,
    pub max_sticker_bytes: usize,
    pub max_image_pixels: u64,
    pub memory_cache_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstanceConfig {
    pub name: String,
    pub description: String,
    pub image: String,
    pub front_page: String,
    pub tos_page: String,
    pub correspondence_email: String,
    pub correspondence_user_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SecurityConfig {
    pub jwt_secret: String,
    pub bcrypt_cost: u32,
    pub default_rights: u64,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct GatewayConfig {
    pub heartbeat_interval_ms: u64,
    pub heartbeat_grace_ms: u64,
    pub identify_timeout_ms: u64,
    pub max_frame_bytes: usize,
    pub resume_window_ms: u64,
    pub resume_buffer: usize,
    pub commands_per_minute: u32,
}

impl Config {
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

    fn validate(&self) -> Result<(), ConfigError> {
        if !(4..=31).contains(&self.security.bcrypt_cost) {
            return Err(ConfigError::Invalid {
                key: "security.bcrypt_cost",
                message: "must be between 4 and 31".into(),
            });
        }
        if self.database.pool_size == 0 {
            return Err(ConfigError::Invalid {
                key: "database.pool_size",
                message: "must be at least 1".into(),
            });
        }
        if self.gateway.heartbeat_interval_ms == 0 || self.gateway.identify_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "gateway",
                message: "intervals and timeouts must be above zero".into(),
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
        let public_url = self.http.public_url.trim_end_matches('/');
        let scheme_ok = public_url.starts_with("http://") || public_url.starts_with("https://");
        if !public_url.is_empty() && !scheme_ok {
            return Err(ConfigError::Invalid {
                key: "http.public_url",
                message: "must start with http:// or https://".into(),
            });
        }
        Ok(())
    }
}

fn environment() -> config::Environment {
    config::Environment::with_prefix("SPACEBAR")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
}
