//! One read per key and change stamp for the caches on the hot path.
//!
//! A cache entry is served only under the change stamp it was read under
//! ([`crate::db::changes`]), so a commit makes every entry miss at once (on SQLite any commit:
//! a sign-in's audit row, the "last seen" batch). The requests that arrive together for one
//! key — a page and its assets behind forward-auth, a script's parallel calls with one API
//! key — would then each read the same row, each on a database thread of its own, starting
//! more threads. With turns, the first reads; the others wait for their turn and look in the
//! cache again, where the first one's entry serves them when it was filed under the stamp
//! they saw. Keys are spread over a fixed number of stripes: no map of in-flight reads to
//! keep or clean, and unrelated keys seldom share a turn.

use std::hash::{Hash, Hasher};

use crate::db::changes::Stamp;

/// More than there are database threads, so that turns never limit how many different
/// reads run at once.
const STRIPES: usize = 64;

/// Turns to read what a cache missed (cheap to clone; clones share the turns).
#[derive(Debug, Clone)]
pub struct ReadTurns {
    stripes: std::sync::Arc<[tokio::sync::Mutex<()>]>,
}

impl Default for ReadTurns {
    fn default() -> Self {
        ReadTurns {
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

/// What [`ReadTurns::look_again`] found.
pub enum Looked<'a, T> {
    /// Filed under the stamp by an earlier turn while this one waited.
    Hit(T),
    /// Still missing: read now, holding the turn until the read is filed (no turn without a
    /// stamp, when nothing is cached).
    Miss(Option<tokio::sync::MutexGuard<'a, ()>>),
}

impl ReadTurns {
    /// After a cache miss under `stamp`: waits for `key`'s turn and looks in the cache again
    /// (`look`), so that only the first of a burst reads.
    pub async fn look_again<T>(
        &self,
        key: &(impl Hash + ?Sized),
        stamp: Option<Stamp>,
        look: impl Fn(Stamp) -> Option<T>,
    ) -> Looked<'_, T> {
        let Some(stamp) = stamp else {
            return Looked::Miss(None);
        };
        let turn = self.take(key).await;
        match look(stamp) {
            Some(hit) => Looked::Hit(hit),
            None => Looked::Miss(Some(turn)),
        }
    }

    /// Waits for `key`'s turn.
    async fn take(&self, key: &(impl Hash + ?Sized)) -> tokio::sync::MutexGuard<'_, ()> {
        // SipHash with fixed keys: the same stripe for the same key within the process.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() % STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_waits_for_its_turn_and_others_do_not() {
        let turns = ReadTurns::default();
        let first = turns.take("key").await;
        let again = turns.take("key");
        tokio::pin!(again);
        let waiting = pending_after_one_poll(again.as_mut()).await;
        assert!(waiting, "the same key waits while its turn is held");
        // Among many other keys, most take their turn at once (64 stripes: one in 64 shares
        // the held one).
        let mut free = 0;
        for n in 0..100 {
            let key = format!("other-{n}");
            let other = turns.take(&key);
            tokio::pin!(other);
            if !pending_after_one_poll(other.as_mut()).await {
                free += 1;
            }
        }
        assert!(
            free >= 90,
            "{free} of 100 other keys took their turn at once"
        );
        drop(first);
        let _second = again.await;
    }

    /// Whether a future is still pending after one poll.
    async fn pending_after_one_poll<F: std::future::Future + Unpin>(mut f: F) -> bool {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx).is_pending())
        })
        .await
    }
}
