//! Queries on `passkeys`: an account's passkeys (the credential as webauthn-rs serialises it,
//! opaque here), found by account or by credential id.

use diesel::prelude::*;

use super::schema::passkeys;
use super::{Conn, DbError, now_ts};

/// A stored passkey.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub credential_id: String,
    pub user_handle: String,
    /// The serialised credential (public key, counter, flags).
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

type Columns = (
    passkeys::id,
    passkeys::user_id,
    passkeys::name,
    passkeys::credential_id,
    passkeys::user_handle,
    passkeys::passkey,
    passkeys::created_at,
    passkeys::last_used_at,
);
const COLUMNS: Columns = (
    passkeys::id,
    passkeys::user_id,
    passkeys::name,
    passkeys::credential_id,
    passkeys::user_handle,
    passkeys::passkey,
    passkeys::created_at,
    passkeys::last_used_at,
);
type Row = (i64, i64, String, String, String, String, i64, Option<i64>);

fn from_row(r: Row) -> PasskeyRow {
    PasskeyRow {
        id: r.0,
        user_id: r.1,
        name: r.2,
        credential_id: r.3,
        user_handle: r.4,
        passkey: r.5,
        created_at: r.6,
        last_used_at: r.7,
    }
}

/// The account's passkeys, oldest first.
pub fn for_user(conn: &mut Conn, user_id: i64) -> Result<Vec<PasskeyRow>, DbError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order(passkeys::id.asc())
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// How many passkeys the account has.
pub fn count(conn: &mut Conn, user_id: i64) -> Result<i64, DbError> {
    Ok(passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)?)
}

/// The passkey with this credential id (base64url), whoever's it is.
pub fn by_credential(conn: &mut Conn, credential_id: &str) -> Result<Option<PasskeyRow>, DbError> {
    Ok(passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(COLUMNS)
        .load::<Row>(conn)?
        .pop()
        .map(from_row))
}

/// A new passkey.
pub struct NewPasskey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub credential_id: &'a str,
    pub user_handle: &'a str,
    pub passkey: &'a str,
}

/// Stores a passkey; a credential id stored already is a unique violation (see
/// [`DbError::is_unique_violation`]).
pub fn insert(conn: &mut Conn, new: &NewPasskey<'_>) -> Result<(), DbError> {
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::user_id.eq(new.user_id),
            passkeys::name.eq(new.name),
            passkeys::credential_id.eq(new.credential_id),
            passkeys::user_handle.eq(new.user_handle),
            passkeys::passkey.eq(new.passkey),
            passkeys::created_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a use: the credential with its new counter, and the time. Only if the stored
/// credential is still `before`, so that two racing sign-ins with one counter value cannot
/// both be recorded (the loser is refused as a replay). `false`: it changed meanwhile.
pub fn record_use(conn: &mut Conn, id: i64, before: &str, after: &str) -> Result<bool, DbError> {
    let n = diesel::update(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::passkey.eq(before)),
    )
    .set((
        passkeys::passkey.eq(after),
        passkeys::last_used_at.eq(now_ts()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Renames the account's passkey `id`. `false`: no such passkey of this account.
pub fn rename(conn: &mut Conn, user_id: i64, id: i64, name: &str) -> Result<bool, DbError> {
    let n = diesel::update(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .set(passkeys::name.eq(name))
    .execute(conn)?;
    Ok(n == 1)
}

/// Removes every passkey of the account (an admin's reset); returns how many.
pub fn delete_all(conn: &mut Conn, user_id: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)?)
}

/// Removes the account's passkey `id`. `false`: no such passkey of this account.
pub fn delete(conn: &mut Conn, user_id: i64, id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(
        passkeys::table
            .filter(passkeys::id.eq(id))
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}
