//! A server that answers with canned bodies: Zoho's documented samples
//! (`spec/zoho-samples/`), so the client's real request and parse path
//! meets bodies its own simulator did not write.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use zoho_api::http::{ClientConfig, PollPolicy, RetryPolicy};
use zoho_api::{Credentials, Endpoints, MemoryTokenStore, ZohoClient};

/// One request the client sent.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

type Routes = HashMap<(String, String), VecDeque<(u16, Vec<u8>)>>;

pub struct Fixture {
    url: String,
    routes: Arc<Mutex<Routes>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A documented sample, by its path under `spec/zoho-samples/`.
pub fn sample(rel: &str) -> Vec<u8> {
    let path = format!("{}/../../spec/zoho-samples/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn sample_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&sample(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

impl Fixture {
    /// Answers the token endpoint with Zoho's documented refresh reply.
    pub async fn start() -> Fixture {
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (routes, seen) = (r.clone(), s.clone());
            async move { answer(req, &routes, &seen).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let f = Fixture { url, routes, seen };
        f.serve("POST", "/oauth/v2/token", 200, sample("oauth/refresh_token_success_phonebridge_v3.json"));
        f
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queues an answer for `method path`; the last one queued repeats.
    pub fn serve(&self, method: &str, path: &str, status: u16, body: impl Into<Vec<u8>>) {
        self.routes.lock().unwrap().entry((method.to_string(), path.to_string())).or_default().push_back((status, body.into()));
    }

    /// Replaces whatever was queued for `method path`.
    pub fn serve_only(&self, method: &str, path: &str, status: u16, body: impl Into<Vec<u8>>) {
        self.routes.lock().unwrap().remove(&(method.to_string(), path.to_string()));
        self.serve(method, path, status, body);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests made to `path` (the token endpoint aside).
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(Endpoints::custom(&self.url, &self.url, None).unwrap());
        c.retry = RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) };
        c.poll = PollPolicy { initial: Duration::from_millis(5), max_interval: Duration::from_millis(20), timeout: Duration::from_secs(10) };
        c.request_timeout = Duration::from_secs(10);
        c.token_store = Some(Arc::new(MemoryTokenStore::default()));
        c
    }

    pub fn client(&self) -> ZohoClient {
        ZohoClient::new(self.config(), Credentials::new("1000.fixture", "fixture-secret", "1000.fixture-refresh")).unwrap()
    }
}

async fn answer(req: Request<Body>, routes: &Mutex<Routes>, seen: &Mutex<Vec<Seen>>) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = to_bytes(req.into_body(), 64 << 20).await.unwrap_or_default().to_vec();
    seen.lock().unwrap().push(Seen { method: method.clone(), path: path.clone(), query, authorization, body });
    let mut routes = routes.lock().unwrap();
    let Some(queue) = routes.get_mut(&(method, path)) else {
        let body = r#"{"code":"INVALID_URL_PATTERN","details":{},"message":"Please check if the URL trying to access is a correct one","status":"error"}"#;
        return (StatusCode::NOT_FOUND, [("content-type", "application/json")], body).into_response();
    };
    let (status, body) = if queue.len() > 1 { queue.pop_front().unwrap() } else { queue[0].clone() };
    let status = StatusCode::from_u16(status).unwrap();
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    let ctype = if body.starts_with(b"PK") { "application/zip" } else { "application/json;charset=UTF-8" };
    (status, [("content-type", ctype)], body).into_response()
}
