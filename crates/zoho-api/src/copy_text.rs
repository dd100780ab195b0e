//! Bulk Read CSV rows → PostgreSQL `COPY … FROM` text format, checked on the
//! way: each cell is validated for the local column's type (Bulk Read
//! writes booleans as `true`/`false`, lookups as bare ids, datetimes with
//! an offset, multi-selects joined with `;`), so a value that does not fit
//! is reported with the record id, the column and the value instead of
//! failing somewhere inside COPY.

use chrono::{DateTime, NaiveDate};

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
        Kind::Bool => match t.to_ascii_lowercase().as_str() {
            "true" => Ok(Some("t".into())),
            "false" => Ok(Some("f".into())),
            _ => Err("not true or false".into()),
        },
        Kind::Date => NaiveDate::parse_from_str(t, "%Y-%m-%d").map(|_| None).map_err(|_| "not a yyyy-MM-dd date".into()),
        Kind::Timestamptz => DateTime::parse_from_rfc3339(t).map(|_| None).map_err(|_| "not a date-time with an offset".into()),
        Kind::Timestamp => DateTime::parse_from_rfc3339(t)
            .map(|d| Some(d.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()))
            .map_err(|_| "not a date-time with an offset".into()),
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
            "5725767000000412001\tt\t2026-03-04T10:20:30+05:30\t2026-03-04\t{\"English\",\"Hindi\"}\ta\\tb\\\\c\\nd\t1234.50\t2026-03-04 04:50:30\n"
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
        assert!(enc(&[Int8], &["x"]).is_err());
    }
}
