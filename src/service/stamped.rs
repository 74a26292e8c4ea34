//! One value read from the database and kept while the database's change stamp stays the
//! same ([`crate::db::changes`]), for what every admin page shows and nobody changes between
//! two page views: the pending badge, the group filter's choices. Like the session cache, no
//! TTL: any commit to the tables behind it (SQLite: any commit at all) moves the stamp, and
//! the next reader reads again. Without a stamp, every call reads. After a commit, the
//! requests that missed together read once (`service::read_turns`): a burst of admin pages
//! (or of proxy sign-ins, for `proxy_asks_second_factor`) does not count the same rows on as
//! many database threads.

use std::future::Future;
use std::sync::Mutex;

use crate::db::DbPool;
use crate::db::changes::Stamp;

use super::ServiceError;
use super::read_turns::{Looked, ReadTurns};

#[derive(Debug, Default)]
pub struct Stamped<T> {
    slot: Mutex<Option<(Stamp, T)>>,
    /// One read per stamp.
    turns: ReadTurns,
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
        let stamp = at.changes();
        let kept = |stamp: Stamp| {
            let slot = self.slot.lock().ok()?;
            let (at, value) = slot.as_ref()?;
            (*at == stamp).then(|| value.clone())
        };
        if let Some(value) = stamp.and_then(kept) {
            return Ok(value);
        }
        let _turn = match self.turns.look_again(&(), stamp, kept).await {
            Looked::Hit(value) => return Ok(value),
            Looked::Miss(turn) => turn,
        };
        let value = read().await?;
        if let Some(stamp) = stamp
            && let Ok(mut slot) = self.slot.lock()
        {
            *slot = Some((stamp, value.clone()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

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
