//! The security suite: SQL an ordinary user can write must not crash the
//! server, and no role gains another's rights through the extension.
//! Each test makes the attack and proves it failed, and that the backend
//! is still there.

use zoho_fdw_tests::*;

fn alive(c: &mut Client) {
    let one: i32 = c.query_one("SELECT 1", &[]).expect("the backend survived").get(0);
    assert_eq!(one, 1);
}

fn leads_db(tag: &str) -> (Sim, TestDb, Client) {
    let sim = start_sim(SimConfig::default().seed("Leads", 300));
    let db = TestDb::new(tag);
    let mut c = db.client_for(&sim);
    c.batch_execute("CREATE SCHEMA zoho_crm; IMPORT FOREIGN SCHEMA crm LIMIT TO (leads) FROM SERVER zoho INTO zoho_crm").unwrap();
    (sim, db, c)
}

/// The seeded Leads a query sees: COQL hides converted leads.
fn visible_leads(sim: &Sim) -> Vec<serde_json::Map<String, serde_json::Value>> {
    sim.records("Leads").into_iter().filter(|r| r.get("Converted__s") != Some(&serde_json::Value::Bool(true))).collect()
}

/// Two last names of the seeded Leads and how many records carry each.
fn names(sim: &Sim) -> Vec<(String, i64)> {
    let records = visible_leads(sim);
    let mut out: Vec<(String, i64)> = Vec::new();
    for r in &records {
        let n = r["Last_Name"].as_str().unwrap().to_string();
        if !out.iter().any(|(x, _)| *x == n) {
            let count = records.iter().filter(|o| o["Last_Name"].as_str() == Some(n.as_str())).count() as i64;
            out.push((n, count));
        }
        if out.len() == 2 {
            break;
        }
    }
    out
}

#[test]
fn parameters_from_initplans_outer_rows_and_generic_plans_are_read_at_the_first_fetch() {
    let (sim, _db, mut c) = leads_db("params");
    let names = names(&sim);
    let (a, na) = (&names[0].0, names[0].1);
    let (b, nb) = (&names[1].0, names[1].1);

    // An initplan: its value exists only once the plan runs.
    let n: i64 = c.query_one(&format!("SELECT count(*) FROM zoho_crm.leads WHERE last_name = (SELECT '{a}'::text)"), &[]).unwrap().get(0);
    assert_eq!(n, na);
    alive(&mut c);

    // LATERAL and a nested loop: one value per outer row, each rescan new.
    let rows = c
        .query(&format!("SELECT v.n, l.id FROM (VALUES ('{a}'), ('{b}'), ('no such name')) v(n), LATERAL (SELECT id FROM zoho_crm.leads WHERE last_name = v.n LIMIT 1) l ORDER BY 1"), &[])
        .unwrap();
    let got: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(got, want);
    alive(&mut c);

    // A correlated subquery in the select list.
    let rows = c
        .query(&format!("SELECT v.n, (SELECT count(*) FROM zoho_crm.leads l WHERE l.last_name = v.n) FROM (VALUES ('{a}'), ('{b}')) v(n) ORDER BY 1"), &[])
        .unwrap();
    let mut want = vec![(a.clone(), na), (b.clone(), nb)];
    want.sort();
    assert_eq!(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect::<Vec<_>>(), want);

    // A CTE feeding the scan.
    let n: i64 = c
        .query_one(&format!("WITH w AS MATERIALIZED (SELECT '{b}'::text AS n) SELECT count(*) FROM zoho_crm.leads l, w WHERE l.last_name = w.n"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, nb);

    // $1 in a generic plan, executed with two values.
    c.batch_execute("SET plan_cache_mode = force_generic_plan; PREPARE by_name(text) AS SELECT count(*) FROM zoho_crm.leads WHERE last_name = $1").unwrap();
    for (name, want) in [(a, na), (b, nb)] {
        let n: i64 = c.query_one(&format!("EXECUTE by_name('{name}')"), &[]).unwrap().get(0);
        assert_eq!(n, want, "{name}");
    }
    c.batch_execute("RESET plan_cache_mode").unwrap();
    alive(&mut c);
}

#[test]
fn cursors_fetch_backward_and_rescan() {
    let (sim, _db, mut c) = leads_db("cursor");
    let (a, na) = names(&sim)[0].clone();
    assert!(na >= 1);
    let mut ids: Vec<i64> = visible_leads(&sim)
        .iter()
        .filter(|r| r["Last_Name"].as_str() == Some(a.as_str()))
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(&format!("DECLARE cur SCROLL CURSOR FOR SELECT id FROM zoho_crm.leads WHERE last_name = (SELECT '{a}'::text) ORDER BY id")).unwrap();
    let fwd: Vec<i64> = tx.query("FETCH 2 FROM cur", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(fwd, ids.iter().take(2).copied().collect::<Vec<_>>());
    let back: Vec<i64> = tx.query("FETCH BACKWARD 1 FROM cur", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    if ids.len() >= 2 {
        assert_eq!(back, vec![ids[0]]);
    }
    tx.batch_execute("MOVE ABSOLUTE 0 FROM cur").unwrap();
    let again: Vec<i64> = tx.query("FETCH ALL FROM cur", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(again, ids);
    tx.commit().unwrap();
    alive(&mut c);
}

#[test]
fn an_error_inside_a_parameter_is_an_error_not_a_crash() {
    let (_sim, _db, mut c) = leads_db("paramerr");
    let e = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE last_name = (SELECT (1 / 0)::text)", &[]).unwrap_err();
    assert_eq!(sql_error(&e).0, "22012", "division by zero, reported as such");
    alive(&mut c);
    let e = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE last_name = (SELECT n FROM (VALUES ('a'), ('b')) v(n))", &[]).unwrap_err();
    assert_eq!(sql_error(&e).0, "21000", "more than one row from a scalar subquery");
    alive(&mut c);
}

// ---- roles against the worker (the test cluster's worker, database postgres) ----

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use serde_json::json;
use zoho_fdw_tests::worker::*;

const MALLORY: &str = "zoho_mallory";

/// An unprivileged role that owns schema `m`, may use server `zoho` and has
/// a user mapping: everything a user of the extension has, and no more.
fn mallory(c: &mut Client) {
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS m CASCADE;
         DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{MALLORY}') THEN
           EXECUTE 'DROP OWNED BY {MALLORY} CASCADE'; EXECUTE 'DROP ROLE {MALLORY}'; END IF; END$$;
         CREATE ROLE {MALLORY} LOGIN;
         CREATE SCHEMA m AUTHORIZATION {MALLORY};
         GRANT USAGE ON FOREIGN SERVER zoho TO {MALLORY};
         CREATE USER MAPPING FOR {MALLORY} SERVER zoho
           OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
         SET SESSION AUTHORIZATION {MALLORY};
         CREATE TABLE m.canary (who text, what text);
         GRANT SELECT, INSERT ON m.canary TO PUBLIC;
         -- Records who runs it; m.ipwn claims to be immutable so an index can use it.
         CREATE FUNCTION m.pwn(what text) RETURNS boolean LANGUAGE plpgsql AS
           $f$BEGIN INSERT INTO m.canary VALUES (current_user, what); RETURN false; END$f$;
         CREATE FUNCTION m.ipwn(row_key text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $f$SELECT m.pwn('index')$f$;
         RESET SESSION AUTHORIZATION;"
    ))
    .unwrap();
}

fn drop_mallory(c: &mut Client) {
    let _ = c.batch_execute(&format!("RESET SESSION AUTHORIZATION; DROP SCHEMA IF EXISTS m CASCADE; DROP OWNED BY {MALLORY} CASCADE; DROP ROLE IF EXISTS {MALLORY}"));
}

/// Who ran the traps, and what each was.
fn canary(c: &mut Client) -> Vec<(String, String)> {
    c.query("SELECT who, what FROM m.canary ORDER BY what, who", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[test]
fn a_view_or_a_trapped_table_never_runs_code_as_the_superuser() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    mallory(&mut c);
    c.batch_execute(&format!("SET SESSION AUTHORIZATION {MALLORY}; CREATE VIEW m.bait AS SELECT m.pwn('view') AS synced")).unwrap();
    // The repro: a view as a push source is refused, directly or through the catalog.
    let e = c.batch_execute("SELECT zoho_schedule_push('m.bait', 'Leads')").unwrap_err();
    assert_eq!(sql_error(&e).0, "42809", "{e}");
    let e = c.batch_execute(&format!("INSERT INTO zoho.push_schedules (source, module, owner) VALUES ('m.bait', 'Leads', '{MALLORY}')")).unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "row-level security refuses a view: {e}");
    // A real table with a trap at every place PostgreSQL runs user code,
    // and a trigger that points search_path at the role's own `now()`.
    c.batch_execute(
        "CREATE DOMAIN m.checked AS text CHECK (m.pwn('domain') IS NOT NULL);
         CREATE FUNCTION m.now() RETURNS timestamptz LANGUAGE plpgsql AS $f$BEGIN PERFORM m.pwn('now'); RETURN pg_catalog.now(); END$f$;
         CREATE TABLE m.orders (order_id text PRIMARY KEY, name m.checked, quantity int,
                                synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text,
                                trap boolean DEFAULT m.pwn('default'));
         -- On a column: PostgreSQL folds an immutable call on constants
         -- wherever it plans a query on the table, whoever plans it.
         CREATE INDEX ON m.orders ((m.ipwn(order_id) OR quantity > 0));
         CREATE FUNCTION m.trg() RETURNS trigger LANGUAGE plpgsql AS
           $f$BEGIN PERFORM m.pwn('trigger');
                    PERFORM set_config('search_path', 'm, pg_catalog', false);
                    PERFORM set_config('default_transaction_read_only', 'on', false);
                    RETURN NEW; END$f$;
         CREATE TRIGGER trap BEFORE UPDATE ON m.orders FOR EACH ROW EXECUTE FUNCTION m.trg();
         INSERT INTO m.orders (order_id, name, quantity) VALUES ('M-1', 'One', 1), ('M-2', 'Two', 2);
         SELECT zoho_schedule_push('m.orders', 'Orders', key_field => 'parent_id', min_pending => 1,
                                   mapping => '{\"order_id\": \"parent_id\", \"trap\": null}');
         RESET SESSION AUTHORIZATION;",
    )
    .unwrap();
    wait_for(&mut c, "SELECT bool_and(synced) FROM m.orders", Duration::from_secs(10)).expect("the worker pushed the role's table");
    // The status view, read by a superuser, runs none of the role's code.
    let pending: Option<i64> = c.query_one("SELECT rows_pending FROM zoho.sync_status WHERE target = 'm.orders'", &[]).unwrap().get(0);
    assert!(pending.is_some_and(|n| n <= 2), "{pending:?}");
    thread::sleep(Duration::from_millis(2_500)); // another poll of the worker
    let ran = canary(&mut c);
    assert!(ran.iter().any(|(_, w)| w == "trigger") && ran.iter().any(|(_, w)| w == "index"), "the traps ran: {ran:?}");
    let escalated: Vec<_> = ran.iter().filter(|(who, _)| who != MALLORY).collect();
    assert!(escalated.is_empty(), "code ran as another role: {escalated:?}");
    assert_eq!(sim.records("Orders").len(), 2);
    // The settings the trigger made died with its flow: the worker still
    // writes, for everyone.
    orders_table(&mut c);
    c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => 1, mapping => '{\"order_id\": \"parent_id\"}')").unwrap();
    orders(&mut c, 3, 1);
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(10)).expect("the next flow ran normally");
    drop_mallory(&mut c);
}

#[test]
fn the_workers_bookkeeping_cannot_be_forged() {
    let sim = start_sim(SimConfig::default());
    let (db, mut c) = WorkerDb::new(&sim);
    mallory(&mut c);
    c.batch_execute(&format!(
        "SET SESSION AUTHORIZATION {MALLORY};
         CREATE TABLE m.t (id bigint PRIMARY KEY, last_name text, modified_time timestamptz);"
    ))
    .unwrap();
    for forged in [
        // A running job with a runner to signal, or a catch-up of someone's channel.
        format!("INSERT INTO zoho.job_queue (kind, module, target, owner, state, runner_pid) VALUES ('export', 'Leads', 'm.t', '{MALLORY}', 'running', 1)"),
        format!("INSERT INTO zoho.job_queue (kind, module, target, owner, channel_id) VALUES ('catchup', 'Leads', 'm.t', '{MALLORY}', 1)"),
        format!("INSERT INTO zoho.job_queue (kind, module, target, owner) VALUES ('catchup', 'Leads', 'm.t', '{MALLORY}')"),
        "UPDATE zoho.job_queue SET runner_pid = 1".to_string(),
        format!("INSERT INTO zoho.push_schedules (source, module, owner, last_run) VALUES ('m.t', 'Leads', '{MALLORY}', 'infinity')"),
    ] {
        let e = c.batch_execute(&forged).unwrap_err();
        assert_eq!(sql_error(&e).0, "42501", "{forged}: {e}");
    }
    // Values that would stop every role's pulls are refused on the way in.
    c.batch_execute("SELECT zoho_schedule_pull('Leads', 'm.t')").unwrap();
    for bad in ["UPDATE zoho.pull_schedules SET refresh_formulas = 'not a cron'", "UPDATE zoho.pull_schedules SET every = '300000 years'", "UPDATE zoho.pull_schedules SET synced_until = 'infinity'"] {
        assert!(c.batch_execute(bad).is_err(), "{bad}");
    }
    c.batch_execute("SELECT zoho_unschedule_pull('m.t'); RESET SESSION AUTHORIZATION").unwrap();
    // An advisory lock any role can take does not stop the job runner.
    let mut squatter = db.client();
    squatter.batch_execute(&format!("SET SESSION AUTHORIZATION {MALLORY}; SELECT pg_advisory_lock(hashtext('zoho_fdw jobs'))")).unwrap();
    let job: i64 = c.query_one("SELECT zoho_queue_export('Leads', 'crm_leads')", &[]).unwrap().get(0);
    wait_for(&mut c, &format!("SELECT state = 'done' FROM zoho.job_queue WHERE id = {job}"), Duration::from_secs(15)).expect("the job ran");
    drop(squatter);
    drop_mallory(&mut c);
}

#[test]
fn internal_functions_and_other_roles_flows_are_out_of_reach() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    orders_table(&mut c);
    mallory(&mut c);
    c.batch_execute(
        "SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', mapping => '{\"order_id\": \"parent_id\"}');
         UPDATE zoho.push_schedules SET last_error = 'row ORD-7 customer Jane Roe rejected';
         CREATE TABLE victim (id bigint PRIMARY KEY, last_name text, modified_time timestamptz);",
    )
    .unwrap();
    // Nothing in the extension runs with its owner's rights.
    let definers: i64 = c
        .query_one("SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e' JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'zoho_fdw' WHERE p.prosecdef", &[])
        .unwrap()
        .get(0);
    assert_eq!(definers, 0, "SECURITY DEFINER functions in the extension");
    c.batch_execute(&format!("SET SESSION AUTHORIZATION {MALLORY}")).unwrap();
    // The old helpers are gone; calling them is an error, not an action.
    for call in [
        "SELECT zoho.add_watch(1, 'Leads', 'victim', 'zoho', '{create}', 'http://x', 't', now(), now())",
        "SELECT * FROM zoho.remove_watch(1)",
        "SELECT zoho.record_export('Leads', 'victim', 'zoho', now(), 1, 1)",
        "SELECT zoho.pending_rows('victim', 'synced')",
        "SELECT zoho.may_manage('postgres')",
    ] {
        let e = c.batch_execute(call).unwrap_err();
        assert_eq!(sql_error(&e).0, "42883", "{call}: {e}");
    }
    // Registering a watch on a table the role may not write, behind zoho_watch's back.
    let e = c
        .batch_execute(&format!(
            "INSERT INTO zoho.watches (channel_id, module, target, server, owner, events, notify_url, token, synced_until)
             VALUES (42, 'Leads', 'victim', 'zoho', '{MALLORY}', '{{create}}', 'http://x', 't', now())"
        ))
        .unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    let e = c.batch_execute("SELECT zoho_watch('Leads', 'victim', notify_url => 'http://127.0.0.1:9/x')").unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    // Another role's flows, errors (which quote rows), tokens and progress are not shown.
    for q in ["SELECT count(*) FROM zoho.sync_status", "SELECT count(*) FROM zoho.push_schedules", "SELECT count(*) FROM zoho.watches", "SELECT count(*) FROM zoho.jobs"] {
        let n: i64 = c.query_one(q, &[]).unwrap().get(0);
        assert_eq!(n, 0, "{q}");
    }
    let unscheduled: bool = c.query_one("SELECT zoho_unschedule_push('orders')", &[]).unwrap().get(0);
    assert!(!unscheduled, "another role's push is not there to unschedule");
    let progress: i64 = c.query_one("SELECT count(*) FROM zoho.job_progress(1)", &[]).unwrap().get(0);
    assert_eq!(progress, 0);
    let opts: Option<Vec<String>> = c.query_one("SELECT umoptions FROM pg_user_mappings WHERE usename = 'postgres'", &[]).unwrap().get(0);
    assert_eq!(opts, None, "another role's credentials");
    c.batch_execute("RESET SESSION AUTHORIZATION").unwrap();
    let left: i64 = c.query_one("SELECT count(*) FROM zoho.push_schedules WHERE source = 'orders'::regclass", &[]).unwrap().get(0);
    assert_eq!(left, 1, "unscheduling another role's push changed nothing");
    drop_mallory(&mut c);
}

#[test]
fn a_role_without_usage_on_the_server_gets_a_clear_error() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    mallory(&mut c);
    c.batch_execute(&format!(
        "REVOKE USAGE ON FOREIGN SERVER zoho FROM {MALLORY};
         SET SESSION AUTHORIZATION {MALLORY};
         CREATE TABLE m.leads (id bigint PRIMARY KEY, last_name text, modified_time timestamptz);"
    ))
    .unwrap();
    sim.clear_calls();
    for call in [
        "SELECT zoho_bulk_export('Leads', 'm.leads')",
        "SELECT zoho_watch('Leads', 'm.leads', notify_url => 'http://127.0.0.1:9/x')",
        "SELECT zoho_queue_export('Leads', 'm.leads')",
        "SELECT zoho_schedule_pull('Leads', 'm.leads')",
    ] {
        let e = c.batch_execute(call).unwrap_err();
        let (state, msg, hint) = sql_error(&e);
        assert_eq!(state, "42501", "{call}: {msg}");
        assert!(msg.contains("may not use server \"zoho\""), "{msg}");
        assert!(hint.unwrap_or_default().contains("GRANT USAGE ON FOREIGN SERVER"));
    }
    c.batch_execute("RESET SESSION AUTHORIZATION").unwrap();
    assert_eq!(sim.calls().len(), 0, "nothing reached Zoho");
    drop_mallory(&mut c);
}

fn post(body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect("127.0.0.1:28816").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("POST /zoho/notify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

#[test]
fn the_listener_bounds_bodies_and_connections_and_checks_deletes_with_zoho() {
    let sim = start_sim(SimConfig::default().seed("Leads", 20));
    let (_db, mut c) = WorkerDb::new(&sim);
    let channel: String = c.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => $1)", &[&HOOK]).unwrap().get(0);
    c.query_one("SELECT zoho_bulk_export('Leads', 'crm_leads')", &[]).unwrap();
    let token: String = c.query_one("SELECT token FROM zoho.watches", &[]).unwrap().get(0);

    // A 2 MiB body is refused before it is read whole.
    let (status, _) = post(&vec![b'x'; 2 << 20]);
    assert_eq!(status, 413);

    // 200 idle connections: the excess is answered 503 at once, and the
    // idle ones are closed after the read timeout.
    let idle: Vec<std::net::TcpStream> = (0..200).map(|_| std::net::TcpStream::connect("127.0.0.1:28816").unwrap()).collect();
    thread::sleep(Duration::from_millis(300));
    let (status, _) = post(b"{}");
    assert_eq!(status, 503, "over the connection limit");
    thread::sleep(Duration::from_secs(6));
    let (status, _) = post(b"{}");
    assert_eq!(status, 400, "served again once the idle connections were dropped");
    drop(idle);

    // A forged or replayed delete of a record Zoho still has deletes nothing.
    let id = sim.records("Leads")[3]["id"].as_str().unwrap().to_string();
    let forged = json!({"server_time": 1, "query_params": {}, "module": "Leads", "ids": [id], "affected_fields": [],
                        "operation": "delete", "channel_id": channel, "token": token});
    let (status, _) = post(forged.to_string().as_bytes());
    assert_eq!(status, 200);
    thread::sleep(Duration::from_secs(2));
    let n: i64 = c.query_one("SELECT count(*) FROM crm_leads WHERE id = $1::text::bigint", &[&id]).unwrap().get(0);
    assert_eq!(n, 1, "the row of a record that still exists was deleted");
    // A real delete still goes through.
    sim.ui_delete("Leads", &id).unwrap();
    wait_for(&mut c, &format!("SELECT count(*) = 0 FROM crm_leads WHERE id = {id}"), Duration::from_secs(10)).expect("the real delete");
}

#[test]
fn a_locked_table_delays_its_own_flow_only() {
    let sim = start_sim(SimConfig::default());
    let (mut db, mut c) = WorkerDb::new(&sim);
    db.set(&mut c, "zoho_fdw.worker_lock_timeout", "300");
    orders_table(&mut c);
    let schedule = |t: &str| format!("SELECT zoho_schedule_push('{t}', 'Orders', key_field => 'parent_id', min_pending => 1, mapping => '{{\"order_id\": \"parent_id\"}}');");
    c.batch_execute(&format!(
        "CREATE TABLE held (LIKE orders INCLUDING ALL); CREATE TABLE pushing (LIKE orders INCLUDING ALL);
         INSERT INTO held (order_id, name, quantity) VALUES ('H-1', 'held', 1);
         INSERT INTO pushing (order_id, name, quantity) VALUES ('P-1', 'pushing', 1);
         {} {} {}",
        schedule("held"),
        schedule("pushing"),
        schedule("orders")
    ))
    .unwrap();
    // One table locked by a user; another held by its push's own advisory
    // lock (as a zoho_upsert_pending that never ends would hold it).
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE; SELECT pg_advisory_xact_lock(1515145296, 'pushing'::regclass::oid::int)").unwrap();
    orders(&mut c, 5, 1);
    wait_for(&mut c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(10)).expect("the other flow kept working");
    for t in ["held", "pushing"] {
        let error: Option<String> = c.query_one(&format!("SELECT last_error FROM zoho.push_schedules WHERE source = '{t}'::regclass"), &[]).unwrap().get(0);
        assert!(error.as_deref().is_some_and(|e| e.contains("lock timeout")), "{t}: the flow reports the lock: {error:?}");
    }
    tx.rollback().unwrap();
    wait_for(&mut c, "SELECT (SELECT bool_and(synced) FROM held) AND (SELECT bool_and(synced) FROM pushing)", Duration::from_secs(15)).expect("both flows recover once the locks go");
}

/// A view over a foreign table reads Zoho with its owner's user mapping,
/// as postgres_fdw does (checkAsUser), not with whoever queries the view:
/// a reader without a mapping of its own can use a view it was granted,
/// and a reader's own mapping is never used for another role's view.
#[test]
fn a_view_reads_zoho_with_its_owners_user_mapping() {
    let (sim, _db, mut c) = leads_db("view_owner_mapping");
    c.batch_execute(
        "DROP ROLE IF EXISTS zoho_view_owner; DROP ROLE IF EXISTS zoho_reader;
         CREATE ROLE zoho_view_owner; CREATE ROLE zoho_reader;
         GRANT USAGE ON FOREIGN SERVER zoho TO zoho_view_owner;
         CREATE USER MAPPING FOR zoho_view_owner SERVER zoho
           OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
         GRANT USAGE ON SCHEMA zoho_crm TO zoho_view_owner;
         GRANT SELECT, UPDATE ON zoho_crm.leads TO zoho_view_owner;
         CREATE VIEW public.leads_view AS SELECT id, last_name FROM zoho_crm.leads;
         ALTER VIEW public.leads_view OWNER TO zoho_view_owner;
         GRANT SELECT, UPDATE ON public.leads_view TO zoho_reader;",
    )
    .unwrap();
    let want = visible_leads(&sim).len() as i64;
    c.batch_execute("SET ROLE zoho_reader").unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM public.leads_view", &[]).expect("the view owner's mapping is used").get(0);
    assert_eq!(n, want);
    // The same for a write through the view.
    let id: i64 = c.query_one("SELECT id FROM public.leads_view LIMIT 1", &[]).unwrap().get(0);
    c.execute("UPDATE public.leads_view SET last_name = 'Through the view' WHERE id = $1", &[&id]).expect("the view owner's mapping writes");
    // Directly, the reader has neither the privilege nor a mapping.
    let e = c.query_one("SELECT count(*) FROM zoho_crm.leads", &[]).unwrap_err();
    assert_eq!(sql_error(&e).0, "42501", "{e}");
    c.batch_execute("RESET ROLE").unwrap();
    assert!(sim.records("Leads").iter().any(|r| r["Last_Name"] == "Through the view"));
    alive(&mut c);
    c.batch_execute("DROP VIEW public.leads_view; DROP OWNED BY zoho_view_owner, zoho_reader; DROP ROLE zoho_view_owner; DROP ROLE zoho_reader").unwrap();
}

/// The new flow columns a role may write cannot be turned against anyone:
/// a filter written behind zoho_schedule_pull's back is parsed again by
/// the worker (and refused, never sent), and another role's held channel
/// cannot be resumed.
#[test]
fn a_forged_filter_is_refused_by_the_worker_and_others_channels_stay_held() {
    let sim = start_sim(SimConfig::default().seed("Leads", 5));
    let (_db, mut c) = WorkerDb::new(&sim);
    mallory(&mut c);
    let channel: String = c.query_one("SELECT zoho_watch('Leads', 'crm_leads', notify_url => 'http://127.0.0.1:9/x')", &[]).unwrap().get(0);
    c.batch_execute("UPDATE zoho.watches SET held_reason = 'held by its owner'").unwrap();
    c.batch_execute(&format!("SET SESSION AUTHORIZATION {MALLORY}")).unwrap();
    let resumed: Option<bool> = c.query_one("SELECT zoho_resume_watch($1)", &[&channel]).unwrap().get(0);
    assert_eq!(resumed, None, "another role's channel was resumed");
    assert_eq!(c.execute("UPDATE zoho.watches SET held_reason = NULL", &[]).unwrap(), 0);
    // Its own pull, then a filter no check has seen.
    c.batch_execute(
        "SELECT zoho_create_mirror('Leads', 'm.leads');
         SELECT zoho_schedule_pull('Leads', 'm.leads', every => '1 second', filter => 'Lead_Source = ''Web Download''');
         UPDATE zoho.pull_schedules SET filter = $$x' or id is not null) -- $$",
    )
    .unwrap();
    let failed = wait_for(&mut c, "SELECT coalesce(bool_or(error LIKE '%filter%'), false) FROM zoho.jobs WHERE target = 'm.leads'::regclass", Duration::from_secs(20));
    let error: Option<String> = c.query_one("SELECT max(error) FROM zoho.jobs WHERE target = 'm.leads'::regclass", &[]).unwrap().get(0);
    assert!(failed.is_some(), "the forged filter was not refused: {error:?}");
    let error = error.unwrap_or_default();
    assert!(error.contains("the string starting at character 2 is not closed"), "{error}");
    alive(&mut c);
    c.batch_execute("RESET SESSION AUTHORIZATION").unwrap();
    let held: Option<String> = c.query_one("SELECT held_reason FROM zoho.watches", &[]).unwrap().get(0);
    assert_eq!(held.as_deref(), Some("held by its owner"));
    let sent = sim.calls().iter().filter_map(|x| x.request_body.as_ref().map(|b| b.to_string())).any(|b| b.contains("or id is not null"));
    assert!(!sent, "the forged filter reached Zoho");
    drop_mallory(&mut c);
}

/// Two things an ordinary role could do with its own user mapping: claim a
/// table it cannot write as its mirror, and hand the filter parser text
/// nested past any stack. Both are refused with the reason, nothing reaches
/// Zoho for the filter, and the backend lives.
#[test]
fn another_roles_table_and_stack_deep_filters_are_refused() {
    let sim = start_sim(SimConfig::default());
    let (_db, mut c) = WorkerDb::new(&sim);
    mallory(&mut c);
    c.batch_execute(&format!(
        "RESET SESSION AUTHORIZATION;
         DROP TABLE IF EXISTS public.their_leads;
         CREATE TABLE public.their_leads (id bigint PRIMARY KEY, modified_time timestamptz);
         SET SESSION AUTHORIZATION {MALLORY};"
    ))
    .unwrap();
    let (state, msg, hint) = sql_error(&c.batch_execute("SELECT zoho_create_mirror('Leads', 'public.their_leads')").unwrap_err());
    assert_eq!(state, "42501", "{msg}");
    assert!(msg.contains("mirror into") && msg.contains("their_leads"), "{msg}");
    assert!(hint.unwrap_or_default().contains("SELECT, INSERT, UPDATE"));
    alive(&mut c);
    c.batch_execute("CREATE TABLE m.leads (id bigint PRIMARY KEY, last_name text, modified_time timestamptz)").unwrap();
    sim.clear_calls();
    for call in [
        "SELECT zoho.filter_check('Leads', repeat('(', 5000) || 'Last_Name = ''x''' || repeat(')', 5000), NULL)",
        "SELECT zoho_bulk_export('Leads', 'm.leads', filter => 'Last_Name = ''x''' || repeat(' or Last_Name = ''x''', 200000))",
    ] {
        let (state, msg, _) = sql_error(&c.batch_execute(call).unwrap_err());
        assert_eq!(state, "22023", "{call}: {msg}");
        assert!(msg.contains("nests parentheses") || msg.contains("more than 24 criteria"), "{msg}");
        alive(&mut c);
    }
    assert!(sim.calls().iter().all(|call| !call.endpoint.starts_with("bulk")), "no job was started");
    c.batch_execute("RESET SESSION AUTHORIZATION; DROP TABLE public.their_leads").unwrap();
    drop_mallory(&mut c);
}
