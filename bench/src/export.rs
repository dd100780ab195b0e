//! zoho_bulk_export through a real PostgreSQL against the simulator:
//! 1. apply rate, from a downloaded page to rows in the table (the export's
//!    own DEBUG1 timing), against `COPY FROM` of the same rows into an
//!    identical empty table;
//! 2. end-to-end time for N rows;
//! 3. the backend's peak growth of private memory (RssAnon, sampled every
//!    20 ms from /proc), which should stay flat in N.
//! Needs ZOHO_FDW_TEST_PG and root (to read the backend's /proc entry).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use zoho_sim::{Sim, SimConfig};

fn rss_anon_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("RssAnon:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

struct Run {
    rows: i64,
    wall: f64,
    /// Downloading every page's zip alone, with zoho-api, after its job.
    download_ms: f64,
    /// Every page's job, created to completed, as zoho-api alone sees it.
    job_ms: f64,
    apply_ms: f64,
    copy_ms: f64,
    peak_growth_mb: f64,
}

fn run_one(dsn: &str, n: usize) -> Run {
    let sim = Sim::start_blocking(SimConfig::default().seed("Leads", n).bulk_step_ms(20)).expect("simulator");
    let mut admin = Client::connect(dsn, NoTls).expect("PostgreSQL");
    admin.batch_execute("DROP DATABASE IF EXISTS zoho_bench_export WITH (FORCE)").unwrap();
    admin.batch_execute("CREATE DATABASE zoho_bench_export").unwrap();
    let apply = Arc::new(Mutex::new(0.0f64));
    let sink = apply.clone();
    let mut config: postgres::Config = format!("{dsn} dbname=zoho_bench_export").parse().unwrap();
    config.notice_callback(move |n| {
        if let Some(rest) = n.message().strip_prefix("zoho_fdw: export timing: ") {
            if let Some(ms) = rest.split_whitespace().find_map(|kv| kv.strip_prefix("apply_ms=")).and_then(|v| v.parse::<f64>().ok()) {
                *sink.lock().unwrap() += ms;
            }
        }
    });
    let mut c = config.connect(NoTls).unwrap();
    let url = sim.base_url();
    c.batch_execute(&format!(
        "CREATE EXTENSION zoho_fdw;
         CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}', timeout_ms '600000');
         CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
         SELECT zoho_create_mirror('Leads', 'leads_mirror');
         SET client_min_messages = debug1;"
    ))
    .unwrap();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let base = rss_anon_kb(pid).expect("the backend's /proc status (run as root)");
    let peak = Arc::new(Mutex::new(base));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = rss_anon_kb(pid) {
                    let mut p = peak.lock().unwrap();
                    *p = (*p).max(kb);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // First, while Zoho's download window (10 a minute) is unused.
    let (job_ms, download_ms) = download_alone(&sim);
    // Three exports into the emptied table and three COPYs into an emptied
    // twin, interleaved; the medians are compared.
    let file = format!("/tmp/zoho_bench_export_{}.csv", std::process::id());
    let (mut applies, mut copies, mut walls) = (Vec::new(), Vec::new(), Vec::new());
    let mut rows = 0;
    for round in 0..ROUNDS {
        c.batch_execute("TRUNCATE leads_mirror; SET client_min_messages = debug1").unwrap();
        *apply.lock().unwrap() = 0.0;
        let started = Instant::now();
        rows = c.query_one("SELECT zoho_bulk_export('Leads', 'leads_mirror')", &[]).unwrap().get(0);
        walls.push(started.elapsed().as_secs_f64());
        assert_eq!(rows, n as i64, "every row written");
        applies.push(*apply.lock().unwrap());
        if round == 0 {
            c.batch_execute(&format!(
                "SET client_min_messages = warning;
                 COPY leads_mirror TO '{file}' (FORMAT csv);
                 CREATE TABLE twin (LIKE leads_mirror INCLUDING ALL);"
            ))
            .unwrap();
        }
        c.batch_execute("SET client_min_messages = warning; TRUNCATE twin").unwrap();
        let copy_started = Instant::now();
        c.batch_execute(&format!("COPY twin FROM '{file}' (FORMAT csv)")).unwrap();
        copies.push(copy_started.elapsed().as_secs_f64() * 1e3);
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let _ = std::fs::remove_file(&file);
    let peak_growth_mb = (*peak.lock().unwrap() - base) as f64 / 1024.0;
    let (apply_ms, copy_ms, wall) = (median(applies), median(copies), median(walls));
    Run { rows, wall, download_ms, job_ms, apply_ms, copy_ms, peak_growth_mb }
}

/// The floor's network half: each page's Bulk Read job run to its end
/// and then downloaded (every field, as the mirror has); milliseconds of
/// the jobs and of the downloads.
fn download_alone(sim: &Sim) -> (f64, f64) {
    use zoho_api::bulk_read::BulkReadQuery;
    use zoho_api::http::{ClientConfig, PollPolicy};
    use zoho_api::{Credentials, Endpoints, ZohoClient};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let url = sim.base_url();
        let mut cfg = ClientConfig::new(Endpoints::custom(&url, &url, None).unwrap());
        cfg.poll = PollPolicy { initial: Duration::from_millis(20), ..Default::default() };
        cfg.downloads_per_window = 1_000;
        let client = ZohoClient::new(cfg, Credentials::new("sim-client-id", "sim-client-secret", "sim-refresh-token")).unwrap();
        let query = BulkReadQuery { module: "Leads".into(), ..Default::default() };
        let (mut token, mut jobs, mut total) = (None::<String>, 0.0, 0.0);
        loop {
            let t = Instant::now();
            let id = client.bulk_read_create(&query, token.as_deref()).await.unwrap();
            let job = client.bulk_read_wait(&id, &mut |_| {}).await.unwrap();
            jobs += t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            drop(client.bulk_read_download_file(&job).await.unwrap());
            total += t.elapsed().as_secs_f64() * 1e3;
            token = job.result.as_ref().filter(|r| r.more_records).and_then(|r| r.next_page_token.clone());
            if token.is_none() {
                return (jobs, total);
            }
        }
    })
}

pub fn run(sizes: &[usize]) {
    println!("\n== zoho_bulk_export: apply rate against COPY FROM, end to end, backend memory ==");
    let Ok(dsn) = std::env::var("ZOHO_FDW_TEST_PG") else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed (scripts/pg.sh start)");
        return;
    };
    crate::installed::warn_unless_release();
    println!("(apply: from a downloaded page to rows in the table; COPY: the same rows from a CSV file into an identical empty table; medians of {ROUNDS} interleaved runs;");
    println!(" floor: every page's download alone plus that COPY; sim floor: the same plus every page's job run to its end, as zoho-api alone sees it;");
    println!(" end to end: zoho_bulk_export, jobs included)");
    println!("{:>9} {:>12} {:>12} {:>7} {:>12} {:>9} {:>7} {:>11} {:>7} {:>16}", "rows", "apply rows/s", "COPY rows/s", "ratio", "end-to-end s", "floor s", "ratio", "sim floor s", "ratio", "peak memory MB");
    for &n in sizes {
        let r = run_one(&dsn, n);
        let apply = r.rows as f64 / (r.apply_ms / 1e3);
        let copy = r.rows as f64 / (r.copy_ms / 1e3);
        let floor = (r.download_ms + r.copy_ms) / 1e3;
        let sim_floor = floor + r.job_ms / 1e3;
        println!(
            "{:>9} {apply:>12.0} {copy:>12.0} {:>7.2} {:>12.2} {floor:>9.2} {:>7.2} {sim_floor:>11.2} {:>7.2} {:>16.1}",
            r.rows,
            copy_ratio(apply, copy),
            r.wall,
            r.wall / floor,
            r.wall / sim_floor,
            r.peak_growth_mb
        );
    }
}

fn copy_ratio(apply: f64, copy: f64) -> f64 {
    apply / copy
}

const ROUNDS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
