//! The `spacebar` command: `serve` (the default), `migrate`, `admin` and `rooms-key`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spacebar::config::Config;
use spacebar::credentials::token::load_secret;
use spacebar::db::Database;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "A Discord-compatible chat, voice and video server")]
struct Cli {
    /// A configuration file laid over the built-in defaults (see config.toml).
    #[arg(long, global = true, env = "SPACEBAR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Instance administration from the command line.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Applications' API keys to the rooms service (docs/rooms.md).
    #[command(subcommand)]
    RoomsKey(RoomsKeyCommand),
}

#[derive(Subcommand)]
enum RoomsKeyCommand {
    /// Make a key; its secret and webhook secret are printed this once.
    Create {
        /// What the key is for (the application's name).
        name: String,
        /// Where webhooks of the key's rooms go.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// List the keys (never their secrets).
    List,
    /// Revoke a key at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give an account the OPERATOR right (all rights, and the admin API): a user id or
    /// username#discriminator.
    GrantOperator { user: String },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // Colours only on a terminal: the journal and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = Config::load(cli.config.as_deref())
        .map_err(Into::into)
        .and_then(|config| match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config),
            Command::Migrate => Database::open(&config).map(drop).map_err(Into::into),
            Command::Admin(AdminCommand::GrantOperator { user }) => grant_operator(&config, &user),
            Command::RoomsKey(command) => rooms_key(&config, command),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    raise_open_files_limit();
    let secret = load_secret(&config.security.jwt_secret, &config.storage.data_dir)?;
    let database = Database::open(&config)?;
    if database.is_embedded() {
        tracing::info!(dir = %config.storage.data_dir.join("postgres").display(), "embedded PostgreSQL running");
    }
    actix_web::rt::System::new().block_on(async {
        let server = spacebar::server::build(config, database.url(), &secret).await?;
        tracing::info!(addr = %server.addr, "listening");
        // systemd (Type=notify) learns the server is ready; without systemd this does nothing.
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        server.run().await?;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // Dropping the database stops the embedded cluster after the last connection closed.
    drop(database);
    Ok(())
}

fn grant_operator(config: &Config, who: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Typically run while the server is up (register in the client, then grant).
    let database = Database::attach(config)?;
    let pool = spacebar::db::pool(database.url(), 1)?;
    let user = actix_web::rt::System::new()
        .block_on(async { spacebar::operators::grant_operator(&pool, who).await })?;
    drop(pool);
    println!(
        "{}#{} ({}) is now an operator",
        user.username, user.discriminator, user.id
    );
    Ok(())
}

fn rooms_key(config: &Config, command: RoomsKeyCommand) -> Result<(), Box<dyn std::error::Error>> {
    use spacebar::db::room_api_keys::RoomApiKey;
    let database = Database::attach(config)?;
    let pool = spacebar::db::pool(database.url(), 1)?;
    let result = actix_web::rt::System::new().block_on(async {
        let mut conn = pool.get().await?;
        match command {
            RoomsKeyCommand::Create { name, webhook_url } => {
                spacebar::rooms::keys::check(&name, webhook_url.as_deref())?;
                let new = spacebar::rooms::keys::generate(name, webhook_url, None);
                new.key.insert(&mut conn).await?;
                println!("key:            {}", new.key.id);
                println!("secret:         {}", new.secret);
                println!("webhook secret: {}", new.key.webhook_secret);
                println!("(the secrets are not shown again)");
            }
            RoomsKeyCommand::List => {
                for key in RoomApiKey::all(&mut conn).await? {
                    let url = key.webhook_url.as_deref().unwrap_or("-");
                    println!("{}\t{}\t{}\t{}", key.id, key.created_at, url, key.name);
                }
            }
            RoomsKeyCommand::Revoke { id } => {
                if !RoomApiKey::revoke(&mut conn, &id).await? {
                    return Err(format!("no key {id}").into());
                }
                println!("{id} revoked");
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    drop(pool);
    result
}

/// Every gateway session is a socket: lift the soft open-files limit to the hard one.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
