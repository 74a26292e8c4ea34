//! The user table's search on both databases, and the search key it reads.
//!
//! `users.search_key` holds the folded username, email and display name
//! ([`crate::domain::user_list::search_key`]), written by `db::users` with every write that
//! changes one of them. A search of three characters or more is a "contains" on that key:
//! SQLite answers it from the FTS5 trigram table `users_search` (kept in step by triggers),
//! PostgreSQL from a `pg_trgm` GIN index. A search of one or two characters is a range on
//! the username's index (no trigram to look up, and a "contains" would read every account).
//!
//! The predicates carry raw SQL fragments on purpose: diesel does not cache a statement
//! holding one, so PostgreSQL plans each search with its actual text (a cached, generic plan
//! cannot tell "matches three accounts" from "matches all of them") and SQLite's planner sees
//! the real bounds.

use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use super::schema::users;
use super::{AnyConnection, Conn, DbError};
use crate::domain::Search;
use crate::domain::user_list::search_key;

/// The backend type the boxed user query is built for.
type Backend = <Conn as diesel::Connection>::Backend;

/// A filter on `users`, ready for the boxed list query.
pub(super) type Filter = Box<dyn BoxableExpression<users::table, Backend, SqlType = Bool>>;

/// SQLite: above this many trigram matches the search is "dense" (see [`filter`]). Reading
/// 1,000 matches from the index costs about as much as walking the few thousand rows that
/// hold a page when at least 1 % of the accounts match.
const DENSE: usize = 1000;

/// The FTS5 lookup: ids of the accounts whose key contains the phrase bound after it.
const SQLITE_MATCH: &str = "SELECT rowid FROM users_search WHERE users_search MATCH ";

diesel::define_sql_function!(fn instr(haystack: Text, needle: Text) -> Integer);

#[derive(QueryableByName)]
struct Rowid {
    #[diesel(sql_type = BigInt)]
    rowid: i64,
}

/// The filter that answers `search`.
///
/// On SQLite a "contains" first reads its trigram matches, stopping after [`DENSE`]: a rare
/// text (the usual case) becomes `id IN (those ids)`, a handful of row look-ups; a
/// text most accounts contain (an email domain) is checked row by row with `instr` while
/// walking the page's sort index instead, which finds a page after a few hundred rows —
/// where the FTS route would first collect tens of thousands of ids and sort them.
/// PostgreSQL's planner makes that choice itself from its statistics.
pub(super) fn filter(conn: &mut Conn, search: &Search) -> Result<Filter, DbError> {
    let sqlite = matches!(conn, AnyConnection::Sqlite(_));
    Ok(match search {
        Search::Contains(text) if sqlite => {
            let ids: Vec<i64> = diesel::sql_query(format!("{SQLITE_MATCH} ? LIMIT ?"))
                .bind::<Text, _>(fts_phrase(text))
                .bind::<BigInt, _>(i64::try_from(DENSE + 1).unwrap_or(i64::MAX))
                .load::<Rowid>(conn)?
                .into_iter()
                .map(|r| r.rowid)
                .collect();
            if ids.len() > DENSE {
                Box::new(instr(users::search_key, text.clone()).gt(0))
            } else {
                Box::new(users::id.eq_any(ids))
            }
        }
        Search::Contains(text) => Box::new(
            sql::<Bool>("users.search_key LIKE ")
                .bind::<Text, _>(super::users::like_pattern(text))
                .sql(" ESCAPE '\\'"),
        ),
        Search::UsernamePrefix(text) => {
            // Bytewise bounds: usernames are ASCII, so every key starting with `text` sorts
            // between `text` and `text` + the last code point. SQLite's BINARY collation
            // compares bytes; on PostgreSQL the `~>=~` operators do, whatever the database's
            // collation (they use `users_username_prefix`).
            let (ge, lt) = if sqlite { (">=", "<") } else { ("~>=~", "~<~") };
            Box::new(
                sql::<Bool>(&format!("users.username_key {ge} "))
                    .bind::<Text, _>(text.clone())
                    .sql(&format!(" AND users.username_key {lt} "))
                    .bind::<Text, _>(format!("{text}{}", char::MAX)),
            )
        }
    })
}

/// `text` as one FTS5 phrase: inside double quotes everything is literal but the quote
/// itself, written twice.
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[derive(QueryableByName)]
struct SqlitePlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlanRow {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// The database's plan for finding the accounts `search` matches, one line per step — the
/// same look-up [`filter`] makes (on SQLite, the FTS5 query that finds the ids). For diagnosis, and for
/// the tests that check the indexes are used.
pub fn plan(conn: &mut Conn, search: &Search) -> Result<String, DbError> {
    let (sqlite, pg) = match search {
        Search::Contains(_) => (
            format!("{SQLITE_MATCH} $1"),
            "SELECT users.id FROM users WHERE users.search_key LIKE $1 ESCAPE '\\'".to_owned(),
        ),
        Search::UsernamePrefix(_) => (
            "SELECT users.id FROM users WHERE users.username_key >= $1 AND users.username_key < $2"
                .to_owned(),
            "SELECT users.id FROM users WHERE users.username_key ~>=~ $1 \
             AND users.username_key ~<~ $2"
                .to_owned(),
        ),
    };
    let (first, second) = match search {
        Search::Contains(text) => match conn {
            AnyConnection::Sqlite(_) => (fts_phrase(text), String::new()),
            AnyConnection::Postgresql(_) => (super::users::like_pattern(text), String::new()),
        },
        Search::UsernamePrefix(text) => (text.clone(), format!("{text}{}", char::MAX)),
    };
    let lines: Vec<String> = match conn {
        AnyConnection::Sqlite(c) => {
            let q = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sqlite}"));
            let rows: Vec<SqlitePlanRow> = if second.is_empty() {
                q.bind::<Text, _>(first).load(c)?
            } else {
                q.bind::<Text, _>(first).bind::<Text, _>(second).load(c)?
            };
            rows.into_iter().map(|r| r.detail).collect()
        }
        AnyConnection::Postgresql(c) => {
            let q = diesel::sql_query(format!("EXPLAIN {pg}"));
            let rows: Vec<PgPlanRow> = if second.is_empty() {
                q.bind::<Text, _>(first).load(c)?
            } else {
                q.bind::<Text, _>(first).bind::<Text, _>(second).load(c)?
            };
            rows.into_iter().map(|r| r.line).collect()
        }
    };
    Ok(lines.join("\n"))
}

#[derive(Queryable)]
struct Unfilled {
    id: i64,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
}

/// Writes the search key of the accounts that have none yet (those that existed when the
/// migration added the column: SQL cannot fold like Rust does). Found through the partial
/// index `users_search_unfilled`, so once done this reads nothing. Returns how many.
pub fn fill_search_keys(conn: &mut Conn) -> Result<usize, DbError> {
    let mut filled = 0;
    loop {
        // The literal `''` (not a bound value) lets SQLite match the partial index.
        let batch: Vec<Unfilled> = users::table
            .filter(sql::<Bool>("users.search_key = ''"))
            .select((
                users::id,
                users::username,
                users::email,
                users::display_name,
            ))
            .limit(500)
            .load(conn)?;
        if batch.is_empty() {
            return Ok(filled);
        }
        conn.transaction::<_, DbError, _>(|conn| {
            for u in &batch {
                let key = search_key(&u.username, u.email.as_deref(), u.display_name.as_deref());
                diesel::update(users::table.filter(users::id.eq(u.id)))
                    .set(users::search_key.eq(key))
                    .execute(conn)?;
            }
            Ok(())
        })?;
        filled += batch.len();
    }
}
