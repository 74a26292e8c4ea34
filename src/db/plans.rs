//! The query plans of the per-request lookups, so tests can hold them to their indexes.
//!
//! Why: an `ANALYZE` taken while `sessions` was nearly empty once made SQLite scan the whole
//! table for every session load (131 req/s instead of 40k): with statistics saying "one
//! row", a scan looks cheaper than an index, and SQLite keeps believing the statistics as
//! the table grows. The lookups are therefore written in shapes whose plan does not depend
//! on statistics (see `sessions::load` and `api_keys::find_by_hmac`), and
//! [`explain`] shows the plan of the exact statements they send — built by the same code,
//! with the same bind values — for the tests to check.

use diesel::backend::Backend as DieselBackend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Integer, Text};
use diesel::sqlite::Sqlite;

use super::{AnyConnection, Conn, DbError};

/// A lookup that runs on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotLookup {
    /// `DbSessionStore::load`: the session row by its key, and its user.
    SessionLoad,
    /// `api_keys::find_by_hmac`: the key by its HMAC, and its owner.
    ApiKeyByHmac,
}

/// The plan of every statement `lookup` sends, one line per plan node, statements in the
/// order they run (SQLite: `EXPLAIN QUERY PLAN`'s `detail` column; PostgreSQL: `EXPLAIN`'s
/// text). The bind values are made up but of the right types; the second statement of a
/// two-statement lookup is explained with an existing-looking id.
pub fn explain(conn: &mut Conn, lookup: HotLookup) -> Result<Vec<String>, DbError> {
    match lookup {
        HotLookup::SessionLoad => super::sessions::explain_load(conn),
        HotLookup::ApiKeyByHmac => super::api_keys::explain_find_by_hmac(conn),
    }
}

/// PostgreSQL only (`None` on SQLite): the *generic* plan of each statement `lookup` sends
/// — the plan a prepared statement that diesel keeps is switched to after a few runs,
/// chosen without looking at the bind values — through `PREPARE` and `EXPLAIN EXECUTE`
/// under `plan_cache_mode = force_generic_plan`, on this connection only.
pub fn explain_generic(conn: &mut Conn, lookup: HotLookup) -> Result<Option<Vec<String>>, DbError> {
    let (sql, args) = match (&mut *conn, lookup) {
        (AnyConnection::Sqlite(_), _) => return Ok(None),
        (AnyConnection::Postgresql(_), HotLookup::SessionLoad) => {
            (super::sessions::load_sql_pg(), "('k', 0)")
        }
        (AnyConnection::Postgresql(_), HotLookup::ApiKeyByHmac) => {
            (super::api_keys::find_by_hmac_sql_pg(), "('k')")
        }
    };
    let run = |conn: &mut Conn, q: &str| diesel::sql_query(q).execute(conn).map(|_| ());
    run(conn, &format!("PREPARE hallpass_plan AS {sql}"))?;
    run(conn, "SET plan_cache_mode = force_generic_plan")?;
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let lines =
        diesel::sql_query(format!("EXPLAIN EXECUTE hallpass_plan{args}")).load::<Line>(conn);
    run(conn, "RESET plan_cache_mode")?;
    run(conn, "DEALLOCATE hallpass_plan")?;
    Ok(Some(lines?.into_iter().map(|l| l.line).collect()))
}

/// The SQL text of a PostgreSQL query as diesel sends it (`$1`… placeholders), without the
/// bind values `debug_query` appends.
pub(super) fn pg_sql<Q: QueryFragment<Pg>>(query: &Q) -> String {
    let text = diesel::debug_query::<Pg, _>(query).to_string();
    match text.rsplit_once(" -- binds: ") {
        Some((sql, _)) => sql.to_owned(),
        None => text,
    }
}

/// Refreshes the planner's statistics of the whole database (`ANALYZE`), as an operator or a
/// maintenance script might at any moment.
pub fn analyze(conn: &mut Conn) -> Result<(), DbError> {
    diesel::sql_query("ANALYZE").execute(conn)?;
    Ok(())
}

/// The plan lines of one SQLite statement: `EXPLAIN QUERY PLAN`'s `detail` column.
pub(super) fn sqlite_plan<Q>(c: &mut SqliteConnection, query: Q) -> Result<Vec<String>, DbError>
where
    Q: QueryFragment<Sqlite>,
{
    Ok(
        Explain::<_, (Integer, Integer, Integer, Text)>::new("EXPLAIN QUERY PLAN ", query)
            .load::<(i32, i32, i32, String)>(c)?
            .into_iter()
            .map(|(_, _, _, detail)| detail)
            .collect(),
    )
}

/// The plan lines of one PostgreSQL statement, as `EXPLAIN` prints them.
pub(super) fn pg_plan<Q>(c: &mut PgConnection, query: Q) -> Result<Vec<String>, DbError>
where
    Q: QueryFragment<Pg>,
{
    Ok(Explain::<_, Text>::new("EXPLAIN ", query).load::<String>(c)?)
}

/// `<prefix> <query>`: the query's own SQL and binds, as diesel sends them, behind an
/// `EXPLAIN`. `ST` is the SQL type of the rows the `EXPLAIN` returns.
struct Explain<Q, ST> {
    prefix: &'static str,
    query: Q,
    rows: std::marker::PhantomData<ST>,
}

impl<Q, ST> Explain<Q, ST> {
    fn new(prefix: &'static str, query: Q) -> Self {
        Self {
            prefix,
            query,
            rows: std::marker::PhantomData,
        }
    }
}

impl<Q, ST> QueryId for Explain<Q, ST> {
    type QueryId = ();
    // Not worth a cached prepared statement: tests only.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, ST: 'static> Query for Explain<Q, ST>
where
    ST: diesel::sql_types::SqlType,
{
    type SqlType = ST;
}

impl<Q, ST, DB> QueryFragment<DB> for Explain<Q, ST>
where
    DB: DieselBackend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        pass.push_sql(self.prefix);
        self.query.walk_ast(pass.reborrow())
    }
}

impl<Q, ST, C> RunQueryDsl<C> for Explain<Q, ST> {}
