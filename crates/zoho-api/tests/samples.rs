//! Contract tests on Zoho's documented bodies (`spec/zoho-samples/`): each
//! response goes through the client's own call and parse path, served by a
//! fixture server, and each request the client builds is compared with the
//! documented one key by key. `every_sample_is_covered` keeps the list whole.

mod common;

use std::collections::BTreeSet;
use std::io::Write;

use chrono::{DateTime, FixedOffset};
use common::fixture::{sample, sample_json, Fixture};
use serde_json::{json, Value};
use zoho_api::bulk_read::{BulkReadJob, BulkReadQuery, Criteria};
use zoho_api::bulk_write::{BulkWriteSpec, Chunk, Column, RowStatus};
use zoho_api::coql::{CmpOp, Cond, Literal, Query};
use zoho_api::notifications::{Channel, Operation, WebhookPayload};
use zoho_api::records::ListOptions;
use zoho_api::{Record, WriteOp, WriteOptions};

/// Every sample a test below reads; `every_sample_is_covered` checks that
/// this is all of `spec/zoho-samples/`.
const COVERED: &[&str] = &[
    "oauth/refresh_token_success_phonebridge_v3.json",
    "oauth/refresh_token_success_vertical_solutions_v6.json",
    "modules/get_modules.json",
    "modules/get_module_leads.json",
    "fields/get_fields_leads.json",
    "records/get_records_leads_page1.json",
    "records/get_records_leads_page_token.json",
    "records/get_record_by_id.json",
    "records/get_deleted_records_leads.json",
    "records/get_record_count_leads.json",
    "records_write/insert_leads_request.json",
    "records_write/insert_leads_response.json",
    "records_write/insert_deals_request.json",
    "records_write/insert_deals_response.json",
    "records_write/update_deals_request.json",
    "records_write/update_deals_response.json",
    "records_write/upsert_leads_request.json",
    "records_write/upsert_leads_response.json",
    "records_write/delete_leads_response.json",
    "records_write/mass_update_response_with_invalid_id.json",
    "coql/basic_request.json",
    "coql/basic_response.json",
    "coql/two_level_lookup_request.json",
    "coql/two_level_lookup_response.json",
    "coql/owner_lookup_request.json",
    "coql/owner_lookup_response.json",
    "coql/multi_module_lookup_request.json",
    "coql/multi_module_lookup_response.json",
    "coql/aggregate_sum_request.json",
    "coql/aggregate_sum_response.json",
    "coql/territories_request.json",
    "coql/territories_response.json",
    "coql/lookup_names_request.json",
    "coql/lookup_names_response.json",
    "coql/rollup_datetime_request.json",
    "coql/rollup_datetime_response.json",
    "bulk_read/create_job_request_single_criterion.json",
    "bulk_read/create_job_request_criteria_group_cvid.json",
    "bulk_read/create_job_request_page_token.json",
    "bulk_read/create_job_request_events_ics.json",
    "bulk_read/create_job_response.json",
    "bulk_read/job_status_added.json",
    "bulk_read/job_status_added_v3.json",
    "bulk_read/job_status_queued.json",
    "bulk_read/job_status_in_progress.json",
    "bulk_read/job_status_completed.json",
    "bulk_read/job_status_completed_criteria_cvid.json",
    "bulk_read/callback_completed.json",
    "bulk_read/callback_failed.json",
    "bulk_write/upload_response.json",
    "bulk_write/create_job_request_update.json",
    "bulk_write/create_job_request_subform.json",
    "bulk_write/create_job_request_parent_child.json",
    "bulk_write/create_job_response.json",
    "bulk_write/job_status_added.json",
    "bulk_write/job_status_in_progress.json",
    "bulk_write/job_status_completed.json",
    "bulk_write/job_status_parent_child.json",
    "notifications/enable_request.json",
    "notifications/enable_response.json",
    "notifications/update_put_request.json",
    "notifications/update_put_response.json",
    "notifications/update_patch_request.json",
    "notifications/update_patch_response.json",
    "notifications/disable_response.json",
    "notifications/disable_specific_request.json",
    "notifications/disable_specific_response.json",
    "notifications/get_details_response.json",
    "notifications/callback_insert.json",
    "notifications/callback_update_affected_values.json",
    "org_users/get_org.json",
    "org_users/get_users_all.json",
];

#[test]
fn every_sample_is_covered() {
    let root = format!("{}/../../spec/zoho-samples", env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeSet::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                found.insert(f.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(found.len(), 72, "the corpus holds 72 documented bodies");
    assert_eq!(found, covered, "a sample without a test, or a test without its sample");
}

/// Asserts that every key the client sends is one the documented request
/// has, with the same value (ids compared as text: the docs send strings),
/// and returns the documented keys the client leaves out.
fn same_keys(ours: &Value, documented: &Value, path: &str) -> Vec<String> {
    let mut missing = Vec::new();
    match (ours, documented) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                let doc = b.get(k).unwrap_or_else(|| panic!("the client sends {p}, which the documented request does not have"));
                missing.extend(same_keys(v, doc, &p));
            }
            missing.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| format!("{path}.{k}")));
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: list length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                missing.extend(same_keys(x, y, &format!("{path}[{i}]")));
            }
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
    missing
}

fn rec(v: &Value) -> Record {
    v.as_object().expect("a record").clone()
}

fn records_of(request: &Value) -> Vec<Record> {
    request["data"].as_array().unwrap().iter().map(rec).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn zip_of(name: &str, text: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(text.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

// ---- OAuth ----------------------------------------------------------------

#[tokio::test]
async fn token_replies_with_and_without_scope() {
    for (file, token) in [
        ("oauth/refresh_token_success_phonebridge_v3.json", "{new_access_token}"),
        ("oauth/refresh_token_success_vertical_solutions_v6.json", " ***** "),
    ] {
        let fx = Fixture::start().await;
        fx.serve_only("POST", "/oauth/v2/token", 200, sample(file));
        fx.serve("GET", "/crm/v8/org", 200, sample("org_users/get_org.json"));
        let c = fx.client();
        c.org().await.unwrap();
        let call = &fx.seen_at("/crm/v8/org")[0];
        // HTTP trims a header value's trailing blanks.
        assert_eq!(call.authorization.as_deref(), Some(format!("Zoho-oauthtoken {token}").trim_end()), "{file}");
        let refresh = &fx.seen_at("/oauth/v2/token")[0];
        assert!(refresh.authorization.is_none(), "the refresh sends no token");
        let parsed: zoho_api::auth::TokenResponse = zoho_api::wire::parse("oauth/token", &sample(file)).unwrap();
        assert_eq!(parsed.api_domain.as_deref(), Some("https://www.zohoapis.com"));
        assert_eq!(parsed.lifetime().as_secs(), 3600, "expires_in is seconds");
        assert_eq!(parsed.scope.is_some(), file.contains("vertical"), "scope is in one sample only");
    }
}

// ---- org, users, modules, fields ------------------------------------------

#[tokio::test]
async fn org_and_users() {
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/v8/org", 200, sample("org_users/get_org.json"));
    fx.serve("GET", "/crm/v8/users", 200, sample("org_users/get_users_all.json"));
    let c = fx.client();
    let org = c.org().await.unwrap();
    assert_eq!((org.id.as_str(), org.zgid.as_str()), ("5725767000000020005", "808232144"));
    assert_eq!(org.currency.as_deref(), Some("US Dollar - USD"), "a string here, an object in field metadata");
    assert_eq!(org.time_zone.as_deref(), Some("America/Los_Angeles"));
    assert_eq!(org.org_type.as_deref(), Some("production"));
    let me = c.current_user().await.unwrap();
    assert_eq!(me.id, "5725767000000411001");
    assert_eq!(me.full_name.as_deref(), Some("Patricia Boyle"));
    assert!(me.email.as_deref().is_some_and(|e| e.contains('@')));
    let users: zoho_api::metadata::UsersReply = zoho_api::wire::parse("users", &sample("org_users/get_users_all.json")).unwrap();
    assert_eq!(users.users.len(), 15, "keys present on some users only do not matter");
    assert_eq!(fx.seen_at("/crm/v8/users")[0].query("type"), Some("CurrentUser"));
}

#[tokio::test]
async fn modules_list_and_one_module() {
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/v8/settings/modules", 200, sample("modules/get_modules.json"));
    fx.serve("GET", "/crm/v8/settings/modules/Leads", 200, sample("modules/get_module_leads.json"));
    fx.serve("GET", "/crm/v8/settings/modules/Nothing_Here", 204, "");
    let c = fx.client();
    let modules = c.modules().await.unwrap();
    assert_eq!(modules.len(), 68);
    let by = |n: &str| modules.iter().find(|m| m.api_name == n).unwrap_or_else(|| panic!("{n}"));
    assert!(by("Leads").unreadable_reason().is_none());
    assert_eq!(by("Leads").id.as_deref(), Some("4876876000000002175"));
    assert!(by("Home").unreadable_reason().is_some(), "api_supported false");
    assert!(by("Contacts_X_Accounts").unreadable_reason().is_some(), "linking");
    assert!(by("Quoted_Items").unreadable_reason().is_some(), "subform");
    assert!(by("Notes").unreadable_reason().is_some(), "no data API");
    let v = by("Vehicles");
    assert_eq!((v.generated_type.as_deref(), v.status.as_deref(), v.module_name.as_deref()), (Some("custom"), Some("user_hidden"), Some("CustomModule3")));
    // The documented reply to /settings/modules/Leads lists 18 modules, Home first.
    let leads = c.module("Leads").await.unwrap().expect("Leads is in the reply");
    assert_eq!(leads.api_name, "Leads");
    assert_eq!(c.module("Nothing_Here").await.unwrap().map(|m| m.api_name), None);
}

#[tokio::test]
async fn fields_of_leads() {
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/v8/settings/fields", 200, sample("fields/get_fields_leads.json"));
    let c = fx.client();
    let fields = c.fields("Leads").await.unwrap();
    let seen = &fx.seen_at("/crm/v8/settings/fields")[0];
    assert_eq!((seen.query("module"), seen.query("type")), (Some("Leads"), Some("all")));
    assert_eq!(fields.len(), 87);
    let f = |n: &str| fields.iter().find(|x| x.api_name == n).unwrap_or_else(|| panic!("{n}"));
    // `"lookup": {}` on owner lookups and on 80 other fields: not a lookup target.
    for owner in ["Owner", "Created_By", "Modified_By"] {
        assert_eq!((f(owner).data_type.as_str(), f(owner).lookup_module()), ("ownerlookup", None), "{owner}");
    }
    assert_eq!(fields.iter().filter(|x| x.lookup_module().is_some()).count(), 4);
    // A filled lookup whose own api_name, id and label are null.
    assert_eq!(f("Converted_Account").lookup_module(), Some("Accounts"));
    assert_eq!(f("Converted_Deal").lookup_module(), Some("Deals"));
    assert_eq!(f("Contact_Lookup").lookup_module(), Some("A"));
    assert_eq!(f("Contact_Lookup").lookup.as_ref().unwrap().module.as_ref().unwrap().id.as_deref(), Some("5725767000002086022"));
    // Computed fields carry their return type; `"formula": {}` elsewhere.
    assert_eq!((f("Formula_Decimal").value_type(), f("Formula_Decimal").writable()), ("double", false));
    assert_eq!((f("Last_Note_Added").value_type(), f("Last_Note_Added").writable()), ("datetime", false));
    assert_eq!(f("Total_Notes_Added").value_type(), "integer");
    assert!(f("Total_Notes_Added").is_computed() && !f("Last_Name").is_computed());
    assert_eq!(f("Last_Name").value_type(), "text");
    // `"unique": {}` is not unique; an object of options is.
    let unique: Vec<&str> = fields.iter().filter(|x| x.unique).map(|x| x.api_name.as_str()).collect();
    assert_eq!(unique, ["Email", "Phone"]);
    assert_eq!(f("Annual_Revenue").json_type.as_deref(), Some("double"));
    assert_eq!(f("Owner").json_type.as_deref(), Some("jsonobject"));
    assert_eq!(f("id").data_type, "bigint");
    assert_eq!(f("Owner").length, Some(120));
    assert_eq!(f("Owner").id.as_deref(), Some("5725767000000002589"));
    let status: Vec<&str> = f("Lead_Status").pick_list_values.iter().map(|p| p.api_value()).collect();
    assert_eq!(status.first(), Some(&"-None-"));
    assert!(status.len() > 3, "{status:?}");
    assert_eq!(f("checking_multi_picklist").data_type, "multiselectpicklist");
    assert_eq!(f("checking_multi_picklist").pick_list_values[0].display_value, "test 1");
    assert_eq!(fields.iter().filter(|x| x.pick_list_values.is_empty()).count(), 75);
    assert!(f("Owner").field_read_only && !f("Owner").writable());
}

// ---- records --------------------------------------------------------------

#[tokio::test]
async fn record_pages_follow_next_page_token() {
    let fx = Fixture::start().await;
    let mut last = sample_json("records/get_records_leads_page_token.json");
    // The documented second page claims more; end the list after it.
    last["info"]["more_records"] = json!(false);
    fx.serve("GET", "/crm/v8/Leads", 200, sample("records/get_records_leads_page1.json"));
    fx.serve("GET", "/crm/v8/Leads", 200, serde_json::to_vec(&last).unwrap());
    let c = fx.client();
    let opts = ListOptions { fields: ["Last_Name", "Email", "Converted__s", "Converted_Date_Time"].map(String::from).to_vec(), ..Default::default() };
    let mut pages = c.list("Leads", opts).unwrap();
    let first = pages.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first[0]["id"], "3652397000009851001", "ids are strings");
    assert_eq!(first[0]["Email"], Value::Null);
    assert_eq!(first[0]["Converted__s"], true);
    assert!(pages.has_more());
    let second = pages.next_page().await.unwrap().unwrap();
    assert_eq!(second.len(), 5);
    assert!(pages.next_page().await.unwrap().is_none());
    let calls = fx.seen_at("/crm/v8/Leads");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].query("page_token"), None);
    assert_eq!(calls[1].query("page_token"), Some("c8582xx9e7c7"), "the token of page 1's info");
    let reply: zoho_api::records::ListReply<Record> = zoho_api::wire::parse("records.list", &sample("records/get_records_leads_page1.json")).unwrap();
    let info = reply.info.unwrap();
    assert_eq!((info.more_records, info.per_page, info.count, info.page), (true, Some(5), Some(5), Some(1)));
    assert_eq!(info.page_token_expiry.as_deref(), Some("2022-11-11T15:08:14+05:30"));
}

#[tokio::test]
async fn one_record_deleted_records_and_count() {
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/v8/Leads/554023000003129007", 200, sample("records/get_record_by_id.json"));
    fx.serve("GET", "/crm/v8/Leads/deleted", 200, sample("records/get_deleted_records_leads.json"));
    fx.serve("GET", "/crm/v8/Leads/actions/count", 200, sample("records/get_record_count_leads.json"));
    let c = fx.client();
    let r = c.get_record("Leads", "554023000003129007").await.unwrap().unwrap();
    assert_eq!(r["Owner"]["email"], "p.boyle@abc.com");
    assert_eq!(r["Languages_Known"][0]["Parent_Id"]["id"], "554023000002750020", "subform rows carry their parent");
    assert_eq!(r["$has_more"]["Languages_Known"], false, "$-keys are kept");

    let deleted = c.deleted("Leads", None).await.unwrap();
    assert_eq!(deleted.len(), 4);
    assert_eq!((deleted[0].id.as_str(), deleted[0].kind.as_deref()), ("410888000000099071", Some("recycle")));
    let permanent: Vec<_> = deleted.iter().filter(|d| d.kind.as_deref() == Some("permanent")).collect();
    assert_eq!(permanent.len(), 2);
    assert!(permanent.iter().all(|d| d.display_name.is_none() && d.deleted_time.is_some()));
    assert_eq!(fx.seen_at("/crm/v8/Leads/deleted").len(), 1, "more_records false ends the list");

    assert_eq!(c.count("Leads").await.unwrap(), 694);
}

#[tokio::test]
async fn insert_bodies_and_results() {
    for (module, req, resp) in [
        ("Leads", "records_write/insert_leads_request.json", "records_write/insert_leads_response.json"),
        ("Deals", "records_write/insert_deals_request.json", "records_write/insert_deals_response.json"),
    ] {
        let fx = Fixture::start().await;
        let path = format!("/crm/v8/{module}");
        let documented = sample_json(req);
        let records = records_of(&documented);
        // The Deals page shows one record sent and two results: answer one per record.
        let mut reply = sample_json(resp);
        reply["data"].as_array_mut().unwrap().truncate(records.len());
        fx.serve("POST", &path, 201, serde_json::to_vec(&reply).unwrap());
        let opts = WriteOptions { trigger: documented.get("trigger").map(strings), duplicate_check_fields: None };
        let results = fx.client().insert(module, &records, &opts).await.unwrap();
        let sent = fx.seen_at(&path)[0].json();
        let left_out = same_keys(&sent, &documented, "");
        // Feature toggles the client does not use.
        assert!(left_out.iter().all(|k| k.ends_with("_feature_execution")), "{req}: {left_out:?}");
        assert_eq!(results.len(), records.len());
        let parsed: zoho_api::records::WriteReply = zoho_api::wire::parse("records.insert", &sample(resp)).unwrap();
        assert_eq!(parsed.data.len(), 2, "{resp}");
        assert!(parsed.data.iter().all(|e| e.is_success() && e.detail("id").is_some()));
        for r in &results {
            let ok = r.outcome.as_ref().unwrap();
            assert!(ok.id.len() == 19 && ok.id.chars().all(|c| c.is_ascii_digit()), "{resp}: {}", ok.id);
            let t = DateTime::parse_from_rfc3339(ok.modified_time.as_deref().unwrap()).unwrap();
            assert_eq!(Some(t.to_rfc3339()), ok.created_time.as_deref().map(|c| DateTime::parse_from_rfc3339(c).unwrap().to_rfc3339()));
        }
    }
}

#[tokio::test]
async fn update_upsert_delete_and_mixed_results() {
    let fx = Fixture::start().await;
    fx.serve("PUT", "/crm/v8/Deals", 200, sample("records_write/update_deals_response.json"));
    fx.serve("POST", "/crm/v8/Leads/upsert", 200, sample("records_write/upsert_leads_response.json"));
    fx.serve("DELETE", "/crm/v8/Leads", 200, sample("records_write/delete_leads_response.json"));
    fx.serve("PUT", "/crm/v8/Accounts", 207, sample("records_write/mass_update_response_with_invalid_id.json"));
    let c = fx.client();

    let update = sample_json("records_write/update_deals_request.json");
    let r = c.update("Deals", &records_of(&update), &WriteOptions::default()).await.unwrap();
    let left_out = same_keys(&fx.seen_at("/crm/v8/Deals")[0].json(), &update, "");
    assert_eq!(left_out, [".skip_feature_execution"]);
    assert_eq!(r[0].outcome.as_ref().unwrap().id, "554023000000527003");

    let upsert = sample_json("records_write/upsert_leads_request.json");
    let opts = WriteOptions { trigger: Some(strings(&upsert["trigger"])), duplicate_check_fields: Some(strings(&upsert["duplicate_check_fields"])) };
    let r = c.upsert("Leads", &records_of(&upsert), &opts).await.unwrap();
    let left_out = same_keys(&fx.seen_at("/crm/v8/Leads/upsert")[0].json(), &upsert, "");
    assert_eq!(left_out, [".skip_feature_execution"]);
    let (a, b) = (r[0].outcome.as_ref().unwrap(), r[1].outcome.as_ref().unwrap());
    assert_eq!((a.action.as_deref(), a.duplicate_field.as_deref()), (Some("update"), Some("Email")));
    assert_eq!((b.action.as_deref(), b.duplicate_field.as_deref()), (Some("insert"), None), "duplicate_field is null on insert");

    let ids = ["410405000002264040".to_string(), "410405000002264025".to_string()];
    let r = c.delete("Leads", &ids, true).await.unwrap();
    let call = &fx.seen_at("/crm/v8/Leads").into_iter().find(|s| s.method == "DELETE").unwrap();
    assert_eq!((call.query("ids"), call.query("wf_trigger")), (Some("410405000002264040,410405000002264025"), Some("true")));
    assert_eq!(r.iter().map(|x| x.outcome.as_ref().unwrap().id.clone()).collect::<Vec<_>>(), ids);

    // A success and an INVALID_DATA in one reply: a result each, not an error.
    let two = vec![rec(&json!({"id": "580845000003654076"})), rec(&json!({"id": "554023000000497021"}))];
    let r = c.update("Accounts", &two, &WriteOptions::default()).await.unwrap();
    assert_eq!(r[0].outcome.as_ref().unwrap().id, "580845000003654076");
    let e = r[1].outcome.as_ref().unwrap_err();
    assert_eq!((e.code.as_str(), e.details["id"].as_str()), ("INVALID_DATA", Some("554023000000497021")));
}

// ---- COQL -----------------------------------------------------------------

/// COQL text compared as Zoho reads it: case, spacing and the pairwise
/// parentheses aside, and the default `limit 200` when the docs give none.
fn coql_words(q: &str, drop_default_limit: bool) -> String {
    let q = q.replace(['(', ')'], " ").to_lowercase();
    let words: Vec<&str> = q.split_whitespace().collect();
    let mut s = words.join(" ");
    if drop_default_limit {
        s = s.trim_end_matches(" limit 200").to_string();
    }
    s
}

#[tokio::test]
async fn coql_requests_match_the_documented_ones() {
    let text = |s: &str| Literal::Text(s.into());
    let not_null = |f: &str| Cond::IsNull { field: f.into(), negated: true };
    let cases = [
        (
            "coql/owner_lookup_request.json",
            Query::new("Contacts", ["Last_Name", "First_Name", "Full_Name", "Owner"])
                .filter(Cond::cmp("Last_Name", CmpOp::Eq, text("Boyle")))
                .filter(Cond::cmp("Owner", CmpOp::Eq, text("554023000000235011")))
                .limit(3),
        ),
        (
            "coql/two_level_lookup_request.json",
            Query::new("Contacts", ["Last_Name", "Account_Name.Parent_Account", "Account_Name.Parent_Account.Account_Name"])
                .filter(not_null("Last_Name"))
                .filter(not_null("Account_Name.Parent_Account.Account_Name")),
        ),
        ("coql/territories_request.json", Query::new("Contacts", ["Territories", "Account_Name.Territories"])),
        ("coql/rollup_datetime_request.json", Query::new("Leads", ["Last_Note_Added", "Last_Note_Added_On"])),
        (
            "coql/lookup_names_request.json",
            Query::new("Contacts", ["Account_Name", "Owner", "Data_Processing_Basis_Details"]).filter(not_null("Data_Processing_Basis_Details")),
        ),
    ];
    for (file, query) in cases {
        let fx = Fixture::start().await;
        fx.serve("POST", "/crm/v8/coql", 200, sample("coql/basic_response.json"));
        let client = fx.client();
        let mut pages = client.coql(query, None, 200).unwrap();
        pages.next_page().await.unwrap();
        let sent = fx.seen_at("/crm/v8/coql")[0].json();
        let documented = sample_json(file);
        assert_eq!(sent.as_object().unwrap().keys().collect::<Vec<_>>(), ["select_query"], "{file}");
        let doc = documented["select_query"].as_str().unwrap();
        let ours = sent["select_query"].as_str().unwrap();
        assert_eq!(coql_words(ours, !doc.contains("limit")), coql_words(doc, false), "{file}");
    }
    // Not built by the client: aggregates and GROUP BY (select expressions
    // are field names), unquoted picklist values, and `->` paths. Their
    // replies are still parsed below.
    for file in ["coql/aggregate_sum_request.json", "coql/basic_request.json", "coql/multi_module_lookup_request.json"] {
        assert!(sample_json(file)["select_query"].is_string(), "{file}");
    }
}

/// Runs one COQL call against a documented reply and returns its rows.
async fn coql_rows(file: &str) -> (Vec<Record>, bool) {
    let fx = Fixture::start().await;
    fx.serve("POST", "/crm/v8/coql", 200, sample(file));
    let client = fx.client();
    let mut pages = client.coql(Query::new("Contacts", ["Last_Name"]).limit(2000), None, 2000).unwrap();
    let rows = pages.next_page().await.unwrap().unwrap();
    let more = pages.next_page().await.unwrap().is_some();
    (rows, more)
}

#[tokio::test]
async fn coql_replies_with_every_documented_shape() {
    let (rows, more) = coql_rows("coql/basic_response.json").await;
    assert!(!more, "more_records false ends the query");
    assert_eq!(rows[0]["id"], "554023000000310003");
    assert_eq!(rows[0]["Languages_Known"], json!(["English", "German"]));

    let (rows, _) = coql_rows("coql/two_level_lookup_response.json").await;
    assert_eq!(rows[0]["Account_Name.Parent_Account"], json!({"id": "554023000000238121"}), "a lookup as {{id}} alone");
    assert_eq!(rows[0]["Account_Name.Parent_Account.Account_Name"], "Zylker");

    let (rows, _) = coql_rows("coql/owner_lookup_response.json").await;
    assert_eq!(rows[0]["Owner"], json!({"id": "554023000000235011"}));

    let (rows, _) = coql_rows("coql/lookup_names_response.json").await;
    assert_eq!(rows[0]["Owner"]["name"], "Boyle", "a lookup with its name");
    assert_eq!(rows[0]["Data_Processing_Basis_Details"], json!({"id": "5725767000005083039"}));

    let (rows, _) = coql_rows("coql/multi_module_lookup_response.json").await;
    assert_eq!(rows[0]["Appointment_For->Contacts.Lead_Source"], "Advertisement");

    let (rows, _) = coql_rows("coql/aggregate_sum_response.json").await;
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| !r.contains_key("id")), "aggregate rows have no id");
    assert_eq!(rows[0]["SUM(Annual_Revenue)"], 100000);

    let (rows, _) = coql_rows("coql/territories_response.json").await;
    assert_eq!(rows[0]["Territories"][0], json!({"name": "USA", "id": "5725767000000454003"}));
    assert_eq!(rows[0]["Account_Name.Territories"][0]["name"], "USA");

    let (rows, _) = coql_rows("coql/rollup_datetime_response.json").await;
    let offsets: BTreeSet<i32> = rows
        .iter()
        .map(|r| DateTime::<FixedOffset>::parse_from_rfc3339(r["Last_Note_Added"].as_str().unwrap()).unwrap().offset().local_minus_utc())
        .collect();
    assert_eq!(offsets, BTreeSet::from([-8 * 3600, -7 * 3600]), "one zone across DST");
    let info: zoho_api::coql::CoqlReply = zoho_api::wire::parse("coql", &sample("coql/territories_response.json")).unwrap();
    assert_eq!(info.info.unwrap().count, Some(170), "info.count is Zoho's, not the rows shown");

    // As the column text a foreign table or mirror reads.
    use zoho_api::values::{cell_text, Column};
    let id_col = Column::default();
    let array = Column { array: true, ..Column::default() };
    let (rows, _) = coql_rows("coql/lookup_names_response.json").await;
    assert_eq!(cell_text(&rows[0]["Owner"], id_col).as_deref(), Some("5725767000000411001"), "{{name, id}} lookups read as the id");
    assert_eq!(cell_text(&rows[0]["Data_Processing_Basis_Details"], id_col).as_deref(), Some("5725767000005083039"), "{{id}} lookups too");
    let (rows, _) = coql_rows("coql/territories_response.json").await;
    assert_eq!(cell_text(&rows[0]["Territories"], array).as_deref(), Some(r#"{"USA"}"#));
    let (rows, _) = coql_rows("coql/basic_response.json").await;
    assert_eq!(cell_text(&rows[0]["Languages_Known"], array).as_deref(), Some(r#"{"English","German"}"#));
}

// ---- bulk read --------------------------------------------------------------

#[tokio::test]
async fn bulk_read_create_bodies() {
    let fx = Fixture::start().await;
    fx.serve("POST", "/crm/bulk/v8/read", 201, sample("bulk_read/create_job_response.json"));
    let c = fx.client();

    let doc = sample_json("bulk_read/create_job_request_single_criterion.json");
    let q = BulkReadQuery {
        module: "Contacts".into(),
        fields: strings(&doc["query"]["fields"]),
        criteria: Some(Criteria::condition("Last_Name", "equal", json!("Boyle"))),
        cvid: None,
    };
    let id = c.bulk_read_create(&q, None).await.unwrap();
    assert_eq!(id, "5725767000000859031");
    let sent = fx.seen().last().unwrap().json();
    // `file_type` is a documented key (the ICS sample sets it to "ics").
    assert!(sample_json("bulk_read/create_job_request_events_ics.json").get("file_type").is_some());
    let mut documented = doc.clone();
    documented["file_type"] = json!("csv");
    assert_eq!(same_keys(&sent, &documented, ""), Vec::<String>::new());

    let doc = sample_json("bulk_read/create_job_request_criteria_group_cvid.json");
    let group = doc["query"]["criteria"]["group"].as_array().unwrap();
    let criteria = Criteria::and(
        group.iter().map(|g| Criteria::condition(g["field"]["api_name"].as_str().unwrap(), g["comparator"].as_str().unwrap(), g["value"].clone())).collect(),
    );
    let q = BulkReadQuery {
        module: "Leads".into(),
        fields: strings(&doc["query"]["fields"]),
        criteria: Some(criteria),
        cvid: doc["query"]["cvid"].as_str().map(String::from),
    };
    c.bulk_read_create(&q, None).await.unwrap();
    let sent = fx.seen().last().unwrap().json();
    let mut documented = doc.clone();
    documented["file_type"] = json!("csv");
    assert_eq!(same_keys(&sent, &documented, ""), [".callback"], "callbacks are not used: jobs are polled");

    let doc = sample_json("bulk_read/create_job_request_page_token.json");
    c.bulk_read_create(&BulkReadQuery::default(), doc["query"]["page_token"].as_str()).await.unwrap();
    assert_eq!(fx.seen().last().unwrap().json(), doc, "a next page sends the token alone");
    assert_eq!(sample_json("bulk_read/create_job_request_events_ics.json")["file_type"], "ics");
}

#[tokio::test]
async fn bulk_read_job_states_and_callbacks() {
    let cases = [
        ("bulk_read/job_status_added.json", "ADDED", true),
        ("bulk_read/job_status_added_v3.json", "ADDED", false),
        ("bulk_read/job_status_queued.json", "QUEUED", true),
        ("bulk_read/job_status_in_progress.json", "IN PROGRESS", true),
        ("bulk_read/job_status_completed.json", "COMPLETED", true),
        ("bulk_read/job_status_completed_criteria_cvid.json", "COMPLETED", true),
    ];
    for (file, state, has_result) in cases {
        let fx = Fixture::start().await;
        let job_id = sample_json(file)["data"][0]["id"].as_str().unwrap().to_string();
        fx.serve("GET", &format!("/crm/bulk/v8/read/{job_id}"), 200, sample(file));
        let job = fx.client().bulk_read_status(&job_id).await.unwrap();
        assert_eq!((job.id.as_str(), job.state.as_str(), job.result.is_some()), (job_id.as_str(), state, has_result), "{file}");
        assert_eq!(job.is_finished(), state == "COMPLETED", "{file}");
        if let Some(r) = &job.result {
            assert!(r.download_url.as_deref().unwrap().starts_with("/crm/bulk/v7/read/"), "a relative download_url: {file}");
            assert_eq!(r.per_page, Some(200_000));
            assert_eq!(r.more_records, r.next_page_token.is_some(), "{file}");
        }
    }
    let done = BulkReadJob::from_callback(&sample("bulk_read/callback_completed.json")).unwrap();
    let r = done.result.as_ref().unwrap();
    assert_eq!((done.state.as_str(), r.count, r.more_records, r.next_page_token.as_deref()), ("COMPLETED", Some(127), false, None));
    let failed = BulkReadJob::from_callback(&sample("bulk_read/callback_failed.json")).unwrap();
    assert_eq!((failed.state.as_str(), failed.is_finished()), ("FAILURE", true));
    assert_eq!(failed.failure_message().as_deref(), Some("Internal server error occurred."));
}

#[tokio::test]
async fn bulk_read_failure_and_relative_download() {
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/bulk/v8/read/111111000000052009", 200, sample("bulk_read/callback_failed.json"));
    let c = fx.client();
    let err = c.bulk_read_wait("111111000000052009", &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("Internal server error occurred."), "{err}");

    let done = BulkReadJob::from_callback(&sample("bulk_read/callback_completed.json")).unwrap();
    fx.serve("GET", "/crm/bulk/v7/read/4150868000004716016/result", 200, zip_of("4150868000004716016.csv", "Id,Last_Name\n1,Boyle\n"));
    let mut rows = c.bulk_read_download(&done).await.unwrap();
    assert_eq!(rows.headers(), ["Id", "Last_Name"]);
    let row = rows.next().unwrap().unwrap();
    assert_eq!(row.get(1), Some("Boyle"));
    assert_eq!(fx.seen_at("/crm/bulk/v7/read/4150868000004716016/result").len(), 1, "the relative path is joined to the API domain");
}

// ---- bulk write -------------------------------------------------------------

#[tokio::test]
async fn bulk_write_upload_create_and_body() {
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/v8/org", 200, sample("org_users/get_org.json"));
    fx.serve("POST", "/crm/v8/upload", 200, sample("bulk_write/upload_response.json"));
    fx.serve("POST", "/crm/bulk/v8/write", 201, sample("bulk_write/create_job_response.json"));
    let c = fx.client();
    let spec = BulkWriteSpec {
        module: "Contacts".into(),
        operation: WriteOp::Update,
        find_by: Some("id".into()),
        columns: vec![Column::new("id"), Column::new("Last_Name")],
        ignore_empty: true,
    };
    let rows = vec![Ok(vec![Some("111".to_string()), Some("Boyle".to_string())])];
    let chunk = zoho_api::bulk_write::next_chunk(&spec, &mut rows.into_iter(), 0).unwrap().unwrap();
    let file_id = c.bulk_upload(&chunk.files[0]).await.unwrap();
    assert_eq!(file_id, "111111000001492610");
    let job_id = c.bulk_write_create(&spec, WriteOp::Update, &file_id, &chunk.files[0].columns).await.unwrap();
    assert_eq!(job_id, "111111000000541958");

    let sent = fx.seen_at("/crm/bulk/v8/write")[0].json();
    let doc = sample_json("bulk_write/create_job_request_update.json");
    for key in ["operation", "ignore_empty"] {
        assert_eq!(sent[key], doc[key], "{key}");
    }
    assert_eq!(sent["character_encoding"], "UTF-8", "documented on the job (status samples echo it)");
    let (ours, theirs) = (&sent["resource"][0], &doc["resource"][0]);
    for key in ["type", "module", "find_by", "file_id"] {
        assert!(theirs.get(key).is_some(), "{key} is documented");
        assert_eq!(ours[key].is_string() || ours[key].is_object(), theirs[key].is_string() || theirs[key].is_object(), "{key}");
    }
    assert_eq!(ours["module"], json!({"api_name": "Contacts"}));
    assert_eq!(ours["find_by"], "id");
    assert_eq!(ours["file_id"], "111111000001492610");
    let mappings = ours["field_mappings"].as_array().unwrap();
    assert_eq!(mappings, &[json!({"api_name": "id", "index": 0}), json!({"api_name": "Last_Name", "index": 1})]);
    // Every mapping key the client sends is in the mappings of each documented job.
    for file in ["bulk_write/create_job_request_update.json", "bulk_write/create_job_request_subform.json", "bulk_write/create_job_request_parent_child.json"] {
        let documented: Vec<Value> = sample_json(file)["resource"].as_array().unwrap().iter().flat_map(|r| r["field_mappings"].as_array().unwrap().clone()).collect();
        for k in mappings.iter().flat_map(|m| m.as_object().unwrap().keys()) {
            assert!(documented.iter().any(|d| d.get(k).is_some()), "{file}: mapping key {k}");
        }
    }
    let upload = &fx.seen_at("/crm/v8/upload")[0];
    assert_eq!(upload.method, "POST");
}

#[tokio::test]
async fn bulk_write_states_and_relative_result() {
    let cases = [
        ("bulk_write/job_status_added.json", "ADDED", 0),
        ("bulk_write/job_status_in_progress.json", "INPROGRESS", 100),
        ("bulk_write/job_status_completed.json", "COMPLETED", 100),
        ("bulk_write/job_status_parent_child.json", "COMPLETED", 0),
    ];
    for (file, status, total) in cases {
        let fx = Fixture::start().await;
        let id = "111111000000541958";
        fx.serve("GET", &format!("/crm/bulk/v8/write/{id}"), 200, sample(file));
        let job = fx.client().bulk_write_status(id).await.unwrap();
        assert_eq!((job.id.as_str(), job.status.as_str()), (id, status), "{file}");
        let file0 = job.resource[0].file.as_ref().unwrap_or_else(|| panic!("{file}: {job:?}"));
        if file.contains("parent_child") {
            assert!(job.resource.len() > 1);
        } else {
            assert_eq!(file0.total_count, total, "{file}");
        }
        if status == "ADDED" {
            assert_eq!((job.resource[0].code.as_deref(), job.resource[0].status.as_deref(), file0.status.as_deref()), (Some("ADDED"), Some("INPROGRESS"), Some("INPROGRESS")));
            assert!(job.download_url().is_none());
        }
    }
    let fx = Fixture::start().await;
    fx.serve("GET", "/crm/bulk/v8/write/111111000000541958", 200, sample("bulk_write/job_status_in_progress.json"));
    fx.serve("GET", "/crm/bulk/v8/write/111111000000541958", 200, sample("bulk_write/job_status_completed.json"));
    let c = fx.client();
    let job = c.bulk_write_wait("111111000000541958", &mut |_| {}).await.unwrap();
    assert_eq!(job.resource[0].file.as_ref().unwrap().skipped_count, 100, "INPROGRESS (no space) is waited on");
    let url = job.download_url().unwrap();
    assert!(url.starts_with("/v7/crm/org6196138/bulk-write/"), "{url}");
    fx.serve("GET", url, 200, zip_of("Deals.csv", "Deal_Name,Stage,STATUS,RECORD_ID,ERRORS\nA,Won,ADDED,111,\nB,Won,SKIPPED,,MANDATORY_NOT_FOUND-Deal_Name\n"));
    let chunk = Chunk { files: Vec::new(), keys: vec!["a".into(), "b".into()], first_row: 0 };
    let results = c.bulk_write_results(&job, &chunk, false).await.unwrap();
    assert_eq!((results[0].status, results[0].record_id.as_deref()), (RowStatus::Added, Some("111")));
    assert_eq!((results[1].status, results[1].errors[0].code.as_str()), (RowStatus::Skipped, "MANDATORY_NOT_FOUND"));
}

// ---- notifications ------------------------------------------------------------

fn channel_from(doc: &Value) -> Channel {
    let w = &doc["watch"][0];
    Channel {
        channel_id: w["channel_id"].as_str().unwrap().parse().unwrap(),
        events: strings(&w["events"]),
        notify_url: w["notify_url"].as_str().unwrap().into(),
        token: w["token"].as_str().map(String::from),
        channel_expiry: w["channel_expiry"].as_str().map(|t| DateTime::parse_from_rfc3339(t).unwrap()),
        return_affected_field_values: w["return_affected_field_values"].as_bool().unwrap_or(false),
        notify_on_related_action: false,
    }
}

#[tokio::test]
async fn watch_enable_update_and_disable() {
    let fx = Fixture::start().await;
    fx.serve("POST", "/crm/v8/actions/watch", 200, sample("notifications/enable_response.json"));
    fx.serve("PUT", "/crm/v8/actions/watch", 200, sample("notifications/update_put_response.json"));
    fx.serve("PATCH", "/crm/v8/actions/watch", 200, sample("notifications/update_patch_response.json"));
    fx.serve("PATCH", "/crm/v8/actions/watch", 200, sample("notifications/disable_specific_response.json"));
    fx.serve("DELETE", "/crm/v8/actions/watch", 200, sample("notifications/disable_response.json"));
    fx.serve("GET", "/crm/v8/actions/watch", 200, sample("notifications/get_details_response.json"));
    let c = fx.client();
    let calls = || fx.seen_at("/crm/v8/actions/watch");

    let enable = sample_json("notifications/enable_request.json");
    let r = c.watch_enable(&[channel_from(&enable)]).await.unwrap();
    let subs = r[0].outcome.as_ref().unwrap();
    assert_eq!((subs[0].channel_id.as_str(), subs[0].resource_name.as_deref()), ("10000", Some("Deals")));
    assert_eq!(subs[0].channel_expiry.as_deref(), Some("2023-08-02T16:59:50-11:00"));
    // notify_on_related_action is a documented channel key (the details list it).
    let details = sample_json("notifications/get_details_response.json");
    assert!(details["watch"][0].get("notify_on_related_action").is_some());
    let left_out = same_keys(&strip(&calls()[0].json(), &["notify_on_related_action"]), &enable, "");
    assert_eq!(left_out, [".watch[0].notification_condition"], "field conditions are not used");

    let put = sample_json("notifications/update_put_request.json");
    let r = c.watch_replace(&[channel_from(&put)]).await.unwrap();
    assert_eq!(r[0].outcome.as_ref().unwrap().len(), 2, "one subscription per module");
    // PUT replaces the whole channel, so the client restates these flags.
    let sent = calls()[1].json();
    let left_out = same_keys(&strip(&sent, &["return_affected_field_values", "notify_on_related_action"]), &put, "");
    assert_eq!(left_out, [".watch[0].notification_condition"]);

    let patch = sample_json("notifications/update_patch_request.json");
    let r = c.watch_update(&[channel_from(&patch)]).await.unwrap();
    assert_eq!(r[0].outcome.as_ref().unwrap()[0].resource_id.as_deref(), Some("554023000000000131"));

    let specific = sample_json("notifications/disable_specific_request.json");
    let r = c.watch_remove_events(10000, &strings(&specific["watch"][0]["events"])).await.unwrap();
    assert_eq!(calls()[3].json(), specific, "the documented body exactly");
    assert_eq!(r[0].outcome.as_ref().unwrap()[0].resource_name.as_deref(), Some("Contacts"));

    let r = c.watch_disable(&[10000]).await.unwrap();
    assert_eq!(calls()[4].query("channel_ids"), Some("10000"));
    assert_eq!(r.len(), 2, "one entry per module of the channel");
    assert!(r.iter().all(|x| x.outcome.as_ref().unwrap()[0].channel_id == "10000"));

    let listed = c.watch_list().await.unwrap();
    let names: Vec<(&str, Option<&str>)> = listed.iter().map(|l| (l.channel_id.as_str(), l.resource_name.as_deref())).collect();
    assert_eq!(names, [("1000000068001", Some("Leads")), ("10000", Some("Contacts")), ("10000", Some("Deals"))], "ids sent as strings");
    assert_eq!(fx.seen_at("/crm/v8/actions/watch").iter().filter(|s| s.method == "GET").count(), 1, "more_records false: one page");
    assert!(listed[0].notify_url.is_some() && listed[0].channel_expiry.is_some());
}

/// `v` without the given keys of `watch[0]`.
fn strip(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    let w = v["watch"][0].as_object_mut().unwrap();
    for k in keys {
        w.remove(*k);
    }
    v
}

#[test]
fn notification_callbacks() {
    let insert = WebhookPayload::parse(&sample("notifications/callback_insert.json")).unwrap();
    assert_eq!(insert.operation, Operation::Insert);
    assert_eq!(insert.server_time, Some(1_718_117_126_473), "epoch milliseconds, past 32 bits");
    assert_eq!((insert.channel_id.as_str(), insert.ids.as_slice()), ("1000000068001", ["5725767000003000064".to_string()].as_slice()));
    assert!(insert.query_params.is_empty() && insert.affected_fields.is_empty());
    assert!(insert.token_matches("TOKEN_FOR_VERIFICATION_OF_1000000068001"));

    let update = WebhookPayload::parse(&sample("notifications/callback_update_affected_values.json")).unwrap();
    assert_eq!(update.operation, Operation::Update);
    assert_eq!(update.fields_changed("5725767000003000010"), Some(vec!["Mobile".to_string()]), "affected_fields keyed by record id");
    assert_eq!(update.values_of("5725767000003000010").unwrap()["Mobile"], "123456789");
    assert_eq!(update.fields_changed("5725767000003000064"), None);
}

#[tokio::test]
async fn the_token_never_goes_to_a_foreign_download_host() {
    let fx = Fixture::start().await;
    let elsewhere = Fixture::start().await;
    let mut job = sample_json("bulk_write/job_status_completed.json");
    let foreign = format!("{}/v7/crm/org6196138/bulk-write/1/1.zip", elsewhere.url());
    job["result"]["download_url"] = json!(foreign);
    fx.serve("GET", "/crm/bulk/v8/write/111111000000541958", 200, serde_json::to_vec(&job).unwrap());
    let c = fx.client();
    let job = c.bulk_write_status("111111000000541958").await.unwrap();
    let chunk = Chunk { files: Vec::new(), keys: vec!["a".into()], first_row: 0 };
    let err = c.bulk_write_results(&job, &chunk, false).await.unwrap_err().to_string();
    assert!(err.contains("not a host of this server's data centre"), "{err}");
    assert!(elsewhere.seen().is_empty(), "the foreign host was called");
    assert!(!err.contains("Zoho-oauthtoken") && !err.contains("new_access_token"), "{err}");
}

/// A flow's filter, as Bulk Read criteria, has the documented leaves: the
/// sample's flat `and` group, nested in pairs.
#[test]
fn a_filter_renders_the_documented_criteria() {
    let doc = sample_json("bulk_read/create_job_request_criteria_group_cvid.json");
    let fields: Vec<zoho_api::metadata::FieldMeta> = [("Last_Name", "text"), ("Email", "email"), ("Modified_Time", "datetime")]
        .iter()
        .map(|(a, t)| serde_json::from_value(json!({"api_name": a, "data_type": t})).unwrap())
        .collect();
    let f = zoho_api::filter::parse(
        "Last_Name = 'Patricia' and Email = 'patricia.b@zylker.com' and Modified_Time between '2021-02-22T15:39:26+05:30' and '2021-07-20T09:00:00+05:30'",
        &fields,
    )
    .unwrap();
    fn leaves(c: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match c.get("group").and_then(|g| g.as_array()) {
            Some(g) => {
                assert_eq!(c["group_operator"], "and");
                g.iter().for_each(|m| leaves(m, out));
            }
            None => out.push(c.clone()),
        }
    }
    let (mut ours, mut documented) = (Vec::new(), Vec::new());
    leaves(&serde_json::to_value(f.criteria()).unwrap(), &mut ours);
    leaves(&doc["query"]["criteria"], &mut documented);
    assert_eq!(ours, documented);
}
