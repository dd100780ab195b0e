//! zoho_upsert_pending against a real PostgreSQL and the simulator: the
//! seed scenarios (initial load, trickle, rejected rows), rows changed
//! mid-push, concurrent pushes, and faults. After each, the invariants:
//! no row lost, none falsely marked synced, no duplicate record in Zoho.

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use zoho_fdw_tests::*;

const MAPPING: &str = r#"{"order_id": "parent_id", "customer": "Customer_Name"}"#;

fn setup(sim: &Sim, db: &TestDb, n: usize) -> Client {
    let mut c = db.client_for(sim);
    c.batch_execute(&format!(
        "CREATE TABLE orders (order_id text PRIMARY KEY, name text, customer text, amount numeric(12,2), order_date date, quantity int,
                              synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text, zoho_synced_at timestamptz);
         CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();
         INSERT INTO orders (order_id, name, customer, amount, order_date, quantity)
         SELECT 'ORD-' || g, 'Order ' || g, 'Customer ' || g % 97, g * 1.5, date '2026-01-01' + g % 365, g FROM generate_series(1, {n}) g;"
    ))
    .unwrap();
    c
}

#[derive(Debug, PartialEq, Eq)]
struct Pushed {
    mode: String,
    pending: i64,
    synced: i64,
    failed: i64,
    api_calls: i32,
    credits: i32,
}

fn push(c: &mut Client, mode: &str) -> Result<Pushed, postgres::Error> {
    let row = c.query_one("SELECT * FROM zoho_upsert_pending('orders', 'Orders', mode => $1, mapping => $2::text::jsonb)", &[&mode, &MAPPING])?;
    Ok(Pushed { mode: row.get(0), pending: row.get(1), synced: row.get(2), failed: row.get(3), api_calls: row.get(4), credits: row.get(5) })
}

/// Calls and credits the simulator counted, without the metadata calls a
/// fresh session makes once.
fn push_usage(sim: &Sim) -> (u64, u64) {
    sim.credits().by_endpoint.iter().filter(|(e, _)| !e.starts_with("meta.")).fold((0, 0), |(calls, credits), (_, u)| (calls + u.calls, credits + u.credits))
}

/// The invariants after any push, failed or not: every row marked synced
/// is in Zoho with its current values and its record id; no record exists
/// twice. Returns how many rows are synced.
fn check_invariants(sim: &Sim, c: &mut Client) -> usize {
    let records = sim.records("Orders");
    let mut by_key: HashMap<String, &serde_json::Map<String, serde_json::Value>> = HashMap::new();
    for r in &records {
        let key = r["parent_id"].as_str().expect("every pushed record has its key").to_string();
        assert!(by_key.insert(key.clone(), r).is_none(), "record {key} exists twice in Zoho");
    }
    let synced = c.query("SELECT order_id, name, quantity, zoho_id FROM orders WHERE synced", &[]).unwrap();
    for row in &synced {
        let key: String = row.get(0);
        let rec = by_key.get(&key).unwrap_or_else(|| panic!("{key} is marked synced but Zoho has no record of it"));
        assert_eq!(rec["Name"], serde_json::json!(row.get::<_, String>(1)), "{key}: Zoho holds another name than the synced row");
        assert_eq!(rec["Quantity"], serde_json::json!(row.get::<_, i32>(2)), "{key}");
        assert_eq!(rec["id"], serde_json::json!(row.get::<_, i64>(3).to_string()), "{key}: zoho_id");
    }
    synced.len()
}

fn pending(c: &mut Client) -> i64 {
    c.query_one("SELECT count(*) FROM orders WHERE NOT synced", &[]).unwrap().get(0)
}

#[test]
fn seed_scenarios_initial_load_trickle_and_rejected_rows() {
    let sim = start_sim(SimConfig::default().bulk_step_ms(20));
    let db = TestDb::new("push_seed");
    let mut c = setup(&sim, &db, 30_000);

    // 30,000 new rows: one bulk job of 25,000 plus 5,000 by upsert, the
    // planner's minimum: 503 for the job (create 500, upload, one status
    // read, download) + 500 for 50 upsert calls.
    let p = push(&mut c, "auto").unwrap();
    assert_eq!((p.mode.as_str(), p.pending, p.synced, p.failed), ("bulk+upsert", 30_000, 30_000, 0));
    let (calls, credits) = push_usage(&sim);
    assert_eq!(credits, zoho_api_min(30_000), "credits beyond the planner's minimum");
    assert_eq!(calls, 54, "upload, create, one status read, download and 50 upserts");
    let total = sim.credits();
    assert_eq!(p.credits as u64, total.used, "the result counts what the simulator charged");
    assert_eq!(p.api_calls as u64, total.by_endpoint.values().map(|u| u.calls).sum::<u64>() - total.by_endpoint.get("oauth.token").map_or(0, |u| u.calls));
    assert_eq!(check_invariants(&sim, &mut c), 30_000);
    assert_eq!(sim.records("Orders").len(), 30_000);

    // 150 updated rows: the Upsert API, 2 calls, 15 credits (the field
    // metadata is cached by the session).
    c.execute("UPDATE orders SET quantity = quantity + 1 WHERE quantity <= 150", &[]).unwrap();
    assert_eq!(pending(&mut c), 150);
    let before = sim.credits().used;
    let p = push(&mut c, "auto").unwrap();
    assert_eq!(p, Pushed { mode: "upsert".into(), pending: 150, synced: 150, failed: 0, api_calls: 2, credits: 15 });
    assert_eq!(sim.credits().used - before, 15);

    // 3 rows Zoho skips stay pending with the reason; fixed, they go out.
    c.execute("UPDATE orders SET name = NULL WHERE order_id IN ('ORD-7', 'ORD-700', 'ORD-7000')", &[]).unwrap();
    let p = push(&mut c, "bulk").unwrap();
    assert_eq!((p.mode.as_str(), p.pending, p.synced, p.failed), ("bulk", 3, 0, 3));
    let errors: Vec<String> = c.query("SELECT zoho_error FROM orders WHERE NOT synced", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(errors, vec!["MANDATORY_NOT_FOUND Name"; 3]);
    c.execute("UPDATE orders SET name = 'Fixed ' || order_id WHERE name IS NULL", &[]).unwrap();
    let p = push(&mut c, "auto").unwrap();
    assert_eq!((p.synced, p.failed), (3, 0));
    assert_eq!(pending(&mut c), 0);
    assert_eq!(c.query_one("SELECT count(zoho_error) FROM orders", &[]).unwrap().get::<_, i64>(0), 0);
    assert_eq!(check_invariants(&sim, &mut c), 30_000);
    assert_eq!(sim.records("Orders").len(), 30_000);
}

/// The planner's figure, restated: 503 per bulk job, 1 per 10 upserted.
fn zoho_api_min(n: u64) -> u64 {
    (0..=n.div_ceil(25_000)).map(|b| b * 503 + n.saturating_sub(b * 25_000).div_ceil(10)).min().unwrap()
}

/// The org's zgid, which every bulk upload names, is read once for all
/// sessions: it is kept in shared memory beside the credential's token.
#[test]
fn a_new_session_uploads_without_reading_the_org_again() {
    let sim = start_sim(SimConfig::default().bulk_step_ms(0));
    let db = TestDb::new("push_zgid");
    let mut c = setup(&sim, &db, 200);
    assert_eq!(push(&mut c, "bulk").unwrap().synced, 200);
    let org_reads = |sim: &Sim| sim.credits().by_endpoint.get("meta.org").map_or(0, |u| u.calls);
    assert_eq!(org_reads(&sim), 1);
    drop(c);
    let mut c = db.client();
    c.batch_execute("UPDATE orders SET quantity = quantity + 1").unwrap();
    let p = push(&mut c, "bulk").unwrap();
    assert_eq!((p.mode.as_str(), p.synced), ("bulk", 200));
    assert_eq!(org_reads(&sim), 1, "the second session read the org again");
    assert_eq!(check_invariants(&sim, &mut c), 200);
}

/// Marking reads only the pages of the rows it marks. PostgreSQL prices
/// each TID of `ctid = ANY` as a random page read, so on a small table it
/// would rather scan the whole table for every batch of 1,000.
#[test]
fn marking_reads_the_pushed_rows_by_tid_not_the_whole_table() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("push_plan");
    let mut c = setup(&sim, &db, 20_000);
    // 3,000 pending rows, together at the start of the table.
    c.batch_execute(
        "ALTER TABLE orders DISABLE TRIGGER orders_pending;
         UPDATE orders SET synced = true WHERE quantity > 3000;
         ALTER TABLE orders ENABLE TRIGGER orders_pending;",
    )
    .unwrap();
    c.batch_execute("VACUUM ANALYZE orders").unwrap();
    let plans = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = plans.clone();
    let mut config: postgres::Config = db.dsn.parse().unwrap();
    config.notice_callback(move |n| sink.lock().unwrap().push(n.message().to_string()));
    let mut c = config.connect(NoTls).unwrap();
    c.batch_execute("LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice").unwrap();
    let p = push(&mut c, "upsert").unwrap();
    assert_eq!((p.pending, p.synced), (3_000, 3_000));
    // Taken out: the callback runs again for every later statement.
    let plans = std::mem::take(&mut *plans.lock().unwrap());
    let marking: Vec<&String> = plans.iter().filter(|p| p.contains("Update on orders t")).collect();
    // 30 calls, 10 at a time: once the last call is sent, the 2,000 rows
    // answered so far are marked beside it and its round; then the last 1,000.
    assert_eq!(marking.len(), 2, "a marking statement once every call has started, and one after: {plans:#?}");
    for plan in marking {
        assert!(plan.contains("Tid Range Scan on orders t") || plan.contains("Tid Scan on orders t"), "{plan}");
        assert!(!plan.contains("Seq Scan on orders"), "{plan}");
    }
    assert_eq!(pending(&mut c), 0);
    assert_eq!(sim.records("Orders").len(), 3_000);
    let ids: i64 = c.query_one("SELECT count(zoho_id) FROM orders WHERE quantity <= 3000", &[]).unwrap().get(0);
    assert_eq!(ids, 3_000, "every pushed row has its record id");
}

/// The trigger takes each row apart once. Rows written before a column was
/// added are shorter than the table: the added column reads as its default
/// (or NULL), and only a real change to it marks the row pending.
#[test]
fn the_trigger_compares_rows_older_than_an_added_column() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("push_trigger_added_column");
    let mut c = setup(&sim, &db, 4);
    push(&mut c, "upsert").unwrap();
    assert_eq!(pending(&mut c), 0);
    c.batch_execute("ALTER TABLE orders ADD COLUMN region text DEFAULT 'north', ADD COLUMN note text").unwrap();
    let pending_keys = |c: &mut Client| -> Vec<String> { c.query("SELECT order_id FROM orders WHERE NOT synced ORDER BY 1", &[]).unwrap().iter().map(|r| r.get(0)).collect() };
    // Bookkeeping, the default itself and NULL over NULL are no change.
    c.batch_execute(
        "UPDATE orders SET zoho_error = 'seen', zoho_synced_at = now();
         UPDATE orders SET region = 'north' WHERE order_id = 'ORD-1';
         UPDATE orders SET note = NULL WHERE order_id = 'ORD-2';",
    )
    .unwrap();
    assert_eq!(pending_keys(&mut c), Vec::<String>::new());
    c.batch_execute(
        "UPDATE orders SET region = 'south' WHERE order_id = 'ORD-1';
         UPDATE orders SET note = 'call first' WHERE order_id = 'ORD-2';
         UPDATE orders SET quantity = NULL WHERE order_id = 'ORD-3';",
    )
    .unwrap();
    assert_eq!(pending_keys(&mut c), ["ORD-1", "ORD-2", "ORD-3"]);
    // The push's own marking leaves the sync column as it sets it.
    let p = push(&mut c, "upsert").unwrap();
    assert_eq!((p.pending, p.synced), (3, 3));
    assert_eq!(pending_keys(&mut c), Vec::<String>::new());
}

#[test]
fn a_row_changed_mid_push_stays_pending_and_legacy_writes_are_not_blocked() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("push_midway");
    let mut c = setup(&sim, &db, 300);
    // The second upsert call takes 2 s: time to change rows of every batch.
    sim.inject(Fault::slow(2_000, 1).on_path("/crm/v8/Orders/upsert"));
    let dsn = db.dsn.clone();
    let pusher = thread::spawn(move || {
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        push(&mut c, "upsert").unwrap()
    });
    thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    c.execute("UPDATE orders SET quantity = -quantity WHERE order_id IN ('ORD-1', 'ORD-150', 'ORD-299')", &[]).unwrap();
    let blocked = started.elapsed();
    let p = pusher.join().unwrap();
    assert!(blocked < Duration::from_millis(500), "a legacy UPDATE waited {blocked:?} for the push");
    assert_eq!((p.pending, p.synced), (300, 297), "{p:?}");
    let still: Vec<String> = c.query("SELECT order_id FROM orders WHERE NOT synced ORDER BY 1", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(still, vec!["ORD-1", "ORD-150", "ORD-299"]);
    // Zoho got the old values; the next push sends the new ones.
    let p = push(&mut c, "auto").unwrap();
    assert_eq!(p.synced, 3);
    assert_eq!(check_invariants(&sim, &mut c), 300);
}

#[test]
fn concurrent_pushes_send_each_row_once() {
    let sim = start_sim(SimConfig::default().latency_ms(100));
    let db = TestDb::new("push_concurrent");
    let _c = setup(&sim, &db, 2_000);
    let pushers: Vec<_> = (0..2)
        .map(|_| {
            let dsn = db.dsn.clone();
            thread::spawn(move || {
                let mut c = Client::connect(&dsn, NoTls).unwrap();
                push(&mut c, "upsert").unwrap()
            })
        })
        .collect();
    let mut results: Vec<Pushed> = pushers.into_iter().map(|t| t.join().unwrap()).collect();
    results.sort_by_key(|p| p.pending);
    assert_eq!((results[0].pending, results[1].pending), (0, 2_000), "{results:?}");
    let sent: usize = sim
        .calls()
        .iter()
        .filter(|c| c.endpoint == "records.upsert")
        .map(|c| c.request_body.as_ref().and_then(|b| b["data"].as_array().map(Vec::len)).unwrap_or(0))
        .sum();
    assert_eq!(sent, 2_000, "rows sent in all");
    let mut c = db.client();
    assert_eq!(check_invariants(&sim, &mut c), 2_000);
}

/// Pushes with `fault` armed, then checks the invariants; a push that
/// failed changed no row. Then pushes again, and everything is synced.
fn survive(tag: &str, mode: &str, n: usize, fault: Fault, fired: impl Fn(&Sim) -> bool) {
    let sim = start_sim(SimConfig::default().bulk_step_ms(20));
    let db = TestDb::new(tag);
    let mut c = setup(&sim, &db, n);
    sim.inject(fault);
    match push(&mut c, mode) {
        Ok(p) => assert_eq!(p.synced as usize, n, "{tag}: {p:?}"),
        Err(e) => {
            assert_eq!(pending(&mut c), n as i64, "{tag}: a failed push marked rows synced ({e})");
        }
    }
    assert!(fired(&sim), "{tag}: the fault never fired");
    check_invariants(&sim, &mut c);
    sim.clear_faults();
    push(&mut c, "auto").unwrap();
    assert_eq!(pending(&mut c), 0, "{tag}");
    assert_eq!(check_invariants(&sim, &mut c), n, "{tag}");
    assert_eq!(sim.records("Orders").len(), n, "{tag}");
}

fn saw(sim: &Sim, endpoint: &str, status: u16) -> bool {
    sim.calls().iter().any(|c| c.endpoint == endpoint && c.status == status)
}

#[test]
fn token_expiry_in_the_middle_of_a_bulk_job() {
    survive("push_token", "bulk", 600, Fault::token_expiry(1).on_path("/crm/bulk/v8/write/"), |s| saw(s, "bulk_write.status", 401));
}

#[test]
fn a_429_storm() {
    survive("push_429", "upsert", 600, Fault::status(429, 4).on_path("/crm/v8/Orders/upsert"), |s| saw(s, "records.upsert", 429));
}

#[test]
fn a_5xx_during_the_upload() {
    survive("push_5xx", "bulk", 600, Fault::status(500, 2).on_path("/crm/v8/upload"), |s| saw(s, "bulk_write.upload", 500));
}

#[test]
fn a_job_that_fails() {
    // The failed job's rows go through the Upsert API instead.
    survive("push_failed_job", "bulk", 600, Fault::job_failed(), |s| saw(s, "records.upsert", 200));
}

#[test]
fn connection_resets() {
    survive("push_reset", "upsert", 600, Fault::reset(2).on_path("/crm/v8/Orders/upsert"), |s| saw(s, "records.upsert", 0));
}

#[test]
fn retries_exhausted_fail_the_call_and_change_nothing() {
    survive("push_exhausted", "upsert", 300, Fault::status(503, 50).on_path("/crm/v8/Orders/upsert"), |s| saw(s, "records.upsert", 503));
}

#[test]
fn the_backend_killed_in_the_middle_of_a_push() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("push_kill");
    let c = setup(&sim, &db, 500);
    sim.inject(Fault::slow(3_000, 1).on_path("/crm/v8/Orders/upsert"));
    let dsn = db.dsn.clone();
    let pusher = thread::spawn(move || {
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(1_000));
            let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
            assert!(status.success());
        });
        let r = push(&mut c, "upsert");
        t.join().unwrap();
        r
    });
    assert!(pusher.join().unwrap().is_err(), "the killed push reported success");
    assert!(sim.calls().iter().any(|c| c.endpoint == "records.upsert"), "the kill came before anything was sent");
    // The postmaster restarts every backend after a kill -9; wait until
    // it takes queries again.
    drop(c);
    let mut c = reconnect(&db.dsn);
    assert_eq!(pending(&mut c), 500, "the killed push marked rows synced");
    check_invariants(&sim, &mut c);
    let p = push(&mut c, "auto").unwrap();
    assert_eq!(p.synced, 500);
    assert_eq!(check_invariants(&sim, &mut c), 500);
    assert_eq!(sim.records("Orders").len(), 500);
    let unique: HashSet<String> = sim.records("Orders").iter().map(|r| r["parent_id"].to_string()).collect();
    assert_eq!(unique.len(), 500);
}

#[test]
fn api_calls_count_every_attempt_retries_included() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("honest");
    let mut c = setup(&sim, &db, 150);
    push(&mut c, "upsert").unwrap();
    c.execute("UPDATE orders SET quantity = quantity + 1", &[]).unwrap();
    sim.clear_calls();
    // Two 429s: two calls Zoho refused, then the two calls of the push.
    sim.inject(Fault::status(429, 2).on_path("/crm/v8/Orders/upsert"));
    let p = push(&mut c, "upsert").unwrap();
    let received = sim.calls().iter().filter(|c| !c.endpoint.starts_with("oauth")).count();
    assert_eq!((p.synced, received), (150, 4));
    assert_eq!(p.api_calls, 4, "the result counts every call Zoho received, not only those that succeeded");
}

#[test]
fn a_row_rejected_five_times_is_held_back_after_three() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("poison");
    let mut c = setup(&sim, &db, 20);
    push(&mut c, "upsert").unwrap();
    // Zoho requires Name: this row is refused every time it is sent as it is.
    c.execute("UPDATE orders SET name = NULL WHERE order_id = 'ORD-7'", &[]).unwrap();
    let mut failed = Vec::new();
    for _ in 0..5 {
        failed.push(push(&mut c, "upsert").unwrap().failed);
    }
    assert_eq!(failed, [1, 1, 1, 0, 0], "sent three times, then held back");
    let upserts = sim.calls().iter().filter(|c| c.endpoint == "records.upsert").count();
    assert_eq!(upserts, 1 + 3, "no call (and no credit) for a held-back row");
    let (quarantined, reason): (i64, String) = {
        let r = c.query_one("SELECT count(*), min(reason) FROM zoho.push_rejections WHERE attempts >= 3", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((quarantined, reason.as_str()), (1, "MANDATORY_NOT_FOUND: required field not found (field Name)"));
    assert_eq!(pending(&mut c), 1, "it stays pending, with its reason");
    // Requeued, it is tried again; changed, it goes through.
    assert_eq!(c.query_one("SELECT zoho_requeue('orders')", &[]).unwrap().get::<_, i64>(0), 1);
    assert_eq!(push(&mut c, "upsert").unwrap().failed, 1);
    c.execute("UPDATE orders SET name = 'Fixed' WHERE order_id = 'ORD-7'", &[]).unwrap();
    let p = push(&mut c, "upsert").unwrap();
    assert_eq!((p.synced, p.failed), (1, 0));
    assert_eq!(c.query_one("SELECT count(*) FROM zoho.push_rejections", &[]).unwrap().get::<_, i64>(0), 0, "a row Zoho took is forgotten");
}

/// With the worker's webhook listener up (the test cluster has one), a
/// bulk job tells the push that it ended: one status read, made as soon as
/// the callback came, where polling would have read it many times (a
/// tenth of the wait apart) and the safety net would first look at 5 s.
#[test]
fn a_bulk_job_wakes_its_push_by_callback() {
    let sim = start_sim(SimConfig::default().bulk_step_ms(1_500));
    let db = TestDb::new("push_callback");
    let mut c = setup(&sim, &db, 600);
    let started = Instant::now();
    let p = push(&mut c, "bulk").unwrap();
    let took = started.elapsed();
    assert_eq!((p.mode.as_str(), p.synced), ("bulk", 600));
    let by = sim.credits().by_endpoint;
    assert_eq!(by.get("bulk_write.status").map_or(0, |u| u.calls), 1, "one status read, after the callback");
    assert!(took >= Duration::from_millis(3_000), "the job itself takes two steps of 1.5 s: {took:?}");
    assert!(took < Duration::from_millis(4_500), "seen when it ended, not at the 5 s safety net: {took:?}");
    assert_eq!(check_invariants(&sim, &mut c), 600);
}

/// A push of both kinds runs its upsert calls beside the bulk job rather
/// than after it: all 50 calls are answered while the job (two steps of a
/// second) is still running, before its one status read.
#[test]
fn upsert_calls_run_while_the_bulk_job_does() {
    let sim = start_sim(SimConfig::default().bulk_step_ms(1_000));
    let db = TestDb::new("push_overlap");
    let mut c = setup(&sim, &db, 30_000);
    let p = push(&mut c, "auto").unwrap();
    assert_eq!((p.mode.as_str(), p.synced), ("bulk+upsert", 30_000));
    let calls = sim.calls();
    let last_upsert = calls.iter().filter(|c| c.endpoint == "records.upsert").map(|c| c.seq).max().expect("upsert calls");
    let status = calls.iter().filter(|c| c.endpoint == "bulk_write.status").map(|c| c.seq).min().expect("a status read");
    assert_eq!(calls.iter().filter(|c| c.endpoint == "records.upsert").count(), 50);
    assert!(last_upsert < status, "the upsert calls (last #{last_upsert}) ended after the job's status read (#{status})");
    assert_eq!(check_invariants(&sim, &mut c), 30_000);
}

/// Beside a bulk job, upsert calls leave one of the ten places free, so
/// the job's own calls never wait behind them: at no moment between the
/// upload's arrival and the result's download are ten upsert calls in
/// flight at the simulator (the window stays full at nine).
#[test]
fn upsert_calls_beside_a_job_leave_it_a_place() {
    let sim = start_sim(SimConfig::default().latency_ms(150).bulk_step_ms(400));
    let db = TestDb::new("push_places");
    let mut c = setup(&sim, &db, 30_000);
    let p = push(&mut c, "auto").unwrap();
    assert_eq!((p.mode.as_str(), p.synced), ("bulk+upsert", 30_000));
    let calls = sim.calls();
    let at = |endpoint: &str| calls.iter().find(|c| c.endpoint == endpoint).unwrap_or_else(|| panic!("no {endpoint} call"));
    let (job_from, job_to) = (at("bulk_write.upload").started_us, at("bulk_write.download").ended_us);
    let upserts: Vec<(u64, u64)> = calls.iter().filter(|c| c.endpoint == "records.upsert").map(|c| (c.started_us, c.ended_us)).collect();
    assert_eq!(upserts.len(), 50);
    // The most upsert calls in flight at once, at any arrival while the job ran.
    let in_flight = |t: u64| upserts.iter().filter(|(a, b)| *a <= t && t < *b).count();
    let peak = upserts.iter().map(|(s, _)| *s).filter(|s| (job_from..job_to).contains(s)).map(in_flight).max();
    assert_eq!(peak, Some(9), "upsert calls in flight at once while the job ran");
    assert_eq!(check_invariants(&sim, &mut c), 30_000);
}

/// A push of more rows than one round reads them all before sending; the
/// keys' check it makes of them in memory stops the same rows, with the
/// same words, as the SQL one a short push makes, and sends nothing.
#[test]
fn a_long_push_stops_on_a_shared_or_missing_key_before_sending() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("push_long_keys");
    let mut c = setup(&sim, &db, 1_500);
    c.batch_execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey, ALTER COLUMN order_id DROP NOT NULL").unwrap();
    let refused = |c: &mut Client, why: &str| {
        let e = push(c, "auto").expect_err(why);
        let msg = sql_error(&e).1;
        assert_eq!(push_usage(&sim), (0, 0), "{why}: nothing is sent");
        assert_eq!(pending(c), 1_500, "{why}: every row stays pending");
        msg
    };

    c.execute("UPDATE orders SET order_id = 'ORD-3' WHERE order_id = 'ORD-1400'", &[]).unwrap();
    let msg = refused(&mut c, "a shared key");
    assert!(msg.ends_with("public.orders: 2 pending rows share the key order_id = 'ORD-3'; Zoho would write one record twice"), "{msg}");

    c.execute("UPDATE orders SET order_id = NULL WHERE quantity IN (3, 1200)", &[]).unwrap();
    let msg = refused(&mut c, "a missing key");
    assert!(msg.ends_with("public.orders: 2 pending row(s) have no value in key column order_id (parent_id), so Zoho cannot match them"), "{msg}");

    // Keys equal under a case-insensitive collation are one key to the
    // table, whatever their bytes.
    c.batch_execute(
        "UPDATE orders SET order_id = 'ORD-' || quantity WHERE order_id IS NULL OR quantity = 1400;
         CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         ALTER TABLE orders ALTER COLUMN order_id TYPE text COLLATE nocase;
         UPDATE orders SET order_id = 'ord-5' WHERE order_id = 'ORD-1000'",
    )
    .unwrap();
    let msg = refused(&mut c, "keys equal under the collation");
    assert!(msg.contains("2 pending rows share the key order_id = "), "{msg}");

    c.execute("UPDATE orders SET order_id = 'ORD-1000' WHERE quantity = 1000", &[]).unwrap();
    assert_eq!(push(&mut c, "auto").unwrap().synced, 1_500);
    assert_eq!(check_invariants(&sim, &mut c), 1_500);
}
