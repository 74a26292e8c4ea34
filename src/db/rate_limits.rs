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
/// `label` is `(account name, its limit)`: the name is stored once the count reaches that
/// limit, for the lockout view (below it the row holds the keyed hash alone).
pub fn fail(
    conn: &mut Conn,
    c: &Counter,
    window_ms: i64,
    notify_at: u32,
    label: Option<(&str, u32)>,
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
        if let (Some(n), Some((name, limit))) = (count, label)
            && n.failures >= limit
        {
            diesel::sql_query(
                "UPDATE rate_limits SET label = $4 WHERE action = $1 AND client = $2 \
                 AND account = $3 AND label IS DISTINCT FROM $4",
            )
            .bind::<Text, _>(c.action)
            .bind::<Text, _>(&c.client)
            .bind::<Text, _>(&c.account)
            .bind::<Text, _>(name)
            .execute(pg)?;
        }
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

/// A counter at or past its limit, as the lockout view lists it.
#[derive(Debug, Clone)]
pub struct Locked {
    pub counter: (String, String, String),
    /// The attempted account name (stored once the counter reached its limit).
    pub label: Option<String>,
    pub count: Count,
}

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    client: String,
    #[diesel(sql_type = Text)]
    account: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    label: Option<String>,
    #[diesel(sql_type = Integer)]
    failures: i32,
    #[diesel(sql_type = BigInt)]
    age_ms: i64,
}

impl From<LockedRow> for Locked {
    fn from(r: LockedRow) -> Self {
        let count = Count {
            failures: u32::try_from(r.failures).unwrap_or(0),
            age_ms: u64::try_from(r.age_ms).unwrap_or(0),
        };
        Locked {
            counter: (r.action, r.client, r.account),
            label: r.label,
            count,
        }
    }
}

/// Every counter in an open window at or past its limit: `max_ip` for per-address counters
/// (no account), `max_account` for the others.
pub fn locked(
    conn: &mut Conn,
    max_ip: u32,
    max_account: u32,
    window_ms: i64,
) -> Result<Vec<Locked>, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(Vec::new());
    };
    let rows = diesel::sql_query(format!(
        "SELECT action, client, account, label, failures, {NOW_MS} - window_start AS age_ms \
         FROM rate_limits WHERE window_start > {NOW_MS} - $3 \
         AND failures >= CASE WHEN account = '' THEN $1 ELSE $2 END \
         ORDER BY window_start"
    ))
    .bind::<Integer, _>(i32::try_from(max_ip).unwrap_or(i32::MAX))
    .bind::<Integer, _>(i32::try_from(max_account).unwrap_or(i32::MAX))
    .bind::<BigInt, _>(window_ms)
    .load::<LockedRow>(pg)?;
    Ok(rows.into_iter().map(Locked::from).collect())
}

/// Lifts a counter: it starts afresh (no failures, a new window) and records when, so
/// every process forgets its own copy ([`lifted`]); every process is told at commit.
/// Returns the counter as it was, `None` when there is no such counter in an open window.
pub fn lift(
    conn: &mut Conn,
    action: &str,
    client: &str,
    account: &str,
    window_ms: i64,
) -> Result<Option<Locked>, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(None);
    };
    let before = pg.transaction(|pg| {
        let found = diesel::sql_query(format!(
            "SELECT action, client, account, label, failures, {NOW_MS} - window_start AS age_ms \
             FROM rate_limits WHERE action = $1 AND client = $2 AND account = $3 \
             AND window_start > {NOW_MS} - $4 AND failures > 0 FOR UPDATE"
        ))
        .bind::<Text, _>(action)
        .bind::<Text, _>(client)
        .bind::<Text, _>(account)
        .bind::<BigInt, _>(window_ms)
        .load::<LockedRow>(pg)?
        .pop();
        if found.is_some() {
            diesel::sql_query(format!(
                "UPDATE rate_limits SET failures = 0, window_start = {NOW_MS}, \
                 lifted_at = {NOW_MS} WHERE action = $1 AND client = $2 AND account = $3"
            ))
            .bind::<Text, _>(action)
            .bind::<Text, _>(client)
            .bind::<Text, _>(account)
            .execute(pg)?;
            diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(LIMITS)
                .bind::<Text, _>(action)
                .execute(pg)?;
        }
        Ok::<_, diesel::result::Error>(found)
    })?;
    Ok(before.map(Locked::from))
}

/// A lifted counter and how long ago it was lifted (`count.age_ms`; `count.failures` are
/// those counted since).
pub type Lifted = Locked;

/// The counters lifted in the last `window_ms`.
pub fn lifted(conn: &mut Conn, window_ms: i64) -> Result<Vec<Lifted>, DbError> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(Vec::new());
    };
    let rows = diesel::sql_query(format!(
        "SELECT action, client, account, label, failures, {NOW_MS} - lifted_at AS age_ms \
         FROM rate_limits WHERE lifted_at > {NOW_MS} - $1"
    ))
    .bind::<BigInt, _>(window_ms)
    .load::<LockedRow>(pg)?;
    Ok(rows.into_iter().map(Locked::from).collect())
}
