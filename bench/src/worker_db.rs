//! The test cluster's worker database (postgres; scripts/pg.sh), reset for
//! a benchmark: the extension created again and a server on the simulator.

use postgres::{Client, NoTls};
use zoho_sim::Sim;

/// The connection string of the worker's database, if ZOHO_FDW_TEST_PG is set.
pub fn dsn() -> Option<String> {
    std::env::var("ZOHO_FDW_TEST_PG").ok().map(|d| format!("{d} dbname=postgres"))
}

/// Drops `tables` and the extension, creates it again with server `zoho`
/// on `sim`, then runs `setup`.
pub fn reset(dsn: &str, sim: &Sim, tables: &str, setup: &str) -> Client {
    let mut c = Client::connect(dsn, NoTls).expect("PostgreSQL");
    let url = sim.base_url();
    c.batch_execute(&format!(
        "SET client_min_messages = warning;
         DROP EXTENSION IF EXISTS zoho_fdw CASCADE;
         DROP TABLE IF EXISTS {tables};
         CREATE EXTENSION zoho_fdw;
         CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}');
         CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
         {setup}"
    ))
    .unwrap();
    c
}

/// Leaves the database as it was.
pub fn clean(c: &mut Client, tables: &str) {
    let _ = c.batch_execute(&format!("SET client_min_messages = warning; DROP EXTENSION zoho_fdw CASCADE; DROP TABLE {tables}"));
}
