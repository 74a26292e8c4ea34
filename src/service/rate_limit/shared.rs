//! The counters every process shares on PostgreSQL (`db::rate_limits`), so that several
//! Hallpass processes on one database count against one limit and a restart forgets
//! nothing. The in-memory counters keep doing the deciding; before an attempt they are
//! raised to what the shared ones say, and every failure is counted in both.
//!
//! What costs a trip to the database, and what does not:
//! * an expensive guess (password, setup code, registration, SSO linking) reads its two
//!   shared counters before it starts — next to an argon2 hash, one indexed read;
//! * a failure is one atomic upsert (processes failing at the same moment are all counted),
//!   a successful sign-in clears its account's counter;
//! * an API key reads nothing: the process keeps the blocks in force in memory and reads
//!   them again only when one begins anywhere (the counter that reaches a limit notifies
//!   `hallpass_limits`; the change probe's [`Channel::Limits`] stamp moves) or while the
//!   listener is down. A valid key therefore costs no round trip.
//!
//! Attempts in flight are held per process: a burst split over two processes may run up to
//! twice the limit's hashes at once, but every failure is counted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Attempt;
use super::counters::{SharedCounts, client_key, normalize};
use crate::config::RateLimitConfig;
use crate::db::changes::{Channel, Stamp};
use crate::db::rate_limits::{self, Count, Counter};
use crate::db::{DbError, DbPool};

/// The shared counters of one process.
pub(super) struct Shared {
    db: DbPool,
    /// Keys the hashes of account names (derived from the server secret, which every
    /// process of one deployment shares): the table never holds a name someone typed.
    key: [u8; 32],
    window: Duration,
    /// The lowest limit: a counter that reaches it may be a block.
    notify_at: u32,
    max_ip: u32,
    max_account: u32,
    blocks: Mutex<Blocks>,
    /// The `Limits` stamp under which lifts were last read (see [`Shared::apply_lifts`]).
    lifts_seen: Mutex<Option<Stamp>>,
}

/// The blocks in force, as read when the `Limits` stamp was `stamp`.
#[derive(Default)]
struct Blocks {
    stamp: Option<Stamp>,
    by_counter: HashMap<Counter, (u32, Instant)>,
}

/// The per-address and per-account counters of an attempt.
struct Pair {
    ip: Counter,
    account: Option<Counter>,
}

impl Shared {
    pub(super) fn new(config: &RateLimitConfig, db: DbPool, key: [u8; 32]) -> Self {
        Self {
            db,
            key,
            window: config.window.get(),
            notify_at: config
                .max_failures_per_ip
                .min(config.max_failures_per_account),
            max_ip: config.max_failures_per_ip,
            max_account: config.max_failures_per_account,
            blocks: Mutex::default(),
            lifts_seen: Mutex::default(),
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }

    fn pair(&self, attempt: &Attempt<'_>) -> Pair {
        let ip = Counter {
            action: attempt.action.name(),
            client: client_key(attempt.ip).to_string(),
            account: String::new(),
        };
        let account = attempt.account.map(|a| Counter {
            account: self.account_hash(&normalize(a)),
            ..ip.clone()
        });
        Pair { ip, account }
    }

    fn account_hash(&self, account: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(account.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What the shared counters hold for `attempt` now (see the module docs for which
    /// attempts read the database for it).
    pub(super) async fn counts(&self, attempt: &Attempt<'_>) -> SharedCounts {
        let pair = self.pair(attempt);
        if !attempt.action.reserves() {
            return self.blocks(&pair).await;
        }
        let counters: Vec<Counter> = std::iter::once(pair.ip.clone())
            .chain(pair.account.clone())
            .collect();
        let window_ms = self.window_ms();
        let found = self
            .db
            .run(move |c| rate_limits::load(c, &counters, window_ms))
            .await;
        match found {
            Ok(found) => pick(&pair, found.into_iter().map(|(c, n)| (c, age(n)))),
            Err(e) => {
                // The counts of this process still apply.
                tracing::warn!(error = %e, "rate limit: could not read the shared counters");
                SharedCounts::default()
            }
        }
    }

    /// Counts one failure of `attempt` in both of its counters; returns the new counts.
    pub(super) async fn fail(&self, attempt: &Attempt<'_>) -> SharedCounts {
        let pair = self.pair(attempt);
        let counters: Vec<Counter> = std::iter::once(pair.ip.clone())
            .chain(pair.account.clone())
            .collect();
        let (window_ms, notify_at) = (self.window_ms(), self.notify_at);
        // The name as the audit log keeps it, stored only once the account counter is full.
        let label: Option<(String, u32)> = attempt
            .account
            .map(|a| (normalize(a).chars().take(100).collect(), self.max_account));
        let counted = self
            .db
            .run(move |c| {
                let mut out = Vec::new();
                for counter in counters {
                    let label = label
                        .as_ref()
                        .filter(|_| !counter.account.is_empty())
                        .map(|(n, l)| (n.as_str(), *l));
                    if let Some(n) = rate_limits::fail(c, &counter, window_ms, notify_at, label)? {
                        out.push((counter, n));
                    }
                }
                Ok::<_, DbError>(out)
            })
            .await;
        match counted {
            Ok(counted) => pick(&pair, counted.into_iter().map(|(c, n)| (c, age(n)))),
            Err(e) => {
                tracing::warn!(error = %e, "rate limit: could not count a failure in the shared counters");
                SharedCounts::default()
            }
        }
    }

    /// A successful sign-in starts its account's counter afresh, in every process.
    pub(super) async fn clear_account(&self, attempt: &Attempt<'_>) {
        let Some(counter) = self.pair(attempt).account else {
            return;
        };
        if let Err(e) = self.db.run(move |c| rate_limits::clear(c, &counter)).await {
            tracing::warn!(error = %e, "rate limit: could not clear a shared counter");
        }
    }

    /// Deletes the counters whose window has closed.
    pub(super) async fn purge(&self) {
        let window_ms = self.window_ms();
        if let Err(e) = self.db.run(move |c| rate_limits::purge(c, window_ms)).await {
            tracing::warn!(error = %e, "rate limit: could not purge the shared counters");
        }
    }

    /// The blocks in force for `pair`, read again only when one began somewhere since the
    /// last read (or the change listener is down).
    async fn blocks(&self, pair: &Pair) -> SharedCounts {
        let stamp = self.db.changes().and_then(|p| p.stamp_of(Channel::Limits));
        if let Ok(b) = self.blocks.lock()
            && stamp.is_some()
            && b.stamp == stamp
        {
            return lookup(&b, pair);
        }
        let (min, window_ms) = (self.notify_at, self.window_ms());
        let read = self
            .db
            .run(move |c| rate_limits::blocked(c, min, window_ms))
            .await;
        let Ok(mut b) = self.blocks.lock() else {
            return SharedCounts::default();
        };
        match read {
            Ok(rows) => {
                let now = Instant::now();
                b.by_counter = rows
                    .into_iter()
                    .map(|(action, client, account, n)| {
                        let (failures, age) = age(n);
                        let opened = now.checked_sub(age).unwrap_or(now);
                        let action = attempt_name(&action);
                        (
                            Counter {
                                action,
                                client,
                                account,
                            },
                            (failures, opened),
                        )
                    })
                    .collect();
                b.stamp = stamp;
            }
            // The last view still applies; the next request tries again.
            Err(e) => tracing::warn!(error = %e, "rate limit: could not read the shared blocks"),
        }
        lookup(&b, pair)
    }
}

impl Shared {
    /// Every shared counter at or past its limit (the lockout view on PostgreSQL: the
    /// counters of every process).
    pub(super) async fn locked(&self) -> Result<Vec<rate_limits::Locked>, DbError> {
        let (max_ip, max_account, window_ms) = (self.max_ip, self.max_account, self.window_ms());
        self.db
            .run(move |c| rate_limits::locked(c, max_ip, max_account, window_ms))
            .await
    }

    /// Lifts a shared counter in every process (see `rate_limits::lift`).
    pub(super) async fn lift(
        &self,
        action: &'static str,
        client: String,
        account: String,
    ) -> Result<Option<rate_limits::Locked>, DbError> {
        let window_ms = self.window_ms();
        self.db
            .run(move |c| rate_limits::lift(c, action, &client, &account, window_ms))
            .await
    }

    /// Makes this process forget its copy of every counter lifted since the `Limits` stamp
    /// last moved (a lift notifies that channel). One stamp comparison when nothing moved;
    /// without a listener, lifts made elsewhere wait until it is back.
    pub(super) async fn apply_lifts(&self, counters: &super::counters::Counters) {
        let stamp = self.db.changes().and_then(|p| p.stamp_of(Channel::Limits));
        let Some(stamp) = stamp else { return };
        match self.lifts_seen.lock() {
            Ok(mut seen) if *seen != Some(stamp) => *seen = Some(stamp),
            _ => return,
        }
        let window_ms = self.window_ms();
        let lifted = match self
            .db
            .run(move |c| rate_limits::lifted(c, window_ms))
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "rate limit: could not read lifted counters");
                return;
            }
        };
        let now = Instant::now();
        for l in lifted {
            let (action, client, account) = &l.counter;
            let (Some(action), Ok(ip)) = (
                super::Action::from_name(action),
                client.parse::<std::net::IpAddr>(),
            ) else {
                continue;
            };
            let name = match (account.is_empty(), &l.label) {
                (true, _) => None,
                (false, Some(label)) => Some(label.as_str()),
                // An account counter lifted without its name stored: nothing to match.
                (false, None) => continue,
            };
            let lifted_at = now.checked_sub(Duration::from_millis(l.count.age_ms));
            counters.forget_lifted(action, ip, name, lifted_at.unwrap_or(now));
        }
    }
}

/// A count as the in-memory counters take it: failures, and the age of their window.
fn age(n: Count) -> (u32, Duration) {
    (n.failures, Duration::from_millis(n.age_ms))
}

fn pick(pair: &Pair, found: impl Iterator<Item = (Counter, (u32, Duration))>) -> SharedCounts {
    let mut counts = SharedCounts::default();
    for (counter, n) in found {
        if counter == pair.ip {
            counts.ip = Some(n);
        } else if pair.account.as_ref() == Some(&counter) {
            counts.account = Some(n);
        }
    }
    counts
}

fn lookup(b: &Blocks, pair: &Pair) -> SharedCounts {
    let get = |c: &Counter| {
        b.by_counter
            .get(c)
            .map(|(failures, opened)| (*failures, opened.elapsed()))
    };
    SharedCounts {
        ip: get(&pair.ip),
        account: pair.account.as_ref().and_then(get),
    }
}

/// The `&'static` action name a stored row names (unknown names, from a newer version,
/// match no attempt of this one). Every action, through [`super::Action::ALL`]: a list of
/// its own here missed `second_factor` and `metrics_token`, whose blocks then never reached
/// the other processes.
fn attempt_name(stored: &str) -> &'static str {
    super::Action::from_name(stored).map_or("", super::Action::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_read_back_from_its_stored_name() {
        for a in super::super::Action::ALL {
            assert_eq!(attempt_name(a.name()), a.name(), "{a:?}");
        }
        assert_eq!(attempt_name("from_a_newer_version"), "");
    }
}
