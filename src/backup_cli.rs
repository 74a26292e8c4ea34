//! `hallpass backup FILE` and `hallpass restore FILE`: thin adapters over
//! `service::backup`, on the configured database (possibly while the server runs).
//!
//! Exit codes: 0 done; 1 failed (the database, a disk); 2 refused — a bad or newer file, a
//! database that already has accounts without `--force`, `--force` unconfirmed. Nothing is
//! changed in the database when a restore does not exit 0.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use hallpass::config::Config;
use hallpass::db::{self, Backend, DbPool, PoolOptions};
use hallpass::secret::{self, ServerSecret};
use hallpass::service::backup::{self, BackupError, SecretRecord};

#[derive(Args)]
pub struct BackupArgs {
    /// Where to write: a file (gzip-compressed when the name ends in .gz), or `-` for stdout.
    file: String,
    /// Put the server secret in the backup too (one file to keep; the backup is then as
    /// sensitive as the secret itself).
    #[arg(long)]
    include_secret: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup to load: a file (gzip recognised), or `-` for stdin.
    file: String,
    /// Replace everything in a database that already has accounts (asks on a terminal).
    #[arg(long)]
    force: bool,
    /// With --force: do not ask (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

/// Why a command stopped: exit 1 (failed) or 2 (refused, nothing changed).
enum Stop {
    Failed(String),
    Refused(String),
}

impl From<BackupError> for Stop {
    fn from(e: BackupError) -> Self {
        if let BackupError::NotEmpty { .. } = e {
            Stop::Refused(format!(
                "{e}. Nothing was changed. To replace everything in it with the backup, run \
                 `hallpass restore --force FILE` (it asks for confirmation; --yes when not on a terminal)."
            ))
        } else if e.is_refusal() {
            Stop::Refused(format!("{e}. Nothing was changed."))
        } else {
            Stop::Failed(e.to_string())
        }
    }
}

fn finish(result: Result<(), Stop>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Failed(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
        Err(Stop::Refused(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
    }
}

/// The configured database (without running migrations: a backup changes nothing) and a
/// runtime for the async parts of the service layer.
fn open(config: &Config) -> Result<(tokio::runtime::Runtime, DbPool), Stop> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Stop::Failed(format!("cannot start the async runtime: {e}")))?;
    let url = &config.database.url;
    let options = PoolOptions {
        max_connections: 2,
        connect_timeout: config.database.connect_timeout.get(),
        test_on_check_out: url.backend() == Backend::Postgres,
    };
    let db = DbPool::connect(url, &options).map_err(|e| Stop::Failed(e.to_string()))?;
    Ok((rt, db))
}

fn server_secret(config: &Config) -> Result<ServerSecret, Stop> {
    ServerSecret::load(&config.server.data_dir, std::env::var(secret::ENV_VAR).ok())
        .map_err(|e| Stop::Failed(e.to_string()))
}

/// A progress line on stderr, only when stderr is a terminal, at most a few times a second.
fn progress(verb: &'static str) -> backup::ProgressFn {
    if !io::stderr().is_terminal() {
        return Box::new(|_, _| {});
    }
    // The first call (the first table) shows the line at once; then a few times a second.
    let mut last: Option<Instant> = None;
    Box::new(move |table, rows| {
        if last.is_none_or(|l| l.elapsed() >= Duration::from_millis(200)) {
            last = Some(Instant::now());
            eprint!("\r\x1b[K{verb}: {rows} rows… ({table})");
            let _ = io::stderr().flush();
        }
    })
}

fn clear_progress() {
    if io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}

pub fn run_backup(config: Config, args: BackupArgs) -> ExitCode {
    finish(backup_to(config, args))
}

fn backup_to(config: Config, args: BackupArgs) -> Result<(), Stop> {
    let record = SecretRecord::new(&server_secret(&config)?, args.include_secret);
    let (rt, db) = open(&config)?;
    let mut progress = progress("backup");
    let written = if args.file == "-" {
        let result = db.run_blocking(|conn| {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            backup::write(conn, &mut out, &record, &mut *progress)
        });
        clear_progress();
        result?
    } else {
        let path = PathBuf::from(&args.file);
        let result = rt.block_on(backup::write_file(&db, path.clone(), record, progress));
        clear_progress();
        let w = result?;
        eprintln!(
            "Backup written to {}: {} tables, {} rows{}.",
            path.display(),
            w.tables,
            w.rows,
            if args.include_secret {
                " and the server secret (keep this file as safe as the secret itself)"
            } else {
                ""
            }
        );
        w
    };
    let _ = written;
    Ok(())
}

pub fn run_restore(config: Config, args: RestoreArgs) -> ExitCode {
    finish(restore_from(config, args))
}

fn restore_from(config: Config, args: RestoreArgs) -> Result<(), Stop> {
    let from_stdin = args.file == "-";
    // Confirmation needs a terminal on stdin; refuse before reading anything otherwise.
    let can_ask = !from_stdin && io::stdin().is_terminal();
    if args.force && !args.yes && !can_ask {
        return Err(Stop::Refused(
            "--force replaces everything in the database and asks for confirmation, but stdin \
             is not a terminal: add --yes to confirm. Nothing was changed."
                .into(),
        ));
    }
    let input: Box<dyn Read + Send> = if from_stdin {
        Box::new(io::stdin())
    } else {
        Box::new(std::fs::File::open(&args.file).map_err(|e| {
            Stop::Refused(format!(
                "cannot open {}: {e}. Nothing was changed.",
                args.file
            ))
        })?)
    };
    let mut reader = backup::open_reader(input, backup::is_gzip_name(Path::new(&args.file)))?;
    let backend = config.database.url.backend();
    let header = backup::read_header(&mut reader, backend)?;
    let target_secret = server_secret(&config)?;
    let (rt, db) = open(&config)?;
    let applied = db::migrations::run(&db).map_err(|e| Stop::Failed(e.to_string()))?;
    if !applied.is_empty() {
        eprintln!("Applied {} database migration(s).", applied.len());
    }
    if args.force && !args.yes {
        let has_users = rt
            .block_on(hallpass::service::users::any(&db))
            .map_err(|e| Stop::Failed(e.to_string()))?;
        if has_users {
            confirm(&config, &header)?;
        }
    }
    let mut progress = progress("restore");
    let result =
        db.run_blocking(|conn| backup::restore(conn, &mut reader, args.force, &mut *progress));
    clear_progress();
    let restored = result?;
    println!(
        "Restored {} tables, {} rows ({} accounts) from the backup of {} (Hallpass {}, {}). Sessions are not part of backups: everyone signs in again.",
        restored.tables,
        restored.rows,
        restored.users,
        header.created_at,
        header.hallpass,
        header.backend
    );
    let data_dir = &config.server.data_dir;
    let note = backup::secret_note(
        &header,
        &target_secret,
        data_dir,
        secret::from_environment(),
    )?;
    if let Some(message) = note.message(&restored, data_dir) {
        eprintln!("{message}");
    }
    Ok(())
}

/// Asks on the terminal to type `restore`; anything else cancels.
fn confirm(config: &Config, header: &backup::Header) -> Result<(), Stop> {
    eprintln!(
        "The database {} already has accounts. Restoring replaces ALL its accounts, settings, \
         groups, apps, providers and audit log with the backup of {}.",
        config.database.url, header.created_at
    );
    eprint!("Type restore to confirm: ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    io::stdin()
        .read_line(&mut line)
        .map_err(|e| Stop::Failed(format!("cannot read the confirmation: {e}")))?;
    if line.trim() == "restore" {
        Ok(())
    } else {
        Err(Stop::Refused("not confirmed: nothing was changed".into()))
    }
}
