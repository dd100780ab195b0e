//! Shared simulator state: the org, the record store, id counters, the
//! deleted log, tokens, notification channels and bulk jobs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Map, Value};

use crate::calllog::CallLog;
use crate::clock::{fmt_dt, Clock};
use crate::config::SimConfig;
use crate::credits::Credits;
use crate::faults::Faults;
use crate::limits::Limits;
use crate::schema::ModuleDef;

/// A CRM user (owner lookups point here).
#[derive(Debug, Clone)]
pub struct User {
    pub id: &'static str,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub email: &'static str,
    pub role: &'static str,
    pub profile: &'static str,
}

impl User {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
    /// `{"id","name","email"}`, as owner lookups are returned.
    pub fn owner_json(&self) -> Value {
        json!({"id": self.id, "name": self.full_name(), "email": self.email})
    }
    /// `{"id","name"}`, as Created_By / Modified_By in write results.
    pub fn minified(&self) -> Value {
        json!({"id": self.id, "name": self.full_name()})
    }
    /// What COQL's `Owner.<x>` paths resolve against.
    pub fn as_record(&self) -> Map<String, Value> {
        let v = json!({"id": self.id, "name": self.full_name(), "first_name": self.first_name, "last_name": self.last_name,
            "full_name": self.full_name(), "email": self.email});
        v.as_object().cloned().unwrap_or_default()
    }
}

/// The API user is the first; the others own seeded records and make UI edits.
pub static USERS: &[User] = &[
    User { id: "5725767000000411001", first_name: "Patricia", last_name: "Boyle", email: "patricia.boyle@zylker-sim.com", role: "CEO", profile: "Administrator" },
    User { id: "5725767000000411005", first_name: "Rahul", last_name: "Menon", email: "rahul.menon@zylker-sim.com", role: "Manager", profile: "Standard" },
    User { id: "5725767000000411009", first_name: "Chen", last_name: "Wei", email: "chen.wei@zylker-sim.com", role: "Manager", profile: "Standard" },
];

pub fn api_user() -> &'static User {
    &USERS[0]
}
pub fn ui_user() -> &'static User {
    &USERS[1]
}
pub fn user_by_id(id: &str) -> Option<&'static User> {
    USERS.iter().find(|u| u.id == id)
}

#[derive(Debug, Default)]
pub struct ModuleStore {
    /// Read freely; change only through `insert`, `update` and `remove`,
    /// which keep the value index current.
    pub records: BTreeMap<i64, Map<String, Value>>,
    pub next_id: i64,
    /// Record ids by field value (as duplicate checks compare values), for
    /// upsert matching and unique checks: a scan per record made a 100-row
    /// upsert into 30,000 records take seconds. Built per field on first
    /// use; State sits behind a Mutex, so a RefCell suffices.
    index: std::cell::RefCell<HashMap<String, HashMap<String, std::collections::BTreeSet<i64>>>>,
}

/// The form in which duplicate checks compare a value (see
/// `values::same_value`): trimmed ASCII-case-insensitive text, lookups by id.
fn index_key(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(format!("s{}", s.trim().to_ascii_lowercase())),
        Value::Object(o) => o.get("id").map(|id| format!("o{id}")),
        other => Some(format!("v{other}")),
    }
}

impl ModuleStore {
    pub fn insert(&mut self, id: i64, rec: Map<String, Value>) {
        for (field, by_value) in self.index.get_mut().iter_mut() {
            if let Some(k) = rec.get(field).and_then(index_key) {
                by_value.entry(k).or_default().insert(id);
            }
        }
        self.records.insert(id, rec);
    }

    /// Changes record `id` in place; `None` when there is none.
    pub fn update<R>(&mut self, id: i64, f: impl FnOnce(&mut Map<String, Value>) -> R) -> Option<R> {
        let rec = self.records.get_mut(&id)?;
        let index = self.index.get_mut();
        let before: Vec<Option<String>> = index.keys().map(|field| rec.get(field).and_then(index_key)).collect();
        let out = f(rec);
        for ((field, by_value), old) in index.iter_mut().zip(before) {
            let new = rec.get(field).and_then(index_key);
            if new != old {
                if let Some(o) = old {
                    if let Some(set) = by_value.get_mut(&o) {
                        set.remove(&id);
                    }
                }
                if let Some(n) = new {
                    by_value.entry(n).or_default().insert(id);
                }
            }
        }
        Some(out)
    }

    pub fn remove(&mut self, id: i64) -> Option<Map<String, Value>> {
        let rec = self.records.remove(&id)?;
        for (field, by_value) in self.index.get_mut().iter_mut() {
            if let Some(set) = rec.get(field).and_then(index_key).and_then(|k| by_value.get_mut(&k)) {
                set.remove(&id);
            }
        }
        Some(rec)
    }

    /// The lowest id other than `exclude` whose `field` has `value`.
    pub fn find(&self, field: &str, value: &Value, exclude: Option<i64>) -> Option<i64> {
        let key = index_key(value)?;
        let mut index = self.index.borrow_mut();
        let by_value = index.entry(field.to_string()).or_insert_with(|| {
            let mut m: HashMap<String, std::collections::BTreeSet<i64>> = HashMap::new();
            for (id, rec) in &self.records {
                if let Some(k) = rec.get(field).and_then(index_key) {
                    m.entry(k).or_default().insert(*id);
                }
            }
            m
        });
        by_value.get(&key)?.iter().copied().find(|id| Some(*id) != exclude)
    }
}

#[derive(Debug, Clone)]
pub struct DeletedEntry {
    pub module: String,
    pub id: i64,
    pub display_name: String,
    pub created_by: Value,
    pub deleted_by: Value,
    pub deleted_time: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub issued_seq: u64,
}

#[derive(Debug, Default)]
pub struct Tokens {
    pub access: HashMap<String, AccessToken>,
    /// Refresh times per refresh token (sim clock), for the 10/10 min limit.
    pub refreshes: HashMap<String, VecDeque<DateTime<Utc>>>,
    pub seq: u64,
}

/// A records-API page token: where the next page starts and what it is bound to.
#[derive(Debug, Clone)]
pub struct PageToken {
    pub binding: String,
    pub offset: usize,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Channel {
    /// Sent as a number or a string; answered as a string, as Zoho does.
    pub channel_id: String,
    pub events: Vec<String>,
    pub notify_url: String,
    pub token: Option<String>,
    pub channel_expiry: DateTime<Utc>,
    pub return_affected_field_values: bool,
    pub notify_on_related_action: bool,
    pub notification_condition: Value,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub seq: u64,
    pub channel_id: String,
    pub notify_url: String,
    pub module: String,
    pub operation: String,
    pub ids: Vec<String>,
    /// HTTP status the receiver answered, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Added,
    InProgress,
    Completed,
    Failed,
}

impl JobState {
    pub fn read_str(&self) -> &'static str {
        match self {
            JobState::Added => "ADDED",
            JobState::InProgress => "IN PROGRESS",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILURE",
        }
    }
    /// Bulk write spells its states its own way.
    pub fn write_str(&self) -> &'static str {
        match self {
            JobState::Failed => "FAILED",
            JobState::InProgress => "INPROGRESS",
            other => other.read_str(),
        }
    }

    /// A bulk-write resource's `code`.
    pub fn write_code(&self) -> &'static str {
        match self {
            JobState::Completed => "SUCCESS",
            JobState::Failed => "FAILED",
            _ => "ADDED",
        }
    }
}

/// What the shared job life cycle needs of a bulk job.
pub trait Job: Clone {
    fn state_mut(&mut self) -> &mut JobState;
    /// A `job_failed` fault was armed for this job.
    fn fails(&self) -> bool;
}

/// How a bulk job came out of [`App::advance_job`].
pub enum Advanced<J> {
    /// IN PROGRESS: do the work, and complete the job no sooner than the
    /// deadline.
    Run(J, tokio::time::Instant),
    /// Marked FAILED (a fault): send the callback and stop.
    Failed,
    /// The job is gone.
    Gone,
}

#[derive(Debug, Clone)]
pub struct BulkReadJob {
    pub id: String,
    pub module: String,
    /// Requested fields (None: every field).
    pub fields: Option<Vec<String>>,
    pub criteria: Option<Value>,
    pub cvid: Option<String>,
    pub page: u32,
    /// Rows with id greater than this are exported.
    pub after_id: i64,
    pub rows_before: usize,
    pub state: JobState,
    pub created_time: DateTime<Utc>,
    pub callback: Option<Value>,
    pub fail: bool,
    pub count: usize,
    pub more_records: bool,
    pub next_page_token: Option<String>,
    pub zip: Option<Bytes>,
    pub used_page_token: Option<String>,
}

/// What a bulk-read `page_token` carries over to the next job.
#[derive(Debug, Clone)]
pub struct BulkReadCursor {
    pub module: String,
    pub fields: Option<Vec<String>>,
    pub criteria: Option<Value>,
    pub cvid: Option<String>,
    pub page: u32,
    pub after_id: i64,
    pub rows_before: usize,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub file_id: String,
    pub csv_name: String,
    pub csv: Bytes,
    /// Upload time, in the org's zone.
    pub created_time: String,
}

#[derive(Debug, Clone, Default)]
pub struct WriteCounts {
    pub added: usize,
    pub updated: usize,
    pub skipped: usize,
    pub total: usize,
}

#[derive(Debug, Clone)]
pub struct BulkWriteJob {
    pub id: String,
    pub operation: String,
    pub module: String,
    pub request: Value,
    pub file: UploadedFile,
    pub state: JobState,
    pub created_time: DateTime<Utc>,
    pub counts: WriteCounts,
    pub fail: bool,
    pub skip_rows: usize,
    pub result_zip: Option<Bytes>,
    pub callback: Option<Value>,
}

#[derive(Default)]
pub struct State {
    pub store: HashMap<String, ModuleStore>,
    pub deleted: Vec<DeletedEntry>,
    pub tokens: Tokens,
    pub page_tokens: HashMap<String, PageToken>,
    pub channels: BTreeMap<String, Channel>,
    pub deliveries: Vec<Delivery>,
    pub delivery_seq: u64,
    pub bulk_reads: BTreeMap<String, BulkReadJob>,
    pub bulk_read_cursors: HashMap<String, BulkReadCursor>,
    pub uploads: HashMap<String, UploadedFile>,
    pub bulk_writes: BTreeMap<String, BulkWriteJob>,
    pub downloads: VecDeque<DateTime<Utc>>,
    pub next_job_id: i64,
    pub token_seq: u64,
    pub pending_job_failures: u32,
    pub pending_skip_rows: usize,
    /// The sim day (epoch days) at which each module's Days_Open was last refreshed.
    pub formula_day: HashMap<String, i64>,
}

/// One job in the notifier's queue.
pub struct Outgoing {
    pub seq: u64,
    pub url: String,
    pub payload: Value,
}

/// One module of the catalog as it was when looked up: an admin may change
/// a module's fields while requests run (see [`App::edit_module`]).
#[derive(Clone)]
pub struct ModuleRef {
    all: Arc<Vec<ModuleDef>>,
    index: usize,
}

impl std::ops::Deref for ModuleRef {
    type Target = ModuleDef;
    fn deref(&self) -> &ModuleDef {
        &self.all[self.index]
    }
}

pub struct App {
    pub cfg: SimConfig,
    /// Copied on write: readers keep the version they looked up.
    pub catalog: std::sync::RwLock<Arc<Vec<ModuleDef>>>,
    pub clock: Clock,
    pub tz: FixedOffset,
    pub base_url: OnceLock<String>,
    pub st: Mutex<State>,
    pub calls: Mutex<CallLog>,
    pub faults: Mutex<Faults>,
    pub credits: Mutex<Credits>,
    pub limits: Limits,
    pub http: reqwest::Client,
    pub notify_tx: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    /// When the simulator started: the call log's times count from here.
    pub started: std::time::Instant,
}

impl App {
    /// ADDED → IN PROGRESS after one `bulk_step_ms`, or FAILED one step
    /// later for a job with an armed fault: the life cycle bulk reads and
    /// writes share. The work runs while the job is IN PROGRESS, and the
    /// job completes no sooner than [`Advanced::Run`]'s deadline, a step
    /// after it started: the job takes its two steps, or the simulator's
    /// own work when that is longer.
    pub async fn advance_job<J: Job>(&self, id: &str, jobs: fn(&mut State) -> &mut BTreeMap<String, J>) -> Advanced<J> {
        let step = std::time::Duration::from_millis(self.cfg.bulk_step_ms);
        tokio::time::sleep(step).await;
        let deadline = tokio::time::Instant::now() + step;
        let job = {
            let mut st = self.st();
            let Some(j) = jobs(&mut st).get_mut(id) else { return Advanced::Gone };
            *j.state_mut() = JobState::InProgress;
            j.clone()
        };
        if !job.fails() {
            return Advanced::Run(job, deadline);
        }
        tokio::time::sleep_until(deadline).await;
        match jobs(&mut self.st()).get_mut(id) {
            Some(j) => {
                *j.state_mut() = JobState::Failed;
                Advanced::Failed
            }
            None => Advanced::Gone,
        }
    }

    /// POSTs a finished job's details to the job's `callback.url`, as Zoho
    /// does; delivery failures are the receiver's problem.
    pub async fn post_job_callback(&self, callback: Option<&Value>, body: impl FnOnce() -> Value) {
        let Some(url) = callback.and_then(|c| c.get("url")).and_then(|u| u.as_str()) else { return };
        let _ = self.http.post(url).timeout(std::time::Duration::from_secs(5)).json(&body()).send().await;
    }

    pub fn st(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The catalog as it is now.
    pub fn catalog(&self) -> Arc<Vec<ModuleDef>> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn find_module(&self, found: impl Fn(&ModuleDef) -> bool) -> Option<ModuleRef> {
        let all = self.catalog();
        let index = all.iter().position(found)?;
        Some(ModuleRef { all, index })
    }
    pub fn module(&self, api_name: &str) -> Option<ModuleRef> {
        self.find_module(|m| m.api_name == api_name)
    }
    /// A module the records / COQL / bulk APIs serve (case-insensitive name,
    /// as Zoho matches module names).
    pub fn data_module(&self, api_name: &str) -> Option<ModuleRef> {
        self.find_module(|m| m.api_name.eq_ignore_ascii_case(api_name) && m.api_supported && m.data_access)
    }
    /// A module's API name as the catalog spells it.
    pub fn module_name(&self, api_name: &str) -> String {
        self.find_module(|m| m.api_name.eq_ignore_ascii_case(api_name)).map(|m| m.api_name.to_string()).unwrap_or_else(|| api_name.to_string())
    }
    /// Changes a module's definition, as an admin does in Zoho's setup
    /// (fields added, removed, retyped); false when there is no such module.
    pub fn edit_module(&self, api_name: &str, edit: impl FnOnce(&mut ModuleDef)) -> bool {
        let mut guard = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<ModuleDef> = (**guard).clone();
        let Some(m) = all.iter_mut().find(|m| m.api_name.eq_ignore_ascii_case(api_name)) else { return false };
        edit(m);
        *guard = Arc::new(all);
        true
    }
    pub fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
    pub fn fmt(&self, t: DateTime<Utc>) -> String {
        fmt_dt(t, self.tz)
    }
    pub fn now_str(&self) -> String {
        self.fmt(self.now())
    }
    pub fn next_job_id(&self, st: &mut State) -> String {
        st.next_job_id += 1;
        (5_725_767_000_009_000_000_i64 + st.next_job_id * 7).to_string()
    }
}

/// The `{"id","name"}` of a record as lookups to it show it.
pub fn display_name(module: &str, rec: &Map<String, Value>) -> String {
    let s = |k: &str| rec.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    match module {
        "Accounts" => s("Account_Name"),
        "Deals" => s("Deal_Name"),
        "Leads" | "Contacts" => {
            let f = s("First_Name");
            let l = s("Last_Name");
            if f.is_empty() {
                l
            } else {
                format!("{f} {l}")
            }
        }
        _ => s("Name"),
    }
}

/// Record id as i64 from a JSON string or number.
pub fn id_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

impl Job for BulkReadJob {
    fn state_mut(&mut self) -> &mut JobState {
        &mut self.state
    }

    fn fails(&self) -> bool {
        self.fail
    }
}

impl Job for BulkWriteJob {
    fn state_mut(&mut self) -> &mut JobState {
        &mut self.state
    }

    fn fails(&self) -> bool {
        self.fail
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    #[test]
    fn the_index_compares_as_duplicate_checks_do() {
        let vals = [json!("Abc"), json!(" abc "), json!("ABD"), json!(1), json!(1.0), json!(true), json!({"id": "7"}), json!({"id": "7", "name": "x"}), json!(null)];
        for a in &vals {
            for b in &vals {
                let same = index_key(a).is_some() && index_key(a) == index_key(b);
                assert_eq!(same, crate::values::same_value(a, b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn the_index_follows_inserts_updates_and_removes() {
        let mut s = ModuleStore::default();
        s.insert(1, json!({"Email": "a@x.io"}).as_object().unwrap().clone());
        assert_eq!(s.find("Email", &json!("A@X.IO"), None), Some(1));
        s.insert(2, json!({"Email": "b@x.io"}).as_object().unwrap().clone());
        s.update(1, |r| r.insert("Email".into(), json!("c@x.io")));
        assert_eq!(s.find("Email", &json!("a@x.io"), None), None);
        assert_eq!(s.find("Email", &json!("c@x.io"), None), Some(1));
        assert_eq!(s.find("Email", &json!("c@x.io"), Some(1)), None);
        s.remove(2);
        assert_eq!(s.find("Email", &json!("b@x.io"), None), None);
    }
}
