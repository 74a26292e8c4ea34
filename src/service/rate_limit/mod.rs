//! Brute-force limits: failed attempts counted per client IP and per attempted account and
//! client IP, and refused with `429` *before* the work they guard (a password hash, a key
//! lookup, a trip to an identity provider) is done. On SQLite (one process) the counters
//! live in this process's memory and a restart forgets them; on PostgreSQL they are also
//! kept in the database and shared by every process on it (`shared`: one limit for all,
//! kept across restarts, and still no database trip for a valid API key).
//!
//! Every guarded handler, HTML and JSON alike, wraps its one service call in
//! [`RateLimiter::guard`]. Only a real failure is counted as one. Two kinds of action differ
//! in what happens while an attempt is still running:
//!
//! * Expensive guesses (a password hash, a trip to an identity provider) *reserve* a place
//!   when they start: a counter refuses once its failures plus its attempts in flight reach
//!   the limit, so a burst of parallel requests cannot all slip past a limit while their
//!   hashes are still running. A reservation becomes a failure when the attempt fails; it is
//!   handed back on success, on an answer that is no guess at a secret (password sign-in is
//!   off, a new password too short, a server error) and when the request is abandoned (the
//!   client hung up: a drop guard gives it back, except for SSO linking, whose cost is the
//!   start itself). A refusal caused by reservations alone asks to retry in a second.
//! * API keys reserve nothing: a key lookup is cheap and 256 random bits are not guessed, so
//!   a counter refuses only once its real failures reach the limit. Requests in flight,
//!   however many, never lock a busy client with a valid key out.
//!
//! On success the account + IP counter is cleared (someone who mistyped and then got it right
//! starts afresh); earlier failures from the IP stay counted.
//!
//! A counter's window opens at its first failure. Once the limit is reached every attempt is
//! refused, whatever account it names, until the window closes: the answer is the same for
//! accounts that exist and accounts that do not, and it says when to come back.
//!
//! Refusals are audited, coalesced: the first refusal of a counter in its window is written
//! at once (`rate_limit.<action>`, outcome `refused`); later ones are counted and written by
//! [`RateLimiter::flush`], which the server runs every minute and at shutdown, as one event
//! per counter carrying how many attempts were refused since the previous one. A flood of
//! refused requests therefore costs no database writes.
//!
//! Memory is bounded: counters live in [`SHARDS`] mutex-guarded maps of at most
//! [`MAX_ENTRIES`] entries in all (oldest evicted first), accounts are kept as keyed 64-bit
//! hashes, and IPv6 clients are counted per /64 (one household, one counter).
//!
//! The parts, by what they do: `attempt` (what is attempted and how its outcome counts),
//! `counters` (the windows and limits, no I/O), `shard` (one map of counters, its eviction),
//! `reservation` (an attempt in flight, handed back if abandoned), `report` (the audit event
//! of a refusal), `shared` (the counters in PostgreSQL). This file holds the limiter the
//! rest of the server calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::ServiceError;
use crate::config::RateLimitConfig;
use crate::db::{Backend, DbPool, audit};

mod attempt;
mod counters;
mod lockouts;
mod report;
mod reservation;
mod shard;
mod shared;
#[cfg(test)]
mod test_support;

use attempt::Verdict;
pub use attempt::{Action, Attempt, Limited};
use counters::Counters;
pub use lockouts::Lockout;
use report::Report;
use reservation::Reservation;
use shared::Shared;

/// Independent maps, so that concurrent requests from different clients rarely wait on
/// each other. Every counter of one client IP (per-IP and per-account) is in the same shard,
/// which makes checking and counting both of them one atomic step.
pub const SHARDS: usize = 16;
/// Most counters kept at once, all shards together (≈ 150 bytes each with the map's spare
/// room: about 10 MB at worst).
pub const MAX_ENTRIES: usize = 65_536;

/// The process-wide limiter; clones share the counters.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    counters: Counters,
    db: DbPool,
    /// The counters in PostgreSQL, shared by every process (`None` on SQLite).
    shared: Option<Shared>,
    /// Counts refusals by action (`hallpass_rate_limit_refusals_total`), when set.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.inner.enabled)
            .field("window", &self.inner.counters.window)
            .field("max_ip", &self.inner.counters.max_ip)
            .field("max_account", &self.inner.counters.max_account)
            .finish()
    }
}

impl RateLimiter {
    /// Counters under `config`; refusals are audited into `db`. On PostgreSQL the counters
    /// are shared through `db`, with account names hashed under `account_key` (derive it
    /// from the server secret: every process of a deployment must use the same).
    pub fn new(config: &RateLimitConfig, db: DbPool, account_key: [u8; 32]) -> Self {
        let shared = (db.backend() == Backend::Postgres)
            .then(|| Shared::new(config, db.clone(), account_key));
        Self {
            inner: Arc::new(Inner {
                enabled: config.enabled,
                counters: Counters::new(config, MAX_ENTRIES),
                db,
                shared,
                metrics: std::sync::OnceLock::new(),
            }),
        }
    }

    /// From now on each refusal is counted in `metrics` (set once).
    pub fn record_refusals(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// Runs `work` unless `attempt` is over a limit, in which case `work` is never polled
    /// (nothing is hashed, nothing is looked up) and the answer is
    /// [`ServiceError::RateLimited`]. The result of `work` is passed through unchanged.
    pub async fn guard<T, F>(&self, attempt: Attempt<'_>, work: F) -> Result<T, ServiceError>
    where
        F: Future<Output = Result<T, ServiceError>>,
    {
        if !self.inner.enabled {
            return work.await;
        }
        let shared = self.inner.shared.as_ref();
        if let Some(shared) = shared {
            shared.apply_lifts(&self.inner.counters).await;
            let counts = shared.counts(&attempt).await;
            self.inner
                .counters
                .absorb(&attempt, &counts, Instant::now());
        }
        let reservation = match self.inner.counters.begin(&attempt, Instant::now()) {
            Ok(ticket) => Reservation {
                counters: &self.inner.counters,
                ticket: Some(ticket),
                on_drop: attempt.action.cancelled(),
            },
            Err((limited, report)) => {
                tracing::debug!(action = ?attempt.action, retry_after = limited.retry_after, "attempt refused by the rate limit");
                if let Some(m) = self.inner.metrics.get() {
                    m.rate_limited(attempt.action);
                }
                if let Some(report) = report {
                    self.write(vec![*report]).await;
                }
                return Err(ServiceError::RateLimited(limited));
            }
        };
        // Counted in the shared counters before it runs; taken into this process's only
        // once it has counted the same failure itself (below), or it would count twice.
        let counted_at_start = match shared {
            Some(shared) if attempt.action.counts_at_start() => Some(shared.fail(&attempt).await),
            _ => None,
        };
        // If the request is abandoned here (the client hung up), `reservation` is dropped
        // and settles as `Action::cancelled` says.
        let result = work.await;
        let verdict = attempt.action.verdict(&result);
        reservation.settle(verdict);
        if let Some(shared) = shared {
            let counts = match verdict {
                _ if counted_at_start.is_some() => counted_at_start,
                Verdict::Failed => Some(shared.fail(&attempt).await),
                Verdict::Succeeded => {
                    shared.clear_account(&attempt).await;
                    None
                }
                Verdict::Uncounted => None,
            };
            if let Some(counts) = counts {
                self.inner
                    .counters
                    .absorb(&attempt, &counts, Instant::now());
            }
        }
        result
    }

    /// Writes the refusals counted since the last flush to the audit log and forgets
    /// counters whose window has closed. Returns how many events were written.
    pub async fn flush(&self) -> usize {
        if let Some(shared) = &self.inner.shared {
            shared.purge().await;
        }
        let (reports, lost) = self.inner.counters.drain_reports(Instant::now());
        if lost > 0 {
            tracing::warn!(
                refused = lost,
                "rate limit: refusals of evicted counters could not all be kept for the audit log"
            );
        }
        let n = reports.len();
        if n > 0 {
            self.write(reports).await;
        }
        n
    }

    async fn write(&self, reports: Vec<Report>) {
        let written = self
            .inner
            .db
            .run(move |conn| {
                for r in &reports {
                    let detail = r.detail();
                    audit::insert(
                        conn,
                        &audit::NewEvent {
                            actor_id: r.actor_id,
                            actor: &r.actor,
                            action: r.action.audit_action(),
                            target: r.target.as_deref(),
                            ip: Some(&r.ip),
                            outcome: "refused",
                            detail: Some(&detail),
                        },
                    )?;
                }
                Ok::<_, crate::db::DbError>(())
            })
            .await;
        // The refusal stands either way: a database problem must not open the limit.
        if let Err(e) = written {
            tracing::warn!(error = %e, "rate limit: could not audit refused attempts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{config, login};
    use super::*;
    use std::time::Duration;

    /// The whole guard: a request whose future is dropped mid-way (the client hung up) is
    /// not left counted against its address.
    #[tokio::test]
    async fn guard_hands_back_a_cancelled_request() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = crate::db::sqlite_for_tests(dir.path(), 1)?;
        let limiter = RateLimiter::new(&config(1, 1), db, [7; 32]);
        for _ in 0..3 {
            let attempt = login("10.0.0.1", "alice");
            let never = std::future::pending::<Result<(), ServiceError>>();
            let hung_up =
                tokio::time::timeout(Duration::from_millis(10), limiter.guard(attempt, never))
                    .await;
            assert!(hung_up.is_err(), "the work never finishes");
        }
        let attempt = login("10.0.0.1", "alice");
        let done = limiter.guard(attempt, async { Ok(()) }).await;
        assert!(done.is_ok(), "{done:?}");
        Ok(())
    }
}
