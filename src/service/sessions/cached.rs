//! The session store every front end uses: the database store (`db::sessions`) behind a
//! cache of loaded sessions, each valid only while the database's change stamp stays the
//! same ([`crate::db::changes`]).
//!
//! A session check is the per-request cost of every signed-in page, of `/api/auth/me` and of
//! forward-auth; reading the row (and its user) from the database on each one made it cost
//! a trip to a database thread and back. Any commit that can end or narrow access — a
//! sign-out, a password change, a disabled account, a role, a session revoked by another
//! process — moves the stamp (SQLite: the WAL-index header; PostgreSQL: a notification from
//! the triggers on those tables), and the next request reads the database again. No TTL:
//! an entry is exactly as current as the stamp it was read under. Without a stamp (no probe,
//! or a PostgreSQL listener that is down) nothing is served from the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::db::DbPool;
use crate::db::changes::Stamp;
use crate::db::sessions::DbSessionStore;
use crate::domain::User;
use crate::service::read_turns::Looked;
use crate::service::stamped::{KEPT_MAX, StampedMap, Taken};

use super::{CSRF_KEY, SignedIn};

/// "Last seen" moves at most this often per session (seconds): a signed-in request costs a
/// clock comparison, and once a minute a place in the batch [`Store::flush_seen`] writes.
pub const SEEN_EVERY: i64 = 60;

/// Whether a session last touched at `touched` (unix seconds) is due another touch at `now`.
fn seen_due(touched: i64, now: i64, every: i64) -> bool {
    now.saturating_sub(touched) >= every
}

/// The application's session store (cheap to clone; clones share the cache).
#[derive(Debug, Clone)]
pub struct Store {
    db: DbSessionStore,
    pool: DbPool,
    cache: Arc<StampedMap<Id, Entry>>,
    /// Signed-in sessions seen since the last [`Store::flush_seen`], with when (unix s).
    seen: Arc<Mutex<HashMap<Id, i64>>>,
    seen_every: i64,
}

#[derive(Debug)]
struct Entry {
    record: Arc<Record>,
    user: Option<Arc<User>>,
    /// What the record says, read once when it is filed (see [`Store::cached_sign_in`]).
    signed_in: Option<SignedIn>,
    csrf_token: Option<Arc<str>>,
    /// When this process last queued a "last seen" touch of the session (unix seconds).
    /// Carried over when the entry is read again under a new stamp.
    touched: AtomicI64,
}

/// A signed-in session as the cache holds it: its user's row, what it records, and its
/// CSRF token.
#[derive(Debug, Clone)]
pub struct CachedSignIn {
    pub user: Arc<User>,
    pub signed_in: SignedIn,
    pub csrf_token: Option<Arc<str>>,
    /// The stamp the check was made under: a request that only reads after it can read its
    /// kept values under it too (on PostgreSQL, one fence a request instead of two).
    pub at: Taken,
}

impl Store {
    pub fn new(pool: &DbPool) -> Store {
        Store {
            db: DbSessionStore::new(pool.clone()),
            pool: pool.clone(),
            cache: Arc::default(),
            seen: Arc::default(),
            seen_every: SEEN_EVERY,
        }
    }

    /// The cached record under `stamp`, its user handed to the session layer's loader.
    fn serve_cached(&self, id: &Id, stamp: Stamp) -> Option<Record> {
        let (record, user) = self.cached(id, stamp)?;
        if let Some(user) = user {
            crate::db::sessions::hand_over_user(User::clone(&user));
        }
        Some(Record::clone(&record))
    }

    fn cached(&self, id: &Id, stamp: Stamp) -> Option<(Arc<Record>, Option<Arc<User>>)> {
        self.cache.get(id, stamp, |entry| {
            self.still_open(id, entry)?;
            Some((entry.record.clone(), entry.user.clone()))
        })
    }

    /// Whether a kept session is still open by the row's own expiry, as the database query
    /// checks it; if so, its "last seen" is noted.
    fn still_open(&self, id: &Id, entry: &Entry) -> Option<()> {
        let now = OffsetDateTime::now_utc();
        if entry.record.expiry_date <= now {
            return None;
        }
        if entry.user.is_some() {
            self.note_seen(id, &entry.touched, now.unix_timestamp());
        }
        Some(())
    }

    /// Queues a "last seen" touch when the session's last one is a minute old: one atomic
    /// read per request, a lock once a minute per session. Never a database write here.
    fn note_seen(&self, id: &Id, touched: &AtomicI64, now: i64) {
        let last = touched.load(Ordering::Relaxed);
        if !seen_due(last, now, self.seen_every)
            || touched
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Ok(mut seen) = self.seen.lock() {
            // Bounded like the cache: a burst of new sessions costs a late touch, no memory.
            if seen.len() < KEPT_MAX {
                seen.insert(*id, now);
            }
        }
    }

    /// The signed-in session `id` straight from the cache, under the current stamp, without
    /// loading it into the request's session: a load hands the session layer a copy of the
    /// record and of the user row, and every read of it copies a value again — the largest
    /// share of a signed-in request's cost once nothing reached the database. `None`: not in
    /// the cache under the current stamp, past its expiry, anonymous, or without a user row
    /// (the break-glass admin); the caller then loads it the ordinary way.
    pub async fn cached_sign_in(&self, id: &Id) -> Option<CachedSignIn> {
        // The listing stamp: the same fence as the change stamp, and what a page read after
        // this check needs (`CachedSignIn::at`).
        let at = Taken::now(&self.pool).await;
        let stamp = at.changes()?;
        self.cache.get(id, stamp, |entry| {
            self.still_open(id, entry)?;
            Some(CachedSignIn {
                user: entry.user.clone()?,
                signed_in: entry.signed_in?,
                csrf_token: entry.csrf_token.clone(),
                at,
            })
        })
    }

    fn remember(&self, stamp: Stamp, record: Arc<Record>, user: Option<Arc<User>>) {
        let data = &record.data;
        let signed_in = SignedIn::from_data(|key| data.get(key).and_then(|v| v.as_i64()));
        let csrf_token = data.get(CSRF_KEY).and_then(|v| v.as_str()).map(Arc::from);
        let id = record.id;
        self.cache.put_with(id, stamp, |old| {
            let touched = old.map_or(0, |e| e.touched.load(Ordering::Relaxed));
            let entry = Entry {
                record,
                user,
                signed_in,
                csrf_token,
                touched: AtomicI64::new(touched),
            };
            if entry.user.is_some() {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                self.note_seen(&id, &entry.touched, now);
            }
            entry
        });
    }

    /// Writes the queued "last seen" times in one transaction (the server calls it every
    /// few seconds and at shutdown); returns how many sessions were touched. The column it
    /// writes notifies nobody on PostgreSQL, so no process's caches are flushed by it.
    pub async fn flush_seen(&self) -> usize {
        let batch: Vec<(Id, i64)> = match self.seen.lock() {
            Ok(mut seen) => seen.drain().collect(),
            Err(_) => return 0,
        };
        if batch.is_empty() {
            return 0;
        }
        match self
            .pool
            .run(move |c| crate::db::session_rows::touch_seen(c, &batch))
            .await
        {
            Ok(n) => n,
            Err(e) => {
                // Only "last seen" is lost; access is unaffected.
                tracing::warn!(error = %e, "could not record when sessions were last seen");
                0
            }
        }
    }

    fn forget(&self, id: &Id) {
        self.cache.remove(id);
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.db.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.forget(&record.id);
        self.db.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        // Taken before the read: a commit that lands during the read moves the stamp past
        // the one the entry is filed under, so the entry is never served.
        let stamp = self.pool.change_stamp().await;
        if let Some(hit) = stamp.and_then(|s| self.serve_cached(id, s)) {
            return Ok(Some(hit));
        }
        // One read per session and stamp (`service::read_turns`).
        let _turn = match self
            .cache
            .turn(&id.0, stamp, |s| self.serve_cached(id, s))
            .await
        {
            Looked::Hit(record) => return Ok(Some(record)),
            Looked::Miss(turn) => turn,
        };
        let loaded = crate::db::sessions::capturing_user(async {
            let record = self.db.load(id).await;
            (record, crate::db::sessions::take_loaded_user())
        })
        .await;
        let (record, user) = loaded;
        let record = record?;
        if let (Some(stamp), Some(record)) = (stamp, &record) {
            self.remember(stamp, Arc::new(record.clone()), user.clone().map(Arc::new));
        }
        if let Some(user) = user {
            crate::db::sessions::hand_over_user(user);
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.forget(id);
        self.db.delete(id).await
    }
}

#[async_trait]
impl ExpiredDeletion for Store {
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.db.delete_expired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::session_rows;
    use crate::domain::{Role, Status, Username};

    async fn store() -> Result<(tempfile::TempDir, Store, i64), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let pool = crate::db::sqlite_for_tests(dir.path(), 1)?;
        let name = Username::parse("ann")?;
        let user = pool.run_blocking(|c| {
            crate::db::users::insert(
                c,
                &crate::db::users::NewUser {
                    username: &name,
                    email: None,
                    display_name: None,
                    role: Role::User,
                    status: Status::Active,
                    password_hash: None,
                    created_by: None,
                },
            )
        })?;
        Ok((dir, Store::new(&pool), user.id))
    }

    #[test]
    fn a_touch_is_due_once_a_minute() {
        assert!(seen_due(0, 1_000, SEEN_EVERY));
        assert!(!seen_due(1_000, 1_059, SEEN_EVERY));
        assert!(seen_due(1_000, 1_060, SEEN_EVERY));
        assert!(
            !seen_due(1_000, 900, SEEN_EVERY),
            "a clock step back is no touch"
        );
    }

    /// Requests queue at most one "last seen" per session and minute, and only the batch
    /// writes it: the sign-in writes the client details, later loads only the one column.
    #[tokio::test]
    async fn last_seen_is_queued_once_a_minute_and_written_in_a_batch()
    -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store, user_id) = store().await?;
        let mut record = Record {
            id: Id::default(),
            data: [
                (
                    crate::db::sessions::USER_ID_KEY.to_owned(),
                    serde_json::json!(user_id),
                ),
                (
                    crate::db::sessions::CLIENT_IP_KEY.to_owned(),
                    serde_json::json!("192.0.2.7"),
                ),
                (
                    crate::db::sessions::USER_AGENT_KEY.to_owned(),
                    serde_json::json!("curl/8.5.0"),
                ),
            ]
            .into(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await?;
        let rows = store
            .pool
            .run(move |c| session_rows::for_user(c, user_id))
            .await?;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(rows[0].user_agent.as_deref(), Some("curl/8.5.0"));
        assert!(rows[0].signed_in_at.is_some());
        // The details live in their columns, not in the data each request loads.
        let loaded = store.load(&record.id).await?.map(|r| r.data.len());
        assert_eq!(loaded, Some(1));

        for _ in 0..5 {
            assert!(store.load(&record.id).await?.is_some());
        }
        assert_eq!(
            store.seen.lock().map(|s| s.len()).ok(),
            Some(1),
            "one queued touch"
        );
        // A time the sign-in cannot have written, to see the batch write it.
        if let Ok(mut seen) = store.seen.lock() {
            seen.values_mut().for_each(|t| *t = 4242);
        }
        assert_eq!(store.flush_seen().await, 1);
        let rows = store
            .pool
            .run(move |c| session_rows::for_user(c, user_id))
            .await?;
        assert_eq!(rows[0].last_seen_at, Some(4242), "written by the batch");
        for _ in 0..5 {
            assert!(store.load(&record.id).await?.is_some());
        }
        assert_eq!(
            store.flush_seen().await,
            0,
            "not due again within the minute"
        );
        Ok(())
    }
}
