//! Zoho down while every kind of flow runs: a channel (renewal and
//! catch-up), a scheduled push, a scheduled pull and a queued Bulk Read
//! job, on the test cluster's worker with its backoff at 1/200 of the real
//! schedule (10 ms doubling to 3 s, as 2 s to 10 minutes). Shared by the
//! fault-matrix test (tests/outage.rs) and the `outage` benchmark.

use std::collections::{BTreeMap, HashMap};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::worker::*;
use crate::{Client, Fault, Sim};

/// The backoff's scale: 2 s → 10 ms, 10 minutes → 3 s.
pub const SCALE: f64 = 200.0;

/// What an outage cost.
pub struct Outage {
    /// Calls Zoho refused while down, by endpoint.
    pub refused: BTreeMap<String, usize>,
    /// Their credits at list price (what they would cost were failed
    /// calls billed).
    pub credits: u64,
    /// Each flow's failures in a row at their most: one per attempt.
    pub attempts: HashMap<(String, String), i32>,
    /// The record edited in Zoho's UI while its API was down.
    pub edited: i64,
    pub channel: String,
}

impl Outage {
    pub fn calls(&self) -> usize {
        self.refused.values().sum()
    }

    /// Attempts of a worker that makes one attempt per flow per backoff
    /// step. A channel is two flows, its renewal and its catch-up, each
    /// backing off on its own (zoho.health shows the larger count).
    pub fn steps(&self) -> i32 {
        self.attempts.iter().map(|((flow, _), n)| if flow == "channel" { 2 * n } else { *n }).sum()
    }
}

pub fn zoho_names(sim: &Sim) -> BTreeMap<i64, String> {
    sim.records("Leads").iter().map(|r| (r["id"].as_str().unwrap().parse().unwrap(), r["Last_Name"].as_str().unwrap_or_default().to_string())).collect()
}

pub fn names(c: &mut Client, table: &str) -> BTreeMap<i64, String> {
    c.query(&format!("SELECT id, last_name FROM {table}"), &[]).unwrap().iter().map(|r| (r.get(0), r.get::<_, Option<String>>(1).unwrap_or_default())).collect()
}

/// Starts the four flows, takes Zoho's API down for `down` (every call
/// answered 503) while rows become pending and a record is edited in the
/// UI, and brings it back.
pub fn run(sim: &Sim, db: &mut WorkerDb, c: &mut Client, down: Duration) -> Outage {
    for (name, value) in [
        ("zoho_fdw.failure_first_wait", "10"),
        ("zoho_fdw.failure_max_wait", "3000"),
        // A renewal and a catch-up every second or so.
        ("zoho_fdw.channel_expiry", "60"),
        ("zoho_fdw.renew_margin", "59"),
        ("zoho_fdw.catchup_interval", "1"),
    ] {
        db.set(c, name, value);
    }
    c.batch_execute("DROP TABLE IF EXISTS crm_watched, crm_copy; SELECT zoho_create_mirror('Leads', 'crm_watched'); SELECT zoho_bulk_export('Leads', 'crm_watched')").unwrap();
    let channel: String = c.query_one("SELECT zoho_watch('Leads', 'crm_watched', notify_url => $1)", &[&HOOK]).unwrap().get(0);
    orders_table(c);
    orders(c, 50, 1);
    c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => 1, mapping => '{\"order_id\": \"parent_id\"}')").unwrap();
    wait_for(c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(20)).expect("the first push");
    // A pull every second, its first (a Bulk Read job) done.
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second')").unwrap();
    wait_for(c, "SELECT last_success IS NOT NULL FROM zoho.pull_schedules", Duration::from_secs(30)).expect("the pull's first run");
    // An export job of three pages: down in its second.
    c.batch_execute("CREATE TABLE crm_copy (LIKE crm_watched INCLUDING ALL); SELECT zoho_queue_export('Leads', 'crm_copy')").unwrap();
    wait_for(c, "SELECT EXISTS (SELECT 1 FROM zoho.job_queue WHERE kind = 'export' AND state = 'running' AND pages_done >= 1)", Duration::from_secs(30))
        .expect("the export job is under way");

    sim.clear_calls();
    sim.inject(Fault::status(503, u32::MAX));
    let started = Instant::now();
    orders(c, 20, 51);
    let edited = *zoho_names(sim).keys().nth(7).unwrap();
    sim.ui_edit("Leads", &edited.to_string(), json!({"Last_Name": "Edited while Zoho's API was down"})).unwrap();
    let mut attempts: HashMap<(String, String), i32> = HashMap::new();
    while started.elapsed() < down {
        for r in c.query("SELECT flow, coalesce(target, ''), failures FROM zoho.health", &[]).unwrap() {
            let e = attempts.entry((r.get(0), r.get(1))).or_default();
            *e = (*e).max(r.get(2));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let calls = sim.calls();
    sim.clear_faults();
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let mut credits = 0u64;
    for call in calls.iter().filter(|c| c.status == 503) {
        *refused.entry(call.endpoint.clone()).or_default() += 1;
        credits += u64::from(call.list_credits);
    }
    Outage { refused, credits, attempts, edited, channel }
}

/// Waits for every flow to recover and checks nothing was lost, falsely
/// marked synced or created twice; then removes what [`run`] added.
pub fn recovered(sim: &Sim, c: &mut Client, o: &Outage) {
    every_order_once(sim, c, 70);
    wait_for(c, "SELECT NOT EXISTS (SELECT 1 FROM zoho.job_queue WHERE state <> 'done')", Duration::from_secs(60)).expect("the job went on and finished");
    let zoho = zoho_names(sim);
    let started = Instant::now();
    while names(c, "crm_watched") != zoho || names(c, "crm_leads") != zoho || names(c, "crm_copy").len() != zoho.len() {
        assert!(started.elapsed() < Duration::from_secs(30), "the mirrors did not converge");
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(names(c, "crm_watched")[&o.edited], "Edited while Zoho's API was down");
    wait_for(c, "SELECT bool_and(state = 'ok') FROM zoho.health", Duration::from_secs(30)).expect("every flow is ok again");
    c.query_one("SELECT zoho_unwatch($1)", &[&o.channel]).unwrap();
    c.batch_execute("DROP TABLE crm_watched, crm_copy").unwrap();
}
