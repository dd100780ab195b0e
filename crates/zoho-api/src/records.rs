//! Records API (zoho-api.md §4): list with `page_token`, get by ids,
//! insert/update/upsert/delete in chunks of 100 with a result per record,
//! deleted records and counts.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::http::{Call, Pool, Target};
use crate::usage::{write_credits, DELETED_RECORDS_CREDITS};
use crate::wire;

pub type Record = Map<String, Value>;

/// `fields` takes at most 50 names per call.
pub const MAX_FIELDS_PER_CALL: usize = 50;
/// Writes and deletes take at most 100 records per call.
pub const MAX_RECORDS_PER_WRITE: usize = 100;
pub const MAX_PER_PAGE: usize = 200;
/// The flag of a converted record (Leads, and any convertible module).
pub const CONVERTED: &str = "Converted__s";
/// `ids=` on a list call.
const MAX_IDS_PER_GET: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Id,
    CreatedTime,
    ModifiedTime,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// API names; `id` is always returned. More than 50 are fetched in
    /// several calls and merged by id.
    pub fields: Vec<String>,
    pub sort_by: Option<SortBy>,
    pub ascending: Option<bool>,
    /// Defaults to 200, the maximum.
    pub per_page: Option<usize>,
    pub cvid: Option<String>,
    /// `true`, `false` or `both` for convertible modules.
    pub converted: Option<String>,
    /// `If-Modified-Since`: only records modified after this.
    pub modified_since: Option<DateTime<FixedOffset>>,
}

/// Pages of a record list, fetched on demand.
pub struct RecordPages<'c> {
    client: &'c ZohoClient,
    module: String,
    opts: ListOptions,
    /// The first chunk of fields is paged; the others are fetched by id.
    chunks: Vec<Vec<String>>,
    next_token: Option<String>,
    started: bool,
    done: bool,
}

/// The `info` of a list reply. Get Records sends all of it; deleted
/// records, COQL and notification lists send a few of these keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct PageInfo {
    #[serde(default, deserialize_with = "wire::flag")]
    pub more_records: bool,
    #[serde(default, deserialize_with = "wire::opt")]
    pub next_page_token: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub page_token_expiry: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub page: Option<u64>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub per_page: Option<u64>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub count: Option<u64>,
}

/// A list of records (`GET {module}`, by ids, one record) or of deleted
/// records (`GET {module}/deleted`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(bound(deserialize = "T: serde::de::DeserializeOwned"))]
pub struct ListReply<T> {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub info: Option<PageInfo>,
}

type DataEnvelope = ListReply<Record>;

impl<'c> RecordPages<'c> {
    /// Whether another page may follow (false once the list is exhausted).
    pub fn has_more(&self) -> bool {
        !self.done
    }

    /// The next page of records, `None` when the list is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Record>>> {
        if self.done {
            return Ok(None);
        }
        let c = self.client;
        let mut call = Call::new("records.list", Method::GET, Target::Api(c.path(&self.module)))
            .query("fields", self.chunks[0].join(","))
            .query("per_page", self.opts.per_page.unwrap_or(MAX_PER_PAGE).min(MAX_PER_PAGE));
        if let Some(sort) = self.opts.sort_by {
            let name = match sort {
                SortBy::Id => "id",
                SortBy::CreatedTime => "Created_Time",
                SortBy::ModifiedTime => "Modified_Time",
            };
            call = call.query("sort_by", name).pool(Pool::Sub);
        }
        if let Some(asc) = self.opts.ascending {
            call = call.query("sort_order", if asc { "asc" } else { "desc" });
        }
        if let Some(cvid) = &self.opts.cvid {
            call = call.query("cvid", cvid).pool(Pool::Sub);
        }
        if let Some(conv) = &self.opts.converted {
            call = call.query("converted", conv);
        }
        if let Some(since) = &self.opts.modified_since {
            call = call.header("If-Modified-Since", since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
        }
        // `page` reaches only 2,000 rows; page tokens reach 100,000. Never both.
        if let Some(token) = &self.next_token {
            call = call.query("page_token", token);
        } else if self.started {
            self.done = true;
            return Ok(None);
        }
        self.started = true;
        let env: Option<DataEnvelope> = c.t.send_json(&call).await?;
        let Some(env) = env else {
            self.done = true;
            return Ok(None);
        };
        let info = env.info.unwrap_or_default();
        self.next_token = info.next_page_token.filter(|_| info.more_records);
        self.done = self.next_token.is_none();
        let mut rows = env.data;
        if self.chunks.len() > 1 && !rows.is_empty() {
            let ids: Vec<String> = rows.iter().filter_map(record_id).collect();
            for chunk in &self.chunks[1..] {
                let extra = c.get_by_ids(&self.module, &ids, chunk).await?;
                merge_by_id(&mut rows, extra);
            }
        }
        Ok(Some(rows))
    }

    /// Every remaining record (small lists only: this holds them all).
    pub async fn collect_all(mut self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        while let Some(page) = self.next_page().await? {
            out.extend(page);
        }
        Ok(out)
    }
}

pub fn record_id(r: &Record) -> Option<String> {
    wire::text_of(r.get("id")?)
}

fn merge_by_id(rows: &mut [Record], extra: Vec<Record>) {
    let mut by_id: HashMap<String, Record> = extra.into_iter().filter_map(|r| Some((record_id(&r)?, r))).collect();
    for row in rows.iter_mut() {
        if let Some(more) = record_id(row).and_then(|id| by_id.remove(&id)) {
            row.extend(more);
        }
    }
}

/// Splits a field list into chunks Zoho accepts; `id` need not be named.
fn field_chunks(fields: &[String]) -> Result<Vec<Vec<String>>> {
    let named: Vec<String> = fields.iter().filter(|f| f.as_str() != "id").cloned().collect();
    if named.is_empty() {
        // `fields` is mandatory; a list of ids alone still needs one name.
        return Err(Error::InvalidInput("list records needs at least one field besides id".into()));
    }
    Ok(named.chunks(MAX_FIELDS_PER_CALL).map(<[String]>::to_vec).collect())
}

/// What Zoho said about one record of a write.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    /// Position in the caller's input.
    pub index: usize,
    pub outcome: std::result::Result<WriteSuccess, RecordError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WriteSuccess {
    pub id: String,
    /// Upsert: `insert` or `update`.
    pub action: Option<String>,
    pub duplicate_field: Option<String>,
    pub created_time: Option<String>,
    pub modified_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub code: String,
    pub message: String,
    pub details: Value,
}

impl RecordError {
    /// The field Zoho blamed, when it named one.
    pub fn field(&self) -> Option<&str> {
        self.details.get("api_name").and_then(Value::as_str)
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(field) = self.field() {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Insert,
    Update,
    Upsert,
}

impl WriteOp {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOp::Insert => "insert",
            WriteOp::Update => "update",
            WriteOp::Upsert => "upsert",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Automations to run; `None` lets Zoho run all, `Some(vec![])` none.
    pub trigger: Option<Vec<String>>,
    /// Upsert: the fields to match on, in order.
    pub duplicate_check_fields: Option<Vec<String>>,
}

/// One entry of a per-record reply (`data[]` of writes and deletes,
/// `watch[]` of channel calls): `{code, details, message, status}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ResultEntry {
    #[serde(default, deserialize_with = "wire::opt")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub message: Option<String>,
    /// Upsert: `insert` or `update`.
    #[serde(default, deserialize_with = "wire::opt")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub duplicate_field: Option<String>,
    /// What the entry is about: the record written, the field blamed.
    #[serde(default)]
    pub details: Details,
}

/// An entry's `details`, kept as its JSON text and read on demand: most
/// entries are successes read for two or three members, and building a map
/// for each was most of the time a write reply took to parse.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Details(Box<serde_json::value::RawValue>);

impl Details {
    /// The whole object, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// String (or integer) members, as text, in one pass.
    pub fn texts<const N: usize>(&self, keys: [&str; N]) -> [Option<String>; N] {
        wire::members_text(self.0.get(), keys)
    }
}

impl Default for Details {
    fn default() -> Details {
        Details(serde_json::value::RawValue::from_string("null".into()).expect("null is JSON"))
    }
}

/// Equal when they hold the same JSON, whatever its spacing.
impl PartialEq for Details {
    fn eq(&self, other: &Details) -> bool {
        self.0.get() == other.0.get() || self.value() == other.value()
    }
}

impl ResultEntry {
    pub fn is_success(&self) -> bool {
        self.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("success"))
    }

    /// A string (or integer) member of `details`.
    pub fn detail(&self, key: &str) -> Option<String> {
        let [found] = self.details.texts([key]);
        found
    }

    pub fn error(&self) -> RecordError {
        RecordError {
            code: self.code.clone().unwrap_or_else(|| "UNKNOWN".into()),
            message: self.message.clone().unwrap_or_default(),
            details: self.details.value(),
        }
    }
}

/// The reply of insert, update, upsert and delete.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WriteReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub data: Vec<ResultEntry>,
}

/// `GET {module}/actions/count`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CountReply {
    #[serde(deserialize_with = "wire::num")]
    pub count: u64,
}

fn parse_result(index: usize, item: ResultEntry) -> RecordResult {
    let outcome = if item.is_success() {
        let [id, created_time, modified_time] = item.details.texts(["id", "Created_Time", "Modified_Time"]);
        Ok(WriteSuccess { id: id.unwrap_or_default(), action: item.action, duplicate_field: item.duplicate_field, created_time, modified_time })
    } else {
        Err(item.error())
    };
    RecordResult { index, outcome }
}

/// `{"data": [...], "trigger": [...], "duplicate_check_fields": [...]}`.
pub(crate) fn write_body<R: serde::Serialize>(records: &[R], opts: &WriteOptions, op: WriteOp) -> bytes::Bytes {
    #[derive(serde::Serialize)]
    struct Body<'a, R> {
        data: &'a [R],
        #[serde(skip_serializing_if = "Option::is_none")]
        trigger: Option<&'a Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        duplicate_check_fields: Option<&'a Vec<String>>,
    }
    let body = Body {
        data: records,
        trigger: opts.trigger.as_ref(),
        duplicate_check_fields: if op == WriteOp::Upsert { opts.duplicate_check_fields.as_ref() } else { None },
    };
    serde_json::to_vec(&body).expect("records serialize").into()
}

fn parse_results(endpoint: &str, offset: usize, expected: usize, body: Option<WriteReply>) -> Result<Vec<RecordResult>> {
    let items = body.map(|b| b.data).unwrap_or_default();
    if items.len() != expected {
        return Err(Error::malformed(endpoint, format!("{} results for {expected} records", items.len())));
    }
    Ok(items.into_iter().enumerate().map(|(i, item)| parse_result(offset + i, item)).collect())
}

impl ZohoClient {
    /// Lists a module page by page (`page_token` past 2,000 rows).
    pub fn list<'c>(&'c self, module: &str, opts: ListOptions) -> Result<RecordPages<'c>> {
        Ok(RecordPages {
            client: self,
            module: module.to_string(),
            chunks: field_chunks(&opts.fields)?,
            opts,
            next_token: None,
            started: false,
            done: false,
        })
    }

    /// Records by id, any number of them (100 ids a call, up to
    /// `max_concurrency` calls in flight; more than 50 fields are fetched
    /// in several calls and merged), in the order of the id chunks.
    pub async fn get_by_ids(&self, module: &str, ids: &[String], fields: &[String]) -> Result<Vec<Record>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let chunks = field_chunks(fields)?;
        let chunks = &chunks;
        let pages: Vec<Vec<Record>> = stream::iter(ids.chunks(MAX_IDS_PER_GET))
            .map(|id_chunk| async move {
                let mut rows: Vec<Record> = Vec::new();
                for (n, fchunk) in chunks.iter().enumerate() {
                    let call = Call::new("records.get", Method::GET, Target::Api(self.path(module)))
                        .query("ids", id_chunk.join(","))
                        .query("fields", fchunk.join(","));
                    let got = self.t.send_json::<DataEnvelope>(&call).await?.map(|e| e.data).unwrap_or_default();
                    if n == 0 {
                        rows = got;
                    } else {
                        merge_by_id(&mut rows, got);
                    }
                }
                Ok::<_, crate::Error>(rows)
            })
            .buffered(self.t.config.max_concurrency.max(1))
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// One record with every field, `None` if Zoho has no such record.
    pub async fn get_record(&self, module: &str, id: &str) -> Result<Option<Record>> {
        let call = Call::new("records.get", Method::GET, Target::Api(self.path(&format!("{module}/{id}"))));
        Ok(self.t.send_json::<DataEnvelope>(&call).await?.and_then(|e| e.data.into_iter().next()))
    }

    /// Insert, update or upsert any number of records, 100 per call, with
    /// up to `max_concurrency` calls in flight (the transport's pools keep
    /// them under Zoho's limits). The results are in input order, one per
    /// record; a rejected record is a result, not an error.
    pub async fn write(&self, op: WriteOp, module: &str, records: &[Record], opts: &WriteOptions) -> Result<Vec<RecordResult>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        // A sliding window: a call starts as soon as any one ends, and the
        // batches are put back in order afterwards.
        let mut batches: Vec<(usize, Vec<RecordResult>)> = stream::iter(records.chunks(MAX_RECORDS_PER_WRITE).enumerate())
            .map(|(n, chunk)| async move {
                let body = write_body(chunk, opts, op);
                self.write_call(op, module, body, chunk.len(), n * MAX_RECORDS_PER_WRITE).await.map(|r| (n, r))
            })
            .buffer_unordered(self.t.config.max_concurrency.max(1))
            .try_collect()
            .await?;
        batches.sort_unstable_by_key(|(n, _)| *n);
        Ok(batches.into_iter().flat_map(|(_, r)| r).collect())
    }

    /// One multi-record write call of at most 100 records, its body already
    /// serialized; the results' indexes start at `offset`.
    pub(crate) async fn write_call(&self, op: WriteOp, module: &str, body: bytes::Bytes, records: usize, offset: usize) -> Result<Vec<RecordResult>> {
        let (endpoint, method, path) = match op {
            WriteOp::Insert => ("records.insert", Method::POST, self.path(module)),
            WriteOp::Update => ("records.update", Method::PUT, self.path(module)),
            WriteOp::Upsert => ("records.upsert", Method::POST, self.path(&format!("{module}/upsert"))),
        };
        let mut call = Call::new(endpoint, method, Target::Api(path))
            .json_text(body)
            .credits(write_credits(records))
            .pool(if records > 10 { Pool::Sub } else { Pool::Normal })
            .per_record();
        // An insert sent twice inserts twice; updates and upserts do not.
        if op == WriteOp::Insert {
            call = call.creates();
        }
        self.t.cancel().check()?;
        let reply: Option<WriteReply> = self.t.send_json(&call).await?;
        parse_results(endpoint, offset, records, reply)
    }

    pub async fn insert(&self, module: &str, records: &[Record], opts: &WriteOptions) -> Result<Vec<RecordResult>> {
        self.write(WriteOp::Insert, module, records, opts).await
    }

    pub async fn update(&self, module: &str, records: &[Record], opts: &WriteOptions) -> Result<Vec<RecordResult>> {
        self.write(WriteOp::Update, module, records, opts).await
    }

    pub async fn upsert(&self, module: &str, records: &[Record], opts: &WriteOptions) -> Result<Vec<RecordResult>> {
        self.write(WriteOp::Upsert, module, records, opts).await
    }

    /// Deletes by id, 100 per call; one result per id, in input order.
    pub async fn delete(&self, module: &str, ids: &[String], run_workflows: bool) -> Result<Vec<RecordResult>> {
        let mut out = Vec::with_capacity(ids.len());
        for (n, chunk) in ids.chunks(MAX_RECORDS_PER_WRITE).enumerate() {
            self.t.cancel().check()?;
            let call = Call::new("records.delete", Method::DELETE, Target::Api(self.path(module)))
                .query("ids", chunk.join(","))
                .query("wf_trigger", run_workflows)
                .per_record();
            let reply: Option<WriteReply> = self.t.send_json(&call).await?;
            out.extend(parse_results("records.delete", n * MAX_RECORDS_PER_WRITE, chunk.len(), reply)?);
        }
        Ok(out)
    }

    /// Records deleted since `since` (or all Zoho still remembers: 60 days
    /// in the recycle bin, 120 after a permanent delete).
    pub async fn deleted(&self, module: &str, since: Option<DateTime<FixedOffset>>) -> Result<Vec<DeletedRecord>> {
        type Env = ListReply<DeletedRecord>;
        let mut out = Vec::new();
        for page in 1.. {
            let mut call = Call::new("records.deleted", Method::GET, Target::Api(self.path(&format!("{module}/deleted"))))
                .query("type", "all")
                .query("page", page)
                .query("per_page", MAX_PER_PAGE)
                .credits(DELETED_RECORDS_CREDITS);
            if let Some(s) = since {
                call = call.header("If-Modified-Since", s.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
            }
            let Some(env) = self.t.send_json::<Env>(&call).await? else { break };
            out.extend(env.data);
            if !env.info.is_some_and(|i| i.more_records) {
                break;
            }
        }
        Ok(out)
    }

    /// Zoho's record count (its statistics lag by minutes).
    pub async fn count(&self, module: &str) -> Result<u64> {
        let call = Call::new("records.count", Method::GET, Target::Api(self.path(&format!("{module}/actions/count"))));
        // 204: Zoho has nothing to count.
        Ok(self.t.send_json::<CountReply>(&call).await?.map_or(0, |r| r.count))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct DeletedRecord {
    #[serde(deserialize_with = "wire::id")]
    pub id: String,
    /// Null for permanent deletes.
    #[serde(default, deserialize_with = "wire::opt")]
    pub display_name: Option<String>,
    /// `recycle` or `permanent`.
    #[serde(default, rename = "type", deserialize_with = "wire::opt")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub deleted_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_split_at_fifty_without_id() {
        let mut fields: Vec<String> = (0..120).map(|i| format!("F{i}")).collect();
        fields.insert(3, "id".into());
        let chunks = field_chunks(&fields).unwrap();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 20]);
        assert!(chunks.iter().flatten().all(|f| f != "id"));
        assert!(field_chunks(&["id".to_string()]).is_err());
    }

    #[test]
    fn merge_joins_partial_rows() {
        let mut rows = vec![json!({"id":"1","A":1}).as_object().unwrap().clone(), json!({"id":"2","A":2}).as_object().unwrap().clone()];
        merge_by_id(&mut rows, vec![json!({"id":"2","B":"b2"}).as_object().unwrap().clone(), json!({"id":"1","B":"b1"}).as_object().unwrap().clone()]);
        assert_eq!(rows[0]["B"], "b1");
        assert_eq!(rows[1]["B"], "b2");
    }

    #[test]
    fn results_keep_input_positions_and_field_names() {
        let body = json!({"data":[
            {"code":"SUCCESS","status":"success","message":"record added","details":{"id":"11","Modified_Time":"2025-01-01T00:00:00+05:30"}},
            {"code":"MANDATORY_NOT_FOUND","status":"error","message":"required field not found","details":{"api_name":"Last_Name","json_path":"$.data[1].Last_Name"}}
        ]});
        let r = parse_results("records.insert", 100, 2, Some(serde_json::from_value(body).unwrap())).unwrap();
        assert_eq!(r[0].index, 100);
        assert_eq!(r[0].outcome.as_ref().unwrap().id, "11");
        let err = r[1].outcome.as_ref().unwrap_err();
        assert_eq!((r[1].index, err.code.as_str(), err.field()), (101, "MANDATORY_NOT_FOUND", Some("Last_Name")));
        assert!(parse_results("x", 0, 3, Some(WriteReply { data: vec![] })).is_err());
    }

    /// `details` is kept as text, read from bytes or from a Value alike;
    /// absent, null and `{}` read as no member, and an error keeps all of it.
    #[test]
    fn details_are_read_on_demand() {
        let text = br#"{"data":[{"status":"success","details":{"Modified_By":{"id":"9"},"id":11,"Modified_Time":"2025-01-01T00:00:00+05:30"}},
                     {"status":"success"},{"status":"success","details":null},{"status":"success","details":{}},
                     {"status":"error","code":"INVALID_DATA","details":{"api_name":"Email","json_path":"$.data[4].Email","limit":{"max":3}}}]}"#;
        let from_bytes: WriteReply = wire::parse("records.upsert", text).unwrap();
        let from_value: WriteReply = wire::parse_value("records.upsert", "", serde_json::from_slice(text).unwrap()).unwrap();
        assert_eq!(from_bytes.data, from_value.data);
        let r = parse_results("records.upsert", 0, 5, Some(from_bytes)).unwrap();
        let ok = r[0].outcome.as_ref().unwrap();
        assert_eq!((ok.id.as_str(), ok.modified_time.as_deref()), ("11", Some("2025-01-01T00:00:00+05:30")));
        for blank in &r[1..4] {
            assert_eq!(blank.outcome.as_ref().unwrap().id, "", "no details, no id");
        }
        let err = r[4].outcome.as_ref().unwrap_err();
        assert_eq!(err.details, json!({"api_name":"Email","json_path":"$.data[4].Email","limit":{"max":3}}));
        assert_eq!(err.field(), Some("Email"));
        let spaced = |text: &str| serde_json::from_str::<Details>(text).unwrap();
        assert_eq!(spaced(r#"{"a":1}"#), spaced(r#"{ "a" : 1 }"#));
    }
}
