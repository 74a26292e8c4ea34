//! The counting itself: per client IP and per account + IP, in windows, with reservations
//! for attempts in flight. Synchronous, no I/O, so it is tested on its own (which is why the
//! file passes 500 lines: nearly half of it is those tests).

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::report::Scope;
use super::shard::{Entry, Key, Shard};
use super::{Action, Attempt, Limited, Report, SHARDS, Verdict};
use crate::config::{RateLimitConfig, canonical_ip};

/// Longest attempted account name kept for the audit log.
const MAX_LABEL_CHARS: usize = 100;

/// The counters of an attempt that went ahead, to settle when it ends. The instants are the
/// windows its reservations were taken in (`None`: the action reserves nothing).
#[derive(Debug)]
pub(super) struct Ticket {
    shard: usize,
    ip: (Key, Option<Instant>),
    account: Option<(Key, Option<Instant>)>,
    /// The account name as counted, kept on the counter if this attempt fills it.
    name: Option<Box<str>>,
}

/// The counting itself: synchronous, no I/O, so it is tested on its own.
pub(super) struct Counters {
    pub(super) window: Duration,
    pub(super) max_ip: u32,
    pub(super) max_account: u32,
    shards: Box<[Mutex<Shard>]>,
    /// Most entries per shard.
    shard_cap: usize,
    /// Keys the hashes of account names and the choice of shard; random per process, so
    /// nobody can aim many names at one counter or one shard.
    hasher: RandomState,
}

impl Counters {
    pub(super) fn new(config: &RateLimitConfig, max_entries: usize) -> Self {
        Self {
            window: config.window.get(),
            max_ip: config.max_failures_per_ip,
            max_account: config.max_failures_per_account,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_cap: max_entries.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding the lock leaves consistent counts behind: keep using them.
        self.shards[i % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn limit_text(&self, scope: Scope) -> String {
        let max = match scope {
            Scope::Ip => self.max_ip,
            Scope::Account => self.max_account,
        };
        format!(
            "{max} failures per {}",
            crate::config::HumanDuration::secs(self.window.as_secs())
        )
    }

    /// The shard, the per-IP and per-account keys of an attempt, and its account name as
    /// counted (trimmed, lower-cased).
    fn keys(&self, attempt: &Attempt<'_>) -> (usize, Key, Option<Key>, Option<String>) {
        let ip = client_key(attempt.ip);
        let ip_key = Key {
            action: attempt.action,
            ip,
            account: None,
        };
        let normalized = attempt.account.map(normalize);
        let account_key = normalized.as_ref().map(|a| Key {
            account: Some(self.hasher.hash_one(a)),
            ..ip_key
        });
        let shard_index = self.shard_of(attempt.action, ip);
        (shard_index, ip_key, account_key, normalized)
    }

    /// Raises the attempt's counters to what the shared counters say (`Shard::absorb`):
    /// `(failures, age of their window)` per address and per account.
    pub(super) fn absorb(&self, attempt: &Attempt<'_>, shared: &SharedCounts, now: Instant) {
        let (shard_index, ip_key, account_key, _) = self.keys(attempt);
        let mut shard = self.lock(shard_index);
        if let Some(count) = shared.ip {
            shard.absorb(ip_key, count, now, self.window, self.shard_cap);
        }
        if let (Some(key), Some(count)) = (account_key, shared.account) {
            shard.absorb(key, count, now, self.window, self.shard_cap);
        }
    }

    /// Lets the attempt go ahead (reserving its place if its action does), or refuses it —
    /// with the first refusal of the counter's window to audit at once.
    pub(super) fn begin(
        &self,
        attempt: &Attempt<'_>,
        now: Instant,
    ) -> Result<Ticket, (Limited, Option<Box<Report>>)> {
        let (shard_index, ip_key, account_key, normalized) = self.keys(attempt);
        let reserves = attempt.action.reserves();
        // Full: real failures at the limit, or (for reserving actions) failures and attempts
        // in flight together. `.1` is whether the failures alone fill it.
        let full = |(failures, in_flight): (u32, u32), max: u32| {
            let held = if reserves {
                failures.saturating_add(in_flight)
            } else {
                failures
            };
            (held >= max, failures >= max)
        };
        let mut shard = self.lock(shard_index);
        let (ip_full, ip_failed) = full(shard.load(&ip_key, now, self.window), self.max_ip);
        let (account_full, account_failed) = account_key.map_or((false, false), |k| {
            full(shard.load(&k, now, self.window), self.max_account)
        });
        let refused_by = match (ip_full, account_key) {
            (true, _) => Some((ip_key, Scope::Ip)),
            (false, Some(k)) if account_full => Some((k, Scope::Account)),
            _ => None,
        };
        if let Some((key, scope)) = refused_by {
            // Failures last until their window closes; places held by attempts in flight
            // come free within moments.
            let wait_for = |k: &Key, failed: bool| {
                if failed {
                    shard.wait(k, now, self.window)
                } else {
                    1
                }
            };
            let mut wait = 1;
            if ip_full {
                wait = wait_for(&ip_key, ip_failed);
            }
            if let (true, Some(k)) = (account_full, account_key) {
                wait = wait.max(wait_for(&k, account_failed));
            }
            let limited = Limited { retry_after: wait };
            let limit = self.limit_text(scope);
            let report = shard.entries.get_mut(&key).and_then(|entry| {
                if let Some(r) = entry.limited.as_mut() {
                    r.refused += 1;
                    return None;
                }
                let first = Report {
                    action: attempt.action,
                    scope,
                    actor_id: attempt.actor.user_id,
                    actor: attempt.actor.name.clone(),
                    target: normalized
                        .as_ref()
                        .map(|a| a.chars().take(MAX_LABEL_CHARS).collect()),
                    ip: attempt.ip.to_string(),
                    limit,
                    refused: 1,
                    first: true,
                };
                // Later summaries of a per-IP counter cover many accounts: name none.
                let summary = Report {
                    refused: 0,
                    first: false,
                    target: first.target.clone().filter(|_| scope == Scope::Account),
                    ..first.clone()
                };
                entry.limited = Some(Box::new(summary));
                Some(Box::new(first))
            });
            return Err((limited, report));
        }
        let mut reserve =
            |k: Key| reserves.then(|| shard.reserve(k, now, self.window, self.shard_cap));
        let ip = (ip_key, reserve(ip_key));
        let account = account_key.map(|k| (k, reserve(k)));
        Ok(Ticket {
            shard: shard_index,
            ip,
            account,
            name: normalized.map(|a| a.chars().take(MAX_LABEL_CHARS).collect()),
        })
    }

    /// Ends an attempt: its reservations are handed back, and a failure is counted as one.
    pub(super) fn settle(&self, ticket: &Ticket, verdict: Verdict, now: Instant) {
        let mut shard = self.lock(ticket.shard);
        let counters = std::iter::once(&ticket.ip).chain(ticket.account.as_ref());
        for (key, opened) in counters {
            if let Some(opened) = opened {
                shard.release(key, *opened);
            }
            match verdict {
                Verdict::Failed => {
                    shard.fail(*key, now, self.window, self.shard_cap);
                    if key.account.is_some()
                        && let Some(e) = shard.entries.get_mut(key)
                        && e.failures >= self.max_account
                        && e.label.is_none()
                    {
                        e.label.clone_from(&ticket.name);
                    }
                }
                // Someone who got the password right starts afresh on that account.
                Verdict::Succeeded if key.account.is_some() => shard.clear(key),
                Verdict::Succeeded | Verdict::Uncounted => {}
            }
        }
    }

    /// Every unwritten report, and the refusals that could not be kept; drops closed windows.
    pub(super) fn drain_reports(&self, now: Instant) -> (Vec<Report>, u64) {
        let mut reports = Vec::new();
        let mut lost = 0;
        for i in 0..SHARDS {
            let mut shard = self.lock(i);
            shard.drop_expired(now, self.window);
            reports.append(&mut shard.orphans);
            lost += std::mem::take(&mut shard.lost);
            reports.extend(shard.entries.values_mut().filter_map(Entry::unreported));
        }
        (reports, lost)
    }

    /// Every counter at or past its limit in an open window (the lockout view).
    pub(super) fn locked(&self, now: Instant) -> Vec<MemLocked> {
        let mut out = Vec::new();
        for i in 0..SHARDS {
            let shard = self.lock(i);
            for (key, e) in &shard.entries {
                let limit = self.limit_of(key);
                let open = now.duration_since(e.opened) < self.window;
                if open && e.failures >= limit {
                    out.push(MemLocked {
                        key: *key,
                        label: e.label.as_deref().map(str::to_owned),
                        failures: e.failures,
                        limit,
                        left: (e.opened + self.window).saturating_duration_since(now),
                    });
                }
            }
        }
        out.sort_by_key(|l| l.left);
        out
    }

    fn limit_of(&self, key: &Key) -> u32 {
        if key.account.is_some() {
            self.max_account
        } else {
            self.max_ip
        }
    }

    /// Lifts the counter `key` (forgets it; refusals not yet audited are kept for the next
    /// flush). Returns it as it was, `None` unless it was in an open window with failures.
    pub(super) fn lift(&self, key: &Key, now: Instant) -> Option<MemLocked> {
        let i = self.shard_of(key.action, key.ip);
        let mut shard = self.lock(i);
        let e = shard.entries.get(key)?;
        let found =
            (now.duration_since(e.opened) < self.window && e.failures > 0).then(|| MemLocked {
                key: *key,
                label: e.label.as_deref().map(str::to_owned),
                failures: e.failures,
                limit: self.limit_of(key),
                left: (e.opened + self.window).saturating_duration_since(now),
            })?;
        shard.clear(key);
        Some(found)
    }

    /// Forgets this process's copy of a counter lifted elsewhere (PostgreSQL: another
    /// process, or the database row) if its window opened before the lift.
    pub(super) fn forget_lifted(
        &self,
        action: Action,
        ip: IpAddr,
        account: Option<&str>,
        lifted_at: Instant,
    ) {
        let key = Key {
            action,
            ip: client_key(ip),
            account: account.map(|a| self.hasher.hash_one(normalize(a))),
        };
        let mut shard = self.lock(self.shard_of(action, key.ip));
        if shard
            .entries
            .get(&key)
            .is_some_and(|e| e.opened < lifted_at)
        {
            shard.clear(&key);
        }
    }

    fn shard_of(&self, action: Action, ip: IpAddr) -> usize {
        usize::try_from(self.hasher.hash_one((action, ip)) % SHARDS as u64).unwrap_or(0)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).entries.len()).sum()
    }
}

/// A counter at or past its limit, in this process's memory.
#[derive(Debug, Clone)]
pub(super) struct MemLocked {
    pub(super) key: Key,
    /// The account name, when the counter is an account's and reached its limit here.
    pub(super) label: Option<String>,
    pub(super) failures: u32,
    pub(super) limit: u32,
    /// Until its window closes.
    pub(super) left: Duration,
}

/// What the shared counters hold for one attempt: `(failures, age of their window)` of its
/// per-address and per-account counters, when they have any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SharedCounts {
    pub(super) ip: Option<(u32, Duration)>,
    pub(super) account: Option<(u32, Duration)>,
}

/// An account name as counted: case and surrounding blanks do not make a new counter.
pub(super) fn normalize(account: &str) -> String {
    account.trim().to_lowercase()
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64 (one customer's
/// network, which an attacker can otherwise walk through address by address).
pub(super) fn client_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, ip, login};
    use super::*;
    use crate::service::rate_limit::{Action, MAX_ENTRIES};

    /// Starts an attempt and ends it as `verdict`; `Err` carries the wait when refused.
    fn attempt(c: &Counters, a: &Attempt<'_>, now: Instant, verdict: Verdict) -> Result<(), u64> {
        let ticket = c.begin(a, now).map_err(|(l, _)| l.retry_after)?;
        c.settle(&ticket, verdict, now);
        Ok(())
    }

    fn api_key(from: &str) -> Attempt<'static> {
        Attempt::new(Action::ApiKey, ip(from), None)
    }

    #[test]
    fn api_keys_in_flight_never_refuse_a_valid_key() {
        let c = Counters::new(&config(10, 3), MAX_ENTRIES);
        let t = Instant::now();
        let a = api_key("10.0.0.1");
        // Far more requests at once than the limit allows failures: all go ahead…
        let running: Vec<Ticket> = (0..50).filter_map(|_| c.begin(&a, t).ok()).collect();
        assert_eq!(running.len(), 50);
        for ticket in &running {
            c.settle(ticket, Verdict::Succeeded, t);
        }
        assert_eq!(c.len(), 0, "successes leave nothing behind");
        // …while real failures still close the door at the limit.
        for _ in 0..3 {
            assert_eq!(attempt(&c, &a, t, Verdict::Failed), Ok(()));
        }
        assert_eq!(attempt(&c, &a, t, Verdict::Succeeded), Err(60));
    }

    #[test]
    fn only_failures_of_keys_in_flight_count_when_they_end() {
        let c = Counters::new(&config(10, 2), MAX_ENTRIES);
        let t = Instant::now();
        let a = api_key("10.0.0.1");
        let bad: Vec<Ticket> = (0..5).filter_map(|_| c.begin(&a, t).ok()).collect();
        assert_eq!(bad.len(), 5, "nothing is counted before it fails");
        for ticket in &bad {
            c.settle(ticket, Verdict::Failed, t);
        }
        assert!(c.begin(&a, t).is_err());
    }

    #[test]
    fn a_password_burst_is_held_to_the_limit_but_successes_hand_places_back() {
        let c = Counters::new(&config(3, 100), MAX_ENTRIES);
        let t = Instant::now();
        let a = login("10.0.0.1", "alice");
        let running: Vec<Ticket> = (0..5).filter_map(|_| c.begin(&a, t).ok()).collect();
        assert_eq!(running.len(), 3, "a burst cannot outrun its own hashes");
        // Refused by places in flight only: come back in a second, not in a window.
        assert!(matches!(
            c.begin(&a, t),
            Err((Limited { retry_after: 1 }, _))
        ));
        for ticket in &running {
            c.settle(ticket, Verdict::Succeeded, t);
        }
        assert_eq!(attempt(&c, &a, t, Verdict::Failed), Ok(()));
    }

    #[test]
    fn the_account_limit_is_case_insensitive_and_per_ip() {
        let c = Counters::new(&config(3, 100), MAX_ENTRIES);
        let t = Instant::now();
        for name in ["alice", "ALICE", " Alice "] {
            assert_eq!(
                attempt(&c, &login("10.0.0.1", name), t, Verdict::Failed),
                Ok(())
            );
        }
        assert_eq!(
            attempt(&c, &login("10.0.0.1", "aLiCe"), t, Verdict::Failed),
            Err(60)
        );
        // Another account from the same address, and the same account from elsewhere.
        assert_eq!(
            attempt(&c, &login("10.0.0.1", "bob"), t, Verdict::Failed),
            Ok(())
        );
        assert_eq!(
            attempt(&c, &login("10.0.0.2", "alice"), t, Verdict::Failed),
            Ok(())
        );
        // The window closes.
        let later = t + Duration::from_secs(60);
        assert_eq!(
            attempt(&c, &login("10.0.0.1", "alice"), later, Verdict::Failed),
            Ok(())
        );
    }

    #[test]
    fn the_ip_limit_covers_every_account_and_says_when_it_ends() {
        let c = Counters::new(&config(10, 3), MAX_ENTRIES);
        let t = Instant::now();
        for name in ["a", "b", "c"] {
            assert_eq!(
                attempt(&c, &login("10.0.0.1", name), t, Verdict::Failed),
                Ok(())
            );
        }
        let t20 = t + Duration::from_millis(20_500);
        assert_eq!(
            attempt(&c, &login("10.0.0.1", "d"), t20, Verdict::Failed),
            Err(40)
        );
        assert_eq!(
            attempt(&c, &login("10.0.0.2", "d"), t20, Verdict::Failed),
            Ok(())
        );
        // Actions count apart.
        let key = Attempt::new(Action::ApiKey, ip("10.0.0.1"), None);
        assert_eq!(attempt(&c, &key, t20, Verdict::Failed), Ok(()));
    }

    #[test]
    fn success_clears_the_account_counter_but_not_the_ip_failures() {
        let c = Counters::new(&config(3, 4), MAX_ENTRIES);
        let t = Instant::now();
        for _ in 0..2 {
            assert_eq!(
                attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Failed),
                Ok(())
            );
        }
        assert_eq!(
            attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Succeeded),
            Ok(())
        );
        // Alice starts afresh: two more failures are allowed…
        for _ in 0..2 {
            assert_eq!(
                attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Failed),
                Ok(())
            );
        }
        // …but the address has 4 failures now, and that limit covers alice too.
        assert!(attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Failed).is_err());
    }

    #[test]
    fn uncounted_attempts_are_handed_back() {
        let c = Counters::new(&config(1, 1), MAX_ENTRIES);
        let t = Instant::now();
        for _ in 0..5 {
            assert_eq!(
                attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Uncounted),
                Ok(())
            );
        }
        assert_eq!(
            attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Failed),
            Ok(())
        );
        assert!(attempt(&c, &login("10.0.0.1", "alice"), t, Verdict::Failed).is_err());
    }

    #[test]
    fn attempts_in_flight_count_before_they_finish() {
        let c = Counters::new(&config(2, 100), MAX_ENTRIES);
        let t = Instant::now();
        let a = login("10.0.0.1", "alice");
        let first = c.begin(&a, t);
        let second = c.begin(&a, t);
        assert!(first.is_ok() && second.is_ok());
        assert!(
            c.begin(&a, t).is_err(),
            "a burst cannot outrun its own hashes"
        );
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let c = Counters::new(&config(10, 2), MAX_ENTRIES);
        let t = Instant::now();
        assert!(attempt(&c, &login("2001:db8:1:2::1", "a"), t, Verdict::Failed).is_ok());
        assert!(attempt(&c, &login("2001:db8:1:2::ffff", "b"), t, Verdict::Failed).is_ok());
        assert!(attempt(&c, &login("2001:db8:1:2:abcd::9", "c"), t, Verdict::Failed).is_err());
        assert!(attempt(&c, &login("2001:db8:1:3::1", "c"), t, Verdict::Failed).is_ok());
        assert_eq!(client_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn memory_is_capped_oldest_first() {
        let cap = SHARDS * 8;
        let c = Counters::new(&config(10, 10), cap);
        let t = Instant::now();
        for i in 0..10_000u32 {
            let from = IpAddr::from(i.to_be_bytes());
            let a = Attempt::new(Action::ApiKey, from, None);
            let _ = attempt(
                &c,
                &a,
                t + Duration::from_millis(u64::from(i)),
                Verdict::Failed,
            );
        }
        assert!(c.len() <= cap, "{} counters kept", c.len());
        assert!(c.len() >= cap / 2, "eviction keeps most: {}", c.len());
    }

    #[test]
    fn shared_failures_are_taken_in_once_and_their_window_kept() {
        let c = Counters::new(&config(3, 100), MAX_ENTRIES);
        let t = Instant::now() + Duration::from_secs(100);
        let a = login("10.0.0.1", "alice");
        let shared = |n| SharedCounts {
            ip: None,
            account: Some((n, Duration::from_secs(10))),
        };
        // Two failures elsewhere, in a window opened 10 s ago; one here makes three…
        c.absorb(&a, &shared(2), t);
        assert_eq!(attempt(&c, &a, t, Verdict::Failed), Ok(()));
        // …which the shared count (now 3, this failure included) does not raise further.
        c.absorb(&a, &shared(3), t);
        assert_eq!(attempt(&c, &a, t, Verdict::Failed), Err(50));
        // A closed shared window counts nothing.
        let fresh = login("10.0.0.2", "bob");
        let old = SharedCounts {
            ip: Some((50, Duration::from_secs(60))),
            account: None,
        };
        c.absorb(&fresh, &old, t);
        assert_eq!(attempt(&c, &fresh, t, Verdict::Failed), Ok(()));
    }

    #[test]
    fn an_attempt_in_flight_keeps_its_window_when_shared_failures_arrive() {
        let c = Counters::new(&config(3, 100), MAX_ENTRIES);
        let t = Instant::now() + Duration::from_secs(100);
        let a = login("10.0.0.1", "alice");
        let running = c.begin(&a, t).ok().unwrap();
        c.absorb(
            &a,
            &SharedCounts {
                ip: None,
                account: Some((2, Duration::from_secs(10))),
            },
            t,
        );
        // Its place is handed back: one more failure is allowed, not zero.
        c.settle(&running, Verdict::Uncounted, t);
        assert_eq!(attempt(&c, &a, t, Verdict::Failed), Ok(()));
        assert!(attempt(&c, &a, t, Verdict::Failed).is_err());
    }

    #[test]
    fn refusals_are_reported_once_then_coalesced() {
        let c = Counters::new(&config(1, 100), MAX_ENTRIES);
        let t = Instant::now();
        assert!(attempt(&c, &login("10.0.0.1", "Alice"), t, Verdict::Failed).is_ok());
        let first = c.begin(&login("10.0.0.1", "alice"), t).err();
        let report = first.and_then(|(_, r)| r);
        assert!(
            report
                .as_ref()
                .is_some_and(|r| r.first && r.target.as_deref() == Some("alice"))
        );
        for _ in 0..4 {
            assert!(matches!(
                c.begin(&login("10.0.0.1", "alice"), t),
                Err((_, None))
            ));
        }
        let (reports, lost) = c.drain_reports(t);
        assert_eq!((reports.len(), lost), (1, 0));
        assert_eq!(reports[0].refused, 4);
        assert!(
            reports[0].detail().contains("refused=4 more"),
            "{}",
            reports[0].detail()
        );
        assert!(c.drain_reports(t).0.is_empty(), "reported once");
        // Refusals of a counter that then expires are still reported.
        assert!(c.begin(&login("10.0.0.1", "alice"), t).is_err());
        let (reports, _) = c.drain_reports(t + Duration::from_secs(61));
        assert_eq!(reports.iter().map(|r| r.refused).sum::<u64>(), 1);
        assert_eq!(c.len(), 0, "closed windows are forgotten");
    }
}
