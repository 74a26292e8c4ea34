//! The SQL of backups (`service::backup` owns the file format and the rules): the catalog of
//! either database, one consistent read of every table, and a load into the same tables.
//!
//! Generic over tables on purpose: the tables and columns come from the database's own
//! catalog (`sqlite_master` / `information_schema`), not from a list here, so a table or
//! column added by a later migration is carried without anyone remembering this file. Only
//! the tables in [`LEFT_OUT`] are skipped. Every column must have a type this module knows
//! how to carry ([`ColumnType`]): a backup of a database with any other type stops with an
//! error naming the column rather than writing a file that silently lacks it.
//!
//! Values travel as JSON, mapped per column type in the SQL itself (SQLite `json_array` /
//! `json_extract`, PostgreSQL `json_build_array` / `->>` with a cast), so the same file loads
//! into either database.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{AnyConnection, Conn, DbError};

/// Tables a backup does not carry, and why (documented in docs/backup.md):
/// sessions (everyone signs in again after a restore; a copy of live sessions is a copy of
/// sign-ins), sign-in round trips in flight, brute-force counters.
pub const LEFT_OUT: &[&str] = &["sessions", "oidc_flows", "rate_limits"];

/// diesel's bookkeeping: the schema level is written in the file's header instead.
const MIGRATIONS_TABLE: &str = "__diesel_schema_migrations";

/// The column types a backup carries, and how each is written in the file. The schema
/// keeps to these on purpose (see the first migration: times are BIGINT seconds, booleans
/// 0/1 INTEGERs), so both databases store the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// INTEGER, BIGINT, SMALLINT: a JSON integer.
    Integer,
    /// TEXT (and VARCHAR): a JSON string.
    Text,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Text => "text",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "integer" => Some(ColumnType::Integer),
            "text" => Some(ColumnType::Text),
            _ => None,
        }
    }

    /// The type of a column as the catalog declares it (SQLite's declared type, PostgreSQL's
    /// `data_type`); `None` for a type backups do not carry.
    fn from_declared(declared: &str) -> Option<Self> {
        let d = declared.trim().to_ascii_lowercase();
        match d.as_str() {
            "integer" | "bigint" | "smallint" | "int" | "int4" | "int8" => {
                Some(ColumnType::Integer)
            }
            "text" | "character varying" | "varchar" => Some(ColumnType::Text),
            _ => None,
        }
    }
}

/// One column of a table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    /// Part of the primary key (rows are read in its order).
    pub primary_key: bool,
}

/// One table a backup carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `"name"`, with quotes doubled: names come from the catalog, but are quoted all the same.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every table of the database (but diesel's own), by name.
pub fn all_tables(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let sql = match conn {
        AnyConnection::Sqlite(_) => {
            // Ordinary tables only: an FTS index (`users_search`) and its shadow tables are
            // rebuilt by triggers from the rows they index.
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite^_%' ESCAPE '^' \
             AND name <> '__diesel_schema_migrations' ORDER BY name"
        }
        AnyConnection::Postgresql(_) => {
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '__diesel_schema_migrations' ORDER BY 1"
        }
    };
    let rows: Vec<NameRow> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The columns of `table` in their declared order, with the catalog's type names.
fn raw_columns(conn: &mut Conn, table: &str) -> Result<Vec<ColumnRow>, DbError> {
    Ok(match conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(
            "SELECT name, type AS declared, pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind::<Text, _>(table)
        .load(c)?,
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT c.column_name::text AS name, c.data_type::text AS declared, \
             (CASE WHEN EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
                ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
                WHERE i.indrelid = quote_ident(c.table_name)::regclass AND i.indisprimary \
                AND a.attname = c.column_name) THEN 1 ELSE 0 END)::bigint AS pk \
             FROM information_schema.columns c \
             WHERE c.table_schema = current_schema() AND c.table_name = $1 \
             ORDER BY c.ordinal_position",
        )
        .bind::<Text, _>(table)
        .load(c)?,
    })
}

/// The tables `table` points at with foreign keys (itself included when it does).
fn references(conn: &mut Conn, table: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<NameRow> = match conn {
        AnyConnection::Sqlite(c) => {
            diesel::sql_query("SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list(?)")
                .bind::<Text, _>(table)
                .load(c)?
        }
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT DISTINCT r.relname::text AS name FROM pg_constraint k \
             JOIN pg_class r ON r.oid = k.confrelid \
             WHERE k.contype = 'f' AND k.conrelid = quote_ident($1)::regclass",
        )
        .bind::<Text, _>(table)
        .load(c)?,
    };
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The tables a backup carries (all but [`LEFT_OUT`]), each after the tables it references,
/// so a load in this order never meets a foreign key to a row not yet written.
pub fn carried_tables(conn: &mut Conn) -> Result<Vec<Table>, DbError> {
    let names: Vec<String> = all_tables(conn)?
        .into_iter()
        .filter(|t| !LEFT_OUT.contains(&t.as_str()) && t != MIGRATIONS_TABLE)
        .collect();
    let mut pending: Vec<(Table, Vec<String>)> = Vec::new();
    for name in &names {
        let mut columns = Vec::new();
        for c in raw_columns(conn, name)? {
            let ty = ColumnType::from_declared(&c.declared).ok_or_else(|| DbError::Corrupt {
                table: "backup",
                detail: format!(
                    "column {name}.{} has type {:?}, which backups do not carry yet \
                     (add it to db::backup::ColumnType)",
                    c.name, c.declared
                ),
            })?;
            columns.push(Column {
                name: c.name,
                ty,
                primary_key: c.pk > 0,
            });
        }
        let refs = references(conn, name)?
            .into_iter()
            .filter(|r| r != name && names.contains(r))
            .collect();
        pending.push((
            Table {
                name: name.clone(),
                columns,
            },
            refs,
        ));
    }
    // Topological order; a cycle (none today) is reported rather than guessed at.
    let mut ordered: Vec<Table> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|(_, refs)| refs.iter().all(|r| ordered.iter().any(|t| &t.name == r)))
            .ok_or_else(|| DbError::Corrupt {
                table: "backup",
                detail: "the tables' foreign keys form a cycle".into(),
            })?;
        ordered.push(pending.remove(ready).0);
    }
    Ok(ordered)
}

/// The newest migration applied to this database ("" before any).
pub fn schema_level(conn: &mut Conn) -> Result<String, DbError> {
    let rows: Vec<NameRow> = diesel::sql_query(format!(
        "SELECT COALESCE(MAX(version), '') AS name FROM {MIGRATIONS_TABLE}"
    ))
    .load(conn)?;
    Ok(rows.into_iter().next().map(|r| r.name).unwrap_or_default())
}

/// What [`read_all`] hands its callback, in this order: the schema level, then each table
/// followed by its rows (a JSON array of the values in the table's column order).
pub enum Item<'a> {
    Begin {
        schema: &'a str,
        tables: &'a [Table],
    },
    Table(&'a Table),
    Row(&'a str),
}

/// Errors of a callback or of the database, kept apart inside a transaction.
enum TxError<E> {
    Db(diesel::result::Error),
    App(E),
}

impl<E> From<diesel::result::Error> for TxError<E> {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

fn settle<T, E: From<DbError>>(r: Result<T, TxError<E>>) -> Result<T, E> {
    r.map_err(|e| match e {
        TxError::Db(e) => E::from(DbError::from(e)),
        TxError::App(e) => e,
    })
}

/// PostgreSQL allows 100 arguments per function call (`json_build_array`).
const PG_MAX_ARGS: usize = 100;

/// Reads every carried table in one read transaction — a snapshot that concurrent writers
/// do not disturb (SQLite: a read transaction over WAL; PostgreSQL: REPEATABLE READ READ
/// ONLY) — streaming row by row to `f`.
pub fn read_all<E: From<DbError>>(
    conn: &mut Conn,
    mut f: impl FnMut(Item<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let result = conn.transaction::<_, TxError<E>, _>(|conn| {
        if let AnyConnection::Postgresql(c) = conn {
            // Must be the transaction's first statement.
            c.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        let app = |e: DbError| TxError::App(E::from(e));
        let schema = schema_level(conn).map_err(app)?;
        let tables = carried_tables(conn).map_err(app)?;
        f(Item::Begin {
            schema: &schema,
            tables: &tables,
        })
        .map_err(TxError::App)?;
        for table in &tables {
            f(Item::Table(table)).map_err(TxError::App)?;
            read_table(conn, table, &mut f)?;
        }
        Ok(())
    });
    settle(result)
}

/// Streams one table's rows, in primary-key order, as JSON arrays.
fn read_table<E: From<DbError>>(
    conn: &mut Conn,
    table: &Table,
    f: &mut impl FnMut(Item<'_>) -> Result<(), E>,
) -> Result<(), TxError<E>> {
    let cols: Vec<String> = table.columns.iter().map(|c| quote(&c.name)).collect();
    let mut order: Vec<String> = table
        .columns
        .iter()
        .filter(|c| c.primary_key)
        .map(|c| quote(&c.name))
        .collect();
    if order.is_empty() {
        order.clone_from(&cols);
    }
    let (cols, order, name) = (cols.join(", "), order.join(", "), quote(&table.name));
    match conn {
        AnyConnection::Sqlite(c) => {
            let sql = format!("SELECT json_array({cols}) AS row FROM {name} ORDER BY {order}");
            for row in diesel::sql_query(sql).load_iter::<JsonRow, _>(c)? {
                f(Item::Row(&row?.row)).map_err(TxError::App)?;
            }
        }
        AnyConnection::Postgresql(c) => {
            if table.columns.len() > PG_MAX_ARGS {
                return Err(TxError::App(E::from(DbError::Corrupt {
                    table: "backup",
                    detail: format!("table {} has more than {PG_MAX_ARGS} columns", table.name),
                })));
            }
            // Row by row: a large table is not held in memory at once.
            let sql = format!(
                "SELECT json_build_array({cols})::text AS row FROM {name} ORDER BY {order}"
            );
            let rows = diesel::sql_query(sql)
                .load_iter::<JsonRow, diesel::pg::PgRowByRowLoadingMode>(c)?;
            for row in rows {
                f(Item::Row(&row?.row)).map_err(TxError::App)?;
            }
        }
    }
    Ok(())
}

/// Rows loaded per statement: one bound JSON array of this many rows.
pub const BATCH_ROWS: usize = 500;

/// The target of a restore, inside its one write transaction ([`restore_tx`]).
pub struct Loader<'c> {
    conn: &'c mut Conn,
    tables: Vec<Table>,
}

impl Loader<'_> {
    /// The target's carried tables, in load order.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// Accounts in the target, deleted ones included.
    pub fn user_count(&mut self) -> Result<i64, DbError> {
        self.count("users")
    }

    /// Rows in `table`.
    pub fn count(&mut self, table: &str) -> Result<i64, DbError> {
        let rows: Vec<CountRow> =
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {}", quote(table)))
                .load(self.conn)?;
        Ok(rows.first().map_or(0, |r| r.n))
    }

    /// SSO providers with a stored (encrypted) client secret.
    pub fn sealed_secrets(&mut self) -> Result<i64, DbError> {
        let rows: Vec<CountRow> = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM oidc_providers WHERE client_secret IS NOT NULL",
        )
        .load(self.conn)?;
        Ok(rows.first().map_or(0, |r| r.n))
    }

    /// Empties every carried table (children first), and the sessions and sign-in round
    /// trips, which belong to the accounts being replaced.
    pub fn clear(&mut self) -> Result<(), DbError> {
        let mut sql = String::new();
        for t in self.tables.iter().rev() {
            sql.push_str(&format!("DELETE FROM {};\n", quote(&t.name)));
        }
        sql.push_str("DELETE FROM sessions;\nDELETE FROM oidc_flows;\n");
        self.conn.batch_execute(&sql)?;
        Ok(())
    }

    /// Inserts rows into `table`: `rows` is a JSON array of row arrays whose values follow
    /// `columns` (names and types already checked against [`Loader::tables`]).
    pub fn insert(
        &mut self,
        table: &str,
        columns: &[(String, ColumnType)],
        rows: &str,
    ) -> Result<usize, DbError> {
        let names: Vec<String> = columns.iter().map(|(n, _)| quote(n)).collect();
        let names = names.join(", ");
        let n = match &mut *self.conn {
            AnyConnection::Sqlite(c) => {
                let values: Vec<String> = (0..columns.len())
                    .map(|i| format!("json_extract(value, '$[{i}]')"))
                    .collect();
                let sql = format!(
                    "INSERT INTO {} ({names}) SELECT {} FROM json_each(?) ORDER BY key",
                    quote(table),
                    values.join(", ")
                );
                diesel::sql_query(sql).bind::<Text, _>(rows).execute(c)?
            }
            AnyConnection::Postgresql(c) => {
                let values: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| match ty {
                        ColumnType::Integer => format!("(e.r ->> {i})::bigint"),
                        ColumnType::Text => format!("(e.r ->> {i})"),
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO {} ({names}) SELECT {} FROM json_array_elements($1::json) \
                     WITH ORDINALITY AS e(r, n) ORDER BY e.n",
                    quote(table),
                    values.join(", ")
                );
                diesel::sql_query(sql).bind::<Text, _>(rows).execute(c)?
            }
        };
        Ok(n)
    }

    /// After the load: PostgreSQL's identity sequences continue after the highest id, and
    /// accounts of an older backup without search keys get theirs.
    pub fn finish(&mut self) -> Result<(), DbError> {
        if let AnyConnection::Postgresql(c) = &mut *self.conn {
            for t in &self.tables {
                let serial: Vec<NameRow> = diesel::sql_query(
                    "SELECT column_name::text AS name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')",
                )
                .bind::<Text, _>(&t.name)
                .load(c)?;
                for col in serial {
                    let sql = format!(
                        "SELECT setval(pg_get_serial_sequence($1, $2), \
                         COALESCE((SELECT MAX({c}) FROM {t}), 0) + 1, false)::text AS name",
                        c = quote(&col.name),
                        t = quote(&t.name)
                    );
                    let _: Vec<NameRow> = diesel::sql_query(sql)
                        .bind::<Text, _>(quote(&t.name))
                        .bind::<Text, _>(&col.name)
                        .load(c)?;
                }
            }
        }
        super::user_search::fill_search_keys(self.conn)?;
        Ok(())
    }
}

/// True when the database refused the data itself (a constraint, text it cannot store)
/// rather than failing: a restore reports it as the file's fault.
pub fn refused_data(e: &DbError) -> bool {
    matches!(
        e,
        DbError::Query(diesel::result::Error::DatabaseError(..)) | DbError::UnstorableText(_)
    )
}

/// Runs `f` on the target in one transaction under the instance write lock: everything it
/// loads lands together, or nothing does.
pub fn restore_tx<T, E: From<DbError>>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Loader<'_>) -> Result<T, E>,
) -> Result<T, E> {
    super::write_tx(conn, |conn| {
        let tables = carried_tables(conn)?;
        f(&mut Loader { conn, tables })
    })
}
