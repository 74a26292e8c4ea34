//! Queries on `identities`: who a (provider, issuer, subject) is, and each user's links.

use diesel::prelude::*;

use super::schema::{identities, users};
use super::users::UserRow;
use super::{Conn, DbError, now_ts};
use crate::domain::User;
use crate::domain::sso::LinkedIdentity;

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

const COLUMNS: (
    identities::id,
    identities::user_id,
    identities::provider,
    identities::issuer,
    identities::subject,
    identities::email,
    identities::display_name,
    identities::created_at,
    identities::last_login_at,
) = (
    identities::id,
    identities::user_id,
    identities::provider,
    identities::issuer,
    identities::subject,
    identities::email,
    identities::display_name,
    identities::created_at,
    identities::last_login_at,
);

fn into_identity(r: Row) -> LinkedIdentity {
    LinkedIdentity {
        id: r.0,
        user_id: r.1,
        provider: r.2,
        issuer: r.3,
        subject: r.4,
        email: r.5,
        display_name: r.6,
        created_at: r.7,
        last_login_at: r.8,
    }
}

/// The identity and its user, matched on all three parts: a provider whose issuer changed
/// does not match links made under the old issuer.
pub fn find(
    conn: &mut Conn,
    provider: &str,
    issuer: &str,
    subject: &str,
) -> Result<Option<(LinkedIdentity, User)>, DbError> {
    identities::table
        .inner_join(users::table)
        .filter(identities::provider.eq(provider))
        .filter(identities::issuer.eq(issuer))
        .filter(identities::subject.eq(subject))
        .select((COLUMNS, UserRow::as_select()))
        .load::<(Row, UserRow)>(conn)?
        .pop()
        .map(|(i, u)| Ok((into_identity(i), User::try_from(u)?)))
        .transpose()
}

pub fn get(conn: &mut Conn, id: i64) -> Result<Option<LinkedIdentity>, DbError> {
    Ok(identities::table
        .filter(identities::id.eq(id))
        .select(COLUMNS)
        .load::<Row>(conn)?
        .pop()
        .map(into_identity))
}

pub struct NewIdentity<'a> {
    pub user_id: i64,
    pub provider: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

pub fn insert(conn: &mut Conn, new: &NewIdentity<'_>) -> Result<(), DbError> {
    diesel::insert_into(identities::table)
        .values((
            identities::user_id.eq(new.user_id),
            identities::provider.eq(new.provider),
            identities::issuer.eq(new.issuer),
            identities::subject.eq(new.subject),
            identities::email.eq(new.email),
            identities::display_name.eq(new.display_name),
            identities::created_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a sign-in through the identity and the claims it came with.
pub fn touch(
    conn: &mut Conn,
    id: i64,
    email: Option<&str>,
    display_name: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(identities::table.filter(identities::id.eq(id)))
        .set((
            identities::last_login_at.eq(Some(now_ts())),
            identities::email.eq(email),
            identities::display_name.eq(display_name),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut Conn, id: i64) -> Result<(), DbError> {
    diesel::delete(identities::table.filter(identities::id.eq(id))).execute(conn)?;
    Ok(())
}

/// Removes every link (the recovery CLI's `wipe-sso`). Returns how many there were.
pub fn delete_all(conn: &mut Conn) -> Result<usize, DbError> {
    Ok(diesel::delete(identities::table).execute(conn)?)
}

/// Removes every link except those of provider `keep` (the recovery CLI's `wipe-sso` keeps
/// forward-auth links). Returns how many were removed.
pub fn delete_all_but(conn: &mut Conn, keep: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(identities::table.filter(identities::provider.ne(keep))).execute(conn)?)
}

/// Every link, by account and provider (the recovery CLI's `status`).
pub fn all(conn: &mut Conn) -> Result<Vec<LinkedIdentity>, DbError> {
    Ok(identities::table
        .order((identities::user_id, identities::provider, identities::id))
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(into_identity)
        .collect())
}

pub fn for_user(conn: &mut Conn, user_id: i64) -> Result<Vec<LinkedIdentity>, DbError> {
    Ok(identities::table
        .filter(identities::user_id.eq(user_id))
        .order((identities::provider, identities::id))
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(into_identity)
        .collect())
}

/// The links of one provider with the username of each account, newest first.
pub fn for_provider(
    conn: &mut Conn,
    provider: &str,
) -> Result<Vec<(LinkedIdentity, String)>, DbError> {
    Ok(identities::table
        .inner_join(users::table)
        .filter(identities::provider.eq(provider))
        .order(identities::id.desc())
        .select((COLUMNS, users::username))
        .load::<(Row, String)>(conn)?
        .into_iter()
        .map(|(r, u)| (into_identity(r), u))
        .collect())
}

/// Every link of active, not deleted admins (to decide whether an admin could still sign in
/// by SSO).
pub fn of_active_admins(conn: &mut Conn) -> Result<Vec<LinkedIdentity>, DbError> {
    Ok(identities::table
        .inner_join(users::table)
        .filter(users::role.eq("admin"))
        .filter(users::status.eq("active"))
        .filter(users::deleted_at.is_null())
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(into_identity)
        .collect())
}

/// The providers each of these users has identities at (for the user table).
pub fn providers_of(
    conn: &mut Conn,
    user_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<String>>, DbError> {
    let query = identities::table
        .order((identities::user_id, identities::provider))
        .select((identities::user_id, identities::provider))
        .distinct();
    // One statement, prepared once, whatever the number of ids (see `db::id_list`).
    let rows: Vec<(i64, String)> = match conn {
        super::AnyConnection::Sqlite(c) => query
            .filter(super::id_list::in_ids(identities::user_id, user_ids))
            .load(c)?,
        super::AnyConnection::Postgresql(c) => {
            query.filter(identities::user_id.eq_any(user_ids)).load(c)?
        }
    };
    let mut out: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
    for (user, provider) in rows {
        out.entry(user).or_default().push(provider);
    }
    Ok(out)
}
