//! Writes through foreign tables, checked in the simulator's call log:
//! 100 records a call, nothing sent for bad values, RETURNING from Zoho.

use zoho_fdw_tests::*;

/// Records per write call, largest first (batches may run concurrently).
fn write_calls(sim: &Sim, endpoint: &str) -> Vec<usize> {
    let mut sizes: Vec<usize> = sim
        .calls()
        .iter()
        .filter(|c| c.endpoint == endpoint)
        .map(|c| match c.request_body.as_ref().and_then(|b| b.get("data")).and_then(|d| d.as_array()) {
            Some(items) => items.len(),
            None => c.query.split('&').find_map(|kv| kv.strip_prefix("ids=")).map_or(0, |ids| ids.split("%2C").flat_map(|s| s.split(',')).count()),
        })
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

fn setup(sim: &Sim, db: &TestDb) -> Client {
    let mut c = db.client_for(sim);
    c.batch_execute("CREATE SCHEMA zoho_crm; IMPORT FOREIGN SCHEMA crm LIMIT TO (orders) FROM SERVER zoho INTO zoho_crm").unwrap();
    sim.clear_calls();
    c
}

#[test]
fn inserts_updates_and_deletes_go_100_records_a_call() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("batches");
    let mut c = setup(&sim, &db);
    let n = c.execute("INSERT INTO zoho_crm.orders (name, parent_id, quantity) SELECT 'O' || g, 'K-' || g, g FROM generate_series(1, 250) g", &[]).unwrap();
    assert_eq!(n, 250);
    assert_eq!(write_calls(&sim, "records.insert"), vec![100, 100, 50]);
    assert_eq!(sim.records("Orders").len(), 250);

    let n = c.execute("UPDATE zoho_crm.orders SET status = 'Paid' WHERE quantity <= 150", &[]).unwrap();
    assert_eq!(n, 150);
    assert_eq!(write_calls(&sim, "records.update"), vec![100, 50]);
    assert_eq!(sim.records("Orders").iter().filter(|o| o["Status"] == "Paid").count(), 150);

    let n = c.execute("DELETE FROM zoho_crm.orders WHERE quantity > 130", &[]).unwrap();
    assert_eq!(n, 120);
    assert_eq!(write_calls(&sim, "records.delete"), vec![100, 20]);
    assert_eq!(sim.records("Orders").len(), 130);
    // 250 inserted records cost 25 credits, 150 updates 15.
    let by = sim.credits().by_endpoint;
    assert_eq!((by["records.insert"].credits, by["records.update"].credits), (25, 15));
}

#[test]
fn returning_answers_with_zohos_record() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("returning");
    let mut c = setup(&sim, &db);
    let rows = c
        .query("INSERT INTO zoho_crm.orders (name, parent_id) VALUES ('A', 'R-1'), ('B', 'R-2') RETURNING id, parent_id, modified_time::text", &[])
        .unwrap();
    assert_eq!(rows.len(), 2);
    let stored = sim.records("Orders");
    for row in &rows {
        let id: i64 = row.get(0);
        let rec = stored.iter().find(|r| r["id"] == serde_json::json!(id.to_string())).expect("returned id exists in Zoho");
        assert_eq!(rec["parent_id"], serde_json::json!(row.get::<_, String>(1)));
    }
    assert_eq!(write_calls(&sim, "records.insert"), vec![1, 1], "RETURNING writes row by row");
}

#[test]
fn bad_values_send_nothing() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("badvalues");
    let mut c = setup(&sim, &db);
    let err = c
        .execute("INSERT INTO zoho_crm.orders (name, parent_id, modified_time) SELECT 'O', 'K-' || g, now() FROM generate_series(1, 5) g", &[])
        .unwrap_err();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "22023", "{message}");
    assert!(message.contains("row 1") && message.contains("modified_time"), "{message}");
    assert!(write_calls(&sim, "records.insert").is_empty(), "nothing may be sent");
    assert!(sim.records("Orders").is_empty());
}

#[test]
fn a_rejected_record_names_row_field_and_what_stayed_written() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("rejected");
    let mut c = setup(&sim, &db);
    c.execute("INSERT INTO zoho_crm.orders (name, parent_id) VALUES ('first', 'DUP')", &[]).unwrap();
    let err = c
        .execute("INSERT INTO zoho_crm.orders (name, parent_id) SELECT 'n' || g, CASE WHEN g = 150 THEN 'DUP' ELSE 'P-' || g END FROM generate_series(1, 200) g", &[])
        .unwrap_err();
    let db_err = err.as_db_error().unwrap();
    assert_eq!(db_err.code().code(), "23505");
    assert!(db_err.message().contains("row 150") && db_err.message().contains("parent_id") && db_err.message().contains("DUPLICATE_DATA"), "{}", db_err.message());
    // The first batch of 100 and the other 99 of the second were written.
    assert!(db_err.detail().unwrap().starts_with("199 row(s)"), "{:?}", db_err.detail());
    assert_eq!(sim.records("Orders").len(), 200);
}

#[test]
fn an_insert_that_timed_out_is_not_sent_again_and_says_so() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("unknown");
    let mut c = setup(&sim, &db);
    c.batch_execute("ALTER SERVER zoho OPTIONS (SET timeout_ms '1000')").unwrap();
    // Zoho applies the insert and answers after 1.5 s, past the timeout.
    sim.inject(Fault::slow_reply(1_500, 1).on_path("/crm/v8/Orders"));
    let e = c.execute("INSERT INTO zoho_crm.orders (name, parent_id, quantity) VALUES ('Once', 'K-ONCE', 1)", &[]).unwrap_err();
    let (state, msg, hint) = sql_error(&e);
    assert_eq!(state, "08007", "{msg}");
    assert!(msg.contains("may or may not have been applied"), "{msg}");
    assert!(hint.unwrap_or_default().contains("before running it again"));
    std::thread::sleep(std::time::Duration::from_millis(800));
    let held = sim.records("Orders").iter().filter(|r| r["parent_id"] == "K-ONCE").count();
    assert_eq!(held, 1, "one INSERT, one record in Zoho");
}

/// The record id may be any integer type, numeric or text: UPDATE and
/// DELETE read it as its own type (a text or numeric id read as a
/// by-value int8 sent a pointer to Zoho). Other types are refused at plan
/// time, before anything is sent.
#[test]
fn an_id_column_of_text_numeric_or_int_updates_and_deletes_the_right_records() {
    let sim = start_sim(SimConfig::default().seed("Leads", 20));
    let db = TestDb::new("id_types");
    let mut c = db.client_for(&sim);
    let mut ids: Vec<String> = sim.records("Leads").iter().filter(|r| r["Converted__s"] != serde_json::json!(true)).map(|r| r["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    for (i, ty) in ["text", "numeric", "varchar"].iter().enumerate() {
        c.batch_execute(&format!(
            "CREATE FOREIGN TABLE leads_{i} (id {ty} OPTIONS (api_name 'id'), last_name text OPTIONS (api_name 'Last_Name'))
               SERVER zoho OPTIONS (module 'Leads')"
        ))
        .unwrap();
        let id = &ids[i];
        let n = c.execute(&format!("UPDATE leads_{i} SET last_name = 'Through a {ty} id' WHERE id = '{id}'"), &[]).unwrap();
        assert_eq!(n, 1, "{ty}");
        let rec = sim.records("Leads").into_iter().find(|r| r["id"].as_str() == Some(id.as_str())).unwrap();
        assert_eq!(rec["Last_Name"], format!("Through a {ty} id"), "{ty}");
    }
    let gone = ids[5].clone();
    assert_eq!(c.execute(&format!("DELETE FROM leads_0 WHERE id = '{gone}'"), &[]).unwrap(), 1);
    assert!(sim.records("Leads").iter().all(|r| r["id"].as_str() != Some(gone.as_str())));
    // A type that cannot hold Zoho's ids is refused before any call.
    c.batch_execute("CREATE FOREIGN TABLE leads_bad (id float8 OPTIONS (api_name 'id'), last_name text OPTIONS (api_name 'Last_Name')) SERVER zoho OPTIONS (module 'Leads')").unwrap();
    sim.clear_calls();
    let e = c.execute("DELETE FROM leads_bad WHERE last_name = 'x'", &[]).unwrap_err();
    let (state, message, _) = sql_error(&e);
    assert_eq!(state, "0A000", "{message}");
    assert!(message.contains("leads_bad") && message.contains("double precision"), "{message}");
    assert!(sim.calls().iter().all(|c| !c.endpoint.starts_with("records.delete")));
}

/// An UPDATE or DELETE with fixed new values runs in the foreign scan: one
/// COQL read of the matching ids, then 100 records a call, and RETURNING
/// answers from that read and Zoho's write response: no call per row.
#[test]
fn update_and_delete_returning_go_100_records_a_call_without_a_read_per_row() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("direct");
    let mut c = setup(&sim, &db);
    c.execute("INSERT INTO zoho_crm.orders (name, parent_id, quantity) SELECT 'O' || g, 'D-' || g, g FROM generate_series(1, 600) g", &[]).unwrap();
    sim.clear_calls();
    let rows = c
        .query("UPDATE zoho_crm.orders SET status = 'Shipped' WHERE quantity > 350 RETURNING id, parent_id, status, quantity, modified_time::text", &[])
        .unwrap();
    assert_eq!(rows.len(), 250);
    assert_eq!(write_calls(&sim, "records.update"), vec![100, 100, 50]);
    let reads = coql_queries(&sim);
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].contains("Quantity > 350"), "{}", reads[0]);
    assert!(sim.calls().iter().all(|c| c.endpoint != "records.get"), "no read per row");
    let stored = sim.records("Orders");
    for row in &rows {
        let id: i64 = row.get(0);
        let rec = stored.iter().find(|r| r["id"] == serde_json::json!(id.to_string())).expect("returned id exists");
        assert_eq!(rec["Status"], "Shipped");
        assert_eq!(row.get::<_, String>(2), "Shipped");
        assert_eq!(serde_json::json!(row.get::<_, String>(1)), rec["parent_id"]);
        assert!(row.get::<_, i64>(3) > 350);
        // Modified_Time as Zoho's write response gave it.
        let zoho_time = chrono::DateTime::parse_from_rfc3339(rec["Modified_Time"].as_str().unwrap()).unwrap();
        let returned = chrono::DateTime::parse_from_str(&row.get::<_, String>(4), "%Y-%m-%d %H:%M:%S%#z").unwrap();
        assert_eq!(returned, zoho_time);
    }
    assert_eq!(stored.iter().filter(|r| r["Status"] == "Shipped").count(), 250);
    // RETURNING rows hold the new values, which need not match the WHERE
    // clause any more: every written row is returned all the same.
    let moved = c.query("UPDATE zoho_crm.orders SET status = 'Delivered' WHERE status = 'Shipped' RETURNING id", &[]).unwrap();
    assert_eq!(moved.len(), 250);

    sim.clear_calls();
    let gone = c.query("DELETE FROM zoho_crm.orders WHERE quantity <= 252 RETURNING parent_id, quantity", &[]).unwrap();
    assert_eq!(gone.len(), 252);
    assert_eq!(write_calls(&sim, "records.delete"), vec![100, 100, 52]);
    assert_eq!(coql_queries(&sim).len(), 1);
    let mut quantities: Vec<i64> = gone.iter().map(|r| r.get(1)).collect();
    quantities.sort_unstable();
    assert_eq!(quantities, (1..=252).collect::<Vec<i64>>());
    assert_eq!(sim.records("Orders").len(), 600 - 252);
    // Without RETURNING, the command tag still counts what was written.
    assert_eq!(c.execute("UPDATE zoho_crm.orders SET status = 'Done' WHERE quantity BETWEEN 300 AND 310", &[]).unwrap(), 11);
}

/// Zoho compares text case-insensitively: a direct UPDATE rechecks the
/// WHERE clause on each record it read, and writes only what PostgreSQL
/// would. A SET that reads the row goes row by row, and is still right.
#[test]
fn a_direct_update_writes_only_the_rows_the_where_clause_keeps() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("direct_recheck");
    let mut c = setup(&sim, &db);
    c.execute("INSERT INTO zoho_crm.orders (name, parent_id, quantity) VALUES ('abc', 'C-1', 1), ('ABC', 'C-2', 2), ('Abc', 'C-3', 3), ('xyz', 'C-4', 4)", &[]).unwrap();
    sim.clear_calls();
    assert_eq!(c.execute("UPDATE zoho_crm.orders SET status = 'Matched' WHERE name = 'abc'", &[]).unwrap(), 1);
    assert_eq!(write_calls(&sim, "records.update"), vec![1]);
    let status = |sim: &Sim, p: &str| sim.records("Orders").into_iter().find(|r| r["parent_id"] == p).unwrap()["Status"].clone();
    assert_eq!(status(&sim, "C-1"), "Matched");
    assert_eq!((status(&sim, "C-2"), status(&sim, "C-3")), (serde_json::Value::Null, serde_json::Value::Null));
    // Parameters of a prepared statement, generic plan and all.
    c.batch_execute("SET plan_cache_mode = force_generic_plan").unwrap();
    let stmt = c.prepare("UPDATE zoho_crm.orders SET status = $1 WHERE quantity >= $2").unwrap();
    assert_eq!(c.execute(&stmt, &[&"Big", &3i64]).unwrap(), 2);
    assert_eq!(c.execute(&stmt, &[&"Bigger", &4i64]).unwrap(), 1);
    assert_eq!((status(&sim, "C-3"), status(&sim, "C-4")), (serde_json::json!("Big"), serde_json::json!("Bigger")));
    // A NULL parameter matches nothing, as in PostgreSQL.
    assert_eq!(c.execute(&stmt, &[&"None", &Option::<i64>::None]).unwrap(), 0);
    // A condition on the whole row sees the whole row (row by row).
    c.batch_execute("RESET plan_cache_mode").unwrap();
    assert_eq!(c.execute("UPDATE zoho_crm.orders t SET status = 'Whole' WHERE t::text LIKE '%C-2%'", &[]).unwrap(), 1);
    assert_eq!(status(&sim, "C-2"), "Whole");
    // A volatile new value is computed once per written record.
    c.batch_execute("CREATE SEQUENCE public.s").unwrap();
    let got = c.query("UPDATE zoho_crm.orders SET status = 'S' || nextval('public.s') WHERE quantity <= 2 RETURNING status", &[]).unwrap();
    assert_eq!(got.len(), 2);
    let last: i64 = c.query_one("SELECT last_value FROM public.s", &[]).unwrap().get(0);
    assert_eq!(last, 2, "nextval once per row");
    // Nothing matches: no new value is computed, so none can fail.
    assert_eq!(c.execute("UPDATE zoho_crm.orders SET quantity = 1 / (quantity - quantity) WHERE quantity > 1000", &[]).unwrap(), 0);
    c.batch_execute("SET plan_cache_mode = force_generic_plan").unwrap();
    let stmt = c.prepare("UPDATE zoho_crm.orders SET quantity = 1 / $1::int WHERE quantity > 1000").unwrap();
    assert_eq!(c.execute(&stmt, &[&0i32]).unwrap(), 0);
    c.batch_execute("RESET plan_cache_mode").unwrap();
    // quantity * 10 reads each record: computed per record, still direct.
    sim.clear_calls();
    let back: Vec<(String, i64)> = c
        .query("UPDATE zoho_crm.orders SET quantity = quantity * 10, status = name || '!' WHERE name = 'ABC' OR quantity = 4 RETURNING status, quantity", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(back.len(), 2);
    assert!(back.contains(&("ABC!".to_string(), 20)) && back.contains(&("xyz!".to_string(), 40)), "{back:?}");
    let q: Vec<i64> = sim.records("Orders").iter().map(|r| r["Quantity"].as_i64().unwrap()).collect();
    assert_eq!(q.iter().sum::<i64>(), 1 + 20 + 3 + 40);
    assert_eq!(write_calls(&sim, "records.update"), vec![2]);
    let plan = |c: &mut Client, sql: &str| -> Vec<String> { c.query(&format!("EXPLAIN (VERBOSE, COSTS OFF) {sql}"), &[]).unwrap().iter().map(|r| r.get(0)).collect() };
    assert!(plan(&mut c, "UPDATE zoho_crm.orders SET quantity = quantity * 10").iter().any(|l| l.contains("Foreign Update")));
    // A correlated subquery runs under the ModifyTable: row by row.
    let sub = plan(&mut c, "UPDATE zoho_crm.orders o SET quantity = (SELECT count(*) FROM pg_class WHERE relpages = o.quantity)");
    assert!(sub.iter().any(|l| l.contains("Foreign Scan")) && !sub.iter().any(|l| l.contains("Foreign Update")), "{sub:#?}");
}

/// Currency at Zoho's limit (16 digits and 9 decimals) goes to Zoho and
/// comes back digit for digit: numbers are never a float on the way, and a
/// pushed comparison carries the literal as written.
#[test]
fn currency_at_16_plus_9_digits_round_trips_exactly() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("exact_decimals");
    let mut c = db.client_for(&sim);
    c.batch_execute("CREATE SCHEMA zoho_crm; IMPORT FOREIGN SCHEMA crm LIMIT TO (accounts) FROM SERVER zoho INTO zoho_crm").unwrap();
    let big = "1234567890123456.123456789";
    let rows = c.query(&format!("INSERT INTO zoho_crm.accounts (account_name, annual_revenue) VALUES ('Exact', {big}) RETURNING annual_revenue::text"), &[]).unwrap();
    assert_eq!(rows[0].get::<_, String>(0), big);
    let body = sim.calls().into_iter().find(|c| c.endpoint == "records.insert").and_then(|c| c.request_body).unwrap();
    assert!(serde_json::to_string(&body).unwrap().contains(&format!("\"Annual_Revenue\":{big}")), "{body}");
    let stored = sim.records("Accounts").into_iter().find(|r| r["Account_Name"] == "Exact").unwrap();
    assert_eq!(stored["Annual_Revenue"].to_string(), big);
    let back: String = c.query_one("SELECT annual_revenue::text FROM zoho_crm.accounts WHERE account_name = 'Exact'", &[]).unwrap().get(0);
    assert_eq!(back, big);
    sim.clear_calls();
    let tiny = "0.09999999999999999999";
    c.query(&format!("SELECT id FROM zoho_crm.accounts WHERE annual_revenue > {tiny}"), &[]).unwrap();
    let q = coql_queries(&sim);
    assert!(q[0].contains(&format!("Annual_Revenue > {tiny}")), "{}", q[0]);
}

/// An UPDATE that cannot run directly (joined to a local table here) still
/// writes 100 records a call when RETURNING shows only what the statement
/// knows; RETURNING a field Zoho recomputes writes and reads row by row.
#[test]
fn a_joined_update_returning_known_columns_goes_100_records_a_call() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("joined_update");
    let mut c = setup(&sim, &db);
    c.execute("INSERT INTO zoho_crm.orders (name, parent_id, quantity) SELECT 'O' || g, 'J-' || g, g FROM generate_series(1, 150) g", &[]).unwrap();
    c.batch_execute("CREATE TABLE paid AS SELECT 'J-' || g AS parent_id FROM generate_series(1, 150) g; ANALYZE paid").unwrap();
    sim.clear_calls();
    let q = "UPDATE zoho_crm.orders o SET status = 'Paid' FROM paid p WHERE o.parent_id = p.parent_id RETURNING o.id, o.parent_id, o.status, o.quantity";
    let rows = c.query(q, &[]).unwrap();
    assert_eq!(rows.len(), 150);
    assert!(rows.iter().all(|r| r.get::<_, String>(2) == "Paid"));
    assert_eq!(write_calls(&sim, "records.update"), vec![100, 50]);
    assert!(sim.calls().iter().all(|c| c.endpoint != "records.get"));
    assert_eq!(sim.records("Orders").iter().filter(|r| r["Status"] == "Paid").count(), 150);
    let plan: Vec<String> = c.query(&format!("EXPLAIN (VERBOSE, COSTS OFF) {q}"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(plan.iter().any(|l| l.contains("up to 100 records per call")), "{plan:#?}");
    // Modified_Time is Zoho's to say: a write and a read per row.
    sim.clear_calls();
    let rows = c.query("UPDATE zoho_crm.orders o SET status = 'Shipped' FROM paid p WHERE o.parent_id = p.parent_id AND o.quantity <= 3 RETURNING o.modified_time", &[]).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(write_calls(&sim, "records.update"), vec![1, 1, 1]);
}

/// COPY FROM has no plan: PostgreSQL opens the table with BeginForeignInsert
/// and hands rows over one at a time. They still go 100 a call.
#[test]
fn copy_from_goes_100_records_a_call() {
    use std::io::Write;
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("copy");
    let mut c = setup(&sim, &db);
    let mut w = c.copy_in("COPY zoho_crm.orders (name, parent_id, quantity) FROM STDIN").unwrap();
    for g in 1..=250 {
        writeln!(w, "O{g}\tC-{g}\t{g}").unwrap();
    }
    assert_eq!(w.finish().unwrap(), 250);
    assert_eq!(write_calls(&sim, "records.insert"), vec![100, 100, 50]);
    let stored = sim.records("Orders");
    assert_eq!(stored.len(), 250);
    assert!(stored.iter().any(|r| r["parent_id"] == "C-250" && r["Quantity"] == 250), "the last row arrived whole");
}

/// A bad value in a COPY fails it at that row, before anything is sent.
#[test]
fn a_bad_value_in_copy_names_its_row_and_sends_nothing() {
    use std::io::Write;
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("copybad");
    let mut c = setup(&sim, &db);
    let mut w = c.copy_in("COPY zoho_crm.orders (name, parent_id, modified_time) FROM STDIN").unwrap();
    writeln!(w, "A\tB-1\t\\N\nB\tB-2\t2026-01-01 00:00:00+00\nC\tB-3\t\\N").unwrap();
    let err = w.finish().unwrap_err();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "22023", "{message}");
    assert!(message.contains("row 2") && message.contains("modified_time"), "{message}");
    assert!(write_calls(&sim, "records.insert").is_empty(), "nothing may be sent");
    assert!(sim.records("Orders").is_empty());
}

/// A partition that is a Zoho table: rows an INSERT routes to it are written
/// as the target's user, in batches, and with RETURNING one by one.
#[test]
fn rows_routed_to_a_foreign_partition_are_written() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("routed");
    let mut c = setup(&sim, &db);
    c.batch_execute(
        "CREATE TABLE all_orders (LIKE zoho_crm.orders) PARTITION BY LIST (status);
         CREATE TABLE local_orders PARTITION OF all_orders FOR VALUES IN ('Draft');
         ALTER TABLE all_orders ATTACH PARTITION zoho_crm.orders DEFAULT;",
    )
    .unwrap();
    let n = c.execute("INSERT INTO all_orders (name, parent_id, status) SELECT 'O' || g, 'R-' || g, CASE WHEN g % 2 = 0 THEN 'Draft' ELSE 'Paid' END FROM generate_series(1, 20) g", &[]).unwrap();
    assert_eq!(n, 20);
    assert_eq!(write_calls(&sim, "records.insert"), vec![10], "the ten routed rows in one call");
    assert_eq!(c.query_one("SELECT count(*) FROM local_orders", &[]).unwrap().get::<_, i64>(0), 10);
    sim.clear_calls();
    let rows = c.query("INSERT INTO all_orders (name, parent_id, status) VALUES ('X', 'R-X', 'Paid'), ('Y', 'R-Y', 'Paid') RETURNING id, parent_id", &[]).unwrap();
    assert_eq!(write_calls(&sim, "records.insert"), vec![1, 1], "RETURNING writes row by row");
    let stored = sim.records("Orders");
    assert_eq!(stored.len(), 12);
    for row in &rows {
        let id: i64 = row.get(0);
        assert!(stored.iter().any(|r| r["id"] == serde_json::json!(id.to_string()) && r["parent_id"] == serde_json::json!(row.get::<_, String>(1))), "returned id {id} is Zoho's");
    }
}

/// A BEFORE ROW UPDATE trigger may change columns the SET list does not
/// name: what it changes reaches Zoho, the other fields keep their values,
/// and the UPDATE is not run directly (that would skip the trigger).
#[test]
fn a_before_update_trigger_change_reaches_zoho() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("trigupd");
    let mut c = setup(&sim, &db);
    c.batch_execute(
        "INSERT INTO zoho_crm.orders (name, parent_id, quantity, customer_name) SELECT 'O' || g, 'T-' || g, g, 'Cust ' || g FROM generate_series(1, 5) g;
         CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.paid := true; RETURN NEW; END $$;
         CREATE TRIGGER stamp BEFORE UPDATE ON zoho_crm.orders FOR EACH ROW EXECUTE FUNCTION stamp();",
    )
    .unwrap();
    // PostgreSQL plans no direct update for a table with row triggers.
    let plan: Vec<String> = c.query("EXPLAIN UPDATE zoho_crm.orders SET status = 'Shipped' WHERE quantity <= 3", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(!plan.iter().any(|l| l.contains("Foreign Update")), "a direct update skips row triggers: {plan:?}");
    sim.clear_calls();
    assert_eq!(c.execute("UPDATE zoho_crm.orders SET status = 'Shipped' WHERE quantity <= 3", &[]).unwrap(), 3);
    // What SET names and what the trigger changed, not every field.
    for call in sim.calls().iter().filter(|c| c.endpoint == "records.update") {
        for item in call.request_body.as_ref().unwrap()["data"].as_array().unwrap() {
            let mut keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["Paid", "Status", "id"], "{item}");
        }
    }
    for r in sim.records("Orders") {
        let q = r["Quantity"].as_i64().unwrap();
        assert_eq!(r["Status"] == "Shipped", q <= 3, "{r:?}");
        assert_eq!(r["Paid"] == true, q <= 3, "the trigger's change was sent: {r:?}");
        assert_eq!(r["Customer_Name"], serde_json::json!(format!("Cust {q}")), "fields the update did not touch keep their values: {r:?}");
    }
    // A change to a field Zoho sets cannot be sent: an error, before any call.
    c.batch_execute(
        "CREATE OR REPLACE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.modified_time := now() - interval '1 day'; RETURN NEW; END $$;",
    )
    .unwrap();
    sim.clear_calls();
    let (code, message, _) = sql_error(&c.execute("UPDATE zoho_crm.orders SET status = 'Paid' WHERE quantity = 1", &[]).unwrap_err());
    assert_eq!(code, "22023", "{message}");
    assert!(message.contains("trigger changed column modified_time"), "{message}");
    assert!(write_calls(&sim, "records.update").is_empty(), "nothing was sent");
}
