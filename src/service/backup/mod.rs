//! Backups and restores (`hallpass backup|restore`, the setup page's "Restore from backup",
//! scheduled backups): one file format, written and read here and nowhere else.
//!
//! The file is JSON lines, optionally gzip-compressed:
//! 1. a header: `{"format":"hallpass-backup","version":1,"schema":"<migration>",…}` with the
//!    fingerprint of the server secret (and the secret itself with `--include-secret`);
//! 2. per table, `{"table":"users","columns":[["id","integer"],…]}`, then one JSON array of
//!    values per row;
//! 3. a last line `{"end":{"tables":N,"rows":M}}`: a file without it was cut off.
//!
//! `format` here, `restore` for loading and the secret, `schedule` for the timer, and the
//! SQL in `db::backup`.

mod format;
mod restore;
pub mod schedule;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::db::{DbError, DbPool};
use crate::secret::ServerSecret;

pub use format::{FORMAT_VERSION, Header, LineReader, open_reader};
pub use restore::{Restored, SecretNote, read_header, restore, secret_note};

/// Why a backup or restore did not happen, worded for the operator. Everything but
/// [`BackupError::Io`] and [`BackupError::Db`] is a refusal (exit code 2): the input or the
/// target was not acceptable, and nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(String),
    #[error("not a Hallpass backup: {0}")]
    NotABackup(String),
    #[error(
        "this backup was written by a newer Hallpass (backup format {found}; this version reads format {FORMAT_VERSION}): upgrade Hallpass, then restore"
    )]
    NewerFormat { found: u64 },
    #[error(
        "this backup comes from a newer Hallpass (database migration {found}; this version knows up to {known}): upgrade Hallpass, then restore"
    )]
    NewerSchema { found: String, known: String },
    #[error(
        "the backup is incomplete: it ends before its last line (cut off while it was written or copied)"
    )]
    Truncated,
    #[error("line {line} of the backup: {reason}")]
    Invalid { line: u64, reason: String },
    #[error(
        "the database already has {users} account(s), and a restore loads only into an empty database"
    )]
    NotEmpty { users: i64 },
    #[error(
        "the database refused the rows of table {table} (up to line {line} of the backup): {reason}"
    )]
    Rejected {
        table: String,
        line: u64,
        reason: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl BackupError {
    /// True when the input or the target was refused (nothing changed), rather than the
    /// machine failing (a disk, the database connection).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, BackupError::Io(_) | BackupError::Db(_))
    }
}

/// What a backup wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub tables: usize,
    pub rows: u64,
}

/// Whose secret a backup records: its fingerprint always, the secret itself only when asked.
#[derive(Clone)]
pub struct SecretRecord {
    pub fingerprint: String,
    /// base64 of the secret (`--include-secret`); makes the file as sensitive as the secret.
    pub secret: Option<String>,
}

impl SecretRecord {
    pub fn new(secret: &ServerSecret, include: bool) -> Self {
        use base64::Engine;
        Self {
            fingerprint: secret.fingerprint(),
            secret: include
                .then(|| base64::engine::general_purpose::STANDARD.encode(secret.expose_bytes())),
        }
    }
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("fingerprint", &self.fingerprint)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Progress of a long backup or restore: the table being read or written and the rows so far.
pub type Progress<'a> = &'a mut (dyn FnMut(&str, u64) + Send);
/// An owned [`Progress`] callback, for work sent to a database thread.
pub type ProgressFn = Box<dyn FnMut(&str, u64) + Send>;

/// Writes a backup of the whole database to `out` (one read transaction: a consistent
/// snapshot while the server keeps running). Blocking: runs on a database thread.
pub fn write(
    conn: &mut crate::db::Conn,
    out: &mut dyn Write,
    secret: &SecretRecord,
    progress: Progress<'_>,
) -> Result<Written, BackupError> {
    format::write(conn, out, secret, progress)
}

/// `true` when a file name asks for gzip.
pub fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Writes a backup to `path` atomically: into `<path>.partial` (mode 0600: a backup holds
/// password hashes), gzip when the name ends in `.gz`, flushed to disk, then renamed into
/// place. A failed backup leaves no file behind under the final name.
pub async fn write_file(
    db: &DbPool,
    path: PathBuf,
    secret: SecretRecord,
    mut progress: ProgressFn,
) -> Result<Written, BackupError> {
    db.run(move |conn| {
        let partial = partial_path(&path);
        let result = write_file_on(conn, &path, &partial, &secret, &mut *progress);
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    })
    .await
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

fn write_file_on(
    conn: &mut crate::db::Conn,
    path: &Path,
    partial: &Path,
    secret: &SecretRecord,
    progress: Progress<'_>,
) -> Result<Written, BackupError> {
    let io = |what: &str, e: std::io::Error| {
        BackupError::Io(format!("cannot {what} {}: {e}", partial.display()))
    };
    let file = private_file(partial).map_err(|e| io("create", e))?;
    let mut buffered = std::io::BufWriter::new(file);
    let written = if is_gzip_name(path) {
        let mut gz = flate2::write::GzEncoder::new(&mut buffered, flate2::Compression::default());
        let w = write(conn, &mut gz, secret, progress)?;
        gz.finish().map_err(|e| io("write", e))?;
        w
    } else {
        write(conn, &mut buffered, secret, progress)?
    };
    let file = buffered
        .into_inner()
        .map_err(|e| io("write", e.into_error()))?;
    file.sync_all().map_err(|e| io("write", e))?;
    std::fs::rename(partial, path).map_err(|e| {
        BackupError::Io(format!("cannot move the backup to {}: {e}", path.display()))
    })?;
    Ok(written)
}

/// A new file readable by its owner only (replacing a leftover one).
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
