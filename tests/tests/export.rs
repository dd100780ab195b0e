//! zoho_bulk_export and zoho_create_mirror against a real PostgreSQL and the
//! simulator: every page once, newer Modified_Time wins (also against edits
//! made while the export runs), `since`, a mapping to a legacy table, and
//! failures that leave nothing half-applied.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use serde_json::json;
use zoho_fdw_tests::*;

fn mirror(sim: &Sim, db: &TestDb) -> Client {
    let mut c = db.client_for(sim);
    c.batch_execute("SELECT zoho_create_mirror('Leads', 'leads_mirror')").unwrap();
    c
}

fn export(c: &mut Client, extra: &str) -> Result<i64, postgres::Error> {
    c.query_one(&format!("SELECT zoho_bulk_export('Leads', 'leads_mirror'{extra})"), &[]).map(|r| r.get(0))
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

fn sim_ids(sim: &Sim) -> HashSet<i64> {
    sim.records("Leads").iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect()
}

#[test]
fn every_page_arrives_exactly_once() {
    let sim = start_sim(SimConfig::default().seed("Leads", 4_500).bulk_page_size(2_000).bulk_step_ms(10));
    let db = TestDb::new("export_pages");
    let mut c = mirror(&sim, &db);
    assert_eq!(export(&mut c, "").unwrap(), 4_500);
    let ids: HashSet<i64> = c.query("SELECT id FROM leads_mirror", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, sim_ids(&sim));
    assert_eq!(sim.calls().iter().filter(|c| c.endpoint == "bulk_read.create").count(), 3);
    let row = c.query_one("SELECT pages, rows_written FROM zoho.exports WHERE module = 'Leads' AND target = 'leads_mirror'::regclass", &[]).unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i64>(1)), (3, 4_500));
    // Values arrive typed: a record compared field by field.
    let rec = &sim.records("Leads")[10];
    let id: i64 = rec["id"].as_str().unwrap().parse().unwrap();
    let row = c.query_one("SELECT last_name, email, languages, email_opt_out, owner, modified_time::text FROM leads_mirror WHERE id = $1", &[&id]).unwrap();
    assert_eq!(json!(row.get::<_, String>(0)), rec["Last_Name"]);
    assert_eq!(json!(row.get::<_, Option<String>>(1)), rec["Email"]);
    assert_eq!(json!(row.get::<_, Option<Vec<String>>>(2).unwrap_or_default()), rec["Languages"]);
    assert_eq!(json!(row.get::<_, bool>(3)), rec["Email_Opt_Out"]);
    assert_eq!(json!(row.get::<_, i64>(4).to_string()), rec["Owner"]["id"]);
}

#[test]
fn newer_modified_time_wins_also_against_edits_during_the_export() {
    let sim = start_sim(SimConfig::default().seed("Leads", 300).bulk_step_ms(400));
    let db = TestDb::new("export_newer");
    let mut c = mirror(&sim, &db);
    let victim = sim.records("Leads")[5]["id"].as_str().unwrap().to_string();
    let dsn = db.dsn.clone();
    let exporter = thread::spawn(move || export(&mut Client::connect(&dsn, NoTls).unwrap(), ""));
    // While the job runs: an edit in Zoho, and what a notification would
    // apply for it (it waits for the export's lock, then wins by being newer).
    thread::sleep(Duration::from_millis(200));
    sim.ui_edit("Leads", &victim, json!({"Last_Name": "Edited-during"})).unwrap();
    let edited = sim.records("Leads").into_iter().find(|r| r["id"] == json!(victim)).unwrap();
    let mt = edited["Modified_Time"].as_str().unwrap().to_string();
    let mut n = db.client();
    n.execute(
        "INSERT INTO leads_mirror (id, last_name, modified_time) VALUES ($1::text::bigint, 'Edited-during', $2::text::timestamptz)
         ON CONFLICT (id) DO UPDATE SET last_name = EXCLUDED.last_name, modified_time = EXCLUDED.modified_time
         WHERE leads_mirror.modified_time < EXCLUDED.modified_time",
        &[&victim, &mt],
    )
    .unwrap();
    assert_eq!(exporter.join().unwrap().unwrap(), 300);
    let name: String = c.query_one("SELECT last_name FROM leads_mirror WHERE id = $1::text::bigint", &[&victim]).unwrap().get(0);
    assert_eq!(name, "Edited-during");

    // A table with rows: an older export row never overwrites a newer one.
    let ids: Vec<i64> = c.query("SELECT id FROM leads_mirror ORDER BY id LIMIT 2", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    c.execute("UPDATE leads_mirror SET last_name = 'newer here', modified_time = now() + interval '1 day' WHERE id = $1", &[&ids[0]]).unwrap();
    c.execute("UPDATE leads_mirror SET last_name = 'stale', modified_time = '2001-01-01' WHERE id = $1", &[&ids[1]]).unwrap();
    assert_eq!(export(&mut c, "").unwrap(), 1, "only the stale row is rewritten");
    let names: Vec<String> = c.query("SELECT last_name FROM leads_mirror WHERE id = ANY($1) ORDER BY id", &[&ids]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(names[0], "newer here");
    assert_ne!(names[1], "stale");
    assert_eq!(count(&mut c, "SELECT count(*) FROM leads_mirror"), 300);
}

#[test]
fn since_fetches_only_newer_rows() {
    let sim = start_sim(SimConfig::default().seed("Leads", 500).bulk_step_ms(10));
    let db = TestDb::new("export_since");
    let mut c = mirror(&sim, &db);
    export(&mut c, "").unwrap();
    let edited: Vec<String> = sim.records("Leads").iter().take(3).map(|r| r["id"].as_str().unwrap().to_string()).collect();
    for id in &edited {
        sim.ui_edit("Leads", id, json!({"Company": "Changed Inc"})).unwrap();
    }
    let since = "(SELECT last_success FROM zoho.exports WHERE module = 'Leads')";
    assert_eq!(export(&mut c, &format!(", since => {since}")).unwrap(), 3);
    assert_eq!(count(&mut c, "SELECT count(*) FROM leads_mirror WHERE company = 'Changed Inc'"), 3);
    let create = sim.calls().into_iter().filter(|c| c.endpoint == "bulk_read.create").last().unwrap();
    let criteria = &create.request_body.unwrap()["query"]["criteria"];
    assert_eq!(criteria["field"]["api_name"], json!("Modified_Time"), "{criteria}");
}

#[test]
fn a_legacy_table_through_a_mapping_keeps_its_own_columns() {
    let sim = start_sim(SimConfig::default().seed("Leads", 200).bulk_step_ms(10));
    let db = TestDb::new("export_mapping");
    let mut c = db.client_for(&sim);
    let first: i64 = sim.records("Leads")[0]["id"].as_str().unwrap().parse().unwrap();
    c.batch_execute(&format!(
        "CREATE TABLE legacy_leads (zoho_key bigint PRIMARY KEY, surname text, mail text, changed_at timestamptz, local_note text DEFAULT 'new');
         INSERT INTO legacy_leads VALUES ({first}, 'old surname', NULL, '2001-01-01', 'mine');"
    ))
    .unwrap();
    let mapping = r#"{"zoho_key": "id", "surname": "Last_Name", "mail": "Email", "changed_at": "Modified_Time", "local_note": null}"#;
    let n: i64 = c.query_one("SELECT zoho_bulk_export('Leads', 'legacy_leads', mapping => $1::text::jsonb)", &[&mapping]).unwrap().get(0);
    assert_eq!(n, 200);
    let row = c.query_one("SELECT surname, local_note FROM legacy_leads WHERE zoho_key = $1", &[&first]).unwrap();
    assert_eq!(json!(row.get::<_, String>(0)), sim.records("Leads")[0]["Last_Name"]);
    assert_eq!(row.get::<_, String>(1), "mine", "a column Zoho does not send keeps its value");
    assert_eq!(count(&mut c, "SELECT count(*) FROM legacy_leads WHERE local_note = 'new'"), 199);
}

/// Runs an export that must fail; the mirror and zoho.exports stay as they were.
fn fails_cleanly(tag: &str, cfg: SimConfig, fault: Option<Fault>, setup: &str, expect: &str) {
    let sim = start_sim(cfg.seed("Leads", 300));
    let db = TestDb::new(tag);
    let mut c = mirror(&sim, &db);
    c.batch_execute(setup).unwrap();
    if let Some(f) = fault {
        sim.inject(f);
    }
    let err = export(&mut c, "").expect_err(tag);
    let (_, msg, _) = sql_error(&err);
    assert!(msg.contains(expect), "{tag}: {msg}");
    assert_eq!(count(&mut c, "SELECT count(*) FROM leads_mirror"), 0, "{tag}: rows were half-applied");
    assert_eq!(count(&mut c, "SELECT count(*) FROM zoho.exports"), 0, "{tag}");
}

#[test]
fn a_malformed_download_applies_nothing() {
    fails_cleanly("export_malformed", SimConfig::default().bulk_step_ms(10), Some(Fault::malformed(1).on_path("/crm/bulk/v8/read/*/result")), "", "zip");
}

#[test]
fn a_value_that_does_not_convert_names_the_record_and_applies_nothing() {
    fails_cleanly(
        "export_convert",
        SimConfig::default().bulk_step_ms(10),
        None,
        "ALTER TABLE leads_mirror ALTER COLUMN email TYPE int USING NULL",
        "for column email, which cannot hold it: not a whole number",
    );
}

#[test]
fn a_failed_job_applies_nothing() {
    fails_cleanly("export_failed", SimConfig::default().bulk_step_ms(10), Some(Fault::job_failed()), "", "failed");
}

#[test]
fn a_cancel_in_the_middle_applies_nothing_and_stops_within_a_second() {
    let started = std::time::Instant::now();
    fails_cleanly("export_cancel", SimConfig::default().bulk_step_ms(3_000), None, "SET statement_timeout = '700ms'", "statement timeout");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[test]
fn token_expiry_during_the_download_is_survived() {
    let sim = start_sim(SimConfig::default().seed("Leads", 1_000).bulk_step_ms(10));
    let db = TestDb::new("export_token");
    let mut c = mirror(&sim, &db);
    sim.inject(Fault::token_expiry(1).on_path("/crm/bulk/v8/read/*/result"));
    assert_eq!(export(&mut c, "").unwrap(), 1_000);
    assert!(sim.calls().iter().any(|c| c.endpoint == "bulk_read.download" && c.status == 401), "the fault never fired");
    assert_eq!(count(&mut c, "SELECT count(DISTINCT id) FROM leads_mirror"), 1_000);
}

/// Times at PostgreSQL's edges (±infinity) and NULL option arrays are
/// arguments like any other: a clear error naming them, never a panic.
#[test]
fn infinite_times_and_null_options_are_clear_errors() {
    let sim = start_sim(SimConfig::default().seed("Leads", 5));
    let db = TestDb::new("edges");
    let mut c = mirror(&sim, &db);
    for since in ["infinity", "-infinity"] {
        let (code, message, _) = sql_error(&export(&mut c, &format!(", since => '{since}'")).unwrap_err());
        assert_eq!(code, "22023", "{message}");
        assert!(message.contains("since must be a finite time"), "{message}");
    }
    for after in ["infinity", "-infinity"] {
        let e = c.query_one(&format!("SELECT zoho.cron_next('* * * * *', '{after}')"), &[]).unwrap_err();
        let (code, message, _) = sql_error(&e);
        assert_eq!(code, "22023", "{message}");
        assert!(message.contains("after must be a finite time"), "{message}");
    }
    let next: String = c.query_one("SELECT zoho.cron_next('0 3 * * *', '2026-01-01 04:00+00')::text", &[]).unwrap().get(0);
    assert_eq!(next, "2026-01-02 03:00:00+00");
    c.batch_execute("SELECT zoho_fdw_validator(NULL, NULL)").unwrap();
    assert_eq!(count(&mut c, "SELECT count(*) FROM leads_mirror"), 0, "nothing was exported");
}
