//! Pushing rows to a module, matched on a unique key field, by whichever API
//! the caller picked (see [`crate::planner`]): the Upsert API, 100 records a
//! call with several calls in flight, or a bulk-write job of up to 25,000
//! rows whose failure falls back to the Upsert API. Either way each row gets
//! an outcome: the record id, or Zoho's reason for rejecting it.
//!
//! Rows are values aligned with [`PushSpec::fields`], Zoho's JSON write
//! shapes (zoho-api.md §4.3); the key is field 0.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::bulk_write::{BulkRowResult, BulkWriteJob, BulkWriteSpec, Column, RowStatus};
use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::records::{WriteOp, WriteOptions};

#[derive(Debug, Clone, PartialEq)]
pub struct PushField {
    pub api_name: String,
    /// Zoho's `data_type`: it decides how a value is written in bulk CSV.
    pub data_type: String,
}

#[derive(Debug, Clone)]
pub struct PushSpec {
    pub module: String,
    /// The key first: the unique field rows are matched on.
    pub fields: Vec<PushField>,
}

/// One row: a value per field of the spec.
pub type PushRow = Vec<Value>;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Written: the record's id, and its `Modified_Time` as Zoho wrote it
    /// (the Upsert API says; a bulk job's result file does not), by which a
    /// two-way table knows the notification of its own write.
    Synced { id: String, modified_time: Option<String> },
    /// Zoho refused the row: code, field and message.
    Rejected(String),
}

/// What a bulk push did besides the outcomes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BulkPushReport {
    pub job_ids: Vec<String>,
    /// The job failed and its rows went through the Upsert API.
    pub fell_back: bool,
    /// Rows the job left unprocessed, re-sent through the Upsert API.
    pub resent: usize,
    /// Time spent writing and zipping CSV (local work, not waiting on Zoho).
    pub csv_time: std::time::Duration,
}

impl PushSpec {
    fn key(&self) -> &str {
        &self.fields[0].api_name
    }

    fn validate(&self, rows: &[PushRow]) -> Result<()> {
        if self.fields.is_empty() {
            return Err(Error::InvalidInput("a push needs at least the key field".into()));
        }
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != self.fields.len()) {
            return Err(Error::InvalidInput(format!("row {i} has {} values for {} fields", r.len(), self.fields.len())));
        }
        Ok(())
    }

    fn record(&self, row: &PushRow) -> Map<String, Value> {
        self.fields.iter().zip(row).map(|(f, v)| (f.api_name.clone(), v.clone())).collect()
    }

    fn bulk_spec(&self) -> BulkWriteSpec {
        BulkWriteSpec {
            module: self.module.clone(),
            operation: WriteOp::Upsert,
            find_by: Some(self.key().to_string()),
            columns: self
                .fields
                .iter()
                .map(|f| match f.data_type.as_str() {
                    "date" => Column::with_format(&f.api_name, "yyyy-MM-dd"),
                    "datetime" => Column::with_format(&f.api_name, "yyyy-MM-dd'T'HH:mm:ssXXX"),
                    _ => Column::new(&f.api_name),
                })
                .collect(),
            // NULL clears the field, as it does through the Upsert API.
            ignore_empty: false,
        }
    }
}

/// A JSON write value as a bulk CSV cell: lookups by id, multi-selects
/// joined with `;`, `None` for null (an empty cell).
pub fn cell(v: &Value) -> Option<String> {
    cell_str(v).map(Cow::into_owned)
}

/// [`cell`] borrowing what it can: most cells are strings, and the bulk CSV
/// only reads them, so they need not be copied.
fn cell_str(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        // Numbers keep the text they were read or written as
        // (arbitrary_precision), so a cell borrows that too.
        Value::Number(n) => Some(Cow::Borrowed(n.as_str())),
        Value::Object(m) => m.get("id").and_then(cell_str),
        Value::Array(items) => Some(Cow::Owned(items.iter().filter_map(cell_str).collect::<Vec<_>>().join(";"))),
    }
}

/// Rows an Upsert API call takes.
pub const PUSH_CALL_ROWS: usize = crate::records::MAX_RECORDS_PER_WRITE;

fn outcome_of(r: crate::records::RecordResult) -> Outcome {
    match r.outcome {
        Ok(ok) => Outcome::Synced { id: ok.id, modified_time: ok.modified_time },
        Err(e) => Outcome::Rejected(e.to_string()),
    }
}

fn bulk_rejection(r: &BulkRowResult) -> String {
    if r.errors.is_empty() {
        return format!("{:?}", r.status).to_uppercase();
    }
    r.errors
        .iter()
        .map(|e| if e.columns.is_empty() { e.code.clone() } else { format!("{} {}", e.code, e.columns.join(",")) })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A row as the record JSON it is sent as, written straight from the row
/// (no map of cloned field names per record).
struct RecordOf<'a> {
    fields: &'a [PushField],
    row: &'a PushRow,
}

impl serde::Serialize for RecordOf<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.fields.len()))?;
        for (f, v) in self.fields.iter().zip(self.row) {
            m.serialize_entry(&f.api_name, v)?;
        }
        m.end()
    }
}

impl ZohoClient {
    /// One Upsert API call of at most 100 rows, the unit of a caller's own
    /// sliding window ([`PUSH_CALL_ROWS`]).
    pub async fn upsert_call(&self, spec: &PushSpec, rows: &[PushRow]) -> Result<Vec<Outcome>> {
        spec.validate(rows)?;
        if rows.len() > PUSH_CALL_ROWS {
            return Err(Error::InvalidInput(format!("{} rows for one call of at most {PUSH_CALL_ROWS}", rows.len())));
        }
        let records: Vec<RecordOf<'_>> = rows.iter().map(|row| RecordOf { fields: &spec.fields, row }).collect();
        let opts = WriteOptions { duplicate_check_fields: Some(vec![spec.key().to_string()]), ..Default::default() };
        let body = crate::records::write_body(&records, &opts, WriteOp::Upsert);
        let results = self.write_call(WriteOp::Upsert, &spec.module, body, rows.len(), 0).await?;
        Ok(results.into_iter().map(outcome_of).collect())
    }

    /// Upserts `rows` on the key field, 100 a call, several calls at once.
    pub async fn push_upsert(&self, spec: &PushSpec, rows: &[PushRow]) -> Result<Vec<Outcome>> {
        spec.validate(rows)?;
        let records: Vec<Map<String, Value>> = rows.iter().map(|r| spec.record(r)).collect();
        let opts = WriteOptions { duplicate_check_fields: Some(vec![spec.key().to_string()]), ..Default::default() };
        let results = self.write(WriteOp::Upsert, &spec.module, &records, &opts).await?;
        Ok(results.into_iter().map(outcome_of).collect())
    }

    /// Upserts `rows` by bulk-write jobs on the key field: one job per
    /// 25,000 rows (fewer when 25 MB of zip comes first). A job that fails
    /// sends its rows through the Upsert API instead; rows a job left
    /// unprocessed are re-sent the same way. Either is safe: every write is
    /// an upsert on the key.
    pub async fn push_bulk(&self, spec: &PushSpec, rows: &[PushRow], progress: &mut dyn FnMut(&BulkWriteJob)) -> Result<(Vec<Outcome>, BulkPushReport)> {
        spec.validate(rows)?;
        let bulk = spec.bulk_spec();
        let mut cells = rows.iter().map(|r| Ok(r.iter().map(cell_str).collect::<Vec<_>>()));
        let mut report = BulkPushReport::default();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; rows.len()];
        let mut first = 0;
        loop {
            let started = std::time::Instant::now();
            let next = crate::bulk_write::next_chunk(&bulk, &mut cells, first)?;
            report.csv_time += started.elapsed();
            let Some(chunk) = next else { break };
            let span = first..first + chunk.keys.len();
            first = span.end;
            match self.bulk_write_chunk(&bulk, &chunk, progress).await {
                Ok(r) => {
                    report.job_ids.extend(r.job_ids);
                    for res in r.results {
                        outcomes[res.index] = match (res.status, &res.record_id) {
                            (RowStatus::Added | RowStatus::Updated, Some(id)) => Some(Outcome::Synced { id: id.clone(), modified_time: None }),
                            (RowStatus::Skipped, _) => Some(Outcome::Rejected(bulk_rejection(&res))),
                            _ => None,
                        };
                    }
                }
                Err(Error::JobFailed { job_id, .. }) => {
                    report.job_ids.push(job_id);
                    report.fell_back = true;
                    for (i, o) in span.clone().zip(self.push_upsert(spec, &rows[span]).await?) {
                        outcomes[i] = Some(o);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let resend: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i].is_none()).collect();
        if !resend.is_empty() {
            report.resent = resend.len();
            let again: Vec<PushRow> = resend.iter().map(|&i| rows[i].clone()).collect();
            for (i, o) in resend.into_iter().zip(self.push_upsert(spec, &again).await?) {
                outcomes[i] = Some(o);
            }
        }
        Ok((outcomes.into_iter().map(|o| o.expect("every row has an outcome")).collect(), report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_follow_bulk_write_formats() {
        assert_eq!(cell(&json!(null)), None);
        assert_eq!(cell(&json!("a,b")), Some("a,b".into()));
        assert_eq!(cell(&json!(true)), Some("true".into()));
        assert_eq!(cell(&json!(12.5)), Some("12.5".into()));
        assert_eq!(cell(&json!({"id": "5725767000000412001"})), Some("5725767000000412001".into()));
        assert_eq!(cell(&json!(["English", "French"])), Some("English;French".into()));
        assert_eq!(cell(&json!({})), None);
        assert_eq!(cell(&json!([{"id": "1"}, null, 2])), Some("1;2".into()));
        // Strings, the usual cell, are lent to the CSV writer, not copied.
        assert!(matches!(cell_str(&json!("x")), Some(Cow::Borrowed("x"))));
        assert!(matches!(cell_str(&json!({"id": "7"})), Some(Cow::Borrowed("7"))));
    }

    #[test]
    fn dates_carry_their_format_and_the_key_goes_first() {
        let spec = PushSpec {
            module: "Orders".into(),
            fields: vec![
                PushField { api_name: "parent_id".into(), data_type: "text".into() },
                PushField { api_name: "Order_Date".into(), data_type: "date".into() },
                PushField { api_name: "Shipped_At".into(), data_type: "datetime".into() },
            ],
        };
        let b = spec.bulk_spec();
        assert_eq!(b.find_by.as_deref(), Some("parent_id"));
        assert_eq!(b.columns[0], Column::new("parent_id"));
        assert_eq!(b.columns[1].format.as_deref(), Some("yyyy-MM-dd"));
        assert_eq!(b.columns[2].format.as_deref(), Some("yyyy-MM-dd'T'HH:mm:ssXXX"));
        assert!(!b.ignore_empty);
        assert!(spec.validate(&[vec![json!("A")]]).is_err());
    }
}
