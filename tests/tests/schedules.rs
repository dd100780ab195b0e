//! The worker's scheduled work beyond pushes: pulls and formula refreshes,
//! queued jobs (zoho.jobs), API usage (zoho.api_usage) and the credit
//! budget that holds scheduled work, plus a push interrupted by a
//! PostgreSQL restart. Against the test cluster's worker (see
//! zoho_fdw_tests::worker).

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use zoho_fdw_tests::worker::*;
use zoho_fdw_tests::*;

fn zoho_leads(sim: &Sim) -> BTreeMap<i64, (String, Option<f64>)> {
    sim.records("Leads")
        .iter()
        .map(|r| (r["id"].as_str().unwrap().parse().unwrap(), (r["Last_Name"].as_str().unwrap_or_default().to_string(), r["Days_Open"].as_f64())))
        .collect()
}

fn mirror_leads(c: &mut Client) -> BTreeMap<i64, (String, Option<f64>)> {
    c.query("SELECT id, coalesce(last_name, ''), days_open::float8 FROM crm_leads", &[]).unwrap().iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect()
}

fn converges(sim: &Sim, c: &mut Client, within: Duration, what: &str) {
    let started = Instant::now();
    loop {
        let (z, m) = (zoho_leads(sim), mirror_leads(c));
        if z == m {
            return;
        }
        if started.elapsed() > within {
            let differing: Vec<_> = z.iter().filter(|(k, v)| m.get(k) != Some(v)).take(3).collect();
            panic!("{what}: the mirror did not converge in {within:?} ({} in Zoho, {} in the mirror); differing {differing:?}", z.len(), m.len());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_pull_loads_then_follows_changes_and_refreshes_formulas() {
    let sim = start_sim(SimConfig::default().seed("Leads", 300));
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second', refresh_formulas => '*/2 * * * * *')").unwrap();
    // The first pull is a full load, as a queued Bulk Read job.
    converges(&sim, &mut c, Duration::from_secs(20), "the first pull");
    let job = c.query_one("SELECT kind, state, rows_written FROM zoho.jobs WHERE kind = 'pull' ORDER BY id LIMIT 1", &[]).unwrap();
    assert_eq!((job.get::<_, String>(0), job.get::<_, String>(1), job.get::<_, Option<i64>>(2)), ("pull".into(), "done".into(), Some(300)));
    // Then what changes in Zoho, deletes included, through the records list.
    let ids: Vec<String> = sim.records("Leads").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    for id in &ids[..5] {
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("Pulled {id}")})).unwrap();
    }
    sim.ui_delete("Leads", &ids[9]).unwrap();
    sim.ui_create("Leads", json!({"Last_Name": "Pulled new", "Company": "X"})).unwrap();
    converges(&sim, &mut c, Duration::from_secs(10), "an incremental pull");
    let pull_jobs: i64 = c.query_one("SELECT count(*) FROM zoho.jobs WHERE kind = 'pull'", &[]).unwrap().get(0);
    assert_eq!(pull_jobs, 1, "a small change went through Bulk Read");
    // Three days pass: Days_Open changes everywhere, Modified_Time nowhere.
    // Only the formula refresh (a job every 2 s here) sees it.
    let before: f64 = c.query_one("SELECT sum(days_open)::float8 FROM crm_leads", &[]).unwrap().get(0);
    sim.advance_clock(Duration::from_secs(3 * 86_400));
    converges(&sim, &mut c, Duration::from_secs(20), "the formula refresh");
    let after: f64 = c.query_one("SELECT sum(days_open)::float8 FROM crm_leads", &[]).unwrap().get(0);
    assert!(after >= before + 3.0 * 290.0, "Days_Open did not move: {before} → {after}");
    let refreshes: i64 = c.query_one("SELECT count(*) FROM zoho.jobs WHERE kind = 'refresh' AND state = 'done'", &[]).unwrap().get(0);
    assert!(refreshes >= 1);
    let status = c.query_one("SELECT paused, last_error FROM zoho.sync_status WHERE flow = 'pull'", &[]).unwrap();
    assert_eq!((status.get::<_, bool>(0), status.get::<_, Option<String>>(1)), (false, None));
}

#[test]
fn a_bad_cron_schedule_is_refused() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    let e = c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', refresh_formulas => 'every day')").unwrap_err();
    let (state, msg, hint) = sql_error(&e);
    assert_eq!(state, "22023");
    assert!(msg.contains("refresh schedule \"every day\" is not a cron schedule"), "{msg}");
    assert!(hint.unwrap_or_default().contains("'0 3 * * *'"));
    let n: i64 = c.query_one("SELECT count(*) FROM zoho.pull_schedules", &[]).unwrap().get(0);
    assert_eq!(n, 0);
}

#[test]
fn a_queued_export_runs_in_the_background_and_can_be_cancelled() {
    let sim = start_sim(SimConfig::default().seed("Leads", 250).bulk_step_ms(400));
    let (_db, mut c) = WorkerDb::new(&sim);
    let job: i64 = c.query_one("SELECT zoho_queue_export('Leads', 'crm_leads')", &[]).unwrap().get(0);
    // While it runs, zoho.jobs says where it is.
    let mut progress = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let r = c.query_one("SELECT state, progress FROM zoho.jobs WHERE id = $1", &[&job]).unwrap();
        let (state, p): (String, Option<String>) = (r.get(0), r.get(1));
        if state == "running" && p.is_some() {
            progress = p;
        }
        if state == "done" {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let progress = progress.expect("a running job showed no progress");
    assert!(progress.contains("Leads page 1"), "{progress}");
    let row = c.query_one("SELECT state, rows_written, error FROM zoho.jobs WHERE id = $1", &[&job]).unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, Option<i64>>(1), row.get::<_, Option<String>>(2)), ("done".into(), Some(250), None));
    assert_eq!(c.query_one("SELECT count(*) FROM crm_leads", &[]).unwrap().get::<_, i64>(0), 250);
    // A second job, cancelled while Zoho prepares it: nothing is written.
    c.batch_execute("CREATE TABLE leads_copy (LIKE crm_leads INCLUDING ALL)").unwrap();
    let job2: i64 = c.query_one("SELECT zoho_queue_export('Leads', 'leads_copy')", &[]).unwrap().get(0);
    wait_for(&mut c, &format!("SELECT state = 'running' FROM zoho.jobs WHERE id = {job2}"), Duration::from_secs(10)).expect("the second job started");
    assert!(c.query_one("SELECT zoho_cancel_job($1)", &[&job2]).unwrap().get::<_, bool>(0));
    wait_for(&mut c, "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'zoho_fdw jobs' AND state = 'active')", Duration::from_secs(10)).expect("the runner stopped the job");
    let row = c.query_one("SELECT state, error FROM zoho.jobs WHERE id = $1", &[&job2]).unwrap();
    assert_eq!(row.get::<_, String>(0), "cancelled");
    assert_eq!(c.query_one("SELECT count(*) FROM leads_copy", &[]).unwrap().get::<_, i64>(0), 0);
    // A cancelled job is not cancelled twice; a finished one not at all.
    assert!(!c.query_one("SELECT zoho_cancel_job($1)", &[&job]).unwrap().get::<_, bool>(0));
    c.batch_execute("DROP TABLE leads_copy").unwrap();
}

#[test]
fn api_usage_counts_every_backend_even_in_rolled_back_transactions() {
    let sim = start_sim(SimConfig::default().seed("Leads", 30));
    let (_db, mut c) = WorkerDb::new(&sim);
    // Usage before this point (the mirror's metadata) is recorded too.
    let mut tx = c.transaction().unwrap();
    tx.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    tx.rollback().unwrap();
    let charged = sim.credits().used as i64;
    assert!(charged >= 50, "a Bulk Read job costs 50 credits, the simulator charged {charged}");
    let recorded = wait_for(&mut c, &format!("SELECT coalesce(sum(credits), 0) = {charged} FROM zoho.api_usage"), Duration::from_secs(5));
    let have: i64 = c.query_one("SELECT coalesce(sum(credits), 0)::int8 FROM zoho.api_usage", &[]).unwrap().get(0);
    assert!(recorded.is_some(), "zoho.api_usage has {have} credits, the simulator charged {charged}");
    let bulk: i64 = c.query_one("SELECT calls FROM zoho.api_usage WHERE endpoint = 'bulk_read.create' AND day = (now() AT TIME ZONE 'UTC')::date", &[]).unwrap().get(0);
    assert_eq!(bulk, 1);
    let budget = c.query_one("SELECT budget, credits_24h, reached FROM zoho.credit_budget WHERE server = 'zoho'", &[]).unwrap();
    assert_eq!((budget.get::<_, Option<i64>>(0), budget.get::<_, i64>(1), budget.get::<_, bool>(2)), (None, charged, false));
}

#[test]
fn the_credit_budget_holds_scheduled_pushes_until_it_is_raised() {
    let sim = start_sim(SimConfig::default());
    let (db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    let mut listener = db.client();
    listener.batch_execute("LISTEN zoho_fdw_events").unwrap();
    c.batch_execute("ALTER SERVER zoho OPTIONS (ADD daily_credit_budget '20')").unwrap();
    // 300 rows: 30 credits of upserts (and the metadata) pass the budget.
    orders(&mut c, 300, 1);
    c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => 1, mapping => '{\"order_id\": \"parent_id\"}')").unwrap();
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(10)).expect("the first push");
    wait_for(&mut c, "SELECT reached FROM zoho.credit_budget", Duration::from_secs(5)).expect("the budget counts the push");
    orders(&mut c, 10, 1000);
    thread::sleep(Duration::from_secs(3));
    let held = c.query_one("SELECT count(*) FROM orders WHERE NOT synced", &[]).unwrap().get::<_, i64>(0);
    assert_eq!(held, 10, "a push ran past the budget");
    let status = c.query_one("SELECT paused, paused_reason, rows_pending FROM zoho.sync_status WHERE flow = 'push'", &[]).unwrap();
    assert!(status.get::<_, bool>(0));
    let reason: String = status.get(1);
    assert!(reason.starts_with("daily_credit_budget reached: ") && reason.ends_with(" of 20 credits used in the last 24 hours"), "{reason}");
    assert_eq!(status.get::<_, i64>(2), 10);
    assert_eq!(sim.records("Orders").len(), 300);
    // A larger budget: the push resumes.
    c.batch_execute("ALTER SERVER zoho OPTIONS (SET daily_credit_budget '100000')").unwrap();
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(10)).expect("the push resumed");
    assert_eq!(sim.records("Orders").len(), 310);
    let paused: bool = c.query_one("SELECT paused FROM zoho.sync_status WHERE flow = 'push'", &[]).unwrap().get(0);
    assert!(!paused);
    // LISTEN zoho_fdw_events heard the budget reached, then cleared.
    use postgres::fallible_iterator::FallibleIterator;
    let mut heard = listener.notifications();
    let mut heard = heard.timeout_iter(Duration::from_secs(3));
    let mut budget = Vec::new();
    while let Ok(Some(n)) = heard.next() {
        let e: serde_json::Value = serde_json::from_str(n.payload()).unwrap();
        if e["flow"] == "server" {
            budget.push((e["event"].as_str().unwrap().to_string(), e["target"].as_str().unwrap().to_string()));
        }
    }
    assert_eq!(budget, [("budget_reached".to_string(), "zoho".to_string()), ("budget_cleared".to_string(), "zoho".to_string())]);
}

#[test]
fn a_scheduled_push_survives_a_postgres_restart_in_its_middle() {
    let sim = start_sim(SimConfig::default());
    let (db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    orders(&mut c, 500, 1);
    scheduled_push_in_flight(&sim, &mut c);
    drop(c);
    let restart = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh");
    let out = std::process::Command::new(restart).arg("restart").output().unwrap();
    assert!(out.status.success(), "pg.sh restart: {}", String::from_utf8_lossy(&out.stderr));
    let mut c = reconnect(&db.dsn);
    every_order_once(&sim, &mut c, 500);
}

#[test]
fn a_large_gap_is_read_by_a_bulk_read_job_deletes_included() {
    let sim = start_sim(SimConfig::default().seed("Leads", 600));
    let (mut db, mut c) = WorkerDb::new(&sim);
    db.set(&mut c, "zoho_fdw.catchup_interval", "1");
    // One page of 200 is "small" here, so 450 changes are a large gap.
    db.set(&mut c, "zoho_fdw.catchup_list_pages", "1");
    // Zoho posts to a port where nothing listens: only catch-up sees changes.
    c.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => 'http://127.0.0.1:9/zoho/notify')", &[]).unwrap();
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let ids: Vec<String> = sim.records("Leads").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    for id in &ids[..450] {
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("Gap {id}")})).unwrap();
    }
    for id in &ids[500..503] {
        sim.ui_delete("Leads", id).unwrap();
    }
    converges(&sim, &mut c, Duration::from_secs(30), "after a large gap");
    let jobs: i64 = c.query_one("SELECT count(*) FROM zoho.jobs WHERE kind = 'catchup'", &[]).unwrap().get(0);
    assert_eq!(jobs, 1, "one job reads a large gap");
    let job = c.query_one("SELECT state, rows_written, since IS NOT NULL FROM zoho.jobs WHERE kind = 'catchup'", &[]).unwrap();
    // The first page (200) was applied before the job took over; the job
    // writes the rest (how many depends on where the edits were when a
    // catch-up ran).
    let written = job.get::<_, Option<i64>>(1).unwrap_or(0);
    assert_eq!((job.get::<_, String>(0), job.get::<_, bool>(2)), ("done".into(), true));
    assert!((1..=450).contains(&written), "the job wrote {written} rows");
    // On Zoho's clock (the same as this host's here), less a 5 s overlap.
    let current: bool = c.query_one("SELECT synced_until > (SELECT started_at FROM zoho.jobs WHERE kind = 'catchup') - interval '6 seconds' FROM zoho.channels", &[]).unwrap().get(0);
    assert!(current, "the job did not move the channel's synced_until");
}

#[test]
fn a_role_without_every_privilege_or_not_the_owner_cannot_schedule() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    c.batch_execute(
        "SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', mapping => '{\"order_id\": \"parent_id\"}');
         DROP ROLE IF EXISTS zoho_intruder; CREATE ROLE zoho_intruder;
         GRANT SELECT ON orders, crm_leads TO zoho_intruder;
         SET SESSION AUTHORIZATION zoho_intruder;",
    )
    .unwrap();
    // SELECT alone is not SELECT, INSERT and UPDATE.
    let e = c.query_one("SELECT zoho_queue_export('Leads', 'crm_leads')", &[]).unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    let e = c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads')").unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    // A verification repairs, so it needs to write and delete too.
    let e = c.batch_execute("SELECT zoho_schedule_verify('crm_leads', module => 'Leads')").unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    // Every privilege, but the schedule is another role's.
    c.batch_execute("RESET SESSION AUTHORIZATION; GRANT UPDATE ON orders TO zoho_intruder; GRANT USAGE ON FOREIGN SERVER zoho TO zoho_intruder; SET SESSION AUTHORIZATION zoho_intruder").unwrap();
    let e = c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', min_pending => 1)").unwrap_err();
    let (state, msg, _) = sql_error(&e);
    assert_eq!(state, "42501");
    assert!(msg.contains("belongs to another role"), "{msg}");
    c.batch_execute("RESET SESSION AUTHORIZATION").unwrap();
    let row = c.query_one("SELECT owner::text, min_pending, (SELECT count(*) FROM zoho.job_queue) FROM zoho.push_schedules", &[]).unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i32>(1), row.get::<_, i64>(2)), ("postgres".into(), 100, 0));
    // Nor another role's verification: it would run as that role.
    c.batch_execute("SELECT zoho_schedule_verify('crm_leads', module => 'Leads'); GRANT INSERT, UPDATE, DELETE ON crm_leads TO zoho_intruder; SET SESSION AUTHORIZATION zoho_intruder").unwrap();
    let e = c.batch_execute("SELECT zoho_schedule_verify('crm_leads', every => '1 second', module => 'Leads')").unwrap_err();
    let (state, msg, _) = sql_error(&e);
    assert_eq!((state.as_str(), msg.contains("belongs to another role")), ("42501", true), "{msg}");
    c.batch_execute("RESET SESSION AUTHORIZATION").unwrap();
    let owner: String = c.query_one("SELECT owner::text FROM zoho.verify_schedules", &[]).unwrap().get(0);
    assert_eq!(owner, "postgres");
    c.batch_execute("DROP OWNED BY zoho_intruder; DROP ROLE zoho_intruder").unwrap();
}

#[test]
fn a_failing_push_backs_off_tells_listeners_and_recovers() {
    let sim = start_sim(SimConfig::default());
    let (db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    let mut listener = db.client();
    listener.batch_execute("LISTEN zoho_fdw_events").unwrap();
    // Zoho refuses the first two pushes; the third goes through.
    sim.inject(Fault::status(403, 2).on_path("/crm/v8/Orders/upsert"));
    orders(&mut c, 3, 1);
    c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => 1, mapping => '{\"order_id\": \"parent_id\"}')").unwrap();
    wait_for(&mut c, "SELECT failures >= 1 FROM zoho.push_schedules", Duration::from_secs(10)).expect("the first failure");
    let health = c.query_one("SELECT state, next_attempt > now(), last_error IS NOT NULL FROM zoho.health WHERE flow = 'push'", &[]).unwrap();
    assert_eq!((health.get::<_, String>(0), health.get::<_, bool>(1), health.get::<_, bool>(2)), ("degraded".to_string(), true, true));
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(20)).expect("recovered on its own");
    let health = c.query_one("SELECT state, failures, next_attempt IS NULL FROM zoho.health WHERE flow = 'push'", &[]).unwrap();
    assert_eq!((health.get::<_, String>(0), health.get::<_, i32>(1), health.get::<_, bool>(2)), ("ok".to_string(), 0, true));
    // Two failed attempts and one that worked, not one a second.
    let attempts = sim.calls().iter().filter(|c| c.endpoint == "records.upsert").count();
    assert_eq!(attempts, 3, "the backoff held the retries");
    // LISTEN zoho_fdw_events heard it start failing, then recover.
    use postgres::fallible_iterator::FallibleIterator;
    let mut events: Vec<serde_json::Value> = Vec::new();
    let mut heard = listener.notifications();
    let mut heard = heard.timeout_iter(Duration::from_secs(2));
    while let Ok(Some(n)) = heard.next() {
        events.push(serde_json::from_str(n.payload()).unwrap());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["failing", "recovered"], "{events:?}");
    assert_eq!((events[0]["flow"].as_str(), events[0]["target"].as_str()), (Some("push"), Some("public.orders")));
    assert!(events[0]["error"].as_str().unwrap().contains("NO_PERMISSION") || events[0]["error"].as_str().unwrap().contains("403"), "{}", events[0]);
    assert_eq!(events[1]["failures"], 2);
}

#[test]
fn sync_points_follow_zohos_clock_when_this_hosts_runs_ahead() {
    // Zoho's clock is 30 s behind this host's: a change Zoho stamps
    // "30 s ago" happens after a pull this host started 5 s ago.
    let sim = start_sim(SimConfig::default().seed("Leads", 50).clock_skew_secs(-30));
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second')").unwrap();
    converges(&sim, &mut c, Duration::from_secs(20), "the first pull");
    // Let incremental pulls run and move synced_until.
    thread::sleep(Duration::from_secs(3));
    let ahead: bool = c.query_one("SELECT synced_until > now() - interval '20 seconds' FROM zoho.pull_schedules", &[]).unwrap().get(0);
    assert!(!ahead, "synced_until is on Zoho's clock, not this host's");
    let id = sim.records("Leads")[7]["id"].as_str().unwrap().to_string();
    sim.ui_edit("Leads", &id, json!({"Last_Name": "Edited behind the clock"})).unwrap();
    converges(&sim, &mut c, Duration::from_secs(10), "an edit stamped by a clock 30 s behind");
}

/// Each finished bulk job's rows are marked synced as soon as it is done,
/// in a transaction of their own: a worker killed with SIGKILL while the
/// third of four jobs runs sends only jobs 3 and 4 again, never 1 and 2.
#[test]
fn a_kill_in_the_third_of_four_bulk_jobs_sends_only_the_unfinished_jobs_again() {
    let sim = start_sim(SimConfig::default());
    let (db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    orders(&mut c, 100_000, 1);
    c.batch_execute(
        "SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', mode => 'bulk', min_pending => 1,
                                   mapping => '{\"order_id\": \"parent_id\"}')",
    )
    .unwrap();
    let creates = |sim: &Sim| sim.calls().iter().filter(|c| c.endpoint == "bulk_write.create" && c.status < 300).count();
    let started = Instant::now();
    while creates(&sim) < 3 {
        assert!(started.elapsed() < Duration::from_secs(300), "the third bulk job never started");
        thread::sleep(Duration::from_millis(20));
    }
    // Jobs 1 and 2 are done and their rows marked before job 3's are read.
    let worker: i32 = c.query_one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'zoho_fdw worker'", &[]).unwrap().get(0);
    let killed = std::process::Command::new("kill").args(["-9", &worker.to_string()]).status().unwrap();
    assert!(killed.success());
    drop(c);
    let mut c = reconnect(&db.dsn);
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(300)).expect("the push ran again and finished");
    let records = sim.records("Orders");
    let keys: std::collections::HashSet<String> = records.iter().map(|r| r["parent_id"].as_str().unwrap().to_string()).collect();
    assert_eq!((records.len(), keys.len()), (100_000, 100_000), "every row once in Zoho");
    let unlinked: i64 = c.query_one("SELECT count(*) FROM orders WHERE zoho_id IS NULL", &[]).unwrap().get(0);
    assert_eq!(unlinked, 0);
    // 3 jobs before the kill; after it, job 3 again (unless it finished and
    // was marked first) and job 4. Marking only at the end would make 3 + 4.
    let n = creates(&sim);
    assert!(n == 4 || n == 5, "{n} bulk jobs created: jobs 1 and 2 were sent again");
}

/// A queued export commits each page with the job's place: a runner killed
/// with SIGKILL in page 3 of 4, or an attempt failed by Zoho in page 3,
/// goes on from page 3. Pages 1 and 2 are neither asked for nor
/// downloaded again (Zoho allows 10 downloads a minute).
#[test]
fn an_interrupted_export_job_goes_on_from_its_last_committed_page() {
    let sim = start_sim(SimConfig::default().seed("Leads", 400).bulk_page_size(100).bulk_step_ms(300));
    let (db, mut c) = WorkerDb::new(&sim);
    let count = |sim: &Sim, endpoint: &str| sim.calls().iter().filter(|c| c.endpoint == endpoint && c.status < 300).count();
    let until = |sim: &Sim, endpoint: &str, n: usize| {
        let started = Instant::now();
        while count(sim, endpoint) < n {
            assert!(started.elapsed() < Duration::from_secs(60), "{endpoint} never reached {n}");
            thread::sleep(Duration::from_millis(10));
        }
    };

    // Killed while Zoho prepares page 3. Its job is made as soon as page
    // 2's job has ended, so it runs while page 2 downloads and commits.
    let job: i64 = c.query_one("SELECT zoho_queue_export('Leads', 'crm_leads')", &[]).unwrap().get(0);
    until(&sim, "bulk_read.create", 3);
    wait_for(&mut c, &format!("SELECT pages_done = 2 FROM zoho.jobs WHERE id = {job}"), Duration::from_secs(10)).expect("page 2 committed while page 3 is prepared");
    let runner: i32 = c.query_one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'zoho_fdw jobs'", &[]).unwrap().get(0);
    assert_eq!(count(&sim, "bulk_read.create"), 3, "page 4 is asked for only once page 3's job has ended");
    assert!(std::process::Command::new("kill").args(["-9", &runner.to_string()]).status().unwrap().success());
    drop(c);
    let mut c = reconnect(&db.dsn);
    wait_for(&mut c, &format!("SELECT state = 'done' FROM zoho.jobs WHERE id = {job}"), Duration::from_secs(60)).expect("the job went on and finished");
    let r = c.query_one("SELECT attempts, pages_done, rows_written, (SELECT count(*) FROM crm_leads) FROM zoho.jobs WHERE id = $1", &[&job]).unwrap();
    assert_eq!((r.get::<_, i32>(0), r.get::<_, i32>(1), r.get::<_, Option<i64>>(2), r.get::<_, i64>(3)), (2, 4, Some(400), 400));
    // Page 3 is asked for again (its job died with the runner), then page 4.
    assert_eq!((count(&sim, "bulk_read.create"), count(&sim, "bulk_read.download")), (5, 4));

    // Zoho failing every download of page 3: the attempt fails, the job
    // waits its backoff in the queue, with the reason, then goes on.
    sim.clear_calls();
    c.batch_execute("CREATE TABLE leads_copy (LIKE crm_leads INCLUDING ALL)").unwrap();
    let job: i64 = c.query_one("SELECT zoho_queue_export('Leads', 'leads_copy')", &[]).unwrap().get(0);
    until(&sim, "bulk_read.download", 2);
    sim.inject(Fault::status(500, 6).on_path("/crm/bulk/v8/read/*/result"));
    wait_for(&mut c, &format!("SELECT state = 'queued' AND next_attempt > now() FROM zoho.job_queue WHERE id = {job}"), Duration::from_secs(60))
        .expect("the failed attempt is queued again for later");
    let r = c.query_one("SELECT pages_done, error FROM zoho.jobs WHERE id = $1", &[&job]).unwrap();
    assert_eq!(r.get::<_, i32>(0), 2);
    assert!(r.get::<_, Option<String>>(1).unwrap_or_default().contains("500"), "the reason is kept: {:?}", r.get::<_, Option<String>>(1));
    // Its backoff cut short, it goes on from page 3.
    c.batch_execute(&format!("UPDATE zoho.job_queue SET next_attempt = now() WHERE id = {job}")).unwrap();
    wait_for(&mut c, &format!("SELECT state = 'done' FROM zoho.jobs WHERE id = {job}"), Duration::from_secs(60)).expect("the job went on and finished");
    assert_eq!(c.query_one("SELECT count(*) FROM leads_copy", &[]).unwrap().get::<_, i64>(0), 400);
    // Page 4's job, made while page 3 downloaded, was lost with the failed
    // attempt: 4 pages, page 3 again and page 4 again.
    assert_eq!((count(&sim, "bulk_read.create"), count(&sim, "bulk_read.download")), (6, 4));
    c.batch_execute("DROP TABLE leads_copy").unwrap();
    // The worker writes the runner's last usage within a second (FLUSH_EVERY);
    // the next test's zoho.api_usage must not receive it.
    thread::sleep(Duration::from_secs(2));
}

/// The longest transaction a worker backend (`backend_type`) held open,
/// from pg_stat_activity, watched until Zoho has answered one call of
/// `endpoint` slowly (the simulator logs a call when it has answered).
fn longest_transaction_until_slow(c: &mut Client, sim: &Sim, backend_type: &str, endpoint: &str) -> f64 {
    let slow = |sim: &Sim| sim.calls().iter().any(|c| c.endpoint == endpoint && c.duration_ms >= 2_500);
    let started = Instant::now();
    let mut longest = 0.0f64;
    while !slow(sim) {
        assert!(started.elapsed() < Duration::from_secs(20), "no slow {endpoint} call");
        for r in c.query("SELECT extract(epoch FROM now() - xact_start)::float8 FROM pg_stat_activity WHERE backend_type = $1 AND xact_start IS NOT NULL", &[&backend_type]).unwrap() {
            longest = longest.max(r.get::<_, f64>(0));
        }
        thread::sleep(Duration::from_millis(20));
    }
    longest
}

/// Fetch first, then apply in a short transaction: while Zoho takes 3 s to
/// answer a pull, a scheduled push or a job, no worker transaction stays
/// open (locks, snapshots and vacuum are not held up by Zoho).
#[test]
fn no_worker_transaction_stays_open_while_zoho_is_slow() {
    let sim = start_sim(SimConfig::default().seed("Leads", 30).bulk_step_ms(10));
    let (_db, mut c) = WorkerDb::new(&sim);
    // A pull's records list.
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second')").unwrap();
    wait_for(&mut c, "SELECT last_success IS NOT NULL FROM zoho.pull_schedules", Duration::from_secs(20)).expect("the first pull");
    sim.inject(Fault::slow(3_000, 1).on_path("/crm/v8/Leads"));
    let pull = longest_transaction_until_slow(&mut c, &sim, "zoho_fdw worker", "records.list");
    c.batch_execute("SELECT zoho_pause_pull('crm_leads')").unwrap();
    // A scheduled push's upsert.
    orders_table(&mut c);
    sim.inject(Fault::slow(3_000, 1).on_path("/crm/v8/Orders/upsert"));
    orders(&mut c, 20, 1);
    c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => 1, mapping => '{\"order_id\": \"parent_id\"}')").unwrap();
    let push = longest_transaction_until_slow(&mut c, &sim, "zoho_fdw worker", "records.upsert");
    // A job's Bulk Read status read.
    c.batch_execute("CREATE TABLE leads_copy (LIKE crm_leads INCLUDING ALL); SELECT zoho_queue_export('Leads', 'leads_copy')").unwrap();
    sim.inject(Fault::slow(3_000, 1).on_path("/crm/bulk/v8/read/"));
    let job = longest_transaction_until_slow(&mut c, &sim, "zoho_fdw jobs", "bulk_read.status");
    assert!(pull < 1.5 && push < 1.5 && job < 1.5, "transactions open while Zoho answered in 3 s: pull {pull:.1} s, push {push:.1} s, job {job:.1} s");
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(10)).expect("the push finished");
    wait_for(&mut c, "SELECT state = 'done' FROM zoho.job_queue WHERE target = 'leads_copy'::regclass", Duration::from_secs(10)).expect("the job finished");
    c.batch_execute("DROP TABLE leads_copy").unwrap();
}
