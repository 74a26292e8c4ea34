//! `column IN (ids)` as one bind, so that the statement is prepared once and kept.
//!
//! diesel's `eq_any` writes `IN (?, ?, …)` with one placeholder per id on SQLite (and through
//! the `MultiConnection` enum), and marks such a statement as not cacheable: every call
//! prepared it anew, about 100k instructions each, for look-ups that run on every page of the
//! user table. On SQLite the ids travel as one JSON array read by `json_each`; on
//! PostgreSQL's own connection `eq_any` is already `= ANY($1)` with one array bind.

use diesel::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Text};
use diesel::sqlite::Sqlite;

/// `column IN (SELECT value FROM json_each(?))`, for SQLite.
#[derive(Debug, Clone)]
pub struct InIds<C> {
    column: C,
    json: String,
}

/// `column` is one of `ids`.
pub fn in_ids<C>(column: C, ids: &[i64]) -> InIds<C> {
    let mut json = String::with_capacity(ids.len() * 8 + 2);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&id.to_string());
    }
    json.push(']');
    InIds { column, json }
}

impl<C> Expression for InIds<C> {
    type SqlType = Bool;
}

impl<C: QueryFragment<Sqlite>> QueryFragment<Sqlite> for InIds<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}

/// The SQL text does not depend on the ids: the statement is the same for every list.
impl<C: QueryId> QueryId for InIds<C> {
    type QueryId = InIds<C::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = C::HAS_STATIC_QUERY_ID;
}

impl<C: AppearsOnTable<QS>, QS: ?Sized> AppearsOnTable<QS> for InIds<C> {}

impl<C: SelectableExpression<QS>, QS: ?Sized> SelectableExpression<QS> for InIds<C> {}

impl<C: ValidGrouping<GB>, GB> ValidGrouping<GB> for InIds<C> {
    type IsAggregate = C::IsAggregate;
}
