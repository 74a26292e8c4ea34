//! The file format: writing it from a snapshot, and reading it line by line with every
//! check a hand-edited or damaged file needs.

use std::io::{BufRead, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use super::{BackupError, Progress, SecretRecord, Written};
use crate::db::Conn;
use crate::db::backup::{ColumnType, Item, read_all};

/// The `format` field of every header.
pub const FORMAT_NAME: &str = "hallpass-backup";
/// The version of the format this Hallpass writes and reads. A file with a higher one is
/// refused (a newer Hallpass wrote it).
pub const FORMAT_VERSION: u64 = 1;
/// Longest line read: a row is a few kilobytes; this stops a damaged file from filling memory.
const MAX_LINE: u64 = 16 * 1024 * 1024;

/// The first line of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u64,
    /// The newest migration applied to the database it was taken from.
    pub schema: String,
    /// The Hallpass version that wrote it.
    pub hallpass: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// [`crate::secret::ServerSecret::fingerprint`] of the instance's secret.
    pub secret_fingerprint: String,
    /// base64 of the server secret (`--include-secret` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `{"table":…,"columns":[[name,type],…]}`: the rows that follow belong to it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TableLine {
    pub table: String,
    pub columns: Vec<(String, String)>,
}

/// `{"end":{…}}`: the last line, with totals to check against.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndLine {
    pub end: Totals,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct Totals {
    pub tables: usize,
    pub rows: u64,
}

/// What a line after the header is.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Marker {
    Table(TableLine),
    End(EndLine),
}

fn json_line(out: &mut dyn Write, value: &impl Serialize) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *out, value)
        .map_err(|e| BackupError::Io(format!("cannot write the backup: {e}")))?;
    out.write_all(b"\n").map_err(write_err)
}

fn write_err(e: std::io::Error) -> BackupError {
    BackupError::Io(format!("cannot write the backup: {e}"))
}

/// Streams the snapshot to `out` (see the module doc of `service::backup` for the layout).
pub(super) fn write(
    conn: &mut Conn,
    out: &mut dyn Write,
    secret: &SecretRecord,
    progress: Progress<'_>,
) -> Result<Written, BackupError> {
    let backend = match conn {
        crate::db::AnyConnection::Sqlite(_) => "sqlite",
        crate::db::AnyConnection::Postgresql(_) => "postgres",
    };
    let mut written = Written::default();
    let mut table = String::new();
    read_all(conn, |item| -> Result<(), BackupError> {
        match item {
            Item::Begin { schema, .. } => json_line(
                out,
                &Header {
                    format: FORMAT_NAME.into(),
                    version: FORMAT_VERSION,
                    schema: schema.to_owned(),
                    hallpass: env!("CARGO_PKG_VERSION").into(),
                    created_at: now_rfc3339(),
                    backend: backend.into(),
                    secret_fingerprint: secret.fingerprint.clone(),
                    secret: secret.secret.clone(),
                },
            ),
            Item::Table(t) => {
                written.tables += 1;
                table.clone_from(&t.name);
                progress(&table, written.rows);
                json_line(
                    out,
                    &TableLine {
                        table: t.name.clone(),
                        columns: t
                            .columns
                            .iter()
                            .map(|c| (c.name.clone(), c.ty.as_str().to_owned()))
                            .collect(),
                    },
                )
            }
            Item::Row(row) => {
                written.rows += 1;
                if written.rows % 1000 == 0 {
                    progress(&table, written.rows);
                }
                out.write_all(row.as_bytes()).map_err(write_err)?;
                out.write_all(b"\n").map_err(write_err)
            }
        }
    })?;
    json_line(
        out,
        &EndLine {
            end: Totals {
                tables: written.tables,
                rows: written.rows,
            },
        },
    )?;
    out.flush().map_err(write_err)?;
    Ok(written)
}

/// The time now as RFC 3339 (UTC, seconds).
pub(super) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Opens a backup for reading: gzip is recognised by its magic bytes (whatever the name);
/// a name ending in `.gz` that does not hold gzip is refused, as it was surely damaged.
pub fn open_reader(
    input: Box<dyn Read + Send>,
    name_says_gzip: bool,
) -> Result<LineReader, BackupError> {
    let mut buffered = BufReader::new(input);
    let head = buffered
        .fill_buf()
        .map_err(|e| BackupError::Io(format!("cannot read the backup: {e}")))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if head.is_empty() {
        return Err(BackupError::NotABackup("the file is empty".into()));
    }
    let reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else if name_says_gzip {
        return Err(BackupError::NotABackup(
            "the name ends in .gz, but the file is not gzip-compressed".into(),
        ));
    } else {
        Box::new(buffered)
    };
    Ok(LineReader {
        inner: reader,
        line: 0,
        gzip,
    })
}

/// A backup, one line at a time, counting lines for error messages.
pub struct LineReader {
    inner: Box<dyn BufRead + Send>,
    line: u64,
    gzip: bool,
}

impl LineReader {
    /// The number of the line last returned.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next line without its line ending; `None` at the end of the file.
    pub(super) fn next_line(&mut self) -> Result<Option<String>, BackupError> {
        let mut buf = Vec::new();
        let n = (&mut self.inner)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.read_error(e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if buf.len() as u64 > MAX_LINE {
            return Err(self.invalid("the line is too long"));
        }
        let terminated = buf.last() == Some(&b'\n');
        if terminated {
            buf.pop();
        }
        // Every line the writer emits ends in a newline; one that does not was cut off —
        // unless it is the complete last line (an editor may drop the final newline).
        if !terminated && serde_json::from_slice::<EndLine>(&buf).is_err() {
            return Err(BackupError::Truncated);
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| self.invalid("the line is not UTF-8 text"))
    }

    pub(super) fn invalid(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Invalid {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn read_error(&self, e: std::io::Error) -> BackupError {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::UnexpectedEof => BackupError::Truncated,
            ErrorKind::InvalidData | ErrorKind::InvalidInput if self.gzip => BackupError::Invalid {
                line: self.line + 1,
                reason: format!("the gzip data is damaged ({e})"),
            },
            _ => BackupError::Io(format!("cannot read the backup: {e}")),
        }
    }
}

/// Parses and checks the header: a Hallpass backup, of a format version this binary reads.
pub(super) fn parse_header(reader: &mut LineReader) -> Result<Header, BackupError> {
    let not = |why: &str| BackupError::NotABackup(why.to_owned());
    let line = reader
        .next_line()?
        .ok_or_else(|| not("the file is empty"))?;
    let value: serde_json::Value = serde_json::from_str(&line)
        .map_err(|_| not("its first line is not a Hallpass backup header"))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
        return Err(not("its first line is not a Hallpass backup header"));
    }
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v > FORMAT_VERSION => return Err(BackupError::NewerFormat { found: v }),
        Some(_) => {}
        None => return Err(reader.invalid("the header has no format version")),
    }
    serde_json::from_value(value).map_err(|e| reader.invalid(format!("bad header: {e}")))
}

/// Checks one row line against its table's columns; the line is then loaded as it is.
pub(super) fn check_row(
    reader: &LineReader,
    line: &str,
    columns: &[(String, ColumnType)],
) -> Result<(), BackupError> {
    let values: Vec<serde_json::Value> = serde_json::from_str(line)
        .map_err(|e| reader.invalid(format!("not a row of values ({e})")))?;
    if values.len() != columns.len() {
        return Err(reader.invalid(format!(
            "the row has {} values, its table {} columns",
            values.len(),
            columns.len()
        )));
    }
    for (v, (name, ty)) in values.iter().zip(columns) {
        let fits = match ty {
            _ if v.is_null() => true,
            ColumnType::Integer => v.is_i64(),
            ColumnType::Text => v.is_string() && !v.as_str().is_some_and(|s| s.contains('\0')),
        };
        if !fits {
            return Err(reader.invalid(format!(
                "column {name}: expected {}, found {v}",
                ty.as_str()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reader(text: &str) -> LineReader {
        open_reader(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            false,
        )
        .unwrap()
    }

    #[test]
    fn a_header_from_a_newer_format_is_refused_before_its_fields_are_read() {
        let mut r = reader("{\"format\":\"hallpass-backup\",\"version\":7,\"other\":1}\n");
        assert!(matches!(
            parse_header(&mut r),
            Err(BackupError::NewerFormat { found: 7 })
        ));
        let mut r = reader("{\"format\":\"something-else\",\"version\":1}\n");
        assert!(matches!(
            parse_header(&mut r),
            Err(BackupError::NotABackup(_))
        ));
        let mut r = reader("{\"format\":\"hallpass-backup\"");
        assert!(matches!(parse_header(&mut r), Err(BackupError::Truncated)));
    }

    #[test]
    fn rows_are_checked_value_by_value() {
        let r = reader("x\n");
        let cols = vec![
            ("id".to_owned(), ColumnType::Integer),
            ("name".to_owned(), ColumnType::Text),
        ];
        assert!(check_row(&r, "[1,\"a\"]", &cols).is_ok());
        assert!(check_row(&r, "[null,null]", &cols).is_ok());
        assert!(check_row(&r, "[9223372036854775807,\"\"]", &cols).is_ok());
        for bad in [
            "[1.5,\"a\"]",
            "[\"1\",\"a\"]",
            "[1,2]",
            "[1]",
            "[1,\"a\",3]",
            "[18446744073709551615,\"a\"]",
            "[1,\"nul\\u0000\"]",
            "{}",
        ] {
            assert!(check_row(&r, bad, &cols).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_last_line_may_lack_its_newline() {
        let mut r = reader("[1]\n{\"end\":{\"tables\":1,\"rows\":1}}");
        assert_eq!(r.next_line().unwrap().as_deref(), Some("[1]"));
        assert!(r.next_line().unwrap().is_some());
        assert!(r.next_line().unwrap().is_none());
        let mut r = reader("[1]\n[2");
        assert!(r.next_line().is_ok());
        assert!(matches!(r.next_line(), Err(BackupError::Truncated)));
    }

    #[test]
    fn a_gzip_name_without_gzip_is_refused() {
        let input = Box::new(std::io::Cursor::new(b"{}\n".to_vec()));
        assert!(matches!(
            open_reader(input, true),
            Err(BackupError::NotABackup(_))
        ));
    }
}
