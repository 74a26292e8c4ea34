//! "Has anything been committed to the database since?" — answered without a trip to the
//! database threads, for caches on the hot path (forward-auth).
//!
//! SQLite in WAL mode keeps a header in its shared-memory file (`<db>-shm`) that every commit
//! rewrites: a change counter, the last frame, salts and checksums (the WAL-index header of
//! <https://www.sqlite.org/walformat.html>, fixed since 3.7.0 because processes running
//! different SQLite versions share it). Comparing its first 48 bytes tells whether any
//! connection, in this process or another (the recovery CLI, a second server), committed
//! since — one `pread` of the page cache, no lock, no statement. When that file cannot be
//! read, `PRAGMA data_version` on a connection of its own gives the same answer for a few
//! thousand instructions more (measured: ~9k per request, most of it preparing the pragma).
//!
//! PostgreSQL has neither. There the probe is a listener (`LISTEN`) on a connection of its
//! own, fed by triggers that `NOTIFY` on every write that can end or narrow access, whoever
//! writes — this server, another Hallpass process, the recovery CLI, psql (see `listener`).
//!
//! One probe per pool ([`DbPool::changes`]), opened on first use: every cache of the process
//! shares it (on PostgreSQL, one listening connection per process).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};

use super::{AnyConnection, DbPool};

mod listener;
pub(super) use listener::LIMITS as LIMITS_CHANNEL;
use listener::PgProbe;
pub use listener::{APPLICATION_NAME as LISTENER_NAME, Channel};

/// What a cache compares: equal stamps mean nothing was committed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The WAL-index header.
    Shm([u8; 48]),
    /// `PRAGMA data_version`.
    DataVersion(i64),
    /// PostgreSQL: how many change notifications this process has taken in.
    Notified(u64),
    /// PostgreSQL: the same, and how many notifications of the listing's bookkeeping
    /// (`hallpass_listing`: a last sign-in) it has taken in.
    Listed(u64, u64),
}

impl Stamp {
    /// The change stamp within a listing stamp (PostgreSQL: without the count of last
    /// sign-ins); any other stamp as it is.
    pub fn changes_only(self) -> Stamp {
        match self {
            Stamp::Listed(changes, _) => Stamp::Notified(changes),
            other => other,
        }
    }
}

/// Tells whether anything was committed since a stamp was taken.
pub struct ChangeProbe {
    kind: Kind,
}

enum Kind {
    Sqlite(SqliteProbe),
    Postgres(PgProbe),
}

/// Reads the stamp of one SQLite database.
struct SqliteProbe {
    shm: Option<File>,
    /// Kept open for the fallback; it also keeps the `-shm` file from being removed.
    conn: Mutex<SqliteConnection>,
}

impl std::fmt::Debug for ChangeProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeProbe")
    }
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

impl ChangeProbe {
    /// The stamp now; `None` when it cannot be read (treat as changed: read the database).
    /// Everything committed before this call — by any process — is reflected: on SQLite the
    /// header is rewritten by the commit itself (one `pread`, answered at once), on
    /// PostgreSQL the call awaits a fence (one round trip on the listening connection made
    /// by the listener's thread, shared by concurrent callers; see `listener`).
    pub async fn stamp(&self) -> Option<Stamp> {
        match &self.kind {
            Kind::Sqlite(p) => p.stamp(),
            Kind::Postgres(p) => p.fenced().await.map(|c| Stamp::Notified(c.changes)),
        }
    }

    /// [`ChangeProbe::stamp`], which on PostgreSQL also moves with the bookkeeping a listing
    /// shows and [`Channel::Changes`] leaves out: a user's last sign-in. For what the user
    /// table shows (SQLite: the same stamp, every commit moves it).
    pub async fn listing_stamp(&self) -> Option<Stamp> {
        match &self.kind {
            Kind::Sqlite(p) => p.stamp(),
            Kind::Postgres(p) => p
                .fenced()
                .await
                .map(|c| Stamp::Listed(c.changes, c.listing)),
        }
    }

    /// The stamp of one kind of change, without waiting: on PostgreSQL, [`Channel::Limits`]
    /// moves only when a shared brute-force block begins (`service::rate_limit`) and is read
    /// without a fence (a block may arrive a moment late); [`Channel::Changes`] is what has
    /// arrived so far (tests). On SQLite every commit moves every stamp.
    pub fn stamp_of(&self, channel: Channel) -> Option<Stamp> {
        match &self.kind {
            Kind::Sqlite(p) => p.stamp(),
            Kind::Postgres(p) => match channel {
                Channel::Limits => p.limits().map(Stamp::Notified),
                Channel::Changes => p.arrived().map(Stamp::Notified),
            },
        }
    }

    /// Opens the probe of `pool`'s database (see [`DbPool::changes`]).
    fn open(pool: &DbPool) -> Option<ChangeProbe> {
        let kind = match pool.backend() {
            super::Backend::Sqlite => Kind::Sqlite(SqliteProbe::open(pool)?),
            super::Backend::Postgres => Kind::Postgres(PgProbe::open(&pool.url)?),
        };
        Some(ChangeProbe { kind })
    }
}

impl SqliteProbe {
    fn stamp(&self) -> Option<Stamp> {
        let mut header = [0u8; 48];
        if let Some(shm) = &self.shm
            && shm.read_exact_at(&mut header, 0).is_ok()
        {
            return Some(Stamp::Shm(header));
        }
        self.data_version().map(Stamp::DataVersion)
    }

    fn data_version(&self) -> Option<i64> {
        let mut conn = self.conn.lock().ok()?;
        diesel::sql_query("PRAGMA data_version")
            .load::<DataVersion>(&mut *conn)
            .ok()?
            .pop()
            .map(|v| v.data_version)
    }
}

impl DbPool {
    /// The change probe of this pool's database, shared by every cache of the process;
    /// `None` when there is none (callers then simply read the database every time).
    pub fn changes(&self) -> Option<&ChangeProbe> {
        self.changes
            .get_or_init(|| ChangeProbe::open(self))
            .as_ref()
    }

    /// [`ChangeProbe::stamp`] of this pool's probe; `None` without one. Take it *before*
    /// reading what a cache keeps: a commit during the read then leaves the entry filed
    /// under a stamp that is already stale, so it is never served.
    pub async fn change_stamp(&self) -> Option<Stamp> {
        match self.changes() {
            Some(probe) => probe.stamp().await,
            None => None,
        }
    }

    /// [`ChangeProbe::listing_stamp`] of this pool's probe; `None` without one. Taken before
    /// the read, like [`DbPool::change_stamp`].
    pub async fn listing_stamp(&self) -> Option<Stamp> {
        match self.changes() {
            Some(probe) => probe.listing_stamp().await,
            None => None,
        }
    }
}

impl SqliteProbe {
    fn open(pool: &DbPool) -> Option<SqliteProbe> {
        let path = pool.url.sqlite_path()?;
        let AnyConnection::Sqlite(mut conn) = super::manager::Manager::new(&pool.url)
            .and_then(|m| m.establish())
            .ok()?
        else {
            return None;
        };
        // Never wait on a lock on the hot path: a busy database answers "changed".
        conn.batch_execute("PRAGMA busy_timeout = 0;").ok()?;
        let mut shm_path = path.into_os_string();
        shm_path.push("-shm");
        Some(SqliteProbe {
            shm: File::open(shm_path).ok(),
            conn: Mutex::new(conn),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &std::path::Path) -> DbPool {
        let url =
            crate::db::DatabaseUrl::parse(&format!("sqlite://{}", dir.join("t.db").display()))
                .unwrap();
        let options = crate::db::PoolOptions {
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(5),
            test_on_check_out: false,
        };
        let pool = DbPool::connect(&url, &options).unwrap();
        crate::db::migrations::run(&pool).unwrap();
        pool
    }

    fn commits_move_the_stamp_and_reads_do_not(pool: &DbPool, stamp: impl Fn() -> Option<Stamp>) {
        let before = stamp().unwrap();
        pool.run_blocking(crate::db::settings::rules_version)
            .unwrap();
        assert_eq!(stamp(), Some(before), "a read is not a change");
        for _ in 0..3 {
            let prior = stamp().unwrap();
            pool.run_blocking(crate::db::settings::bump_rules_version)
                .unwrap();
            let after = stamp().unwrap();
            assert_ne!(after, prior, "a commit elsewhere moves the stamp");
            assert_eq!(stamp(), Some(after));
        }
    }

    #[test]
    fn the_wal_index_header_moves_on_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path());
        let probe = SqliteProbe::open(&pool).unwrap();
        assert!(probe.shm.is_some(), "the -shm file is read");
        assert!(matches!(probe.stamp(), Some(Stamp::Shm(_))));
        commits_move_the_stamp_and_reads_do_not(&pool, || probe.stamp());
    }

    #[test]
    fn data_version_is_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path());
        let probe = SqliteProbe::open(&pool).unwrap();
        let fallback = SqliteProbe {
            shm: None,
            conn: probe.conn,
        };
        assert!(matches!(fallback.stamp(), Some(Stamp::DataVersion(_))));
        commits_move_the_stamp_and_reads_do_not(&pool, || fallback.stamp());
    }
}
