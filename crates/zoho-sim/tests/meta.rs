mod common;

use common::*;
use serde_json::Value;
use zoho_sim::SimConfig;

#[tokio::test]
async fn modules_fields_org_users() {
    let ctx = Ctx::new(SimConfig::default()).await;
    let (s, v) = sj(ctx.get("/crm/v8/settings/modules").await).await;
    assert_eq!(s, 200);
    let mods = v["modules"].as_array().unwrap();
    let orders = mods.iter().find(|m| m["api_name"] == "Orders").unwrap();
    assert_eq!((orders["generated_type"].as_str(), orders["api_supported"].as_bool()), (Some("custom"), Some(true)));
    let visits = mods.iter().find(|m| m["api_name"] == "Visits").unwrap();
    assert_eq!(visits["api_supported"], false);
    assert!(mods.iter().any(|m| m["generated_type"] == "linking"));

    let (s, v) = sj(ctx.get("/crm/v8/settings/fields?module=Orders").await).await;
    assert_eq!(s, 200);
    let fields = v["fields"].as_array().unwrap();
    let f = |n: &str| fields.iter().find(|f| f["api_name"] == n).unwrap().clone();
    assert_eq!(f("parent_id")["unique"], serde_json::json!({"case_sensitive": false}));
    assert_eq!(f("Quantity")["unique"], serde_json::json!({}));
    assert_eq!((f("Name")["system_mandatory"].as_bool(), f("id")["json_type"].as_str(), f("id")["data_type"].as_str()), (Some(true), Some("string"), Some("bigint")));
    assert_eq!(f("Account")["lookup"]["module"]["api_name"], "Accounts");
    assert_eq!(f("Status")["pick_list_values"][1]["actual_value"], "Paid");
    assert_eq!(f("Created_Time")["operation_type"]["api_create"], false);
    let (_, v) = sj(ctx.get("/crm/v8/settings/fields?module=Leads").await).await;
    let days = v["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "Days_Open").unwrap().clone();
    assert_eq!((days["formula"]["return_type"].as_str(), days["json_type"].as_str(), days["read_only"].as_bool()), (Some("double"), Some("double"), Some(true)));
    assert_eq!(ctx.get("/crm/v8/settings/fields?module=Visits").await.status(), 204);
    let (s, v) = sj(ctx.get("/crm/v8/settings/fields?module=Nope").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("INVALID_MODULE")));

    let (_, v) = sj(ctx.get("/crm/v8/org").await).await;
    let org = &v["org"][0];
    assert_eq!(org["zgid"], ctx.sim.zgid().as_str());
    assert_eq!((org["type"].as_str(), org["max_per_page"].as_i64(), org["time_zone"].as_str()), (Some("Production"), Some(200), Some("Asia/Kolkata")));
    let (_, v) = sj(ctx.get("/crm/v8/users?type=CurrentUser").await).await;
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
    assert_eq!(v["users"][0]["full_name"], "Patricia Boyle");
    let (s, v) = sj(ctx.get("/crm/v8/nothing/here/at/all").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (404, Some("INVALID_URL_PATTERN")));
    let _: Value = Value::Null;
}

#[test]
fn start_blocking_from_sync_code_and_deterministic_seeds() {
    let a = zoho_sim::Sim::start_blocking(SimConfig::default().seed("Leads", 20).seed("Orders", 5)).unwrap();
    let b = zoho_sim::Sim::start_blocking(SimConfig::default().seed("Leads", 20).seed("Orders", 5)).unwrap();
    assert_eq!(a.records("Leads"), b.records("Leads"));
    assert_eq!(a.records("Orders")[4]["parent_id"], "ORD-000005");
    let leads = a.records("Leads");
    let first = leads[0]["Created_Time"].as_str().unwrap();
    assert!(first.starts_with("2025-01-01T") && first.ends_with("+05:30"), "{first}");
    assert!(leads.windows(2).all(|w| w[0]["id"].as_str().unwrap() < w[1]["id"].as_str().unwrap()));
    assert!(leads.iter().all(|r| r["Days_Open"].as_f64().unwrap() >= 0.0));
    let c = zoho_sim::Sim::start_blocking(SimConfig::default().seed("Leads", 20).rng_seed(7)).unwrap();
    assert_ne!(a.records("Leads")[0]["Last_Name"].clone(), Value::Null);
    assert_ne!(a.records("Leads"), c.records("Leads"));
    let body = reqwest::blocking::get(format!("{}/__sim/records/Orders", a.base_url())).unwrap().json::<Value>().unwrap();
    assert_eq!(body.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn an_admin_adds_removes_and_retypes_fields_at_run_time() {
    let ctx = Ctx::new(SimConfig::default().seed("Orders", 2)).await;
    let fields = |v: &Value| v["fields"].as_array().unwrap().iter().map(|f| (f["api_name"].as_str().unwrap().to_string(), f["data_type"].as_str().unwrap().to_string())).collect::<Vec<_>>();
    ctx.sim.add_field("Orders", "Region", "text").unwrap();
    let (_, v) = sj(ctx.get("/crm/v8/settings/fields?module=Orders").await).await;
    assert!(fields(&v).contains(&("Region".into(), "text".into())));
    assert!(ctx.sim.add_field("Orders", "region", "text").is_err(), "a second field of that name");
    let id = ctx.sim.records("Orders")[0]["id"].as_str().unwrap().to_string();
    ctx.sim.ui_edit("Orders", &id, serde_json::json!({"Region": "North", "Customer_Name": "12"})).unwrap();
    assert_eq!(ctx.sim.records("Orders").iter().find(|r| r["id"] == id.as_str()).unwrap()["Region"], "North");
    // Removed: gone from the metadata and from the records.
    ctx.sim.remove_field("Orders", "Region").unwrap();
    let (_, v) = sj(ctx.get("/crm/v8/settings/fields?module=Orders").await).await;
    assert!(!fields(&v).iter().any(|(f, _)| f == "Region"));
    assert!(ctx.sim.records("Orders").iter().all(|r| !r.contains_key("Region")));
    // Retyped: the metadata says so; values the new type cannot hold go.
    ctx.sim.retype_field("Orders", "Customer_Name", "integer").unwrap();
    let (_, v) = sj(ctx.get("/crm/v8/settings/fields?module=Orders").await).await;
    assert!(fields(&v).contains(&("Customer_Name".into(), "integer".into())));
    let names: Vec<Value> = ctx.sim.records("Orders").iter().map(|r| r.get("Customer_Name").cloned().unwrap_or(Value::Null)).collect();
    assert!(names.iter().any(|n| n == "12"), "{names:?}");
    assert!(ctx.sim.remove_field("Orders", "Nope").is_err());
    assert!(ctx.sim.add_field("Nope", "X", "text").is_err());
    assert!(ctx.sim.add_field("Orders", "X", "hologram").is_err());
}
