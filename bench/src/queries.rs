//! API calls and credits of representative foreign-table queries, against
//! a naive plan (a full fetch of the module, one call per row written: what
//! an FDW without pushdown pays) and against the fewest calls Zoho allows,
//! all counted by the simulator in one run. Needs a PostgreSQL with
//! zoho_fdw installed, named by ZOHO_FDW_TEST_PG (scripts/pg.sh starts one).

use postgres::{Client, NoTls};
use zoho_sim::{Sim, SimConfig};

const ROWS: usize = 20_000;
const LEADS: usize = 2_500;

/// A query shape, the naive plan's calls (a full fetch, and one call per
/// row written), and the fewest calls Zoho allows for it.
struct Shape {
    label: &'static str,
    sql: &'static str,
    naive: usize,
    minimum: usize,
}

fn shapes() -> Vec<Shape> {
    let accounts = ROWS.div_ceil(2000);
    let leads = LEADS.div_ceil(2000);
    vec![
        Shape { label: "one record by id", sql: "SELECT account_name FROM zoho_crm.accounts WHERE id = {ID}", naive: accounts, minimum: 1 },
        Shape { label: "filter on a picklist and a date", sql: "SELECT id FROM zoho_crm.accounts WHERE industry = 'Retail' AND modified_time > '2025-10-01'", naive: accounts, minimum: 1 },
        Shape { label: "newest 20", sql: "SELECT id, account_name FROM zoho_crm.accounts ORDER BY modified_time DESC LIMIT 20", naive: accounts, minimum: 1 },
        Shape { label: "any 5", sql: "SELECT id FROM zoho_crm.accounts LIMIT 5", naive: accounts, minimum: 1 },
        Shape { label: "IN list of 50 literal ids", sql: "SELECT id FROM zoho_crm.accounts WHERE id IN ({IDS})", naive: accounts, minimum: 1 },
        Shape { label: "semi-join with 50 local ids", sql: "SELECT count(*) FROM zoho_crm.accounts WHERE id IN (SELECT id FROM ids)", naive: accounts, minimum: 1 },
        Shape { label: "count(*)", sql: "SELECT count(*) FROM zoho_crm.accounts", naive: accounts, minimum: 1 },
        // PostgreSQL puts NULLs first when descending, Zoho last: the null
        // group is a query of its own unless NULLS LAST is asked for.
        Shape { label: "ORDER BY revenue DESC LIMIT 5", sql: "SELECT id FROM zoho_crm.accounts ORDER BY annual_revenue DESC LIMIT 5", naive: accounts, minimum: 1 },
        Shape { label: "same, NULLS LAST", sql: "SELECT id FROM zoho_crm.accounts ORDER BY annual_revenue DESC NULLS LAST LIMIT 5", naive: accounts, minimum: 1 },
        Shape { label: "UPDATE 250 rows RETURNING id", sql: "UPDATE zoho_crm.accounts SET industry = 'Retail' WHERE id BETWEEN {U0} AND {U1} RETURNING id", naive: accounts + 250, minimum: 1 + 3 },
        Shape { label: "DELETE 252 rows RETURNING id", sql: "DELETE FROM zoho_crm.accounts WHERE id BETWEEN {D0} AND {D1} RETURNING id", naive: accounts + 252, minimum: 1 + 3 },
        Shape { label: "lower(last_name) = … LIMIT 1", sql: "SELECT id FROM zoho_crm.leads WHERE lower(last_name) = 'no such name' LIMIT 1", naive: LEADS, minimum: leads },
        Shape { label: "sum WHERE lead_status = …", sql: "SELECT sum(annual_revenue) FROM zoho_crm.leads WHERE lead_status = 'Contacted'", naive: leads, minimum: 1 },
        Shape { label: "count(*) GROUP BY lead_status", sql: "SELECT lead_status, count(*) FROM zoho_crm.leads GROUP BY lead_status", naive: leads, minimum: 1 },
    ]
}

pub fn run() {
    println!("\n== foreign-table queries: API calls and credits against a naive full fetch ({ROWS} Accounts) ==");
    let Ok(dsn) = std::env::var("ZOHO_FDW_TEST_PG") else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed (scripts/pg.sh start)");
        return;
    };
    let sim = Sim::start_blocking(SimConfig::default().seed("Accounts", ROWS).seed("Leads", LEADS)).expect("simulator");
    let mut admin = Client::connect(&dsn, NoTls).expect("PostgreSQL");
    admin.batch_execute("DROP DATABASE IF EXISTS zoho_bench").unwrap();
    admin.batch_execute("CREATE DATABASE zoho_bench").unwrap();
    let mut c = Client::connect(&format!("{dsn} dbname=zoho_bench"), NoTls).expect("bench database");
    let url = sim.base_url();
    c.batch_execute(&format!(
        "CREATE EXTENSION zoho_fdw;
         CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}');
         CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
         CREATE SCHEMA zoho_crm;
         IMPORT FOREIGN SCHEMA crm LIMIT TO (accounts, leads) FROM SERVER zoho INTO zoho_crm;"
    ))
    .unwrap();
    let ids: Vec<i64> = sim.records("Accounts").iter().step_by(ROWS / 50).take(50).map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    c.batch_execute("CREATE TABLE ids (id bigint)").unwrap();
    for id in &ids {
        c.execute("INSERT INTO ids VALUES ($1)", &[id]).unwrap();
    }
    c.batch_execute("ANALYZE ids").unwrap();

    let mut sorted: Vec<i64> = sim.records("Accounts").iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    sorted.sort_unstable();
    let (u0, u1) = (sorted[5_000], sorted[5_000 + 249]);
    let (d0, d1) = (sorted[9_000], sorted[9_000 + 251]);
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    println!("naive: a full fetch of the module at 2,000 rows a COQL call (Leads: one record a call under LIMIT 1, as before), plus one call per row written");
    println!("{:<32} {:>6} {:>8} {:>8} {:>8} {:>12}", "query", "calls", "credits", "minimum", "naive", "calls/min");
    let mut at_minimum = 0;
    let all = shapes();
    for shape in &all {
        let before = sim.credits().used;
        let calls_before = sim.calls().len();
        let sql = shape
            .sql
            .replace("{ID}", &ids[7].to_string())
            .replace("{IDS}", &list)
            .replace("{U0}", &u0.to_string())
            .replace("{U1}", &u1.to_string())
            .replace("{D0}", &d0.to_string())
            .replace("{D1}", &d1.to_string());
        c.batch_execute(&sql).unwrap();
        let calls = sim.calls()[calls_before..].iter().filter(|c| c.endpoint == "coql" || c.endpoint.starts_with("records.")).count();
        let credits = sim.credits().used - before;
        at_minimum += usize::from(calls <= shape.minimum);
        println!("{:<32} {:>6} {:>8} {:>8} {:>8} {:>12.2}", shape.label, calls, credits, shape.minimum, shape.naive, calls as f64 / shape.minimum as f64);
    }
    println!("{at_minimum} of {} shapes at Zoho's minimum number of calls", all.len());
    drop(c);
    admin.batch_execute("DROP DATABASE IF EXISTS zoho_bench WITH (FORCE)").unwrap();
}
