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

impl<T: Clone> Stamped<T> {
    /// The kept value if it was read under the current stamp, else `read`'s (kept).
    pub async fn get_or_read<F, Fut>(&self, db: &DbPool, read: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        // Taken before the read: a commit during it leaves the value under a stale stamp.
        let stamp = db.change_stamp().await;
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
