//! Values read from the database and kept while the database's change stamp stays the same
//! ([`crate::db::changes`]). No TTL: any commit to the tables behind them (SQLite: any commit
//! at all) moves the stamp, and the next reader reads again; without a stamp nothing is kept
//! and every call reads. After a commit, the requests that missed one key together read it
//! once (`service::read_turns`).
//!
//! - [`StampedMap`]: one value per key. The hot path's caches are these: sessions
//!   (`sessions::Store`), API keys (`api_keys::KeyCache`), forward-auth's callers and their
//!   groups (`authz::caller`).
//! - [`Stamped`]: one value, for what every admin page shows and nobody changes between two
//!   page views: the pending badge, the group filter's choices, whether the proxy asks a
//!   second factor. A burst of admin pages (or of proxy sign-ins) after a commit does not
//!   count the same rows on as many database threads.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use crate::db::DbPool;
use crate::db::changes::Stamp;

use super::ServiceError;
use super::read_turns::{Looked, ReadTurns};

/// Past this many keys a map starts over: memory stays bounded, and a miss only costs the
/// read every request would make without a cache.
pub const KEPT_MAX: usize = 10_000;

/// Values by key, each filed under the stamp it was read under and served only under it.
#[derive(Debug)]
pub struct StampedMap<K, V> {
    entries: Mutex<HashMap<K, (Stamp, V)>>,
    /// One read per key and stamp.
    turns: ReadTurns,
}

impl<K, V> Default for StampedMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            turns: ReadTurns::default(),
        }
    }
}

impl<K: Eq + Hash, V> StampedMap<K, V> {
    /// What `pick` takes of `key`'s value, if it was filed under `stamp` (`pick` may still
    /// refuse it: an expired session, a key due its "last used" write).
    pub fn get<Q, T>(&self, key: &Q, stamp: Stamp, pick: impl FnOnce(&V) -> Option<T>) -> Option<T>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(key)?;
        if *at != stamp {
            return None;
        }
        pick(value)
    }

    /// Files `value` under `stamp`.
    pub fn put(&self, key: K, stamp: Stamp, value: V) {
        self.put_with(key, stamp, |_| value);
    }

    /// Files what `make` makes of the value it replaces (if any) under `stamp`.
    pub fn put_with(&self, key: K, stamp: Stamp, make: impl FnOnce(Option<&V>) -> V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= KEPT_MAX {
                entries.clear();
            }
            let value = make(entries.get(&key).map(|(_, v)| v));
            entries.insert(key, (stamp, value));
        }
    }

    /// Forgets `key` (its row was written by this process).
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// After a miss under `stamp`: waits for `key`'s turn and looks again (`look`), so that
    /// only the first of a burst reads. Hold the turn a [`Looked::Miss`] gives until the read
    /// is filed.
    pub async fn turn<Q, T>(
        &self,
        key: &Q,
        stamp: Option<Stamp>,
        look: impl Fn(Stamp) -> Option<T>,
    ) -> Looked<'_, T>
    where
        Q: Hash + ?Sized,
    {
        self.turns.look_again(key, stamp, look).await
    }
}

impl<K: Eq + Hash + Clone, V: Clone> StampedMap<K, V> {
    /// `key`'s value if it was read under `stamp`, else `read`'s (filed under `stamp`). Take
    /// the stamp before the read: a commit during it leaves the value under a stale stamp.
    pub async fn get_or_read<F, Fut, E>(
        &self,
        key: &K,
        stamp: Option<Stamp>,
        read: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let kept = |stamp: Stamp| self.get(key, stamp, |v| Some(v.clone()));
        if let Some(value) = stamp.and_then(kept) {
            return Ok(value);
        }
        let _turn = match self.turn(key, stamp, kept).await {
            Looked::Hit(value) => return Ok(value),
            Looked::Miss(turn) => turn,
        };
        let value = read().await?;
        if let Some(stamp) = stamp {
            self.put(key.clone(), stamp, value.clone());
        }
        Ok(value)
    }
}

/// One value kept under the change stamp.
#[derive(Debug)]
pub struct Stamped<T>(StampedMap<(), T>);

impl<T> Default for Stamped<T> {
    fn default() -> Self {
        Self(StampedMap::default())
    }
}

/// The database's stamp, taken once for a request that reads several kept values (the user
/// table: its rows, the pending badge, the group filter): on PostgreSQL each stamp is a fence,
/// a round trip on the listening connection, and taking one per value cost the page a third
/// of its throughput there (bench/README.md). It is the listing stamp
/// ([`DbPool::listing_stamp`]), which also covers the change stamp. Take it after the
/// request's own writes and before the reads; `None` inside: no probe, or it is down (read,
/// keep nothing).
#[derive(Debug, Clone, Copy)]
pub struct Taken(Option<Stamp>);

impl Taken {
    pub async fn now(db: &DbPool) -> Self {
        Self(db.listing_stamp().await)
    }

    /// The stamp of everything a listing shows.
    pub fn listing(self) -> Option<Stamp> {
        self.0
    }

    /// The change stamp within it: what values that do not show the last sign-in are kept
    /// under (the same on SQLite).
    pub fn changes(self) -> Option<Stamp> {
        self.0.map(Stamp::changes_only)
    }
}

impl<T: Clone> Stamped<T> {
    /// The kept value if it was read under the current stamp, else `read`'s (kept).
    pub async fn get_or_read<F, Fut>(&self, db: &DbPool, read: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        // Taken before the read: a commit during it leaves the value under a stale stamp.
        self.get_or_read_at(Taken::now(db).await, read).await
    }

    /// [`Stamped::get_or_read`] under a stamp the request already took.
    pub async fn get_or_read_at<F, Fut>(&self, at: Taken, read: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        self.0.get_or_read(&(), at.changes(), read).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// The rules every cache of the hot path relies on: a value serves only under the stamp
    /// it was filed under, `pick` may refuse it, a refiling sees the value it replaces, and
    /// the map never holds more than [`KEPT_MAX`] keys.
    #[test]
    fn a_value_serves_only_under_its_stamp_and_the_map_stays_bounded() {
        let (one, two) = (Stamp::DataVersion(1), Stamp::DataVersion(2));
        let map = StampedMap::<String, u32>::default();
        map.put("a".to_owned(), one, 7);
        assert_eq!(map.get("a", one, |v| Some(*v)), Some(7));
        assert_eq!(map.get("a", two, |v| Some(*v)), None, "another stamp");
        assert_eq!(map.get("b", one, |v| Some(*v)), None, "another key");
        assert_eq!(map.get("a", one, |_| None::<u32>), None, "refused by pick");
        map.put_with("a".to_owned(), two, |old| old.map_or(0, |v| v + 1));
        assert_eq!(map.get("a", two, |v| Some(*v)), Some(8), "carried over");
        assert_eq!(map.get("a", one, |v| Some(*v)), None, "refiled under two");
        map.remove("a");
        assert_eq!(map.get("a", two, |v| Some(*v)), None, "forgotten");
        for n in 0..KEPT_MAX as u32 + 5 {
            map.put(format!("k{n}"), one, n);
        }
        let held = map.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert_eq!(held, 5, "started over at {KEPT_MAX}");
        assert_eq!(map.get("k10004", one, |v| Some(*v)), Some(10_004));
    }

    #[tokio::test]
    async fn a_burst_that_missed_together_reads_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = crate::db::sqlite_for_tests(dir.path(), 2)?;
        let kept = Arc::new(Stamped::<i64>::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let burst = |value: i64| {
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (db, kept, reads) = (db.clone(), kept.clone(), reads.clone());
                    tokio::spawn(async move {
                        kept.get_or_read(&db, || async move {
                            reads.fetch_add(1, Ordering::SeqCst);
                            // Slow enough that the whole burst misses before it is kept.
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Ok(value)
                        })
                        .await
                    })
                })
                .collect();
            async move {
                let mut got = Vec::new();
                for task in tasks {
                    got.push(task.await??);
                }
                Ok::<_, Box<dyn std::error::Error>>(got)
            }
        };
        assert_eq!(burst(1).await?, vec![1; 16]);
        assert_eq!(reads.load(Ordering::SeqCst), 1, "16 callers, one read");
        // Still the same stamp: kept, no read.
        assert_eq!(burst(2).await?, vec![1; 16]);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // A commit moves the stamp: read again, once.
        db.run(crate::db::settings::bump_rules_version).await?;
        assert_eq!(burst(3).await?, vec![3; 16]);
        assert_eq!(reads.load(Ordering::SeqCst), 2, "one read after the commit");
        Ok(())
    }
}
