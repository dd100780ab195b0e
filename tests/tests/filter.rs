//! Filtered flows: a scheduled pull and a two-way table that keep only the
//! records a COQL condition matches. Records enter and leave as they start
//! and stop matching in Zoho; leaving never deletes anything in Zoho.
//! Against the test cluster's worker (see zoho_fdw_tests::worker).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Map, Value};
use zoho_fdw_tests::worker::*;
use zoho_fdw_tests::*;

/// The ids of the Leads the filter keeps: unconverted ones, unless the
/// filter names Converted__s (COQL hides them otherwise, zoho-api.md §6).
fn matching_leads(sim: &Sim, keep: impl Fn(&Map<String, Value>) -> bool) -> BTreeSet<i64> {
    sim.records("Leads")
        .iter()
        .filter(|r| r.get("Converted__s") != Some(&json!(true)) && keep(r))
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

fn local_ids(c: &mut Client, table: &str, column: &str) -> BTreeSet<i64> {
    c.query(&format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL"), &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

fn source_is(source: &'static str) -> impl Fn(&Map<String, Value>) -> bool {
    move |r: &Map<String, Value>| r["Lead_Source"] == source
}

#[test]
fn a_filtered_mirror_keeps_the_records_that_match_as_they_come_and_go() {
    let sim = start_sim(SimConfig::default().seed("Leads", 80));
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second', filter => 'lead_source = ''Web Download''')").unwrap();
    let web = matching_leads(&sim, source_is("Web Download"));
    assert!(web.len() > 5 && web.len() < 60, "{} of 80 match: the test needs both kinds", web.len());
    wait_until("the filtered load", Duration::from_secs(30), || local_ids(&mut c, "crm_leads", "id") == web);
    // Stored as Zoho is asked, with the field's own spelling.
    let stored: String = c.query_one("SELECT filter FROM zoho.pull_schedules", &[]).unwrap().get(0);
    assert_eq!(stored, "(Lead_Source = 'Web Download' and Converted__s = false)");
    // The load asked Zoho for matching records only.
    let criteria: Vec<Value> = sim.calls().iter().filter(|x| x.endpoint == "bulk_read.create").filter_map(|x| x.request_body.as_ref()?.pointer("/query/criteria").cloned()).collect();
    assert_eq!(
        criteria,
        vec![json!({"group_operator": "and", "group": [
            {"field": {"api_name": "Lead_Source"}, "comparator": "equal", "value": "Web Download"},
            {"field": {"api_name": "Converted__s"}, "comparator": "equal", "value": false}]})]
    );

    // One leaves, one enters, one is created matching, one matching is deleted.
    let leaving = web.iter().next().unwrap().to_string();
    let entering = matching_leads(&sim, |r| r["Lead_Source"] != "Web Download").into_iter().next().unwrap().to_string();
    let gone = web.iter().nth(1).unwrap().to_string();
    sim.ui_edit("Leads", &leaving, json!({"Lead_Source": "Trade Show"})).unwrap();
    sim.ui_edit("Leads", &entering, json!({"Lead_Source": "Web Download", "Last_Name": "Now from the web"})).unwrap();
    let created = sim.ui_create("Leads", json!({"Last_Name": "Brand new", "Lead_Source": "Web Download"})).unwrap();
    sim.ui_create("Leads", json!({"Last_Name": "Not for us", "Lead_Source": "Cold Call"})).unwrap();
    sim.ui_delete("Leads", &gone).unwrap();
    let now = matching_leads(&sim, source_is("Web Download"));
    assert!(now.contains(&entering.parse().unwrap()) && now.contains(&created.parse().unwrap()) && !now.contains(&leaving.parse().unwrap()));
    wait_until("the catch-up", Duration::from_secs(20), || local_ids(&mut c, "crm_leads", "id") == now);
    let name: String = c.query_one("SELECT last_name FROM crm_leads WHERE id = $1::text::bigint", &[&entering]).unwrap().get(0);
    assert_eq!(name, "Now from the web");
    assert!(sim.records("Leads").iter().any(|r| r["id"] == leaving.as_str()), "leaving the filter deleted nothing in Zoho");

    // A narrower filter starts again from a full load, which removes the
    // rows it no longer keeps.
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second', filter => 'Lead_Source = ''Web Download'' and Last_Name like ''%e%''')").unwrap();
    let narrower = matching_leads(&sim, |r| r["Lead_Source"] == "Web Download" && r["Last_Name"].as_str().unwrap_or_default().contains('e'));
    assert!(!narrower.is_empty() && narrower.len() < now.len());
    wait_until("the narrower load", Duration::from_secs(30), || local_ids(&mut c, "crm_leads", "id") == narrower);
    let jobs: i64 = c.query_one("SELECT count(*) FROM zoho.jobs WHERE kind = 'pull' AND state = 'done'", &[]).unwrap().get(0);
    assert_eq!(jobs, 2);

    // Dropping the filter brings every record back.
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'crm_leads', every => '1 second')").unwrap();
    let all: BTreeSet<i64> = sim.records("Leads").iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    wait_until("the unfiltered load", Duration::from_secs(30), || local_ids(&mut c, "crm_leads", "id") == all);
}

#[test]
fn a_filter_is_checked_against_the_modules_fields_when_registered() {
    let sim = start_sim(SimConfig::default().seed("Leads", 3));
    let (_db, mut c) = WorkerDb::new(&sim);
    for (filter, says) in [
        ("Nope = 1", "Leads: filter \"Nope = 1\": the module has no field Nope"),
        ("Description = 'x'", "Description: multi-line text cannot be used in criteria"),
        ("Annual_Revenue = 'lots'", "Annual_Revenue takes a number, not 'lots'"),
        ("Last_Name = 'a'; DELETE FROM crm_leads", "unexpected ';'"),
        ("Last_Name like 'a%b'", "% may stand only at the start or the end"),
    ] {
        let e = c.batch_execute(&format!("SELECT zoho_schedule_pull('Leads', 'crm_leads', filter => '{}')", filter.replace('\'', "''"))).unwrap_err();
        let (state, msg, hint) = sql_error(&e);
        assert_eq!(state, "22023", "{filter}: {msg}");
        assert!(msg.contains(says), "{filter}: {msg}");
        assert!(hint.unwrap_or_default().contains("COQL condition"), "{filter}");
    }
    let n: i64 = c.query_one("SELECT count(*) FROM zoho.pull_schedules", &[]).unwrap().get(0);
    assert_eq!(n, 0, "nothing registered");
}

const ORDERS: &str = "CREATE TABLE orders (
    parent_id text PRIMARY KEY, name text NOT NULL, quantity bigint,
    synced boolean NOT NULL DEFAULT false, zoho_id bigint UNIQUE, zoho_error text,
    zoho_synced_at timestamptz, zoho_changed_at timestamptz, modified_time timestamptz);
  CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();";

fn zoho_order(sim: &Sim, key: &str) -> Option<Map<String, Value>> {
    sim.records("Orders").into_iter().find(|r| r["parent_id"] == key)
}

fn local_keys(c: &mut Client) -> BTreeSet<String> {
    c.query("SELECT parent_id FROM orders", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

#[test]
fn a_filtered_two_way_table_keeps_matching_records_and_deletes_nothing_in_zoho() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(ORDERS).unwrap();
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', every => '1 second', deletes => 'both', filter => 'Quantity >= 10')").unwrap();
    c.batch_execute("INSERT INTO orders (parent_id, name, quantity) SELECT 'F-' || g, 'Order ' || g, g FROM generate_series(1, 20) g").unwrap();
    // Every row is pushed; those the filter leaves out then leave the table.
    let big: BTreeSet<String> = (10..=20).map(|g| format!("F-{g}")).collect();
    wait_until("the push and the filter", Duration::from_secs(40), || sim.records("Orders").len() == 20 && local_keys(&mut c) == big);

    // In Zoho, one stops matching and one starts.
    let out_id = zoho_order(&sim, "F-15").unwrap()["id"].as_str().unwrap().to_string();
    let in_id = zoho_order(&sim, "F-3").unwrap()["id"].as_str().unwrap().to_string();
    sim.ui_edit("Orders", &out_id, json!({"Quantity": 2})).unwrap();
    sim.ui_edit("Orders", &in_id, json!({"Quantity": 30})).unwrap();
    let mut now = big.clone();
    now.remove("F-15");
    now.insert("F-3".into());
    wait_until("Zoho's edits", Duration::from_secs(20), || local_keys(&mut c) == now);
    let q: i64 = c.query_one("SELECT quantity FROM orders WHERE parent_id = 'F-3'", &[]).unwrap().get(0);
    assert_eq!(q, 30);
    let pending: i64 = c.query_one("SELECT count(*) FROM orders WHERE NOT synced", &[]).unwrap().get(0);
    assert_eq!(pending, 0, "a record that entered is not pending");

    // A local edit still goes out; a row that left never deleted its record.
    c.batch_execute("UPDATE orders SET name = 'Edited here' WHERE parent_id = 'F-12'").unwrap();
    wait_until("the local edit", Duration::from_secs(20), || zoho_order(&sim, "F-12").is_some_and(|r| r["Name"] == "Edited here"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sim.records("Orders").len(), 20, "leaving the filter deleted records in Zoho");
    assert_eq!(zoho_order(&sim, "F-15").unwrap()["Quantity"], json!(2));
    let queued: i64 = c.query_one("SELECT count(*) FROM zoho.sync_deletes", &[]).unwrap().get(0);
    assert_eq!(queued, 0);
    assert!(!sim.calls().iter().any(|x| x.endpoint == "records.delete"));
    // A real local delete of a matching row still deletes its record.
    c.batch_execute("DELETE FROM orders WHERE parent_id = 'F-20'").unwrap();
    wait_until("the local delete", Duration::from_secs(20), || zoho_order(&sim, "F-20").is_none());
}

#[test]
fn a_filtered_watch_applies_notifications_of_matching_records_only() {
    let sim = start_sim(SimConfig::default().seed("Leads", 60));
    let (_db, mut c) = WorkerDb::new(&sim);
    let filter = "Lead_Source in ('Cold Call', 'Trade Show')";
    c.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => $1, filter => $2)", &[&HOOK, &filter]).unwrap();
    let written: i64 = c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads', filter => $1)", &[&filter]).unwrap().get(0);
    let keep = |r: &Map<String, Value>| r["Lead_Source"] == "Cold Call" || r["Lead_Source"] == "Trade Show";
    let matching = matching_leads(&sim, keep);
    // The export read by criteria, which leave converted leads out as COQL does.
    assert_eq!(written as usize, matching.len());
    assert_eq!(local_ids(&mut c, "crm_leads", "id"), matching);

    let leaving = matching.iter().next().unwrap().to_string();
    let entering = matching_leads(&sim, |r| !keep(r)).into_iter().next().unwrap().to_string();
    sim.ui_edit("Leads", &leaving, json!({"Lead_Source": "Web Download"})).unwrap();
    sim.ui_edit("Leads", &entering, json!({"Lead_Source": "Cold Call"})).unwrap();
    let outside = sim.ui_create("Leads", json!({"Last_Name": "Elsewhere", "Lead_Source": "Advertisement"})).unwrap();
    let now = matching_leads(&sim, keep);
    // Notifications, well before a catch-up would run. The follow-up
    // catch-up after the export may land the rows first; the notifications,
    // queued meanwhile, are applied on the worker's next tick.
    let applied = |c: &mut Client| -> i64 { c.query_one("SELECT notifications FROM zoho.channels", &[]).unwrap().get(0) };
    wait_until("the notifications", Duration::from_secs(5), || local_ids(&mut c, "crm_leads", "id") == now && applied(&mut c) >= 3);
    assert!(!local_ids(&mut c, "crm_leads", "id").contains(&outside.parse().unwrap()));
    let stored: String = c.query_one("SELECT filter FROM zoho.channels", &[]).unwrap().get(0);
    assert_eq!(stored, "(Lead_Source in ('Cold Call', 'Trade Show') and Converted__s = false)");

    let e = c.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => $1, filter => 'Rating > 3')", &[&HOOK]).unwrap_err();
    let (state, msg, _) = sql_error(&e);
    assert_eq!(state, "22023");
    assert!(msg.contains("Rating: an ordering comparison does not apply to a quoted text value"), "{msg}");
}
