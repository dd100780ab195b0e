//! The background worker's test harness: the test cluster's worker runs in
//! database `postgres` with webhooks on 127.0.0.1:28816 (scripts/pg.sh), so
//! worker tests reset that database's extension and run one at a time.

use std::thread;
use std::time::{Duration, Instant};

use crate::{pg_dsn, Client, NoTls, Sim};

/// Where the test cluster's worker receives notifications.
pub const HOOK: &str = "http://127.0.0.1:28816/zoho/notify";

/// The worker's database, reset for one test; settings changed with
/// ALTER SYSTEM are reset when it is dropped.
pub struct WorkerDb {
    pub dsn: String,
    settings: Vec<String>,
}

impl WorkerDb {
    pub fn new(sim: &Sim) -> (WorkerDb, Client) {
        let dsn = format!("{} dbname=postgres", pg_dsn());
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        let url = sim.base_url();
        c.batch_execute(&format!(
            "SET client_min_messages = warning;
             DROP EXTENSION IF EXISTS zoho_fdw CASCADE;
             DROP TABLE IF EXISTS crm_leads, orders CASCADE;
             CREATE EXTENSION zoho_fdw;
             CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}', timeout_ms '5000');
             CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
               OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
             SELECT zoho_create_mirror('Leads', 'crm_leads');"
        ))
        .unwrap();
        (WorkerDb { dsn, settings: Vec::new() }, c)
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.dsn, NoTls).unwrap()
    }

    pub fn set(&mut self, c: &mut Client, name: &str, value: &str) {
        c.batch_execute(&format!("ALTER SYSTEM SET {name} = '{value}'")).unwrap();
        c.batch_execute("SELECT pg_reload_conf()").unwrap();
        self.settings.push(name.to_string());
    }
}

impl Drop for WorkerDb {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.dsn, NoTls) {
            for s in &self.settings {
                let _ = c.batch_execute(&format!("ALTER SYSTEM RESET {s}"));
            }
            let _ = c.batch_execute("SELECT pg_reload_conf()");
            let _ = c.batch_execute("SET client_min_messages = warning; DROP EXTENSION IF EXISTS zoho_fdw CASCADE; DROP TABLE IF EXISTS crm_leads, orders CASCADE");
        }
    }
}


pub fn orders(c: &mut Client, n: usize, from: usize) {
    c.execute(
        &format!(
            "INSERT INTO orders (order_id, name, quantity) SELECT 'SCH-' || g, 'Order ' || g, g FROM generate_series({}, {}) g",
            from,
            from + n - 1
        ),
        &[],
    )
    .unwrap();
}

pub fn orders_table(c: &mut Client) {
    c.batch_execute(
        "DROP TABLE IF EXISTS orders;
         CREATE TABLE orders (order_id text PRIMARY KEY, name text, quantity int,
                              synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text);
         CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();",
    )
    .unwrap();
}

pub fn wait_for(c: &mut Client, sql: &str, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if c.query_one(sql, &[]).map(|r| r.get::<_, bool>(0)).unwrap_or(false) {
            return Some(started.elapsed());
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Waits until `ok` holds, failing the test after `within`.
pub fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Schedules a push of `orders` whose upsert calls after the first hang for
/// 3 s, and returns once the push is in flight.
pub fn scheduled_push_in_flight(sim: &Sim, c: &mut Client) {
    sim.inject(crate::Fault::slow(3_000, 1).on_path("/crm/v8/Orders/upsert"));
    c.batch_execute("SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', mapping => '{\"order_id\": \"parent_id\"}')").unwrap();
    let started = Instant::now();
    while !sim.calls().iter().any(|c| c.endpoint == "records.upsert") && started.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
}

/// After an interrupted push ran again: all `n` rows synced, each exactly
/// once in Zoho.
pub fn every_order_once(sim: &Sim, c: &mut Client, n: usize) {
    wait_for(c, "SELECT bool_and(synced) FROM orders", Duration::from_secs(20)).expect("the push ran again and finished");
    let records = sim.records("Orders");
    let keys: std::collections::HashSet<String> = records.iter().map(|r| r["parent_id"].as_str().unwrap().to_string()).collect();
    assert_eq!((records.len(), keys.len()), (n, n), "every row once in Zoho");
    let unlinked: i64 = c.query_one("SELECT count(*) FROM orders WHERE zoho_id IS NULL", &[]).unwrap().get(0);
    assert_eq!(unlinked, 0);
}
