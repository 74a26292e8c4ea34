//! One shard of the counters: a map from counter to its window, with eviction of closed
//! windows and of the oldest counters, and the reports of counters that went away.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Action, Report};

/// Reports of evicted or expired counters held per shard until the next flush.
const MAX_ORPHANS_PER_SHARD: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) action: Action,
    /// The client address; IPv6 cut to its /64.
    pub(super) ip: IpAddr,
    /// A keyed hash of the lower-cased account name; `None` for the per-IP counter.
    pub(super) account: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) opened: Instant,
    pub(super) failures: u32,
    /// Attempts of a reserving action that started in this window and have not ended.
    pub(super) in_flight: u32,
    /// Set by the first refusal of the window.
    pub(super) limited: Option<Box<Report>>,
    /// The attempted account name, kept once an account counter reaches its limit (for the
    /// lockout view; below the limit only its keyed hash is held).
    pub(super) label: Option<Box<str>>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            opened: now,
            failures: 0,
            in_flight: 0,
            limited: None,
            label: None,
        }
    }

    /// Nothing counted, nothing running, nothing to report: the entry can go.
    fn is_idle(&self) -> bool {
        self.failures == 0 && self.in_flight == 0 && self.limited.is_none()
    }

    /// Refusals counted but not yet written.
    pub(super) fn unreported(&mut self) -> Option<Report> {
        let pending = self.limited.as_mut().filter(|r| r.refused > 0)?;
        let report = Report {
            first: false,
            ..(**pending).clone()
        };
        pending.refused = 0;
        Some(report)
    }
}

#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) entries: HashMap<Key, Entry>,
    /// Unwritten reports of counters that expired or were evicted.
    pub(super) orphans: Vec<Report>,
    /// Refusals dropped because `orphans` was full.
    pub(super) lost: u64,
}

impl Shard {
    fn keep_orphan(&mut self, entry: &mut Entry) {
        if let Some(r) = entry.unreported() {
            if self.orphans.len() < MAX_ORPHANS_PER_SHARD {
                self.orphans.push(r);
            } else {
                self.lost += r.refused;
            }
        }
    }

    /// The failures and attempts in flight a counter holds now; a counter whose window has
    /// closed starts over (reservations of that window are then settled against nothing).
    pub(super) fn load(&mut self, key: &Key, now: Instant, window: Duration) -> (u32, u32) {
        let Some(entry) = self.entries.get_mut(key) else {
            return (0, 0);
        };
        if now.duration_since(entry.opened) < window {
            return (entry.failures, entry.in_flight);
        }
        if let Some(mut entry) = self.entries.remove(key) {
            self.keep_orphan(&mut entry);
        }
        (0, 0)
    }

    /// Seconds until `key`'s window closes (at least 1).
    pub(super) fn wait(&self, key: &Key, now: Instant, window: Duration) -> u64 {
        self.entries
            .get(key)
            .map_or(1, |e| {
                let left = (e.opened + window).saturating_duration_since(now);
                left.as_secs() + u64::from(left.subsec_nanos() > 0)
            })
            .max(1)
    }

    /// The counter of `key` in the current window, created (making room first) if need be.
    fn entry(&mut self, key: Key, now: Instant, window: Duration, cap: usize) -> &mut Entry {
        let expired = self
            .entries
            .get(&key)
            .is_some_and(|e| now.duration_since(e.opened) >= window);
        if expired && let Some(mut old) = self.entries.remove(&key) {
            self.keep_orphan(&mut old);
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= cap {
            self.evict(now, window, cap);
        }
        self.entries.entry(key).or_insert_with(|| Entry::new(now))
    }

    /// Counts one failure.
    pub(super) fn fail(&mut self, key: Key, now: Instant, window: Duration, cap: usize) {
        let entry = self.entry(key, now, window, cap);
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Raises the counter of `key` to the `failures` another process (or an earlier run of
    /// this one) counted in a window that opened `age` ago. Counts only grow here: local
    /// failures are part of the shared ones. The window start follows the shared one unless
    /// attempts in flight hold the current one (their tickets name it).
    pub(super) fn absorb(
        &mut self,
        key: Key,
        (failures, age): (u32, Duration),
        now: Instant,
        window: Duration,
        cap: usize,
    ) {
        if failures == 0 || age >= window {
            return;
        }
        let entry = self.entry(key, now, window, cap);
        if failures > entry.failures {
            entry.failures = failures;
            if entry.in_flight == 0
                && let Some(opened) = now.checked_sub(age)
            {
                entry.opened = opened;
            }
        }
    }

    /// Holds a place for an attempt in flight; returns when the counter's window opened.
    pub(super) fn reserve(
        &mut self,
        key: Key,
        now: Instant,
        window: Duration,
        cap: usize,
    ) -> Instant {
        let entry = self.entry(key, now, window, cap);
        entry.in_flight = entry.in_flight.saturating_add(1);
        entry.opened
    }

    /// Makes room: first every closed window, then the oldest eighth of the shard.
    fn evict(&mut self, now: Instant, window: Duration, cap: usize) {
        self.drop_expired(now, window);
        if self.entries.len() < cap {
            return;
        }
        let mut by_age: Vec<(Instant, Key)> =
            self.entries.iter().map(|(k, e)| (e.opened, *k)).collect();
        let keep = cap - cap.div_ceil(8);
        let cut = by_age.len().saturating_sub(keep);
        if cut == 0 {
            return;
        }
        by_age.select_nth_unstable_by_key(cut - 1, |(opened, _)| *opened);
        for (_, key) in by_age.iter().take(cut) {
            if let Some(mut e) = self.entries.remove(key) {
                self.keep_orphan(&mut e);
            }
        }
    }

    pub(super) fn drop_expired(&mut self, now: Instant, window: Duration) {
        let expired: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.opened) >= window)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(mut e) = self.entries.remove(&key) {
                self.keep_orphan(&mut e);
            }
        }
    }

    /// Hands a reservation back, if the counter is still in the window it was taken in
    /// (an evicted or expired counter took its reservations with it).
    pub(super) fn release(&mut self, key: &Key, opened: Instant) {
        let Some(e) = self.entries.get_mut(key).filter(|e| e.opened == opened) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        if e.is_idle() {
            self.entries.remove(key);
        }
    }

    pub(super) fn clear(&mut self, key: &Key) {
        if let Some(mut e) = self.entries.remove(key) {
            self.keep_orphan(&mut e);
        }
    }
}
