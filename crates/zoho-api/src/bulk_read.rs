//! Bulk read (zoho-api.md §7): create a job, poll it, download its zip to a
//! temporary file and stream the CSV rows, then follow `next_page_token`
//! to the next 200,000-row page. No page is ever held in memory whole.

use std::io::Read;
use std::sync::mpsc;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::job_wait::JobCallback;
use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::http::{Call, Target};
use crate::usage::BULK_READ_JOB_CREDITS;
use crate::wire;

/// Bulk-read criteria: one condition or a group (zoho-api.md §7.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Criteria {
    Condition { field: FieldRef, comparator: String, value: Value },
    Group { group_operator: String, group: Vec<Criteria> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldRef {
    pub api_name: String,
}

impl Criteria {
    pub fn condition(field: &str, comparator: &str, value: Value) -> Criteria {
        Criteria::Condition { field: FieldRef { api_name: field.into() }, comparator: comparator.into(), value }
    }

    pub fn and(group: Vec<Criteria>) -> Criteria {
        Criteria::Group { group_operator: "and".into(), group }
    }

    /// Records modified at or after `since` (incremental exports).
    pub fn modified_since(since: &chrono::DateTime<chrono::FixedOffset>) -> Criteria {
        Criteria::condition(
            "Modified_Time",
            "greater_equal",
            json!(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct BulkReadQuery {
    pub module: String,
    /// Empty: every field of the module.
    pub fields: Vec<String>,
    pub criteria: Option<Criteria>,
    pub cvid: Option<String>,
}

/// A job's `result`: present once Zoho has one, and printed by the docs
/// for every state.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct BulkReadResult {
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub page: Option<u32>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub per_page: Option<u64>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub count: Option<u64>,
    /// A path on the API domain (`/crm/bulk/v8/read/{id}/result`).
    #[serde(default, deserialize_with = "wire::opt")]
    pub download_url: Option<String>,
    #[serde(default, deserialize_with = "wire::flag")]
    pub more_records: bool,
    #[serde(default, deserialize_with = "wire::opt")]
    pub next_page_token: Option<String>,
    /// On `FAILURE`: Zoho's error envelope.
    #[serde(default, deserialize_with = "wire::opt")]
    pub error_message: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct BulkReadJob {
    #[serde(deserialize_with = "wire::id")]
    pub id: String,
    /// ADDED, QUEUED, IN PROGRESS (with a space), COMPLETED or FAILURE.
    pub state: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub result: Option<BulkReadResult>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub created_time: Option<String>,
}

impl BulkReadJob {
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "COMPLETED" | "FAILURE" | "FAILED")
    }

    /// Zoho's reason for a failed job.
    pub fn failure_message(&self) -> Option<String> {
        let m = self.result.as_ref()?.error_message.as_ref()?;
        Some(m.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| m.to_string()))
    }

    /// The job in a callback body, which has the status reply's shape.
    pub fn from_callback(body: &[u8]) -> Result<BulkReadJob> {
        let reply: BulkReadStatusReply = wire::parse("bulk_read.callback", body)?;
        reply.data.into_iter().next().ok_or_else(|| Error::malformed("bulk_read.callback", "key `data`: empty list"))
    }
}

/// `GET read/{id}` (and the callback Zoho POSTs when a job ends).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BulkReadStatusReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub data: Vec<BulkReadJob>,
}

/// `POST read`: `data[0].details` names the new job; `info` is `{}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BulkReadCreateReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub data: Vec<BulkReadCreated>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BulkReadCreated {
    #[serde(default, deserialize_with = "wire::opt")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub code: Option<String>,
    pub details: BulkReadCreatedDetails,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BulkReadCreatedDetails {
    #[serde(deserialize_with = "wire::id")]
    pub id: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub state: Option<String>,
}

impl ZohoClient {
    /// Creates a job for the first page of `query`, or for the page a
    /// previous job's `next_page_token` names (then only the token is sent:
    /// module, fields and criteria carry over).
    pub async fn bulk_read_create(&self, query: &BulkReadQuery, page_token: Option<&str>) -> Result<String> {
        self.create_read_job(query, page_token, None).await
    }

    async fn create_read_job(&self, query: &BulkReadQuery, page_token: Option<&str>, callback: Option<&dyn JobCallback>) -> Result<String> {
        let mut body = match page_token {
            Some(token) => json!({ "query": { "page_token": token } }),
            None => {
                let mut q = json!({ "module": { "api_name": query.module } });
                if !query.fields.is_empty() {
                    q["fields"] = json!(query.fields);
                }
                if let Some(c) = &query.criteria {
                    q["criteria"] = serde_json::to_value(c).expect("criteria serialize");
                }
                if let Some(cvid) = &query.cvid {
                    q["cvid"] = json!(cvid);
                }
                json!({ "query": q, "file_type": "csv" })
            }
        };
        if let Some(cb) = crate::job_wait::callback_json(callback) {
            body["callback"] = cb;
        }
        // A second job reads the same records (50 credits, no harm): retried.
        let call = Call::new("bulk_read.create", Method::POST, Target::Api(self.bulk_path("read")))
            .json(body)
            .credits(BULK_READ_JOB_CREDITS);
        let env: BulkReadCreateReply = self
            .t
            .send_json(&call)
            .await?
            .ok_or_else(|| Error::malformed("bulk_read.create", "no content"))?;
        env.data.into_iter().next().map(|c| c.details.id).ok_or_else(|| Error::malformed("bulk_read.create", "empty data[]"))
    }

    pub async fn bulk_read_status(&self, job_id: &str) -> Result<BulkReadJob> {
        let call = Call::new("bulk_read.status", Method::GET, Target::Api(self.bulk_path(&format!("read/{job_id}"))));
        let env: BulkReadStatusReply = self
            .t
            .send_json(&call)
            .await?
            .ok_or_else(|| Error::malformed("bulk_read.status", "no content"))?;
        env.data.into_iter().next().ok_or_else(|| Error::malformed("bulk_read.status", "empty data[]"))
    }

    /// Polls with exponential backoff until the job completes; a failed job
    /// is an error carrying Zoho's message. `progress` sees every poll.
    pub async fn bulk_read_wait(&self, job_id: &str, progress: &mut dyn FnMut(&BulkReadJob)) -> Result<BulkReadJob> {
        self.wait_read_job(job_id, progress, None).await
    }

    async fn wait_read_job(&self, job_id: &str, progress: &mut dyn FnMut(&BulkReadJob), callback: Option<&dyn JobCallback>) -> Result<BulkReadJob> {
        let poll = self.config().poll.clone();
        let started = tokio::time::Instant::now();
        loop {
            // A job is never done the moment it is created: wait first.
            let awaiting = BulkReadJob { id: job_id.into(), state: crate::job_wait::AWAITING_CALLBACK.into(), result: None, created_time: None };
            crate::job_wait::sleep_or_callback(self.t.cancel(), poll.next_wait(started.elapsed(), callback.is_some()), callback, &mut || progress(&awaiting)).await?;
            let job = self.bulk_read_status(job_id).await?;
            progress(&job);
            match job.state.as_str() {
                "COMPLETED" => return Ok(job),
                "FAILURE" | "FAILED" => {
                    let message = job.failure_message().unwrap_or_else(|| "no reason given".into());
                    return Err(Error::JobFailed { kind: "read", job_id: job_id.into(), message });
                }
                _ => {}
            }
            if started.elapsed() > poll.timeout {
                return Err(Error::Timeout { endpoint: "bulk_read.wait".into(), after: poll.timeout });
            }
        }
    }

    /// Downloads a completed job's zip into an anonymous temporary file and
    /// returns a streaming reader of its CSV.
    pub async fn bulk_read_download(&self, job: &BulkReadJob) -> Result<BulkRows> {
        BulkRows::from_zip(self.bulk_read_download_file(job).await?)
    }

    /// Downloads a completed job's zip into an anonymous temporary file.
    pub async fn bulk_read_download_file(&self, job: &BulkReadJob) -> Result<std::fs::File> {
        let url = job
            .result
            .as_ref()
            .and_then(|r| r.download_url.clone())
            .unwrap_or_else(|| self.bulk_path(&format!("read/{}/result", job.id)));
        let file = tempfile::tempfile()?;
        let call = Call::new("bulk_read.download", Method::GET, Target::Link(url));
        self.t.download(&call, &file).await?;
        Ok(file)
    }

    /// The whole export, page after page: create, wait, download, and on to
    /// the next page while `more_records`.
    pub fn bulk_export<'c>(&'c self, query: BulkReadQuery) -> BulkExport<'c> {
        BulkExport { client: self, query, next_token: None, pages: 0, done: false, ahead: None }
    }
}

/// Pages of a bulk export, each a stream of CSV rows.
pub struct BulkExport<'c> {
    client: &'c ZohoClient,
    query: BulkReadQuery,
    next_token: Option<String>,
    pages: u32,
    done: bool,
    /// The next page's job, created as soon as its token was known so that
    /// it runs while this page downloads and is applied.
    ahead: Option<(String, Option<Box<dyn JobCallback>>)>,
}

impl<'c> BulkExport<'c> {
    /// Goes on after `pages` pages, from Zoho's token for the next one
    /// (None: they were all read). The token lasts 24 hours.
    pub fn resume(&mut self, next_token: Option<String>, pages: u32) {
        self.done = next_token.is_none() && pages > 0;
        self.next_token = next_token;
        self.pages = pages;
        self.ahead = None;
    }

    /// The token the next page's job is created with; None before the
    /// first page and after the last.
    pub fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }

    /// Runs the next job and returns its rows with the job's final state.
    pub async fn next_page(&mut self, progress: &mut dyn FnMut(&BulkReadJob)) -> Result<Option<(BulkReadJob, BulkRows)>> {
        match self.next_page_file(progress).await? {
            None => Ok(None),
            Some((job, file)) => Ok(Some((job, BulkRows::from_zip(file)?))),
        }
    }

    /// Runs the next job and returns its downloaded zip, for readers other
    /// than [`BulkRows`] (such as [`crate::copy_text::CopyText`]).
    pub async fn next_page_file(&mut self, progress: &mut dyn FnMut(&BulkReadJob)) -> Result<Option<(BulkReadJob, std::fs::File)>> {
        if self.done {
            return Ok(None);
        }
        let (id, callback) = match self.ahead.take() {
            Some(ahead) => ahead,
            None => self.create(self.next_token.clone()).await?,
        };
        let job = self.client.wait_read_job(&id, progress, callback.as_deref()).await?;
        drop(callback);
        let result = job.result.clone();
        let next_token = result.as_ref().and_then(|r| r.next_page_token.clone()).filter(|_| result.as_ref().is_some_and(|r| r.more_records));
        // The next job starts now; one that cannot is created again by the
        // next call, which then reports why.
        if let Some(token) = &next_token {
            self.ahead = self.create(Some(token.clone())).await.ok();
        }
        let rows = self.client.bulk_read_download_file(&job).await?;
        self.pages += 1;
        self.next_token = next_token;
        self.done = self.next_token.is_none();
        Ok(Some((job, rows)))
    }

    async fn create(&self, token: Option<String>) -> Result<(String, Option<Box<dyn JobCallback>>)> {
        let callback = self.client.config().job_callbacks.as_ref().and_then(|c| c.register());
        let id = self.client.create_read_job(&self.query, token.as_deref(), callback.as_deref()).await?;
        Ok((id, callback))
    }

    pub fn pages_done(&self) -> u32 {
        self.pages
    }
}

/// The first CSV file of a Bulk Read zip, as a CSV reader.
pub(crate) fn csv_of(archive: &mut zip::ZipArchive<std::fs::File>) -> Result<csv::Reader<zip::read::ZipFile<'_, std::fs::File>>> {
    let index = (0..archive.len())
        .find(|&i| archive.by_index(i).map(|f| f.name().ends_with(".csv")).unwrap_or(false))
        .ok_or_else(|| Error::malformed("bulk_read.download", "the zip holds no CSV file"))?;
    let entry = archive.by_index(index)?;
    Ok(csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(entry))
}

/// Rows sent from the parsing thread per message: amortises channel costs.
const BATCH: usize = 1024;

/// The CSV rows of one bulk-read zip, parsed on a background thread and
/// handed over in small batches, so memory stays flat at any size.
pub struct BulkRows {
    headers: Vec<String>,
    rx: mpsc::Receiver<Result<Vec<csv::StringRecord>>>,
    batch: std::vec::IntoIter<csv::StringRecord>,
    failed: bool,
}

impl BulkRows {
    /// Reads the first CSV in `zip` (a file positioned anywhere).
    pub fn from_zip(file: std::fs::File) -> Result<BulkRows> {
        let (head_tx, head_rx) = mpsc::sync_channel::<Result<Vec<String>>>(1);
        let (tx, rx) = mpsc::sync_channel(4);
        std::thread::Builder::new().name("zoho-bulk-csv".into()).spawn(move || {
            let mut head_tx = Some(head_tx);
            let run = |head_tx: &mut Option<mpsc::SyncSender<Result<Vec<String>>>>| -> Result<()> {
                let mut archive = zip::ZipArchive::new(file)?;
                let mut reader = csv_of(&mut archive)?;
                let headers = reader.headers()?.iter().map(str::to_string).collect();
                if head_tx.take().expect("headers sent once").send(Ok(headers)).is_err() {
                    return Ok(());
                }
                let mut batch = Vec::with_capacity(BATCH);
                let mut record = csv::StringRecord::new();
                loop {
                    match reader.read_record(&mut record) {
                        Ok(true) => batch.push(std::mem::take(&mut record)),
                        Ok(false) => break,
                        Err(e) => {
                            // Deliver the good rows before the error.
                            let _ = tx.send(Ok(std::mem::take(&mut batch)));
                            return Err(e.into());
                        }
                    }
                    if batch.len() == BATCH && tx.send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).is_err() {
                        return Ok(()); // reader dropped: stop quietly
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
                Ok(())
            };
            if let Err(e) = run(&mut head_tx) {
                // Whichever side is waiting gets the error.
                match head_tx {
                    Some(h) => drop(h.send(Err(e))),
                    None => drop(tx.send(Err(e))),
                }
            }
        })?;
        let headers = head_rx
            .recv()
            .map_err(|_| Error::malformed("bulk_read.download", "CSV reader stopped before the header"))??;
        Ok(BulkRows { headers, rx, batch: Vec::new().into_iter(), failed: false })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Column of a field; the id column is `Id` in Zoho's files, `id` elsewhere.
    pub fn column(&self, api_name: &str) -> Option<usize> {
        self.headers
            .iter()
            .position(|h| h == api_name)
            .or_else(|| self.headers.iter().position(|h| h.eq_ignore_ascii_case(api_name)))
    }
}

impl std::fmt::Debug for BulkRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkRows").field("headers", &self.headers).finish_non_exhaustive()
    }
}

impl Iterator for BulkRows {
    type Item = Result<csv::StringRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(r) = self.batch.next() {
                return Some(Ok(r));
            }
            match self.rx.recv() {
                Ok(Ok(batch)) => self.batch = batch.into_iter(),
                Ok(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Err(_) => return None,
            }
        }
    }
}

/// Reads every row of a zip without the thread (the benchmark's baseline).
pub fn count_zip_rows(file: std::fs::File) -> Result<u64> {
    let mut archive = zip::ZipArchive::new(file)?;
    let mut entry = archive.by_index(0)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut lines = 0u64;
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(csv_text: &str) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        {
            let mut w = zip::ZipWriter::new(&mut f);
            w.start_file("123.csv", zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(csv_text.as_bytes()).unwrap();
            w.finish().unwrap();
        }
        f
    }

    #[test]
    fn streams_rows_across_batches_with_quoting() {
        let mut text = String::from("Id,Last_Name,Description\n");
        for i in 0..(BATCH * 2 + 7) {
            text.push_str(&format!("{i},\"Name, {i}\",\"line1\nline2\"\n"));
        }
        let rows = BulkRows::from_zip(zip_of(&text)).unwrap();
        assert_eq!(rows.column("id"), Some(0));
        assert_eq!(rows.column("Description"), Some(2));
        let all: Vec<_> = rows.collect::<Result<_>>().unwrap();
        assert_eq!(all.len(), BATCH * 2 + 7);
        assert_eq!(&all[5][1], "Name, 5");
        assert_eq!(&all[5][2], "line1\nline2");
    }

    #[test]
    fn broken_files_are_errors_not_empty_results() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"this is not a zip").unwrap();
        assert!(BulkRows::from_zip(f).is_err());
        // A row with the wrong number of columns is reported, not skipped.
        let rows = BulkRows::from_zip(zip_of("Id,A\n1,x\n2,y,z\n")).unwrap();
        let got: Vec<_> = rows.collect();
        assert!(got[0].is_ok() && got[1].is_err(), "{got:?}");
    }

    #[test]
    fn criteria_serialize_like_zoho() {
        let c = Criteria::and(vec![Criteria::condition("Lead_Status", "equal", json!("Contacted"))]);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"group_operator":"and","group":[{"field":{"api_name":"Lead_Status"},"comparator":"equal","value":"Contacted"}]})
        );
    }
}
