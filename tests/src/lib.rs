//! Harness for the integration and SQL golden tests: a real PostgreSQL with
//! zoho_fdw installed (named by `ZOHO_FDW_TEST_PG`), a fresh database per
//! test, and simulators started in-process. A missing or unreachable
//! PostgreSQL fails the test: these tests never skip.

use std::sync::atomic::{AtomicUsize, Ordering};

pub mod outage;
pub mod worker;

pub use postgres::{Client, NoTls};
pub use zoho_sim::{Fault, Sim, SimConfig};

/// The COQL text of every query the simulator was sent, in order.
pub fn coql_queries(sim: &Sim) -> Vec<String> {
    sim.calls()
        .iter()
        .filter(|c| c.endpoint == "coql")
        .filter_map(|c| c.request_body.as_ref()?.get("select_query")?.as_str().map(str::to_string))
        .collect()
}

/// libpq-style connection string of the test cluster.
pub fn pg_dsn() -> String {
    std::env::var("ZOHO_FDW_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ZOHO_FDW_TEST_PG is not set: these tests need a PostgreSQL with zoho_fdw installed \
             (scripts/test.sh starts one), e.g. ZOHO_FDW_TEST_PG='host=127.0.0.1 port=28815 user=postgres dbname=postgres'"
        )
    })
}

fn connect(dsn: &str) -> Client {
    Client::connect(dsn, NoTls).unwrap_or_else(|e| panic!("cannot connect to PostgreSQL ({dsn}): {e}"))
}

/// A database of its own for one test, with the extension created.
pub struct TestDb {
    pub name: String,
    pub dsn: String,
}

impl TestDb {
    pub fn new(tag: &str) -> TestDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("zoho_it_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let admin_dsn = pg_dsn();
        let mut admin = connect(&admin_dsn);
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let dsn = format!("{admin_dsn} dbname={name}");
        connect(&dsn).batch_execute("CREATE EXTENSION zoho_fdw").expect("CREATE EXTENSION zoho_fdw");
        TestDb { name, dsn }
    }

    pub fn client(&self) -> Client {
        connect(&self.dsn)
    }

    /// A client with a server `zoho` pointing at `sim` and a user mapping.
    pub fn client_for(&self, sim: &Sim) -> Client {
        let mut c = self.client();
        let url = sim.base_url();
        c.batch_execute(&format!(
            "CREATE SERVER IF NOT EXISTS zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}', timeout_ms '5000');
             CREATE USER MAPPING IF NOT EXISTS FOR CURRENT_USER SERVER zoho
               OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');"
        ))
        .unwrap();
        c
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&pg_dsn(), NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// The SQLSTATE and message of a failed statement.
pub fn sql_error(e: &postgres::Error) -> (String, String, Option<String>) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a database error: {e}"));
    (db.code().code().to_string(), db.message().to_string(), db.hint().map(str::to_string))
}

pub fn start_sim(cfg: SimConfig) -> Sim {
    Sim::start_blocking(cfg).expect("simulator starts")
}

/// A connection once PostgreSQL takes queries again, after a `kill -9`
/// made the postmaster restart every backend.
pub fn reconnect(dsn: &str) -> Client {
    (0..150)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let mut c = Client::connect(dsn, NoTls).ok()?;
            c.query_one("SELECT 1", &[]).ok().map(|_| c)
        })
        .expect("PostgreSQL is back")
}

/// A date-time with an offset as UTC wall time (`yyyy-MM-dd HH:mm:ss`),
/// as a `timestamp` column holds it.
pub fn utc_wall_time(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s).expect("a date-time with an offset").naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()
}
