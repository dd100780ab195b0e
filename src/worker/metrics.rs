//! What `GET /metrics` on the webhook listener says, in Prometheus' text
//! format: each flow's state, lag, failures and next attempt (from
//! zoho.health), credits and calls of the last 24 hours per server, the job
//! queue, and per channel its notifications and their latency. The main
//! loop writes it every few seconds; the listener thread only reads it.

use std::collections::HashMap;
use std::fmt::Write;

use pgrx::prelude::*;

use crate::error::ZohoFdwError;

/// `zoho_fdw.metrics_from_anywhere`: serve /metrics beyond this host.
pub fn from_anywhere() -> bool {
    crate::gucs::METRICS_FROM_ANYWHERE.get()
}

/// A label value, escaped as the format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family { name, help, kind, samples: Vec::new() }
    }

    fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        self.samples.push((l.join(","), value));
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            let _ = if labels.is_empty() { writeln!(out, "{} {value}", self.name) } else { writeln!(out, "{}{{{labels}}} {value}", self.name) };
        }
    }
}

/// Notification latency per channel, as the main loop measured it.
#[derive(Default)]
pub struct Latencies {
    /// Channel → seconds from Zoho's `server_time` to applied, last seen.
    pub last: HashMap<i64, f64>,
}

pub fn render(latencies: &Latencies) -> Result<String, ZohoFdwError> {
    let mut up = Family::new("zoho_fdw_flow_up", "gauge", "1 when the flow is ok, 0 when degraded, failing or paused.");
    let mut failing = Family::new("zoho_fdw_flow_failing", "gauge", "1 when the flow is failing (three or more runs in a row, a lapsed channel, a failed job).");
    let mut lag = Family::new("zoho_fdw_flow_lag_seconds", "gauge", "How far the flow is behind Zoho.");
    let mut failures = Family::new("zoho_fdw_flow_failures", "gauge", "Runs failed in a row.");
    let mut next = Family::new("zoho_fdw_flow_next_attempt_seconds", "gauge", "Seconds until the worker tries a failing flow again.");
    let mut credits = Family::new("zoho_fdw_api_credits_24h", "gauge", "Zoho API credits spent in the last 24 hours.");
    let mut calls = Family::new("zoho_fdw_api_calls_24h", "gauge", "Zoho API calls made in the last 24 hours, retries and errors included.");
    let mut jobs = Family::new("zoho_fdw_jobs", "gauge", "Queued bulk jobs by state.");
    let mut notified = Family::new("zoho_fdw_notifications_total", "counter", "Notifications applied, per channel.");
    let mut latency = Family::new("zoho_fdw_notification_latency_seconds", "gauge", "From Zoho sending the last notification of a channel to its rows applied.");
    Spi::connect(|spi| -> Result<(), pgrx::spi::SpiError> {
        for r in spi.select(
            "SELECT flow, coalesce(target, ''), state, extract(epoch FROM lag)::float8, failures,
                    extract(epoch FROM next_attempt - now())::float8, flow_id
               FROM zoho.health",
            None,
            &[],
        )? {
            let flow = r.get::<String>(1)?.unwrap_or_default();
            let target = r.get::<String>(2)?.unwrap_or_default();
            let state = r.get::<String>(3)?.unwrap_or_default();
            // Two channels of one table are two series, by channel id.
            let id = r.get::<String>(7)?.filter(|_| flow == "channel");
            let mut labels = vec![("flow", flow.as_str()), ("target", target.as_str())];
            if let Some(id) = &id {
                labels.push(("channel_id", id.as_str()));
            }
            up.add(&labels, f64::from(u8::from(state == "ok")));
            failing.add(&labels, f64::from(u8::from(state == "failing")));
            if let Some(l) = r.get::<f64>(4)? {
                lag.add(&labels, l.max(0.0));
            }
            failures.add(&labels, f64::from(r.get::<i32>(5)?.unwrap_or(0)));
            if let Some(n) = r.get::<f64>(6)? {
                next.add(&labels, n.max(0.0));
            }
        }
        for r in spi.select(
            "SELECT server::text, sum(credits)::float8, sum(calls + retries + errors)::float8 FROM zoho.api_usage_log
              WHERE hour >= date_trunc('hour', now() - interval '24 hours') GROUP BY 1 ORDER BY 1",
            None,
            &[],
        )? {
            let server = r.get::<String>(1)?.unwrap_or_default();
            credits.add(&[("server", server.as_str())], r.get::<f64>(2)?.unwrap_or(0.0));
            calls.add(&[("server", server.as_str())], r.get::<f64>(3)?.unwrap_or(0.0));
        }
        for state in ["queued", "running"] {
            let n = spi.select("SELECT count(*) FROM zoho.job_queue WHERE state = $1", None, &[state.into()])?.first().get_one::<i64>()?.unwrap_or(0);
            jobs.add(&[("state", state)], n as f64);
        }
        for r in spi.select("SELECT channel_id, target::text, notifications FROM zoho.watches ORDER BY 1", None, &[])? {
            let id = r.get::<i64>(1)?.unwrap_or(0);
            let (channel, target) = (id.to_string(), r.get::<String>(2)?.unwrap_or_default());
            let labels = [("channel_id", channel.as_str()), ("target", target.as_str())];
            notified.add(&labels, r.get::<i64>(3)?.unwrap_or(0) as f64);
            if let Some(s) = latencies.last.get(&id) {
                latency.add(&labels, *s);
            }
        }
        Ok(())
    })?;
    let mut out = String::new();
    for f in [&up, &failing, &lag, &failures, &next, &credits, &calls, &jobs, &notified, &latency] {
        f.write(&mut out);
    }
    Ok(out)
}
