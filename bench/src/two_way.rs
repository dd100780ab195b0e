//! Two-way sync against the one-way flows it is made of: 10,000 edits, half
//! made here and half in Zoho. Credits and wall time from the edits until
//! both sides agree, for one two-way table (zoho_sync) and, in the same
//! run, for the one-way flows alone: the local half pushed from a push
//! table, the Zoho half pulled into a mirror. Each scenario has a simulator
//! of its own, so its credits are its own. Uses the test cluster's worker
//! (scripts/pg.sh) and needs ZOHO_FDW_TEST_PG.

use std::time::{Duration, Instant};

use postgres::Client;
use serde_json::json;
use zoho_sim::{Sim, SimConfig};

const HALF: usize = 5_000;
const PULL_EVERY: &str = "2 seconds";

fn wait(c: &mut Client, what: &str, sql: &str) -> Duration {
    let started = Instant::now();
    loop {
        if c.query_one(sql, &[]).unwrap().get::<_, bool>(0) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{what}: no convergence in 10 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records of Orders created in Zoho's UI (no credits).
fn zoho_records(sim: &Sim, prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| sim.ui_create("Orders", json!({"Name": format!("{prefix} {i}"), "parent_id": format!("{prefix}-{i}")})).unwrap()).collect()
}

fn edit_in_zoho(sim: &Sim, ids: &[String]) {
    for id in ids {
        sim.ui_edit("Orders", id, json!({"Customer_Name": "edited in Zoho"})).unwrap();
    }
}

/// Credits and wall time of one scenario's edits, from the edits on.
struct Figures {
    credits: u64,
    wall: Duration,
}

fn measure(sim: &Sim, c: &mut Client, edit: impl FnOnce(&mut Client), until: &[(&str, &str)]) -> Figures {
    let before = sim.credits().used;
    let started = Instant::now();
    edit(c);
    for (what, sql) in until {
        wait(c, what, sql);
    }
    // Whatever the flows still do once both sides agree counts too.
    std::thread::sleep(Duration::from_secs(5));
    Figures { credits: sim.credits().used - before, wall: started.elapsed() - Duration::from_secs(5) }
}

/// The local half: a table of HALF rows with a sync flag and its trigger,
/// then `flows` (the flows that keep it).
fn local_half(dsn: &str, sim: &Sim, flows: &str) -> Client {
    crate::worker_db::reset(
        dsn,
        sim,
        "orders",
        &format!(
            "CREATE TABLE orders (parent_id text PRIMARY KEY, name text NOT NULL, customer_name text, quantity bigint,
               synced boolean NOT NULL DEFAULT false, zoho_id bigint UNIQUE, zoho_error text, zoho_synced_at timestamptz,
               zoho_changed_at timestamptz, modified_time timestamptz);
             CREATE TRIGGER pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();
             INSERT INTO orders (parent_id, name) SELECT 'L-' || g, 'Order ' || g FROM generate_series(1, {HALF}) g;
             {flows}"
        ),
    )
}

fn push_alone(dsn: &str) -> Figures {
    let sim = Sim::start_blocking(SimConfig::default()).expect("simulator");
    let mut c = local_half(dsn, &sim, "SELECT zoho_upsert_pending('orders', 'Orders', 'parent_id');
         SELECT zoho_schedule_push('orders', 'Orders', 'parent_id', min_pending => 1, max_wait => '1 second');");
    let f = measure(&sim, &mut c, |c| c.batch_execute("UPDATE orders SET quantity = 7").unwrap(), &[("the push", "SELECT NOT EXISTS (SELECT 1 FROM orders WHERE NOT synced)")]);
    crate::worker_db::clean(&mut c, "orders");
    f
}

fn pull_alone(dsn: &str) -> Figures {
    let sim = Sim::start_blocking(SimConfig::default()).expect("simulator");
    let ids = zoho_records(&sim, "Z", HALF);
    let mut c = crate::worker_db::reset(
        dsn,
        &sim,
        "orders_mirror",
        &format!(
            "SELECT zoho_create_mirror('Orders', 'orders_mirror');
             SELECT zoho_bulk_export('Orders', 'orders_mirror');
             SELECT zoho_schedule_pull('Orders', 'orders_mirror', every => '{PULL_EVERY}');"
        ),
    );
    // The pull's first run is a full load: let it pass first.
    wait(&mut c, "the first pull", "SELECT EXISTS (SELECT 1 FROM zoho.pull_schedules WHERE synced_until IS NOT NULL)");
    let until = format!("SELECT count(*) = {HALF} FROM orders_mirror WHERE customer_name = 'edited in Zoho'");
    let f = measure(&sim, &mut c, |_| edit_in_zoho(&sim, &ids), &[("the pull", until.as_str())]);
    crate::worker_db::clean(&mut c, "orders_mirror");
    f
}

fn two_way(dsn: &str) -> (Figures, i64) {
    let sim = Sim::start_blocking(SimConfig::default()).expect("simulator");
    let ids = zoho_records(&sim, "Z", HALF);
    let mut c = local_half(dsn, &sim, &format!("SELECT zoho_sync('orders', 'Orders', 'parent_id', 'newest_wins', every => '{PULL_EVERY}', max_wait => '1 second');"));
    let total = 2 * HALF;
    wait(&mut c, "the first push and pull", &format!("SELECT count(*) = {total} AND bool_and(synced) FROM orders"));
    wait(&mut c, "the first pull's end", "SELECT EXISTS (SELECT 1 FROM zoho.pull_schedules WHERE synced_until IS NOT NULL)");
    std::thread::sleep(Duration::from_secs(5));
    let local = format!("SELECT NOT EXISTS (SELECT 1 FROM orders WHERE NOT synced) AND (SELECT count(*) = {HALF} FROM orders WHERE quantity = 7)");
    let zoho = format!("SELECT count(*) = {HALF} FROM orders WHERE customer_name = 'edited in Zoho'");
    let f = measure(
        &sim,
        &mut c,
        |c| {
            c.batch_execute("UPDATE orders SET quantity = 7 WHERE parent_id LIKE 'L-%'").unwrap();
            edit_in_zoho(&sim, &ids);
        },
        &[("the push", local.as_str()), ("the pull", zoho.as_str())],
    );
    let in_zoho = sim.records("Orders").iter().filter(|r| r["Quantity"] == 7).count();
    assert_eq!(in_zoho, HALF, "every local edit reached Zoho");
    let conflicts: i64 = c.query_one("SELECT count(*) FROM zoho.conflicts", &[]).unwrap().get(0);
    crate::worker_db::clean(&mut c, "orders");
    (f, conflicts)
}

pub fn run() {
    println!("\n== two-way sync: {HALF} edits here and {HALF} in Zoho on one table, against the one-way flows (pull every {PULL_EVERY}) ==");
    let Some(dsn) = crate::worker_db::dsn() else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed and its worker running (scripts/pg.sh start)");
        return;
    };
    let push = push_alone(&dsn);
    let pull = pull_alone(&dsn);
    let (both, conflicts) = two_way(&dsn);
    let one_way = push.credits + pull.credits;
    println!("one-way: push {} credits in {:.1} s, pull {} credits in {:.1} s", push.credits, push.wall.as_secs_f64(), pull.credits, pull.wall.as_secs_f64());
    println!(
        "two-way: {} credits in {:.1} s ({conflicts} conflicts) → credits / one-way sum {:.2} (goal ≤ 1.05); wall / slower one-way flow {:.2}",
        both.credits,
        both.wall.as_secs_f64(),
        both.credits as f64 / one_way as f64,
        both.wall.as_secs_f64() / push.wall.max(pull.wall).as_secs_f64()
    );
}
