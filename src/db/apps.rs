//! Queries on `apps`, `app_groups` and `app_users`: the rules forward-auth applies. They are
//! read all at once into a [`crate::domain::apps::AppTable`]; writes replace a whole app.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{app_groups, app_users, apps};
use super::{Conn, DbError, now_ts};
use crate::domain::Role;
use crate::domain::apps::{Access, AccessKind, App, AppSource, HostPattern, PathPrefix};

#[derive(Queryable, Selectable)]
#[diesel(table_name = apps)]
struct AppRow {
    id: i64,
    name: String,
    url: Option<String>,
    icon: Option<String>,
    hosts: String,
    paths: String,
    access: String,
    roles: String,
    viewers_read_only: i32,
    source: String,
}

/// An app to store (everything but its id).
pub struct AppWrite<'a> {
    pub name: &'a str,
    pub url: Option<&'a str>,
    pub icon: Option<&'a str>,
    pub hosts: &'a [HostPattern],
    pub paths: &'a [PathPrefix],
    pub access: &'a Access,
    pub viewers_read_only: bool,
    pub source: AppSource,
}

fn corrupt(detail: String) -> DbError {
    DbError::Corrupt {
        table: "apps",
        detail,
    }
}

fn lines<T>(text: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, DbError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse(l).map_err(corrupt))
        .collect()
}

/// Every app with its allowed groups and users, by id. Three queries whatever the number of
/// apps.
pub fn load_all(conn: &mut Conn) -> Result<Vec<App>, DbError> {
    let rows: Vec<AppRow> = apps::table
        .select(AppRow::as_select())
        .order(apps::id.asc())
        .load(conn)?;
    let mut groups: HashMap<i64, Vec<i64>> = HashMap::new();
    for (app, group) in app_groups::table
        .select((app_groups::app_id, app_groups::group_id))
        .order((app_groups::app_id, app_groups::group_id))
        .load::<(i64, i64)>(conn)?
    {
        groups.entry(app).or_default().push(group);
    }
    let mut users: HashMap<i64, Vec<i64>> = HashMap::new();
    for (app, user) in app_users::table
        .select((app_users::app_id, app_users::user_id))
        .order((app_users::app_id, app_users::user_id))
        .load::<(i64, i64)>(conn)?
    {
        users.entry(app).or_default().push(user);
    }
    rows.into_iter()
        .map(|r| {
            let id = r.id;
            into_app(
                r,
                groups.remove(&id).unwrap_or_default(),
                users.remove(&id).unwrap_or_default(),
            )
        })
        .collect()
}

fn into_app(r: AppRow, groups: Vec<i64>, users: Vec<i64>) -> Result<App, DbError> {
    let access = match r.access.parse::<AccessKind>().map_err(corrupt)? {
        AccessKind::Public => Access::Public,
        AccessKind::SignedIn => Access::SignedIn,
        AccessKind::Restricted => Access::Restricted {
            roles: r
                .roles
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<Role>().map_err(corrupt))
                .collect::<Result<_, _>>()?,
            groups,
            users,
        },
    };
    Ok(App {
        id: r.id,
        name: r.name,
        url: r.url,
        icon: r.icon,
        hosts: lines(&r.hosts, HostPattern::parse)?,
        paths: lines(&r.paths, PathPrefix::parse)?,
        access,
        viewers_read_only: r.viewers_read_only != 0,
        source: r.source.parse().map_err(corrupt)?,
    })
}

fn joined<T: ToString>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// Stores a new app; `Err` with a unique violation when the name is taken.
pub fn insert(conn: &mut Conn, app: &AppWrite<'_>) -> Result<i64, DbError> {
    let now = now_ts();
    let id = diesel::insert_into(apps::table)
        .values((
            columns(app),
            apps::source.eq(app.source.as_str()),
            apps::created_at.eq(now),
        ))
        .returning(apps::id)
        .get_result(conn)?;
    write_lists(conn, id, app.access)?;
    Ok(id)
}

/// Replaces app `id` with `app`; `false` when there is no such app.
pub fn update(conn: &mut Conn, id: i64, app: &AppWrite<'_>) -> Result<bool, DbError> {
    let n = diesel::update(apps::table.find(id))
        .set(columns(app))
        .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::delete(app_groups::table.filter(app_groups::app_id.eq(id))).execute(conn)?;
    diesel::delete(app_users::table.filter(app_users::app_id.eq(id))).execute(conn)?;
    write_lists(conn, id, app.access)?;
    Ok(true)
}

/// Deletes app `id` (its lists go with it); `false` when there is no such app.
pub fn delete(conn: &mut Conn, id: i64) -> Result<bool, DbError> {
    Ok(diesel::delete(apps::table.find(id)).execute(conn)? > 0)
}

type Columns<'a> = (
    diesel::dsl::Eq<apps::name, &'a str>,
    diesel::dsl::Eq<apps::name_key, String>,
    diesel::dsl::Eq<apps::url, Option<&'a str>>,
    diesel::dsl::Eq<apps::icon, Option<&'a str>>,
    diesel::dsl::Eq<apps::hosts, String>,
    diesel::dsl::Eq<apps::paths, String>,
    diesel::dsl::Eq<apps::access, &'static str>,
    diesel::dsl::Eq<apps::roles, String>,
    diesel::dsl::Eq<apps::viewers_read_only, i32>,
    diesel::dsl::Eq<apps::updated_at, i64>,
);

fn columns<'a>(app: &AppWrite<'a>) -> Columns<'a> {
    let roles = match app.access {
        Access::Restricted { roles, .. } => roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    (
        apps::name.eq(app.name),
        apps::name_key.eq(app.name.to_lowercase()),
        apps::url.eq(app.url),
        apps::icon.eq(app.icon),
        apps::hosts.eq(joined(app.hosts, "\n")),
        apps::paths.eq(joined(app.paths, "\n")),
        apps::access.eq(app.access.kind().as_str()),
        apps::roles.eq(roles),
        apps::viewers_read_only.eq(i32::from(app.viewers_read_only)),
        apps::updated_at.eq(now_ts()),
    )
}

fn write_lists(conn: &mut Conn, id: i64, access: &Access) -> Result<(), DbError> {
    let Access::Restricted { groups, users, .. } = access else {
        return Ok(());
    };
    for g in groups {
        diesel::insert_into(app_groups::table)
            .values((app_groups::app_id.eq(id), app_groups::group_id.eq(g)))
            .execute(conn)?;
    }
    for u in users {
        diesel::insert_into(app_users::table)
            .values((app_users::app_id.eq(id), app_users::user_id.eq(u)))
            .execute(conn)?;
    }
    Ok(())
}

/// Ids of apps from the configuration file, by lower-cased name.
pub fn file_apps(conn: &mut Conn) -> Result<HashMap<String, i64>, DbError> {
    Ok(apps::table
        .filter(apps::source.eq(AppSource::File.as_str()))
        .select((apps::name_key, apps::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect())
}

/// App `id` with its lists (`None`: no such app).
pub fn find(conn: &mut Conn, id: i64) -> Result<Option<App>, DbError> {
    let Some(row) = apps::table
        .filter(apps::id.eq(id))
        .select(AppRow::as_select())
        .load(conn)?
        .pop()
    else {
        return Ok(None);
    };
    let groups = app_groups::table
        .filter(app_groups::app_id.eq(id))
        .select(app_groups::group_id)
        .order(app_groups::group_id)
        .load(conn)?;
    let users = app_users::table
        .filter(app_users::app_id.eq(id))
        .select(app_users::user_id)
        .order(app_users::user_id)
        .load(conn)?;
    into_app(row, groups, users).map(Some)
}

/// The app that holds the name `key` (lower case): its id, name as written and source.
pub fn by_name_key(
    conn: &mut Conn,
    key: &str,
) -> Result<Option<(i64, String, AppSource)>, DbError> {
    let Some((id, name, source)) = apps::table
        .filter(apps::name_key.eq(key))
        .select((apps::id, apps::name, apps::source))
        .load::<(i64, String, String)>(conn)?
        .pop()
    else {
        return Ok(None);
    };
    Ok(Some((id, name, source.parse().map_err(corrupt)?)))
}
