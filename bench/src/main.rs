//! Benchmarks that print ratios measured in one run, so that a noisy
//! machine moves both sides of each ratio together.
//!
//!   cargo run --release -p zoho-fdw-bench -- all
//!   cargo run --release -p zoho-fdw-bench -- bulk-read [rows]
//!   cargo run --release -p zoho-fdw-bench -- planner
//!   cargo run --release -p zoho-fdw-bench -- queries   (needs ZOHO_FDW_TEST_PG)
//!   cargo run --release -p zoho-fdw-bench -- push [credits|wall|local]… [upsert|bulk|auto]… (needs ZOHO_FDW_TEST_PG)
//!   cargo run --release -p zoho-fdw-bench -- export [rows…] (needs ZOHO_FDW_TEST_PG)
//!   cargo run --release -p zoho-fdw-bench -- notify    (needs ZOHO_FDW_TEST_PG and the worker)
//!   cargo run --release -p zoho-fdw-bench -- schedule  (needs ZOHO_FDW_TEST_PG and the worker)
//!   cargo run --release -p zoho-fdw-bench -- outage    (needs ZOHO_FDW_TEST_PG and the worker)
//!   cargo run --release -p zoho-fdw-bench -- two-way   (needs ZOHO_FDW_TEST_PG and the worker)

mod bulk_read;
mod export;
mod installed;
mod notify;
mod planner;
mod push;
mod queries;
mod outage;
mod schedule;
mod two_way;
mod worker_db;

fn main() {
    zoho_sim::host::one_malloc_arena();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bulk-read") => bulk_read::run(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000)),
        Some("planner") => planner::run(),
        Some("queries") => queries::run(),
        Some("push") => push::run(&args[1..]),
        Some("notify") => notify::run(),
        Some("schedule") => schedule::run(),
        Some("outage") => outage::run(),
        Some("two-way") => two_way::run(),
        Some("export") => export::run(&args[1..].iter().filter_map(|s| s.parse().ok()).collect::<Vec<usize>>().is_empty().then(|| vec![200_000, 1_000_000]).unwrap_or_else(|| args[1..].iter().filter_map(|s| s.parse().ok()).collect())),
        Some("all") | None => {
            planner::run();
            queries::run();
            push::run(&[]);
            export::run(&[200_000, 1_000_000]);
            notify::run();
            schedule::run();
            outage::run();
            two_way::run();
            bulk_read::run(200_000);
        }
        Some(other) => {
            eprintln!("unknown benchmark {other:?}; choose: all, bulk-read [rows], planner, queries, push [tables] [modes], export [rows…], notify, schedule, outage, two-way");
            std::process::exit(2);
        }
    }
}
