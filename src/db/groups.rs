//! Queries on `groups` and `group_members`. Every write here changes what forward-auth
//! decides: callers bump `settings.rules_version` in the same transaction
//! (`super::settings::bump_rules_version`).

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{app_groups, apps, group_members, groups, users};
use super::{Conn, DbError, now_ts};
use crate::domain::Status;
use crate::domain::groups::{Group, GroupName, Member};

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

/// The memberships of `user_id` as (group id, source).
pub fn memberships_of(conn: &mut Conn, user_id: i64) -> Result<Vec<(i64, String)>, DbError> {
    Ok(group_members::table
        .filter(group_members::user_id.eq(user_id))
        .select((group_members::group_id, group_members::source))
        .order(group_members::group_id.asc())
        .load(conn)?)
}

/// The groups whose key is among `keys`, as (id, key).
pub fn with_keys(conn: &mut Conn, keys: &[String]) -> Result<Vec<(i64, String)>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(groups::table
        .filter(groups::name_key.eq_any(keys))
        .select((groups::id, groups::name_key))
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

type GroupRow = (i64, String, Option<String>, i64);

const GROUP_COLUMNS: (
    groups::id,
    groups::name,
    groups::description,
    groups::created_at,
) = (
    groups::id,
    groups::name,
    groups::description,
    groups::created_at,
);

fn group(row: GroupRow, members: i64) -> Group {
    Group {
        id: row.0,
        name: row.1,
        description: row.2,
        members,
        created_at: row.3,
    }
}

/// Every group by name, with its member count. Two queries whatever the number of groups.
pub fn list(conn: &mut Conn) -> Result<Vec<Group>, DbError> {
    let rows: Vec<GroupRow> = groups::table
        .select(GROUP_COLUMNS)
        .order(groups::name_key.asc())
        .load(conn)?;
    let counts: HashMap<i64, i64> = group_members::table
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let n = counts.get(&r.0).copied().unwrap_or(0);
            group(r, n)
        })
        .collect())
}

/// One group with its member count.
pub fn find(conn: &mut Conn, id: i64) -> Result<Option<Group>, DbError> {
    let Some(row) = groups::table
        .filter(groups::id.eq(id))
        .select(GROUP_COLUMNS)
        .load::<GroupRow>(conn)?
        .pop()
    else {
        return Ok(None);
    };
    let members: i64 = group_members::table
        .filter(group_members::group_id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(Some(group(row, members)))
}

/// The id of the group with this key, other than `except`.
pub fn key_taken(conn: &mut Conn, key: &str, except: Option<i64>) -> Result<bool, DbError> {
    let n: i64 = groups::table
        .filter(groups::name_key.eq(key))
        .filter(groups::id.ne(except.unwrap_or(-1)))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn insert(
    conn: &mut Conn,
    name: &GroupName,
    description: Option<&str>,
) -> Result<i64, DbError> {
    let now = now_ts();
    Ok(diesel::insert_into(groups::table)
        .values((
            groups::name.eq(name.as_str()),
            groups::name_key.eq(name.key()),
            groups::description.eq(description),
            groups::created_at.eq(now),
            groups::updated_at.eq(now),
        ))
        .returning(groups::id)
        .get_result(conn)?)
}

pub fn update(
    conn: &mut Conn,
    id: i64,
    name: &GroupName,
    description: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(groups::table.filter(groups::id.eq(id)))
        .set((
            groups::name.eq(name.as_str()),
            groups::name_key.eq(name.key()),
            groups::description.eq(description),
            groups::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes the group; its memberships and the apps' references to it cascade.
pub fn delete(conn: &mut Conn, id: i64) -> Result<(), DbError> {
    diesel::delete(groups::table.filter(groups::id.eq(id))).execute(conn)?;
    Ok(())
}

/// The names of the apps whose rules name group `id`, by name.
pub fn apps_naming(conn: &mut Conn, id: i64) -> Result<Vec<String>, DbError> {
    Ok(app_groups::table
        .inner_join(apps::table)
        .filter(app_groups::group_id.eq(id))
        .select(apps::name)
        .order(apps::name_key.asc())
        .load(conn)?)
}

type MemberRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    String,
    i64,
);

/// The members of group `id`, by username.
pub fn members(conn: &mut Conn, id: i64) -> Result<Vec<Member>, DbError> {
    let rows: Vec<MemberRow> = group_members::table
        .inner_join(users::table)
        .filter(group_members::group_id.eq(id))
        .select((
            users::id,
            users::username,
            users::display_name,
            users::status,
            users::deleted_at,
            group_members::source,
            group_members::created_at,
        ))
        .order(users::username_key.asc())
        .load(conn)?;
    rows.into_iter()
        .map(|r| {
            let status = r.3.parse::<Status>().map_err(|detail| DbError::Corrupt {
                table: "users",
                detail,
            })?;
            Ok(Member {
                user_id: r.0,
                username: r.1,
                display_name: r.2,
                status,
                deleted: r.4.is_some(),
                source: r.5,
                added_at: r.6,
            })
        })
        .collect()
}

/// The source of `user_id`'s membership in group `id`, if a member.
pub fn membership(conn: &mut Conn, id: i64, user_id: i64) -> Result<Option<String>, DbError> {
    Ok(group_members::table
        .filter(group_members::group_id.eq(id))
        .filter(group_members::user_id.eq(user_id))
        .select(group_members::source)
        .load::<String>(conn)?
        .pop())
}

pub fn add_member(conn: &mut Conn, id: i64, user_id: i64, source: &str) -> Result<(), DbError> {
    diesel::insert_into(group_members::table)
        .values((
            group_members::group_id.eq(id),
            group_members::user_id.eq(user_id),
            group_members::source.eq(source),
            group_members::created_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Changes who a membership belongs to (an admin taking over one a claim made).
pub fn set_source(conn: &mut Conn, id: i64, user_id: i64, source: &str) -> Result<(), DbError> {
    diesel::update(
        group_members::table
            .filter(group_members::group_id.eq(id))
            .filter(group_members::user_id.eq(user_id)),
    )
    .set(group_members::source.eq(source))
    .execute(conn)?;
    Ok(())
}

/// Ends a membership; `false` when there was none.
pub fn remove_member(conn: &mut Conn, id: i64, user_id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(
        group_members::table
            .filter(group_members::group_id.eq(id))
            .filter(group_members::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// The names of groups by id (for audit details).
pub fn names(conn: &mut Conn, ids: &[i64]) -> Result<HashMap<i64, String>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(groups::table
        .filter(groups::id.eq_any(ids))
        .select((groups::id, groups::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// Ends every membership `source` made; returns how many.
pub fn remove_by_source(conn: &mut Conn, source: &str) -> Result<usize, DbError> {
    Ok(
        diesel::delete(group_members::table.filter(group_members::source.eq(source)))
            .execute(conn)?,
    )
}
