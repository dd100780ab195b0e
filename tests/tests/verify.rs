//! zoho_verify against a real PostgreSQL and the simulator: a mirror that
//! drifted from Zoho behind everyone's back (a row deleted locally, an edit
//! and a create whose notifications were lost, a record deleted in Zoho) is
//! found out bucket by bucket, repaired by targeted reads, and then proven
//! equal with a single aggregate call.

use std::collections::BTreeMap;

use serde_json::json;
use zoho_fdw_tests::*;

fn zoho_names(sim: &Sim) -> BTreeMap<i64, String> {
    sim.records("Leads").iter().map(|r| (r["id"].as_str().unwrap().parse().unwrap(), r["Last_Name"].as_str().unwrap_or_default().to_string())).collect()
}

fn mirror_names(c: &mut Client) -> BTreeMap<i64, String> {
    c.query("SELECT id, last_name FROM leads_mirror", &[]).unwrap().iter().map(|r| (r.get(0), r.get::<_, Option<String>>(1).unwrap_or_default())).collect()
}

fn verify(c: &mut Client, repair: bool) -> Vec<(String, i64, bool)> {
    let mut rows: Vec<(String, i64, bool)> = c
        .query("SELECT difference, id, repaired FROM zoho_verify('leads_mirror', repair => $1)", &[&repair])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    rows.sort();
    rows
}

fn coql_calls(sim: &Sim) -> usize {
    sim.calls().iter().filter(|c| c.endpoint == "coql").count()
}

#[test]
fn a_drifted_mirror_is_found_out_repaired_and_then_proven_equal() {
    let sim = start_sim(SimConfig::default().seed("Leads", 600).bulk_step_ms(10));
    let db = TestDb::new("verify_drift");
    let mut c = db.client_for(&sim);
    c.batch_execute("SELECT zoho_create_mirror('Leads', 'leads_mirror'); SELECT zoho_bulk_export('Leads', 'leads_mirror')").unwrap();

    // An exact mirror of one COQL page: one aggregate call and one read of
    // ids and times say so.
    sim.clear_calls();
    assert_eq!(verify(&mut c, false), vec![]);
    assert_eq!(coql_calls(&sim), 2);

    let ids: Vec<i64> = zoho_names(&sim).keys().copied().collect();
    let (deleted_here, edited, deleted_there, older_here) = (ids[10], ids[200], ids[400], ids[300]);
    c.execute("DELETE FROM leads_mirror WHERE id = $1", &[&deleted_here]).unwrap();
    // An older version here, inside the span: counts and bounds unchanged.
    c.execute("UPDATE leads_mirror SET modified_time = modified_time - interval '1 second' WHERE id = $1", &[&older_here]).unwrap();
    sim.ui_edit("Leads", &edited.to_string(), json!({"Last_Name": "Edited behind the worker"})).unwrap();
    let created: i64 = sim.ui_create("Leads", json!({"Last_Name": "Created unseen", "Company": "X"})).unwrap().parse().unwrap();
    sim.ui_delete("Leads", &deleted_there.to_string()).unwrap();

    sim.clear_calls();
    let mut want = vec![
        ("extra".to_string(), deleted_there, false),
        ("missing".to_string(), deleted_here, false),
        ("missing".to_string(), created, false),
        ("stale".to_string(), edited, false),
        ("stale".to_string(), older_here, false),
    ];
    want.sort();
    assert_eq!(verify(&mut c, false), want);
    // Bucket by bucket, not record by record: a handful of calls for 600.
    let calls = coql_calls(&sim);
    assert!(calls < 40, "{calls} COQL calls to find 4 differences");
    assert_ne!(zoho_names(&sim), mirror_names(&mut c), "finding changes nothing");

    let repaired: Vec<(String, i64, bool)> = want.iter().map(|(k, id, _)| (k.clone(), *id, true)).collect();
    assert_eq!(verify(&mut c, true), repaired);
    assert_eq!(zoho_names(&sim), mirror_names(&mut c));
    sim.clear_calls();
    assert_eq!(verify(&mut c, false), vec![]);
    assert_eq!(coql_calls(&sim), 2);
}

/// More than a COQL page: spans are halved down to one page each, every
/// one read record by record, so a version moved inside a span whose count
/// and bounds agree is still found.
#[test]
fn a_stale_row_is_found_in_a_mirror_of_many_pages() {
    let sim = start_sim(SimConfig::default().seed("Leads", 5_000).bulk_step_ms(10));
    let db = TestDb::new("verify_pages");
    let mut c = db.client_for(&sim);
    c.batch_execute("SELECT zoho_create_mirror('Leads', 'leads_mirror'); SELECT zoho_bulk_export('Leads', 'leads_mirror')").unwrap();
    sim.clear_calls();
    assert_eq!(verify(&mut c, false), vec![]);
    let exact = coql_calls(&sim);
    let pages = 5_000usize.div_ceil(2_000);
    assert!(exact >= 2 * pages && exact < 12 * pages, "{exact} COQL calls to prove 5,000 rows");
    let ids: Vec<i64> = zoho_names(&sim).keys().copied().collect();
    c.execute("UPDATE leads_mirror SET modified_time = modified_time - interval '1 second' WHERE id = $1", &[&ids[2_500]]).unwrap();
    assert_eq!(verify(&mut c, false), vec![("stale".to_string(), ids[2_500], false)]);
}

#[test]
fn a_target_without_a_flow_needs_its_module_named() {
    let sim = start_sim(SimConfig::default().seed("Leads", 5));
    let db = TestDb::new("verify_module");
    let mut c = db.client_for(&sim);
    c.batch_execute("SELECT zoho_create_mirror('Leads', 'leads_mirror')").unwrap();
    let e = c.query("SELECT * FROM zoho_verify('leads_mirror')", &[]).unwrap_err();
    let (state, message, hint) = sql_error(&e);
    assert_eq!(state, "22023", "{message}");
    assert!(message.contains("leads_mirror") && message.contains("module is not known"), "{message}");
    assert!(hint.unwrap_or_default().contains("module =>"));
    // Named, an empty mirror of five records: five missing.
    let n = c.query("SELECT * FROM zoho_verify('leads_mirror', module => 'Leads') WHERE difference = 'missing'", &[]).unwrap().len();
    assert_eq!(n, 5);
}

/// A regclass is only an OID: one that names no table is an error, not a
/// read of a missing catalog row.
#[test]
fn a_target_that_names_no_table_is_an_error() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("verify_notable");
    let mut c = db.client_for(&sim);
    for sql in ["SELECT * FROM zoho_verify(4242424::oid::regclass)", "SELECT * FROM zoho_verify(4242424::oid::regclass, module => 'Leads')"] {
        let e = c.query(sql, &[]).unwrap_err();
        let (state, message, _) = sql_error(&e);
        assert_eq!(state, "22023", "{sql}: {message}");
        assert!(message.contains("4242424"), "{sql}: {message}");
    }
    assert_eq!(c.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1, "the session lives on");
}

/// zoho_schedule_verify: the worker verifies and repairs a drifted mirror
/// as its owner, says so on zoho_fdw_events and in zoho.health, and holds
/// its runs while the server's daily_credit_budget is reached.
#[test]
fn a_scheduled_verification_repairs_drift_says_so_and_keeps_to_the_budget() {
    use postgres::fallible_iterator::FallibleIterator;
    use std::time::Duration;
    use zoho_fdw_tests::worker::*;

    let sim = start_sim(SimConfig::default().seed("Leads", 200).bulk_step_ms(10));
    let (db, mut c) = WorkerDb::new(&sim);
    c.batch_execute("SELECT zoho_bulk_export('Leads', 'crm_leads')").unwrap();
    let gone: i64 = c.query_one("DELETE FROM crm_leads WHERE id = (SELECT min(id) FROM crm_leads) RETURNING id", &[]).unwrap().get(0);
    let created: i64 = sim.ui_create("Leads", json!({"Last_Name": "Never announced", "Company": "X"})).unwrap().parse().unwrap();
    let mut listener = db.client();
    listener.batch_execute("LISTEN zoho_fdw_events").unwrap();
    // The module comes from the target's export.
    c.batch_execute("SELECT zoho_schedule_verify('crm_leads', every => '1 hour')").unwrap();
    wait_for(&mut c, "SELECT last_result IS NOT NULL FROM zoho.verify_schedules", Duration::from_secs(20)).expect("the worker verified");
    let r: serde_json::Value = serde_json::from_str(&c.query_one("SELECT last_result::text FROM zoho.verify_schedules", &[]).unwrap().get::<_, String>(0)).unwrap();
    assert_eq!((r["missing"].as_i64(), r["extra"].as_i64(), r["stale"].as_i64(), r["repaired"].as_i64()), (Some(2), Some(0), Some(0), Some(2)), "{r}");
    let ids: std::collections::HashSet<i64> = c.query("SELECT id FROM crm_leads", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(ids.contains(&gone) && ids.contains(&created));
    assert_eq!(ids.len(), sim.records("Leads").len());
    let health = c.query_one("SELECT state, lag < interval '1 minute' FROM zoho.health WHERE flow = 'verify'", &[]).unwrap();
    assert_eq!((health.get::<_, String>(0), health.get::<_, bool>(1)), ("ok".to_string(), true));
    let mut heard = listener.notifications();
    let event = heard
        .timeout_iter(Duration::from_secs(3))
        .iterator()
        .filter_map(|n| n.ok())
        .map(|n| serde_json::from_str::<serde_json::Value>(n.payload()).unwrap())
        .find(|e| e["event"] == "verify_differences")
        .expect("LISTEN zoho_fdw_events heard the differences");
    assert_eq!((event["target"].as_str(), event["missing"].as_i64()), (Some("public.crm_leads"), Some(2)));

    // With the budget reached, a due run waits: no call to Zoho.
    c.batch_execute("ALTER SERVER zoho OPTIONS (ADD daily_credit_budget '1')").unwrap();
    wait_for(&mut c, "SELECT reached FROM zoho.credit_budget", Duration::from_secs(5)).expect("the budget is reached");
    sim.clear_calls();
    c.batch_execute("UPDATE zoho.verify_schedules SET last_run = NULL").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sim.calls().iter().filter(|c| c.endpoint == "coql").count(), 0, "a verification ran past the budget");
    let state: String = c.query_one("SELECT state FROM zoho.health WHERE flow = 'verify'", &[]).unwrap().get(0);
    assert_eq!(state, "paused");
    assert!(c.query_one("SELECT zoho_unschedule_verify('crm_leads')", &[]).unwrap().get::<_, bool>(0));
}
