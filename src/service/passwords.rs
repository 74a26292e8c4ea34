//! argon2id hashing on threads of its own, with bounded concurrency and memory.
//!
//! Each hash needs `m` KiB of working memory (19 MiB by default). At most `threads` hashes
//! run at once, each on a hashing thread that owns one buffer: the hashes of a burst of
//! sign-ins queue, and each thread takes them one after another with the buffer it has.
//! When the queue is empty a thread frees its buffer and exits, so an idle server holds no
//! buffer and no hashing thread.
//!
//! The buffers come from the system allocator, not from the global one (mimalloc), and
//! each is its own mapping, unmapped when it is freed (see [`Memory`]). In mimalloc a freed
//! block of this size stays in its arena until a later purge pass, at least 100 ms after
//! the free (`purge_delay` × `arena_purge_mult`), and any thread that meanwhile needs a
//! new segment may take the block whole, pages still resident: after a sign-in that other
//! requests followed at once, a server kept a 19 MB buffer for as long as it stayed idle
//! (bench/README.md, memory).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use allocator_api2::alloc::System;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::config::PasswordConfig;

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;
/// Stored hashes asking for more memory than this are treated as corrupt, not computed.
const MAX_STORED_M_KIB: u32 = 4 * 1024 * 1024;
/// The smallest capacity of a hash buffer, in 1 KiB blocks: above glibc's largest mmap
/// threshold (`DEFAULT_MMAP_THRESHOLD_MAX`, 32 MiB on 64-bit, mallopt(3)), so that malloc
/// always maps the buffer on its own and `free` unmaps it at once, whatever thresholds
/// earlier frees moved. Only the `m` blocks a hash uses are ever touched: the rest of the
/// mapping costs address space, not memory. (musl maps any allocation this large too.)
const MAPPED_BLOCKS: usize = 33 * 1024;

/// argon2's working memory, from the system allocator (see the module's comment).
type Memory = allocator_api2::vec::Vec<Block, System>;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing task failed: {0}")]
    Task(String),
}

/// The result of checking a password.
#[derive(Debug)]
pub struct Verified {
    pub ok: bool,
    /// A fresh hash under the current parameters, when the stored one used other parameters.
    pub rehash: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cost {
    m: u32,
    t: u32,
    p: u32,
}

/// The process-wide password hasher; clones share its threads and queue.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    cost: Cost,
    /// Most hashing threads (and so buffers, and hashes running) at once.
    threads: usize,
    pool: Mutex<Pool>,
    running: AtomicUsize,
    peak: AtomicUsize,
    /// argon2 computations since start-up.
    computed: AtomicU64,
    /// Verified when the account does not exist, so failures take the same time.
    dummy: String,
    /// Buffers allocated since start-up (for tests: a burst reuses them).
    allocated: AtomicU64,
    /// Where each computation's duration goes (`hallpass_password_hash_duration_seconds`),
    /// when metrics are on.
    durations: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
}

/// A hash waiting for a thread. It answers its caller itself, and skips the work when the
/// caller has gone away (a client that disconnected while its hash was queued).
type Job = Box<dyn FnOnce(&Inner, &mut Buffer) + Send>;

/// The queue, and how many threads take from it. Both change under the one lock, so a job
/// is never queued with no thread to take it.
#[derive(Default)]
struct Pool {
    queue: VecDeque<Job>,
    /// Threads taking jobs; a thread that found the queue empty no longer counts.
    working: usize,
}

/// A hashing thread's working memory, allocated by the first hash that needs it.
#[derive(Default)]
struct Buffer(Option<Memory>);

impl Buffer {
    fn get(&mut self, inner: &Inner) -> &mut Memory {
        self.0.get_or_insert_with(|| {
            inner.allocated.fetch_add(1, Ordering::Relaxed);
            new_buffer(inner.cost)
        })
    }
}

impl Inner {
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        // The lock guards a queue and a count that are never left half-updated.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one computation, counted and timed.
    fn measured<T>(&self, f: impl FnOnce() -> T) -> T {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        // Counted down however `f` ends, a panic included.
        let _running = Running(&self.running);
        self.peak.fetch_max(now, Ordering::SeqCst);
        // Each job computes one hash (a verification's re-hash counts itself).
        self.computed.fetch_add(1, Ordering::Relaxed);
        let started = self.durations.get().map(|_| std::time::Instant::now());
        let result = f();
        if let (Some(h), Some(started)) = (self.durations.get(), started) {
            h.observe(started.elapsed().as_secs_f64());
        }
        result
    }
}

/// One running computation in `Inner::running`, until dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A hashing thread: takes queued jobs with its one buffer until the queue is empty, frees
/// the buffer and exits.
fn work(inner: Arc<Inner>) {
    let mut buffer = Buffer::default();
    loop {
        let job = {
            let mut pool = inner.pool();
            match pool.queue.pop_front() {
                Some(job) => job,
                None => {
                    // Freed before the thread stops counting, so that buffers never
                    // outnumber `threads` when a new burst starts a thread.
                    drop(buffer);
                    pool.working -= 1;
                    break;
                }
            }
        };
        // A job that panics only loses its own answer (its caller gets an error).
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&inner, &mut buffer)));
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.inner.cost)
            .finish()
    }
}

impl PasswordHasher {
    /// Builds the hasher. Computes no hash: the dummy that unknown accounts are checked
    /// against is a well-formed hash string under the current cost with random salt and
    /// random output (see [`dummy_hash`]), which costs a verification exactly as much as a
    /// real one: start-up does not wait for an argon2 run (nor touch 19 MiB for it).
    pub fn new(config: &PasswordConfig) -> Result<Self, HashError> {
        let cost = Cost {
            m: config.argon2_memory_kib,
            t: config.argon2_iterations,
            p: config.argon2_parallelism,
        };
        // Bad parameters still stop the server here, as the hash made here used to.
        argon(cost)?;
        let threads = match config.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                cost,
                threads,
                pool: Mutex::new(Pool::default()),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                computed: AtomicU64::new(0),
                dummy: dummy_hash(cost),
                allocated: AtomicU64::new(0),
                durations: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The most hashes that have run at the same moment (for tests and diagnostics).
    pub fn peak_concurrency(&self) -> usize {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// How many working buffers were allocated since start-up (a burst reuses them).
    pub fn buffers_allocated(&self) -> u64 {
        self.inner.allocated.load(Ordering::Relaxed)
    }

    /// How many argon2 hashes were computed since start-up: every verification (dummy ones
    /// included), every new hash and every re-hash. Printed at shutdown; the brute-force
    /// benchmark and tests read it to prove that refused attempts cost none.
    pub fn hashes_computed(&self) -> u64 {
        self.inner.computed.load(Ordering::Relaxed)
    }

    /// From now on each computation's duration is recorded into `histogram` (set once; only
    /// called when metrics are on).
    pub fn record_durations(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.inner.durations.set(histogram);
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.with_buffer(move |inner, buf| {
            let mut salt = [0u8; SALT_LEN];
            rand::rng().fill_bytes(&mut salt);
            hash_with(inner.cost, password.as_bytes(), &salt, buf)
        })
        .await
    }

    /// Checks `password` against `stored` (or against a dummy hash when there is no stored
    /// hash, so that "no such user" costs the same as "wrong password").
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.with_buffer(move |inner, buf| {
            let (target, real) = match &stored {
                Some(s) => (s.as_str(), true),
                None => (inner.dummy.as_str(), false),
            };
            let Some(parsed) = Phc::parse(target) else {
                // Unreadable hash: still spend the time, then fail.
                let _ = verify_with(&Phc::parse(&inner.dummy), password.as_bytes(), buf);
                return Ok(Verified {
                    ok: false,
                    rehash: None,
                });
            };
            let ok = verify_with(&Some(parsed.clone()), password.as_bytes(), buf)? && real;
            let rehash = if ok && parsed.cost != inner.cost {
                inner.computed.fetch_add(1, Ordering::Relaxed);
                let mut salt = [0u8; SALT_LEN];
                rand::rng().fill_bytes(&mut salt);
                Some(hash_with(inner.cost, password.as_bytes(), &salt, buf)?)
            } else {
                None
            };
            Ok(Verified { ok, rehash })
        })
        .await
    }

    /// Runs `f` with a hashing thread's buffer, once a thread is free, and waits for it.
    async fn with_buffer<T, F>(&self, f: F) -> Result<T, HashError>
    where
        F: FnOnce(&Inner, &mut Memory) -> Result<T, HashError> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        self.submit(Box::new(move |inner, buffer| {
            if answer.is_closed() {
                return;
            }
            let _entered = span.enter();
            let _ = answer.send(inner.measured(|| f(inner, buffer.get(inner))));
        }))?;
        answered
            .await
            .map_err(|_| HashError::Task("the hashing thread gave no answer".into()))?
    }

    /// Queues `job`, and starts a hashing thread for it unless `threads` are working.
    fn submit(&self, job: Job) -> Result<(), HashError> {
        let start = {
            let mut pool = self.inner.pool();
            pool.queue.push_back(job);
            let start = pool.working < self.inner.threads;
            if start {
                pool.working += 1;
            }
            start
        };
        if !start {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("hallpass-hash".into())
            .spawn(move || work(inner));
        if let Err(e) = spawned {
            let mut pool = self.inner.pool();
            pool.working -= 1;
            if pool.working == 0 {
                // Nobody would take them: their callers get an error instead of a wait.
                pool.queue.clear();
            }
            return Err(HashError::Task(format!(
                "cannot start a password hashing thread: {e}"
            )));
        }
        Ok(())
    }
}

/// A PHC string under `cost` with a random salt and a random output: verifying any
/// password against it runs argon2 at `cost` and fails, as a wrong password for a real
/// account does. Nobody knows a password that produces the output, not even this process.
fn dummy_hash(cost: Cost) -> String {
    let mut salt = [0u8; SALT_LEN];
    let mut out = [0u8; OUTPUT_LEN];
    rand::rng().fill_bytes(&mut salt);
    rand::rng().fill_bytes(&mut out);
    phc(cost, &salt, &out)
}

/// The PHC string of an argon2id hash.
fn phc(cost: Cost, salt: &[u8], out: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        cost.m,
        cost.t,
        cost.p,
        B64.encode(salt),
        B64.encode(out)
    )
}

fn new_buffer(cost: Cost) -> Memory {
    let blocks = cost.m as usize;
    let mut memory = Memory::with_capacity_in(blocks.max(MAPPED_BLOCKS), System);
    memory.resize(blocks, Block::default());
    memory
}

fn argon(cost: Cost) -> Result<Argon2<'static>, HashError> {
    let params = Params::new(cost.m, cost.t, cost.p, Some(OUTPUT_LEN))
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn compute(
    cost: Cost,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    buf: &mut Memory,
) -> Result<(), HashError> {
    let a = argon(cost)?;
    let result = if buf.len() == cost.m as usize {
        a.hash_password_into_with_memory(password, salt, out, buf.as_mut_slice())
    } else {
        // A hash made with other parameters: a one-off buffer of the size it needs.
        a.hash_password_into_with_memory(password, salt, out, new_buffer(cost))
    };
    result.map_err(|e| HashError::Argon2(e.to_string()))
}

fn hash_with(
    cost: Cost,
    password: &[u8],
    salt: &[u8],
    buf: &mut Memory,
) -> Result<String, HashError> {
    let mut out = [0u8; OUTPUT_LEN];
    compute(cost, password, salt, &mut out, buf)?;
    Ok(phc(cost, salt, &out))
}

fn verify_with(parsed: &Option<Phc>, password: &[u8], buf: &mut Memory) -> Result<bool, HashError> {
    let Some(p) = parsed else { return Ok(false) };
    let mut out = vec![0u8; p.hash.len()];
    compute(p.cost, password, &p.salt, &mut out, buf)?;
    Ok(bool::from(out.ct_eq(&p.hash)))
}

/// A parsed `$argon2id$v=19$m=…,t=…,p=…$salt$hash` string.
#[derive(Clone)]
struct Phc {
    cost: Cost,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Phc {
    fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('$');
        if !parts.next()?.is_empty() || parts.next()? != "argon2id" || parts.next()? != "v=19" {
            return None;
        }
        let mut cost = Cost { m: 0, t: 0, p: 0 };
        for kv in parts.next()?.split(',') {
            let (k, v) = kv.split_once('=')?;
            let v: u32 = v.parse().ok()?;
            match k {
                "m" => cost.m = v,
                "t" => cost.t = v,
                "p" => cost.p = v,
                _ => return None,
            }
        }
        let salt = B64.decode(parts.next()?).ok()?;
        let hash = B64.decode(parts.next()?).ok()?;
        let sane = cost.m > 0 && cost.m <= MAX_STORED_M_KIB && cost.t > 0 && cost.p > 0;
        (sane && parts.next().is_none() && hash.len() >= 16).then_some(Self { cost, salt, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cheap() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: 2,
        }
    }

    /// A cheap hasher with one hashing thread.
    fn one_thread() -> Result<PasswordHasher, HashError> {
        PasswordHasher::new(&PasswordConfig {
            max_concurrent_hashes: 1,
            ..cheap()
        })
    }

    /// A gate that keeps `n` hashing threads busy until it opens.
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

    impl Gate {
        fn new() -> Self {
            Self(Arc::new((Mutex::new(false), std::sync::Condvar::new())))
        }

        /// Queues a job that holds a hashing thread until the gate opens.
        fn hold(&self, h: &PasswordHasher) -> tokio::task::JoinHandle<Result<(), HashError>> {
            let gate = Arc::clone(&self.0);
            let h = h.clone();
            tokio::spawn(async move {
                h.with_buffer(move |_, _| {
                    let (open, changed) = &*gate;
                    let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
                    while !*open {
                        open = changed.wait(open).unwrap_or_else(PoisonError::into_inner);
                    }
                    Ok(())
                })
                .await
            })
        }

        fn open(&self) {
            let (open, changed) = &*self.0;
            *open.lock().unwrap_or_else(PoisonError::into_inner) = true;
            changed.notify_all();
        }
    }

    async fn until(mut done: impl FnMut() -> bool) {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Eight hashes queued behind two busy threads: the two threads' buffers serve all of
    /// them, and once the queue is empty the threads free their buffers and stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_reuses_its_threads_buffers_and_keeps_none_afterwards() -> Result<(), HashError>
    {
        let h = PasswordHasher::new(&cheap())?;
        let gate = Gate::new();
        let held = [gate.hold(&h), gate.hold(&h)];
        until(|| h.inner.running.load(Ordering::SeqCst) == 2).await;
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..8 {
            let h = h.clone();
            jobs.spawn(async move { h.hash(&format!("password {i}")).await });
        }
        until(|| h.inner.pool().queue.len() == 8).await;
        assert_eq!(
            h.inner.pool().working,
            2,
            "no third thread for a queued hash"
        );
        gate.open();
        for held in held {
            held.await.map_err(|e| HashError::Task(e.to_string()))??;
        }
        while let Some(done) = jobs.join_next().await {
            done.map_err(|e| HashError::Task(e.to_string()))??;
        }
        assert_eq!(h.hashes_computed(), 10);
        assert_eq!(h.peak_concurrency(), 2);
        assert_eq!(
            h.buffers_allocated(),
            2,
            "10 hashes on 2 threads need 2 buffers"
        );
        until(|| h.inner.pool().working == 0).await;
        h.hash("after the burst").await?;
        assert_eq!(h.buffers_allocated(), 3, "a new burst allocates anew");
        until(|| h.inner.pool().working == 0).await;
        Ok(())
    }

    /// A hash whose caller gives up while it is queued (its client went away) is not
    /// computed, and the threads still stop when the queue is empty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_abandoned_in_the_queue_is_not_computed() -> Result<(), HashError> {
        let h = one_thread()?;
        let gate = Gate::new();
        let held = gate.hold(&h);
        until(|| h.inner.running.load(Ordering::SeqCst) == 1).await;
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.hash("abandoned").await }
        });
        until(|| h.inner.pool().queue.len() == 1).await;
        waiting.abort();
        assert!(waiting.await.is_err(), "the queued hash was cancelled");
        gate.open();
        held.await.map_err(|e| HashError::Task(e.to_string()))??;
        until(|| h.inner.pool().working == 0).await;
        assert_eq!(h.hashes_computed(), 1, "only the gate's job ran");
        assert!(h.inner.pool().queue.is_empty());
        Ok(())
    }

    /// A job that panics answers its caller with an error; the thread goes on with the
    /// next job.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_fails_only_its_own_caller() -> Result<(), HashError> {
        let h = one_thread()?;
        let failed: Result<(), HashError> = h
            .with_buffer(|_, _| -> Result<(), HashError> {
                std::panic::resume_unwind(Box::new("a bug in a hash"))
            })
            .await;
        assert!(matches!(failed, Err(HashError::Task(_))), "{failed:?}");
        assert_eq!(
            h.inner.running.load(Ordering::SeqCst),
            0,
            "not counted as running"
        );
        let stored = h.hash("still works").await?;
        assert!(h.verify("still works", Some(&stored)).await?.ok);
        Ok(())
    }

    #[tokio::test]
    async fn hash_then_verify_and_rehash_on_new_parameters() -> Result<(), HashError> {
        let h = PasswordHasher::new(&cheap())?;
        let stored = h.hash("correct horse").await?;
        assert_eq!(h.hashes_computed(), 1);
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("correct horse", Some(&stored)).await?.ok);
        assert!(!h.verify("wrong horse", Some(&stored)).await?.ok);
        assert!(!h.verify("anything", None).await?.ok);
        assert!(!h.verify("x", Some("$argon2id$garbage")).await?.ok);
        assert_eq!(
            h.hashes_computed(),
            5,
            "the dummy and garbage checks cost a hash too"
        );

        let stronger = PasswordHasher::new(&PasswordConfig {
            argon2_iterations: 2,
            ..cheap()
        })?;
        let v = stronger.verify("correct horse", Some(&stored)).await?;
        assert!(v.ok);
        assert_eq!(stronger.hashes_computed(), 2, "verification and re-hash");
        let new = v.rehash.unwrap_or_default();
        assert!(new.starts_with("$argon2id$v=19$m=64,t=2,p=1$"), "{new}");
        assert!(
            stronger
                .verify("correct horse", Some(&new))
                .await?
                .rehash
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn start_up_computes_nothing_and_the_dummy_costs_a_real_hash() -> Result<(), HashError> {
        let h = PasswordHasher::new(&cheap())?;
        assert_eq!(h.hashes_computed(), 0);
        let dummy = Phc::parse(&h.inner.dummy);
        assert!(
            dummy.is_some_and(|d| d.cost == h.inner.cost && d.hash.len() == OUTPUT_LEN),
            "{}",
            h.inner.dummy
        );
        let bad = PasswordConfig {
            argon2_memory_kib: 1,
            ..cheap()
        };
        assert!(
            PasswordHasher::new(&bad).is_err(),
            "bad parameters stop start-up"
        );
        Ok(())
    }

    #[test]
    fn matches_the_reference_argon2_encoding() -> Result<(), HashError> {
        // Cross-check against the argon2 crate's own one-shot API with its default memory.
        let cost = Cost { m: 64, t: 1, p: 1 };
        let salt = [7u8; SALT_LEN];
        let mut expected = [0u8; OUTPUT_LEN];
        argon(cost)?
            .hash_password_into(b"pw", &salt, &mut expected)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        let s = hash_with(cost, b"pw", &salt, &mut new_buffer(cost))?;
        assert!(s.ends_with(&B64.encode(expected)));
        Ok(())
    }
}
