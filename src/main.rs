//! The `hallpass` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hallpass::config::Config;
use hallpass::{bootstrap, server};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "hallpass",
    version,
    about = "Sign-in and user administration for homelabs"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./hallpass.toml when it exists.
    #[arg(long, global = true, env = "HALLPASS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the effective configuration with secrets redacted, then exit.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let admin = match bootstrap::from_env(|k| std::env::var(k).ok()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            print!("{}", config.to_redacted_toml());
            if admin.is_some() {
                println!(
                    "# HALLPASS_ADMIN_USERNAME is set: the first admin will be created on an empty database."
                );
            }
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config, admin),
    }
}

fn serve(config: Config, admin: Option<hallpass::service::accounts::NewAdmin>) -> ExitCode {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Installed first, so a stop request during start-up is never lost or fatal.
        let shutdown = server::shutdown_signal();
        let state = match server::prepare(config, admin).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let listener = match server::bind(&state.config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match server::run(state, listener, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
