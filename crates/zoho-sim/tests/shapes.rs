//! The simulator sends the shapes Zoho's documentation shows: every key that
//! a documented body (`spec/zoho-samples/`) has on every object of a kind,
//! the simulator sends on every object of that kind, and as the same kind of
//! JSON value. Where Zoho sends `{}` for "does not apply", the simulator does
//! too, never `null`. The exceptions are listed with the reason each exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{json, Value};
use zoho_sim::SimConfig;

fn sample(rel: &str) -> Value {
    let path = format!("{}/../../spec/zoho-samples/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(m) if m.is_empty() => "{}",
        Value::Object(_) => "object",
    }
}

/// For each key: the kinds of value the documented objects give it, and
/// whether every documented object has it.
fn documented(objects: &[Value]) -> BTreeMap<String, (BTreeSet<&'static str>, bool)> {
    let mut keys: BTreeMap<String, (BTreeSet<&'static str>, usize)> = BTreeMap::new();
    for o in objects {
        for (k, v) in o.as_object().unwrap() {
            let e = keys.entry(k.clone()).or_default();
            e.0.insert(kind(v));
            e.1 += 1;
        }
    }
    keys.into_iter().map(|(k, (kinds, n))| (k, (kinds, n == objects.len()))).collect()
}

/// Checks `ours` against `theirs`; `except` names keys that differ on
/// purpose, each with its reason.
fn same_shape(what: &str, ours: &[Value], theirs: &[Value], except: &[(&str, &str)]) {
    assert!(!ours.is_empty() && !theirs.is_empty(), "{what}: nothing to compare");
    let skip: BTreeSet<&str> = except.iter().map(|(k, _)| *k).collect();
    let mut problems = Vec::new();
    for (key, (kinds, always)) in documented(theirs) {
        if skip.contains(key.as_str()) {
            continue;
        }
        for (i, o) in ours.iter().enumerate() {
            match o.get(&key) {
                None if always => problems.push(format!("{what}[{i}] lacks `{key}`, which Zoho always sends")),
                None => {}
                // `{}` and a filled object are one kind of value; a key the
                // docs only show unset may hold anything.
                Some(v) if kinds.contains(kind(v)) || (kind(v) == "object" && kinds.contains("{}")) || (kind(v) == "{}" && kinds.contains("object")) => {}
                Some(_) if kinds.len() == 1 && kinds.contains("null") => {}
                Some(v) => problems.push(format!("{what}[{i}].{key} is {} where Zoho sends {kinds:?}", kind(v))),
            }
        }
    }
    for (key, _) in except {
        assert!(theirs.iter().any(|o| o.get(*key).is_some()) || ours.iter().any(|o| o.get(*key).is_some()), "{what}: stale exception {key}");
    }
    problems.dedup_by(|a, b| a.split(']').nth(1) == b.split(']').nth(1));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().unwrap_or_else(|| panic!("no {key}[] in {v}")).clone()
}

#[tokio::test]
async fn fields_and_modules_have_the_documented_keys() {
    let ctx = Ctx::new(SimConfig::default()).await;
    let doc_fields = list(&sample("fields/get_fields_leads.json"), "fields");
    let (_, v) = sj(ctx.get("/crm/v8/settings/fields?module=Leads").await).await;
    let fields = list(&v, "fields");
    same_shape("fields", &fields, &doc_fields, &[]);
    // The empty objects, key by key, on a field that is none of those things.
    let last_name = fields.iter().find(|f| f["api_name"] == "Last_Name").unwrap();
    for key in ["lookup", "formula", "unique", "currency", "auto_number", "multiselectlookup", "rollup_summary", "multi_module_lookup"] {
        assert_eq!(last_name[key], json!({}), "Last_Name.{key}");
    }
    let owner = fields.iter().find(|f| f["api_name"] == "Owner").unwrap();
    assert_eq!((owner["data_type"].as_str(), &owner["lookup"]), (Some("ownerlookup"), &json!({})), "owner lookups carry an empty lookup");

    let (_, v) = sj(ctx.get("/crm/v8/settings/modules").await).await;
    let modules = list(&v, "modules");
    same_shape("modules", &modules, &list(&sample("modules/get_modules.json"), "modules"), &[]);
    assert!(modules.iter().all(|m| m["parent_module"] == json!({})));
}

#[tokio::test]
async fn org_users_and_lists_have_the_documented_keys() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 3)).await;
    let (_, v) = sj(ctx.get("/crm/v8/org").await).await;
    same_shape("org", &list(&v, "org"), &list(&sample("org_users/get_org.json"), "org"), &[("zia_portal_id", "the simulator's org has no Zia portal: null")]);
    let (_, v) = sj(ctx.get("/crm/v8/users?type=AllUsers").await).await;
    let users = list(&v, "users");
    let except = [
        ("$current_shift", "the OAS types shift as a non-null object"),
        ("$next_shift", "the OAS types shift as a non-null object"),
        ("number_separator", "the OAS enum is [\"Space\"]; Zoho's body says Comma"),
        ("Modified_By", "the OAS owner object also requires first_name and last_name"),
    ];
    same_shape("users", &users, &list(&sample("org_users/get_users_all.json"), "users"), &except);
    same_shape("users.info", &[v["info"].clone()], &[sample("org_users/get_users_all.json")["info"].clone()], &[]);

    let (_, v) = sj(ctx.get("/crm/v8/Leads?fields=Last_Name,Email&per_page=2").await).await;
    let doc = sample("records/get_records_leads_page1.json");
    let except = [
        ("previous_page_token", "sent only with a page token (crates/zoho-sim/README.md)"),
        ("next_page_token", "sent only when more records follow"),
        ("page_token_expiry", "sent only with next_page_token"),
    ];
    same_shape("records.info", &[v["info"].clone()], &[doc["info"].clone()], &except);
    let (_, v) = sj(ctx.get("/crm/v8/Leads/deleted?type=all").await).await;
    if !v.is_null() {
        same_shape("deleted.info", &[v["info"].clone()], &[sample("records/get_deleted_records_leads.json")["info"].clone()], &[]);
    }
    let (_, v) = sj(ctx.coql("select Last_Name from Leads where id is not null limit 2").await).await;
    same_shape("coql.info", &[v["info"].clone()], &[sample("coql/basic_response.json")["info"].clone()], &[]);
}

#[tokio::test]
async fn write_results_and_jobs_have_the_documented_keys() {
    let ctx = Ctx::new(SimConfig::default().bulk_step_ms(10)).await;
    let (_, v) = sj(ctx.post("/crm/v8/Leads", &json!({"data": [{"Last_Name": "Shape", "Company": "ABC"}]})).await).await;
    let doc = list(&sample("records_write/insert_leads_response.json"), "data");
    same_shape("insert", &list(&v, "data"), &doc, &[]);
    let details: Vec<Value> = doc.iter().map(|d| d["details"].clone()).collect();
    same_shape("insert.details", &[v["data"][0]["details"].clone()], &details, &[]);

    let (_, v) = sj(ctx.post("/crm/bulk/v8/read", &json!({"query": {"module": {"api_name": "Leads"}}})).await).await;
    same_shape("bulk_read.create", &[v.clone()], &[sample("bulk_read/create_job_response.json")], &[]);
    let id = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let (_, v) = sj(ctx.get(&format!("/crm/bulk/v8/read/{id}")).await).await;
    let doc: Vec<Value> = ["added", "queued", "in_progress", "completed"].iter().map(|s| sample(&format!("bulk_read/job_status_{s}.json"))["data"][0].clone()).collect();
    same_shape("bulk_read.status", &list(&v, "data"), &doc, &[("result", "sent once the job has one, as in the v3 ADDED body")]);

    let far = "2031-01-01T00:00:00+05:30";
    let (_, v) = sj(ctx.post("/crm/v8/actions/watch", &json!({"watch": [{"channel_id": 10000, "events": ["Leads.all"], "notify_url": "http://127.0.0.1:9/x", "channel_expiry": far}]})).await).await;
    let doc = sample("notifications/enable_response.json");
    same_shape("watch.enable", &list(&v, "watch"), &list(&doc, "watch"), &[]);
    same_shape("watch.enable.events", &list(&v["watch"][0]["details"], "events"), &list(&doc["watch"][0]["details"], "events"), &[]);
    assert_eq!(v["watch"][0]["details"]["events"][0]["channel_id"], "10000", "ids answered as strings");
    let (_, v) = sj(ctx.delete("/crm/v8/actions/watch?channel_ids=10000").await).await;
    let doc = sample("notifications/disable_response.json");
    same_shape("watch.disable", &list(&v, "watch"), &list(&doc, "watch"), &[]);
    let details: Vec<Value> = list(&doc, "watch").iter().map(|d| d["details"].clone()).collect();
    same_shape("watch.disable.details", &[v["watch"][0]["details"].clone()], &details, &[]);
}
