//! Queries on `invites` and `invite_groups`. An invite is found by the HMAC of its token
//! (a unique index), as API keys are; the token itself is never stored.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{groups, invite_groups, invites, users};
use super::{Conn, DbError, now_ts};
use crate::domain::Role;
use crate::domain::invite::{Invite, InviteGroup};

type Row = (
    i64,
    Option<String>,
    Option<String>,
    String,
    i32,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: (
    invites::id,
    invites::email,
    invites::username,
    invites::role,
    invites::needs_approval,
    invites::created_by,
    invites::created_at,
    invites::expires_at,
    invites::used_at,
    invites::used_by,
    invites::revoked_at,
) = (
    invites::id,
    invites::email,
    invites::username,
    invites::role,
    invites::needs_approval,
    invites::created_by,
    invites::created_at,
    invites::expires_at,
    invites::used_at,
    invites::used_by,
    invites::revoked_at,
);

/// An invite to store. No `Debug`: it holds the token's HMAC.
pub struct NewRow<'a> {
    pub token_hmac: &'a str,
    pub email: Option<&'a str>,
    pub username: Option<&'a str>,
    pub role: Role,
    pub needs_approval: bool,
    pub created_by: Option<i64>,
    pub expires_at: i64,
    pub groups: &'a [i64],
}

/// Stores an invite and its groups; returns its id.
pub fn insert(conn: &mut Conn, new: &NewRow<'_>) -> Result<i64, DbError> {
    let id: i64 = diesel::insert_into(invites::table)
        .values((
            invites::token_hmac.eq(new.token_hmac),
            invites::email.eq(new.email),
            invites::username.eq(new.username),
            invites::role.eq(new.role.as_str()),
            invites::needs_approval.eq(i32::from(new.needs_approval)),
            invites::created_by.eq(new.created_by),
            invites::created_at.eq(now_ts()),
            invites::expires_at.eq(new.expires_at),
        ))
        .returning(invites::id)
        .get_result(conn)?;
    for g in new.groups {
        diesel::insert_into(invite_groups::table)
            .values((
                invite_groups::invite_id.eq(id),
                invite_groups::group_id.eq(g),
            ))
            .execute(conn)?;
    }
    Ok(id)
}

/// The newest invites first, at most `limit`.
pub fn list(conn: &mut Conn, limit: i64) -> Result<Vec<Invite>, DbError> {
    let rows: Vec<Row> = invites::table
        .select(COLUMNS)
        .order(invites::id.desc())
        .limit(limit)
        .load(conn)?;
    complete(conn, rows)
}

pub fn find(conn: &mut Conn, id: i64) -> Result<Option<Invite>, DbError> {
    let rows: Vec<Row> = invites::table
        .filter(invites::id.eq(id))
        .select(COLUMNS)
        .load(conn)?;
    Ok(complete(conn, rows)?.pop())
}

/// The invite whose token has this HMAC.
pub fn find_by_hmac(conn: &mut Conn, token_hmac: &str) -> Result<Option<Invite>, DbError> {
    let rows: Vec<Row> = invites::table
        .filter(invites::token_hmac.eq(token_hmac))
        .select(COLUMNS)
        .load(conn)?;
    Ok(complete(conn, rows)?.pop())
}

/// Marks an open invite used by `user_id`; `false` when it was not open any more (used or
/// revoked in the meantime), so a caller can never use one twice even without the lock.
pub fn mark_used(conn: &mut Conn, id: i64, user_id: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        invites::table
            .filter(invites::id.eq(id))
            .filter(invites::used_at.is_null())
            .filter(invites::revoked_at.is_null()),
    )
    .set((invites::used_at.eq(now_ts()), invites::used_by.eq(user_id)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revokes an invite that is neither used nor revoked; `false` otherwise.
pub fn revoke(conn: &mut Conn, id: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        invites::table
            .filter(invites::id.eq(id))
            .filter(invites::used_at.is_null())
            .filter(invites::revoked_at.is_null()),
    )
    .set(invites::revoked_at.eq(now_ts()))
    .execute(conn)?;
    Ok(n == 1)
}

/// Rows with their group names and the usernames they point at: three queries whatever
/// the number of rows.
fn complete(conn: &mut Conn, rows: Vec<Row>) -> Result<Vec<Invite>, DbError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut by_invite: HashMap<i64, Vec<InviteGroup>> = HashMap::new();
    let named: Vec<(i64, i64, String)> = invite_groups::table
        .inner_join(groups::table)
        .filter(invite_groups::invite_id.eq_any(&ids))
        .select((invite_groups::invite_id, groups::id, groups::name))
        .order(groups::name_key.asc())
        .load(conn)?;
    for (invite, id, name) in named {
        by_invite
            .entry(invite)
            .or_default()
            .push(InviteGroup { id, name });
    }
    let mut people: Vec<i64> = rows.iter().flat_map(|r| [r.5, r.9]).flatten().collect();
    people.sort_unstable();
    people.dedup();
    let names: HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&people))
        .select((users::id, users::username))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    rows.into_iter()
        .map(|r| {
            let role = r.3.parse::<Role>().map_err(|detail| DbError::Corrupt {
                table: "invites",
                detail,
            })?;
            Ok(Invite {
                id: r.0,
                email: r.1,
                username: r.2,
                role,
                needs_approval: r.4 != 0,
                groups: by_invite.remove(&r.0).unwrap_or_default(),
                created_by: r.5.and_then(|u| names.get(&u).cloned()),
                created_at: r.6,
                expires_at: r.7,
                used_at: r.8,
                used_by: r.9.and_then(|u| names.get(&u).cloned()),
                used_by_id: r.9,
                revoked_at: r.10,
            })
        })
        .collect()
}
