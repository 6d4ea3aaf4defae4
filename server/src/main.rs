//! The `deepstream` command: starts the server, or hashes a password for a users file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use deepstream_server::Server;
use deepstream_server::auth::hash_password;
use deepstream_server::config::{AuthConfig, Config, HashSettings, Loaded, LogLevel};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "deepstream",
    version,
    about = "A realtime data server for the deepstream.io protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Start(StartArgs),
    /// Print the hash of a password for the users file of file authentication, made with
    /// the `hash`, `iterations` and `keyLength` of the configuration's first `file` auth
    /// entry, or with deepstream's defaults (md5, 100, 32) when it has none.
    Hash(HashArgs),
}

#[derive(clap::Args)]
struct StartArgs {
    /// Configuration file (deepstream's config.yml format). Without it the
    /// server looks for conf/config.yml like deepstream does, then falls back
    /// to its embedded defaults.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; overrides httpServer.options.host.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Port to listen on; overrides httpServer.options.port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Log level (DEBUG, INFO, WARN, ERROR, OFF); overrides logLevel. The
    /// RUST_LOG environment variable, when set, takes precedence.
    #[arg(long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
}

#[derive(clap::Args)]
struct HashArgs {
    /// The password to hash.
    password: String,
    /// Configuration file to take the hash settings from. Without it the command looks
    /// for conf/config.yml like `start` does.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Start(args) => start(args),
        Command::Hash(args) => hash(&args),
    }
}

fn start(args: StartArgs) -> ExitCode {
    let Some(loaded) = load_config(args.config.as_deref()) else {
        return ExitCode::FAILURE;
    };
    let mut config = loaded.config;
    let mut notices = loaded.notices;
    if let Some(host) = args.host {
        config.http.host = host;
        notices.retain(|notice| notice.key != "httpServer.options.host");
    }
    if let Some(port) = args.port {
        config.http.port = port;
    }
    let log_level = match args.log_level.as_deref() {
        None => config.log_level,
        Some(name) => match LogLevel::from_name(name) {
            Some(level) => level,
            None => {
                eprintln!(
                    "deepstream: invalid --log-level `{name}`: expected DEBUG, INFO, WARN, ERROR or OFF"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    init_logging(log_level);

    match &config.source {
        Some(path) => tracing::info!(file = %path.display(), "configuration loaded"),
        None => tracing::info!("no configuration file found, using the embedded defaults"),
    }
    for notice in &notices {
        // The key leads the message, because most notices read as a sentence
        // about it ("httpServer.options.host: not set, so ...").
        tracing::warn!("{}: {}", notice.key, notice.message);
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "failed to start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Prints the hash of `args.password`, as deepstream's `hash` command does, to stdout.
fn hash(args: &HashArgs) -> ExitCode {
    let (auth, source) = match Config::load_auth(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("deepstream: {error}");
            return ExitCode::FAILURE;
        }
    };
    let source = match &source {
        Some(file) => file.display().to_string(),
        None => "the embedded configuration".to_owned(),
    };
    let file_auth = auth.iter().find_map(|entry| match entry {
        AuthConfig::File(file) => Some(file),
        _ => None,
    });
    let settings = match file_auth {
        Some(file) => match file.hash {
            Some(settings) => settings,
            None => {
                eprintln!(
                    "deepstream: the file authentication of {} stores plain-text passwords \
                     (its `hash` option is not set), so there is nothing to hash. Set `hash`, \
                     `iterations` and `keyLength` to store hashed passwords",
                    source
                );
                return ExitCode::FAILURE;
            }
        },
        None => {
            eprintln!(
                "deepstream: {} has no file authentication, so the hash uses deepstream's \
                 default settings: hash md5, iterations 100, keyLength 32",
                source
            );
            HashSettings::DEEPSTREAM_DEFAULT
        }
    };
    println!(
        "Password hash: {}",
        hash_password(&args.password, &settings)
    );
    ExitCode::SUCCESS
}

/// Loads the file named by `-c`, or the one deepstream's search finds, or the embedded
/// defaults. Prints the error and returns `None` when the file cannot be used.
fn load_config(path: Option<&Path>) -> Option<Loaded> {
    let loaded = match path {
        Some(path) => Config::load(path),
        None => Config::discover(),
    };
    match loaded {
        Ok(loaded) => Some(loaded),
        Err(error) => {
            // The configuration error's message already includes its cause.
            eprintln!("deepstream: {error}");
            None
        }
    }
}

async fn serve(config: Config) -> Result<(), deepstream_server::ServerError> {
    let server = Server::bind(config).await?;
    server.run(shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "failed to listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

fn init_logging(level: LogLevel) {
    let default = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::Off => "off",
    };
    // The WebSocket and HTTP libraries log every closed socket at debug level,
    // which reads like a fault; keep them at info unless RUST_LOG says otherwise.
    let directives = format!("{default},tungstenite=info,tokio_tungstenite=info,hyper=info");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let colors = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colors)
        .with_writer(std::io::stderr)
        .init();
}

/// Formats an error with its chain of sources: "outer: inner: innermost".
/// A cause that the text already contains, because an error wrote its cause
/// into its own message, is not repeated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
