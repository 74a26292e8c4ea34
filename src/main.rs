//! The `hallpass` command.

mod backup_cli;
mod healthcheck;
mod recover;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hallpass::config::{Config, LogFormat};
use hallpass::{bootstrap, server};

/// mimalloc instead of glibc's malloc: per-thread heaps without arena locks on the hot path,
/// and freed argon2 working buffers (19 MiB each) go back to the system instead of staying
/// resident (bench/README.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Get back in when nobody can sign in: status, wipe-sso, enable-local, reset-password,
    /// create-admin, disable-user, delete-user (on the configured database, even while the
    /// server runs).
    Recover(recover::RecoverArgs),
    /// Print the one-time code the setup wizard asks for (before the first admin exists).
    SetupCode,
    /// Write a consistent backup of the whole database (while the server runs) to FILE, or
    /// `-` for stdout; gzip when the name ends in .gz.
    Backup(backup_cli::BackupArgs),
    /// Load a backup into an empty database (refused when it has accounts, unless --force).
    Restore(backup_cli::RestoreArgs),
    /// Ask the running server's /readyz on the configured address (server.bind): exit 0 when
    /// it answers 200, 1 otherwise. For container health checks.
    Healthcheck,
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
    match cli.command.unwrap_or(Command::Serve) {
        // Unlike `serve`, the check reads the bootstrap values too: that is what it is for.
        Command::CheckConfig => match bootstrap_admin().and_then(checked_values) {
            Ok(admin) => {
                print!("{}", config.to_redacted_toml());
                if admin.is_some() {
                    println!(
                        "# HALLPASS_ADMIN_USERNAME is set: the first admin will be created on an empty database."
                    );
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve => match bootstrap_admin() {
            Ok(admin) => serve(config, admin),
            Err(code) => code,
        },
        Command::Healthcheck => healthcheck::run(&config),
        Command::SetupCode => {
            init_logging("warn", config.log.format);
            recover::setup_code(config)
        }
        Command::Backup(args) => {
            init_logging("warn", config.log.format);
            backup_cli::run_backup(config, args)
        }
        Command::Restore(args) => {
            init_logging("warn", config.log.format);
            backup_cli::run_restore(config, args)
        }
        // Recovery ignores the one-shot HALLPASS_ADMIN_* variables: a broken one (say, in the
        // environment `docker exec` inherits) must not keep anyone from getting back in.
        Command::Recover(args) => {
            // Warnings only (unless RUST_LOG says otherwise): the output is the report.
            init_logging("warn", config.log.format);
            recover::run(config, args)
        }
    }
}

/// The first admin's `HALLPASS_ADMIN_*` variables; an incomplete set stops with exit code 2.
fn bootstrap_admin() -> Result<Option<bootstrap::BootstrapAdmin>, ExitCode> {
    bootstrap::from_env(|k| std::env::var(k).ok()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The bootstrap variables' values checked now (`check-config`); a bad one: exit code 2.
fn checked_values(
    admin: Option<bootstrap::BootstrapAdmin>,
) -> Result<Option<hallpass::service::accounts::NewAdmin>, ExitCode> {
    admin.map(|a| a.parse()).transpose().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Logs to stderr, filtered by `RUST_LOG`, else by `level` (else `info`), as text or as one
/// JSON object a line (`log.format`) whose fields sit at the top level, with the request's
/// span (request id, method, route, path, client) under `span`.
fn init_logging(level: &str, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(hallpass::logging::filter(level))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn serve(config: Config, admin: Option<bootstrap::BootstrapAdmin>) -> ExitCode {
    init_logging(&config.log.level, config.log.format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Start-up's file and database work runs on the blocking pool; an idle blocking thread
        // keeps its stack and allocator heap until it exits (tokio's default: after 10 s).
        // Password hashes have threads of their own (service::passwords).
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = server::shutdown_signal();
        let state = match server::prepare(config, admin).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                return match e {
                    server::StartupError::BootstrapInput(_) => ExitCode::from(2),
                    _ => ExitCode::FAILURE,
                };
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
