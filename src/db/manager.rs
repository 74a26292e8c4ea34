//! An r2d2 connection manager that picks the backend from the URL scheme, and the
//! per-connection set-up of SQLite. diesel's stock manager tries each backend in turn and
//! reports the last failure, which hides the real reason a PostgreSQL server is unreachable.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, PgConnection, SqliteConnection};

use super::{AnyConnection, Backend, DbError};

/// `database.url`: `sqlite://PATH` or `postgres://…`. Its password never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            url::Url::parse(raw).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
            Ok(Self(raw.to_owned()))
        } else if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://./data/hallpass.db".into());
            }
            Ok(Self(raw.to_owned()))
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }

    pub fn backend(&self) -> Backend {
        if self.0.starts_with("sqlite://") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// The SQLite file path, for `sqlite://` URLs.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.0.strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// The URL to hand to the driver (contains the password).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced, for logs and `check-config`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("REDACTED"));
                u.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

pub(super) struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    pub(super) fn new(url: &DatabaseUrl) -> Result<Self, DbError> {
        let path = url.sqlite_path();
        if let Some(dir) = path
            .as_deref()
            .and_then(|p| p.parent())
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| DbError::Connect {
                url: url.redacted(),
                reason: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        Ok(Self { url: url.clone() })
    }

    pub(super) fn backend(&self) -> Backend {
        self.url.backend()
    }

    pub(super) fn establish(&self) -> Result<AnyConnection, DbError> {
        let fail = |e: diesel::ConnectionError| DbError::Connect {
            url: self.url.redacted(),
            reason: e.to_string().trim().to_owned(),
        };
        match self.url.sqlite_path() {
            Some(path) => SqliteConnection::establish(&path.to_string_lossy())
                .map(AnyConnection::Sqlite)
                .map_err(fail),
            None => PgConnection::establish(self.url.expose())
                .map(AnyConnection::Postgresql)
                .map_err(fail),
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = DbError;

    fn connect(&self) -> Result<AnyConnection, DbError> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        conn.ping().map_err(DbError::from)
    }

    /// A connection left in a failed transaction (or, on PostgreSQL, whose socket died) is
    /// dropped when it goes back to the pool.
    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// Per-connection settings. For SQLite: wait for locks instead of failing (set before WAL,
/// or parallel pool start-up logs "database is locked"), WAL so readers never block the
/// writer, foreign keys on (they are per connection in SQLite).
#[derive(Debug)]
pub(super) struct Customizer;

const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl r2d2::CustomizeConnection<AnyConnection, DbError> for Customizer {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        match conn {
            AnyConnection::Sqlite(c) => c
                .batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    SQLITE_BUSY_TIMEOUT.as_millis()
                ))
                .map_err(DbError::from),
            AnyConnection::Postgresql(c) => c
                .batch_execute("SET TIME ZONE 'UTC'")
                .map_err(DbError::from),
        }
    }
}
