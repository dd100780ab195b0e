//! Bulk Read CSV rows → PostgreSQL `COPY … FROM` text format, checked on the
//! way: each cell is validated for the local column's type (Bulk Read
//! writes booleans as `true`/`false`, lookups as bare ids, datetimes with
//! an offset, multi-selects joined with `;`), so a value that does not fit
//! is reported with the record id, the column and the value instead of
//! failing somewhere inside COPY.

use chrono::NaiveDate;

/// What a local column holds, as far as checking a cell goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int2,
    Int4,
    Int8,
    Numeric,
    Float,
    Bool,
    Date,
    Timestamptz,
    /// `timestamp without time zone`: the instant in UTC.
    Timestamp,
    Text,
    /// `text[]` from a `;`-joined multi-select.
    TextArray,
    /// Anything else: passed as text for the type's input function.
    Other,
}

#[derive(Debug, Clone)]
pub struct CopyColumn {
    /// Index of the cell in the CSV row.
    pub cell: usize,
    pub kind: Kind,
    /// The local column, for messages.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("record {record_id}: column {column} cannot hold {value:?}: {reason}")]
pub struct CellError {
    pub record_id: String,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// Appends `s` escaped for COPY's text format.
fn escape_into(s: &str, out: &mut Vec<u8>) {
    if !s.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t')) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// `yyyy-MM-ddTHH:mm:ss` with an optional fraction and a `Z` or `±hh:mm`
/// offset: what Bulk Read writes. Checked by shape, which is enough for
/// PostgreSQL's parser to accept it, and far cheaper than parsing twice.
fn rfc3339_shape(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10) && b[10] == b'T')
        || !(digits(11..13) && b[13] == b':' && digits(14..16) && b[16] == b':' && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    match &b[i..] {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn check(kind: Kind, cell: &str) -> Result<Option<String>, String> {
    let t = cell.trim();
    let int = |min: i64, max: i64| -> Result<Option<String>, String> {
        match t.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(None),
            Ok(_) => Err("out of range for the column's integer type".into()),
            Err(_) => Err("not a whole number".into()),
        }
    };
    match kind {
        Kind::Int2 => int(i16::MIN.into(), i16::MAX.into()),
        Kind::Int4 => int(i32::MIN.into(), i32::MAX.into()),
        Kind::Int8 => int(i64::MIN, i64::MAX),
        Kind::Numeric | Kind::Float => {
            let numeric = !t.is_empty()
                && t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
                && t.bytes().any(|b| b.is_ascii_digit())
                && t.parse::<f64>().is_ok();
            if numeric {
                Ok(None)
            } else {
                Err("not a number".into())
            }
        }
        // PostgreSQL reads true/false itself.
        Kind::Bool if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") => Ok(None),
        Kind::Bool => Err("not true or false".into()),
        Kind::Date => NaiveDate::parse_from_str(t, "%Y-%m-%d").map(|_| None).map_err(|_| "not a yyyy-MM-dd date".into()),
        Kind::Timestamptz if rfc3339_shape(t) => Ok(None),
        Kind::Timestamptz => Err("not a date-time with an offset".into()),
        Kind::Timestamp => crate::values::utc_wall_time(t).map(Some).ok_or_else(|| "not a date-time with an offset".into()),
        Kind::TextArray => {
            let items: Vec<String> = cell
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            Ok(Some(format!("{{{}}}", items.join(","))))
        }
        Kind::Text | Kind::Other => Ok(None),
    }
}

/// Appends one row (ending in a newline) in COPY text format. `id_cell` is
/// the record id's cell, for messages. An empty cell is NULL.
pub fn encode_row(columns: &[CopyColumn], id_cell: usize, row: &csv::StringRecord, out: &mut Vec<u8>) -> Result<(), CellError> {
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        let cell = row.get(c.cell).unwrap_or("");
        if cell.is_empty() {
            out.extend_from_slice(b"\\N");
            continue;
        }
        match check(c.kind, cell) {
            Ok(None) => escape_into(cell, out),
            Ok(Some(rewritten)) => escape_into(&rewritten, out),
            Err(reason) => {
                return Err(CellError {
                    record_id: row.get(id_cell).unwrap_or("?").to_string(),
                    column: c.name.clone(),
                    value: cell.chars().take(80).collect(),
                    reason,
                })
            }
        }
    }
    out.push(b'\n');
    Ok(())
}

/// COPY text bytes per message from the encoding thread.
const CHUNK: usize = 1 << 16;
/// Messages in flight: bounds memory at about 1 MB.
const IN_FLIGHT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Cell(#[from] CellError),
    #[error("{0}")]
    Read(#[from] crate::Error),
}

/// How the CSV's columns become COPY columns, decided from its header:
/// the COPY columns and the cell of the record id.
pub type Plan = Box<dyn FnOnce(&[String]) -> Result<(Vec<CopyColumn>, usize), String> + Send>;

/// A Bulk Read zip as a stream of COPY text: one thread inflates, parses
/// and encodes (checking every cell), and hands over 64 KB chunks, so the
/// backend only copies bytes into COPY. Memory stays flat at any size.
pub struct CopyText {
    rx: std::sync::mpsc::Receiver<Result<Vec<u8>, StreamError>>,
    /// Rows encoded so far (by the thread: ahead of what was consumed).
    rows: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CopyText {
    pub fn from_zip(file: std::fs::File, plan: Plan) -> Result<CopyText, StreamError> {
        use std::sync::atomic::Ordering;
        let (head_tx, head_rx) = std::sync::mpsc::sync_channel::<Result<(), StreamError>>(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        let rows = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = rows.clone();
        std::thread::Builder::new()
            .name("zoho-copy-text".into())
            .spawn(move || {
                let mut head_tx = Some(head_tx);
                let run = |head_tx: &mut Option<std::sync::mpsc::SyncSender<Result<(), StreamError>>>| -> Result<(), StreamError> {
                    let mut archive = zip::ZipArchive::new(file).map_err(crate::Error::from)?;
                    let mut reader = crate::bulk_read::csv_of(&mut archive)?;
                    let headers: Vec<String> = reader.headers().map_err(crate::Error::from)?.iter().map(str::to_string).collect();
                    let (columns, id_cell) = plan(&headers).map_err(|m| crate::Error::malformed("bulk_read.download", m))?;
                    if head_tx.take().expect("header answered once").send(Ok(())).is_err() {
                        return Ok(());
                    }
                    let mut record = csv::StringRecord::new();
                    let mut buf = Vec::with_capacity(CHUNK + 4096);
                    while reader.read_record(&mut record).map_err(crate::Error::from)? {
                        encode_row(&columns, id_cell, &record, &mut buf)?;
                        counter.fetch_add(1, Ordering::Relaxed);
                        if buf.len() >= CHUNK && tx.send(Ok(std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096)))).is_err() {
                            return Ok(()); // the reader is gone: stop quietly
                        }
                    }
                    if !buf.is_empty() {
                        let _ = tx.send(Ok(buf));
                    }
                    Ok(())
                };
                if let Err(e) = run(&mut head_tx) {
                    match head_tx {
                        Some(h) => drop(h.send(Err(e))),
                        None => drop(tx.send(Err(e))),
                    }
                }
            })
            .map_err(|e| StreamError::Read(crate::Error::Io(e)))?;
        head_rx
            .recv()
            .map_err(|_| StreamError::Read(crate::Error::malformed("bulk_read.download", "CSV reader stopped before the header")))??;
        Ok(CopyText { rx, rows })
    }

    /// The next chunk of COPY text; `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Result<Vec<u8>, StreamError>> {
        self.rx.recv().ok()
    }

    pub fn rows(&self) -> u64 {
        self.rows.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(kinds: &[Kind]) -> Vec<CopyColumn> {
        kinds.iter().enumerate().map(|(i, k)| CopyColumn { cell: i, kind: *k, name: format!("c{i}") }).collect()
    }

    fn enc(kinds: &[Kind], cells: &[&str]) -> Result<String, CellError> {
        let mut out = Vec::new();
        encode_row(&cols(kinds), 0, &csv::StringRecord::from(cells.to_vec()), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn bulk_read_cells_become_copy_text() {
        use Kind::*;
        let got = enc(
            &[Int8, Bool, Timestamptz, Date, TextArray, Text, Numeric, Timestamp],
            &["5725767000000412001", "true", "2026-03-04T10:20:30+05:30", "2026-03-04", "English; Hindi", "a\tb\\c\nd", "1234.50", "2026-03-04T10:20:30+05:30"],
        )
        .unwrap();
        assert_eq!(
            got,
            "5725767000000412001\ttrue\t2026-03-04T10:20:30+05:30\t2026-03-04\t{\"English\",\"Hindi\"}\ta\\tb\\\\c\\nd\t1234.50\t2026-03-04 04:50:30\n"
        );
        assert_eq!(enc(&[Int8, Text], &["1", ""]).unwrap(), "1\t\\N\n");
        assert_eq!(enc(&[Int8, TextArray], &["1", "say \"hi\""]).unwrap(), "1\t{\"say \\\\\"hi\\\\\"\"}\n");
    }

    #[test]
    fn a_bad_cell_names_the_record_column_and_value() {
        use Kind::*;
        let err = enc(&[Int8, Int4], &["42", "12abc"]).unwrap_err();
        assert_eq!(err, CellError { record_id: "42".into(), column: "c1".into(), value: "12abc".into(), reason: "not a whole number".into() });
        assert!(enc(&[Int8, Int2], &["1", "70000"]).unwrap_err().reason.contains("out of range"));
        assert!(enc(&[Int8, Numeric], &["1", "NaN"]).is_err());
        assert!(enc(&[Int8, Numeric], &["1", "inf"]).is_err());
        assert!(enc(&[Int8, Bool], &["1", "yes"]).is_err());
        assert!(enc(&[Int8, Date], &["1", "03/04/2026"]).is_err());
        assert!(enc(&[Int8, Timestamptz], &["1", "2026-03-04 10:20"]).is_err());
        assert!(enc(&[Int8, Timestamptz], &["1", "2026-03-04T10:20:30"]).is_err());
        assert!(enc(&[Int8, Timestamptz], &["1", "2026-03-04T10:20:30.125Z"]).is_ok());
        assert!(enc(&[Int8, Timestamptz], &["1", "2026-03-04T10:20:30+0530"]).is_err());
        assert!(enc(&[Int8], &["x"]).is_err());
    }
}
