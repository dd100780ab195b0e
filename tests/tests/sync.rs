//! Two-way tables (zoho_sync): one table edited here and in Zoho, kept in
//! step by the worker's push and pull, with no echo, conflicts settled by
//! policy and logged, and each side's owned fields kept from the other.
//! Against the test cluster's worker (see zoho_fdw_tests::worker).

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zoho_fdw_tests::worker::*;
use zoho_fdw_tests::*;

const TABLE: &str = "CREATE TABLE orders (
    parent_id text PRIMARY KEY, name text NOT NULL, customer_name text, quantity bigint, amount numeric,
    synced boolean NOT NULL DEFAULT false, zoho_id bigint UNIQUE, zoho_error text,
    zoho_synced_at timestamptz, zoho_changed_at timestamptz, modified_time timestamptz);
  CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();";

type Row = (String, Option<String>, Option<i64>);

fn zoho_rows(sim: &Sim) -> BTreeMap<String, Row> {
    sim.records("Orders")
        .iter()
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            (s("parent_id").unwrap_or_default(), (s("Name").unwrap_or_default(), s("Customer_Name"), r.get("Quantity").and_then(Value::as_i64)))
        })
        .collect()
}

fn local_rows(c: &mut Client) -> BTreeMap<String, Row> {
    c.query("SELECT parent_id, name, customer_name, quantity FROM orders", &[]).unwrap().iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3)))).collect()
}

fn zoho_id(sim: &Sim, parent_id: &str) -> String {
    sim.records("Orders").iter().find(|r| r["parent_id"] == parent_id).map(|r| r["id"].as_str().unwrap().to_string()).unwrap()
}

/// Both sides hold the same rows and nothing is pending here.
fn converges(sim: &Sim, c: &mut Client, within: Duration, what: &str) {
    let started = Instant::now();
    loop {
        let pending: i64 = c.query_one("SELECT count(*) FROM orders WHERE NOT synced", &[]).unwrap().get(0);
        let (z, l) = (zoho_rows(sim), local_rows(c));
        if pending == 0 && z == l {
            return;
        }
        if started.elapsed() > within {
            let differing: Vec<_> = z.iter().filter(|(k, v)| l.get(*k) != Some(v)).take(3).collect();
            panic!("{what}: no convergence in {within:?}: {pending} pending, {} in Zoho, {} here; differing {differing:?}", z.len(), l.len());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Records sent to Zoho by the Upsert API so far.
fn upserted(sim: &Sim) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.endpoint == "records.upsert" && c.status < 300)
        .map(|c| c.request_body.as_ref().and_then(|b| b["data"].as_array()).map_or(0, Vec::len))
        .sum()
}

fn setup(sim: &Sim, policy: &str, fields: &str) -> (WorkerDb, Client) {
    let (db, mut c) = WorkerDb::new(sim);
    c.batch_execute(TABLE).unwrap();
    c.batch_execute(&format!("SELECT zoho_sync('orders', 'Orders', 'parent_id', '{policy}', fields => {fields}, every => '1 second')")).unwrap();
    (db, c)
}

#[test]
fn edits_on_both_sides_converge_and_nothing_echoes() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = setup(&sim, "newest_wins", "NULL");
    c.batch_execute("INSERT INTO orders (parent_id, name, quantity) SELECT 'TW-' || g, 'Order ' || g, g FROM generate_series(1, 100) g").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    let first = upserted(&sim);
    assert_eq!(first, 100, "each new row went out once");
    let ids: Vec<String> = (1..=100).map(|g| zoho_id(&sim, &format!("TW-{g}"))).collect();
    let credits_before = sim.credits().by_endpoint.get("records.upsert").map_or(0, |u| u.credits);
    let mut local_edits = 0;
    for round in 0..20 {
        // Five rows edited here, five others in Zoho, alternating sides.
        for k in 0..5 {
            let g = 1 + (round * 5 + k) % 50;
            c.execute("UPDATE orders SET quantity = $1 WHERE parent_id = $2", &[&(1000 * (round as i64 + 1) + k as i64), &format!("TW-{g}")]).unwrap();
            local_edits += 1;
            let z = 51 + (round * 5 + k) % 50;
            sim.ui_edit("Orders", &ids[z - 1], json!({"Customer_Name": format!("Zoho round {round}")})).unwrap();
        }
        converges(&sim, &mut c, Duration::from_secs(30), &format!("round {round}"));
    }
    // Zoho's edits came here and did not go back; each local edit went once.
    assert_eq!(upserted(&sim) - first, local_edits, "records pushed after the first load");
    let credits = sim.credits().by_endpoint.get("records.upsert").map_or(0, |u| u.credits) - credits_before;
    let calls = sim.calls().iter().filter(|c| c.endpoint == "records.upsert" && c.status < 300).count() as u64;
    assert!(credits <= calls, "an upsert call costs one credit: {credits} credits for {calls} calls");
    let conflicts: i64 = c.query_one("SELECT count(*) FROM zoho.conflicts", &[]).unwrap().get(0);
    assert_eq!(conflicts, 0, "no row changed on both sides");
    let zoho_side: i64 = c.query_one("SELECT count(*) FROM orders WHERE customer_name LIKE 'Zoho round %'", &[]).unwrap().get(0);
    assert_eq!(zoho_side, 50);
    // Orders is not convertible: its catch-ups read by COQL, at most 200
    // records a call here (1 credit each), never through the records list.
    let calls = sim.calls();
    let coql: Vec<_> = calls.iter().filter(|c| c.endpoint == "coql").collect();
    assert!(coql.len() >= 10, "{} COQL calls", coql.len());
    assert!(coql.iter().all(|c| c.request_body.as_ref().unwrap()["select_query"].as_str().unwrap().contains("Modified_Time >= ")));
    assert!(!calls.iter().any(|c| c.endpoint == "records.list"));
    let coql_credits = sim.credits().by_endpoint.get("coql").map_or(0, |u| u.credits);
    assert_eq!(coql_credits, coql.len() as u64);
}

/// Makes a conflict on one row: edited on both sides while the push and
/// the pull are paused, here first or Zoho first (a second and more apart,
/// Modified_Time's resolution); the pull, resumed, settles it. Returns the
/// conflicts logged for the row, with the push resumed.
fn conflict(sim: &Sim, c: &mut Client, parent_id: &str, local: &str, zoho: Value, zoho_first: bool) -> Vec<(String, Option<String>, Option<String>, String, String)> {
    let id = zoho_id(sim, parent_id);
    c.batch_execute("SELECT zoho_pause_push('orders'), zoho_pause_pull('orders')").unwrap();
    let edit_here = |c: &mut Client| c.batch_execute(&format!("UPDATE orders SET {local} WHERE parent_id = '{parent_id}'")).unwrap();
    if zoho_first {
        sim.ui_edit("Orders", &id, zoho).unwrap();
        thread::sleep(Duration::from_millis(2100));
        edit_here(c);
    } else {
        edit_here(c);
        thread::sleep(Duration::from_millis(1100));
        sim.ui_edit("Orders", &id, zoho).unwrap();
    }
    c.batch_execute("SELECT zoho_pause_pull('orders', false)").unwrap();
    // Settled once the row holds the version Zoho's edit made.
    let version = sim.records("Orders").into_iter().find(|r| r["id"] == id.as_str()).unwrap()["Modified_Time"].as_str().unwrap().to_string();
    let sql = format!("SELECT modified_time = '{version}'::timestamptz FROM orders WHERE parent_id = '{parent_id}'");
    if wait_for(c, &sql, Duration::from_secs(20)).is_none() {
        let row = c.query_one("SELECT row_to_json(o)::text FROM orders o WHERE parent_id = $1", &[&parent_id]).unwrap().get::<_, String>(0);
        let status: Vec<String> = c.query("SELECT row_to_json(s)::text FROM zoho.sync_status s", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        panic!("the pull never took Zoho's edit of {parent_id} (version {version}): here {row}; flows {status:?}");
    }
    let rows = c
        .query("SELECT field, local_value, zoho_value, winner, reason FROM zoho.conflicts WHERE record_id = $1::text::bigint ORDER BY field", &[&id])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    c.batch_execute("SELECT zoho_pause_push('orders', false)").unwrap();
    rows
}

fn local(c: &mut Client, parent_id: &str) -> (Option<String>, Option<i64>, bool) {
    let r = c.query_one("SELECT customer_name, quantity, synced FROM orders WHERE parent_id = $1", &[&parent_id]).unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn zoho(sim: &Sim, parent_id: &str) -> (Option<String>, Option<i64>) {
    let r = zoho_rows(sim).remove(parent_id).unwrap();
    (r.1, r.2)
}

#[test]
fn a_conflict_goes_to_each_policys_winner_and_is_logged() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = setup(&sim, "zoho_wins", "NULL");
    c.batch_execute("INSERT INTO orders (parent_id, name, customer_name, quantity) SELECT 'CF-' || g, 'Order ' || g, 'start', 1 FROM generate_series(1, 4) g").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");

    // zoho_wins: the local edit is dropped, and nothing is pushed.
    let pushed = upserted(&sim);
    let log = conflict(&sim, &mut c, "CF-1", "quantity = 7", json!({"Quantity": 70}), false);
    assert_eq!(log, vec![("Quantity".into(), Some("7".into()), Some("70".into()), "zoho".into(), "zoho_wins".into())]);
    assert_eq!(local(&mut c, "CF-1"), (Some("start".into()), Some(70), true));
    converges(&sim, &mut c, Duration::from_secs(20), "zoho_wins");
    assert_eq!(upserted(&sim), pushed, "the row Zoho won was not pushed back");

    // local_wins: the local edit stays pending and then overwrites Zoho.
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'local_wins', every => '1 second')").unwrap();
    let log = conflict(&sim, &mut c, "CF-2", "quantity = 8", json!({"Quantity": 80}), false);
    assert_eq!(log, vec![("Quantity".into(), Some("8".into()), Some("80".into()), "local".into(), "local_wins".into())]);
    converges(&sim, &mut c, Duration::from_secs(20), "local_wins");
    assert_eq!(zoho(&sim, "CF-2"), (Some("start".into()), Some(8)));

    // newest_wins, both ways round.
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'newest_wins', every => '1 second')").unwrap();
    let log = conflict(&sim, &mut c, "CF-3", "quantity = 9", json!({"Quantity": 90}), false);
    assert_eq!((log.len(), log[0].3.as_str()), (1, "zoho"), "{log:?}");
    assert!(log[0].4.starts_with("newest_wins: changed in Zoho at"), "{log:?}");
    converges(&sim, &mut c, Duration::from_secs(20), "newest_wins, Zoho newer");
    assert_eq!(zoho(&sim, "CF-3"), (Some("start".into()), Some(90)));
    let log = conflict(&sim, &mut c, "CF-4", "quantity = 10", json!({"Quantity": 100}), true);
    assert_eq!((log.len(), log[0].3.as_str()), (1, "local"), "{log:?}");
    assert!(log[0].4.starts_with("newest_wins: changed here at"), "{log:?}");
    converges(&sim, &mut c, Duration::from_secs(20), "newest_wins, local newer");
    assert_eq!(zoho(&sim, "CF-4"), (Some("start".into()), Some(10)));
    let all: Vec<String> = c.query("SELECT row_to_json(x)::text FROM zoho.conflicts x ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(all.len(), 4, "one conflict per edit made on both sides: {all:#?}");
}

/// With zoho_changed_fields the table knows what it changed, and from what:
/// a row edited here in one field and in Zoho in another keeps both edits,
/// whichever came last, and only an edit of the same field on both sides
/// conflicts.
#[test]
fn edits_of_different_fields_of_one_row_both_survive() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(TABLE).unwrap();
    c.batch_execute("ALTER TABLE orders ADD COLUMN zoho_changed_fields jsonb, ADD COLUMN shipped_at timestamptz").unwrap();
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'newest_wins', every => '1 second')").unwrap();
    c.batch_execute("INSERT INTO orders (parent_id, name, customer_name, quantity) VALUES ('FF-1', 'One', 'start', 1), ('FF-2', 'Two', 'start', 1)").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    let cleared: bool = c.query_one("SELECT bool_and(zoho_changed_fields IS NULL) FROM orders", &[]).unwrap().get(0);
    assert!(cleared, "a pushed row lists no local change");

    // Zoho edits Customer_Name, then (later, so newest) the table edits quantity.
    c.batch_execute("SELECT zoho_pause_push('orders')").unwrap();
    c.batch_execute("UPDATE orders SET quantity = 3 WHERE parent_id = 'FF-1'; UPDATE orders SET quantity = 4, name = 'One again' WHERE parent_id = 'FF-1'").unwrap();
    // Each column with the value it had when the row last agreed with Zoho.
    let listed: String = c.query_one("SELECT zoho_changed_fields::text FROM orders WHERE parent_id = 'FF-1'", &[]).unwrap().get(0);
    assert_eq!(listed, r#"{"name": "One", "quantity": "1"}"#);
    c.batch_execute("UPDATE orders SET quantity = 1, name = 'One' WHERE parent_id = 'FF-1'; SELECT zoho_pause_push('orders', false)").unwrap();
    converges(&sim, &mut c, Duration::from_secs(20), "an edit undone");
    // Past the second of that push's write (Modified_Time's resolution).
    thread::sleep(Duration::from_millis(1100));
    let log = conflict(&sim, &mut c, "FF-1", "quantity = 5", json!({"Customer_Name": "from Zoho"}), true);
    assert_eq!(log, vec![], "different fields are no conflict");
    converges(&sim, &mut c, Duration::from_secs(20), "both edits");
    assert_eq!(zoho(&sim, "FF-1"), (Some("from Zoho".into()), Some(5)));
    assert_eq!(local(&mut c, "FF-1"), (Some("from Zoho".into()), Some(5), true));

    // The same field edited on both sides is still a conflict, logged.
    let log = conflict(&sim, &mut c, "FF-2", "quantity = 6", json!({"Quantity": 60, "Customer_Name": "Zoho too"}), false);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].0.as_str(), log[0].3.as_str()), ("Quantity", "zoho"));
    converges(&sim, &mut c, Duration::from_secs(20), "the conflict");
    assert_eq!(local(&mut c, "FF-2"), (Some("Zoho too".into()), Some(60), true));

    // Under zoho_wins too, a field changed here only is no conflict, in
    // whatever TimeZone the session that changed it had.
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'zoho_wins', every => '1 second'); UPDATE orders SET shipped_at = '2026-01-01 10:00+00' WHERE parent_id = 'FF-1'").unwrap();
    converges(&sim, &mut c, Duration::from_secs(20), "shipped_at");
    thread::sleep(Duration::from_millis(1100));
    c.batch_execute("SET TimeZone = 'Asia/Kolkata'").unwrap();
    let log = conflict(&sim, &mut c, "FF-1", "shipped_at = '2026-03-01 12:00+00'", json!({"Customer_Name": "Zoho again"}), true);
    c.batch_execute("RESET TimeZone").unwrap();
    assert_eq!(log, vec![], "a field changed here only is no conflict");
    converges(&sim, &mut c, Duration::from_secs(20), "both edits under zoho_wins");
    let here: bool = c.query_one("SELECT shipped_at = '2026-03-01 12:00+00' AND customer_name = 'Zoho again' FROM orders WHERE parent_id = 'FF-1'", &[]).unwrap().get(0);
    assert!(here, "an edit was lost");
    let shipped = zoho_order_field(&sim, "FF-1", "Shipped_At");
    assert_eq!(chrono::DateTime::parse_from_rfc3339(&shipped).unwrap().timestamp(), chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00+00:00").unwrap().timestamp());
}

/// A local edit pushed before the next scheduled pull: the push first
/// pulls what Zoho changed since the last pull, so an edit of another field
/// made in Zoho meanwhile is not overwritten by this table's older value.
#[test]
fn a_push_first_merges_what_zoho_changed_since_the_last_pull() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(TABLE).unwrap();
    c.batch_execute("ALTER TABLE orders ADD COLUMN zoho_changed_fields jsonb").unwrap();
    // Scheduled pulls an hour apart: only the push's own pull can see Zoho's edit.
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'newest_wins', every => '1 hour')").unwrap();
    c.batch_execute("INSERT INTO orders (parent_id, name, customer_name, quantity) VALUES ('PM-1', 'One', 'start', 1)").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    assert!(wait_for(&mut c, "SELECT synced_until IS NOT NULL FROM zoho.pull_schedules", Duration::from_secs(20)).is_some(), "the first load");
    thread::sleep(Duration::from_millis(1100));
    sim.ui_edit("Orders", &zoho_id(&sim, "PM-1"), json!({"Customer_Name": "from Zoho"})).unwrap();
    thread::sleep(Duration::from_millis(1100));
    c.batch_execute("UPDATE orders SET quantity = 2 WHERE parent_id = 'PM-1'").unwrap();
    converges(&sim, &mut c, Duration::from_secs(20), "the push");
    assert_eq!(zoho(&sim, "PM-1"), (Some("from Zoho".into()), Some(2)), "the push overwrote Zoho's edit");
    assert_eq!(local(&mut c, "PM-1"), (Some("from Zoho".into()), Some(2), true));
}

fn zoho_order_field(sim: &Sim, parent_id: &str, field: &str) -> String {
    sim.records("Orders").into_iter().find(|r| r["parent_id"] == parent_id).and_then(|r| r.get(field).and_then(Value::as_str).map(str::to_string)).unwrap_or_default()
}

#[test]
fn each_side_always_wins_the_fields_it_owns() {
    let sim = start_sim(SimConfig::default());
    // The table loses every conflict, except on the field it owns.
    let (_db, mut c) = setup(&sim, "zoho_wins", r#"'{"Customer_Name": "local", "Amount": "zoho"}'"#);
    c.batch_execute("INSERT INTO orders (parent_id, name, customer_name, quantity, amount) VALUES ('OW-1', 'Owned', 'here', 1, 5)").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    let id = zoho_id(&sim, "OW-1");
    let record = |sim: &Sim| sim.records("Orders").into_iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(record(&sim).get("Amount").cloned().unwrap_or(Value::Null), Value::Null, "the push sent Amount, which Zoho owns");
    // Zoho's Amount reaches the table, its Customer_Name never does.
    sim.ui_edit("Orders", &id, json!({"Amount": 42, "Customer_Name": "from Zoho"})).unwrap();
    assert!(wait_for(&mut c, "SELECT amount = 42 FROM orders WHERE parent_id = 'OW-1'", Duration::from_secs(20)).is_some(), "Zoho's Amount never arrived");
    let r = c.query_one("SELECT customer_name, synced FROM orders WHERE parent_id = 'OW-1'", &[]).unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, bool>(1)), ("here".into(), true));
    // Both sides edit both fields: each side's owned field is its own, and
    // an owner's win is no conflict (the other side's value is never read).
    let log = conflict(&sim, &mut c, "OW-1", "customer_name = 'edited here', amount = 6", json!({"Amount": 43, "Customer_Name": "edited in Zoho"}), false);
    assert_eq!(log, vec![]);
    converges(&sim, &mut c, Duration::from_secs(20), "after the owned fields' edits");
    let r = c.query_one("SELECT customer_name, amount::float8 FROM orders WHERE parent_id = 'OW-1'", &[]).unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, f64>(1)), ("edited here".into(), 43.0));
    let z = record(&sim);
    assert_eq!((z["Customer_Name"].as_str(), z["Amount"].as_f64()), (Some("edited here"), Some(43.0)));
}

#[test]
fn a_table_that_cannot_sync_is_refused_with_the_fix() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    let err = |c: &mut Client, sql: &str| {
        let e = c.batch_execute(sql).unwrap_err();
        sql_error(&e)
    };
    c.batch_execute("DROP TABLE IF EXISTS bare; CREATE TABLE bare (parent_id text PRIMARY KEY, name text, synced boolean NOT NULL DEFAULT false, zoho_id bigint UNIQUE, modified_time timestamptz)").unwrap();
    let (state, msg, hint) = err(&mut c, "SELECT zoho_sync('bare', 'Orders', 'parent_id')");
    assert_eq!(state, "22023");
    assert!(msg.contains("public.bare has no column zoho_synced_at"), "{msg}");
    assert!(hint.unwrap_or_default().contains("ADD COLUMN \"zoho_synced_at\" timestamptz"));
    c.batch_execute("ALTER TABLE bare ADD COLUMN zoho_synced_at timestamptz").unwrap();
    let (_, msg, _) = err(&mut c, "SELECT zoho_sync('bare', 'Orders', 'parent_id')");
    assert!(msg.contains("no column zoho_changed_at") && msg.contains("newest_wins"), "{msg}");
    let (_, msg, hint) = err(&mut c, "SELECT zoho_sync('bare', 'Orders', 'parent_id', 'zoho_wins')");
    assert!(msg.contains("no enabled zoho_mark_pending trigger"), "{msg}");
    assert!(hint.unwrap_or_default().contains("EXECUTE FUNCTION zoho_mark_pending('synced')"));
    c.batch_execute("CREATE TRIGGER p BEFORE INSERT OR UPDATE ON bare FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending()").unwrap();
    for (sql, want) in [
        ("SELECT zoho_sync('bare', 'Orders', 'Name', 'zoho_wins')", "Name of module Orders is not unique"),
        ("SELECT zoho_sync('bare', 'Orders', 'parent_id', 'last_wins')", "\"last_wins\""),
        ("SELECT zoho_sync('bare', 'Orders', 'parent_id', 'zoho_wins', fields => '{\"Nope\": \"local\"}')", "\"Nope\", which module Orders does not have"),
        ("SELECT zoho_sync('bare', 'Orders', 'parent_id', 'zoho_wins', fields => '{\"parent_id\": \"zoho\"}')", "cannot be owned by Zoho"),
    ] {
        let (_, msg, _) = err(&mut c, sql);
        assert!(msg.contains(want), "{sql}: {msg}");
    }
    // A role that may not write the table is refused before anything is
    // locked or asked of Zoho, by zoho_sync and by its helper alike.
    c.batch_execute("DROP ROLE IF EXISTS sync_stranger; CREATE ROLE sync_stranger; GRANT SELECT ON bare TO sync_stranger; SET ROLE sync_stranger").unwrap();
    for sql in ["SELECT zoho_sync('bare', 'Orders', 'parent_id', 'zoho_wins')", "SELECT zoho.sync_plan('bare', 'Orders', 'parent_id', 'zoho_wins', NULL, NULL, 'synced', NULL)"] {
        let (state, msg, _) = err(&mut c, sql);
        assert_eq!(state, "42501", "{sql}: {msg}");
    }
    c.batch_execute("RESET ROLE; DROP OWNED BY sync_stranger; DROP ROLE sync_stranger").unwrap();
    // Nothing was registered by the refusals; a good call registers all three.
    assert_eq!(c.query_one("SELECT count(*) FROM zoho.syncs", &[]).unwrap().get::<_, i64>(0), 0);
    c.batch_execute("SELECT zoho_sync('bare', 'Orders', 'parent_id', 'zoho_wins')").unwrap();
    let r = c.query_one("SELECT (SELECT mapping::text FROM zoho.push_schedules), (SELECT mapping::text FROM zoho.pull_schedules), (SELECT policy FROM zoho.syncs)", &[]).unwrap();
    let json_at = |i: usize| serde_json::from_str::<Value>(&r.get::<_, String>(i)).unwrap();
    assert_eq!(json_at(0), json!({}));
    assert_eq!(json_at(1), json!({"zoho_id": "id", "synced": null, "zoho_synced_at": null}));
    assert_eq!(r.get::<_, String>(2), "zoho_wins");
    assert_eq!(c.query_one("SELECT zoho_unsync('bare')", &[]).unwrap().get::<_, bool>(0), true);
    let left: i64 = c.query_one("SELECT (SELECT count(*) FROM zoho.syncs) + (SELECT count(*) FROM zoho.push_schedules) + (SELECT count(*) FROM zoho.pull_schedules)", &[]).unwrap().get(0);
    assert_eq!(left, 0);
}

#[test]
fn deletes_go_both_ways_when_the_table_says_so() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(TABLE).unwrap();
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'zoho_wins', every => '1 second', deletes => 'both')").unwrap();
    c.batch_execute("INSERT INTO orders (parent_id, name) SELECT 'DL-' || g, 'Order ' || g FROM generate_series(1, 4) g").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    let gone_here = zoho_id(&sim, "DL-1");
    let gone_there = zoho_id(&sim, "DL-2");
    let deletes = |sim: &Sim| sim.calls().iter().filter(|c| c.endpoint == "records.delete" && c.status < 300).count();

    // Deleted here: the record goes in Zoho.
    c.batch_execute("DELETE FROM orders WHERE parent_id = 'DL-1'").unwrap();
    let started = Instant::now();
    while sim.records("Orders").iter().any(|r| r["id"] == gone_here.as_str()) {
        assert!(started.elapsed() < Duration::from_secs(20), "the local delete never reached Zoho");
        thread::sleep(Duration::from_millis(100));
    }
    // Deleted in Zoho: the row goes here, and is not sent back.
    sim.ui_delete("Orders", &gone_there).unwrap();
    assert!(wait_for(&mut c, "SELECT NOT EXISTS (SELECT 1 FROM orders WHERE parent_id = 'DL-2')", Duration::from_secs(20)).is_some(), "Zoho's delete never arrived");
    converges(&sim, &mut c, Duration::from_secs(20), "after both deletes");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(deletes(&sim), 1, "one delete call, for the row deleted here");
    assert_eq!(c.query_one("SELECT count(*) FROM zoho.sync_deletes", &[]).unwrap().get::<_, i64>(0), 0);

    // deletes => 'none': neither side's delete crosses.
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'zoho_wins', every => '1 second', deletes => 'none')").unwrap();
    c.batch_execute("DELETE FROM orders WHERE parent_id = 'DL-3'").unwrap();
    sim.ui_delete("Orders", &zoho_id(&sim, "DL-4")).unwrap();
    sim.ui_edit("Orders", &zoho_id(&sim, "DL-3"), json!({"Customer_Name": "after the deletes"})).unwrap();
    // The edit's arrival shows a pull ran after both deletes.
    let sql = "SELECT count(*) = 1 FROM orders WHERE parent_id = 'DL-3' AND customer_name = 'after the deletes'";
    assert!(wait_for(&mut c, sql, Duration::from_secs(20)).is_some(), "a pull after the deletes");
    assert!(wait_for(&mut c, "SELECT EXISTS (SELECT 1 FROM orders WHERE parent_id = 'DL-4')", Duration::from_secs(1)).is_some(), "Zoho's delete took the row");
    assert_eq!(deletes(&sim), 1, "the local delete went to Zoho");
    let e = c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', deletes => 'sometimes')").unwrap_err();
    assert!(sql_error(&e).1.contains("deletes must be both, from_zoho, flag or none, not 'sometimes'"));
}

/// deletes => 'flag': a record deleted in Zoho keeps its row (a foreign key
/// may point at it), flagged in zoho_deleted_at; its local edits stay local
/// until the flag is cleared, which sends the row again.
#[test]
fn zohos_deletes_flag_rows_where_the_table_says_so() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(TABLE).unwrap();
    let e = c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', every => '1 second', deletes => 'flag')").unwrap_err();
    let (state, msg, hint) = sql_error(&e);
    assert_eq!((state.as_str(), msg.as_str()), ("22023", "public.orders has no column zoho_deleted_at (timestamptz), which deletes => flag sets"));
    assert_eq!(hint.as_deref(), Some("ALTER TABLE public.orders ADD COLUMN zoho_deleted_at timestamptz"));
    c.batch_execute(
        "ALTER TABLE orders ADD COLUMN zoho_deleted_at timestamptz;
         DROP TABLE IF EXISTS order_lines; CREATE TABLE order_lines (parent_id text REFERENCES orders, line int);
         SELECT zoho_sync('orders', 'Orders', 'parent_id', 'zoho_wins', every => '1 second', deletes => 'flag');
         INSERT INTO orders (parent_id, name) SELECT 'FL-' || g, 'Order ' || g FROM generate_series(1, 3) g;
         INSERT INTO order_lines VALUES ('FL-1', 1)",
    )
    .unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    sim.ui_delete("Orders", &zoho_id(&sim, "FL-1")).unwrap();
    assert!(wait_for(&mut c, "SELECT zoho_deleted_at IS NOT NULL FROM orders WHERE parent_id = 'FL-1'", Duration::from_secs(20)).is_some(), "Zoho's delete was not flagged");
    // A local edit of the flagged row is not sent.
    let pushed = upserted(&sim);
    c.batch_execute("UPDATE orders SET name = 'Kept here' WHERE parent_id = 'FL-1'").unwrap();
    let synced: bool = c.query_one("SELECT synced FROM orders WHERE parent_id = 'FL-1'", &[]).unwrap().get(0);
    assert!(synced, "a flagged row went pending");
    // A local delete is not sent either (only deletes => 'both' sends them).
    c.batch_execute("DELETE FROM orders WHERE parent_id = 'FL-3'").unwrap();
    sim.ui_edit("Orders", &zoho_id(&sim, "FL-2"), json!({"Customer_Name": "after"})).unwrap();
    assert!(wait_for(&mut c, "SELECT coalesce(customer_name = 'after', false) FROM orders WHERE parent_id = 'FL-2'", Duration::from_secs(20)).is_some(), "a pull after the deletes");
    assert_eq!(upserted(&sim), pushed);
    assert!(zoho_rows(&sim).contains_key("FL-3"), "a local delete reached Zoho");
    assert!(!sim.calls().iter().any(|c| c.endpoint == "records.delete"));
    // Clearing the flag sends the row again: Zoho makes the record anew.
    c.batch_execute("UPDATE orders SET zoho_deleted_at = NULL WHERE parent_id = 'FL-1'").unwrap();
    assert!(wait_for(&mut c, "SELECT synced FROM orders WHERE parent_id = 'FL-1'", Duration::from_secs(20)).is_some(), "the revived row was not pushed");
    assert_eq!(zoho_rows(&sim).get("FL-1").map(|r| r.0.as_str()), Some("Kept here"));
    let lines: i64 = c.query_one("SELECT count(*) FROM order_lines", &[]).unwrap().get(0);
    assert_eq!(lines, 1);
}

#[test]
fn a_forged_delete_cannot_reach_a_record_the_table_never_held() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    c.batch_execute(TABLE).unwrap();
    c.batch_execute("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'zoho_wins', every => '1 second', deletes => 'both')").unwrap();
    c.batch_execute("INSERT INTO orders (parent_id, name) VALUES ('FG-1', 'Mine')").unwrap();
    converges(&sim, &mut c, Duration::from_secs(30), "the first push");
    let mine = zoho_id(&sim, "FG-1");
    // A record the table does not hold (its pull paused meanwhile).
    c.batch_execute("SELECT zoho_pause_pull('orders')").unwrap();
    let victim = sim.ui_create("Orders", json!({"Name": "Victim", "parent_id": "VICTIM"})).unwrap();
    c.batch_execute(
        "DROP ROLE IF EXISTS sync_forger; CREATE ROLE sync_forger;
         GRANT SELECT, UPDATE, DELETE ON orders TO sync_forger;",
    )
    .unwrap();
    c.batch_execute("SET ROLE sync_forger").unwrap();
    // The catalog of deletes is the trigger's alone.
    let e = c.batch_execute(&format!("INSERT INTO zoho.sync_deletes (target, record_id, row_key) VALUES ('orders', {victim}, 'VICTIM')")).unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    // A row given the victim's id, then deleted: the key does not match.
    c.batch_execute(&format!("UPDATE orders SET zoho_id = {victim} WHERE parent_id = 'FG-1'; DELETE FROM orders WHERE parent_id = 'FG-1'")).unwrap();
    c.batch_execute("RESET ROLE").unwrap();
    assert!(wait_for(&mut c, "SELECT NOT EXISTS (SELECT 1 FROM zoho.sync_deletes)", Duration::from_secs(20)).is_some(), "the delete was never looked at");
    thread::sleep(Duration::from_secs(1));
    let ids: Vec<String> = sim.records("Orders").iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert!(ids.contains(&victim), "the forged delete removed a record the table never held");
    assert!(ids.contains(&mine), "the row's own record went, though its id was changed");
    assert_eq!(sim.calls().iter().filter(|c| c.endpoint == "records.delete").count(), 0);
    c.batch_execute("DROP OWNED BY sync_forger; DROP ROLE sync_forger").unwrap();
}
