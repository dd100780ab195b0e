//! Credits the planner chooses for N records, against the lower bound (the
//! exact optimum over every split into upsert calls and bulk jobs) and
//! against always using one API.

use zoho_api::planner::{optimum_table, plan, Mode};

const SIZES: [u64; 6] = [100, 2_000, 5_000, 25_000, 30_000, 100_000];

pub fn run() {
    println!("\n== planner: credits to push N records ==");
    let best = optimum_table(*SIZES.iter().max().unwrap() as usize);
    println!("{:>8} {:>10} {:>8} {:>8} {:>11} {:>10} {:>13} {:>11}", "N", "plan", "jobs", "upserts", "lower bound", "plan/lower", "all-upsert/plan", "all-bulk/plan");
    for n in SIZES {
        let p = plan(n, Mode::Auto);
        let lower = best[n as usize];
        let upsert = plan(n, Mode::Upsert).credits;
        let bulk = plan(n, Mode::Bulk).credits;
        println!(
            "{:>8} {:>10} {:>8} {:>8} {:>11} {:>10.2} {:>15.2} {:>13.2}",
            n,
            p.credits,
            p.bulk_jobs,
            p.upsert_calls,
            lower,
            p.credits as f64 / lower as f64,
            upsert as f64 / p.credits as f64,
            bulk as f64 / p.credits as f64,
        );
    }
}
