#![allow(dead_code)]
//! Helpers shared by the simulator's HTTP tests.

use std::io::{Cursor, Read, Write};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use zoho_sim::{Sim, SimConfig};

pub struct Ctx {
    pub sim: Sim,
    pub http: Client,
    pub token: String,
}

impl Ctx {
    pub async fn new(cfg: SimConfig) -> Ctx {
        let sim = Sim::start(cfg).await.expect("sim starts");
        let http = Client::new();
        let token = fetch_token(&http, &sim.base_url()).await;
        Ctx { sim, http, token }
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }
    pub fn auth(&self) -> String {
        format!("Zoho-oauthtoken {}", self.token)
    }
    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).header("Authorization", self.auth()).send().await.expect("send")
    }
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.http.request(method, self.url(path)).header("Authorization", self.auth()).json(body).send().await.expect("send")
    }
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::POST, path, body).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::PUT, path, body).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        self.http.delete(self.url(path)).header("Authorization", self.auth()).send().await.expect("send")
    }
    pub async fn coql(&self, q: &str) -> Response {
        self.post("/crm/v8/coql", &serde_json::json!({"select_query": q})).await
    }
}

pub async fn fetch_token(http: &Client, base: &str) -> String {
    let r: Value = http
        .post(format!("{base}/oauth/v2/token"))
        .form(&[("grant_type", "refresh_token"), ("client_id", "sim-client-id"), ("client_secret", "sim-client-secret"), ("refresh_token", "sim-refresh-token")])
        .send()
        .await
        .expect("token call")
        .json()
        .await
        .expect("token json");
    r["access_token"].as_str().expect("access_token").to_string()
}

/// Status and JSON body (Null for an empty body).
pub async fn sj(r: Response) -> (StatusCode, Value) {
    let s = r.status();
    let b = r.bytes().await.expect("body");
    let v = if b.is_empty() { Value::Null } else { serde_json::from_slice(&b).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&b))) };
    (s, v)
}

pub fn zip_csv(name: &str, csv: &str) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(csv.as_bytes()).unwrap();
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// (entry name, CSV rows including the header).
pub fn unzip_csv(data: &[u8]) -> (String, Vec<Vec<String>>) {
    let mut z = zip::ZipArchive::new(Cursor::new(data)).expect("zip");
    assert_eq!(z.len(), 1, "one entry");
    let mut f = z.by_index(0).unwrap();
    let name = f.name().to_string();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(s.as_bytes());
    let rows = r.records().map(|x| x.unwrap().iter().map(String::from).collect()).collect();
    (name, rows)
}

/// Polls until `f` returns Some, up to ~5 s.
pub async fn wait_for<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..250 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("condition not met in time");
}
