//! One value read from the database and kept while the database's change stamp stays the
//! same ([`crate::db::changes`]), for what every admin page shows and nobody changes between
//! two page views: the pending badge, the group filter's choices. Like the session cache, no
//! TTL: any commit to the tables behind it (SQLite: any commit at all) moves the stamp, and
//! the next reader reads again. Without a stamp, every call reads.

use std::future::Future;
use std::sync::Mutex;

use crate::db::DbPool;
use crate::db::changes::Stamp;

use super::ServiceError;

#[derive(Debug, Default)]
pub struct Stamped<T> {
    slot: Mutex<Option<(Stamp, T)>>,
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
        if let Some(stamp) = stamp
            && let Ok(slot) = self.slot.lock()
            && let Some((at, value)) = slot.as_ref()
            && *at == stamp
        {
            return Ok(value.clone());
        }
        let value = read().await?;
        if let Some(stamp) = stamp
            && let Ok(mut slot) = self.slot.lock()
        {
            *slot = Some((stamp, value.clone()));
        }
        Ok(value)
    }
}
