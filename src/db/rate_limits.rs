//! Brute-force counters shared by every process on one PostgreSQL database
//! (`service::rate_limit`). Each row is one counter in its current window; a failure is one
//! atomic upsert, so processes failing at the same moment are all counted. Times are the
//! database server's clock in milliseconds, so processes whose clocks differ agree.
//!
//! PostgreSQL only: on SQLite (one process) the counters stay in memory and these functions
//! are never called; they answer nothing there.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use super::changes::LIMITS_CHANNEL as LIMITS;
use super::{AnyConnection, Conn, DbError};

/// The database server's clock, in unix milliseconds.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// One counter: what is attempted, from which client (an address, IPv6 cut to its /64), and
/// for which account (a keyed hash; empty for the per-address counter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Counter {
    pub action: &'static str,
    pub client: String,
    pub account: String,
}

/// A counter's state: its failures in the window that opened `age_ms` ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub failures: u32,
    pub age_ms: u64,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    client: String,
    #[diesel(sql_type = Text)]
    account: String,
    #[diesel(sql_type = Integer)]
    failures: i32,
    #[diesel(sql_type = BigInt)]
    age_ms: i64,
}

impl Row {
    fn count(&self) -> Count {
        Count {
            failures: u32::try_from(self.failures).unwrap_or(0),
            age_ms: u64::try_from(self.age_ms).unwrap_or(0),
        }
    }
}

/// Counts one failure of `c` (a new window if its last one closed) and returns the count;
/// when it reaches `notify_at`, every process is told at commit (channel `hallpass_limits`).
pub fn fail(
    conn: &mut Conn,
    c: &Counter,
    window_ms: i64,
    notify_at: u32,
) -> Result<Option<Count>, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(None);
    };
    let sql = format!(
        "INSERT INTO rate_limits AS r (action, client, account, window_start, failures) \
         VALUES ($1, $2, $3, {NOW_MS}, 1) \
         ON CONFLICT (action, client, account) DO UPDATE SET \
           failures = CASE WHEN r.window_start <= EXCLUDED.window_start - $4 THEN 1 \
                           ELSE r.failures + 1 END, \
           window_start = CASE WHEN r.window_start <= EXCLUDED.window_start - $4 \
                               THEN EXCLUDED.window_start ELSE r.window_start END \
         RETURNING r.action, r.client, r.account, r.failures, \
                   {NOW_MS} - r.window_start AS age_ms"
    );
    let count = pg.transaction(|pg| {
        let rows = diesel::sql_query(&sql)
            .bind::<Text, _>(c.action)
            .bind::<Text, _>(&c.client)
            .bind::<Text, _>(&c.account)
            .bind::<BigInt, _>(window_ms)
            .load::<Row>(pg)?;
        let count = rows.first().map(Row::count);
        if count.is_some_and(|n| n.failures >= notify_at) {
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(LIMITS)
                .bind::<Text, _>(c.action)
                .execute(pg)?;
        }
        Ok::<_, diesel::result::Error>(count)
    })?;
    Ok(count)
}

/// The counts of `counters` whose window is still open (missing ones have none).
pub fn load(
    conn: &mut Conn,
    counters: &[Counter],
    window_ms: i64,
) -> Result<Vec<(Counter, Count)>, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for c in counters {
        let rows = diesel::sql_query(format!(
            "SELECT action, client, account, failures, {NOW_MS} - window_start AS age_ms \
             FROM rate_limits WHERE action = $1 AND client = $2 AND account = $3"
        ))
        .bind::<Text, _>(c.action)
        .bind::<Text, _>(&c.client)
        .bind::<Text, _>(&c.account)
        .load::<Row>(pg)?;
        found.extend(
            rows.iter()
                .filter(|r| r.age_ms < window_ms)
                .map(|r| (c.clone(), r.count())),
        );
    }
    Ok(found)
}

/// Every counter with at least `min_failures` in an open window: the blocks in force, which
/// a process keeps in memory so that a valid API key costs no trip here.
pub fn blocked(
    conn: &mut Conn,
    min_failures: u32,
    window_ms: i64,
) -> Result<Vec<(String, String, String, Count)>, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(Vec::new());
    };
    let rows = diesel::sql_query(format!(
        "SELECT action, client, account, failures, {NOW_MS} - window_start AS age_ms \
         FROM rate_limits WHERE failures >= $1 AND window_start > {NOW_MS} - $2"
    ))
    .bind::<Integer, _>(i32::try_from(min_failures).unwrap_or(i32::MAX))
    .bind::<BigInt, _>(window_ms)
    .load::<Row>(pg)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let count = r.count();
            (r.action, r.client, r.account, count)
        })
        .collect())
}

/// Forgets a counter (a successful sign-in clears its account's).
pub fn clear(conn: &mut Conn, c: &Counter) -> Result<(), DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(());
    };
    diesel::sql_query("DELETE FROM rate_limits WHERE action = $1 AND client = $2 AND account = $3")
        .bind::<Text, _>(c.action)
        .bind::<Text, _>(&c.client)
        .bind::<Text, _>(&c.account)
        .execute(pg)?;
    Ok(())
}

/// Deletes counters whose window has closed; returns how many.
pub fn purge(conn: &mut Conn, window_ms: i64) -> Result<usize, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(0);
    };
    Ok(diesel::sql_query(format!(
        "DELETE FROM rate_limits WHERE window_start <= {NOW_MS} - $1"
    ))
    .bind::<BigInt, _>(window_ms)
    .execute(pg)?)
}
