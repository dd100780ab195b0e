//! The background worker, against the test cluster's worker (database
//! `postgres`, webhooks on 127.0.0.1:28816, see scripts/pg.sh) and an
//! in-process simulator that delivers notifications to it: watch then
//! export with edits during and after, wrong tokens, renewal and lapses,
//! a dead webhook, the worker killed with kill -9, and scheduled pushes.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use zoho_fdw_tests::worker::*;
use zoho_fdw_tests::*;


fn watch(c: &mut Client, notify_url: &str) -> String {
    c.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => $1)", &[&notify_url]).unwrap().get(0)
}

/// id → last name, in Zoho and in the mirror.
fn zoho_names(sim: &Sim) -> BTreeMap<i64, String> {
    sim.records("Leads").iter().map(|r| (r["id"].as_str().unwrap().parse().unwrap(), r["Last_Name"].as_str().unwrap_or_default().to_string())).collect()
}

fn mirror_names(c: &mut Client) -> BTreeMap<i64, String> {
    c.query("SELECT id, coalesce(last_name, '') FROM crm_leads", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Waits until the mirror equals Zoho; panics with the difference.
fn converges(sim: &Sim, c: &mut Client, within: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (z, m) = (zoho_names(sim), mirror_names(c));
        if z == m {
            return started.elapsed();
        }
        if started.elapsed() > within {
            let missing: Vec<_> = z.iter().filter(|(k, v)| m.get(k) != Some(v)).take(5).collect();
            let extra: Vec<_> = m.keys().filter(|k| !z.contains_key(k)).take(5).collect();
            panic!("{what}: the mirror did not converge in {within:?}; differing {missing:?}, extra {extra:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn ids(sim: &Sim) -> Vec<String> {
    sim.records("Leads").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn watch_then_export_then_edits_converge() {
    let sim = start_sim(SimConfig::default().seed("Leads", 400).bulk_step_ms(300));
    let (db, mut c) = WorkerDb::new(&sim);
    watch(&mut c, HOOK);
    let dsn = db.dsn.clone();
    let exporter = thread::spawn(move || Client::connect(&dsn, NoTls).unwrap().query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).map(|r| r.get::<_, i64>(0)));
    // While the export runs: edits, a create and a delete in Zoho's UI.
    thread::sleep(Duration::from_millis(150));
    let all = ids(&sim);
    for id in &all[..5] {
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("During {id}")})).unwrap();
    }
    sim.ui_create("Leads", json!({"Last_Name": "Created during", "Company": "X"})).unwrap();
    sim.ui_delete("Leads", &all[10]).unwrap();
    assert_eq!(exporter.join().unwrap().unwrap(), 400);
    converges(&sim, &mut c, Duration::from_secs(10), "after the export");
    // And after it.
    for id in &all[20..25] {
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("After {id}")})).unwrap();
    }
    sim.ui_delete("Leads", &all[30]).unwrap();
    let took = converges(&sim, &mut c, Duration::from_secs(10), "after edits");
    assert!(took < Duration::from_secs(3), "notifications took {took:?}");
    let delivered: Vec<Option<u16>> = sim.deliveries().iter().map(|d| d.status).collect();
    assert!(delivered.iter().all(|s| *s == Some(200)), "{delivered:?}");
    let n: i64 = c.query_one("SELECT notifications FROM zoho.channels", &[]).unwrap().get(0);
    assert!(n >= 13, "{n} notifications applied");
}

#[test]
fn a_wrong_token_or_an_unknown_channel_gets_403_and_changes_nothing() {
    let sim = start_sim(SimConfig::default().seed("Leads", 20));
    let (_db, mut c) = WorkerDb::new(&sim);
    let channel = watch(&mut c, HOOK);
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let victim: i64 = c.query_one("SELECT min(id) FROM crm_leads", &[]).unwrap().get(0);
    let post = |channel: &str, token: &str| -> u16 {
        let body = json!({"server_time": 1, "module": "Leads", "ids": [victim.to_string()], "operation": "delete", "channel_id": channel, "token": token});
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "content-type: application/json", "-d", &body.to_string(), HOOK])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).parse().unwrap()
    };
    assert_eq!(post(&channel, "not-the-token"), 403);
    assert_eq!(post("123456789", "whatever"), 403);
    thread::sleep(Duration::from_millis(500));
    let still: i64 = c.query_one("SELECT count(*) FROM crm_leads WHERE id = $1", &[&victim]).unwrap().get(0);
    assert_eq!(still, 1, "a refused callback deleted a row");
}

#[test]
fn channels_are_renewed_and_a_lapsed_channel_is_subscribed_again_and_caught_up() {
    let sim = start_sim(SimConfig::default().seed("Leads", 50));
    let (mut db, mut c) = WorkerDb::new(&sim);
    // Renew on every check, for a week at a time.
    db.set(&mut c, "zoho_fdw.renew_margin", "604800");
    db.set(&mut c, "zoho_fdw.channel_expiry", "604800");
    c.batch_execute("SET zoho_fdw.channel_expiry = 3600").unwrap();
    watch(&mut c, HOOK);
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let renewed = (0..50).any(|_| {
        thread::sleep(Duration::from_millis(200));
        c.query_one("SELECT renewed_at IS NOT NULL AND expires_at > now() + interval '6 days' FROM zoho.channels", &[]).unwrap().get::<_, bool>(0)
    });
    assert!(renewed, "the worker did not renew the channel");
    // Two days pass in Zoho: the channel is gone; changes meanwhile are
    // not notified.
    sim.advance_clock(Duration::from_secs(2 * 86_400));
    let all = ids(&sim);
    sim.ui_edit("Leads", &all[3], json!({"Last_Name": "While lapsed"})).unwrap();
    sim.ui_delete("Leads", &all[4]).unwrap();
    converges(&sim, &mut c, Duration::from_secs(10), "after the lapse");
    assert!(!sim.channels().is_empty(), "the channel was not subscribed again");
}

#[test]
fn a_dead_webhook_is_made_good_by_catch_up() {
    let sim = start_sim(SimConfig::default().seed("Leads", 100));
    let (mut db, mut c) = WorkerDb::new(&sim);
    db.set(&mut c, "zoho_fdw.catchup_interval", "1");
    // Zoho posts to a port where nothing listens.
    watch(&mut c, "http://127.0.0.1:9/zoho/notify");
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let all = ids(&sim);
    for id in &all[..10] {
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("Unheard {id}")})).unwrap();
    }
    for id in &all[10..13] {
        sim.ui_delete("Leads", id).unwrap();
    }
    sim.ui_create("Leads", json!({"Last_Name": "Unheard new", "Company": "X"})).unwrap();
    converges(&sim, &mut c, Duration::from_secs(10), "by catch-up");
    assert!(sim.deliveries().iter().all(|d| d.status.is_none()), "a delivery reached something");
}

#[test]
fn the_worker_killed_with_kill_9_picks_up_where_it_was() {
    let sim = start_sim(SimConfig::default().seed("Leads", 100));
    let (db, mut c) = WorkerDb::new(&sim);
    watch(&mut c, HOOK);
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let pid: i32 = c.query_one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'zoho_fdw worker'", &[]).unwrap().get(0);
    assert!(std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    // While PostgreSQL recovers and the worker restarts, Zoho changes.
    let all = ids(&sim);
    for id in &all[..5] {
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("While down {id}")})).unwrap();
    }
    sim.ui_delete("Leads", &all[7]).unwrap();
    drop(c);
    let mut c = reconnect(&db.dsn);
    converges(&sim, &mut c, Duration::from_secs(15), "after the restart");
    let pid2: i32 = c.query_one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'zoho_fdw worker'", &[]).unwrap().get(0);
    assert_ne!(pid, pid2);
    let _ = db.client();
}




#[test]
fn a_near_real_time_push_follows_the_threshold_and_the_interval() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    c.batch_execute(
        "SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => 50, max_wait => '4 seconds',
                                   mapping => '{\"order_id\": \"parent_id\"}')",
    )
    .unwrap();
    // The first run has no previous one to wait for; then the clock starts.
    orders(&mut c, 1, 1);
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(5)).expect("the first row was pushed");
    // 60 pending rows pass the threshold: pushed within about a second.
    orders(&mut c, 60, 2);
    let took = wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(5)).expect("the threshold push");
    assert!(took < Duration::from_secs(3), "threshold push took {took:?}");
    // 5 rows stay below it: they wait for max_wait.
    orders(&mut c, 5, 100);
    thread::sleep(Duration::from_millis(1_500));
    let waiting: i64 = c.query_one("SELECT count(*) FROM orders WHERE NOT synced", &[]).unwrap().get(0);
    assert_eq!(waiting, 5, "rows below the threshold went out before max_wait");
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(8)).expect("the interval push");
    assert_eq!(sim.records("Orders").len(), 66);
    let row = c.query_one("SELECT (last_result->>'pending')::int, last_error FROM zoho.push_schedules", &[]).unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, Option<String>>(1)), (5, None));
    let status: i64 = c.query_one("SELECT rows_pending FROM zoho.sync_status WHERE flow = 'push'", &[]).unwrap().get(0);
    assert_eq!(status, 0);
}

#[test]
fn a_scheduled_push_survives_the_worker_killed_in_its_middle() {
    let sim = start_sim(SimConfig::default());
    let (db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    orders(&mut c, 300, 1);
    scheduled_push_in_flight(&sim, &mut c);
    let pid: i32 = c.query_one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'zoho_fdw worker'", &[]).unwrap().get(0);
    assert!(std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    drop(c);
    let mut c = reconnect(&db.dsn);
    every_order_once(&sim, &mut c, 300);
}

#[test]
fn a_rolled_back_watch_leaves_no_channel_in_zoho() {
    let sim = start_sim(SimConfig::default().seed("Leads", 5));
    let (_db, mut c) = WorkerDb::new(&sim);
    let mut tx = c.transaction().unwrap();
    let channel: String = tx.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => $1)", &[&HOOK]).unwrap().get(0);
    assert_eq!(sim.channels().len(), 1, "zoho_watch enabled no channel");
    tx.rollback().unwrap();
    let started = Instant::now();
    while !sim.channels().is_empty() && started.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(sim.channels().is_empty(), "channel {channel} is still live in Zoho: {:?}", sim.channels());
    // A committed one stays.
    watch(&mut c, HOOK);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(sim.channels().len(), 1);
}

#[test]
fn two_edits_of_one_record_within_one_second_both_reach_the_mirror() {
    let sim = start_sim(SimConfig::default().seed("Leads", 5));
    let (_db, mut c) = WorkerDb::new(&sim);
    watch(&mut c, HOOK);
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let id = ids(&sim)[2].clone();
    let modified = |sim: &Sim| sim.records("Leads").iter().find(|r| r["id"] == id.as_str()).unwrap()["Modified_Time"].as_str().unwrap().to_string();
    let mirror = |c: &mut Client| -> String { c.query_one(&format!("SELECT last_name FROM crm_leads WHERE id = {id}"), &[]).unwrap().get(0) };
    // Zoho's Modified_Time has whole seconds: edit at the start of one,
    // let the first notification land, and edit again in the same second.
    for attempt in 0..5 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let wait = 1_000 - u64::from(now.subsec_millis());
        thread::sleep(Duration::from_millis(wait + 20));
        sim.ui_edit("Leads", &id, json!({"Last_Name": format!("First {attempt}")})).unwrap();
        let first = modified(&sim);
        let landed = Instant::now();
        while mirror(&mut c) != format!("First {attempt}") && landed.elapsed() < Duration::from_millis(900) {
            thread::sleep(Duration::from_millis(10));
        }
        sim.ui_edit("Leads", &id, json!({"Last_Name": format!("Second {attempt}")})).unwrap();
        if modified(&sim) != first || mirror(&mut c) != format!("First {attempt}") {
            continue; // crossed a second, or the first was late: try again
        }
        wait_for(&mut c, &format!("SELECT last_name = 'Second {attempt}' FROM crm_leads WHERE id = {id}"), Duration::from_secs(5))
            .expect("the second edit of the same second reached the mirror");
        return;
    }
    panic!("could not make two edits within one second");
}

/// `GET /metrics` from the test cluster's listener.
fn metrics_text() -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect("127.0.0.1:28816").unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

#[test]
fn metrics_parse_as_prometheus_text_per_flow() {
    let sim = start_sim(SimConfig::default().seed("Leads", 20));
    let (_db, mut c) = WorkerDb::new(&sim);
    let channel = watch(&mut c, HOOK);
    // A second channel of the same table is a series of its own.
    let second = watch(&mut c, HOOK);
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let id = ids(&sim)[4].clone();
    sim.ui_edit("Leads", &id, json!({"Last_Name": "Measured"})).unwrap();
    wait_for(&mut c, &format!("SELECT last_name = 'Measured' FROM crm_leads WHERE id = {id}"), Duration::from_secs(10)).expect("the notification");
    thread::sleep(Duration::from_millis(2_500)); // the metrics are written every 2 s
    let text = metrics_text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format");
    let sample = |name: &str| scrape.samples.iter().find(|s| s.metric == name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    let up = sample("zoho_fdw_flow_up");
    assert_eq!((up.labels.get("flow"), up.labels.get("target")), (Some("channel"), Some("public.crm_leads")));
    let mut channels: Vec<String> = scrape.samples.iter().filter(|s| s.metric == "zoho_fdw_flow_up").filter_map(|s| s.labels.get("channel_id").map(str::to_string)).collect();
    channels.sort();
    let mut want = vec![channel.clone(), second.clone()];
    want.sort();
    assert_eq!(channels, want, "one zoho_fdw_flow_up series per channel");
    assert!(matches!(up.value, prometheus_parse::Value::Gauge(v) if v == 1.0), "{:?}", up.value);
    let notified = scrape
        .samples
        .iter()
        .find(|s| s.metric == "zoho_fdw_notifications_total" && s.labels.get("channel_id") == Some(channel.as_str()))
        .unwrap_or_else(|| panic!("no notifications of channel {channel} in\n{text}"));
    assert!(matches!(notified.value, prometheus_parse::Value::Counter(v) if v >= 1.0), "{:?}", notified.value);
    let latency = sample("zoho_fdw_notification_latency_seconds");
    assert!(matches!(latency.value, prometheus_parse::Value::Gauge(v) if (0.0..10.0).contains(&v)), "{:?}", latency.value);
    assert!(scrape.samples.iter().any(|s| s.metric == "zoho_fdw_api_credits_24h"), "{text}");
    assert!(scrape.samples.iter().any(|s| s.metric == "zoho_fdw_jobs"), "{text}");
}

#[test]
fn a_timestamp_column_holds_utc_whichever_way_a_row_arrives() {
    // Zoho's user zone is +05:30: its date-times carry that offset.
    let sim = start_sim(SimConfig::default().seed("Leads", 5));
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(
        "DROP TABLE IF EXISTS crm_ts; CREATE TABLE crm_ts (id bigint PRIMARY KEY, last_name text, modified_time timestamp without time zone)",
    )
    .unwrap();
    let utc = |sim: &Sim, id: &str| -> String {
        let t = sim.records("Leads").iter().find(|r| r["id"] == id).unwrap()["Modified_Time"].as_str().unwrap().to_string();
        zoho_fdw_tests::utc_wall_time(&t)
    };
    let stored = |c: &mut Client, id: &str| -> String { c.query_one(&format!("SELECT to_char(modified_time, 'YYYY-MM-DD HH24:MI:SS') FROM crm_ts WHERE id = {id}"), &[]).unwrap().get(0) };
    c.query_one("SELECT zoho_watch('Leads', 'crm_ts', notify_url => $1)", &[&HOOK]).unwrap();
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_ts')", &[]).unwrap();
    let id = ids(&sim)[1].clone();
    assert_eq!(stored(&mut c, &id), utc(&sim, &id), "by export");
    thread::sleep(Duration::from_millis(1_100));
    sim.ui_edit("Leads", &id, json!({"Last_Name": "By notification"})).unwrap();
    wait_for(&mut c, &format!("SELECT last_name = 'By notification' FROM crm_ts WHERE id = {id}"), Duration::from_secs(10)).expect("the notification");
    assert_eq!(stored(&mut c, &id), utc(&sim, &id), "by notification: the same rule, so newer-wins compares like with like");
    c.batch_execute("SELECT zoho_unwatch(channel_id) FROM zoho.channels; DROP TABLE crm_ts").unwrap();
}
