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
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::db::DbPool;
use crate::db::changes::Stamp;
use crate::db::sessions::DbSessionStore;
use crate::domain::User;

use super::{CSRF_KEY, SignedIn};

/// Past this many sessions the cache starts over: memory stays bounded, and a miss only
/// costs the read every request made before there was a cache.
const CACHE_MAX: usize = 10_000;

/// The application's session store (cheap to clone; clones share the cache).
#[derive(Debug, Clone)]
pub struct Store {
    db: DbSessionStore,
    pool: DbPool,
    cache: Arc<Mutex<HashMap<Id, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    record: Arc<Record>,
    user: Option<Arc<User>>,
    /// What the record says, read once when it is filed (see [`Store::cached_sign_in`]).
    signed_in: Option<SignedIn>,
    csrf_token: Option<Arc<str>>,
}

/// A signed-in session as the cache holds it: its user's row, what it records, and its
/// CSRF token.
#[derive(Debug, Clone)]
pub struct CachedSignIn {
    pub user: Arc<User>,
    pub signed_in: SignedIn,
    pub csrf_token: Option<Arc<str>>,
}

impl Store {
    pub fn new(pool: &DbPool) -> Store {
        Store {
            db: DbSessionStore::new(pool.clone()),
            pool: pool.clone(),
            cache: Arc::default(),
        }
    }

    fn cached(&self, id: &Id, stamp: Stamp) -> Option<(Arc<Record>, Option<Arc<User>>)> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(id).filter(|e| e.stamp == stamp)?;
        // The row's own expiry, as the database query checks it.
        (entry.record.expiry_date > OffsetDateTime::now_utc())
            .then(|| (entry.record.clone(), entry.user.clone()))
    }

    /// The signed-in session `id` straight from the cache, under the current stamp, without
    /// loading it into the request's session: a load hands the session layer a copy of the
    /// record and of the user row, and every read of it copies a value again — the largest
    /// share of a signed-in request's cost once nothing reached the database. `None`: not in
    /// the cache under the current stamp, past its expiry, anonymous, or without a user row
    /// (the break-glass admin); the caller then loads it the ordinary way.
    pub async fn cached_sign_in(&self, id: &Id) -> Option<CachedSignIn> {
        let stamp = self.pool.change_stamp().await?;
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(id).filter(|e| e.stamp == stamp)?;
        if entry.record.expiry_date <= OffsetDateTime::now_utc() {
            return None;
        }
        Some(CachedSignIn {
            user: entry.user.clone()?,
            signed_in: entry.signed_in?,
            csrf_token: entry.csrf_token.clone(),
        })
    }

    fn remember(&self, stamp: Stamp, record: Arc<Record>, user: Option<Arc<User>>) {
        let data = &record.data;
        let signed_in = SignedIn::from_data(|key| data.get(key).and_then(|v| v.as_i64()));
        let csrf_token = data.get(CSRF_KEY).and_then(|v| v.as_str()).map(Arc::from);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                record.id,
                Entry {
                    stamp,
                    record,
                    user,
                    signed_in,
                    csrf_token,
                },
            );
        }
    }

    fn forget(&self, id: &Id) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(id);
        }
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
        if let Some(stamp) = stamp
            && let Some((record, user)) = self.cached(id, stamp)
        {
            if let Some(user) = user {
                crate::db::sessions::hand_over_user(User::clone(&user));
            }
            return Ok(Some(Record::clone(&record)));
        }
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
