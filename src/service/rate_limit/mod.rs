//! Brute-force limits: failed attempts counted per client IP and per attempted account and
//! client IP, in this process's memory, and refused with `429` *before* the work they guard
//! (a password hash, a key lookup, a trip to an identity provider) is done.
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

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Actor, ServiceError};
use crate::config::{RateLimitConfig, canonical_ip};
use crate::db::{DbPool, audit};

/// Independent maps, so that concurrent requests from different clients rarely wait on
/// each other. Every counter of one client IP (per-IP and per-account) is in the same shard,
/// which makes checking and counting both of them one atomic step.
pub const SHARDS: usize = 16;
/// Most counters kept at once, all shards together (≈ 150 bytes each with the map's spare
/// room: about 10 MB at worst).
pub const MAX_ENTRIES: usize = 65_536;
/// Longest attempted account name kept for the audit log.
const MAX_LABEL_CHARS: usize = 100;
/// Reports of evicted or expired counters held per shard until the next flush.
const MAX_ORPHANS_PER_SHARD: usize = 256;

/// What is being attempted. Each action has its own counters, so that, say, a script with
/// a revoked API key does not lock its owner out of the sign-in page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Password sign-in (`POST /login`, `POST /api/auth/login`).
    Login,
    /// Self-registration (`POST /register`).
    Register,
    /// Changing one's own password (`POST /account/password`, `POST /api/me/password`).
    PasswordChange,
    /// Starting Verify & Link (account page and admin SSO page).
    SsoLink,
    /// Presenting an `Authorization: Bearer` API key.
    ApiKey,
    /// Submitting the setup wizard's one-time code (`POST /setup`).
    Setup,
}

impl Action {
    /// Whether an attempt holds a place in its counters while it runs (see the module docs).
    fn reserves(self) -> bool {
        !matches!(self, Action::ApiKey)
    }

    /// How an attempt abandoned half-way (its future dropped) counts.
    fn cancelled(self) -> Verdict {
        match self {
            // The trip to the provider has started: that is the cost being limited.
            Action::SsoLink => Verdict::Failed,
            _ => Verdict::Uncounted,
        }
    }

    /// The audit log's name for a refused attempt.
    pub fn audit_action(self) -> &'static str {
        match self {
            Action::Login => "rate_limit.login",
            Action::Register => "rate_limit.register",
            Action::PasswordChange => "rate_limit.password_change",
            Action::SsoLink => "rate_limit.sso_link",
            Action::ApiKey => "rate_limit.api_key",
            Action::Setup => "rate_limit.setup",
        }
    }

    /// How a finished attempt counts. The rule for every front end lives here.
    fn verdict<T>(self, result: &Result<T, ServiceError>) -> Verdict {
        match (self, result) {
            // The start is what costs: every one counts, however it ends.
            (Action::SsoLink, _) => Verdict::Failed,
            (_, Ok(_)) => Verdict::Succeeded,
            (_, Err(ServiceError::InvalidCredentials)) => Verdict::Failed,
            // A wrong current password, not a new one that breaks the rules.
            (Action::PasswordChange, Err(ServiceError::Validation(f))) => {
                if f.get("current_password").is_some() {
                    Verdict::Failed
                } else {
                    Verdict::Uncounted
                }
            }
            // A wrong setup code (not a username or password that breaks the rules).
            (Action::Setup, Err(ServiceError::Validation(f))) => {
                if f.get("setup_code").is_some() {
                    Verdict::Failed
                } else {
                    Verdict::Uncounted
                }
            }
            // The input parsed (the handler checks first), so this is a taken username or
            // email: a probe for existing accounts, and a hash spent.
            (Action::Register, Err(ServiceError::Validation(_))) => Verdict::Failed,
            _ => Verdict::Uncounted,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Succeeded,
    Failed,
    Uncounted,
}

/// A refused attempt: answer `429 Too Many Requests` with `Retry-After: retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until the counter that refused the attempt forgets its failures (at least 1).
    pub retry_after: u64,
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.retry_after;
        let wait = match s {
            0..=1 => "1 second".to_owned(),
            2..=90 => format!("{s} seconds"),
            _ => format!("{} minutes", s.div_ceil(60)),
        };
        write!(f, "Too many failed attempts. Try again in {wait}.")
    }
}

/// One attempt to guard: what, from where, for which account, by whom (for the audit log).
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    action: Action,
    ip: IpAddr,
    account: Option<&'a str>,
    actor: Actor,
}

impl<'a> Attempt<'a> {
    /// An anonymous attempt from client address `ip`, naming `account` (compared
    /// case-insensitively) when there is one.
    pub fn new(action: Action, ip: IpAddr, account: Option<&'a str>) -> Self {
        Self {
            action,
            ip,
            account,
            actor: Actor::anonymous(Some(ip.to_string())),
        }
    }

    /// The attempt is made by a signed-in user; the audit log names them.
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }
}

/// The process-wide limiter; clones share the counters.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    counters: Counters,
    db: DbPool,
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
    /// Empty counters under `config`; refusals are audited into `db`.
    pub fn new(config: &RateLimitConfig, db: DbPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled: config.enabled,
                counters: Counters::new(config, MAX_ENTRIES),
                db,
            }),
        }
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
        let reservation = match self.inner.counters.begin(&attempt, Instant::now()) {
            Ok(ticket) => Reservation {
                counters: &self.inner.counters,
                ticket: Some(ticket),
                on_drop: attempt.action.cancelled(),
            },
            Err((limited, report)) => {
                tracing::debug!(action = ?attempt.action, retry_after = limited.retry_after, "attempt refused by the rate limit");
                if let Some(report) = report {
                    self.write(vec![*report]).await;
                }
                return Err(ServiceError::RateLimited(limited));
            }
        };
        // If the request is abandoned here (the client hung up), `reservation` is dropped
        // and settles as `Action::cancelled` says.
        let result = work.await;
        reservation.settle(attempt.action.verdict(&result));
        result
    }

    /// Writes the refusals counted since the last flush to the audit log and forgets
    /// counters whose window has closed. Returns how many events were written.
    pub async fn flush(&self) -> usize {
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

/// Which limit refused: the client IP's, or the account + IP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Ip,
    Account,
}

/// One audit event about refused attempts.
#[derive(Debug, Clone)]
struct Report {
    action: Action,
    scope: Scope,
    actor_id: Option<i64>,
    actor: String,
    target: Option<String>,
    ip: String,
    /// The limit and the window, e.g. `10 failures per 15m`.
    limit: String,
    /// Attempts refused that this event reports.
    refused: u64,
    /// The first refusal of the window (written at once) rather than a later summary.
    first: bool,
}

impl Report {
    fn detail(&self) -> String {
        let scope = match self.scope {
            Scope::Ip => "ip",
            Scope::Account => "account",
        };
        if self.first {
            format!("limit={scope} ({}); refused=1", self.limit)
        } else {
            format!(
                "limit={scope} ({}); refused={} more since the last event",
                self.limit, self.refused
            )
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    action: Action,
    /// The client address; IPv6 cut to its /64.
    ip: IpAddr,
    /// A keyed hash of the lower-cased account name; `None` for the per-IP counter.
    account: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    opened: Instant,
    failures: u32,
    /// Attempts of a reserving action that started in this window and have not ended.
    in_flight: u32,
    /// Set by the first refusal of the window.
    limited: Option<Box<Report>>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            opened: now,
            failures: 0,
            in_flight: 0,
            limited: None,
        }
    }

    /// Nothing counted, nothing running, nothing to report: the entry can go.
    fn is_idle(&self) -> bool {
        self.failures == 0 && self.in_flight == 0 && self.limited.is_none()
    }

    /// Refusals counted but not yet written.
    fn unreported(&mut self) -> Option<Report> {
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
struct Shard {
    entries: HashMap<Key, Entry>,
    /// Unwritten reports of counters that expired or were evicted.
    orphans: Vec<Report>,
    /// Refusals dropped because `orphans` was full.
    lost: u64,
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
    fn load(&mut self, key: &Key, now: Instant, window: Duration) -> (u32, u32) {
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
    fn wait(&self, key: &Key, now: Instant, window: Duration) -> u64 {
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
    fn fail(&mut self, key: Key, now: Instant, window: Duration, cap: usize) {
        let entry = self.entry(key, now, window, cap);
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Holds a place for an attempt in flight; returns when the counter's window opened.
    fn reserve(&mut self, key: Key, now: Instant, window: Duration, cap: usize) -> Instant {
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

    fn drop_expired(&mut self, now: Instant, window: Duration) {
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
    fn release(&mut self, key: &Key, opened: Instant) {
        let Some(e) = self.entries.get_mut(key).filter(|e| e.opened == opened) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        if e.is_idle() {
            self.entries.remove(key);
        }
    }

    fn clear(&mut self, key: &Key) {
        if let Some(mut e) = self.entries.remove(key) {
            self.keep_orphan(&mut e);
        }
    }
}

/// The counters of an attempt that went ahead, to settle when it ends. The instants are the
/// windows its reservations were taken in (`None`: the action reserves nothing).
#[derive(Debug)]
struct Ticket {
    shard: usize,
    ip: (Key, Option<Instant>),
    account: Option<(Key, Option<Instant>)>,
}

/// An attempt in flight. Settled with its verdict when the work ends; if the work is
/// abandoned instead (the request's future dropped: the client hung up), dropping this
/// settles it as `on_drop`, so no reservation outlives its request.
struct Reservation<'a> {
    counters: &'a Counters,
    ticket: Option<Ticket>,
    on_drop: Verdict,
}

impl Reservation<'_> {
    fn settle(mut self, verdict: Verdict) {
        if let Some(ticket) = self.ticket.take() {
            self.counters.settle(&ticket, verdict, Instant::now());
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.counters.settle(&ticket, self.on_drop, Instant::now());
        }
    }
}

/// The counting itself: synchronous, no I/O, so it is tested on its own.
struct Counters {
    window: Duration,
    max_ip: u32,
    max_account: u32,
    shards: Box<[Mutex<Shard>]>,
    /// Most entries per shard.
    shard_cap: usize,
    /// Keys the hashes of account names and the choice of shard; random per process, so
    /// nobody can aim many names at one counter or one shard.
    hasher: RandomState,
}

impl Counters {
    fn new(config: &RateLimitConfig, max_entries: usize) -> Self {
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

    /// Lets the attempt go ahead (reserving its place if its action does), or refuses it —
    /// with the first refusal of the counter's window to audit at once.
    fn begin(
        &self,
        attempt: &Attempt<'_>,
        now: Instant,
    ) -> Result<Ticket, (Limited, Option<Box<Report>>)> {
        let ip = client_key(attempt.ip);
        let ip_key = Key {
            action: attempt.action,
            ip,
            account: None,
        };
        let normalized = attempt.account.map(|a| a.trim().to_lowercase());
        let account_key = normalized.as_ref().map(|a| Key {
            account: Some(self.hasher.hash_one(a)),
            ..ip_key
        });
        let shard_index =
            usize::try_from(self.hasher.hash_one((attempt.action, ip)) % SHARDS as u64)
                .unwrap_or(0);
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
        })
    }

    /// Ends an attempt: its reservations are handed back, and a failure is counted as one.
    fn settle(&self, ticket: &Ticket, verdict: Verdict, now: Instant) {
        let mut shard = self.lock(ticket.shard);
        let counters = std::iter::once(&ticket.ip).chain(ticket.account.as_ref());
        for (key, opened) in counters {
            if let Some(opened) = opened {
                shard.release(key, *opened);
            }
            match verdict {
                Verdict::Failed => shard.fail(*key, now, self.window, self.shard_cap),
                // Someone who got the password right starts afresh on that account.
                Verdict::Succeeded if key.account.is_some() => shard.clear(key),
                Verdict::Succeeded | Verdict::Uncounted => {}
            }
        }
    }

    /// Every unwritten report, and the refusals that could not be kept; drops closed windows.
    fn drain_reports(&self, now: Instant) -> (Vec<Report>, u64) {
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

    #[cfg(test)]
    fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).entries.len()).sum()
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64 (one customer's
/// network, which an attacker can otherwise walk through address by address).
fn client_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use crate::domain::FieldErrors;

    fn config(account: u32, ip: u32) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            window: HumanDuration::secs(60),
            max_failures_per_account: account,
            max_failures_per_ip: ip,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn login<'a>(from: &str, account: &'a str) -> Attempt<'a> {
        Attempt::new(Action::Login, ip(from), Some(account))
    }

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
    fn an_abandoned_attempt_gives_its_place_back() {
        let c = Counters::new(&config(1, 1), MAX_ENTRIES);
        let t = Instant::now();
        for _ in 0..5 {
            let ticket = c.begin(&login("10.0.0.1", "alice"), t).ok();
            assert!(ticket.is_some(), "the previous attempt was handed back");
            drop(Reservation {
                counters: &c,
                ticket,
                on_drop: Action::Login.cancelled(),
            });
        }
        assert_eq!(c.len(), 0);
        // Linking's cost is its start: abandoning it still counts.
        let a = Attempt::new(Action::SsoLink, ip("10.0.0.1"), None);
        drop(Reservation {
            counters: &c,
            ticket: c.begin(&a, t).ok(),
            on_drop: Action::SsoLink.cancelled(),
        });
        assert!(c.begin(&a, t).is_err());
    }

    /// The whole guard: a request whose future is dropped mid-way (the client hung up) is
    /// not left counted against its address.
    #[tokio::test]
    async fn guard_hands_back_a_cancelled_request() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let url = crate::db::DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("rl.db").display()
        ))?;
        let options = crate::db::PoolOptions {
            max_connections: 1,
            connect_timeout: Duration::from_secs(5),
            test_on_check_out: false,
        };
        let db = DbPool::connect(&url, &options)?;
        let limiter = RateLimiter::new(&config(1, 1), db);
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

    #[test]
    fn verdicts() {
        let bad_current = FieldErrors::single("current_password", "wrong");
        let short_new = FieldErrors::single("new_password", "too short");
        let pc = Action::PasswordChange;
        assert_eq!(
            pc.verdict::<()>(&Err(ServiceError::Validation(bad_current))),
            Verdict::Failed
        );
        assert_eq!(
            pc.verdict::<()>(&Err(ServiceError::Validation(short_new))),
            Verdict::Uncounted
        );
        assert_eq!(
            Action::Login.verdict::<()>(&Err(ServiceError::LocalLoginDisabled)),
            Verdict::Uncounted
        );
        assert_eq!(Action::Login.verdict(&Ok(())), Verdict::Succeeded);
        assert_eq!(Action::SsoLink.verdict(&Ok(())), Verdict::Failed);
    }

    #[test]
    fn the_message_says_when_to_come_back() {
        assert_eq!(
            Limited { retry_after: 840 }.to_string(),
            "Too many failed attempts. Try again in 14 minutes."
        );
        assert_eq!(
            Limited { retry_after: 2 }.to_string(),
            "Too many failed attempts. Try again in 2 seconds."
        );
    }
}
