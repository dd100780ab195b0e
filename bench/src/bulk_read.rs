//! Bulk-read download plus CSV streaming, against simply reading the same
//! zip, with the memory the streaming side needs.
//!
//! The simulator runs in this process, so process-wide peak RSS would mostly
//! measure it; instead RSS is sampled while rows stream and the growth over
//! the start of streaming is reported next to the size of the CSV.

use std::io::Seek;
use std::time::Instant;

use zoho_api::bulk_read::{count_zip_rows, BulkReadQuery, BulkRows};
use zoho_api::http::{ClientConfig, PollPolicy};
use zoho_api::{Credentials, Endpoints, ZohoClient};
use zoho_sim::{Sim, SimConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

pub fn run(rows: usize) {
    println!("\n== bulk read: download + stream {rows} Leads rows ==");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let started = Instant::now();
        let sim = Sim::start(SimConfig::default().seed("Leads", rows).bulk_page_size(rows.max(1)).bulk_step_ms(10)).await.unwrap();
        println!("simulator seeded in {:.1}s", started.elapsed().as_secs_f64());
        let url = sim.base_url();
        let mut cfg = ClientConfig::new(Endpoints::custom(&url, &url, None).unwrap());
        cfg.poll = PollPolicy { initial: std::time::Duration::from_millis(20), ..Default::default() };
        let client = ZohoClient::new(cfg, Credentials::new("sim-client-id", "sim-client-secret", "sim-refresh-token")).unwrap();

        let query = BulkReadQuery { module: "Leads".into(), ..Default::default() };
        let id = client.bulk_read_create(&query, None).await.unwrap();
        let job = client.bulk_read_wait(&id, &mut |_| {}).await.unwrap();

        // 1. Download only, to a file: the network part.
        let file = tempfile::tempfile().unwrap();
        let t = Instant::now();
        let bytes = client
            .transport()
            .download(
                &zoho_api::http::Call::new("bulk_read.download", reqwest::Method::GET, zoho_api::http::Target::Link(job.result.clone().unwrap().download_url.unwrap())),
                &file,
            )
            .await
            .unwrap();
        let download_s = t.elapsed().as_secs_f64();

        // 2. Baseline: decompress the same zip and count lines.
        let t = Instant::now();
        let baseline_lines = count_zip_rows(reopen(&file)).unwrap();
        let baseline_s = t.elapsed().as_secs_f64();

        // 3. Ours: stream parsed CSV rows from the same zip.
        let rss0 = rss_kib();
        let mut rss_peak = rss0;
        let t = Instant::now();
        let mut n = 0u64;
        let mut cells = 0u64;
        for row in BulkRows::from_zip(reopen(&file)).unwrap() {
            let row = row.unwrap();
            cells += row.len() as u64;
            n += 1;
            if n % 10_000 == 0 {
                rss_peak = rss_peak.max(rss_kib());
            }
        }
        let stream_s = t.elapsed().as_secs_f64();
        rss_peak = rss_peak.max(rss_kib());

        // 4. End to end as a caller sees it: download + stream.
        let t = Instant::now();
        let mut e2e = 0u64;
        for row in client.bulk_read_download(&job).await.unwrap() {
            row.unwrap();
            e2e += 1;
        }
        let e2e_s = t.elapsed().as_secs_f64();

        let csv_bytes = uncompressed_size(&file);
        assert_eq!(n, rows as u64, "every row streamed");
        assert_eq!(e2e, rows as u64);
        println!("zip {:.1} MB, CSV {:.1} MB, {} columns, {} rows ({} lines incl. header and embedded newlines)", bytes as f64 / 1e6, csv_bytes as f64 / 1e6, cells / n.max(1), n, baseline_lines);
        println!("download only            {:>9.0} rows/s  ({download_s:.2}s)", n as f64 / download_s);
        println!("baseline: unzip + count  {:>9.0} rows/s  ({baseline_s:.2}s)", n as f64 / baseline_s);
        println!("stream parsed rows       {:>9.0} rows/s  ({stream_s:.2}s)", n as f64 / stream_s);
        println!("download + stream        {:>9.0} rows/s  ({e2e_s:.2}s)", n as f64 / e2e_s);
        println!("ratio stream / baseline             {:.2}", baseline_s / stream_s);
        println!("ratio (download+stream) / (download + baseline) {:.2}", (download_s + baseline_s) / e2e_s);
        println!(
            "memory: RSS grew {:.1} MB while streaming a {:.1} MB CSV (ratio {:.3})",
            (rss_peak.saturating_sub(rss0)) as f64 / 1024.0,
            csv_bytes as f64 / 1e6,
            (rss_peak.saturating_sub(rss0)) as f64 * 1024.0 / csv_bytes.max(1) as f64
        );
    });
}

fn reopen(f: &std::fs::File) -> std::fs::File {
    let mut g = f.try_clone().unwrap();
    g.rewind().unwrap();
    g
}

fn uncompressed_size(f: &std::fs::File) -> u64 {
    zip::ZipArchive::new(reopen(f)).unwrap().by_index(0).unwrap().size()
}
