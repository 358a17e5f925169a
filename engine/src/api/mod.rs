//! The internal port (`--api-port`, 9000): Centrifugo v5 server API
//! (`POST /api/<method>`), `/metrics` and `/health`, HTTP/1.1 with keep-alive
//! and pipelining, served by every shard on the shared port.

pub mod methods;
pub mod metrics;
pub mod publisher;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use monoio::net::TcpStream;

use crate::http::{self, Request};
use crate::hub::Hub;
use crate::protocol::codes::{self, ClientError};
use crate::protocol::json::{put_str, put_u64};
use crate::shard::ceiling::Ceiling;

/// API settings shared by every shard.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Required in `X-API-Key` or `Authorization: apikey <key>`.
    pub key: Option<String>,
    /// Serve the API without a key (for trusted networks only).
    pub insecure: bool,
    /// Also serve the API on the client port (with the key only).
    pub on_client_port: bool,
    pub max_body: usize,
    pub idle_timeout: Duration,
    /// Largest TCP publisher frame.
    pub publisher_max_frame: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            key: None,
            insecure: false,
            on_client_port: false,
            max_body: 1 << 20,
            idle_timeout: Duration::from_secs(60),
            publisher_max_frame: 1 << 20,
        }
    }
}

/// What API handlers on one shard need.
pub struct ApiCtx {
    pub hub: Rc<Hub>,
    pub opts: Arc<ApiOptions>,
    pub max_channel_len: usize,
    pub node_uid: Arc<str>,
    pub node_name: Arc<str>,
    pub started: Instant,
    pub ceiling: Arc<Ceiling>,
    pub fd_limit: u64,
    /// Applies a control action to one shard's client sessions (the node
    /// wires in the client layer's).
    pub control: crate::broker::ControlHandler,
    /// The application backends, for /metrics.
    pub proxies: Option<Arc<crate::proxy::Proxies>>,
}

/// Which port an HTTP connection came in on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The internal port: the API, /metrics, /health.
    Internal,
    /// The client port (`api.on_client_port`): only the API, always with
    /// the key.
    Client,
}

/// Serves one HTTP connection on the internal port.
pub async fn serve_http(ctx: Rc<ApiCtx>, stream: TcpStream) {
    serve_http_from(ctx, stream, BytesMut::with_capacity(4096), Port::Internal).await
}

/// Serves one HTTP connection whose first bytes are already in `buf`: every
/// complete request in the buffer is answered in order and the answers
/// written together.
pub async fn serve_http_from(ctx: Rc<ApiCtx>, stream: TcpStream, buf: BytesMut, port: Port) {
    let (max_body, idle) = (ctx.opts.max_body, ctx.opts.idle_timeout);
    let ctx = &ctx;
    crate::shard::plain::serve_requests(&stream, buf, max_body, idle, |req| handle(ctx, req, port))
        .await;
}

async fn handle(ctx: &ApiCtx, req: Request, port: Port) -> Bytes {
    let keep = req.keep_alive;
    let api = req.path == "/api" || req.path.starts_with("/api/");
    if port == Port::Client && !api {
        return http::response(404, "text/plain", b"not found", keep);
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/health") => health(ctx, keep).await,
        ("GET", "/metrics") => {
            let shards = ctx.hub.call_all(metrics::snapshot).await;
            let p = metrics::Process {
                fd_limit: ctx.fd_limit,
                max_connections: ctx.ceiling.max() as u64,
                uptime_secs: ctx.started.elapsed().as_secs(),
            };
            let mut text = metrics::render(&shards, &p);
            ctx.hub.broker().render_metrics(&mut text);
            if let Some(p) = &ctx.proxies {
                p.backends.render_metrics("ringcast_proxy", &mut text);
            }
            http::response(200, "text/plain; version=0.0.4", text.as_bytes(), keep)
        }
        ("POST", path) if path == "/api" || path.starts_with("/api/") => {
            if let Err(resp) = authorize(ctx, &req, port) {
                return resp;
            }
            let (method, result) = match path.strip_prefix("/api/") {
                Some(method) => (method, methods::dispatch(ctx, method, &req.body).await),
                None => ("", legacy(ctx, &req.body).await),
            };
            match result {
                // Centrifugo answers batch with `replies` at the top level.
                Ok(r) if method == "batch" => http::response(200, "application/json", &r, keep),
                other => api_response(other, req.transport_errors, keep),
            }
        }
        (_, path) if path == "/api" || path.starts_with("/api/") => {
            http::response(405, "text/plain", b"use POST", keep)
        }
        _ => http::response(404, "text/plain", b"not found", keep),
    }
}

/// The key, where one is set; without one, only `api.insecure` lets a
/// request through, and never on the client port.
fn authorize(ctx: &ApiCtx, req: &Request, port: Port) -> Result<(), Bytes> {
    let ok = match &ctx.opts.key {
        Some(key) => req
            .api_key
            .as_deref()
            .is_some_and(|k| same_key(k.as_bytes(), key.as_bytes())),
        None => ctx.opts.insecure && port == Port::Internal,
    };
    if ok {
        Ok(())
    } else {
        Err(http::response(
            401,
            "text/plain",
            b"unauthorized",
            req.keep_alive,
        ))
    }
}

/// Compares a presented key with the configured one in time that depends
/// only on their lengths, not on where they first differ (the API may face
/// the internet on the client port).
pub(crate) fn same_key(given: &[u8], key: &[u8]) -> bool {
    if given.len() != key.len() {
        return false;
    }
    let diff = given.iter().zip(key).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// The pre-v5 single endpoint: `POST /api` with `{"method":..,"params":..}`.
async fn legacy(ctx: &ApiCtx, body: &Bytes) -> methods::ApiResult {
    #[derive(serde::Deserialize)]
    struct Legacy<'a> {
        method: String,
        #[serde(borrow, default)]
        params: Option<&'a serde_json::value::RawValue>,
    }
    let l: Legacy<'_> = serde_json::from_slice(body).map_err(|_| codes::BAD_REQUEST)?;
    let params = Bytes::copy_from_slice(l.params.map_or("{}", |p| p.get()).as_bytes());
    methods::dispatch(ctx, &l.method, &params).await
}

/// `{"result":..}` / `{"error":..}` with 200, or in transport error mode an
/// HTTP status and `{"code":..,"message":..}`.
fn api_response(result: methods::ApiResult, transport: bool, keep: bool) -> Bytes {
    match result {
        Ok(r) => {
            let mut body = BytesMut::with_capacity(r.len() + 12);
            body.put_slice(b"{\"result\":");
            body.put_slice(&r);
            body.put_u8(b'}');
            http::response(200, "application/json", &body, keep)
        }
        Err(e) if transport => {
            let mut body = BytesMut::new();
            body.put_slice(b"{\"code\":");
            put_u64(&mut body, e.code as u64);
            body.put_slice(b",\"message\":");
            put_str(&mut body, e.message);
            body.put_u8(b'}');
            http::response(transport_status(e), "application/json", &body, keep)
        }
        Err(e) => {
            let mut body = BytesMut::new();
            methods::error_object(&mut body, e);
            http::response(200, "application/json", &body, keep)
        }
    }
}

/// HTTP status for an API error in transport error mode.
pub fn transport_status(e: ClientError) -> u16 {
    match e.code {
        101 => 401,
        103 => 403,
        102 | 104 => 404,
        105 => 409,
        106 | 111 => 429,
        107 | 108 | 109 | 110 | 112 => 400,
        _ => 500,
    }
}

async fn health(ctx: &ApiCtx, keep: bool) -> Bytes {
    let shards = ctx.hub.shards();
    let broker = ctx.hub.broker_name();
    let all = ctx.hub.call_all(|h| h.shard);
    let reason = match monoio::time::timeout(Duration::from_secs(1), all).await {
        Ok(ids) if ids.len() == shards => ctx.hub.broker().health().err(),
        _ => Some("a shard did not answer within 1 s".to_string()),
    };
    let (status, body) = match reason {
        None => (200, serde_json::json!({ "status": "ok", "broker": broker })),
        Some(r) => (
            503,
            serde_json::json!({ "status": "unavailable", "broker": broker, "reason": r }),
        ),
    };
    let body = serde_json::to_vec(&body).expect("json");
    http::response(status, "application/json", &body, keep)
}

/// Announces this node to the others through the broker, every 2 s (the
/// other nodes list it in `info` while they hear it).
pub async fn heartbeat_loop(ctx: Rc<ApiCtx>) {
    loop {
        let info = methods::local_node_info(&ctx).await;
        ctx.hub.broker().heartbeat(info);
        monoio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod key_tests {
    use super::same_key;

    #[test]
    fn keys_match_only_when_equal() {
        assert!(same_key(b"secret-key", b"secret-key"));
        assert!(!same_key(b"secret-kez", b"secret-key"));
        assert!(!same_key(b"Secret-key", b"secret-key"));
        assert!(!same_key(b"secret", b"secret-key"));
        assert!(!same_key(b"", b"secret-key"));
    }
}
