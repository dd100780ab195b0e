//! zoho_upsert_pending through a real PostgreSQL against the simulator:
//! 1. credits the simulator charged against the planner's lower bound;
//! 2. wall time against the ideal at 200 ms per call and 10 calls at once;
//! 3. local work (read pending rows, convert, build CSV, mark rows) in
//!    rows/s against `COPY (…) TO` of the same rows.
//! Needs ZOHO_FDW_TEST_PG (scripts/pg.sh starts a cluster).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use postgres::{Client, NoTls};
use zoho_api::job_wait::{JobCallback, JobCallbacks};
use zoho_api::planner::{plan, Mode};
use zoho_sim::{Sim, SimConfig};

const MAPPING: &str = r#"{"order_id": "parent_id", "customer": "Customer_Name"}"#;

/// Milliseconds of local work in a push: all of it, the checks before
/// sending (counting, keys, converting every value), and marking rows.
#[derive(Clone, Copy)]
struct Timing {
    local: f64,
    checks: f64,
    mark: f64,
    /// The backend thread's CPU time, in all and while marking.
    cpu: f64,
    mark_cpu: f64,
}

struct Db {
    c: Client,
    /// The last push's DEBUG1 timing line: local and remote milliseconds.
    timing: Arc<Mutex<Option<Timing>>>,
}

impl Db {
    fn new(dsn: &str, sim: &Sim, n: u64) -> Db {
        let mut admin = Client::connect(dsn, NoTls).expect("PostgreSQL");
        admin.batch_execute("DROP DATABASE IF EXISTS zoho_bench_push WITH (FORCE)").unwrap();
        admin.batch_execute("CREATE DATABASE zoho_bench_push").unwrap();
        let timing = Arc::new(Mutex::new(None));
        let sink = timing.clone();
        let mut config: postgres::Config = format!("{dsn} dbname=zoho_bench_push").parse().expect("a libpq connection string");
        config.notice_callback(move |n| {
            let msg = n.message();
            if let Some(rest) = msg.strip_prefix("zoho_fdw: push timing: ") {
                let field = |k: &str| rest.split_whitespace().find_map(|kv| kv.strip_prefix(k)).and_then(|v| v.parse::<f64>().ok());
                if let (Some(local), Some(checks), Some(mark), Some(cpu), Some(mark_cpu)) =
                    (field("local_ms="), field("checks_ms="), field("mark_ms="), field("cpu_ms="), field("mark_cpu_ms="))
                {
                    *sink.lock().unwrap() = Some(Timing { local, checks, mark, cpu, mark_cpu });
                }
            }
        });
        let mut c = config.connect(NoTls).expect("bench database");
        let url = sim.base_url();
        c.batch_execute(&format!(
            "CREATE EXTENSION zoho_fdw;
             CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}', timeout_ms '60000');
             CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
             CREATE TABLE orders (order_id text PRIMARY KEY, name text, customer text, amount numeric(12,2), order_date date, quantity int,
                                  synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text, zoho_synced_at timestamptz);
             CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();
             INSERT INTO orders (order_id, name, customer, amount, order_date, quantity)
             SELECT 'ORD-' || g, 'Order ' || g, 'Customer ' || g % 97, g * 1.5, date '2026-01-01' + g % 365, g FROM generate_series(1, {n}) g;"
        ))
        .unwrap();
        c.batch_execute("VACUUM ANALYZE orders").unwrap();
        Db { c, timing }
    }

    /// Pushes; returns (mode used, rows synced).
    fn push(&mut self, mode: &str) -> (String, i64) {
        let row = self.c.query_one("SELECT mode, synced FROM zoho_upsert_pending('orders', 'Orders', mode => $1, mapping => $2::text::jsonb)", &[&mode, &MAPPING]).unwrap();
        (row.get(0), row.get(1))
    }
}

/// `push [credits|wall|local]… [upsert|bulk|auto]…`: the tables named (all
/// by default), and in them the rows of the modes named (all by default).
pub fn run(args: &[String]) {
    println!("\n== zoho_upsert_pending: credits, wall time and local work ==");
    let Ok(dsn) = std::env::var("ZOHO_FDW_TEST_PG") else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed (scripts/pg.sh start)");
        return;
    };
    crate::installed::warn_unless_release();
    let parts: Vec<&str> = args.iter().map(String::as_str).filter(|a| ["credits", "wall", "local"].contains(a)).collect();
    let modes: Vec<&str> = args.iter().map(String::as_str).filter(|a| ["upsert", "bulk", "auto"].contains(a)).collect();
    let part = |p: &str| parts.is_empty() || parts.contains(&p);
    let mode = |m: &str| modes.is_empty() || modes.contains(&m);
    if part("credits") {
        credits(&dsn);
    }
    if part("wall") {
        wall_time(&dsn, &mode);
    }
    if part("local") {
        local_rate(&dsn, &mode);
    }
}

fn credits(dsn: &str) {
    println!("\ncredits the simulator charged for the push (metadata calls excluded) against the planner's lower bound");
    println!("(503 per bulk job: create 500 + upload + one status read + download; 1 per 10 records by upsert)");
    println!("{:>8} {:>12} {:>8} {:>8} {:>8} {:>9}", "N", "mode", "jobs", "upserts", "credits", "/bound");
    for n in [100u64, 2_000, 5_000, 25_000, 30_000, 100_000] {
        let sim = Sim::start_blocking(SimConfig::default().bulk_step_ms(20)).expect("simulator");
        let mut db = Db::new(dsn, &sim, n);
        let (mode, synced) = db.push("auto");
        assert_eq!(synced, n as i64, "every row synced");
        let by = sim.credits().by_endpoint;
        let spent: u64 = by.iter().filter(|(e, _)| !e.starts_with("meta.")).map(|(_, u)| u.credits).sum();
        let jobs = by.get("bulk_write.create").map_or(0, |u| u.calls);
        let upserts = by.get("records.upsert").map_or(0, |u| u.calls);
        let bound = plan(n, Mode::Auto).credits;
        println!("{n:>8} {mode:>12} {jobs:>8} {upserts:>8} {spent:>8} {:>9.3}", spent as f64 / bound as f64);
    }
}

/// Runs per row of the wall-time and local-work tables: single runs move
/// the bulk ratios by up to 0.5 on an idle machine.
const RUNS: usize = 3;

/// The run whose `key` is the median of `runs`, and the key's range.
fn median_run<T>(mut runs: Vec<T>, key: impl Fn(&T) -> f64) -> (T, f64, f64) {
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let (lo, hi) = (key(&runs[0]), key(&runs[runs.len() - 1]));
    (runs.swap_remove(runs.len() / 2), lo, hi)
}

fn wall_time(dsn: &str, wanted: &dyn Fn(&str) -> bool) {
    const LATENCY: u64 = 200;
    const STEP: u64 = 100;
    println!("\nwall time at {LATENCY} ms per call, 10 calls at once, bulk jobs running {} ms, against the ideal", 2 * STEP);
    println!("(ideal: per bulk job upload, create, the job, one status read and the download in sequence, and beside the jobs upsert calls");
    println!(" 10 at a time (9 while a job runs) at one latency each: the longer of the two;");
    println!(" zoho-api alone: the same rows pushed by the client straight from memory to a fresh simulator, no PostgreSQL, in the same run,");
    println!(" its bulk jobs woken by their callback as the push's are, its upsert calls beside them: the simulator's own floor;");
    println!(" each row is the median of {RUNS} runs by ratio, every figure of it from that one run, with the ratio's range over the runs)");
    println!("{:>8} {:>8} {:>10} {:>10} {:>7} {:>11} {:>15} {:>9}", "N", "mode", "ideal s", "actual s", "ratio", "range", "zoho-api alone s", "ratio");
    for (n, mode) in [(2_000u64, "upsert"), (10_000, "upsert"), (100_000, "upsert"), (25_000, "bulk"), (30_000, "auto")].into_iter().filter(|(_, m)| wanted(m)) {
        let p = plan(n, if mode == "bulk" { Mode::Bulk } else if mode == "upsert" { Mode::Upsert } else { Mode::Auto });
        // Bulk jobs one after another; upsert calls beside them, 10 at once
        // (9 while a job's own call holds a place).
        let places = if p.bulk_jobs > 0 { 9 } else { 10 };
        let ideal = (p.upsert_calls.div_ceil(places) * LATENCY).max(p.bulk_jobs * (4 * LATENCY + 2 * STEP)) as f64 / 1e3;
        let runs: Vec<(f64, f64)> = (0..RUNS)
            .map(|_| {
                let sim = Sim::start_blocking(SimConfig::default().latency_ms(LATENCY).concurrency(10).bulk_step_ms(STEP)).expect("simulator");
                let mut db = Db::new(dsn, &sim, n);
                // Warm the metadata caches, as zoho-api alone does: the ideal
                // has no metadata call. The fields are the session's; the
                // org's zgid (for bulk uploads) is kept in shared memory once
                // anything read the org.
                db.c.batch_execute(&format!("BEGIN; UPDATE orders SET synced = true; SELECT zoho_upsert_pending('orders', 'Orders', mapping => '{MAPPING}'); ROLLBACK; SELECT zoho_ping();")).unwrap();
                let started = Instant::now();
                let (_, synced) = db.push(mode);
                let actual = started.elapsed().as_secs_f64();
                assert_eq!(synced, n as i64);
                (actual, client_alone(n, &p, LATENCY, STEP))
            })
            .collect();
        let ((actual, alone), lo, hi) = median_run(runs, |r| r.0 / ideal);
        let range = format!("{:.2}-{:.2}", lo, hi);
        println!("{n:>8} {mode:>8} {ideal:>10.2} {actual:>10.2} {:>7.2} {range:>11} {alone:>15.2} {:>9.2}", actual / ideal, actual / alone);
    }
}

/// The same plan's calls made by zoho-api alone, rows already in memory,
/// against a fresh simulator at the same latency: what is left once
/// PostgreSQL is out of the way.
fn client_alone(n: u64, p: &zoho_api::planner::Plan, latency: u64, step: u64) -> f64 {
    use zoho_api::push::{PushField, PushSpec};
    use zoho_api::{Credentials, Endpoints, ZohoClient};
    let sim = Sim::start_blocking(SimConfig::default().latency_ms(latency).concurrency(10).bulk_step_ms(step)).expect("simulator");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = sim.base_url();
        // Bulk jobs wake on their callback and then read their status once,
        // as the push's do through the worker's listener.
        let callbacks = Callbacks::listen().await;
        let client_with = |places: usize| {
            let mut cfg = zoho_api::http::ClientConfig::new(Endpoints::custom(&url, &url, None).unwrap());
            cfg.job_callbacks = Some(callbacks.clone());
            cfg.max_concurrency = places;
            ZohoClient::new(cfg, Credentials::new("sim-client-id", "sim-client-secret", "sim-refresh-token")).unwrap()
        };
        // Upsert calls beside jobs leave one place of the ten to the jobs'
        // calls, as the push's do.
        let client = client_with(10);
        let upsert_client = client_with(if p.bulk_jobs > 0 { 9 } else { 10 });
        let field = |name: &str, data_type: &str| PushField { api_name: name.into(), data_type: data_type.into() };
        let spec = PushSpec { module: "Orders".into(), fields: vec![field("parent_id", "text"), field("Name", "text"), field("Customer_Name", "text"), field("Amount", "currency"), field("Order_Date", "date"), field("Quantity", "integer")] };
        let rows: Vec<Vec<serde_json::Value>> = (1..=n)
            .map(|g| vec![format!("ORD-{g}").into(), format!("Order {g}").into(), format!("Customer {}", g % 97).into(), serde_json::json!(g as f64 * 1.5), "2026-01-01".into(), serde_json::json!(g)])
            .collect();
        // Warm the token, as the push's warm-up does, and the org read a
        // bulk upload needs (the push makes it while it reads the rows).
        client.push_upsert(&spec, &rows[..1]).await.unwrap();
        upsert_client.push_upsert(&spec, &rows[..1]).await.unwrap();
        client.org().await.unwrap();
        let started = Instant::now();
        let (by_job, by_upsert) = rows.split_at(p.bulk_records as usize);
        // The jobs and the upsert calls beside them, as the push runs them.
        let jobs = async {
            if !by_job.is_empty() {
                client.push_bulk(&spec, by_job, &mut |_| {}).await.unwrap();
            }
        };
        let upserts = async {
            if !by_upsert.is_empty() {
                upsert_client.push_upsert(&spec, by_upsert).await.unwrap();
            }
        };
        tokio::join!(jobs, upserts);
        started.elapsed().as_secs_f64()
    })
}

/// Job callbacks for zoho-api alone: a listener on loopback that counts
/// the POSTs it gets, and a place per job that sees each arrival once.
struct Callbacks {
    url: String,
    arrived: Arc<AtomicU32>,
}

impl Callbacks {
    async fn listen() -> Arc<dyn JobCallbacks> {
        let arrived = Arc::new(AtomicU32::new(0));
        let count = arrived.clone();
        let app = axum::Router::new().route(
            "/job",
            axum::routing::post(move || async move {
                count.fetch_add(1, Ordering::AcqRel);
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/job", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Arc::new(Callbacks { url, arrived })
    }
}

impl JobCallbacks for Callbacks {
    fn register(&self) -> Option<Box<dyn JobCallback>> {
        let seen = AtomicU32::new(self.arrived.load(Ordering::Acquire));
        Some(Box::new(Place { url: self.url.clone(), arrived: self.arrived.clone(), seen }))
    }
}

struct Place {
    url: String,
    arrived: Arc<AtomicU32>,
    seen: AtomicU32,
}

impl JobCallback for Place {
    fn url(&self) -> &str {
        &self.url
    }
    fn take(&self) -> bool {
        let now = self.arrived.load(Ordering::Acquire);
        self.seen.swap(now, Ordering::AcqRel) != now
    }
}

fn local_rate(dsn: &str, wanted: &dyn Fn(&str) -> bool) {
    println!("\nlocal work of a push (read and convert pending rows, build the CSV, mark rows synced) against COPY of the same rows");
    println!("(cpu: the backend thread's CPU time, while marking and over the whole push, waits on Zoho included; wall minus cpu is time spent waiting for a core, a lock or the disk;");
    println!(" /UPDATE cpu: the UPDATE's CPU time (the backend's, read from /proc) against the push's: the same ratio without the waits for a core");
    println!(" that the simulator, on the same machine, causes while the push's calls are in flight;");
    println!(" each row is the median of {RUNS} runs by /UPDATE, every figure of it from that one run, with the range of /UPDATE over the runs)");
    println!(
        "{:>8} {:>8} {:>12} {:>12} {:>7} {:>10} {:>8} {:>13} {:>9} {:>13} {:>14} {:>8} {:>11} {:>14} {:>12}",
        "N", "mode", "push rows/s", "COPY rows/s", "ratio", "checks ms", "mark ms", "mark cpu ms", "local ms", "push cpu ms", "UPDATE rows/s", "/UPDATE", "range", "UPDATE cpu ms", "/UPDATE cpu"
    );
    for (n, mode) in [(100_000u64, "bulk"), (100_000, "upsert")].into_iter().filter(|(_, m)| wanted(m)) {
        let runs: Vec<(Timing, f64, f64, f64)> = (0..RUNS)
            .map(|_| {
                let sim = Sim::start_blocking(SimConfig::default().bulk_step_ms(0)).expect("simulator");
                let mut db = Db::new(dsn, &sim, n);
                let copy_started = Instant::now();
                db.c.batch_execute("COPY (SELECT order_id, name, customer, amount, order_date, quantity FROM orders WHERE NOT synced) TO '/dev/null'").unwrap();
                let copy = copy_started.elapsed().as_secs_f64();
                db.c.batch_execute("SET client_min_messages = debug1").unwrap();
                let (_, synced) = db.push(mode);
                assert_eq!(synced, n as i64);
                let t = db.timing.lock().unwrap().expect("the push reports its timing at DEBUG1");
                // What marking costs at best: one UPDATE of the same rows.
                let pid: i32 = db.c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
                let (update_started, cpu_before) = (Instant::now(), backend_cpu(pid));
                db.c.batch_execute("UPDATE orders SET zoho_synced_at = now()").unwrap();
                (t, copy, update_started.elapsed().as_secs_f64(), backend_cpu(pid) - cpu_before)
            })
            .collect();
        let ((t, copy, update, update_cpu), lo, hi) = median_run(runs, |(t, _, update, _)| update / (t.local / 1e3));
        let local = t.local / 1e3;
        let range = format!("{:.2}-{:.2}", lo, hi);
        println!(
            "{n:>8} {mode:>8} {:>12.0} {:>12.0} {:>7.3} {:>10.0} {:>8.0} {:>13.0} {:>9.0} {:>13.0} {:>14.0} {:>8.2} {range:>11} {:>14.0} {:>12.2}",
            n as f64 / local,
            n as f64 / copy,
            copy / local,
            t.checks,
            t.mark,
            t.mark_cpu,
            t.local,
            t.cpu,
            n as f64 / update,
            update / local,
            update_cpu * 1e3,
            update_cpu / (t.cpu / 1e3)
        );
    }
}

/// CPU seconds a backend has used so far: its main thread's utime and
/// stime, in /proc's clock ticks (always 100 a second). NaN when the
/// backend is not on this machine.
fn backend_cpu(pid: i32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")) else { return f64::NAN };
    // After the command, which is in parentheses and may hold spaces:
    // utime and stime are the 12th and 13th fields (14 and 15 of stat).
    let fields: Vec<&str> = stat[stat.rfind(')').map_or(0, |i| i + 2)..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}
