//! Foreign-table scans checked in the simulator's call log: pushdown must
//! show up as fewer, smaller calls, not only as right results.

use std::time::{Duration, Instant};

use zoho_fdw_tests::*;

fn setup(sim: &Sim, db: &TestDb) -> Client {
    let mut c = db.client_for(sim);
    c.batch_execute("CREATE SCHEMA zoho_crm; IMPORT FOREIGN SCHEMA crm LIMIT TO (leads, accounts) FROM SERVER zoho INTO zoho_crm").unwrap();
    sim.clear_calls();
    c
}

#[test]
fn a_selective_query_makes_one_call() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 5_000));
    let db = TestDb::new("selective");
    let mut c = setup(&sim, &db);
    let id: String = sim.records("Accounts")[1234]["id"].as_str().unwrap().to_string();
    let row = c.query_one(&format!("SELECT account_name FROM zoho_crm.accounts WHERE id = {id}"), &[]).unwrap();
    assert_eq!(row.get::<_, String>(0), sim.records("Accounts")[1234]["Account_Name"].as_str().unwrap());
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].contains(&format!("id = {id}")), "{}", q[0]);
}

#[test]
fn limit_asks_for_no_more_than_it_needs() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 5_000));
    let db = TestDb::new("limit");
    let mut c = setup(&sim, &db);
    let rows = c.query("SELECT id FROM zoho_crm.accounts LIMIT 5", &[]).unwrap();
    assert_eq!(rows.len(), 5);
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].ends_with("limit 5"), "{}", q[0]);
    // Newest first, through a descending keyset instead of a full read.
    sim.clear_calls();
    let rows = c.query("SELECT id, modified_time FROM zoho_crm.accounts ORDER BY modified_time DESC LIMIT 7", &[]).unwrap();
    assert_eq!(rows.len(), 7);
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].contains("order by Modified_Time desc, id desc limit 7"), "{}", q[0]);
}

/// A LIMIT over a condition Zoho cannot apply says nothing about how many
/// Zoho rows it takes: full pages, not one row a call.
#[test]
fn limit_over_a_local_condition_reads_full_pages() {
    let sim = start_sim(SimConfig::default().seed("Leads", 2_500));
    let db = TestDb::new("limit_local");
    let mut c = setup(&sim, &db);
    let rows = c.query("SELECT id FROM zoho_crm.leads WHERE lower(last_name) = 'no such name' LIMIT 1", &[]).unwrap();
    assert!(rows.is_empty());
    let q = coql_queries(&sim);
    let live = sim.records("Leads").iter().filter(|r| r["Converted__s"] != serde_json::json!(true)).count();
    assert_eq!(q.len(), live.div_ceil(2000), "{q:#?}");
    assert!(q.iter().all(|s| s.ends_with("limit 2000")), "{q:#?}");
}

#[test]
fn a_10000_row_scan_takes_five_pages_and_streams() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 10_000));
    let db = TestDb::new("pages");
    let mut c = setup(&sim, &db);
    // OFFSET 0 keeps the count here (Zoho would count in one call).
    let n: i64 = c.query_one("SELECT count(*) FROM (SELECT * FROM zoho_crm.accounts OFFSET 0) a", &[]).unwrap().get(0);
    assert_eq!(n, 10_000);
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 5, "{q:#?}");
    assert!(q.iter().all(|s| s.ends_with("limit 2000") && !s.contains("offset")), "{q:#?}");
    // The count needs no column: only ids are asked for.
    assert!(q[0].starts_with("select id from Accounts"), "{}", q[0]);
    let distinct: i64 = c.query_one("SELECT count(DISTINCT id) FROM zoho_crm.accounts", &[]).unwrap().get(0);
    assert_eq!(distinct, 10_000);
}

#[test]
fn a_429_storm_during_a_scan_still_returns_every_row() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 4_500));
    let db = TestDb::new("storm_scan");
    let mut c = setup(&sim, &db);
    sim.inject(Fault::status(429, 3).on_path("/crm/v8/coql"));
    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.accounts WHERE employees >= 0", &[]).unwrap().get(0);
    let expected = sim.records("Accounts").iter().filter(|r| r["Employees"].as_i64().is_some_and(|e| e >= 0)).count();
    assert_eq!(n as usize, expected);
    let statuses: Vec<u16> = sim.calls().iter().filter(|c| c.endpoint == "coql").map(|c| c.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
}

#[test]
fn statement_timeout_stops_a_scan_within_a_second() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 100));
    let db = TestDb::new("scan_timeout");
    let mut c = setup(&sim, &db);
    sim.inject(Fault::slow(30_000, 5).on_path("/crm/v8/coql"));
    c.batch_execute("SET statement_timeout = '500ms'").unwrap();
    let started = Instant::now();
    let err = c.query("SELECT * FROM zoho_crm.accounts", &[]).unwrap_err();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "57014", "{message}");
    assert!(started.elapsed() < Duration::from_millis(1_500), "{:?}", started.elapsed());
    // The backend is fine afterwards.
    sim.clear_faults();
    c.batch_execute("RESET statement_timeout").unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.accounts", &[]).unwrap().get(0);
    assert_eq!(n, 100);
}

/// While a backend waits on Zoho, pg_stat_activity says so.
#[test]
fn a_backend_waiting_on_zoho_shows_an_extension_wait() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 10));
    let db = TestDb::new("scan_wait");
    let mut c = setup(&sim, &db);
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    sim.inject(Fault::slow(1_500, 1).on_path("/crm/v8/coql"));
    let scan = std::thread::spawn(move || {
        let n = c.query_one("SELECT count(*) FROM zoho_crm.accounts", &[]).map(|r| r.get::<_, i64>(0));
        (c, n)
    });
    let mut watcher = db.client();
    let waits = |w: &mut Client| -> Option<(Option<String>, Option<String>)> {
        w.query_opt("SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1", &[&pid]).unwrap().map(|r| (r.get(0), r.get(1)))
    };
    let mut seen = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_200) {
        if let Some((Some(t), e)) = waits(&mut watcher) {
            if t == "Extension" {
                seen = Some((t, e));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen, Some(("Extension".to_string(), Some("Extension".to_string()))), "the slow call showed as a wait");
    let (_c, n) = scan.join().unwrap();
    assert_eq!(n.unwrap(), 10);
    // Once the statement is done, the wait is cleared.
    assert_eq!(waits(&mut watcher).and_then(|(t, _)| t).as_deref(), Some("Client"));
}

#[test]
fn literals_with_quotes_reach_zoho_escaped_and_match() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 10));
    for name in ["O'Brien & Sons", "'); drop table x; --", "100% \"real\""] {
        sim.ui_create("Accounts", serde_json::json!({ "Account_Name": name })).unwrap();
    }
    let db = TestDb::new("quotes");
    let mut c = setup(&sim, &db);
    for name in ["O'Brien & Sons", "'); drop table x; --", "100% \"real\""] {
        let rows = c.query("SELECT account_name FROM zoho_crm.accounts WHERE account_name = $1", &[&name]).unwrap();
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(rows[0].get::<_, String>(0), name);
    }
    let q = coql_queries(&sim);
    assert!(q.iter().any(|s| s.contains("Account_Name = 'O''Brien & Sons'")), "{q:#?}");
    assert_eq!(sim.records("Accounts").len(), 13, "nothing was dropped");
}

#[test]
fn a_wrong_secret_fails_the_scan_without_echoing_it() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 10));
    let db = TestDb::new("scan_auth");
    let mut c = setup(&sim, &db);
    c.batch_execute("ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (SET client_secret 'hunter2-scan')").unwrap();
    let mut fresh = db.client();
    let err = fresh.query("SELECT * FROM zoho_crm.accounts", &[]).unwrap_err();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "28000", "{message}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

/// Only built-in operators are shipped, by OID: a user's own `=` (here one
/// that is always true) is evaluated locally, not sent to Zoho as COQL's `=`.
#[test]
fn a_user_defined_operator_is_never_pushed_even_when_named_like_a_builtin() {
    let sim = start_sim(SimConfig::default().seed("Leads", 40));
    let db = TestDb::new("user_operator");
    let mut c = setup(&sim, &db);
    c.batch_execute(
        // PL/pgSQL, so the planner cannot inline it away.
        "CREATE FUNCTION public.always(text, text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN true; END';
         CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.always);",
    )
    .unwrap();
    let all: i64 = c.query_one("SELECT count(*) FROM zoho_crm.leads", &[]).unwrap().get(0);
    sim.clear_calls();
    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE last_name OPERATOR(public.=) 'no such name'", &[]).unwrap().get(0);
    assert_eq!(n, all, "the operator is true for every row");
    let q = coql_queries(&sim);
    assert!(q.iter().all(|q| !q.contains("no such name")), "a user-defined operator reached Zoho: {q:?}");
    // = ANY over the user's operator: local too.
    sim.clear_calls();
    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE last_name OPERATOR(public.=) ANY (ARRAY['a', 'b'])", &[]).unwrap().get(0);
    assert_eq!(n, all);
    assert!(coql_queries(&sim).iter().all(|q| !q.contains("in (")), "{:?}", coql_queries(&sim));
    // The built-in one still goes to Zoho.
    sim.clear_calls();
    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE last_name = 'no such name'", &[]).unwrap().get(0);
    assert_eq!(n, 0);
    assert!(coql_queries(&sim).iter().any(|q| q.contains("Last_Name = 'no such name'")), "{:?}", coql_queries(&sim));
}

/// Zoho takes 25 criteria at most, and keyset paging adds its own from the
/// second page on: a query with 25 pushable conditions keeps the most
/// selective that fit beside the paging predicate (the rest are checked
/// locally) and reads every page.
#[test]
fn twenty_five_pushable_conditions_leave_room_for_the_paging_predicate() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 4_500));
    let db = TestDb::new("criteria_budget");
    let mut c = setup(&sim, &db);
    let one: i64 = c.query_one("SELECT count(*) FROM zoho_crm.accounts WHERE annual_revenue > -1", &[]).unwrap().get(0);
    assert!(one > 2_000, "the query must need more than one page: {one}");
    let many: Vec<String> = (1..=24).map(|i| format!("annual_revenue > -{}", i + 1)).collect();
    sim.clear_calls();
    let sql = format!("SELECT count(*) FROM zoho_crm.accounts WHERE annual_revenue > -1 AND {}", many.join(" AND "));
    let n: i64 = c.query_one(&sql, &[]).unwrap().get(0);
    assert_eq!(n, one);
    let q = coql_queries(&sim);
    assert!(q.len() >= 3, "{} calls", q.len());
    // Every call within Zoho's limit (the simulator refuses more).
    assert!(sim.calls().iter().filter(|c| c.endpoint == "coql").all(|c| c.status == 200), "{:?}", sim.calls().iter().map(|c| (c.status, c.code.clone())).collect::<Vec<_>>());
}

/// Conditions no query could take whole (a 100-way OR, AND / OR nested 70
/// deep) stay local and give the right rows, instead of a plan that cannot
/// be read back.
#[test]
fn conditions_wider_or_deeper_than_a_query_are_checked_locally() {
    let sim = start_sim(SimConfig::default().seed("Leads", 300));
    let db = TestDb::new("wide_or");
    let mut c = setup(&sim, &db);
    // PostgreSQL's own answer, from a local copy, is the oracle.
    c.batch_execute("CREATE TABLE leads_copy AS SELECT * FROM zoho_crm.leads").unwrap();
    let count = |c: &mut Client, table: &str, cond: &str| -> i64 { c.query_one(&format!("SELECT count(*) FROM {table} WHERE {cond}"), &[]).unwrap().get(0) };
    let wide = (1..=100).map(|g| format!("no_of_employees > {}", g * 50)).collect::<Vec<_>>().join(" OR ");
    sim.clear_calls();
    let n = count(&mut c, "zoho_crm.leads", &wide);
    assert!(n > 0);
    assert_eq!(n, count(&mut c, "leads_copy", &wide));
    assert!(coql_queries(&sim).iter().all(|q| !q.contains("No_of_Employees > 5000")), "{:?}", coql_queries(&sim));
    let deep = format!("{}no_of_employees > 0{}", "(no_of_employees = 1 OR (no_of_employees > 2 AND ".repeat(70), "))".repeat(70));
    let n = count(&mut c, "zoho_crm.leads", &deep);
    assert!(n > 0);
    assert_eq!(n, count(&mut c, "leads_copy", &deep));
}

/// A value Zoho refuses for a field it has is reported in Zoho's words, not
/// as a field the module lacks.
#[test]
fn a_refused_value_is_not_reported_as_a_missing_field() {
    let sim = start_sim(SimConfig::default().seed("Leads", 10));
    let db = TestDb::new("refused_value");
    let mut c = setup(&sim, &db);
    let e = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE modified_time > '200000-01-01'", &[]).unwrap_err();
    let db_err = e.as_db_error().unwrap();
    assert!(!db_err.message().contains("has no field"), "{}", db_err.message());
    assert!(db_err.message().contains("INVALID_QUERY") && db_err.detail().unwrap_or_default().contains("invalid value given"), "{} / {:?}", db_err.message(), db_err.detail());
}

/// Estimates come from what an earlier scan in the session read, not a
/// fixed 1,000: the next plan of the same query, and of the table with
/// other conditions, sizes the scan by it.
#[test]
fn a_scan_read_to_the_end_is_the_next_plans_estimate() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 3_000));
    let db = TestDb::new("estimates");
    let mut c = setup(&sim, &db);
    // The planner's rows for the scan: `rows=N` on EXPLAIN's first line.
    let rows = |c: &mut Client, sql: &str| -> f64 {
        let line: String = c.query(&format!("EXPLAIN {sql}"), &[]).unwrap()[0].get(0);
        let n = line.split("rows=").nth(1).and_then(|r| r.split(' ').next()).unwrap_or_else(|| panic!("{line}"));
        n.parse().unwrap()
    };
    let all = "SELECT id FROM zoho_crm.accounts";
    assert_eq!(rows(&mut c, all), 1000.0, "nothing seen yet: the default");
    assert_eq!(c.query(all, &[]).unwrap().len(), 3_000);
    assert_eq!(rows(&mut c, all), 3_000.0, "the count the last full scan read");
    let retail = "SELECT id FROM zoho_crm.accounts WHERE industry = 'Retail'";
    let guess = rows(&mut c, retail);
    assert!(guess > 1.0 && guess < 3_000.0, "the table's count times the selectivity: {guess}");
    let n = c.query(retail, &[]).unwrap().len() as f64;
    assert_eq!(rows(&mut c, retail), n.max(1.0), "then the count those conditions returned");
}

/// count(*), sum over a picklist equality, and GROUP BY each take one COQL
/// call of the cheapest tier, with answers equal to the records' own.
#[test]
fn aggregates_are_one_call_each_and_exact() {
    let sim = start_sim(SimConfig::default().seed("Leads", 2_500));
    let db = TestDb::new("aggregates");
    let mut c = setup(&sim, &db);
    let live: Vec<serde_json::Map<String, serde_json::Value>> = sim.records("Leads").into_iter().filter(|r| r["Converted__s"] != serde_json::json!(true)).collect();

    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.leads", &[]).unwrap().get(0);
    assert_eq!(n as usize, live.len());
    assert_eq!(coql_queries(&sim), vec!["select COUNT(id) from Leads where id is not null limit 1".to_string()]);
    assert_eq!(sim.credits().by_endpoint["coql"].credits, 1);

    sim.clear_calls();
    let sum: Option<String> = c.query_one("SELECT sum(annual_revenue)::text FROM zoho_crm.leads WHERE lead_status = 'Contacted'", &[]).unwrap().get(0);
    let expected: f64 = live.iter().filter(|r| r["Lead_Status"] == "Contacted").filter_map(|r| r["Annual_Revenue"].as_f64()).sum();
    assert_eq!(sum.unwrap().parse::<f64>().unwrap(), expected);
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].contains("where Lead_Status = 'Contacted' group by Lead_Status"), "{}", q[0]);

    sim.clear_calls();
    let groups: std::collections::BTreeMap<Option<String>, i64> =
        c.query("SELECT lead_status, count(*) FROM zoho_crm.leads GROUP BY lead_status", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut expected = std::collections::BTreeMap::new();
    for r in &live {
        *expected.entry(r["Lead_Status"].as_str().map(str::to_string)).or_insert(0i64) += 1;
    }
    assert_eq!(groups, expected);
    assert_eq!(coql_queries(&sim).len(), 1);
    // Ordered by the aggregate: the same one call, the groups sorted here.
    sim.clear_calls();
    let sql = "SELECT lead_status, count(*) FROM zoho_crm.leads GROUP BY lead_status ORDER BY count(*) DESC, lead_status";
    let ordered: Vec<(Option<String>, i64)> = c.query(sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(ordered.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(), expected, "every group once");
    assert!(ordered.windows(2).all(|w| w[0].1 >= w[1].1), "counts in descending order: {ordered:?}");
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].contains("COUNT(id)") && q[0].contains("group by Lead_Status"), "{}", q[0]);
    // The same column grouped twice is grouped once: Zoho refuses a field named twice.
    sim.clear_calls();
    let twice: std::collections::BTreeMap<Option<String>, i64> = c
        .query("SELECT lead_status a, lead_status b, count(*) FROM zoho_crm.leads GROUP BY 1, 2", &[])
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1));
            (r.get(0), r.get(2))
        })
        .collect();
    assert_eq!(twice, expected);
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].contains("group by Lead_Status") && !q[0].contains("Lead_Status, Lead_Status"), "{}", q[0]);
    // Zoho takes MIN and MAX over numbers and times only: over ids and text
    // PostgreSQL computes them (from one sorted call each, not a full read).
    sim.clear_calls();
    let row = c.query_one("SELECT min(id), max(id), min(last_name) FROM zoho_crm.leads", &[]).unwrap();
    let ids: Vec<i64> = live.iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (*ids.iter().min().unwrap(), *ids.iter().max().unwrap()));
    assert!(row.get::<_, Option<String>>(2).is_some());
    let q = coql_queries(&sim);
    assert!(q.iter().all(|q| !q.contains("MIN(") && !q.contains("MAX(")), "{q:?}");
    assert!(sim.calls().iter().all(|c| c.status == 200), "Zoho refused none");
    // A condition Zoho cannot apply leaves the aggregate here, over a full read.
    sim.clear_calls();
    let n: i64 = c.query_one("SELECT count(*) FROM zoho_crm.leads WHERE lower(last_name) = 'no such name'", &[]).unwrap().get(0);
    assert_eq!(n, 0);
    assert!(coql_queries(&sim).iter().all(|q| !q.contains("COUNT(")));
}

/// ORDER BY a number goes to Zoho with the LIMIT; PostgreSQL puts NULLs
/// first when descending and Zoho last, so the null group is read by a
/// query of its own, in the order PostgreSQL wants.
#[test]
fn top_n_on_a_number_is_sorted_by_zoho_with_nulls_where_postgres_puts_them() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 5_000));
    let db = TestDb::new("top_n");
    let mut c = setup(&sim, &db);
    let revenue = |c: &mut Client, sql: &str| -> Vec<Option<f64>> { c.query(sql, &[]).unwrap().iter().map(|r| r.get::<_, Option<f64>>(0)).collect() };
    let mut all: Vec<f64> = sim.records("Accounts").iter().filter_map(|r| r["Annual_Revenue"].as_f64()).collect();
    all.sort_by(|a, b| b.partial_cmp(a).unwrap());

    let top = revenue(&mut c, "SELECT annual_revenue::float8 AS r FROM zoho_crm.accounts ORDER BY annual_revenue DESC LIMIT 5");
    assert_eq!(top, all[..5].iter().map(|v| Some(*v)).collect::<Vec<_>>());
    let q = coql_queries(&sim);
    assert_eq!(q.len(), 2, "{q:#?}");
    assert!(q[0].contains("where Annual_Revenue is null order by id desc limit 5"), "{}", q[0]);
    assert!(q[1].contains("where Annual_Revenue is not null order by Annual_Revenue desc, id desc limit 5"), "{}", q[1]);
    assert_eq!(sim.credits().by_endpoint["coql"].credits, 2);

    // NULLS LAST is Zoho's own order for DESC: one call.
    sim.clear_calls();
    let top = revenue(&mut c, "SELECT annual_revenue::float8 AS r FROM zoho_crm.accounts ORDER BY annual_revenue DESC NULLS LAST LIMIT 5");
    assert_eq!(top, all[..5].iter().map(|v| Some(*v)).collect::<Vec<_>>());
    assert_eq!(coql_queries(&sim).len(), 1);

    // With NULLs present, the order matches PostgreSQL's over a local copy,
    // in both directions and across pages.
    c.batch_execute("INSERT INTO zoho_crm.accounts (account_name) SELECT 'No revenue ' || g FROM generate_series(1, 3) g").unwrap();
    c.batch_execute("CREATE TABLE local_accounts AS SELECT * FROM zoho_crm.accounts").unwrap();
    for order in ["DESC", "ASC", "DESC NULLS LAST", "ASC NULLS FIRST"] {
        for limit in [2, 4, 2_500] {
            let remote = revenue(&mut c, &format!("SELECT annual_revenue::float8 AS r FROM zoho_crm.accounts ORDER BY annual_revenue {order} LIMIT {limit}"));
            let local = revenue(&mut c, &format!("SELECT annual_revenue::float8 AS r FROM local_accounts ORDER BY annual_revenue {order} LIMIT {limit}"));
            assert_eq!(remote, local, "ORDER BY annual_revenue {order} LIMIT {limit}");
        }
    }
    // Text sorts by Zoho's collation, not PostgreSQL's: sorted here.
    sim.clear_calls();
    c.query("SELECT account_name FROM zoho_crm.accounts ORDER BY account_name LIMIT 5", &[]).unwrap();
    assert!(coql_queries(&sim).iter().all(|q| !q.contains("order by Account_Name")));
}

/// `use_remote_estimate` asks Zoho for a count at plan time, once per
/// statement for each table and conditions, and the plan carries it.
#[test]
fn use_remote_estimate_counts_once_per_statement() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 3_000));
    let db = TestDb::new("remote_estimate");
    let mut c = setup(&sim, &db);
    let e = c.batch_execute("ALTER FOREIGN TABLE zoho_crm.accounts OPTIONS (ADD use_remote_estimate 'yes')").unwrap_err();
    assert!(sql_error(&e).1.contains("use_remote_estimate"), "{e}");
    c.batch_execute("ALTER FOREIGN TABLE zoho_crm.accounts OPTIONS (ADD use_remote_estimate 'true')").unwrap();
    sim.clear_calls();
    let plan: String = c.query("EXPLAIN SELECT id FROM zoho_crm.accounts WHERE employees > 100", &[]).unwrap()[0].get(0);
    let want = sim.records("Accounts").iter().filter(|r| r["Employees"].as_i64().is_some_and(|e| e > 100)).count();
    assert!(plan.contains(&format!("rows={want} ")), "{plan} (want {want})");
    assert_eq!(coql_queries(&sim), vec!["select COUNT(id) from Accounts where Employees > 100 limit 1".to_string()]);
    // Two scans of the table in one statement: one count.
    sim.clear_calls();
    c.query("EXPLAIN SELECT a.id FROM zoho_crm.accounts a JOIN zoho_crm.accounts b ON a.id = b.parent_account", &[]).unwrap();
    assert_eq!(coql_queries(&sim).len(), 1, "{:?}", coql_queries(&sim));
    // The next statement counts again.
    sim.clear_calls();
    c.query("EXPLAIN SELECT id FROM zoho_crm.accounts", &[]).unwrap();
    assert_eq!(coql_queries(&sim).len(), 1);
}

/// ANALYZE samples by COQL within zoho_fdw.analyze_max_credits and stores
/// the record count and per-column statistics, which plans then use.
#[test]
fn analyze_samples_within_its_credit_cap_and_feeds_the_planner() {
    let sim = start_sim(SimConfig::default().seed("Leads", 6_000));
    let db = TestDb::new("analyze");
    let mut c = setup(&sim, &db);
    let live: Vec<serde_json::Map<String, serde_json::Value>> = sim.records("Leads").into_iter().filter(|r| r["Converted__s"] != serde_json::json!(true)).collect();
    for cap in [5i64, 33] {
        let coql = |sim: &Sim| sim.credits().by_endpoint.get("coql").map_or(0, |e| e.credits) as i64;
        let before = coql(&sim);
        c.batch_execute(&format!("SET zoho_fdw.analyze_max_credits = {cap}; ANALYZE zoho_crm.leads")).unwrap();
        let spent = coql(&sim) - before;
        assert!(spent <= cap && spent >= 4, "cap {cap}: spent {spent}");
    }
    let tuples: f32 = c.query_one("SELECT reltuples FROM pg_class WHERE oid = 'zoho_crm.leads'::regclass", &[]).unwrap().get(0);
    assert_eq!(tuples as usize, live.len());
    let distinct: f32 = c.query_one("SELECT n_distinct FROM pg_stats WHERE schemaname = 'zoho_crm' AND tablename = 'leads' AND attname = 'lead_status'", &[]).unwrap().get(0);
    let statuses: std::collections::HashSet<&str> = live.iter().filter_map(|r| r["Lead_Status"].as_str()).collect();
    assert_eq!(distinct as usize, statuses.len());
    // A new session (no scan seen yet) estimates from the statistics.
    let mut fresh = db.client_for(&sim);
    let want = live.iter().filter(|r| r["Lead_Status"] == "Contacted").count() as f64;
    let plan: String = fresh.query("EXPLAIN SELECT id FROM zoho_crm.leads WHERE lead_status = 'Contacted'", &[]).unwrap()[0].get(0);
    let rows: f64 = plan.split("rows=").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).unwrap();
    assert!((rows - want).abs() <= want * 0.2, "{plan}: want about {want}");
}

/// The inner side of a nested loop is rescanned for every outer row; with
/// no parameter changed, a small complete read is replayed, not re-sent.
#[test]
fn a_rescan_with_the_same_parameters_makes_no_call() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 300));
    let db = TestDb::new("rescan");
    let mut c = setup(&sim, &db);
    c.batch_execute("SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off; CREATE TABLE local_accounts AS SELECT * FROM zoho_crm.accounts").unwrap();
    let q = "SELECT g, count(*) FROM generate_series(1, 5) g JOIN zoho_crm.accounts a ON a.employees > g * 1000 GROUP BY g ORDER BY g";
    let plan: Vec<String> = c.query(&format!("EXPLAIN {q}"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(plan.iter().any(|l| l.contains("Nested Loop")), "{plan:#?}");
    sim.clear_calls();
    let remote: Vec<(i32, i64)> = c.query(q, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    let local: Vec<(i32, i64)> = c.query(&q.replace("zoho_crm.accounts", "local_accounts"), &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(remote, local);
    assert_eq!(coql_queries(&sim).len(), 1, "{:#?}", coql_queries(&sim));
}
