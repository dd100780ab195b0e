//! Notification delivery (zoho-api.md §9.5): builds the callback payloads
//! for a call's writes and POSTs them from a background task, logging each
//! delivery. API responses never wait for a delivery.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::state::{App, Delivery, Outgoing, State};
use crate::write::Changes;

/// Drops channels whose expiry has passed (by the sim clock).
pub fn purge_expired(app: &App, st: &mut State) {
    let now = app.now();
    st.channels.retain(|_, c| c.channel_expiry > now);
}

fn query_params(url: &str) -> Value {
    let mut out = Map::new();
    if let Some((_, q)) = url.split_once('?') {
        let q = q.split('#').next().unwrap_or("");
        if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(q) {
            for (k, v) in pairs {
                out.insert(k, Value::String(v));
            }
        }
    }
    Value::Object(out)
}

pub fn resource_uri(module: &str) -> String {
    format!("https://www.zohoapis.com/crm/v2/{module}")
}

fn subscribed(events: &[String], module: &str, op: &str) -> bool {
    events.iter().any(|e| {
        e.split_once('.')
            .is_some_and(|(m, o)| m.eq_ignore_ascii_case(module) && (o == op || o == "all"))
    })
}

/// Queues callbacks for everything in `ch`: one per channel and operation,
/// carrying all ids of that operation.
pub fn fire(app: &App, st: &mut State, ch: &Changes) {
    if ch.inserted.is_empty() && ch.updated.is_empty() && ch.deleted.is_empty() {
        return;
    }
    purge_expired(app, st);
    let server_time = app.clock.now_ms();
    let mut out = Vec::new();
    for c in st.channels.values() {
        let mut ops: Vec<(&str, Vec<String>, Value, Option<Value>)> = Vec::new();
        if !ch.inserted.is_empty() && subscribed(&c.events, &ch.module, "create") {
            ops.push(("insert", ch.inserted.clone(), json!([]), None));
        }
        if !ch.updated.is_empty() && subscribed(&c.events, &ch.module, "edit") {
            let ids = ch.updated.iter().map(|(id, _)| id.clone()).collect();
            let fields: Vec<Value> = ch
                .updated
                .iter()
                .map(|(id, vals)| json!({ id.clone(): vals.keys().cloned().collect::<Vec<_>>() }))
                .collect();
            let values = c.return_affected_field_values.then(|| {
                Value::Array(ch.updated.iter().map(|(id, vals)| json!({"record_id": id, "values": vals})).collect())
            });
            ops.push(("update", ids, Value::Array(fields), values));
        }
        if !ch.deleted.is_empty() && subscribed(&c.events, &ch.module, "delete") {
            ops.push(("delete", ch.deleted.clone(), json!([]), None));
        }
        for (op, ids, affected, values) in ops {
            let mut p = json!({
                "server_time": server_time,
                "query_params": query_params(&c.notify_url),
                "module": ch.module,
                "resource_uri": resource_uri(&ch.module),
                "ids": ids,
                "affected_fields": affected,
                "operation": op,
                "channel_id": c.channel_id,
                "token": c.token.clone().map(Value::String).unwrap_or(Value::Null),
            });
            if let Some(v) = values {
                p["affected_values"] = v;
            }
            out.push((c.channel_id.clone(), c.notify_url.clone(), op.to_string(), ids, p));
        }
    }
    for (channel_id, url, operation, ids, payload) in out {
        st.delivery_seq += 1;
        let seq = st.delivery_seq;
        st.deliveries.push(Delivery {
            seq,
            channel_id,
            notify_url: url.clone(),
            module: ch.module.clone(),
            operation,
            ids,
            status: None,
            error: None,
            payload: payload.clone(),
        });
        let _ = app.notify_tx.send(Outgoing { seq, url, payload });
    }
}

/// The delivery task: POSTs queued callbacks one at a time, in order.
pub async fn run_notifier(app: Arc<App>, mut rx: tokio::sync::mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(job) = rx.recv().await {
        let res = app.http.post(&job.url).timeout(Duration::from_secs(5)).json(&job.payload).send().await;
        let (status, error) = match res {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut st = app.st();
        if let Some(d) = st.deliveries.iter_mut().rev().find(|d| d.seq == job.seq) {
            d.status = status;
            d.error = error.or_else(|| Some(String::new())).filter(|e| !e.is_empty());
            if d.status.is_none() && d.error.is_none() {
                d.error = Some("no answer".into());
            }
        }
    }
}
