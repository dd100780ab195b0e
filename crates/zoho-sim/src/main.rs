//! `zoho-sim`: run the Zoho CRM v8 simulator on a local port.

use clap::Parser;
use zoho_sim::{Sim, SimConfig};

#[derive(Parser, Debug)]
#[command(name = "zoho-sim", about = "A Zoho CRM v8 simulator (OAuth, records, COQL, bulk, notifications)")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// Records to seed, as Module=N; repeatable. Without any, a demo set is seeded.
    #[arg(long = "seed", value_name = "MODULE=N")]
    seeds: Vec<String>,
    /// Seed no records at all.
    #[arg(long)]
    no_seed: bool,
    /// Seed of the deterministic data generator.
    #[arg(long, default_value_t = 42)]
    rng_seed: u64,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    #[arg(long, default_value_t = 50_000)]
    daily_credits: u64,
    #[arg(long, default_value_t = 200_000)]
    bulk_page_size: usize,
    /// Delay between bulk job states, in ms.
    #[arg(long, default_value_t = 100)]
    bulk_step_ms: u64,
    /// Access-token lifetime in seconds.
    #[arg(long = "token-ttl", default_value_t = 3600)]
    token_ttl: u64,
    /// Offset datetimes are rendered in, e.g. +05:30 or +00:00.
    #[arg(long, default_value = "+05:30", allow_hyphen_values = true)]
    time_zone_offset: String,
    #[arg(long, default_value = "sim-client-id")]
    client_id: String,
    #[arg(long, default_value = "sim-client-secret")]
    client_secret: String,
    #[arg(long, default_value = "sim-refresh-token")]
    refresh_token: String,
    /// Keep JSON response bodies in the call log (`GET /__sim/calls`).
    #[arg(long)]
    capture_bodies: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before the runtime's threads allocate anything.
    zoho_sim::host::one_malloc_arena();
    tokio::runtime::Runtime::new()?.block_on(serve(Args::parse()))
}

async fn serve(a: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = SimConfig::default()
        .port(a.port)
        .rng_seed(a.rng_seed)
        .latency_ms(a.latency_ms)
        .concurrency(a.concurrency)
        .daily_credits(a.daily_credits)
        .bulk_page_size(a.bulk_page_size)
        .bulk_step_ms(a.bulk_step_ms)
        .token_ttl_secs(a.token_ttl)
        .time_zone_offset(&a.time_zone_offset)
        .credentials(&a.client_id, &a.client_secret, &a.refresh_token)
        .capture_bodies(a.capture_bodies);
    for s in &a.seeds {
        let (m, n) = s.split_once('=').ok_or_else(|| format!("--seed wants MODULE=N, got {s:?}"))?;
        cfg = cfg.seed(m.trim(), n.trim().parse().map_err(|_| format!("--seed {s:?}: N is not a number"))?);
    }
    if a.seeds.is_empty() && !a.no_seed {
        for (m, n) in [("Accounts", 100), ("Contacts", 300), ("Deals", 300), ("Leads", 1000), ("Orders", 500)] {
            cfg = cfg.seed(m, n);
        }
    }
    let sim = Sim::start(cfg).await?;
    println!("zoho-sim listening on {}", sim.base_url());
    println!("  client_id={} client_secret={} refresh_token={}", a.client_id, a.client_secret, a.refresh_token);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
