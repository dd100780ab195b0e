//! OpenAPI fidelity suite: drives every endpoint the simulator implements,
//! through the zoho-api client where it has the call and with raw HTTP for
//! error statuses, then validates every logged request and response against
//! Zoho's OAS files (`spec/zoho-oas`, see `tests/oas/mod.rs` for how refs,
//! `nullable`, `oneOf` and undeclared statuses are handled).
//!
//! `openapi_fidelity` prints a coverage table (operation × statuses seen,
//! validated / allowlisted / failed, and the spec operations the simulator
//! does not implement) and writes it to `target/oas-coverage.md`. It fails
//! if any call deviates from the spec outside the allowlist below.
//!
//! Run: `cargo test -p zoho-sim --test fidelity -- --nocapture`

mod oas;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oas::{spec, Allow, Checked, Dir, Report};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use zoho_api::bulk_read::{BulkReadQuery, Criteria};
use zoho_api::bulk_write::{BulkWriteSpec, Column, Row};
use zoho_api::coql::{CmpOp, Cond, Keyset, Literal, Query};
use zoho_api::http::{ClientConfig, PollPolicy, RetryPolicy};
use zoho_api::notifications::Channel;
use zoho_api::records::ListOptions;
use zoho_api::{Credentials, Endpoints, MemoryTokenStore, WriteOp, WriteOptions, ZohoClient};
use zoho_sim::{Fault, Sim, SimConfig};

// ---------------------------------------------------------------------------
// The allowlist: places where Zoho's OAS disagrees with Zoho's documented
// behaviour (shared/zoho-api.md) and the simulator (and the client) follow
// the documentation. Each entry is one operation, one direction, one body
// location and one error; the report prints how often each was used.
// ---------------------------------------------------------------------------

const BULK_READ_CREATE: &str = "/crm/bulk/v8/read";
const BULK_READ_STATUS: &str = "/crm/bulk/v8/read/{job_id}";
const WATCH_SUCCESS: &str = "notifications.json#/components/schemas/Success_Response";

pub static ALLOW: &[Allow] = &[
    // bulk_read.json `Criteria` requires a `type` key and types `value` as an
    // object. zoho-api.md §7.1 (Zoho's create-job docs and Estuary) write a
    // condition as {field:{api_name}, comparator, value} with no `type`,
    // and `value` a string, number, or array (for `in`/`between`). The
    // simulator echoes the criteria it was given, as Zoho does, and the
    // client sends the documented shape, so the OAS is what is wrong.
    Allow {
        id: "bulk-read-criteria-type",
        method: "GET",
        template: BULK_READ_STATUS,
        dir: Dir::Response,
        at: "/data/*/query/criteria/**",
        message: "\"type\" is a required property",
        valid_as: None,
        why: "OAS Criteria requires `type`; documented criteria (zoho-api.md §7.1) have none",
    },
    Allow {
        id: "bulk-read-criteria-value",
        method: "GET",
        template: BULK_READ_STATUS,
        dir: Dir::Response,
        at: "/data/*/query/criteria/**/value",
        message: "is not of type \"object\"",
        valid_as: None,
        why: "OAS Criteria types `value` as an object; documented values are scalars or arrays (zoho-api.md §7.1)",
    },
    Allow {
        id: "bulk-read-request-criteria-type",
        method: "POST",
        template: BULK_READ_CREATE,
        dir: Dir::Request,
        at: "/query/criteria/**",
        message: "\"type\" is a required property",
        valid_as: None,
        why: "same Criteria defect, on the request the client sends",
    },
    Allow {
        id: "bulk-read-request-criteria-value",
        method: "POST",
        template: BULK_READ_CREATE,
        dir: Dir::Request,
        at: "/query/criteria/**/value",
        message: "is not of type \"object\"",
        valid_as: None,
        why: "same Criteria defect, on the request the client sends",
    },
    // Job_Detail requires `result`; a job that is still ADDED / IN PROGRESS
    // has none yet (zoho-api.md §7.2 shows it on a COMPLETED job).
    Allow {
        id: "bulk-read-result-before-completion",
        method: "GET",
        template: BULK_READ_STATUS,
        dir: Dir::Response,
        at: "/data/*",
        message: "\"result\" is a required property",
        valid_as: None,
        why: "a job still ADDED / IN PROGRESS has no result yet (zoho-api.md §7.2)",
    },
    Allow {
        id: "bulk-read-failed-result",
        method: "GET",
        template: BULK_READ_STATUS,
        dir: Dir::Response,
        at: "/data/*/result",
        message: "is a required property",
        valid_as: None,
        why: "a FAILURE job's result carries only error_message {status,code,message,details} (zoho-api.md §7.2)",
    },
    Allow {
        id: "bulk-read-last-page-token-null",
        method: "GET",
        template: BULK_READ_STATUS,
        dir: Dir::Response,
        at: "/data/*/result/next_page_token",
        message: "null is not of type \"string\"",
        valid_as: None,
        why: "the last page answers \"next_page_token\": null (zoho-api.md §7.2 example); the OAS types it non-nullable",
    },
    // Minified_Module / Minified_Field require `id`; requests name modules
    // and fields by api_name only (docs examples, zoho-api.md §7.1, §8.3).
    Allow {
        id: "request-module-by-api-name",
        method: "POST",
        template: BULK_READ_CREATE,
        dir: Dir::Request,
        at: "/query/module",
        message: "\"id\" is a required property",
        valid_as: None,
        why: "bulk-read requests name the module by api_name only (zoho-api.md §7.1)",
    },
    Allow {
        id: "request-field-by-api-name",
        method: "POST",
        template: BULK_READ_CREATE,
        dir: Dir::Request,
        at: "/query/criteria/**/field",
        message: "\"id\" is a required property",
        valid_as: None,
        why: "criteria name fields by api_name only (zoho-api.md §7.1)",
    },
    Allow {
        id: "bulk-write-module-by-api-name",
        method: "POST",
        template: "/crm/bulk/v8/write",
        dir: Dir::Request,
        at: "/resource/*/module",
        message: "\"id\" is a required property",
        valid_as: None,
        why: "bulk-write resources name the module by api_name only (zoho-api.md §8.3)",
    },
    Allow {
        id: "upload-details",
        method: "POST",
        template: "/crm/v8/upload",
        dir: Dir::Response,
        at: "/details",
        message: "is a required property",
        valid_as: None,
        why: "Success_Response.details requires id and created_by; the documented answer is {file_id, created_time} (zoho-api.md §8.2)",
    },
    Allow {
        id: "modules-modified-by-null",
        method: "GET",
        template: "/crm/v8/settings/modules",
        dir: Dir::Response,
        at: "/modules/*/modified_by",
        message: "null is not of type \"object\"",
        valid_as: None,
        why: "standard modules nobody customised answer modified_by: null; Minified_User is not nullable",
    },
    Allow {
        id: "module-by-id-modified-by-null",
        method: "GET",
        template: "/crm/v8/settings/modules/{id}",
        dir: Dir::Response,
        at: "/modules/*/modified_by",
        message: "null is not of type \"object\"",
        valid_as: None,
        why: "as modules-modified-by-null, for one module by id",
    },
    Allow {
        id: "module-modified-by-null",
        method: "GET",
        template: "/crm/v8/settings/modules/{api_name}",
        dir: Dir::Response,
        at: "/modules/*/modified_by",
        message: "null is not of type \"object\"",
        valid_as: None,
        why: "as modules-modified-by-null, for one module",
    },
    // A 202 mixes per-channel successes with failures (zoho-api.md §9.1);
    // the OAS 202 schema (WrappedErrorResponse) lists only error items.
    Allow {
        id: "watch-202-success-items-post",
        method: "POST",
        template: "/crm/v8/actions/watch",
        dir: Dir::Response,
        at: "/watch/*",
        message: "is not valid under any of the schemas listed in the 'anyOf'",
        valid_as: Some(WATCH_SUCCESS),
        why: "a 202 carries the channels that succeeded too (zoho-api.md §9.1)",
    },
    Allow {
        id: "watch-202-success-items-put",
        method: "PUT",
        template: "/crm/v8/actions/watch",
        dir: Dir::Response,
        at: "/watch/*",
        message: "is not valid under any of the schemas listed in the 'anyOf'",
        valid_as: Some(WATCH_SUCCESS),
        why: "as watch-202-success-items-post",
    },
    Allow {
        id: "watch-202-success-items-patch",
        method: "PATCH",
        template: "/crm/v8/actions/watch",
        dir: Dir::Response,
        at: "/watch/*",
        message: "is not valid under any of the schemas listed in the 'anyOf'",
        valid_as: Some(WATCH_SUCCESS),
        why: "as watch-202-success-items-post",
    },
    Allow {
        id: "watch-202-success-items-delete",
        method: "DELETE",
        template: "/crm/v8/actions/watch",
        dir: Dir::Response,
        at: "/watch/*",
        message: "is not valid under any of the schemas listed in the 'anyOf'",
        valid_as: Some(WATCH_SUCCESS),
        why: "as watch-202-success-items-post",
    },
    Allow {
        id: "records-count-number",
        method: "GET",
        template: "/crm/v8/{module_api_name}/actions/count",
        dir: Dir::Response,
        at: "/count",
        message: "is not of type \"string\"",
        valid_as: None,
        why: "record.json types count as a string; the docs answer {\"count\": <number>} (zoho-api.md §4.8; simulator README), and zoho-api reads a number",
    },
    Allow {
        id: "users-500-code",
        method: "GET",
        template: "/crm/v8/users",
        dir: Dir::Response,
        at: "/code",
        message: "\"INTERNAL_ERROR\" is not one of [\"INTERNAL_SERVER_ERROR\"]",
        valid_as: None,
        why: "users.json names its 500 code INTERNAL_SERVER_ERROR; every other API and the error table say INTERNAL_ERROR (zoho-api.md §13)",
    },
];

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

struct Ctx {
    sim: Sim,
    client: ZohoClient,
    http: reqwest::Client,
    token: String,
    /// Calls whose request is deliberately off-spec: their request issues
    /// are expected (and must be found), not failures.
    bad_requests: Mutex<BTreeSet<u64>>,
}

impl Ctx {
    async fn new(cfg: SimConfig) -> Ctx {
        let sim = Sim::start(cfg.capture_bodies(true).bulk_step_ms(10)).await.expect("simulator starts");
        let url = sim.base_url();
        let mut c = ClientConfig::new(Endpoints::custom(&url, &url, None).unwrap());
        c.retry = RetryPolicy { max_attempts: 1, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) };
        c.poll = PollPolicy { initial: Duration::from_millis(10), max_interval: Duration::from_millis(30), timeout: Duration::from_secs(60) };
        c.request_timeout = Duration::from_secs(10);
        c.token_store = Some(Arc::new(MemoryTokenStore::default()));
        let client = ZohoClient::new(c, Credentials::new("sim-client-id", "sim-client-secret", "sim-refresh-token")).unwrap();
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{url}/oauth/v2/token"))
            .form(&[("grant_type", "refresh_token"), ("client_id", "sim-client-id"), ("client_secret", "sim-client-secret"), ("refresh_token", "sim-refresh-token")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().expect("access token").to_string();
        Ctx { sim, client, http, token, bad_requests: Mutex::new(BTreeSet::new()) }
    }

    fn last_seq(&self) -> u64 {
        self.sim.calls().last().map(|c| c.seq).unwrap_or(0)
    }

    /// A raw call with the access token: (status, JSON body or Null).
    async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.sim.base_url())).header("Authorization", format!("Zoho-oauthtoken {}", self.token));
        if let Some(b) = body {
            r = r.json(&b);
        }
        sj(r.send().await.expect("send")).await
    }

    /// Runs `f` and marks the calls it makes as deliberately off-spec requests.
    async fn off_spec<T, F: Future<Output = T>>(&self, f: F) -> T {
        let before = self.last_seq();
        let out = f.await;
        let after = self.last_seq();
        assert!(after > before, "the off-spec request reached the simulator");
        self.bad_requests.lock().unwrap().extend(before + 1..=after);
        out
    }

    /// Validates every call so far; deliberately off-spec requests must be
    /// caught by the validator (proving it can fail), the rest must pass.
    fn validate(&self, scenario: &str, report: &Mutex<Report>) -> Vec<Checked> {
        let s = spec();
        let bad = self.bad_requests.lock().unwrap().clone();
        let mut out = Vec::new();
        for call in self.sim.calls() {
            let mut c = s.check(&call, ALLOW);
            if bad.contains(&call.seq) {
                assert!(!c.request_issues().is_empty(), "[{scenario}] the validator missed the off-spec request #{} {} {}?{}", call.seq, call.method, call.path, call.query);
                c.notes.push(format!("expected request issues: {}", c.request_issues().iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")));
                c.issues.retain(|i| i.dir != Dir::Request);
            }
            c.notes.push(format!("scenario {scenario}"));
            out.push(c.clone());
            report.lock().unwrap().add(c);
        }
        out
    }
}

async fn sj(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    let b = r.bytes().await.expect("body");
    (s, if b.is_empty() { Value::Null } else { serde_json::from_slice(&b).unwrap_or(Value::Null) })
}

fn rec(v: Value) -> zoho_api::Record {
    v.as_object().expect("object").clone()
}

fn statuses(checked: &[Checked], path_prefix: &str) -> BTreeSet<u16> {
    checked.iter().filter(|c| c.path.starts_with(path_prefix)).map(|c| c.status).collect()
}

// ---------------------------------------------------------------------------
// Scenarios. Each asserts what it got back, then its calls are validated.
// ---------------------------------------------------------------------------

async fn records(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 300).seed("Accounts", 5)).await;
    let c = &ctx.client;
    // list, two pages (page, then page_token is not needed below 2,000 rows)
    let mut pages = c.list("Leads", ListOptions { fields: vec!["Last_Name".into(), "Email".into(), "Modified_Time".into()], per_page: Some(200), converted: Some("both".into()), ..Default::default() }).unwrap();
    let mut rows = Vec::new();
    while let Some(p) = pages.next_page().await.unwrap() {
        rows.extend(p);
    }
    assert_eq!(rows.len(), 300);
    let ids: Vec<String> = rows.iter().take(3).map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let got = c.get_by_ids("Leads", &ids, &["Last_Name".to_string()]).await.unwrap();
    assert_eq!(got.len(), 3);
    let one = c.get_record("Leads", &ids[0]).await.unwrap().expect("record exists");
    assert_eq!(one["id"], ids[0].as_str());
    // writes
    let ins = c.insert("Leads", &[rec(json!({"Last_Name": "Fidelity", "Email": "f@example.com"}))], &WriteOptions::default()).await.unwrap();
    let new_id = ins[0].outcome.as_ref().expect("inserted").id.clone();
    let upd = c.update("Leads", &[rec(json!({"id": new_id, "Last_Name": "Fidelity 2"}))], &WriteOptions::default()).await.unwrap();
    assert!(upd[0].outcome.is_ok());
    let ups = c
        .upsert("Leads", &[rec(json!({"Last_Name": "Upserted", "Email": "f@example.com"}))], &WriteOptions { duplicate_check_fields: Some(vec!["Email".into()]), trigger: Some(vec![]) })
        .await
        .unwrap();
    assert_eq!(ups[0].outcome.as_ref().unwrap().id, new_id, "upsert matched on Email");
    let del = c.delete("Leads", &[new_id.clone()], false).await.unwrap();
    assert!(del[0].outcome.is_ok());
    let deleted = c.deleted("Leads", None).await.unwrap();
    assert!(deleted.iter().any(|d| d.id == new_id));
    let unconverted = ctx.sim.records("Leads").iter().filter(|r| r.get("Converted__s") != Some(&json!(true))).count();
    assert_eq!(c.count("Leads").await.unwrap() as usize, unconverted, "count leaves converted leads out");

    // raw: single-record routes and every non-200 status they have
    let (s, v) = ctx.raw(Method::GET, &format!("/crm/v8/Leads/{}?fields=Last_Name", ids[1]), None).await;
    assert_eq!((s, v["data"][0]["id"].as_str()), (StatusCode::OK, Some(ids[1].as_str())));
    let (s, v) = ctx.raw(Method::PUT, &format!("/crm/v8/Leads/{}", ids[1]), Some(json!({"data": [{"Last_Name": "Renamed"}]}))).await;
    assert_eq!((s, v["data"][0]["code"].as_str()), (StatusCode::OK, Some("SUCCESS")));
    let (s, v) = ctx.raw(Method::DELETE, &format!("/crm/v8/Leads/{}", ids[2]), None).await;
    assert_eq!((s, v["data"][0]["code"].as_str()), (StatusCode::OK, Some("SUCCESS")));
    let (s, _) = ctx.raw(Method::GET, &format!("/crm/v8/Leads/{}", ids[2]), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "deleted record");
    let (s, _) = ctx.raw(Method::GET, "/crm/v8/Deals?fields=Deal_Name", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "empty module");
    let r = ctx.http.get(format!("{}/crm/v8/Leads?fields=Last_Name", ctx.sim.base_url())).header("Authorization", format!("Zoho-oauthtoken {}", ctx.token)).header("If-Modified-Since", "2035-01-01T00:00:00+00:00").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let (s, v) = ctx
        .raw(Method::POST, "/crm/v8/Leads", Some(json!({"data": [{"Last_Name": "Good"}, {"First_Name": "No last name"}]})))
        .await;
    assert_eq!((s, v["data"][1]["code"].as_str()), (StatusCode::MULTI_STATUS, Some("MANDATORY_NOT_FOUND")));
    let (s, v) = ctx.raw(Method::PUT, "/crm/v8/Leads", Some(json!({"data": [{"Last_Name": "no id"}]}))).await;
    assert_eq!((s, v["data"][0]["status"].as_str()), (StatusCode::BAD_REQUEST, Some("error")));
    let (s, v) = ctx.raw(Method::POST, "/crm/v8/Leads/upsert", Some(json!({"data": [{"Last_Name": "U1", "Email": "u1@example.com"}, {"Last_Name": "U2", "Email": "bad"}]}))).await;
    assert_eq!(s, StatusCode::MULTI_STATUS, "{v}");
    let hundred_one: Vec<Value> = (0..101).map(|i| json!({"Last_Name": format!("n{i}")})).collect();
    let (s, v) = ctx.raw(Method::POST, "/crm/v8/Leads", Some(json!({"data": hundred_one}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("LIMIT_EXCEEDED")));
    let (s, v) = ctx.raw(Method::GET, "/crm/v8/Leads", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("REQUIRED_PARAM_MISSING")));
    let (s, v) = ctx.raw(Method::DELETE, "/crm/v8/Leads", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("REQUIRED_PARAM_MISSING")));
    let (s, v) = ctx.raw(Method::GET, "/crm/v8/Nope?fields=Name", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_MODULE")));
    let (s, v) = ctx.raw(Method::GET, "/crm/v8/Leads/actions/count?criteria=(Last_Name:equals:x)", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // off-spec requests the validator must catch
    let (s, _) = ctx.off_spec(ctx.raw(Method::GET, "/crm/v8/Leads?fields=Last_Name&shoe_size=42", None)).await;
    assert_eq!(s, StatusCode::OK, "the simulator ignores unknown parameters, as Zoho does");
    let (s, _) = ctx.off_spec(ctx.raw(Method::GET, "/crm/v8/Leads?fields=Last_Name&per_page=lots", None)).await;
    assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::OK, "{s}");

    let checked = ctx.validate("records", &report);
    let seen = statuses(&checked, "/crm/v8/Leads");
    for st in [200, 201, 204, 207, 304, 400] {
        assert!(seen.contains(&st), "records: status {st} exercised ({seen:?})");
    }
}

async fn coql(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 300)).await;
    let q = Query::new("Leads", ["Last_Name", "Email"]).filter(Cond::cmp("Last_Name", CmpOp::Ne, Literal::Text("nobody".into())));
    let mut pages = ctx.client.coql(q, Some(Keyset::Id), 200).unwrap();
    let mut n = 0;
    while let Some(p) = pages.next_page().await.unwrap() {
        n += p.len();
    }
    let unconverted = ctx.sim.records("Leads").iter().filter(|r| r.get("Converted__s") != Some(&json!(true))).count();
    assert!(unconverted < 300, "the seed has converted leads");
    assert_eq!(n, unconverted, "COQL leaves converted leads out");
    let (s, v) = ctx.raw(Method::POST, "/crm/v8/coql", Some(json!({"select_query": "select Last_Name from Leads where"}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("SYNTAX_ERROR")));
    let (s, _) = ctx.raw(Method::POST, "/crm/v8/coql", Some(json!({"select_query": "select Last_Name from Leads where Last_Name = 'nobody'"}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = ctx
        .off_spec(async {
            let r = ctx.http.post(format!("{}/crm/v8/coql", ctx.sim.base_url())).header("Authorization", format!("Zoho-oauthtoken {}", ctx.token)).header("content-type", "text/plain").body("select id from Leads limit 1").send().await.unwrap();
            sj(r).await
        })
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("MEDIA_TYPE_NOT_SUPPORTED")));
    ctx.sim.inject(Fault::status(429, 1).on_path("/crm/v8/coql"));
    let (s, v) = ctx.raw(Method::POST, "/crm/v8/coql", Some(json!({"select_query": "select id from Leads limit 1"}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("TOO_MANY_REQUESTS")));
    let checked = ctx.validate("coql", &report);
    assert_eq!(statuses(&checked, "/crm/v8/coql"), BTreeSet::from([200, 204, 400, 415, 429]));
}

async fn bulk_read(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 250).bulk_page_size(100)).await;
    let query = BulkReadQuery {
        module: "Leads".into(),
        fields: vec!["Last_Name".into(), "Email".into()],
        criteria: Some(Criteria::and(vec![
            Criteria::condition("Modified_Time", "greater_equal", json!("2000-01-01T00:00:00+00:00")),
            Criteria::condition("Last_Name", "not_equal", json!("nobody")),
        ])),
        cvid: None,
    };
    let mut export = ctx.client.bulk_export(query);
    let mut rows = 0;
    while let Some((job, page)) = export.next_page(&mut |_| {}).await.unwrap() {
        assert_eq!(job.state, "COMPLETED");
        rows += page.count();
    }
    assert_eq!((rows, export.pages_done()), (250, 3));
    // one condition, no group
    let q1 = BulkReadQuery { module: "Leads".into(), fields: vec!["Last_Name".into()], criteria: Some(Criteria::condition("Last_Name", "equal", json!("nobody"))), cvid: None };
    let id = ctx.client.bulk_read_create(&q1, None).await.unwrap();
    let job = ctx.client.bulk_read_wait(&id, &mut |_| {}).await.unwrap();
    assert_eq!(job.result.as_ref().and_then(|r| r.count), Some(0));
    // a job seen before it completes, and a failed one
    ctx.sim.inject(Fault::job_failed());
    let q2 = BulkReadQuery { module: "Leads".into(), ..Default::default() };
    let id = ctx.client.bulk_read_create(&q2, None).await.unwrap();
    let early = ctx.client.bulk_read_status(&id).await.unwrap();
    assert!(!early.is_finished(), "polled before the first step");
    let (s, v) = ctx.raw(Method::GET, &format!("/crm/bulk/v8/read/{id}/result"), None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("RESOURCE_NOT_FOUND")), "result before completion");
    let err = ctx.client.bulk_read_wait(&id, &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("failed"), "{err}");
    // errors
    let (s, v) = ctx.raw(Method::GET, "/crm/bulk/v8/read/1234567890", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("RESOURCE_NOT_FOUND")));
    let (s, v) = ctx.raw(Method::GET, "/crm/bulk/v8/read/1234567890/result", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("RESOURCE_NOT_FOUND")));
    let (s, v) = ctx.raw(Method::POST, "/crm/bulk/v8/read", Some(json!({"query": {"module": {"api_name": "Visits"}}, "file_type": "csv"}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("MODULE_NOT_SUPPORTED")));
    let (s, v) = ctx
        .off_spec(async {
            let r = ctx.http.post(format!("{}/crm/bulk/v8/read", ctx.sim.base_url())).header("Authorization", format!("Zoho-oauthtoken {}", ctx.token)).body(r#"{"query":{"module":{"api_name":"Leads"}}}"#).send().await.unwrap();
            sj(r).await
        })
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("MEDIA_TYPE_NOT_SUPPORTED")));
    let (s, _) = ctx.off_spec(ctx.raw(Method::POST, "/crm/bulk/v8/read", Some(json!({"query": {"module": {"api_name": "Leads"}}, "file_type": "xlsx"})))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    ctx.sim.inject(Fault::status(429, 1).on_path("/crm/bulk/v8/read/"));
    let (s, _) = ctx.raw(Method::GET, "/crm/bulk/v8/read/1234567890/result", None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let checked = ctx.validate("bulk_read", &report);
    let seen = statuses(&checked, "/crm/bulk/v8/read");
    for st in [200, 201, 400, 404, 415, 429] {
        assert!(seen.contains(&st), "bulk read: status {st} ({seen:?})");
    }
}

async fn bulk_write(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default().seed("Orders", 20)).await;
    let spec = BulkWriteSpec {
        module: "Orders".into(),
        operation: WriteOp::Upsert,
        find_by: Some("parent_id".into()),
        columns: vec![Column::new("parent_id"), Column::new("Name"), Column::new("Quantity"), Column::with_format("Order_Date", "yyyy-MM-dd")],
        ignore_empty: true,
    };
    let mut rows = (0..30).map(|i| -> zoho_api::Result<Row> {
        Ok(vec![Some(format!("ORD-{i:06}")), Some(format!("Order {i}")), Some(if i == 7 { "many".into() } else { i.to_string() }), Some("2025-03-04".into())])
    });
    let mut results = Vec::new();
    let sent = ctx.client.bulk_write(&spec, &mut rows, &mut |_| {}, &mut |r| {
        results.extend(r.results);
        Ok(())
    }).await.unwrap();
    assert_eq!(sent, 30);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 29, "row 7 has a bad Quantity");
    // errors
    let url = ctx.sim.base_url();
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"not a zip".to_vec()).file_name("x.zip"));
    let r = ctx.http.post(format!("{url}/crm/v8/upload")).header("Authorization", format!("Zoho-oauthtoken {}", ctx.token)).multipart(form).send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["x-error"].as_str().is_some_and(|e| e.contains("X-CRM-ORG")), "upload without feature/X-CRM-ORG: {v}");
    let (s, v) = ctx.raw(Method::POST, "/crm/bulk/v8/write", Some(json!({"operation": "insert", "resource": [{"type": "data", "module": {"api_name": "Orders"}, "file_id": "999"}]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = ctx.raw(Method::GET, "/crm/bulk/v8/write/1234567890", None).await;
    assert!(s.is_client_error(), "{s} {v}");
    let (s, _) = ctx.raw(Method::GET, &format!("/v8/crm/{}/bulk-write/1234567890/1234567890.zip", ctx.sim.zgid()), None).await;
    assert!(s.is_client_error());
    let checked = ctx.validate("bulk_write", &report);
    assert!(checked.iter().any(|c| c.path.contains("/bulk-write/") && c.status == 200), "result file downloaded");
    assert!(checked.iter().any(|c| c.path == "/crm/v8/upload" && c.status == 200));
}

async fn watch(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 5)).await;
    let (s, _) = ctx.raw(Method::GET, "/crm/v8/actions/watch", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "no channels yet");
    let ch = |id: i64, events: &[&str]| Channel {
        channel_id: id,
        events: events.iter().map(|e| e.to_string()).collect(),
        notify_url: "http://127.0.0.1:9/hook".into(),
        token: Some("fidelity".into()),
        channel_expiry: None,
        return_affected_field_values: true,
        notify_on_related_action: false,
    };
    let r = ctx.client.watch_enable(&[ch(1000, &["Leads.all"]), ch(1001, &["Deals.create", "Deals.edit"])]).await.unwrap();
    assert!(r.iter().all(|x| x.outcome.is_ok()));
    let list = ctx.client.watch_list().await.unwrap();
    assert_eq!(list.len(), 2);
    let mut later = ch(1000, &["Leads.all"]);
    later.channel_expiry = Some((chrono::Utc::now() + chrono::Duration::hours(5)).fixed_offset());
    assert!(ctx.client.watch_update(&[later]).await.unwrap()[0].outcome.is_ok());
    assert!(ctx.client.watch_replace(&[ch(1001, &["Deals.all"])]).await.unwrap()[0].outcome.is_ok());
    assert!(ctx.client.watch_remove_events(1001, &["Deals.delete".to_string()]).await.unwrap()[0].outcome.is_ok());
    // 202: one channel of two fails
    let (s, v) = ctx
        .raw(Method::POST, "/crm/v8/actions/watch", Some(json!({"watch": [
            {"channel_id": 2000, "events": ["Leads.create"], "notify_url": "http://127.0.0.1:9/x"},
            {"channel_id": 2001, "events": ["Nope.create"], "notify_url": "http://127.0.0.1:9/x"}
        ]})))
        .await;
    assert_eq!((s, v["watch"][1]["status"].as_str()), (StatusCode::ACCEPTED, Some("error")));
    for m in [Method::PUT, Method::PATCH] {
        let (s, _) = ctx.raw(m, "/crm/v8/actions/watch", Some(json!({"watch": [{"channel_id": 2000, "events": ["Leads.edit"], "notify_url": "http://127.0.0.1:9/x"}, {"channel_id": 99, "events": ["Leads.edit"], "notify_url": "http://127.0.0.1:9/x"}]}))).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let (s, _) = ctx.raw(Method::DELETE, "/crm/v8/actions/watch?channel_ids=2000,99", None).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = ctx.raw(Method::POST, "/crm/v8/actions/watch", Some(json!({"watch": []}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("MANDATORY_NOT_FOUND")));
    let (s, v) = ctx.raw(Method::GET, "/crm/v8/actions/watch?channel_id=1000&module=Leads&page=1&per_page=10", None).await;
    assert_eq!((s, v["watch"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    assert!(ctx.client.watch_disable(&[1000, 1001]).await.unwrap().iter().all(|x| x.outcome.is_ok()));
    let checked = ctx.validate("watch", &report);
    let seen = statuses(&checked, "/crm/v8/actions/watch");
    assert_eq!(seen, BTreeSet::from([200, 201, 202, 204, 400]));
}

async fn metadata(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default()).await;
    let c = &ctx.client;
    assert!(c.modules().await.unwrap().iter().any(|m| m.api_name == "Orders"));
    assert_eq!(c.module("Leads").await.unwrap().map(|m| m.api_name), Some("Leads".into()));
    assert!(c.fields("Orders").await.unwrap().iter().any(|f| f.api_name == "parent_id"));
    assert_eq!(c.org().await.unwrap().zgid, ctx.sim.zgid());
    assert!(!c.current_user().await.unwrap().id.is_empty());
    let leads_id = c.module("Leads").await.unwrap().unwrap().id.expect("modules carry an id");
    let (s, v) = ctx.raw(Method::GET, &format!("/crm/v8/settings/modules/{leads_id}"), None).await;
    assert_eq!((s, v["modules"][0]["api_name"].as_str()), (StatusCode::OK, Some("Leads")), "module by id");
    let (s, _) = ctx.raw(Method::GET, "/crm/v8/settings/modules/Nope", None).await;
    assert!(s == StatusCode::NO_CONTENT || s == StatusCode::BAD_REQUEST, "{s}");
    let (s, _) = ctx.raw(Method::GET, "/crm/v8/settings/fields?module=Nope", None).await;
    assert!(s == StatusCode::NO_CONTENT || s == StatusCode::BAD_REQUEST, "{s}");
    let (s, v) = ctx.off_spec(ctx.raw(Method::GET, "/crm/v8/settings/fields", None)).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("REQUIRED_PARAM_MISSING")));
    let (s, v) = ctx.raw(Method::GET, "/crm/v8/users?type=ActiveUsers", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    ctx.validate("metadata", &report);
}

async fn auth_and_faults(report: Arc<Mutex<Report>>) {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 5)).await;
    let url = ctx.sim.base_url();
    let r = ctx.http.get(format!("{url}/crm/v8/Leads?fields=Last_Name")).header("Authorization", "Zoho-oauthtoken nope").send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("INVALID_TOKEN")));
    let r = ctx.http.get(format!("{url}/crm/v8/org")).send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("AUTHENTICATION_FAILURE")));
    ctx.sim.inject(Fault::token_expiry(1).on_path("/crm/v8/settings"));
    let (s, _) = ctx.raw(Method::GET, "/crm/v8/settings/modules", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctx.sim.inject(Fault::status(500, 1).on_path("/crm/v8/users"));
    let (s, v) = ctx.raw(Method::GET, "/crm/v8/users?type=CurrentUser", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("INTERNAL_ERROR")));
    ctx.sim.inject(Fault::status(429, 1).on_path("/crm/v8/Leads"));
    let (s, _) = ctx.raw(Method::GET, "/crm/v8/Leads?fields=Last_Name", None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, v) = ctx.raw(Method::GET, "/crm/v9/nothing/here/at/all", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("INVALID_URL_PATTERN")));
    let checked = ctx.validate("auth_and_faults", &report);
    assert!(checked.iter().any(|c| c.op.is_none() && c.path == "/oauth/v2/token"), "the token call has no spec operation");
}

// ---------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------

/// Every operation the simulator routes (mirrors src/routes/mod.rs): the
/// suite must exercise each, or it is not driving everything.
const SIM_OPERATIONS: &[&str] = &[
    "GET /crm/v8/{module_api_name} [record.json]",
    "POST /crm/v8/{module_api_name} [record.json]",
    "PUT /crm/v8/{module_api_name} [record.json]",
    "DELETE /crm/v8/{module_api_name} [record.json]",
    "GET /crm/v8/{module_api_name}/{id} [record.json]",
    "PUT /crm/v8/{module_api_name}/{id} [record.json]",
    "DELETE /crm/v8/{module_api_name}/{id} [record.json]",
    "POST /crm/v8/{module_api_name}/upsert [record.json]",
    "GET /crm/v8/{module_api_name}/deleted [record.json]",
    "GET /crm/v8/{module_api_name}/actions/count [record.json]",
    "POST /crm/v8/coql [coql.json]",
    "POST /crm/bulk/v8/read [bulk_read.json]",
    "GET /crm/bulk/v8/read/{job_id} [bulk_read.json]",
    "GET /crm/bulk/v8/read/{job_id}/result [bulk_read.json]",
    "POST /crm/v8/upload [bulk_write.json]",
    "POST /crm/bulk/v8/write [bulk_write.json]",
    "GET /crm/bulk/v8/write/{job_id} [bulk_write.json]",
    "GET /{download_url} [bulk_write.json]",
    "GET /crm/v8/actions/watch [notifications.json]",
    "POST /crm/v8/actions/watch [notifications.json]",
    "PUT /crm/v8/actions/watch [notifications.json]",
    "PATCH /crm/v8/actions/watch [notifications.json]",
    "DELETE /crm/v8/actions/watch [notifications.json]",
    "GET /crm/v8/settings/modules [modules.json]",
    "GET /crm/v8/settings/modules/{api_name} [modules.json]",
    "GET /crm/v8/settings/modules/{id} [modules.json]",
    "GET /crm/v8/settings/fields [fields.json]",
    "GET /crm/v8/org [org.json]",
    "GET /crm/v8/users [users.json]",
];

/// What the simulator does with each spec operation the suite did not reach.
async fn probe_unexercised(seen: &BTreeSet<String>) -> BTreeMap<String, String> {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 1)).await;
    let mut out = BTreeMap::new();
    for op in &spec().ops {
        let label = op.label();
        if seen.contains(&label) {
            continue;
        }
        let method = Method::from_bytes(op.method.as_bytes()).unwrap();
        let body = matches!(op.method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        let path = oas::instantiate(&op.template);
        let (s, _) = ctx.raw(method, &path, body).await;
        let call = ctx.sim.calls().pop().expect("probe logged");
        let code = call.code.unwrap_or_default();
        let same = spec().find_op(&op.method, &path).map(|o| o.label()).filter(|l| *l != label && seen.contains(l));
        let what = if let Some(other) = same {
            format!("same method and path as `{other}`, which is validated (a second description of it)")
        } else if s == StatusCode::METHOD_NOT_ALLOWED || (s == StatusCode::NOT_FOUND && code == "INVALID_URL_PATTERN") {
            format!("not routed ({} {code})", s.as_u16())
        } else {
            format!("not implemented: `{path}` reaches the `{}` handler ({} {code})", call.endpoint, s.as_u16())
        };
        out.insert(label, what);
    }
    out
}

#[test]
fn spec_loads_offline_and_is_closed() {
    let s = spec();
    assert_eq!(s.files().count(), 18);
    assert!(s.dangling_refs().is_empty(), "unresolved refs: {:?}", s.dangling_refs());
    assert!(s.ops.len() > 90, "{} operations", s.ops.len());
}

/// `nullable` is rewritten only where it sits next to `type`.
#[test]
fn nullable_always_has_type() {
    for f in std::fs::read_dir(oas::spec_dir()).unwrap() {
        let p = f.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        fn walk(v: &Value, file: &str) {
            match v {
                Value::Object(o) => {
                    if o.get("nullable") == Some(&Value::Bool(true)) {
                        assert!(o.get("type").is_some_and(Value::is_string), "{file}: nullable without type: {v}");
                    }
                    o.values().for_each(|x| walk(x, file));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, file)),
                _ => {}
            }
        }
        walk(&v, &p.display().to_string());
    }
}

/// The validator rejects what it should (so the suite can fail) and
/// accepts the OAS quirks it is meant to accept.
#[test]
fn validator_catches_deviations() {
    let s = spec();
    let call = |method: &str, path: &str, query: &str, status: u16, req: Option<Value>, resp: Option<Value>| zoho_sim::CallRecord {
        seq: 1,
        method: method.into(),
        path: path.into(),
        query: query.into(),
        endpoint: "x".into(),
        status,
        credits: 0,
        list_credits: 0,
        code: None,
        request_content_type: req.as_ref().map(|_| "application/json".into()),
        request_body: req,
        response_content_type: resp.as_ref().map(|_| "application/json;charset=UTF-8".into()),
        response_body: resp,
        duration_ms: 0,
        started_us: 0,
        ended_us: 0,
    };
    assert_eq!(s.find_op("GET", "/crm/v8/Leads/123").unwrap().template, "/crm/v8/{module_api_name}/{id}");
    assert_eq!(s.find_op("POST", "/crm/v8/Leads/upsert").unwrap().template, "/crm/v8/{module_api_name}/upsert");
    assert_eq!(s.find_op("GET", "/crm/v8/settings/modules/Leads").unwrap().template, "/crm/v8/settings/modules/{api_name}");
    assert_eq!(s.find_op("GET", "/crm/v8/settings/modules/123").unwrap().template, "/crm/v8/settings/modules/{id}");
    assert_eq!(s.find_op("GET", "/v8/crm/1/bulk-write/2/3.zip").unwrap().template, "/{download_url}");
    assert_eq!(s.find_op("GET", "/crm/v8/Leads/actions/count").unwrap().file, "record.json");
    assert!(s.find_op("POST", "/oauth/v2/token").is_none());

    let ok_job = json!({"data": [{"status": "success", "code": "ADDED_SUCCESSFULLY", "message": "Added successfully.",
        "details": {"id": "1", "operation": "read", "state": "ADDED", "created_by": {"id": "2", "name": "A"}, "created_time": "2025-01-01T10:00:00+05:30"}}], "info": {}});
    let c = s.check(&call("POST", "/crm/bulk/v8/read", "", 201, Some(json!({"query": {"module": {"api_name": "Leads"}}, "file_type": "csv"})), Some(ok_job.clone())), ALLOW);
    assert!(c.ok() && c.allowed.len() == 1, "module by api_name is allowlisted: {:?} {:?}", c.issues, c.allowed);
    let c = s.check(&call("POST", "/crm/bulk/v8/read", "", 201, Some(json!({"query": {"module": {"api_name": "Leads"}}, "file_type": "pdf"})), Some(ok_job.clone())), ALLOW);
    assert!(c.issues.iter().any(|i| i.at == "/file_type"), "{:?}", c.issues);
    let mut bad = ok_job.clone();
    bad["data"][0]["details"]["state"] = json!("DANCING");
    bad["data"][0]["details"]["created_time"] = json!("yesterday");
    let c = s.check(&call("POST", "/crm/bulk/v8/read", "", 201, None, Some(bad)), &[]);
    // data[] items are themselves a oneOf: the error names the item
    assert!(c.issues.iter().any(|i| i.dir == Dir::Response && i.at == "/data/0"), "{:?}", c.issues);
    // nullable: `cvid` is `nullable: true`
    let job = |cvid: Value| json!({"data": [{"id": "1", "operation": "read", "state": "ADDED", "file_type": "csv",
        "query": {"module": {"api_name": "Leads", "id": "3"}, "cvid": cvid, "fields": [], "page": 1, "criteria": {"type": "x", "group_operator": "and", "group": []}, "file_type": "ics"},
        "created_by": {"id": "2", "name": "A"}, "created_time": "2025-01-01T10:00:00+05:30",
        "result": {"page": 1, "count": 0, "download_url": "/x", "per_page": 1, "more_records": false, "next_page_token": "t"}}]});
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 200, None, Some(job(Value::Null))), &[]);
    assert!(c.ok(), "nullable honoured: {:?}", c.issues);
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 200, None, Some(job(json!(5)))), &[]);
    assert!(c.issues.iter().any(|i| i.at == "/data/0/query/cvid"), "{:?}", c.issues);
    let mut j = job(Value::Null);
    j["data"][0]["created_time"] = json!("yesterday");
    j["data"][0]["state"] = json!("DANCING");
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 200, None, Some(j)), &[]);
    assert!(c.issues.iter().any(|i| i.at == "/data/0/created_time"), "date-time format checked: {:?}", c.issues);
    assert!(c.issues.iter().any(|i| i.at == "/data/0/state"), "enum checked: {:?}", c.issues);
    // parameters: undeclared, enum, required
    let c = s.check(&call("GET", "/crm/v8/Leads", "fields=Last_Name&bogus=1&per_page=lots", 204, None, None), &[]);
    assert!(c.issues.iter().any(|i| i.at == "query:bogus"), "{:?}", c.issues);
    assert!(c.issues.iter().any(|i| i.at == "query:per_page"), "integer parameter checked: {:?}", c.issues);
    assert!(!c.status_in_spec, "204 is not declared for Get Records");
    assert!(s.check(&call("GET", "/crm/v8/Leads", "fields=Last_Name&per_page=200&converted=both", 204, None, None), &[]).ok());
    let c = s.check(&call("GET", "/crm/v8/users", "type=Everyone", 204, None, None), &[]);
    assert!(c.issues.iter().any(|i| i.at == "query:type"), "enum parameter checked: {:?}", c.issues);
    assert!(s.check(&call("GET", "/crm/v8/users", "type=CurrentUser", 204, None, None), &[]).ok());
    let c = s.check(&call("GET", "/crm/v8/settings/fields", "", 204, None, None), &[]);
    assert!(c.issues.iter().any(|i| i.at == "query:module"), "{:?}", c.issues);
    // a 204 with a body
    let c = s.check(&call("GET", "/crm/v8/actions/watch", "", 204, None, Some(json!({}))), &[]);
    assert!(!c.ok());
    // error bodies against the error schemas
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 404, None, Some(json!({"code": "RESOURCE_NOT_FOUND", "details": {"resource": "1"}, "message": "m", "status": "error"}))), &[]);
    assert!(c.ok() && c.status_in_spec, "{:?}", c.issues);
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 404, None, Some(json!({"code": "RESOURCE_NOT_FOUND"}))), &[]);
    assert!(!c.ok());
    // the allowlist is narrow: it covers criteria, not other keys
    let mut crit = job(Value::Null);
    crit["data"][0]["query"]["criteria"] = json!({"field": {"api_name": "Last_Name", "id": "4"}, "comparator": "equal", "value": "x"});
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 200, None, Some(crit.clone())), ALLOW);
    assert!(c.ok() && c.allowed.len() == 2, "{:?} {:?}", c.issues, c.allowed);
    crit["data"][0]["query"]["criteria"]["comparator"] = json!("resembles");
    let c = s.check(&call("GET", "/crm/bulk/v8/read/1", "", 200, None, Some(crit)), ALLOW);
    assert!(!c.ok(), "bad comparator is not allowlisted");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn openapi_fidelity() {
    let report = Arc::new(Mutex::new(Report::default()));
    type Scenario = fn(Arc<Mutex<Report>>) -> std::pin::Pin<Box<dyn Future<Output = ()>>>;
    let scenarios: Vec<(&str, Scenario)> = vec![
        ("records", |r| Box::pin(records(r))),
        ("coql", |r| Box::pin(coql(r))),
        ("bulk_read", |r| Box::pin(bulk_read(r))),
        ("bulk_write", |r| Box::pin(bulk_write(r))),
        ("watch", |r| Box::pin(watch(r))),
        ("metadata", |r| Box::pin(metadata(r))),
        ("auth_and_faults", |r| Box::pin(auth_and_faults(r))),
    ];
    let mut panicked = Vec::new();
    for (name, f) in scenarios {
        // Each scenario runs on its own thread and runtime: a failed
        // assertion is caught so the others still run and the report is
        // still written.
        let r = report.clone();
        if std::thread::spawn(move || runtime().block_on(f(r))).join().is_err() {
            panicked.push(name);
        }
    }
    let report = Arc::try_unwrap(report).unwrap().into_inner().unwrap();
    let seen: BTreeSet<String> = report.checked.iter().filter_map(|c| c.op.clone()).collect();
    let probes = runtime().block_on(probe_unexercised(&seen));
    let md = report.markdown(spec(), ALLOW, &probes);
    println!("{md}");
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/oas-coverage.md");
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, &md).expect("write target/oas-coverage.md");

    assert!(panicked.is_empty(), "scenarios failed: {panicked:?}");
    let missing: Vec<&&str> = SIM_OPERATIONS.iter().filter(|o| !seen.contains(**o)).collect();
    assert!(missing.is_empty(), "simulator operations the suite did not exercise: {missing:?}");
    let unused: Vec<&str> = ALLOW.iter().filter(|a| !report.checked.iter().any(|c| c.allowed.iter().any(|(id, _)| *id == a.id))).map(|a| a.id).collect();
    assert!(unused.is_empty(), "allowlist entries no call needed (remove them): {unused:?}");
    let failures = report.failures();
    assert!(failures.is_empty(), "{} calls deviate from the OAS outside the allowlist (see target/oas-coverage.md)", failures.len());
}
