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

    // An exact mirror: one aggregate call on each side says so.
    sim.clear_calls();
    assert_eq!(verify(&mut c, false), vec![]);
    assert_eq!(coql_calls(&sim), 1);

    let ids: Vec<i64> = zoho_names(&sim).keys().copied().collect();
    let (deleted_here, edited, deleted_there) = (ids[10], ids[200], ids[400]);
    c.execute("DELETE FROM leads_mirror WHERE id = $1", &[&deleted_here]).unwrap();
    sim.ui_edit("Leads", &edited.to_string(), json!({"Last_Name": "Edited behind the worker"})).unwrap();
    let created: i64 = sim.ui_create("Leads", json!({"Last_Name": "Created unseen", "Company": "X"})).unwrap().parse().unwrap();
    sim.ui_delete("Leads", &deleted_there.to_string()).unwrap();

    sim.clear_calls();
    let mut want = vec![
        ("extra".to_string(), deleted_there, false),
        ("missing".to_string(), deleted_here, false),
        ("missing".to_string(), created, false),
        ("stale".to_string(), edited, false),
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
    assert_eq!(coql_calls(&sim), 1);
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
