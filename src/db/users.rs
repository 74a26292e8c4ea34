//! Queries on `users`.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::users;
use super::{Conn, DbError, now_ts, on_backend};
use crate::domain::user_list::search_key;
use crate::domain::{Email, ListQuery, Role, SortKey, Status, User, Username};

/// A `users` row as stored; [`User`] is what leaves this module.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    role: String,
    status: String,
    password_hash: Option<String>,
    session_version: i64,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;

    fn try_from(r: UserRow) -> Result<Self, DbError> {
        let corrupt = |detail: String| DbError::Corrupt {
            table: "users",
            detail,
        };
        Ok(User {
            id: r.id,
            username: r.username,
            email: r.email,
            display_name: r.display_name,
            role: r.role.parse::<Role>().map_err(corrupt)?,
            status: r.status.parse::<Status>().map_err(corrupt)?,
            password_hash: r.password_hash,
            session_version: r.session_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
            deleted_at: r.deleted_at,
        })
    }
}

pub fn find_by_id(conn: &mut Conn, id: i64) -> Result<Option<User>, DbError> {
    // `.load` on a unique key rather than `.first`: diesel does not cache statements with a
    // LIMIT bind, and re-preparing cost more than the lookup itself (measured 16 µs vs 4 µs).
    users::table
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .load(conn)?
        .pop()
        .map(User::try_from)
        .transpose()
}

/// Looks a user up by username or email, case-insensitively (`key` is lower-cased).
/// Usernames cannot contain `@`, so the two never collide.
pub fn find_by_login(conn: &mut Conn, key: &str) -> Result<Option<User>, DbError> {
    let filter = users::username_key.eq(key).or(users::email_key.eq(key));
    users::table
        .filter(filter)
        .select(UserRow::as_select())
        .load(conn)?
        .pop()
        .map(User::try_from)
        .transpose()
}

pub fn count(conn: &mut Conn) -> Result<i64, DbError> {
    Ok(users::table.count().get_result(conn)?)
}

/// Whether any user row exists: one index probe, where [`count`] reads the whole table
/// (10 ms at 100k users on a cold start).
pub fn any(conn: &mut Conn) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)?)
}

/// A user to create.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub username: &'a Username,
    pub email: Option<&'a Email>,
    pub display_name: Option<&'a str>,
    pub role: Role,
    pub status: Status,
    pub password_hash: Option<&'a str>,
    pub created_by: Option<i64>,
}

pub fn insert(conn: &mut Conn, new: &NewUser<'_>) -> Result<User, DbError> {
    let now = now_ts();
    let values = (
        users::username.eq(new.username.as_str()),
        users::username_key.eq(new.username.key()),
        users::email.eq(new.email.map(Email::as_str)),
        users::email_key.eq(new.email.map(Email::key)),
        users::display_name.eq(new.display_name),
        users::search_key.eq(search_key(
            new.username.as_str(),
            new.email.map(Email::as_str),
            new.display_name,
        )),
        users::role.eq(new.role.as_str()),
        users::status.eq(new.status.as_str()),
        users::password_hash.eq(new.password_hash),
        users::session_version.eq(1_i64),
        users::created_at.eq(now),
        users::updated_at.eq(now),
        users::created_by.eq(new.created_by),
    );
    // `RETURNING` a `Selectable` works only on a concrete backend, not through the enum.
    let row: UserRow = on_backend!(conn, |c| diesel::insert_into(users::table)
        .values(values)
        .returning(UserRow::as_returning())
        .get_result(c))?;
    User::try_from(row)
}

/// Stores a new password hash and ends every session of the user (version bump).
pub fn set_password(conn: &mut Conn, id: i64, hash: &str) -> Result<(), DbError> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::password_hash.eq(hash),
            users::session_version.eq(users::session_version + 1_i64),
            users::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a successful sign-in; `rehash` replaces a hash made with old parameters
/// (this does not end sessions: the password itself did not change).
pub fn record_login(conn: &mut Conn, id: i64, rehash: Option<&str>) -> Result<(), DbError> {
    let target = users::table.filter(users::id.eq(id));
    match rehash {
        Some(hash) => diesel::update(target)
            .set((
                users::last_login_at.eq(now_ts()),
                users::password_hash.eq(hash),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set(users::last_login_at.eq(now_ts()))
            .execute(conn)?,
    };
    Ok(())
}

/// Active, not deleted admins other than `except` (read inside the locked transaction).
pub fn count_other_active_admins(conn: &mut Conn, except: i64) -> Result<i64, DbError> {
    Ok(users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::status.eq(Status::Active.as_str()))
        .filter(users::deleted_at.is_null())
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)?)
}

/// Writes role, status and the soft-delete mark; `end_sessions` bumps `session_version`.
pub fn set_standing(
    conn: &mut Conn,
    id: i64,
    role: Role,
    status: Status,
    deleted_at: Option<i64>,
    end_sessions: bool,
) -> Result<(), DbError> {
    let bump: i64 = if end_sessions { 1 } else { 0 };
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::role.eq(role.as_str()),
            users::status.eq(status.as_str()),
            users::deleted_at.eq(deleted_at),
            users::session_version.eq(users::session_version + bump),
            users::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes the editable profile fields, and the search key made of them.
pub fn set_profile(
    conn: &mut Conn,
    id: i64,
    username: &Username,
    email: Option<&Email>,
    display_name: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::username.eq(username.as_str()),
            users::username_key.eq(username.key()),
            users::email.eq(email.map(Email::as_str)),
            users::email_key.eq(email.map(Email::key)),
            users::display_name.eq(display_name),
            users::search_key.eq(search_key(
                username.as_str(),
                email.map(Email::as_str),
                display_name,
            )),
            users::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether another account already uses this username or email (case-insensitively).
pub fn taken(
    conn: &mut Conn,
    except: Option<i64>,
    username_key: &str,
    email_key: Option<&str>,
) -> Result<(bool, bool), DbError> {
    let except = except.unwrap_or(-1);
    let name: i64 = users::table
        .filter(users::username_key.eq(username_key))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)?;
    let email: i64 = match email_key {
        Some(e) => users::table
            .filter(users::email_key.eq(e))
            .filter(users::id.ne(except))
            .count()
            .get_result(conn)?,
        None => 0,
    };
    Ok((name > 0, email > 0))
}

/// Removes the row and everything it owns (sessions and API keys cascade).
pub fn purge(conn: &mut Conn, id: i64) -> Result<(), DbError> {
    diesel::delete(users::table.filter(users::id.eq(id))).execute(conn)?;
    Ok(())
}

/// `COALESCE(last_login_at, 0)` written out literally: it must match the expression of the
/// `users_last_login_at` index to use it, and a bound `0` does not.
fn last_login_key() -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
    diesel::dsl::sql::<diesel::sql_types::BigInt>("COALESCE(users.last_login_at, 0)")
}

/// `%text%` for `LIKE … ESCAPE '\'`: the text's own `%`, `_` and `\` match literally.
pub(super) fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Up to `limit` users in the requested order, after the query's cursor.
pub fn list(conn: &mut Conn, q: &ListQuery, limit: i64) -> Result<Vec<User>, DbError> {
    let mut query = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(search) = &q.search {
        query = query.filter(super::user_search::filter(conn, search)?);
    }
    if let Some(r) = q.role {
        query = query.filter(users::role.eq(r.as_str()));
    }
    if q.deleted {
        query = query.filter(users::deleted_at.is_not_null());
    } else {
        query = query.filter(users::deleted_at.is_null());
        if let Some(s) = q.status {
            query = query.filter(users::status.eq(s.as_str()));
        }
    }
    if let Some(g) = q.group {
        use super::schema::group_members as m;
        query = query.filter(diesel::dsl::exists(
            m::table
                .filter(m::user_id.eq(users::id))
                .filter(m::group_id.eq(g)),
        ));
    }
    let last_login = last_login_key();
    match (q.sort, q.descending) {
        // username_key is unique, so it needs no id tie-breaker; with one, SQLite sorted every
        // row instead of walking the unique index.
        (SortKey::Username, false) => query = query.order(users::username_key.asc()),
        (SortKey::Username, true) => query = query.order(users::username_key.desc()),
        (SortKey::Created, false) => {
            query = query.order((users::created_at.asc(), users::id.asc()))
        }
        (SortKey::Created, true) => {
            query = query.order((users::created_at.desc(), users::id.desc()))
        }
        (SortKey::LastLogin, false) => query = query.order((last_login.asc(), users::id.asc())),
        (SortKey::LastLogin, true) => query = query.order((last_login.desc(), users::id.desc())),
    }
    if let Some((value, id)) = &q.after {
        let id = *id;
        match q.sort {
            SortKey::Username => {
                let v = value.clone();
                query = if q.descending {
                    query.filter(users::username_key.lt(v))
                } else {
                    query.filter(users::username_key.gt(v))
                };
            }
            SortKey::Created | SortKey::LastLogin => {
                let v: i64 = value.parse().unwrap_or(0);
                // `key <= v AND (key < v OR id < last)` rather than `key < v OR (key = v AND …)`:
                // the first conjunct is an index range, the plain OR is a scan from the start.
                query = match (q.sort, q.descending) {
                    (SortKey::Created, true) => query
                        .filter(users::created_at.le(v))
                        .filter(users::created_at.lt(v).or(users::id.lt(id))),
                    (SortKey::Created, _) => query
                        .filter(users::created_at.ge(v))
                        .filter(users::created_at.gt(v).or(users::id.gt(id))),
                    (_, true) => query
                        .filter(last_login_key().le(v))
                        .filter(last_login_key().lt(v).or(users::id.lt(id))),
                    (_, false) => query
                        .filter(last_login_key().ge(v))
                        .filter(last_login_key().gt(v).or(users::id.gt(id))),
                };
            }
        }
    }
    query
        .limit(limit)
        .load(conn)?
        .into_iter()
        .map(User::try_from)
        .collect()
}

/// Users waiting for approval, counted up to `cap` (the admin navigation badge, on every
/// admin page). Reads at most `cap` entries of the status index however many accounts
/// wait: an exact count read every pending row (9k index entries, ~1 ms, at 100k users
/// with 10 % pending). Deleted accounts are always `disabled` (see
/// `domain::policy::standing_after`), so no `deleted_at` check is needed.
pub fn count_pending(conn: &mut Conn, cap: i64) -> Result<i64, DbError> {
    let ids: Vec<i64> = users::table
        .filter(users::status.eq(Status::Pending.as_str()))
        .select(users::id)
        .limit(cap)
        .load(conn)?;
    Ok(i64::try_from(ids.len()).unwrap_or(cap))
}

/// Ends every session of the user (linking or unlinking an identity, CLI recovery).
pub fn bump_session_version(conn: &mut Conn, id: i64) -> Result<i64, DbError> {
    let v: Vec<i64> = diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::session_version.eq(users::session_version + 1_i64),
            users::updated_at.eq(now_ts()),
        ))
        .returning(users::session_version)
        .get_results(conn)?;
    v.into_iter()
        .next()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

/// Every account, deleted ones too, by username (the recovery CLI's `status`).
pub fn all(conn: &mut Conn) -> Result<Vec<User>, DbError> {
    users::table
        .order(users::username_key)
        .select(UserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(User::try_from)
        .collect()
}

/// Ends every session of every user (the recovery CLI's `wipe-sso`). Returns how many
/// accounts there are.
pub fn bump_all_session_versions(conn: &mut Conn) -> Result<usize, DbError> {
    Ok(diesel::update(users::table)
        .set((
            users::session_version.eq(users::session_version + 1_i64),
            users::updated_at.eq(now_ts()),
        ))
        .execute(conn)?)
}

/// The first free username among `base`, `base-2`, `base-3`… (case-insensitively).
pub fn free_username(conn: &mut Conn, base: &Username) -> Result<Option<Username>, DbError> {
    for n in 1..=50 {
        let candidate = if n == 1 {
            base.as_str().to_owned()
        } else {
            let suffix = format!("-{n}");
            let keep = Username::MAX.saturating_sub(suffix.len());
            format!(
                "{}{suffix}",
                base.as_str().chars().take(keep).collect::<String>()
            )
        };
        let Ok(name) = Username::parse(&candidate) else {
            continue;
        };
        if name_reserved(conn, &name.key())? {
            continue;
        }
        let used: i64 = users::table
            .filter(users::username_key.eq(name.key()))
            .count()
            .get_result(conn)?;
        if used == 0 {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Whether any account (deleted ones too) has this email.
pub fn email_in_use(conn: &mut Conn, email_key: &str) -> Result<bool, DbError> {
    let n: i64 = users::table
        .filter(users::email_key.eq(email_key))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Whether a username (its lowercase key) is reserved: "admin" while the break-glass admin
/// (`HALLPASS_ADMIN_KEY`) exists.
pub fn name_reserved(conn: &mut Conn, username_key: &str) -> Result<bool, DbError> {
    Ok(
        username_key == crate::env_auth::BREAK_GLASS_USERNAME
            && super::settings::break_glass(conn)?,
    )
}

/// Ids of the accounts (not deleted) whose lower-cased usernames are in `keys`, by key.
pub fn ids_by_key(conn: &mut Conn, keys: &[String]) -> Result<HashMap<String, i64>, DbError> {
    Ok(users::table
        .filter(users::username_key.eq_any(keys))
        .filter(users::deleted_at.is_null())
        .select((users::username_key, users::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect())
}

/// Usernames of the accounts `ids`, by id.
pub fn usernames(conn: &mut Conn, ids: &[i64]) -> Result<HashMap<i64, String>, DbError> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::username))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}
