//! The only module that talks to the database: one pool over SQLite or PostgreSQL, the
//! migrations, the schema, and one file of queries per table. Everything above this module
//! sees `DbPool`, `Conn` and plain Rust types; backend differences are `match`es in here.

mod manager;
pub mod migrations;
mod schema;

pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod groups;
mod id_list;
pub mod identities;
pub mod invites;
pub mod oidc_flows;
pub mod oidc_providers;
pub mod passkeys;
pub mod plans;
pub mod rate_limits;
pub mod session_rows;
pub mod sessions;
pub mod settings;
pub mod two_factor;
pub mod user_search;
pub mod users;

use std::fmt;
use std::time::Duration;

use diesel::prelude::*;

pub use manager::DatabaseUrl;

/// Runs one diesel expression on the backend's own connection type instead of through the
/// `MultiConnection` enum, whose per-query overhead measured 2.5–3 µs on a primary-key lookup
/// (3.3 µs native vs 5.8–6.1 µs through the enum). Only for the per-request hot path.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($c) => $body,
            $crate::db::AnyConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// One connection to either backend; diesel generates the common `Connection` impl.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// What the service layer holds while it runs queries inside [`DbPool::run`].
pub type Conn = AnyConnection;

/// Which database the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed: {0}")]
    Query(diesel::result::Error),
    /// The database refused text it cannot store (PostgreSQL: NUL, or a character outside the
    /// database's encoding). Caused by input, so answered as a client error; the edge check
    /// (`web::input`) refuses such text first, this is the net behind it.
    #[error("the database cannot store this text: {0}")]
    UnstorableText(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot connect to the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error(
        "the database schema is newer than this binary (it has migration {0}, which this \
         version of hallpass does not know); run a newer hallpass or restore a backup"
    )]
    SchemaTooNew(String),
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("database task failed: {0}")]
    Task(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        if let diesel::result::Error::DatabaseError(_, info) = &e {
            // diesel does not expose the SQLSTATE (22021 character_not_in_repertoire,
            // 22P05 untranslatable_character), so the message is matched. A server whose
            // `lc_messages` is not English words it otherwise: that stays a logged 500,
            // which the edge check in `web::input` keeps from happening for NUL.
            let m = info.message();
            if m.contains("invalid byte sequence for encoding")
                || m.contains("has no equivalent in encoding")
                || m.contains("unsupported Unicode escape sequence")
            {
                return DbError::UnstorableText(m.to_owned());
            }
        }
        DbError::Query(e)
    }
}

impl DbError {
    /// True when the input, not the server, is at fault (see [`DbError::UnstorableText`]).
    pub fn is_client_input(&self) -> bool {
        matches!(self, DbError::UnstorableText(_))
    }

    /// True when the error is a unique-constraint violation (a concurrent insert won).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Pool settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub test_on_check_out: bool,
}

/// The unit tests' database: a pool of `max_connections` on a new SQLite file in `dir`
/// (a temporary directory the test keeps), migrated.
#[cfg(test)]
pub(crate) fn sqlite_for_tests(
    dir: &std::path::Path,
    max_connections: u32,
) -> Result<DbPool, Box<dyn std::error::Error>> {
    let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.join("test.db").display()))?;
    let options = PoolOptions {
        max_connections,
        connect_timeout: Duration::from_secs(5),
        test_on_check_out: false,
    };
    let pool = DbPool::connect(&url, &options)?;
    migrations::run(&pool)?;
    Ok(pool)
}

/// The one database handle of the application: cheap to clone.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<manager::Manager>,
    backend: Backend,
    /// Kept to open connections outside the pool ([`DbPool::changes`]).
    url: DatabaseUrl,
    /// The change probe, opened on first use ([`DbPool::changes`]).
    changes: std::sync::Arc<std::sync::OnceLock<Option<changes::ChangeProbe>>>,
    /// Where [`DbPool::run`] sends its work: one thread per pooled connection.
    executor: std::sync::Arc<Executor>,
    /// Where [`DbPool::run`] records how long its work waited (set when metrics are on).
    waits: std::sync::Arc<std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>>,
}

/// Work for a database thread. It calls the function it is given once its result is ready to
/// be sent, just before sending it: from then on the thread counts as free, so the caller,
/// woken by the answer, never finds it busy and starts another thread for its next query.
type Job = Box<dyn FnOnce(&dyn Fn()) + Send>;

/// Database threads draining one queue, started as the load needs them: one at start-up, one
/// more whenever more work is queued than threads are free, up to one per pooled connection.
///
/// Measured with perf under 64 concurrent session checks: with `spawn_blocking` (and a
/// semaphore of one permit per connection) about 35 % of all CPU time went to waking and
/// parking threads — every query woke a parked blocking thread. Here queued work is taken by
/// a thread that is already awake, so under load threads rarely park.
///
/// Started on demand because an idle thread is not free: each costs ~110 KB resident (its
/// stack, and the allocator's per-thread heap), and a quiet homelab instance seldom needs more
/// than one or two (issue 12 point 5: 8 threads at start-up were 0.8 MB of the idle memory).
/// For the same reason, while no work comes, one thread ends every [`THREAD_IDLE`], down to
/// the one that always stays: a burst (a login storm, a backup) does not leave its threads
/// behind (8 after a storm of sign-ins: 6 left 25 s later, 4 after 45 s), and a load that
/// comes and goes does not start and end them at every turn.
struct Executor {
    queue: std::sync::Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    jobs: std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<Job>>>,
    /// Threads running, and the most there may be.
    started: std::sync::Arc<std::sync::atomic::AtomicU32>,
    max: u32,
    /// How long a thread beyond the first waits for work before it ends.
    idle: std::time::Duration,
    /// Threads free for work, and work not yet taken: more work than free threads starts
    /// another thread.
    waiting: std::sync::Arc<std::sync::atomic::AtomicU32>,
    queued: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// How long a database thread beyond the first waits for work before it ends (tokio's
/// blocking threads wait as long by default).
const THREAD_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

impl Executor {
    fn start(threads: u32) -> Result<Self, DbError> {
        Self::start_with_idle(threads, THREAD_IDLE)
    }

    fn start_with_idle(threads: u32, idle: std::time::Duration) -> Result<Self, DbError> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let executor = Self {
            queue: std::sync::Mutex::new(Some(tx)),
            jobs: std::sync::Arc::new(std::sync::Mutex::new(rx)),
            started: std::sync::Arc::default(),
            max: threads.max(1),
            idle,
            waiting: std::sync::Arc::default(),
            queued: std::sync::Arc::default(),
        };
        executor.add_thread()?;
        Ok(executor)
    }

    /// Starts one more thread unless `max` are running.
    fn add_thread(&self) -> Result<(), DbError> {
        use std::sync::atomic::Ordering;
        let n = self.started.fetch_add(1, Ordering::AcqRel);
        if n >= self.max {
            self.started.fetch_sub(1, Ordering::AcqRel);
            return Ok(());
        }
        let jobs = std::sync::Arc::clone(&self.jobs);
        let waiting = std::sync::Arc::clone(&self.waiting);
        let queued = std::sync::Arc::clone(&self.queued);
        let started = std::sync::Arc::clone(&self.started);
        let idle = self.idle;
        // Counted as waiting before it exists: the work that started it is taken by it, and
        // the next job does not start yet another while it is on its way.
        waiting.fetch_add(1, Ordering::AcqRel);
        std::thread::Builder::new()
            .name(format!("hallpass-db-{n}"))
            .spawn(move || {
                loop {
                    let job = match jobs.lock() {
                        // Only the thread holding the queue waits on it; the others wait for
                        // the lock. So threads end one per idle period, never all at once.
                        Ok(queue) => match queue.recv_timeout(idle) {
                            Ok(job) => job,
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                                // Ends while it holds the queue: no job can be taken and lost.
                                if retire(&started, &waiting) {
                                    return;
                                }
                                continue;
                            }
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                        },
                        Err(_) => return,
                    };
                    queued.fetch_sub(1, Ordering::AcqRel);
                    waiting.fetch_sub(1, Ordering::AcqRel);
                    let freed = std::cell::Cell::new(false);
                    let free = || {
                        if !freed.replace(true) {
                            waiting.fetch_add(1, Ordering::AcqRel);
                        }
                    };
                    // A panicking query must not take the thread with it; its caller sees
                    // the dropped reply as a failed task.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&free)));
                    free();
                }
            })
            .map(|_| ())
            .map_err(|e| {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                self.started.fetch_sub(1, Ordering::AcqRel);
                DbError::Task(format!("cannot start a database thread: {e}"))
            })
    }

    fn submit(&self, job: Job) -> Result<(), DbError> {
        use std::sync::atomic::Ordering;
        // Counted before it is sent, so that a thread taking it at once never counts below 0.
        self.queued.fetch_add(1, Ordering::AcqRel);
        let sent = match self.queue.lock() {
            Ok(queue) => match queue.as_ref().map(|q| q.send(job)) {
                Some(Ok(())) => Ok(()),
                _ => Err(DbError::Task("the database threads have stopped".into())),
            },
            Err(_) => Err(DbError::Task("the database queue is poisoned".into())),
        };
        if let Err(e) = sent {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        if self.queued.load(Ordering::Acquire) > self.waiting.load(Ordering::Acquire)
            && self.started.load(Ordering::Acquire) < self.max
        {
            // More work than free threads: this job would wait for a busy one. A thread that
            // cannot be started is not an error for this job, which the others still take.
            if let Err(e) = self.add_thread() {
                tracing::warn!(error = %e, "database work waits for a busy thread");
            }
        }
        Ok(())
    }

    /// How many threads have been started.
    #[cfg(test)]
    fn threads(&self) -> u32 {
        self.started.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Counts an idle thread out, unless it is the last one. Work queued meanwhile is taken by
/// the threads that stay.
fn retire(started: &std::sync::atomic::AtomicU32, waiting: &std::sync::atomic::AtomicU32) -> bool {
    use std::sync::atomic::Ordering;
    let left = started.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n > 1).then(|| n - 1)
    });
    if left.is_ok() {
        waiting.fetch_sub(1, Ordering::AcqRel);
    }
    left.is_ok()
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Closing the queue lets every thread finish its last job and exit.
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
    }
}

impl fmt::Debug for DbPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPool")
            .field("backend", &self.backend)
            .finish()
    }
}

impl DbPool {
    /// Opens the pool and proves the database is reachable (one connection is made now).
    pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self, DbError> {
        let manager = manager::Manager::new(url)?;
        let backend = manager.backend();
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections)
            // r2d2 keeps `min_idle` connections idle besides the ones checked out, so with one
            // a single busy database thread already held two, and start-up's overlapping work
            // left three open (plus the change probe's). An idle SQLite connection costs ~150 KB
            // (its lookaside, page cache and parsed schema) and opens in a fraction of a
            // millisecond: SQLite keeps only what was needed, and r2d2 closes what stayed idle
            // for ten minutes. PostgreSQL keeps one warm: a new connection is a backend
            // start and, with TLS, a handshake.
            .min_idle(Some(match backend {
                Backend::Sqlite => 0,
                Backend::Postgres => 1,
            }))
            .connection_timeout(options.connect_timeout)
            // A validity query on every checkout doubled the statements of a session check
            // (bench/run.sh); SQLite connections cannot go stale, and a PostgreSQL connection
            // that died is discarded through `has_broken` after its first failed query.
            .test_on_check_out(options.test_on_check_out)
            .connection_customizer(Box::new(manager::Customizer))
            // r2d2's own maintenance (reaping, refilling `min_idle`) needs one thread, not its
            // default three: each idle thread costs ~110 KB resident (issue 12 point 5).
            .thread_pool(std::sync::Arc::new(
                scheduled_thread_pool::ScheduledThreadPool::builder()
                    .num_threads(1)
                    .thread_name_pattern("hallpass-pool")
                    .build(),
            ))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        // `build` would retry silently until the timeout and report only "timed out";
        // one direct attempt gives the operator the real reason.
        pool.get().map_err(|_| {
            let reason = manager::Manager::new(url)
                .and_then(|m| m.establish().map(|_| ()))
                .err()
                .map(|e| match e {
                    DbError::Connect { reason, .. } => reason,
                    other => other.to_string(),
                })
                .unwrap_or_else(|| "timed out waiting for a connection".to_owned());
            DbError::Connect {
                url: url.redacted(),
                reason,
            }
        })?;
        let executor = std::sync::Arc::new(Executor::start(options.max_connections)?);
        Ok(Self {
            pool,
            backend,
            url: url.clone(),
            changes: std::sync::Arc::default(),
            executor,
            waits: std::sync::Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// From now on [`DbPool::run`] records into `histogram` how long each task waited for a
    /// database thread and a connection (`hallpass_db_pool_wait_duration_seconds`). Never
    /// called when metrics are off: then `run` reads no clock. Set once; later calls are
    /// ignored.
    pub fn record_waits(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.waits.set(histogram);
    }

    /// Runs blocking diesel work on the database threads, never on the async workers. The
    /// connection is checked out on that thread and returned when `f` ends.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = self
            .waits
            .get()
            .map(|h| (h.clone(), std::time::Instant::now()));
        self.executor.submit(Box::new(move |free: &dyn Fn()| {
            let _entered = span.enter();
            let conn = pool.get();
            if let Some((histogram, since)) = queued {
                histogram.observe(since.elapsed().as_secs_f64());
            }
            let result = match conn {
                Ok(mut conn) => f(&mut conn),
                Err(e) => Err(E::from(DbError::from(e))),
            };
            free();
            let _ = reply.send(result);
        }))?;
        answer
            .await
            .map_err(|_| DbError::Task("a database task failed".into()))?
    }

    /// Blocking variant for start-up code and the CLI, outside the async runtime.
    pub fn run_blocking<T, E>(&self, f: impl FnOnce(&mut Conn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let mut conn = self.pool.get().map_err(DbError::from)?;
        f(&mut conn)
    }

    /// True when a trivial query succeeds (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .is_ok()
    }
}

/// Runs `f` in a transaction that first takes the instance write lock (the settings row).
///
/// Every multi-statement write goes through here, which gives two guarantees on both
/// backends: rules checked inside `f` ("no users yet", "an admin remains") cannot be
/// invalidated by a concurrent writer before commit (PostgreSQL row lock under READ
/// COMMITTED), and SQLite never has to upgrade a read snapshot to a write lock mid-way
/// (the first statement is a write, so it waits on `busy_timeout` instead of failing with
/// SQLITE_BUSY).
pub fn write_tx<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<DbError>,
{
    enum TxError<E> {
        Db(diesel::result::Error),
        App(E),
    }
    impl<E> From<diesel::result::Error> for TxError<E> {
        fn from(e: diesel::result::Error) -> Self {
            TxError::Db(e)
        }
    }
    let result = conn.transaction::<T, TxError<E>, _>(|conn| {
        settings::lock_instance(conn).map_err(TxError::Db)?;
        f(conn).map_err(TxError::App)
    });
    result.map_err(|e| match e {
        TxError::Db(e) => E::from(DbError::from(e)),
        TxError::App(e) => e,
    })
}

/// Current time as unix seconds, the representation of every timestamp column.
pub fn now_ts() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::Executor;
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier};

    /// Runs `work` on `executor` and waits for its answer, as `DbPool::run` does.
    fn run_on(executor: &Executor, work: impl FnOnce() + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        executor
            .submit(Box::new(move |free: &dyn Fn()| {
                work();
                free();
                let _ = tx.send(());
            }))
            .unwrap();
        rx.recv().unwrap();
    }

    /// r2d2 with `min_idle(1)` opened a second connection as soon as the first was checked
    /// out, and kept both; a SQLite pool now holds only the connections its work needed.
    #[test]
    fn a_sqlite_pool_keeps_no_connection_it_did_not_need() {
        let dir = tempfile::tempdir().unwrap();
        let url =
            super::DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("h.db").display()))
                .unwrap();
        let options = super::PoolOptions {
            max_connections: 8,
            connect_timeout: std::time::Duration::from_secs(5),
            test_on_check_out: false,
        };
        let pool = super::DbPool::connect(&url, &options).unwrap();
        for _ in 0..20 {
            let n: i64 = pool
                .run_blocking(|c| {
                    use diesel::RunQueryDsl;
                    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("1"))
                        .get_result::<i64>(c)
                        .map_err(super::DbError::from)
                })
                .unwrap();
            assert_eq!(n, 1);
        }
        // Give r2d2's maintenance thread the time to open any it was asked for.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(pool.pool.state().connections, 1, "one at a time needs one");
    }

    #[test]
    fn database_threads_start_as_work_waits_and_never_beyond_the_pool_size() {
        let executor = Arc::new(Executor::start(3).unwrap());
        assert_eq!(executor.threads(), 1, "one thread at start-up");

        // One query after another: the one thread is free each time, none is added.
        for _ in 0..200 {
            run_on(&executor, || {});
        }
        assert_eq!(executor.threads(), 1, "sequential work needs one thread");

        // Five queries that hold their thread until all running ones meet: the first three
        // need three threads; the pool's size caps them there.
        let running = Arc::new(Barrier::new(3));
        let done = meeting(&executor, 5, &running);
        // The first three meet at the barrier only if three threads run them at once; the
        // last two then need three more to meet, which only one more round can give.
        let other = Arc::clone(&running);
        std::thread::spawn(move || other.wait());
        all_run(&done, 5);
        assert_eq!(executor.threads(), 3, "capped at the pool size");
    }

    /// Submits `n` queries that each hold their thread until `running` lets them all go;
    /// each reports on the returned channel when it has run.
    fn meeting(executor: &Executor, n: usize, running: &Arc<Barrier>) -> mpsc::Receiver<()> {
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..n {
            let (running, done) = (Arc::clone(running), done_tx.clone());
            executor
                .submit(Box::new(move |free: &dyn Fn()| {
                    running.wait();
                    free();
                    let _ = done.send(());
                }))
                .unwrap();
        }
        done_rx
    }

    fn all_run(done: &mpsc::Receiver<()>, n: usize) {
        for _ in 0..n {
            done.recv_timeout(std::time::Duration::from_secs(10))
                .expect("a query was never run");
        }
    }

    /// Runs `n` queries that each hold their thread until all `n` run at once: `n` threads.
    fn burst(executor: &Executor, n: usize) {
        let done = meeting(executor, n, &Arc::new(Barrier::new(n)));
        all_run(&done, n);
    }

    #[test]
    fn idle_database_threads_end_down_to_one_and_start_again_for_the_next_burst() {
        let idle = std::time::Duration::from_millis(50);
        let executor = Executor::start_with_idle(4, idle).unwrap();
        burst(&executor, 4);
        assert_eq!(executor.threads(), 4);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while executor.threads() > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(idle);
        }
        assert_eq!(executor.threads(), 1, "idle threads ended, one stays");
        // Well past the idle time: the last one stays, and still works.
        std::thread::sleep(idle * 4);
        assert_eq!(executor.threads(), 1);
        run_on(&executor, || {});
        // The next burst starts what it needs again.
        burst(&executor, 3);
        assert_eq!(executor.threads(), 3);
    }
}
