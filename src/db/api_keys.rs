//! Queries on `api_keys`. Keys are found by the HMAC of the presented key (a unique index),
//! so checking a key is one indexed lookup and its owner's (see [`find_by_hmac`]); the key itself is never
//! stored, and the HMAC never leaves this module and the service that computes it.

use diesel::prelude::*;

use super::schema::{api_keys, users};
use super::users::UserRow;
use super::{Conn, DbError, now_ts};
use crate::domain::{ApiKey, User};

type Row = (i64, i64, String, String, i64, Option<i64>, Option<i64>);

const COLUMNS: (
    api_keys::id,
    api_keys::user_id,
    api_keys::name,
    api_keys::prefix,
    api_keys::created_at,
    api_keys::last_used_at,
    api_keys::expires_at,
) = (
    api_keys::id,
    api_keys::user_id,
    api_keys::name,
    api_keys::prefix,
    api_keys::created_at,
    api_keys::last_used_at,
    api_keys::expires_at,
);

fn into_key(r: Row) -> ApiKey {
    ApiKey {
        id: r.0,
        user_id: r.1,
        name: r.2,
        prefix: r.3,
        created_at: r.4,
        last_used_at: r.5,
        expires_at: r.6,
    }
}

/// A key to store: everything but the key itself. No `Debug`: it holds the HMAC.
pub struct NewRow<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hmac: &'a str,
    pub expires_at: Option<i64>,
}

pub fn insert(conn: &mut Conn, new: &NewRow<'_>) -> Result<ApiKey, DbError> {
    let row = diesel::insert_into(api_keys::table)
        .values((
            api_keys::user_id.eq(new.user_id),
            api_keys::name.eq(new.name),
            api_keys::prefix.eq(new.prefix),
            api_keys::key_hmac.eq(new.key_hmac),
            api_keys::created_at.eq(now_ts()),
            api_keys::expires_at.eq(new.expires_at),
        ))
        .returning(COLUMNS)
        .get_result::<Row>(conn)?;
    Ok(into_key(row))
}

/// Every key of a user, oldest first.
pub fn list_for_user(conn: &mut Conn, user_id: i64) -> Result<Vec<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::user_id.eq(user_id))
        .order(api_keys::id.asc())
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(into_key)
        .collect())
}

pub fn find(conn: &mut Conn, id: i64) -> Result<Option<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::id.eq(id))
        .select(COLUMNS)
        .load::<Row>(conn)?
        .pop()
        .map(into_key))
}

/// Deletes a key; `owner` limits it to that user's keys. Returns whether a row went.
pub fn delete(conn: &mut Conn, id: i64, owner: Option<i64>) -> Result<bool, DbError> {
    let n = match owner {
        Some(owner) => diesel::delete(
            api_keys::table
                .filter(api_keys::id.eq(id))
                .filter(api_keys::user_id.eq(owner)),
        )
        .execute(conn)?,
        None => diesel::delete(api_keys::table.filter(api_keys::id.eq(id))).execute(conn)?,
    };
    Ok(n > 0)
}

/// The key with this HMAC. SQLite's first statement of [`find_by_hmac`].
macro_rules! key_by_hmac {
    ($hmac:expr) => {
        api_keys::table
            .filter(api_keys::key_hmac.eq($hmac))
            .select(COLUMNS)
    };
}

/// The owner by id: SQLite's second statement of [`find_by_hmac`].
macro_rules! owner_by_id {
    ($id:expr) => {
        users::table
            .filter(users::id.eq($id))
            .select(UserRow::as_select())
    };
}

/// The key with this HMAC and its owner in one statement: PostgreSQL's [`find_by_hmac`].
macro_rules! key_with_owner {
    ($hmac:expr) => {
        api_keys::table
            .inner_join(users::table)
            .filter(api_keys::key_hmac.eq($hmac))
            .select((COLUMNS, UserRow::as_select()))
    };
}

/// The key with this HMAC and its owner, over the unique index, in one trip to the database
/// thread. `.load` rather than `.first`: see `users::find_by_id` (no LIMIT bind, cached
/// statement). As with the session load (`sessions::load_row`), SQLite gets two
/// single-table lookups by unique key — planned without statistics, where a join is planned
/// by cost and an `ANALYZE` of small tables makes it scan `users` for ever after — and
/// PostgreSQL, whose estimates follow the table's current size, one join.
pub fn find_by_hmac(conn: &mut Conn, key_hmac: &str) -> Result<Option<(ApiKey, User)>, DbError> {
    let found = match conn {
        super::AnyConnection::Sqlite(c) => {
            let Some(key) = key_by_hmac!(key_hmac).load::<Row>(c)?.pop() else {
                return Ok(None);
            };
            owner_by_id!(key.1)
                .load::<UserRow>(c)?
                .pop()
                .map(|owner| (key, owner))
        }
        super::AnyConnection::Postgresql(c) => {
            key_with_owner!(key_hmac).load::<(Row, UserRow)>(c)?.pop()
        }
    };
    found
        .map(|(k, u)| Ok((into_key(k), User::try_from(u)?)))
        .transpose()
}

/// The SQL of PostgreSQL's [`find_by_hmac`] (see `db::plans::explain_generic`).
pub(super) fn find_by_hmac_sql_pg() -> String {
    super::plans::pg_sql(&key_with_owner!(""))
}

/// The plans of the statements [`find_by_hmac`] sends (see `db::plans`).
pub(super) fn explain_find_by_hmac(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let hmac = "0".repeat(64);
    match conn {
        super::AnyConnection::Sqlite(c) => {
            let mut plan = super::plans::sqlite_plan(c, key_by_hmac!(&hmac))?;
            plan.extend(super::plans::sqlite_plan(c, owner_by_id!(1_i64))?);
            Ok(plan)
        }
        super::AnyConnection::Postgresql(c) => super::plans::pg_plan(c, key_with_owner!(&hmac)),
    }
}

/// Records a use at `now`, unless one was recorded within the last `every` seconds: a busy
/// script does not turn every request into a write, and racing requests write once.
pub fn touch(conn: &mut Conn, id: i64, now: i64, every: i64) -> Result<(), DbError> {
    diesel::update(
        api_keys::table.filter(api_keys::id.eq(id)).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.le(now - every)),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// How many API keys each of `user_ids` has (for the user table's "sign-in methods").
pub fn counts_of(
    conn: &mut Conn,
    user_ids: &[i64],
) -> Result<std::collections::HashMap<i64, i64>, DbError> {
    let query = api_keys::table
        .group_by(api_keys::user_id)
        .select((api_keys::user_id, diesel::dsl::count_star()));
    // One statement, prepared once, whatever the number of ids (see `db::id_list`).
    let rows: Vec<(i64, i64)> = match conn {
        super::AnyConnection::Sqlite(c) => query
            .filter(super::id_list::in_ids(api_keys::user_id, user_ids))
            .load(c)?,
        super::AnyConnection::Postgresql(c) => {
            query.filter(api_keys::user_id.eq_any(user_ids)).load(c)?
        }
    };
    Ok(rows.into_iter().collect())
}
