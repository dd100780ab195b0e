mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use zoho_sim::SimConfig;

fn ids(v: &Value) -> Vec<i64> {
    v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect()
}

#[tokio::test]
async fn list_params_and_limits() {
    let ctx = Ctx::new(SimConfig::default().seed("Accounts", 30)).await;
    let (s, v) = sj(ctx.get("/crm/v8/Accounts").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("REQUIRED_PARAM_MISSING")));
    let many: Vec<String> = (0..51).map(|_| "Account_Name".to_string()).collect();
    let (s, v) = sj(ctx.get(&format!("/crm/v8/Accounts?fields={}", many.join(","))).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("LIMIT_EXCEEDED")));
    let (s, v) = sj(ctx.get("/crm/v8/Accounts?fields=Nope").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str(), v["details"]["api_name"].as_str()), (400, Some("INVALID_DATA"), Some("Nope")));
    let (s, v) = sj(ctx.get("/crm/v8/Nowhere?fields=Name").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("INVALID_MODULE")));
    let (s, v) = sj(ctx.get("/crm/v8/Notes?fields=Owner").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("INVALID_MODULE")));

    // Default order: id descending; only requested fields plus id.
    let (s, v) = sj(ctx.get("/crm/v8/Accounts?fields=Account_Name,Owner&per_page=10").await).await;
    assert_eq!(s, 200);
    let got = ids(&v);
    assert_eq!(got.len(), 10);
    assert!(got.windows(2).all(|w| w[0] > w[1]));
    let all: Vec<i64> = ctx.sim.records("Accounts").iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(got[0], *all.iter().max().unwrap());
    let rec = v["data"][0].as_object().unwrap();
    let mut keys: Vec<&str> = rec.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["Account_Name", "Owner", "id"]);
    assert!(rec["Owner"]["email"].as_str().unwrap().contains('@'));
    let info = &v["info"];
    assert_eq!((info["per_page"].as_i64(), info["count"].as_i64(), info["page"].as_i64()), (Some(10), Some(10), Some(1)));
    assert_eq!((info["sort_by"].as_str(), info["sort_order"].as_str(), info["more_records"].as_bool()), (Some("id"), Some("desc"), Some(true)));
    assert!(info["next_page_token"].is_string(), "first page already carries a token");

    let (_, asc) = sj(ctx.get("/crm/v8/Accounts?fields=Account_Name&sort_by=Created_Time&sort_order=asc&per_page=200").await).await;
    let times: Vec<String> = asc["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(times.len(), 30);
    assert_eq!(asc["info"]["more_records"], false);
    assert!(asc["info"].get("next_page_token").is_none());

    let (s, v) = sj(ctx.get("/crm/v8/Accounts?fields=Account_Name&page=2&page_token=abc").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("AMBIGUITY_DURING_PROCESSING")));
    let (s, v) = sj(ctx.get("/crm/v8/Accounts?fields=Account_Name&page=11").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str(), v["details"]["limit"].as_i64()), (400, Some("DISCRETE_PAGINATION_LIMIT_EXCEEDED"), Some(2000)));
    // Past the data: 204 with an empty body.
    let r = ctx.get("/crm/v8/Accounts?fields=Account_Name&page=3&per_page=20").await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let (_, v) = sj(ctx.get(&format!("/crm/v8/Accounts?fields=Account_Name&ids={},{}", all[0], all[3])).await).await;
    assert_eq!(ids(&v), vec![all[3], all[0]]);
}

#[tokio::test]
async fn page_tokens_chain_and_bind() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 60)).await;
    let mut seen = Vec::new();
    let (_, v) = sj(ctx.get("/crm/v8/Leads?fields=Last_Name&per_page=25&converted=both").await).await;
    seen.extend(ids(&v));
    let mut tok = v["info"]["next_page_token"].as_str().unwrap().to_string();
    let (s, bad) = sj(ctx.get(&format!("/crm/v8/Leads?fields=Email&per_page=25&converted=both&page_token={tok}")).await).await;
    assert_eq!((s.as_u16(), bad["code"].as_str()), (400, Some("TOKEN_BOUND_DATA_MISMATCH")));
    loop {
        let (s, v) = sj(ctx.get(&format!("/crm/v8/Leads?fields=Last_Name&per_page=25&converted=both&page_token={tok}")).await).await;
        assert_eq!(s, 200);
        seen.extend(ids(&v));
        match v["info"]["next_page_token"].as_str() {
            Some(t) => tok = t.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 60);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, seen, "every record once, id desc");
    // Tokens expire after 24 h.
    let (_, v) = sj(ctx.get("/crm/v8/Leads?fields=Last_Name&per_page=25&converted=both").await).await;
    let tok = v["info"]["next_page_token"].as_str().unwrap().to_string();
    ctx.sim.advance_clock(std::time::Duration::from_secs(24 * 3600 + 1));
    let ctx2_token = fetch_token(&ctx.http, &ctx.sim.base_url()).await;
    let r = ctx.http.get(ctx.url(&format!("/crm/v8/Leads?fields=Last_Name&per_page=25&converted=both&page_token={tok}"))).header("Authorization", format!("Zoho-oauthtoken {ctx2_token}")).send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("EXPIRED_VALUE")));
}

#[tokio::test]
async fn converted_leads_are_hidden_and_if_modified_since() {
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 200)).await;
    let all = ctx.sim.records("Leads");
    let converted = all.iter().filter(|r| r["Converted__s"] == true).count();
    assert!(converted > 0);
    let (_, v) = sj(ctx.get("/crm/v8/Leads?fields=Converted__s").await).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 200 - converted);
    assert!(v["data"].as_array().unwrap().iter().all(|r| r["Converted__s"] == false));
    let (_, v) = sj(ctx.get("/crm/v8/Leads?fields=Converted__s&converted=true").await).await;
    assert_eq!(v["data"].as_array().unwrap().len(), converted);

    let r = ctx.http.get(ctx.url("/crm/v8/Leads?fields=Last_Name")).header("Authorization", ctx.auth()).header("If-Modified-Since", "2030-01-01T00:00:00+00:00").send().await.unwrap();
    assert_eq!(r.status(), 304);
    let id = ctx.sim.ui_create("Leads", json!({"Last_Name": "Fresh"})).unwrap();
    let r = ctx.http.get(ctx.url("/crm/v8/Leads?fields=Last_Name")).header("Authorization", ctx.auth()).header("If-Modified-Since", "2026-01-01T00:00:00+00:00").send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&v), vec![id.parse::<i64>().unwrap()]);
}

#[tokio::test]
async fn insert_results_and_every_per_record_error() {
    let ctx = Ctx::new(SimConfig::default().seed("Accounts", 2)).await;
    let acc = ctx.sim.records("Accounts")[0]["id"].as_str().unwrap().to_string();
    let body = json!({"data": [
        {"Last_Name": "Ok", "Email": "ok@example.com", "Account_Name": {"id": acc}, "Date_of_Birth": "1990-02-03", "Lead_Source": "Not In The List"},
        {"First_Name": "No last name"},
        {"Last_Name": "Bad email", "Email": "not-an-email"},
        {"Last_Name": "x".repeat(256)},
        {"Last_Name": "Unknown", "Shoe_Size": 42},
        {"Last_Name": "Bad lookup", "Account_Name": {"id": "123"}},
        {"Last_Name": "Bool", "Email_Opt_Out": "yes"},
        {"Last_Name": "Date", "Date_of_Birth": "02/03/1990"}
    ], "trigger": []});
    let (s, v) = sj(ctx.post("/crm/v8/Contacts", &body).await).await;
    assert_eq!(s, 207);
    let d = v["data"].as_array().unwrap();
    assert_eq!(d.len(), 8);
    assert_eq!((d[0]["code"].as_str(), d[0]["status"].as_str(), d[0]["message"].as_str()), (Some("SUCCESS"), Some("success"), Some("record added")));
    let det = &d[0]["details"];
    assert_eq!(det["id"].as_str().unwrap().len(), 19);
    assert!(det["Created_Time"].as_str().unwrap().ends_with("+05:30"));
    assert_eq!(det["Created_By"]["name"], "Patricia Boyle");
    assert_eq!(d[1]["code"], "MANDATORY_NOT_FOUND");
    assert_eq!(d[1]["details"], json!({"api_name": "Last_Name", "json_path": "$.data[1].Last_Name"}));
    assert_eq!((d[2]["code"].as_str(), d[2]["details"]["api_name"].as_str(), d[2]["details"]["expected_data_type"].as_str()), (Some("INVALID_DATA"), Some("Email"), Some("email")));
    assert_eq!((d[3]["code"].as_str(), d[3]["details"]["maximum_length"].as_str()), (Some("INVALID_DATA"), Some("255")));
    assert_eq!((d[4]["code"].as_str(), d[4]["details"]["api_name"].as_str(), d[4]["details"]["json_path"].as_str()), (Some("INVALID_DATA"), Some("Shoe_Size"), Some("$.data[4].Shoe_Size")));
    assert_eq!((d[5]["code"].as_str(), d[5]["details"]["api_name"].as_str()), (Some("INVALID_DATA"), Some("Account_Name")));
    assert_eq!(d[6]["details"]["expected_data_type"], "boolean");
    assert_eq!(d[7]["details"]["expected_data_type"], "date");

    let stored = ctx.sim.records("Contacts");
    assert_eq!(stored.len(), 1);
    let r = &stored[0];
    assert_eq!(r["Lead_Source"], "Not In The List", "picklists are not enforced");
    assert_eq!(r["Account_Name"]["id"].as_str(), Some(acc.as_str()));
    assert!(r["Account_Name"]["name"].as_str().unwrap().len() > 3);

    let (s, v) = sj(ctx.post("/crm/v8/Contacts", &json!({"data": [{"Last_Name": "A"}]})).await).await;
    assert_eq!((s.as_u16(), v["data"][0]["status"].as_str()), (201, Some("success")));
    let (s, _) = sj(ctx.post("/crm/v8/Contacts", &json!({"data": [{"First_Name": "A"}]})).await).await;
    assert_eq!(s, 400);
    let hundred_one: Vec<Value> = (0..101).map(|i| json!({"Last_Name": format!("n{i}")})).collect();
    let (s, v) = sj(ctx.post("/crm/v8/Contacts", &json!({"data": hundred_one})).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("LIMIT_EXCEEDED")));
}

#[tokio::test]
async fn update_delete_deleted_log_and_count() {
    let ctx = Ctx::new(SimConfig::default().seed("Deals", 5).seed("Accounts", 3)).await;
    let deals = ctx.sim.records("Deals");
    let id = deals[0]["id"].as_str().unwrap().to_string();
    let (s, v) = sj(ctx.put("/crm/v8/Deals", &json!({"data": [
        {"id": id, "Amount": 1000, "Probability": 40},
        {"Amount": 5},
        {"id": "99", "Amount": 5}
    ]})).await).await;
    assert_eq!(s, 207);
    assert_eq!(v["data"][0]["message"], "record updated");
    assert_eq!(v["data"][1]["code"], "MANDATORY_NOT_FOUND");
    assert_eq!(v["data"][1]["details"]["api_name"], "id");
    assert_eq!(v["data"][2]["code"], "INVALID_DATA");
    let (_, one) = sj(ctx.get(&format!("/crm/v8/Deals/{id}")).await).await;
    assert_eq!(one["data"][0]["Expected_Revenue"].as_f64(), Some(400.0), "formula follows the write");
    assert_ne!(one["data"][0]["Modified_Time"], deals[0]["Modified_Time"]);
    let (s, _) = sj(ctx.put(&format!("/crm/v8/Deals/{id}"), &json!({"data": [{"Stage": "Closed Won"}]})).await).await;
    assert_eq!(s, 200);

    let (_, c) = sj(ctx.get("/crm/v8/Deals/actions/count").await).await;
    assert_eq!(c["count"], 5);
    let other = deals[1]["id"].as_str().unwrap();
    let (s, v) = sj(ctx.delete(&format!("/crm/v8/Deals?ids={id},{other}")).await).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"][0], json!({"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"}));
    let (s, v) = sj(ctx.delete(&format!("/crm/v8/Deals?ids={id}")).await).await;
    assert_eq!((s.as_u16(), v["data"][0]["code"].as_str(), v["data"][0]["message"].as_str()), (400, Some("INVALID_DATA"), Some("record not deleted")));
    let (s, v) = sj(ctx.delete("/crm/v8/Deals").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("REQUIRED_PARAM_MISSING")));
    assert_eq!(ctx.get(&format!("/crm/v8/Deals/{id}")).await.status(), 204);
    let (_, c) = sj(ctx.get("/crm/v8/Deals/actions/count").await).await;
    assert_eq!(c["count"], 3);
    let (s, v) = sj(ctx.get("/crm/v8/Deals/deleted?type=all").await).await;
    assert_eq!(s, 200);
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["id"] == id.as_str() && r["type"] == "recycle" && r["deleted_by"]["name"] == "Patricia Boyle"));
    assert_eq!(ctx.get("/crm/v8/Deals/deleted?type=permanent").await.status(), 204);
    assert_eq!(ctx.get("/crm/v8/Accounts/deleted").await.status(), 204);
}

#[tokio::test]
async fn upsert_matches_name_then_parent_id_for_orders() {
    let ctx = Ctx::new(SimConfig::default().seed("Orders", 3)).await;
    let orders = ctx.sim.records("Orders");
    let (a, b) = (&orders[0], &orders[1]);
    assert_eq!(a["parent_id"], "ORD-000001");
    let body = json!({"data": [
        // Name matches A, parent_id matches B: the system field wins.
        {"Name": a["Name"], "parent_id": "ORD-NEW-1", "Quantity": 7},
        // Only parent_id matches (B), case-insensitively.
        {"Name": "Brand new name", "parent_id": b["parent_id"].as_str().unwrap().to_lowercase(), "Quantity": 8},
        // Nothing matches: insert.
        {"Name": "Order X", "parent_id": "ORD-X", "Quantity": 9}
    ]});
    let (s, v) = sj(ctx.post("/crm/v8/Orders/upsert", &body).await).await;
    assert_eq!(s, 200, "{v}");
    let d = &v["data"];
    assert_eq!((d[0]["action"].as_str(), d[0]["duplicate_field"].as_str(), d[0]["details"]["id"].as_str()), (Some("update"), Some("Name"), a["id"].as_str()));
    assert_eq!((d[1]["action"].as_str(), d[1]["duplicate_field"].as_str(), d[1]["details"]["id"].as_str()), (Some("update"), Some("parent_id"), b["id"].as_str()));
    assert_eq!((d[2]["action"].as_str(), d[2]["duplicate_field"].clone(), d[2]["message"].as_str()), (Some("insert"), Value::Null, Some("record added")));
    // Listing only the user-defined field ignores the system one.
    let body = json!({"duplicate_check_fields": ["parent_id"], "data": [{"Name": a["Name"], "parent_id": "ORD-ONLY-PARENT"}]});
    let (_, v) = sj(ctx.post("/crm/v8/Orders/upsert", &body).await).await;
    assert_eq!(v["data"][0]["action"], "insert");
    // A plain insert that repeats a unique value is refused.
    let (s, v) = sj(ctx.post("/crm/v8/Orders", &json!({"data": [{"Name": "Dup", "parent_id": "ORD-X"}]})).await).await;
    assert_eq!(s, 400);
    let e = &v["data"][0];
    assert_eq!(e["code"], "DUPLICATE_DATA");
    assert_eq!(e["details"]["api_name"], "parent_id");
    assert_eq!(e["details"]["json_path"], "$.data[0].parent_id");
    assert_eq!(e["details"]["duplicate_record"]["id"], d[2]["details"]["id"]);
    assert_eq!(e["details"]["duplicate_record"]["module"]["api_name"], "Orders");
    let (s, v) = sj(ctx.post("/crm/v8/Orders/upsert", &json!({"duplicate_check_fields": ["Quantity"], "data": [{"Name": "q"}]})).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("INVALID_DATA")));
    let _ = ctx.send(Method::GET, "/crm/v8/Orders?fields=Name", &Value::Null).await;
}
