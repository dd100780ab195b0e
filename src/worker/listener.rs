//! The webhook listener: an HTTP server on its own thread (never touching
//! PostgreSQL), which checks each callback's channel and token against what
//! the worker last loaded, answers 403 on a mismatch, and otherwise queues
//! the payload for the worker's main loop and answers 200 at once, as Zoho
//! expects (zoho-api.md §9.5).
//!
//! Anyone can reach it, so everything it takes is bounded: a body of at most
//! [`MAX_BODY`] bytes (413 beyond), [`MAX_CONNECTIONS`] connections at once
//! (503 beyond), [`READ_TIMEOUT`] to send the request head and
//! [`CONNECTION_TIMEOUT`] for a whole connection (one request each, no
//! keep-alive), [`MAX_PER_PEER`] connections from one address,
//! [`MAX_UNKNOWN`] callbacks of channels the worker has not loaded yet
//! waiting for its verdict, and [`QUEUE`] callbacks waiting for the worker
//! (503 beyond). A callback's ids are at most 100.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use zoho_api::notifications::WebhookPayload;

/// Channel id → token, as the worker last read them.
pub type Tokens = Arc<RwLock<HashMap<String, String>>>;

/// The Prometheus text the main loop last wrote ([`super::metrics`]).
pub type Metrics = Arc<RwLock<String>>;

pub struct Listener {
    pub tokens: Tokens,
    pub metrics: Metrics,
    pub queue: mpsc::Receiver<Incoming>,
    pub addr: std::net::SocketAddr,
}

/// A callback for the main loop. For a channel the listener does not know
/// yet (made since the last reload), the main loop reloads, checks the
/// token and answers through `verdict` before the HTTP answer goes out.
pub struct Incoming {
    pub payload: WebhookPayload,
    pub verdict: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// A callback names at most 100 records: a few KiB.
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_CONNECTIONS: usize = 64;
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_PER_PEER: usize = 8;
pub const MAX_UNKNOWN: usize = 16;
/// Callbacks accepted but not yet taken by the worker's main loop.
pub const QUEUE: usize = 2_000;

#[derive(Clone)]
struct Shared {
    tokens: Tokens,
    queue: mpsc::SyncSender<Incoming>,
    /// Places for callbacks of channels not loaded yet: they need a reload
    /// by the main loop, so a flood of made-up channel ids is capped.
    unknown: Arc<tokio::sync::Semaphore>,
    metrics: Metrics,
}

/// The address a request came from.
#[derive(Clone, Copy)]
struct Peer(std::net::IpAddr);

/// `GET /metrics`: the flows' health in Prometheus' text format, for this
/// host only (it names tables), unless zoho_fdw.metrics_from_anywhere.
async fn metrics(State(s): State<Shared>, axum::Extension(Peer(ip)): axum::Extension<Peer>) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !ip.to_canonical().is_loopback() && !super::metrics::from_anywhere() {
        return (StatusCode::FORBIDDEN, "metrics are served to this host only\n").into_response();
    }
    let text = s.metrics.read().map(|m| m.clone()).unwrap_or_default();
    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn receive(State(s): State<Shared>, uri: axum::http::Uri, body: Bytes) -> (StatusCode, &'static str) {
    // A bulk job's end (crate::job_callbacks): only wakes its waiter.
    if let Some(nonce) = uri.query().and_then(crate::job_callbacks::nonce_in) {
        return if crate::job_callbacks::arrived(nonce) { (StatusCode::OK, "ok\n") } else { (StatusCode::FORBIDDEN, "no job waits for this callback\n") };
    }
    const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "unknown channel or wrong token\n");
    const STOPPING: (StatusCode, &str) = (StatusCode::SERVICE_UNAVAILABLE, "worker busy or stopping\n");
    const FULL: (StatusCode, &str) = (StatusCode::SERVICE_UNAVAILABLE, "too many notifications waiting\n");
    let Ok(payload) = WebhookPayload::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "not a Zoho notification\n");
    };
    let known = s.tokens.read().ok().and_then(|t| t.get(&payload.channel_id).map(|token| payload.token_matches(token)));
    match known {
        Some(false) => FORBIDDEN,
        // Zoho retries a callback that failed: a full queue loses nothing.
        Some(true) => match s.queue.try_send(Incoming { payload, verdict: None }) {
            Ok(()) => (StatusCode::OK, "ok\n"),
            Err(mpsc::TrySendError::Full(_)) => FULL,
            Err(mpsc::TrySendError::Disconnected(_)) => STOPPING,
        },
        None => {
            let Ok(_place) = s.unknown.clone().try_acquire_owned() else { return FULL };
            let (tx, rx) = tokio::sync::oneshot::channel();
            match s.queue.try_send(Incoming { payload, verdict: Some(tx) }) {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(_)) => return FULL,
                Err(mpsc::TrySendError::Disconnected(_)) => return STOPPING,
            }
            match tokio::time::timeout(std::time::Duration::from_secs(5), rx).await {
                Ok(Ok(true)) => (StatusCode::OK, "ok\n"),
                Ok(Ok(false)) => FORBIDDEN,
                _ => STOPPING,
            }
        }
    }
}

/// Binds `addr` and serves on a new thread; the error says why it could not.
pub fn start(addr: &str) -> Result<Listener, String> {
    let tokens: Tokens = Arc::new(RwLock::new(HashMap::new()));
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<std::net::SocketAddr, String>>(1);
    let metrics: Metrics = Arc::default();
    let shared = Shared { tokens: tokens.clone(), queue: tx, unknown: Arc::new(tokio::sync::Semaphore::new(MAX_UNKNOWN)), metrics: metrics.clone() };
    let addr = addr.to_string();
    std::thread::Builder::new()
        .name("zoho-webhook".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(&addr).await {
                    Ok(l) => l,
                    Err(e) => return drop(ready_tx.send(Err(format!("cannot listen on {addr}: {e}")))),
                };
                let _ = ready_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                let app = axum::Router::new()
                    .route("/metrics", axum::routing::get(self::metrics))
                    .fallback(axum::routing::post(receive))
                    .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
                    .with_state(shared);
                serve(listener, app).await;
            });
        })
        .map_err(|e| e.to_string())?;
    let addr = ready_rx.recv().map_err(|_| "the listener thread ended before binding".to_string())??;
    Ok(Listener { tokens, metrics, queue: rx, addr })
}

/// Accepts connections up to [`MAX_CONNECTIONS`], each with its timeouts;
/// one more is answered 503 and closed.
async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    use tokio::io::AsyncWriteExt;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let peers: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>> = Arc::default();
    loop {
        let Ok((mut stream, from)) = listener.accept().await else { continue };
        let peer = PeerSlot::take(&peers, from.ip());
        let slot = peer.and_then(|p| slots.clone().try_acquire_owned().ok().map(|s| (s, p)));
        let Some(slot) = slot else {
            tokio::spawn(async move {
                let busy = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\nconnection: close\r\n\r\ntoo many connections";
                let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(busy)).await;
            });
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone().layer(axum::Extension(Peer(from.ip()))));
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive(false)
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(slot);
        });
    }
}

/// One address's place among the connections; given back when dropped.
struct PeerSlot {
    peers: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl PeerSlot {
    fn take(peers: &Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let mut map = peers.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= MAX_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot { peers: peers.clone(), ip })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}
