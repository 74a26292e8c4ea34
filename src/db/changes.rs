//! "Has anything been committed to the database since?" — answered without a trip to the
//! database threads, for caches on the hot path (forward-auth).
//!
//! SQLite has the exact answer: `PRAGMA data_version` on a connection of its own changes
//! whenever *any other* connection commits, in this process or another (the recovery CLI,
//! a second server). Reading it costs a few microseconds on the calling thread (it reads the
//! WAL index in shared memory; `busy_timeout = 0`, so it never waits on a lock: a busy
//! database answers "unknown", which callers treat as "changed"). PostgreSQL has no such
//! counter: [`DbPool::change_probe`] gives `None` there and callers read the database.

use std::sync::Mutex;

use diesel::connection::SimpleConnection;
use diesel::{QueryDsl, RunQueryDsl, SqliteConnection};

use super::{AnyConnection, DbPool};

/// A dedicated SQLite connection that only ever reads `data_version`.
pub struct ChangeProbe {
    conn: Mutex<SqliteConnection>,
}

impl std::fmt::Debug for ChangeProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeProbe")
    }
}

// SQLite's eponymous virtual table for the pragma. Written as a table, the query has a
// static shape, so diesel keeps it prepared instead of preparing `PRAGMA data_version`
// anew on every request.
diesel::table! {
    pragma_data_version (data_version) {
        data_version -> BigInt,
    }
}

impl ChangeProbe {
    /// A value that differs from every earlier one once another connection has committed;
    /// `None` when it cannot be read now (treat as changed).
    pub fn stamp(&self) -> Option<i64> {
        let mut conn = self.conn.lock().ok()?;
        pragma_data_version::table
            .select(pragma_data_version::data_version)
            .load::<i64>(&mut *conn)
            .ok()?
            .pop()
    }
}

impl DbPool {
    /// The change probe of a SQLite database; `None` on PostgreSQL (or when the extra
    /// connection cannot be opened: callers then simply read the database every time).
    pub fn change_probe(&self) -> Option<ChangeProbe> {
        let AnyConnection::Sqlite(conn) = super::manager::Manager::new(&self.url)
            .and_then(|m| m.establish())
            .ok()?
        else {
            return None;
        };
        let mut conn = conn;
        conn.batch_execute("PRAGMA busy_timeout = 0;").ok()?;
        Some(ChangeProbe {
            conn: Mutex::new(conn),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_connections_commit_moves_the_stamp_and_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::db::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("t.db").display()
        ))
        .unwrap();
        let options = crate::db::PoolOptions {
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(5),
            test_on_check_out: false,
        };
        let pool = DbPool::connect(&url, &options).unwrap();
        crate::db::migrations::run(&pool).unwrap();
        let probe = pool.change_probe().unwrap();
        let before = probe.stamp().unwrap();
        pool.run_blocking(crate::db::settings::rules_version)
            .unwrap();
        assert_eq!(probe.stamp(), Some(before), "a read is not a change");
        pool.run_blocking(crate::db::settings::bump_rules_version)
            .unwrap();
        let after = probe.stamp().unwrap();
        assert_ne!(after, before, "a commit elsewhere moves the stamp");
        assert_eq!(probe.stamp(), Some(after));
    }
}
