//! argon2id hashing with bounded concurrency and memory.
//!
//! Each hash needs `m` KiB of working memory (19 MiB by default). At most `permits` hashes
//! run at once, so a burst of logins cannot grow the process past `permits` buffers. The
//! permit is held inside the blocking task, so a client that disconnects mid-hash does not
//! free its slot early.
//!
//! Buffers live only as long as a burst: a hash that ends while others wait for a permit
//! hands its buffer to the next one (see [`Burst`]); the last hash of a burst frees it. A
//! freed buffer of this size does not leave the process at once (mimalloc purges freed
//! memory after a delay, on later activity of the thread), so allocating a fresh buffer per
//! hash let a storm of sign-ins hold two or three freed buffers beside the live ones: a peak
//! of 85–101 MB where `permits` buffers make ~60. An idle server keeps none (a pool kept for
//! ever, as once written for glibc's malloc, held 19 MiB per permit at rest).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::config::PasswordConfig;

const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;
/// Stored hashes asking for more memory than this are treated as corrupt, not computed.
const MAX_STORED_M_KIB: u32 = 4 * 1024 * 1024;

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

/// The process-wide password hasher; clones share permits and memory.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    cost: Cost,
    permits: Arc<Semaphore>,
    running: AtomicUsize,
    peak: AtomicUsize,
    /// argon2 computations since start-up.
    computed: AtomicU64,
    /// Verified when the account does not exist, so failures take the same time.
    dummy: String,
    burst: Mutex<Burst>,
    /// Buffers allocated since start-up (for tests: a burst reuses them).
    allocated: AtomicU64,
    /// Where each computation's duration goes (`hallpass_password_hash_duration_seconds`),
    /// when metrics are on.
    durations: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
}

/// Hashes waiting for a permit, and the buffers the finished ones left for them. Every
/// change happens under the one lock, so a buffer is kept only while someone is queued.
#[derive(Default)]
struct Burst {
    queued: usize,
    spare: Vec<Vec<Block>>,
}

impl Inner {
    fn burst(&self) -> std::sync::MutexGuard<'_, Burst> {
        // The lock guards two plain fields that are never left half-updated.
        self.burst.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit was granted: one fewer waits, one more runs; takes a spare buffer if any.
    fn start(&self) -> Option<Vec<Block>> {
        let mut burst = self.burst();
        burst.queued -= 1;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        burst.spare.pop()
    }

    /// A hash ended: its buffer goes to a queued hash that has none set aside yet, else it
    /// is freed.
    fn finish(&self, buf: Vec<Block>) {
        let mut burst = self.burst();
        self.running.fetch_sub(1, Ordering::SeqCst);
        if burst.queued > burst.spare.len() {
            burst.spare.push(buf);
        }
    }
}

/// One hash waiting for its permit; leaving the queue unserved (the client went away) frees
/// the spare buffers when nobody else needs them.
struct Queued<'a> {
    inner: &'a Inner,
    served: bool,
}

impl<'a> Queued<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.burst().queued += 1;
        Self {
            inner,
            served: false,
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let mut burst = self.inner.burst();
        burst.queued -= 1;
        let waiting = burst.queued;
        burst.spare.truncate(waiting);
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
        let permits = match config.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                cost,
                permits: Arc::new(Semaphore::new(permits)),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                computed: AtomicU64::new(0),
                dummy: dummy_hash(cost),
                burst: Mutex::new(Burst::default()),
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

    async fn with_buffer<T, F>(&self, f: F) -> Result<T, HashError>
    where
        F: FnOnce(&Inner, &mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
        T: Send + 'static,
    {
        let mut queued = Queued::enter(&self.inner);
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|e| HashError::Task(e.to_string()))?;
        queued.served = true;
        let spare = self.inner.start();
        let inner = Arc::clone(&self.inner);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            // Each job computes one hash (a verification's re-hash counts itself).
            inner.computed.fetch_add(1, Ordering::Relaxed);
            let started = inner.durations.get().map(|_| std::time::Instant::now());
            let mut buf = spare.unwrap_or_else(|| {
                inner.allocated.fetch_add(1, Ordering::Relaxed);
                new_buffer(inner.cost)
            });
            let result = f(&inner, &mut buf);
            inner.finish(buf);
            if let (Some(h), Some(started)) = (inner.durations.get(), started) {
                h.observe(started.elapsed().as_secs_f64());
            }
            result
        })
        .await
        .map_err(|e| HashError::Task(e.to_string()))?
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

fn new_buffer(cost: Cost) -> Vec<Block> {
    vec![Block::default(); cost.m as usize]
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
    buf: &mut Vec<Block>,
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
    buf: &mut Vec<Block>,
) -> Result<String, HashError> {
    let mut out = [0u8; OUTPUT_LEN];
    compute(cost, password, salt, &mut out, buf)?;
    Ok(phc(cost, salt, &out))
}

fn verify_with(
    parsed: &Option<Phc>,
    password: &[u8],
    buf: &mut Vec<Block>,
) -> Result<bool, HashError> {
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

    fn cheap() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent_hashes: 2,
        }
    }

    /// Eight hashes at once with two permits: the two buffers of the first hashes serve the
    /// other six, and none is kept once the burst is over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_reuses_its_buffers_and_keeps_none_afterwards() -> Result<(), HashError> {
        let h = PasswordHasher::new(&cheap())?;
        // Hold both permits until all eight are queued, so the burst is a burst.
        let held = Arc::clone(&h.inner.permits)
            .acquire_many_owned(2)
            .await
            .map_err(|e| HashError::Task(e.to_string()))?;
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..8 {
            let h = h.clone();
            jobs.spawn(async move { h.hash(&format!("password {i}")).await });
        }
        while h.inner.burst().queued < 8 {
            tokio::task::yield_now().await;
        }
        drop(held);
        while let Some(done) = jobs.join_next().await {
            done.map_err(|e| HashError::Task(e.to_string()))??;
        }
        assert_eq!(h.hashes_computed(), 8);
        let burst = h.buffers_allocated();
        assert!(
            (1..=2).contains(&burst),
            "8 hashes on 2 permits need at most 2 buffers, allocated {burst}"
        );
        assert!(
            h.inner.burst().spare.is_empty(),
            "a buffer outlived the burst"
        );
        assert_eq!(h.inner.burst().queued, 0);
        h.hash("after the burst").await?;
        assert_eq!(
            h.buffers_allocated(),
            burst + 1,
            "a lone hash allocates its own"
        );
        assert!(h.inner.burst().spare.is_empty());
        Ok(())
    }

    /// A hash that gives up while queued (its client went away) leaves no buffer behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_abandoned_in_the_queue_frees_the_spare_buffers() -> Result<(), HashError> {
        let h = PasswordHasher::new(&PasswordConfig {
            max_concurrent_hashes: 1,
            ..cheap()
        })?;
        // Hold the only permit so the next hash queues.
        let held = Arc::clone(&h.inner.permits)
            .acquire_owned()
            .await
            .map_err(|e| HashError::Task(e.to_string()))?;
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.hash("abandoned").await }
        });
        while h.inner.burst().queued == 0 {
            tokio::task::yield_now().await;
        }
        // A buffer left for the waiter, as a finished hash of the burst would leave it.
        h.inner.burst().spare.push(new_buffer(h.inner.cost));
        waiting.abort();
        assert!(waiting.await.is_err(), "the queued hash was cancelled");
        assert_eq!(h.inner.burst().queued, 0);
        assert!(
            h.inner.burst().spare.is_empty(),
            "the spare buffer outlived its waiter"
        );
        drop(held);
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
