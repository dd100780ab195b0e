//! Notification → visible in the mirror, for a burst of 1,000 edits made in
//! the simulator's UI: p50 and p99 of the time from each edit until the
//! mirror shows it (polled every 10 ms). Uses the test cluster's worker
//! (database postgres, webhooks on 127.0.0.1:28816; scripts/pg.sh) and
//! needs ZOHO_FDW_TEST_PG.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use serde_json::json;
use zoho_sim::{Sim, SimConfig};

const BURST: usize = 1_000;

pub fn run() {
    println!("\n== notifications: an edit in Zoho → visible in the mirror, burst of {BURST} ==");
    let Some(dsn) = crate::worker_db::dsn() else {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed and its worker running (scripts/pg.sh start)");
        return;
    };
    let sim = Sim::start_blocking(SimConfig::default().seed("Leads", 5_000).bulk_step_ms(20)).expect("simulator");
    let mut c = crate::worker_db::reset(
        &dsn,
        &sim,
        "crm_leads",
        "SELECT zoho_create_mirror('Leads', 'crm_leads');
         SELECT zoho_watch('Leads', 'crm_leads', notify_url => 'http://127.0.0.1:28816/zoho/notify');
         SELECT zoho_bulk_export('Leads', 'crm_leads');",
    );
    let ids: Vec<String> = sim.records("Leads").iter().take(BURST).map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let seen: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (seen, stop, dsn) = (seen.clone(), stop.clone(), dsn.clone());
        std::thread::spawn(move || {
            let mut c = Client::connect(&dsn, NoTls).unwrap();
            while !stop.load(Ordering::Relaxed) {
                for r in c.query("SELECT id FROM crm_leads WHERE last_name LIKE 'Burst %'", &[]).unwrap() {
                    seen.lock().unwrap().entry(r.get(0)).or_insert_with(Instant::now);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    let started = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        sent.insert(id.parse().unwrap(), Instant::now());
        sim.ui_edit("Leads", id, json!({"Last_Name": format!("Burst {i}")})).unwrap();
    }
    let burst_took = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < BURST && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let seen = seen.lock().unwrap();
    let mut lat: Vec<f64> = sent.iter().filter_map(|(id, t)| seen.get(id).map(|s| s.duration_since(*t).as_secs_f64() * 1e3)).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!("{} of {BURST} edits visible; the burst itself took {:.0} ms", lat.len(), burst_took.as_secs_f64() * 1e3);
    println!("edit → visible: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (goal: p99 ≤ 1000 ms)", pct(0.5), pct(0.99), lat[lat.len() - 1]);
    crate::worker_db::clean(&mut c, "crm_leads");
}
