//! The tower-sessions store over the `sessions` table, on either backend.
//!
//! Rows are keyed by the SHA-256 of the cookie's session id, so a copy of the database
//! does not contain usable cookies. `user_id` is kept beside the JSON data so all sessions
//! of a user can be ended with one statement.

use async_trait::async_trait;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::schema::{sessions, users};
use super::users::UserRow;
use super::{Conn, DbError, DbPool, now_ts};
use crate::domain::User;

/// Session expiry is kept in unix *milliseconds*: lifetimes of a few seconds (and the
/// sliding idle timeout) must not lose up to a second to rounding.
pub(super) fn now_ms() -> i64 {
    millis(OffsetDateTime::now_utc())
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The key in the session data that names the signed-in user.
pub const USER_ID_KEY: &str = "user_id";

/// Keys the sign-in puts in the session data for the store to write into the row's own
/// columns (`ip`, `user_agent`, with `signed_in_at` and `last_seen_at` set to now). The
/// store takes them out of the data it stores: they are shown on "Your sessions", not read
/// on every request, so they stay out of the JSON each request loads.
pub const CLIENT_IP_KEY: &str = "_client_ip";
pub const USER_AGENT_KEY: &str = "_user_agent";

/// Longest user agent kept (browsers send 100–300 characters; the rest is noise).
const MAX_USER_AGENT: usize = 512;

tokio::task_local! {
    /// The signed-in user's row that [`DbSessionStore::load`] read with the session (a LEFT
    /// JOIN), handed to the identity check of the same request: one query per request, and
    /// no copy of the row through the session data. Task-local, so two requests with the same
    /// cookie each see their own; set only inside [`capturing_user`] (a load anywhere else
    /// keeps nothing), and gone when that scope ends, so nothing accumulates.
    static LOADED_USER: std::cell::Cell<Option<User>>;
}

/// Runs `f` (the identity check) with a slot for the user a session load brings along;
/// [`take_loaded_user`] inside `f` reads it.
pub async fn capturing_user<F: std::future::Future>(f: F) -> F::Output {
    LOADED_USER.scope(std::cell::Cell::new(None), f).await
}

/// The user row the session load of this scope brought along, if any (taken: a second call
/// returns `None`). `None` outside [`capturing_user`].
pub fn take_loaded_user() -> Option<User> {
    LOADED_USER.try_with(std::cell::Cell::take).ok().flatten()
}

/// Puts `user` in the slot of the enclosing [`capturing_user`] scope (a caching store hands
/// over the row it kept); outside such a scope it is dropped.
pub fn hand_over_user(user: User) {
    let _ = LOADED_USER.try_with(|slot| slot.set(Some(user)));
}

pub(super) fn key(id: &Id) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(id.to_string().as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

fn user_of(record: &Record) -> Option<i64> {
    // Only real rows: the break-glass admin (id 0) has no row to reference.
    record
        .data
        .get(USER_ID_KEY)
        .and_then(|v| v.as_i64())
        .filter(|id| *id > 0)
}

/// A tower-sessions store backed by the application's database pool.
#[derive(Debug, Clone)]
pub struct DbSessionStore {
    pool: DbPool,
    stale: std::sync::Arc<StaleCookies>,
}

impl DbSessionStore {
    pub fn new(pool: DbPool) -> Self {
        Self {
            pool,
            stale: std::sync::Arc::default(),
        }
    }
}

/// Cookies naming a session that is gone (expired, purged, signed out elsewhere) or never
/// existed. Normal events — the request is answered as anonymous and the cookie cleared — so
/// each is a debug line, with one summary a minute at most instead of a line per request.
#[derive(Debug, Default)]
struct StaleCookies {
    since_report: std::sync::atomic::AtomicU64,
    /// Unix seconds of the last summary.
    reported_at: std::sync::atomic::AtomicI64,
}

impl StaleCookies {
    fn record(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        tracing::debug!("session cookie names no live session: answered as anonymous");
        self.since_report.fetch_add(1, Relaxed);
        let now = now_ts();
        let last = self.reported_at.load(Relaxed);
        if now - last >= 60
            && self
                .reported_at
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            let n = self.since_report.swap(0, Relaxed);
            tracing::info!(
                requests = n,
                "requests with an unknown or expired session cookie since the last report (answered as anonymous, cookie cleared)"
            );
        }
    }
}

fn backend_err(e: DbError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// What a sign-in records about the client, bound for the row's own columns.
#[derive(Debug, Clone, Default)]
struct ClientMeta {
    ip: Option<String>,
    user_agent: Option<String>,
}

/// The data to store, and the client details when the record carries them (a sign-in).
fn encode(record: &Record) -> Result<(String, Option<ClientMeta>), session_store::Error> {
    let text = |k: &str| {
        record
            .data
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let meta = (record.data.contains_key(CLIENT_IP_KEY)
        || record.data.contains_key(USER_AGENT_KEY))
    .then(|| ClientMeta {
        ip: text(CLIENT_IP_KEY),
        user_agent: text(USER_AGENT_KEY).map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
    });
    let data = if meta.is_some() {
        let kept: std::collections::HashMap<&String, &serde_json::Value> = record
            .data
            .iter()
            .filter(|(k, _)| k.as_str() != CLIENT_IP_KEY && k.as_str() != USER_AGENT_KEY)
            .collect();
        serde_json::to_string(&kept)
    } else {
        serde_json::to_string(&record.data)
    };
    let data = data.map_err(|e| session_store::Error::Encode(e.to_string()))?;
    Ok((data, meta))
}

/// Writes a sign-in's client details into the row `key` (sign-in time and last seen: now).
fn write_meta(conn: &mut Conn, key: &str, meta: &ClientMeta) -> QueryResult<usize> {
    let now = now_ts();
    diesel::update(sessions::table.filter(sessions::id.eq(key)))
        .set((
            sessions::signed_in_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::ip.eq(meta.ip.as_deref()),
            sessions::user_agent.eq(meta.user_agent.as_deref()),
        ))
        .execute(conn)
}

/// Inserts or updates a record. Upserts differ per backend, so this is update-then-insert.
fn upsert(
    conn: &mut Conn,
    key: &str,
    user: Option<i64>,
    data: &str,
    expires: i64,
    meta: Option<&ClientMeta>,
) -> QueryResult<()> {
    let updated = diesel::update(sessions::table.filter(sessions::id.eq(key)))
        .set((
            sessions::user_id.eq(user),
            sessions::data.eq(data),
            sessions::expires_at.eq(expires),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(key),
                sessions::user_id.eq(user),
                sessions::data.eq(data),
                sessions::expires_at.eq(expires),
                sessions::created_at.eq(now_ts()),
            ))
            .execute(conn)?;
    }
    if let Some(meta) = meta {
        write_meta(conn, key, meta)?;
    }
    Ok(())
}

/// The live session row with this key: data, expiry, user id. SQLite's first statement of
/// [`load_row`].
macro_rules! session_by_key {
    ($k:expr, $now:expr) => {
        sessions::table
            .filter(sessions::id.eq($k))
            .filter(sessions::expires_at.gt($now))
            .select((sessions::data, sessions::expires_at, sessions::user_id))
    };
}

/// The user row by id: SQLite's second statement of [`load_row`].
macro_rules! user_by_id {
    ($id:expr) => {
        users::table
            .filter(users::id.eq($id))
            .select(UserRow::as_select())
    };
}

/// The live session row and its user in one statement: PostgreSQL's [`load_row`].
macro_rules! session_with_user {
    ($k:expr, $now:expr) => {
        sessions::table
            .left_join(users::table)
            .filter(sessions::id.eq($k))
            .filter(sessions::expires_at.gt($now))
            .select((
                sessions::data,
                sessions::expires_at,
                Option::<UserRow>::as_select(),
            ))
    };
}

type Loaded = (String, i64, Option<UserRow>);

/// The live session with key `k` and its user row. Runs on every request, in one trip to
/// the database thread. `.load` on the primary key, not `.first`: diesel re-prepares
/// statements that carry a LIMIT bind on every call.
///
/// The shape is chosen so the plan cannot depend on table statistics (see `db::plans`):
/// SQLite plans a join by cost, and after an `ANALYZE` of a nearly empty `sessions` it
/// scans both tables for ever after; a single-table equality on a primary key or unique
/// key is planned without looking at statistics at all, so on SQLite this is two such
/// lookups on the same connection. PostgreSQL scales its estimates with the table's current
/// size, so it keeps the LEFT JOIN (one statement, one network round trip).
fn load_row(conn: &mut Conn, k: &str, now: i64) -> Result<Option<Loaded>, DbError> {
    match conn {
        super::AnyConnection::Sqlite(c) => {
            let Some((data, expires, user_id)) = session_by_key!(k, now)
                .load::<(String, i64, Option<i64>)>(c)?
                .pop()
            else {
                return Ok(None);
            };
            let user = match user_id {
                Some(id) => user_by_id!(id).load::<UserRow>(c)?.pop(),
                None => None,
            };
            Ok(Some((data, expires, user)))
        }
        super::AnyConnection::Postgresql(c) => {
            Ok(session_with_user!(k, now).load::<Loaded>(c)?.pop())
        }
    }
}

/// The SQL of PostgreSQL's [`load_row`] (see `db::plans::explain_generic`).
pub(super) fn load_sql_pg() -> String {
    super::plans::pg_sql(&session_with_user!("", 0_i64))
}

/// The plans of the statements [`load_row`] sends (see `db::plans`).
pub(super) fn explain_load(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let (k, now) = ("0".repeat(64), now_ms());
    match conn {
        super::AnyConnection::Sqlite(c) => {
            let mut plan = super::plans::sqlite_plan(c, session_by_key!(&k, now))?;
            plan.extend(super::plans::sqlite_plan(c, user_by_id!(1_i64))?);
            Ok(plan)
        }
        super::AnyConnection::Postgresql(c) => {
            super::plans::pg_plan(c, session_with_user!(&k, now))
        }
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (data, meta) = encode(record)?;
        let user = user_of(record);
        let expires = millis(record.expiry_date);
        // Ids are 128 random bits; retry on the (theoretical) collision instead of overwriting.
        for _ in 0..4 {
            let k = key(&record.id);
            let (data, meta) = (data.clone(), meta.clone());
            let inserted = self
                .pool
                .run(move |conn| {
                    let now = now_ts();
                    let signed_in = meta.as_ref().map(|_| now);
                    let meta = meta.unwrap_or_default();
                    diesel::insert_into(sessions::table)
                        .values((
                            sessions::id.eq(&k),
                            sessions::user_id.eq(user),
                            sessions::data.eq(&data),
                            sessions::expires_at.eq(expires),
                            sessions::created_at.eq(now),
                            sessions::signed_in_at.eq(signed_in),
                            sessions::last_seen_at.eq(signed_in),
                            sessions::ip.eq(meta.ip),
                            sessions::user_agent.eq(meta.user_agent),
                        ))
                        .execute(conn)
                        .map_err(DbError::from)
                })
                .await;
            match inserted {
                Ok(_) => return Ok(()),
                Err(e) if e.is_unique_violation() => record.id = Id::default(),
                Err(e) => return Err(backend_err(e)),
            }
        }
        Err(session_store::Error::Backend(
            "could not allocate a session id".into(),
        ))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (data, meta) = encode(record)?;
        let user = user_of(record);
        let expires = millis(record.expiry_date);
        let k = key(&record.id);
        self.pool
            .run(move |conn| {
                upsert(conn, &k, user, &data, expires, meta.as_ref()).map_err(DbError::from)
            })
            .await
            .map_err(backend_err)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let k = key(id);
        let row = self
            .pool
            .run(move |conn| load_row(conn, &k, now_ms()))
            .await
            .map_err(backend_err)?;
        let Some((data, expires, user)) = row else {
            self.stale.record();
            return Ok(None);
        };
        let data: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        if let Some(user) = user {
            let user = User::try_from(user).map_err(backend_err)?;
            // Outside `capturing_user` there is no slot, and the row is simply dropped.
            let _ = LOADED_USER.try_with(|slot| slot.set(Some(user)));
        }
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires) * 1_000_000)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let k = key(id);
        self.pool
            .run(move |conn| delete_by_key(conn, &k))
            .await
            .map_err(backend_err)
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        self.pool
            .run(purge_expired)
            .await
            .map(|_| ())
            .map_err(backend_err)
    }
}

fn delete_by_key(conn: &mut Conn, k: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.filter(sessions::id.eq(k))).execute(conn)?;
    Ok(())
}

/// Deletes expired rows (and the single sign-on round trips that expired, which belong to
/// sessions too); returns how many sessions.
pub fn purge_expired(conn: &mut Conn) -> Result<usize, DbError> {
    super::oidc_flows::purge_expired(conn)?;
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now_ms()))).execute(conn)?)
}

/// Ends every stored session of a user (the version bump already makes them useless;
/// deleting the rows keeps the table honest).
pub fn delete_for_user(conn: &mut Conn, user_id: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

/// Ends every stored session (after `users::bump_all_session_versions`, for the same reason
/// as [`delete_for_user`]). Returns how many there were.
pub fn delete_all(conn: &mut Conn) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table).execute(conn)?)
}

/// Number of stored sessions (all, or of one user).
pub fn count(conn: &mut Conn, user_id: Option<i64>) -> Result<i64, DbError> {
    Ok(match user_id {
        Some(u) => sessions::table
            .filter(sessions::user_id.eq(u))
            .count()
            .get_result(conn)?,
        None => sessions::table.count().get_result(conn)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, Status, Username};

    async fn store_with_user()
    -> Result<(tempfile::TempDir, DbSessionStore, i64), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let pool = super::super::sqlite_for_tests(dir.path(), 1)?;
        let name = Username::parse("ann")?;
        let user = pool.run_blocking(|c| {
            super::super::users::insert(
                c,
                &super::super::users::NewUser {
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
        Ok((dir, DbSessionStore::new(pool), user.id))
    }

    /// The user row read with the session reaches the identity check of the same task, and
    /// only there: a load outside the scope keeps nothing, and concurrent scopes (two
    /// requests with the same cookie) each get their own copy.
    #[tokio::test]
    async fn the_loaded_user_is_handed_over_within_its_scope_only()
    -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store, user_id) = store_with_user().await?;
        let mut record = Record {
            id: Id::default(),
            data: [(USER_ID_KEY.to_owned(), serde_json::json!(user_id))].into(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await?;
        let id = record.id;

        assert!(store.load(&id).await?.is_some());
        assert!(take_loaded_user().is_none(), "no scope, no slot");

        let in_scope = || async {
            let loaded = store.load(&id).await.map(|r| r.is_some());
            (loaded, take_loaded_user().map(|u| u.id), take_loaded_user())
        };
        let (a, b) = tokio::join!(capturing_user(in_scope()), capturing_user(in_scope()));
        for (loaded, first, second) in [a, b] {
            assert!(matches!(loaded, Ok(true)));
            assert_eq!(first, Some(user_id));
            assert!(second.is_none(), "taken once");
        }
        // The record holds only the session's own data: the row is not copied into it.
        let saved = store.load(&id).await?.map(|r| r.data.len());
        assert_eq!(saved, Some(1));
        Ok(())
    }
}
