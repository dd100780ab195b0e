//! Zoho down while a channel (renewal and catch-up), a scheduled push, a
//! scheduled pull and a queued job run on the test cluster's worker, its
//! backoff at 1/200 of the real schedule (zoho_fdw_tests::outage): calls
//! and credits (at list price: Zoho charges nothing for a refused call)
//! spent per hour of outage, against a worker that makes exactly one
//! attempt per flow per backoff step, counted in the same run from the
//! flows' own failure counts. Needs ZOHO_FDW_TEST_PG and the cluster from
//! scripts/pg.sh.

use std::time::Duration;

use zoho_fdw_tests::outage;
use zoho_fdw_tests::worker::WorkerDb;
use zoho_sim::{Sim, SimConfig};

const DOWN: Duration = Duration::from_secs(60);

pub fn run() {
    println!("\n== an outage: calls while Zoho is down, against one attempt per flow per backoff step ==");
    if crate::worker_db::dsn().is_none() {
        println!("skipped: set ZOHO_FDW_TEST_PG to a PostgreSQL with zoho_fdw installed and its worker running (scripts/pg.sh start)");
        return;
    }
    let sim = Sim::start_blocking(SimConfig::default().seed("Leads", 300).bulk_page_size(100).bulk_step_ms(400)).expect("simulator");
    let (mut db, mut c) = WorkerDb::new(&sim);
    let o = outage::run(&sim, &mut db, &mut c, DOWN);
    let hours = DOWN.as_secs_f64() * outage::SCALE / 3600.0;
    let (calls, steps) = (o.calls() as f64, o.steps() as f64);
    println!("outage of {:.0} s = {hours:.2} h at the backoff's 1/{} scale; flows' attempts: {:?}", DOWN.as_secs_f64(), outage::SCALE, o.attempts);
    println!("refused calls by endpoint: {:?}", o.refused);
    println!("calls per hour down:   {:>8.1}   ideal (one per flow per step): {:>8.1}   ratio {:.2}", calls / hours, steps / hours, calls / steps);
    println!("credits per hour down: {:>8.1}   (at list price; Zoho charged 0)", o.credits as f64 / hours);
    outage::recovered(&sim, &mut c, &o);
    println!("recovered: every row pushed once, both mirrors equal to Zoho, the job done, every flow ok");
}
