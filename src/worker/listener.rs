//! The webhook listener: an HTTP server on its own thread (never touching
//! PostgreSQL), which checks each callback's channel and token against what
//! the worker last loaded, answers 403 on a mismatch, and otherwise queues
//! the payload for the worker's main loop and answers 200 at once, as Zoho
//! expects (zoho-api.md §9.5).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use zoho_api::notifications::WebhookPayload;

/// Channel id → token, as the worker last read them.
pub type Tokens = Arc<RwLock<HashMap<String, String>>>;

pub struct Listener {
    pub tokens: Tokens,
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

#[derive(Clone)]
struct Shared {
    tokens: Tokens,
    queue: mpsc::Sender<Incoming>,
}

async fn receive(State(s): State<Shared>, body: Bytes) -> (StatusCode, &'static str) {
    const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "unknown channel or wrong token\n");
    const STOPPING: (StatusCode, &str) = (StatusCode::SERVICE_UNAVAILABLE, "worker busy or stopping\n");
    let Ok(payload) = WebhookPayload::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "not a Zoho notification\n");
    };
    let known = s.tokens.read().ok().and_then(|t| t.get(&payload.channel_id).map(|token| payload.token_matches(token)));
    match known {
        Some(false) => FORBIDDEN,
        Some(true) => match s.queue.send(Incoming { payload, verdict: None }) {
            Ok(()) => (StatusCode::OK, "ok\n"),
            Err(_) => STOPPING,
        },
        None => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if s.queue.send(Incoming { payload, verdict: Some(tx) }).is_err() {
                return STOPPING;
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
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<std::net::SocketAddr, String>>(1);
    let shared = Shared { tokens: tokens.clone(), queue: tx };
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
                let app = axum::Router::new().fallback(axum::routing::post(receive)).with_state(shared);
                let _ = axum::serve(listener, app).await;
            });
        })
        .map_err(|e| e.to_string())?;
    let addr = ready_rx.recv().map_err(|_| "the listener thread ended before binding".to_string())??;
    Ok(Listener { tokens, queue: rx, addr })
}
