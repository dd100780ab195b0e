//! Zoho's JSON record values as the text a database column's input
//! function reads. One place for the shapes a value arrives in: lookups as
//! `{id}` or `{name, id}` (owners also with `email`), multi-selects and
//! territories as lists, subform rows as lists of objects, numbers and ids
//! as strings or numbers.

use serde_json::Value;

/// What the receiving column is, as far as the text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Column {
    /// An array type (`text[]`): a list becomes an array literal.
    pub array: bool,
    /// `json`/`jsonb`: the value as JSON text.
    pub json: bool,
    /// A text type: an empty string stays an empty string.
    pub text: bool,
}

/// The text for `v`, or `None` for SQL NULL.
pub fn cell_text(v: &Value, col: Column) -> Option<String> {
    if col.json {
        return (!v.is_null()).then(|| v.to_string());
    }
    match v {
        Value::Null => None,
        // Lookups and owners: the record id.
        Value::Object(m) => match m.get("id") {
            Some(id) => scalar(id),
            None => Some(v.to_string()),
        },
        Value::Array(items) if col.array => {
            let cells: Vec<String> = items
                .iter()
                .map(|i| match scalar(i) {
                    Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
                    None => "NULL".into(),
                })
                .collect();
            Some(format!("{{{}}}", cells.join(",")))
        }
        Value::Array(items) => Some(items.iter().filter_map(scalar).collect::<Vec<_>>().join("; ")),
        // Zoho sends "" for an unset number or date.
        Value::String(s) if s.is_empty() && !col.text => None,
        other => scalar(other),
    }
}

/// A Zoho date-time (ISO 8601 with any offset) as the text of a
/// `timestamp without time zone` column: the instant's wall time in UTC.
/// One rule for every path into a local table (export, notifications,
/// catch-ups, pulls) and, read back, for pushes, so newer-wins compares
/// like with like. `None` when `s` is not such a date-time.
pub fn utc_wall_time(s: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
}

/// One list item or lookup id as text: an object in a list (a territory, a
/// multi-select lookup) by its name, else its id.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(m) => m.get("name").or_else(|| m.get("id")).and_then(scalar),
        Value::Array(_) => Some(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: Column = Column { array: false, json: false, text: true };

    /// serde_json keeps numbers as written (`arbitrary_precision`): Zoho's
    /// widest currency, 16 digits and 9 decimals, and a 19-digit id survive.
    #[test]
    fn numbers_keep_every_digit() {
        let plain = Column { array: false, json: false, text: false };
        for n in ["1234567890123456.123456789", "0.09999999999999999999", "5725767001001000001", "-0.000000001"] {
            let v: Value = serde_json::from_str(n).unwrap();
            assert_eq!(cell_text(&v, plain).as_deref(), Some(n));
            assert_eq!(serde_json::to_string(&v).unwrap(), n);
        }
    }
    const BIGINT: Column = Column { array: false, json: false, text: false };
    const TEXT_ARRAY: Column = Column { array: true, json: false, text: false };

    #[test]
    fn datetimes_of_any_offset_are_one_utc_wall_time() {
        for s in ["2023-06-16T00:09:43-07:00", "2023-06-16T12:39:43+05:30", "2023-06-16T07:09:43Z", "2023-06-16T07:09:43+00:00"] {
            assert_eq!(utc_wall_time(s).as_deref(), Some("2023-06-16 07:09:43"), "{s}");
        }
        assert_eq!(utc_wall_time("2023-06-16"), None);
    }

    #[test]
    fn lookups_lists_and_empties() {
        assert_eq!(cell_text(&json!({"id": "554023000000235011"}), BIGINT).as_deref(), Some("554023000000235011"));
        assert_eq!(cell_text(&json!({"name": "Boyle", "id": "5725767000000411001", "email": "a@b"}), BIGINT).as_deref(), Some("5725767000000411001"));
        assert_eq!(cell_text(&json!({"id": 5725767000000411001_i64}), BIGINT).as_deref(), Some("5725767000000411001"));
        assert_eq!(cell_text(&json!(["English", "Ger\"man"]), TEXT_ARRAY).as_deref(), Some(r#"{"English","Ger\"man"}"#));
        assert_eq!(cell_text(&json!([{"name": "USA", "id": "1"}]), TEXT_ARRAY).as_deref(), Some(r#"{"USA"}"#));
        assert_eq!(cell_text(&json!(["a", "b"]), TEXT).as_deref(), Some("a; b"));
        assert_eq!(cell_text(&json!(""), BIGINT), None);
        assert_eq!(cell_text(&json!(""), TEXT).as_deref(), Some(""));
        assert_eq!(cell_text(&json!(null), TEXT), None);
        assert_eq!(cell_text(&json!({"a": 1}), Column { json: true, ..TEXT }).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(cell_text(&json!(100000), BIGINT).as_deref(), Some("100000"));
    }
}
