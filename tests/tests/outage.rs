//! The fault matrix's outage: Zoho down 30 s (well over an hour at the
//! backoff's 1/200 scale) while a channel, a push, a pull and a job run
//! (zoho_fdw_tests::outage). Zoho receives about one call per flow per
//! backoff step, and every flow recovers on its own with nothing lost,
//! falsely synced or duplicated.

use std::collections::HashSet;
use std::time::Duration;

use zoho_fdw_tests::worker::*;
use zoho_fdw_tests::*;

#[test]
fn zoho_down_costs_about_one_call_per_flow_per_backoff_step_and_every_flow_recovers() {
    let sim = start_sim(SimConfig::default().seed("Leads", 300).bulk_page_size(100).bulk_step_ms(400));
    let (mut db, mut c) = WorkerDb::new(&sim);
    let o = outage::run(&sim, &mut db, &mut c, Duration::from_secs(30));
    eprintln!("outage: {} calls refused ({:?}) for {} attempts by the flows ({:?})", o.calls(), o.refused, o.steps(), o.attempts);
    // Every flow failed, and backed off.
    let failing: HashSet<&str> = o.attempts.iter().filter(|(_, n)| **n > 0).map(|((f, _), _)| f.split(' ').next().unwrap()).collect();
    for flow in ["push", "pull", "channel", "job"] {
        assert!(failing.contains(flow), "the {flow} never failed: {:?}", o.attempts);
    }
    // One call per flow per backoff step, plus the first failing call of
    // each process (the worker, the job runner) tried 6 times as usual.
    assert!(o.calls() as f64 <= o.steps() as f64 * 1.1 + 2.0 * 5.0, "{} calls refused ({:?}) for {} attempts: {:?}", o.calls(), o.refused, o.steps(), o.attempts);
    // Without backoff, a renewal and a catch-up every second and a push
    // every 2 s, each tried six times, alone would pass 400 calls.
    assert!(o.calls() < 150, "{} calls in 30 seconds of outage", o.calls());
    outage::recovered(&sim, &mut c, &o);
}
