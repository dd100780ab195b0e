//! A legacy UPDATE → the record changed in Zoho, under a near-real-time
//! push schedule (min_pending 100, max_wait 5 s) with 200 ms per API call:
//! a steady stream of updates (which should go out by threshold) and a
//! trickle below it (which should go out by max_wait). Prints latency
//! percentiles against the schedule's own limits, and credits against the
//! lower bound. Uses the test cluster's worker (scripts/pg.sh) and needs
//! ZOHO_FDW_TEST_PG.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::Client;
use zoho_sim::{Sim, SimConfig};

const ROWS: usize = 2_000;
const LATENCY_MS: u64 = 200;
const MIN_PENDING: usize = 100;
const MAX_WAIT_S: f64 = 5.0;

/// Updates `n` rows, one every `every`, while a second thread watches
/// Zoho for each change; returns each one's latency in seconds, in order.
fn stream(c: &mut Client, sim: &Sim, first: usize, n: usize, every: Duration, tag: &str) -> Vec<f64> {
    let done = AtomicBool::new(false);
    let (sent, seen) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while seen.len() < n && Instant::now() < deadline {
                for r in sim.records("Orders") {
                    let (Some(key), Some(name)) = (r["parent_id"].as_str(), r["Name"].as_str()) else { continue };
                    if name.starts_with(tag) {
                        seen.entry(key.to_string()).or_insert_with(Instant::now);
                    }
                }
                if done.load(Ordering::Relaxed) && Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        let mut sent: Vec<(String, Instant)> = Vec::new();
        let started = Instant::now();
        for i in 0..n {
            let key = format!("NRT-{}", first + i);
            if let Some(wait) = (started + every * i as u32).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            c.execute("UPDATE orders SET name = $2 WHERE order_id = $1", &[&key, &format!("{tag} {i}")]).unwrap();
            sent.push((key, Instant::now()));
        }
        done.store(true, Ordering::Relaxed);
        (sent, watcher.join().unwrap())
    });
    // In the order sent; infinite for a change never seen.
    sent.iter().map(|(k, t)| seen.get(k).map_or(f64::INFINITY, |s| s.saturating_duration_since(*t).as_secs_f64())).collect()
}

fn sorted(lat: &[f64]) -> Vec<f64> {
    let mut v = lat.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn pct(lat: &[f64], p: f64) -> f64 {
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)]
}

pub fn run() {
    println!("\n== near-real-time push: a legacy UPDATE → the record changed in Zoho (min_pending {MIN_PENDING}, max_wait {MAX_WAIT_S} s, {LATENCY_MS} ms a call) ==");
    let Some(dsn) = crate::worker_db::dsn() else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed and its worker running (scripts/pg.sh start)");
        return;
    };
    crate::installed::warn_unless_release();
    let sim = Sim::start_blocking(SimConfig::default().latency_ms(LATENCY_MS)).expect("simulator");
    let mut c = crate::worker_db::reset(
        &dsn,
        &sim,
        "orders",
        &format!(
            "CREATE TABLE orders (order_id text PRIMARY KEY, name text, quantity int, synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text);
             CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();
             INSERT INTO orders (order_id, name, quantity) SELECT 'NRT-' || g, 'Order ' || g, g FROM generate_series(0, {last}) g;
             SELECT zoho_upsert_pending('orders', 'Orders', key_field => 'parent_id', mapping => '{{\"order_id\": \"parent_id\"}}');",
            last = ROWS - 1
        ),
    );
    c.batch_execute(&format!(
        "SELECT zoho_schedule_push('orders', 'Orders', key_field => 'parent_id', min_pending => {MIN_PENDING}, max_wait => '{MAX_WAIT_S} seconds',
                                   mapping => '{{\"order_id\": \"parent_id\"}}')"
    ))
    .unwrap();
    // Let the schedule's first (empty) check pass.
    std::thread::sleep(Duration::from_secs(2));
    let before = sim.credits().used;

    // Steady: 200 updates a second for 5 s; batches of 100 fill in 0.5 s.
    // The last rows (fewer than min_pending after the last full batch)
    // wait for max_wait, as the schedule says.
    let (rate, n) = (200.0, 1_000);
    let steady = stream(&mut c, &sim, 0, n, Duration::from_secs_f64(1.0 / rate), "Steady");
    let fill = MIN_PENDING as f64 / rate;
    let call = LATENCY_MS as f64 / 1e3;
    // Ideal: a row waits for its batch to fill (0 to `fill` s) plus one call.
    let (ideal_p50, ideal_max) = (fill / 2.0 + call, fill + call);
    let full = sorted(&steady[..n - MIN_PENDING]);
    let tail = sorted(&steady[n - MIN_PENDING..]);
    println!(
        "steady {rate:.0}/s, first {} rows: p50 {:.2} s, p99 {:.2} s; ideal p50 {ideal_p50:.2} s, max {ideal_max:.2} s → p50/ideal {:.2}, p99/ideal max {:.2}",
        full.len(),
        pct(&full, 0.5),
        pct(&full, 0.99),
        pct(&full, 0.5) / ideal_p50,
        pct(&full, 0.99) / ideal_max
    );
    let limit = MAX_WAIT_S + call;
    let tail_max = tail[tail.len() - 1];
    println!("steady, last {MIN_PENDING} rows (the remainder waits for max_wait): max {tail_max:.2} s; limit max_wait + one call {limit:.2} s → {:.2}", tail_max / limit);
    let steady_credits = sim.credits().used - before;
    println!("steady credits {steady_credits} against the lower bound {} (1 per 10 records) → {:.2}", n / 10, steady_credits as f64 / (n / 10) as f64);

    // Trickle: 1 update a second for 12 s, never reaching the threshold:
    // each waits at most max_wait (after the previous push) plus one call.
    let before = sim.credits().used;
    let trickle = sorted(&stream(&mut c, &sim, n, 12, Duration::from_secs(1), "Trickle"));
    let trickle_max = trickle[trickle.len() - 1];
    println!(
        "trickle 1/s, 12 rows: p50 {:.2} s, max {trickle_max:.2} s; limit max_wait + one call {limit:.2} s → max/limit {:.2}",
        pct(&trickle, 0.5),
        trickle_max / limit
    );
    println!("trickle credits {} (one call per push of a few rows)", sim.credits().used - before);
    crate::worker_db::clean(&mut c, "orders");
}
