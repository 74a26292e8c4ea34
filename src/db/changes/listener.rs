//! The PostgreSQL change probe: a connection of its own that ran `LISTEN`, counting the
//! notifications the triggers of migration `2026-11-30-120000_cluster` send on every write
//! that can end or narrow access (channel [`CHANGES`]), and those the shared brute-force
//! counters send when a block begins (channel [`LIMITS`]), and the bookkeeping that only
//! the user table shows (channel [`LISTING`]: a last sign-in).
//!
//! Taking in what has merely *arrived* is not enough. PostgreSQL signals the listening
//! backends when the writing transaction commits, before the writer is answered, but each
//! listening backend then writes to its client when the scheduler lets it run: on a busy
//! machine, milliseconds later — enough for the writer's answer to reach its client and that
//! client's next request to reach this process first (measured: the two-process test in
//! tests/http/cluster lost that race several times per run under load). So a stamp is a
//! *fence*: [`PgProbe::stamp`] sends an empty query on the listening connection, and the backend,
//! before it answers, delivers every notification committed before the query arrived
//! (PostgreSQL processes pending notifications before `ReadyForQuery`; the committer's signal
//! reached it before the writer was answered).
//!
//! The round trips are made by the listener's own thread, never on an async worker: a
//! request *awaits* the first round trip that begins after it asked (round numbers
//! `started` / `done`), and every request that asked while one was on the wire shares the
//! next. Under load the thread runs round trips back to back and each serves every request
//! that arrived during the previous one, so the cost is about one round trip of latency per
//! request and at most one round trip of PostgreSQL work per ~40 µs, whatever the load
//! (bench/README.md has the figures).
//!
//! The same thread takes in notifications every [`DRAIN_EVERY`] when no request asks, so
//! PostgreSQL's notification queue never backs up behind an idle process, and it
//! reconnects after a failure. While the connection is down [`PgProbe::stamp`] answers
//! `None` (callers read the database); once it is back and listening, the counts move by
//! one, so whatever was committed while nobody listened is covered. A server that stops
//! answering is given up after `tcp_user_timeout` / keepalives (a few seconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use super::super::DatabaseUrl;

/// The channel the change triggers notify.
pub const CHANGES: &str = "hallpass_changes";
/// The channel the shared brute-force counters notify when a block begins.
pub const LIMITS: &str = "hallpass_limits";
/// The channel of writes left out of [`CHANGES`] that a listing shows: a user's last
/// sign-in (migration `2026-12-03-100000_listing_notify`). Kept apart so that signing in
/// does not flush the session and key caches.
pub const LISTING: &str = "hallpass_listing";

/// How often the background thread takes in notifications nobody asked for.
const DRAIN_EVERY: Duration = Duration::from_millis(200);
/// How long the listener stays down after a failure before connecting again (stamps are
/// `None` meanwhile: caches read the database).
const RETRY_AFTER: Duration = Duration::from_millis(300);
/// The `application_name` of the listening connection (visible in `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "hallpass-listener";

/// Which notifications a stamp counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Changes,
    Limits,
}

pub(super) struct PgProbe {
    shared: Arc<Shared>,
}

struct Shared {
    url: String,
    state: Mutex<State>,
    /// Fence round trips begun (numbered from 1), counted before each is sent.
    started: AtomicU64,
    /// Set by a request that waits for a fence; the listener thread sleeps on `wake`.
    wanted: Mutex<Wanted>,
    wake: Condvar,
    /// The last fence that completed, for the requests awaiting it.
    fenced: tokio::sync::watch::Sender<Fenced>,
}

/// Whether a request waits for a fence, and whether the listener thread sleeps (only then
/// does a request wake it: a `futex` call per request while the thread is busy anyway cost
/// a few per cent of a PostgreSQL request).
#[derive(Default)]
struct Wanted {
    wanted: bool,
    sleeping: bool,
}

/// The outcome of fence round trip number `round`.
#[derive(Debug, Clone, Copy, Default)]
struct Fenced {
    round: u64,
    /// The counts after it; `None`: the listener is down.
    counts: Option<Counts>,
}

/// Notifications taken in, by channel, plus one each per (re)connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// On [`CHANGES`].
    pub changes: u64,
    /// On [`LISTING`].
    pub listing: u64,
}

#[derive(Default)]
struct State {
    /// `None` while down: stamps are `None` then.
    conn: Option<PgConnection>,
    /// Notifications taken in on [`CHANGES`] and [`LISTING`], plus one per (re)connection.
    counts: Counts,
    /// The same for [`LIMITS`].
    limits: u64,
    /// Whether the last failure was logged (one warning per outage).
    warned: bool,
    /// When the connection was lost or last failed to open.
    down_since: Option<Instant>,
}

impl State {
    /// Takes in every notification the socket holds; false (and the connection dropped)
    /// when it failed. Reads twice: a backend that was terminated sends an error message
    /// (which libpq passes to the notice processor) before closing, so the end of the
    /// connection shows only on the read after.
    fn drain(&mut self) -> bool {
        self.take_in(false)
    }

    /// A round trip on the listening connection, then [`State::drain`]: every notification
    /// committed before the query reached the server is counted (see the module docs).
    fn fence(&mut self) -> bool {
        self.take_in(true)
    }

    fn take_in(&mut self, fence: bool) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        if fence && !round_trip(conn) {
            return self.lost();
        }
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let (mut changes, mut listing, mut limits) = (0u64, 0u64, 0u64);
        let mut failed = false;
        'reads: for _ in 0..2 {
            for n in conn.notifications_iter() {
                match n {
                    Ok(n) if n.channel == LIMITS => limits += 1,
                    Ok(n) if n.channel == LISTING => listing += 1,
                    // Anything else on this connection is ours: count it as a change.
                    Ok(_) => changes += 1,
                    Err(_) => {
                        failed = true;
                        break 'reads;
                    }
                }
            }
        }
        self.counts.changes = self.counts.changes.wrapping_add(changes);
        self.counts.listing = self.counts.listing.wrapping_add(listing);
        self.limits = self.limits.wrapping_add(limits);
        if failed {
            return self.lost();
        }
        true
    }

    /// Drops a connection that failed; answers false.
    fn lost(&mut self) -> bool {
        self.conn = None;
        self.down_since = Some(Instant::now());
        tracing::warn!(
            "the change listener lost its PostgreSQL connection: caches read the database until it is back"
        );
        self.warned = true;
        false
    }
}

/// The fence's round trip: an empty query. PostgreSQL answers it without parsing, planning
/// or executing anything (an `EmptyQueryResponse`), and, like any query, delivers every
/// pending notification before it says it is ready again — which is all a fence needs.
/// `SELECT 1` cost the backend about 26 µs a round under load (bench/README.md). diesel
/// reports the empty answer as an error with this message; any other outcome is a failure.
fn round_trip(conn: &mut PgConnection) -> bool {
    use diesel::result::Error;
    match conn.batch_execute("") {
        Ok(()) => true,
        Err(Error::DatabaseError(_, info)) => info.message() == EMPTY_ANSWER,
        Err(_) => false,
    }
}

/// What diesel says when PostgreSQL answers an empty query.
const EMPTY_ANSWER: &str = "Received an empty query";

impl PgProbe {
    /// Connects now (a failure is retried in the background) and starts the drain thread.
    pub(super) fn open(url: &DatabaseUrl) -> Option<PgProbe> {
        let url = listener_url(url.expose())?;
        let shared = Arc::new(Shared {
            url,
            state: Mutex::new(State::default()),
            started: AtomicU64::new(0),
            wanted: Mutex::default(),
            wake: Condvar::new(),
            fenced: tokio::sync::watch::Sender::new(Fenced::default()),
        });
        shared.connect();
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("hallpass-listen".into())
            .spawn(move || drain_loop(&weak))
            .ok()?;
        Some(PgProbe { shared })
    }

    /// The counts once everything committed before this call is counted: the outcome of
    /// the first fence round trip that begins after it (made by the listener thread, shared
    /// with every request waiting at the same time). `None` while the listener is down.
    pub(super) async fn fenced(&self) -> Option<Counts> {
        let mut outcomes = self.shared.fenced.subscribe();
        // Any round numbered above what has begun by now is sent after this point.
        let after = self.shared.started.load(Ordering::SeqCst);
        let sleeping = match self.shared.wanted.lock() {
            Ok(mut w) => {
                w.wanted = true;
                w.sleeping
            }
            Err(_) => true,
        };
        if sleeping {
            self.shared.wake.notify_one();
        }
        let outcome = outcomes.wait_for(|f| f.round > after).await.ok()?;
        outcome.counts
    }

    /// The count of [`LIMITS`] after taking in what has arrived (no round trip: a
    /// brute-force block may reach this process a moment late). `None` while down.
    pub(super) fn limits(&self) -> Option<u64> {
        self.arrived_on(|s| s.limits)
    }

    /// The count of [`CHANGES`] that has arrived so far (no round trip). `None` while down.
    pub(super) fn arrived(&self) -> Option<u64> {
        self.arrived_on(|s| s.counts.changes)
    }

    fn arrived_on(&self, count: impl Fn(&State) -> u64) -> Option<u64> {
        let mut state = self.shared.lock()?;
        state.conn.as_ref()?;
        state.drain().then(|| count(&state))
    }
}

impl Shared {
    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        // A panic while draining leaves counts that only ever grew: keep using them, but
        // the connection may be mid-read, so start it over.
        match self.state.lock() {
            Ok(s) => Some(s),
            Err(poisoned) => {
                let mut s = poisoned.into_inner();
                s.conn = None;
                self.state.clear_poison();
                Some(s)
            }
        }
    }

    /// Opens and `LISTEN`s a new connection (without holding the lock), then installs it
    /// and moves every count: what was committed while nobody listened is covered.
    fn connect(&self) {
        let conn = PgConnection::establish(&self.url)
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                c.batch_execute(&format!(
                    "LISTEN {CHANGES}; LISTEN {LIMITS}; LISTEN {LISTING};"
                ))
                .map(|()| c)
                .map_err(|e| e.to_string())
            });
        let Some(mut state) = self.lock() else {
            return;
        };
        match conn {
            Ok(conn) => {
                state.conn = Some(conn);
                state.down_since = None;
                state.counts.changes = state.counts.changes.wrapping_add(1);
                state.counts.listing = state.counts.listing.wrapping_add(1);
                state.limits = state.limits.wrapping_add(1);
                if std::mem::take(&mut state.warned) {
                    tracing::info!("the change listener is connected again");
                }
            }
            Err(e) => {
                state.down_since = Some(Instant::now());
                if !std::mem::replace(&mut state.warned, true) {
                    tracing::warn!(error = %e.trim(), "the change listener cannot connect to PostgreSQL: caches read the database until it can");
                }
            }
        }
    }
}

/// Runs fence round trips while requests wait for them, and otherwise drains (or
/// reconnects) every [`DRAIN_EVERY`], until the probe is dropped with its pool.
fn drain_loop(shared: &Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.wait_for_request() {
            shared.fence();
        } else {
            shared.idle();
        }
        // Not holding the probe between rounds lets it go when the pool is dropped.
        drop(shared);
    }
}

impl Shared {
    /// Sleeps until a request wants a fence (true) or [`DRAIN_EVERY`] passed (false).
    fn wait_for_request(&self) -> bool {
        let Ok(mut w) = self.wanted.lock() else {
            std::thread::sleep(DRAIN_EVERY);
            return false;
        };
        if !w.wanted {
            w.sleeping = true;
            let Ok((slept, _)) = self.wake.wait_timeout_while(w, DRAIN_EVERY, |w| !w.wanted) else {
                return false;
            };
            w = slept;
            w.sleeping = false;
        }
        std::mem::replace(&mut w.wanted, false)
    }

    /// One fence round trip for every request waiting now; its outcome is published.
    fn fence(&self) {
        let round = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let counts = self
            .lock()
            .and_then(|mut s| (s.conn.is_some() && s.fence()).then_some(s.counts));
        self.fenced.send_replace(Fenced { round, counts });
    }

    /// Takes in what arrived, or reconnects once the retry delay has passed.
    fn idle(&self) {
        let retry = self.lock().is_some_and(|mut s| {
            if s.conn.is_some() {
                s.drain();
                false
            } else {
                s.down_since.is_none_or(|t| t.elapsed() >= RETRY_AFTER)
            }
        });
        if retry {
            self.connect();
        }
    }
}

/// The database URL with what the listening connection adds: its name, and TCP keepalives
/// and a send timeout, so that a server that vanished without closing the connection is
/// noticed within seconds.
/// Parameters already in the URL win.
fn listener_url(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in [
            ("application_name", APPLICATION_NAME),
            ("keepalives", "1"),
            ("keepalives_idle", "10"),
            ("keepalives_interval", "3"),
            ("keepalives_count", "3"),
            // A fence round trip that gets no answer gives up (and the listener reconnects)
            // instead of holding every request.
            ("tcp_user_timeout", "5000"),
        ] {
            if !present.iter().any(|p| p == k) {
                q.append_pair(k, v);
            }
        }
    }
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_url_adds_its_name_and_keepalives_but_keeps_the_operators() {
        let u = listener_url("postgres://u:p@db/hallpass?keepalives_idle=60").unwrap();
        assert!(u.starts_with("postgres://u:p@db/hallpass?keepalives_idle=60&"));
        assert!(u.contains("application_name=hallpass-listener"));
        assert_eq!(u.matches("keepalives_idle").count(), 1);
    }
}
