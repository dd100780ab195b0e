//! API calls and credits of representative foreign-table queries, against
//! a naive full fetch of the module (what an FDW without pushdown pays),
//! all counted by the simulator in one run. Needs a PostgreSQL with
//! zoho_fdw installed, named by ZOHO_FDW_TEST_PG (scripts/pg.sh starts one).

use postgres::{Client, NoTls};
use zoho_sim::{Sim, SimConfig};

const ROWS: usize = 20_000;

const QUERIES: &[(&str, &str)] = &[
    ("one record by id", "SELECT account_name FROM zoho_crm.accounts WHERE id = {ID}"),
    ("filter on a picklist and a date", "SELECT count(*) FROM zoho_crm.accounts WHERE industry = 'Retail' AND modified_time > '2025-10-01'"),
    ("newest 20", "SELECT id, account_name FROM zoho_crm.accounts ORDER BY modified_time DESC LIMIT 20"),
    ("any 5", "SELECT id FROM zoho_crm.accounts LIMIT 5"),
    ("IN list of 50 literal ids", "SELECT count(*) FROM zoho_crm.accounts WHERE id IN ({IDS})"),
    ("semi-join with 50 local ids", "SELECT count(*) FROM zoho_crm.accounts WHERE id IN (SELECT id FROM ids)"),
    ("full count", "SELECT count(*) FROM zoho_crm.accounts"),
];

pub fn run() {
    println!("\n== foreign-table queries: API calls and credits against a naive full fetch ({ROWS} Accounts) ==");
    let Ok(dsn) = std::env::var("ZOHO_FDW_TEST_PG") else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed (scripts/pg.sh start)");
        return;
    };
    let sim = Sim::start_blocking(SimConfig::default().seed("Accounts", ROWS)).expect("simulator");
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
         IMPORT FOREIGN SCHEMA crm LIMIT TO (accounts) FROM SERVER zoho INTO zoho_crm;"
    ))
    .unwrap();
    let ids: Vec<i64> = sim.records("Accounts").iter().step_by(ROWS / 50).take(50).map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    c.batch_execute("CREATE TABLE ids (id bigint)").unwrap();
    for id in &ids {
        c.execute("INSERT INTO ids VALUES ($1)", &[id]).unwrap();
    }
    c.batch_execute("ANALYZE ids").unwrap();

    // Naive: every row and every column, 2,000 a COQL call (3 credits), or
    // 200 a Get Records call (1 credit) with at most 50 fields per call.
    let fields = 16usize;
    let naive_coql = ROWS.div_ceil(2000);
    let naive_list = ROWS.div_ceil(200) * fields.div_ceil(50);
    println!("naive full fetch: {naive_coql} COQL calls ({} credits), or {naive_list} Get Records calls ({naive_list} credits)", naive_coql * 3);
    println!("{:<34} {:>6} {:>8} {:>12} {:>14}", "query", "calls", "credits", "naive/calls", "naive/credits");
    for (label, sql) in QUERIES {
        let before = sim.credits();
        let calls_before = sim.calls().iter().filter(|c| c.endpoint == "coql").count();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        c.batch_execute(&sql.replace("{ID}", &ids[7].to_string()).replace("{IDS}", &list)).unwrap();
        let calls = sim.calls().iter().filter(|c| c.endpoint == "coql").count() - calls_before;
        let credits = sim.credits().used - before.used;
        println!(
            "{:<34} {:>6} {:>8} {:>12.1} {:>14.1}",
            label,
            calls,
            credits,
            naive_coql as f64 / calls.max(1) as f64,
            (naive_coql * 3) as f64 / credits.max(1) as f64
        );
    }
    drop(c);
    admin.batch_execute("DROP DATABASE IF EXISTS zoho_bench WITH (FORCE)").unwrap();
}
