mod common;

use common::*;
use serde_json::{json, Value};
use zoho_sim::{Fault, SimConfig};

async fn wait_read(ctx: &Ctx, id: &str) -> Value {
    wait_for(|| async {
        let (_, v) = sj(ctx.get(&format!("/crm/bulk/v8/read/{id}")).await).await;
        let st = v["data"][0]["state"].as_str().unwrap_or("").to_string();
        (st == "COMPLETED" || st == "FAILURE").then_some(v["data"][0].clone())
    })
    .await
}

#[tokio::test]
async fn bulk_read_lifecycle_csv_and_page_tokens() {
    let ctx = Ctx::new(SimConfig::default().seed("Accounts", 5).seed("Contacts", 25).bulk_page_size(10).bulk_step_ms(20)).await;
    let r = ctx.http.post(ctx.url("/crm/bulk/v8/read")).header("Authorization", ctx.auth()).body("{}").send().await.unwrap();
    let (s, v) = sj(r).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (415, Some("MEDIA_TYPE_NOT_SUPPORTED")));
    let (s, v) = sj(ctx.post("/crm/bulk/v8/read", &json!({"query": {"module": {"api_name": "Notes"}}})).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("MODULE_NOT_SUPPORTED")));
    let (s, v) = sj(ctx.post("/crm/bulk/v8/read", &json!({"query": {"module": {"api_name": "Contacts"}, "fields": ["Nope"]}})).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("FIELD_NOT_AVAILABLE")));

    let body = json!({"query": {"module": {"api_name": "Contacts"},
        "fields": ["Last_Name", "Email", "Owner", "Owner.email", "Account_Name", "Account_Name.Account_Name", "Email_Opt_Out"]}});
    let (s, v) = sj(ctx.post("/crm/bulk/v8/read", &body).await).await;
    assert_eq!(s, 201);
    let d = &v["data"][0];
    assert_eq!((d["code"].as_str(), d["details"]["state"].as_str(), d["details"]["operation"].as_str()), (Some("ADDED_SUCCESSFULLY"), Some("ADDED"), Some("read")));
    let id = d["details"]["id"].as_str().unwrap().to_string();
    let job = wait_read(&ctx, &id).await;
    assert_eq!(job["state"], "COMPLETED");
    let res = &job["result"];
    assert_eq!((res["count"].as_i64(), res["per_page"].as_i64(), res["more_records"].as_bool()), (Some(10), Some(10), Some(true)));
    assert_eq!(res["download_url"], format!("/crm/bulk/v8/read/{id}/result"));
    let r = ctx.get(res["download_url"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let (name, rows) = unzip_csv(&r.bytes().await.unwrap());
    assert_eq!(name, format!("{id}.csv"));
    assert_eq!(rows[0], ["Id", "Last_Name", "Email", "Owner", "Owner.email", "Account_Name", "Account_Name.Account_Name", "Email_Opt_Out"]);
    assert_eq!(rows.len(), 11);
    let stored = ctx.sim.records("Contacts");
    let mut page_ids: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    let mut sorted = page_ids.clone();
    sorted.sort();
    assert_ne!(page_ids, sorted, "rows are not in id order");
    let row = &rows[1];
    let rec = stored.iter().find(|r| r["id"] == row[0].as_str()).unwrap();
    assert_eq!(row[1], rec["Last_Name"].as_str().unwrap());
    assert_eq!(row[3], rec["Owner"]["id"].as_str().unwrap(), "lookups are bare ids");
    assert_eq!(row[4], rec["Owner"]["email"].as_str().unwrap());
    assert_eq!(row[5], rec["Account_Name"]["id"].as_str().unwrap_or(""));
    assert_eq!(row[6], rec["Account_Name"]["name"].as_str().unwrap_or(""));
    assert!(row[7] == "true" || row[7] == "false");

    // Follow the page tokens: module and fields carry over.
    let mut tok = res["next_page_token"].as_str().unwrap().to_string();
    let mut pages = 1;
    loop {
        let (s, v) = sj(ctx.post("/crm/bulk/v8/read", &json!({"query": {"page_token": tok}})).await).await;
        assert_eq!(s, 201);
        let job = wait_read(&ctx, v["data"][0]["details"]["id"].as_str().unwrap()).await;
        pages += 1;
        let (_, rows) = unzip_csv(&ctx.get(job["result"]["download_url"].as_str().unwrap()).await.bytes().await.unwrap());
        assert_eq!(rows[0].len(), 8);
        page_ids.extend(rows[1..].iter().map(|r| r[0].parse::<i64>().unwrap()));
        match job["result"]["next_page_token"].as_str() {
            Some(t) => tok = t.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    page_ids.sort();
    let mut all: Vec<i64> = stored.iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    all.sort();
    assert_eq!(page_ids, all);
    let (s, v) = sj(ctx.get("/crm/bulk/v8/read/123").await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (404, Some("RESOURCE_NOT_FOUND")));
}

#[tokio::test]
async fn bulk_read_criteria_all_fields_failure_and_download_limit() {
    let ctx = Ctx::new(SimConfig::default().seed("Orders", 40).bulk_step_ms(10)).await;
    let body = json!({"query": {"module": {"api_name": "Orders"},
        "criteria": {"field": {"api_name": "Status"}, "comparator": "equal", "value": "Paid"}}});
    let (_, v) = sj(ctx.post("/crm/bulk/v8/read", &body).await).await;
    let id = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let job = wait_read(&ctx, &id).await;
    let paid = ctx.sim.records("Orders").iter().filter(|r| r["Status"] == "Paid").count();
    assert!(paid > 0);
    assert_eq!(job["result"]["count"].as_u64(), Some(paid as u64));
    let (_, rows) = unzip_csv(&ctx.get(&format!("/crm/bulk/v8/read/{id}/result")).await.bytes().await.unwrap());
    assert_eq!(rows[0][0], "Id");
    assert!(rows[0].contains(&"parent_id".to_string()) && rows[0].contains(&"Shipped_At".to_string()), "all fields without `fields`");
    let status_col = rows[0].iter().position(|h| h == "Status").unwrap();
    assert!(rows[1..].iter().all(|r| r[status_col] == "Paid"));
    // 10 downloads a minute.
    for _ in 0..9 {
        assert_eq!(ctx.get(&format!("/crm/bulk/v8/read/{id}/result")).await.status(), 200);
    }
    let (s, v) = sj(ctx.get(&format!("/crm/bulk/v8/read/{id}/result")).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (429, Some("TOO_MANY_REQUESTS")));
    ctx.sim.advance_clock(std::time::Duration::from_secs(61));
    let fresh = fetch_token(&ctx.http, &ctx.sim.base_url()).await;
    let r = ctx.http.get(ctx.url(&format!("/crm/bulk/v8/read/{id}/result"))).header("Authorization", format!("Zoho-oauthtoken {fresh}")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    ctx.sim.inject(Fault::job_failed());
    let ctx_tok = fresh;
    let r = ctx.http.post(ctx.url("/crm/bulk/v8/read")).header("Authorization", format!("Zoho-oauthtoken {ctx_tok}")).json(&json!({"query": {"module": {"api_name": "Orders"}}})).send().await.unwrap();
    let (_, v) = sj(r).await;
    let id = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let job = wait_for(|| {
        let http = ctx.http.clone();
        let url = ctx.url(&format!("/crm/bulk/v8/read/{id}"));
        let tok = ctx_tok.clone();
        async move {
            let v: Value = http.get(url).header("Authorization", format!("Zoho-oauthtoken {tok}")).send().await.unwrap().json().await.unwrap();
            (v["data"][0]["state"] == "FAILURE").then(|| v["data"][0].clone())
        }
    })
    .await;
    assert_eq!(job["result"]["error_message"]["status"], "error");
}

async fn upload(ctx: &Ctx, zip: Vec<u8>, feature: Option<&str>, org: Option<&str>) -> (reqwest::StatusCode, Value) {
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(zip).file_name("orders.zip"));
    let mut rb = ctx.http.post(ctx.url("/crm/v8/upload")).header("Authorization", ctx.auth()).multipart(form);
    if let Some(f) = feature {
        rb = rb.header("feature", f);
    }
    if let Some(o) = org {
        rb = rb.header("X-CRM-ORG", o);
    }
    sj(rb.send().await.unwrap()).await
}

async fn wait_write(ctx: &Ctx, id: &str) -> Value {
    wait_for(|| async {
        let (_, v) = sj(ctx.get(&format!("/crm/bulk/v8/write/{id}")).await).await;
        let st = v["status"].as_str().unwrap_or("").to_string();
        (st == "COMPLETED" || st == "FAILED").then_some(v)
    })
    .await
}

#[tokio::test]
async fn bulk_write_upload_job_result_with_bad_rows() {
    let ctx = Ctx::new(SimConfig::default().seed("Orders", 2).bulk_step_ms(10)).await;
    let zgid = ctx.sim.zgid();
    let csv = "parent_id;Name;Order_Date;Quantity;Shipped_At\n\
               ORD-000001;Order 000001 renamed;2025-03-04;5;2025-03-05T10:00:00+00:00\n\
               ORD-9001;New order;2025-03-06;oops;\n\
               ORD-9002;;2025-03-07;1;\n\
               ORD-9003;Third;03/08/2025;2;\n";
    let zip = zip_csv("orders.csv", csv);
    let (s, v) = upload(&ctx, zip.clone(), None, Some(&zgid)).await;
    assert_eq!(s, 400);
    assert_eq!(v["x-error"], "check if headers [feature, X-CRM-ORG] are present and valid");
    let (s, _) = upload(&ctx, zip.clone(), Some("bulk-write"), Some("999")).await;
    assert_eq!(s, 400);
    let (s, v) = upload(&ctx, b"not a zip".to_vec(), Some("bulk-write"), Some(&zgid)).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("INVALID_FILE_FORMAT")));
    let (s, v) = upload(&ctx, zip, Some("bulk-write"), Some(&zgid)).await;
    assert_eq!((s.as_u16(), v["code"].as_str(), v["message"].as_str()), (200, Some("FILE_UPLOAD_SUCCESS"), Some("file uploaded.")));
    let file_id = v["details"]["file_id"].as_str().expect("file_id is a string, as Zoho's documented body sends it").to_string();

    let mappings = json!([
        {"api_name": "parent_id", "index": 0},
        {"api_name": "Name", "index": 1},
        {"api_name": "Order_Date", "index": 2, "format": "yyyy-MM-dd"},
        {"api_name": "Quantity", "index": 3},
        {"api_name": "Shipped_At", "index": 4, "format": "yyyy-MM-dd'T'HH:mm:ssXXX"}
    ]);
    let mut job = json!({"operation": "upsert", "ignore_empty": true,
        "resource": [{"type": "data", "module": {"api_name": "Orders"}, "file_id": file_id, "field_mappings": mappings}]});
    let (s, v) = sj(ctx.post("/crm/bulk/v8/write", &job).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str(), v["details"]["api_name"].as_str()), (400, Some("MANDATORY_NOT_FOUND"), Some("find_by")));
    job["resource"][0]["find_by"] = json!("parent_id");
    let (s, v) = sj(ctx.post("/crm/bulk/v8/write", &job).await).await;
    assert_eq!((s.as_u16(), v["status"].as_str(), v["code"].as_str()), (201, Some("success"), Some("SUCCESS")));
    let id = v["details"]["id"].as_str().unwrap().to_string();
    let st = wait_write(&ctx, &id).await;
    assert_eq!(st["status"], "COMPLETED");
    assert!(st.get("data").is_none());
    let file = &st["resource"][0]["file"];
    assert_eq!((file["added_count"].as_i64(), file["updated_count"].as_i64(), file["skipped_count"].as_i64(), file["total_count"].as_i64()), (Some(0), Some(1), Some(3), Some(4)));
    let url = st["result"]["download_url"].as_str().unwrap();
    assert_eq!(url, format!("{}/v8/crm/{zgid}/bulk-write/{id}/{id}.zip", ctx.sim.base_url()));
    let r = ctx.http.get(url).header("Authorization", ctx.auth()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, rows) = unzip_csv(&r.bytes().await.unwrap());
    assert_eq!(rows[0], ["parent_id", "Name", "Order_Date", "STATUS", "RECORD_ID", "ERRORS"]);
    let first = ctx.sim.records("Orders").into_iter().find(|r| r["parent_id"] == "ORD-000001").unwrap();
    assert_eq!(rows[1][3..], [String::from("UPDATED"), first["id"].as_str().unwrap().to_string(), String::new()]);
    assert_eq!(first["Name"], "Order 000001 renamed");
    assert_eq!(first["Order_Date"], "2025-03-04");
    assert_eq!(first["Shipped_At"], "2025-03-05T15:30:00+05:30");
    assert_eq!((rows[2][3].as_str(), rows[2][5].as_str()), ("SKIPPED", "INVALID_DATA-Quantity"));
    assert_eq!((rows[3][3].as_str(), rows[3][5].as_str()), ("SKIPPED", "MANDATORY_NOT_FOUND-Name"));
    assert_eq!((rows[4][3].as_str(), rows[4][5].as_str()), ("SKIPPED", "INVALID_DATA-Order_Date"), "03/08/2025 is not yyyy-MM-dd");
}

#[tokio::test]
async fn bulk_write_insert_default_formats_skip_rows_fault_and_failure() {
    let ctx = Ctx::new(SimConfig::default().bulk_step_ms(10)).await;
    let zgid = ctx.sim.zgid();
    let csv = "Name,parent_id,Order_Date,Paid,Shipped_At\nA,P-1,03/04/2025,true,03/05/2025 10:00:00\nB,P-2,,false,\nC,P-3,12/31/2025,TRUE,\n";
    let (_, v) = upload(&ctx, zip_csv("o.csv", csv), Some("bulk-write"), Some(&zgid)).await;
    let file_id = v["details"]["file_id"].as_str().expect("file_id is a string, as Zoho's documented body sends it").to_string();
    let watch = json!({"watch": [{"channel_id": "9", "events": ["Orders.create"], "notify_url": "http://127.0.0.1:9/closed"}]});
    assert_eq!(ctx.post("/crm/v8/actions/watch", &watch).await.status(), 201);
    ctx.sim.inject(Fault::skip_rows(1));
    let job = json!({"operation": "insert", "resource": [{"type": "data", "module": {"api_name": "Orders"}, "file_id": file_id}]});
    let (s, v) = sj(ctx.post("/crm/bulk/v8/write", &job).await).await;
    assert_eq!(s, 201);
    let st = wait_write(&ctx, v["details"]["id"].as_str().unwrap()).await;
    let f = &st["resource"][0]["file"];
    assert_eq!((f["added_count"].as_i64(), f["skipped_count"].as_i64()), (Some(2), Some(1)));
    let recs = ctx.sim.records("Orders");
    assert_eq!(recs.len(), 2);
    let d = ctx.sim.deliveries();
    assert_eq!(d.len(), 1, "one callback for the job's inserts");
    assert_eq!((d[0].operation.as_str(), d[0].ids.len()), ("insert", 2));
    let b = recs.iter().find(|r| r["Name"] == "B").unwrap();
    assert_eq!((b["Paid"].clone(), b["Order_Date"].clone()), (json!(false), Value::Null));
    let c = recs.iter().find(|r| r["Name"] == "C").unwrap();
    assert_eq!((c["Paid"].clone(), c["Order_Date"].clone()), (json!(true), json!("2025-12-31")));
    let (_, rows) = unzip_csv(&ctx.get(&st["result"]["download_url"].as_str().unwrap().replace(&ctx.sim.base_url(), "")).await.bytes().await.unwrap());
    assert_eq!((rows[1][3].as_str(), rows[1][5].as_str()), ("SKIPPED", "INVALID_DATA-Name"));

    // The same file again with find_by on insert: existing rows are skipped.
    let job = json!({"operation": "insert", "resource": [{"type": "data", "module": {"api_name": "Orders"}, "file_id": file_id, "find_by": "parent_id"}]});
    let (_, v) = sj(ctx.post("/crm/bulk/v8/write", &job).await).await;
    let st = wait_write(&ctx, v["details"]["id"].as_str().unwrap()).await;
    let f = &st["resource"][0]["file"];
    assert_eq!((f["added_count"].as_i64(), f["skipped_count"].as_i64()), (Some(1), Some(2)));
    assert_eq!(ctx.sim.records("Orders").len(), 3);

    ctx.sim.inject(Fault::job_failed());
    let (_, v) = sj(ctx.post("/crm/bulk/v8/write", &job).await).await;
    let st = wait_write(&ctx, v["details"]["id"].as_str().unwrap()).await;
    assert_eq!(st["status"], "FAILED");
    let (s, v) = sj(ctx.post("/crm/bulk/v8/write", &json!({"operation": "insert", "resource": [{"type": "data", "module": {"api_name": "Orders"}, "file_id": "42"}]})).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("INVALID_FILE_ID")));
    let (s, v) = sj(ctx.post("/crm/bulk/v8/write", &json!({"operation": "insert", "resource": [{"type": "data", "module": {"api_name": "Nope"}, "file_id": file_id}]})).await).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("MODULE_NOT_AVAILABLE")));
}

#[tokio::test]
async fn jobs_larger_than_a_slice_keep_every_row_and_take_their_two_steps() {
    // 25,000 Leads is three slices of the simulator's lock; every record
    // comes back once, with the values it holds.
    let ctx = Ctx::new(SimConfig::default().seed("Leads", 25_000).bulk_page_size(25_000).bulk_step_ms(200)).await;
    let started = std::time::Instant::now();
    let (s, v) = sj(ctx.post("/crm/bulk/v8/read", &json!({"query": {"module": {"api_name": "Leads"}}})).await).await;
    assert_eq!(s, 201);
    let job = wait_read(&ctx, v["data"][0]["details"]["id"].as_str().unwrap()).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(400), "a job takes its two steps: {:?}", started.elapsed());
    assert_eq!((job["result"]["count"].as_i64(), job["result"]["more_records"].as_bool()), (Some(25_000), Some(false)));
    let (_, rows) = unzip_csv(&ctx.get(job["result"]["download_url"].as_str().unwrap()).await.bytes().await.unwrap());
    let stored = ctx.sim.records("Leads");
    let mut ids: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    ids.sort();
    let mut all: Vec<&str> = stored.iter().map(|r| r["id"].as_str().unwrap()).collect();
    all.sort();
    assert_eq!(ids, all);
    for row in [&rows[1], &rows[12_345], &rows[25_000]] {
        let rec = stored.iter().find(|r| r["id"] == row[0].as_str()).unwrap();
        for (name, cell) in rows[0].iter().zip(row).skip(1) {
            let want = match &rec[name.as_str()] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Object(o) => o["id"].as_str().unwrap_or("").to_string(),
                Value::Array(a) => a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect::<Vec<_>>().join(";"),
                other => other.to_string(),
            };
            assert_eq!(cell, &want, "column {name} of record {}", row[0]);
        }
    }

    // 5,000 rows written are three slices too: one outcome per row, in order.
    let zgid = ctx.sim.zgid();
    let csv: String = std::iter::once("parent_id,Name\n".to_string()).chain((1..=5_000).map(|i| format!("BIG-{i},Big order {i}\n"))).collect();
    let (s, v) = upload(&ctx, zip_csv("big.csv", &csv), Some("bulk-write"), Some(&zgid)).await;
    assert_eq!(s, 200);
    let job = json!({"operation": "upsert", "resource": [{"type": "data", "module": {"api_name": "Orders"}, "file_id": v["details"]["file_id"], "find_by": "parent_id",
        "field_mappings": [{"api_name": "parent_id", "index": 0}, {"api_name": "Name", "index": 1}]}]});
    let (s, v) = sj(ctx.post("/crm/bulk/v8/write", &job).await).await;
    assert_eq!(s, 201);
    let id = v["details"]["id"].as_str().unwrap().to_string();
    let st = wait_write(&ctx, &id).await;
    let file = &st["resource"][0]["file"];
    assert_eq!((file["added_count"].as_i64(), file["skipped_count"].as_i64(), file["total_count"].as_i64()), (Some(5_000), Some(0), Some(5_000)));
    let r = ctx.http.get(st["result"]["download_url"].as_str().unwrap()).header("Authorization", ctx.auth()).send().await.unwrap();
    let (_, rows) = unzip_csv(&r.bytes().await.unwrap());
    assert_eq!(rows.len(), 5_001);
    for (i, row) in rows[1..].iter().enumerate() {
        assert_eq!((row[0].as_str(), row[2].as_str()), (format!("BIG-{}", i + 1).as_str(), "ADDED"));
    }
    assert_eq!(ctx.sim.records("Orders").len(), 5_000);
}
