//! Loading a backup into a database, in one transaction, and what to say about the secret.

use std::path::{Path, PathBuf};

use super::format::{self, EndLine, Marker, TableLine, Totals, check_row};
use super::{BackupError, Header, LineReader, Progress};
use crate::db::backup::{BATCH_ROWS, ColumnType, Loader, restore_tx};
use crate::db::{Backend, Conn, DbError};
use crate::secret::ServerSecret;

/// Reads and checks the header: a Hallpass backup, of a format version and a schema level
/// this binary knows. Done before anything touches the target.
pub fn read_header(reader: &mut LineReader, backend: Backend) -> Result<Header, BackupError> {
    let header = format::parse_header(reader)?;
    let known = crate::db::migrations::latest_known(backend);
    if header.schema.as_str() > known.as_str() {
        return Err(BackupError::NewerSchema {
            found: header.schema,
            known,
        });
    }
    Ok(header)
}

/// What a restore loaded.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub tables: usize,
    pub rows: u64,
    /// Accounts, API keys and stored client secrets now in the database (for the secret
    /// warning: what stops working when the secret differs).
    pub users: i64,
    pub api_keys: i64,
    pub sealed_secrets: i64,
}

/// Loads the rest of the backup (after [`read_header`]) into the database `conn` is on, in
/// one transaction: refused when accounts exist unless `replace` (then everything carried is
/// replaced). Any bad line, any row the database refuses, or a missing last line rolls it
/// all back. Blocking: runs on a database thread.
pub fn restore(
    conn: &mut Conn,
    reader: &mut LineReader,
    replace: bool,
    progress: Progress<'_>,
) -> Result<Restored, BackupError> {
    restore_tx(conn, |loader| {
        let users = loader.user_count()?;
        if users > 0 && !replace {
            return Err(BackupError::NotEmpty { users });
        }
        loader.clear()?;
        let totals = load_lines(loader, reader, progress)?;
        loader.finish()?;
        if loader.count("settings")? != 1 {
            return Err(BackupError::Invalid {
                line: reader.line(),
                reason: "the backup has no settings row".into(),
            });
        }
        Ok(Restored {
            tables: totals.tables,
            rows: totals.rows,
            users: loader.user_count()?,
            api_keys: loader.count("api_keys")?,
            sealed_secrets: loader.sealed_secrets()?,
        })
    })
}

/// The table being loaded: its columns as the file lists them, and the rows not yet sent.
struct Pending {
    table: String,
    columns: Vec<(String, ColumnType)>,
    rows: String,
    count: usize,
}

fn load_lines(
    loader: &mut Loader<'_>,
    reader: &mut LineReader,
    progress: Progress<'_>,
) -> Result<Totals, BackupError> {
    let mut seen = Totals { tables: 0, rows: 0 };
    let mut done: Vec<String> = Vec::new();
    let mut pending: Option<Pending> = None;
    while let Some(line) = reader.next_line()? {
        if line.starts_with('[') {
            let p = pending
                .as_mut()
                .ok_or_else(|| reader.invalid("a row before any table line"))?;
            check_row(reader, &line, &p.columns)?;
            p.rows.push(if p.count == 0 { '[' } else { ',' });
            p.rows.push_str(&line);
            p.count += 1;
            seen.rows += 1;
            if p.count == BATCH_ROWS {
                flush(loader, p, reader.line())?;
                progress(&p.table, seen.rows);
            }
            continue;
        }
        let marker: Marker = serde_json::from_str(&line)
            .map_err(|_| reader.invalid("neither a row, a table line nor the last line"))?;
        if let Some(mut p) = pending.take() {
            flush(loader, &mut p, reader.line())?;
        }
        match marker {
            Marker::Table(t) => {
                let p = start_table(loader, reader, t, &done)?;
                done.push(p.table.clone());
                seen.tables += 1;
                progress(&p.table, seen.rows);
                pending = Some(p);
            }
            Marker::End(EndLine { end }) => {
                if end != seen {
                    return Err(reader.invalid(format!(
                        "the last line counts {} tables and {} rows, the file holds {} and {}",
                        end.tables, end.rows, seen.tables, seen.rows
                    )));
                }
                if reader.next_line()?.is_some() {
                    return Err(reader.invalid("text after the last line"));
                }
                return Ok(seen);
            }
        }
    }
    Err(BackupError::Truncated)
}

/// Checks a table line against the target: a table and columns it has, with the same
/// types, each named once. Columns the file lacks (an older backup) get their defaults.
fn start_table(
    loader: &Loader<'_>,
    reader: &LineReader,
    line: TableLine,
    done: &[String],
) -> Result<Pending, BackupError> {
    let target = loader
        .tables()
        .iter()
        .find(|t| t.name == line.table)
        .ok_or_else(|| reader.invalid(format!("this database has no table {:?}", line.table)))?;
    if done.contains(&line.table) {
        return Err(reader.invalid(format!("table {} appears twice", line.table)));
    }
    let mut columns: Vec<(String, ColumnType)> = Vec::with_capacity(line.columns.len());
    for (name, ty) in line.columns {
        let ty = ColumnType::parse(&ty)
            .ok_or_else(|| reader.invalid(format!("column {name}: unknown type {ty:?}")))?;
        let col = target
            .columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                reader.invalid(format!("table {} has no column {name:?}", line.table))
            })?;
        if col.ty != ty || columns.iter().any(|(n, _)| n == &name) {
            return Err(reader.invalid(format!(
                "column {}.{name}: listed twice or with another type",
                line.table
            )));
        }
        columns.push((name, ty));
    }
    Ok(Pending {
        table: line.table,
        columns,
        rows: String::new(),
        count: 0,
    })
}

/// Sends the pending rows; a refusal (duplicate, foreign key, NOT NULL…) names the table.
fn flush(loader: &mut Loader<'_>, p: &mut Pending, line: u64) -> Result<(), BackupError> {
    if p.count == 0 {
        return Ok(());
    }
    p.rows.push(']');
    let result = loader.insert(&p.table, &p.columns, &p.rows);
    p.rows.clear();
    p.count = 0;
    match result {
        Ok(_) => Ok(()),
        // The database said no to the data (a constraint, text it cannot store): the file's
        // fault, not the machine's.
        Err(e) if crate::db::backup::refused_data(&e) => Err(BackupError::Rejected {
            table: p.table.clone(),
            line,
            reason: match e {
                DbError::Query(q) => q.to_string(),
                other => other.to_string(),
            },
        }),
        Err(other) => Err(other.into()),
    }
}

/// What the restore means for the server secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretNote {
    /// The target's secret is the backup's: API keys and client secrets work.
    Same,
    /// The backup carried its secret and it is now `secret.key` in the data directory (a
    /// different previous one kept at the path given).
    Installed { kept: Option<PathBuf> },
    /// The secrets differ and this restore could not fix it. `carried`: the backup holds
    /// the secret, but the environment's `HALLPASS_SECRET_KEY(_FILE)` takes precedence.
    Differs { carried: bool },
}

/// Compares the target's secret with the backup's, and installs the backup's secret when it
/// carries one and the target's comes from `secret.key` (`from_environment`: it does not).
pub fn secret_note(
    header: &Header,
    target: &ServerSecret,
    data_dir: &Path,
    from_environment: bool,
) -> Result<SecretNote, BackupError> {
    use base64::Engine;
    let carried = match &header.secret {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(ServerSecret::from_bytes)
                .ok_or_else(|| BackupError::Invalid {
                    line: 1,
                    reason: "the header's secret is not a valid server secret".into(),
                })?,
        ),
        None => None,
    };
    if let Some(c) = &carried
        && c.fingerprint() != header.secret_fingerprint
    {
        return Err(BackupError::Invalid {
            line: 1,
            reason: "the header's secret does not match its fingerprint".into(),
        });
    }
    if header.secret_fingerprint == target.fingerprint() {
        return Ok(SecretNote::Same);
    }
    match carried {
        Some(secret) if !from_environment => {
            let kept = crate::secret::replace_file(data_dir, &secret).map_err(|e| {
                BackupError::Io(format!(
                    "the data was restored, but the backup's server secret could not be written to {}: {e}",
                    data_dir.join(crate::secret::FILE_NAME).display()
                ))
            })?;
            Ok(SecretNote::Installed { kept })
        }
        other => Ok(SecretNote::Differs {
            carried: other.is_some(),
        }),
    }
}

impl SecretNote {
    /// What to tell the operator, or `None` when all is well.
    pub fn message(&self, restored: &Restored, data_dir: &Path) -> Option<String> {
        let file = data_dir.join(crate::secret::FILE_NAME);
        match self {
            SecretNote::Same => None,
            SecretNote::Installed { kept } => Some(format!(
                "The backup's server secret is now {}{}. Restart Hallpass if it is running, so it uses it.",
                file.display(),
                kept.as_ref()
                    .map(|k| format!(" (the previous one is kept as {})", k.display()))
                    .unwrap_or_default()
            )),
            SecretNote::Differs { carried } => Some(format!(
                "WARNING: this instance's server secret is not the one the backup was made with. \
                 Until it is, the {keys} restored API key(s) will not authenticate and the client \
                 secrets of {sealed} SSO provider(s) cannot be decrypted (sign-in through them \
                 fails). {fix}",
                keys = restored.api_keys,
                sealed = restored.sealed_secrets,
                fix = if *carried {
                    "The backup carries its secret, but HALLPASS_SECRET_KEY (or HALLPASS_SECRET_KEY_FILE) \
                     is set here and wins over secret.key: set it to the old instance's value."
                        .to_owned()
                } else {
                    format!(
                        "Copy secret.key from the old instance's data directory (server.data_dir) to {} \
                         — or set HALLPASS_SECRET_KEY to the old value — and restart Hallpass.",
                        file.display()
                    )
                }
            )),
        }
    }
}
