//! Queries on `groups` and `group_members`.

use diesel::prelude::*;

use super::schema::{group_members, groups};
use super::{Conn, DbError, now_ts};

/// The groups `user_id` is in, as (id, name), by name. One indexed query: forward-auth
/// asks it for every request it does not find cached.
pub fn of_user(conn: &mut Conn, user_id: i64) -> Result<Vec<(i64, String)>, DbError> {
    Ok(group_members::table
        .inner_join(groups::table)
        .filter(group_members::user_id.eq(user_id))
        .select((groups::id, groups::name))
        .order(groups::name_key.asc())
        .load(conn)?)
}

/// The id of the group named `name` (any case), creating it when missing.
pub fn ensure(conn: &mut Conn, name: &str) -> Result<i64, DbError> {
    let key = name.to_lowercase();
    let found = groups::table
        .filter(groups::name_key.eq(&key))
        .select(groups::id)
        .first::<i64>(conn)
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    let now = now_ts();
    Ok(diesel::insert_into(groups::table)
        .values((
            groups::name.eq(name),
            groups::name_key.eq(&key),
            groups::created_at.eq(now),
            groups::updated_at.eq(now),
        ))
        .returning(groups::id)
        .get_result(conn)?)
}
