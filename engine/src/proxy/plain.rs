//! The backend thread's client for `http://` endpoints: hyper's HTTP/1.1
//! client connections, kept alive and pooled here. Measured against
//! reqwest on the same thread (docs/why-backend-client.md), it spends a
//! fraction of the CPU per request; `https://` endpoints still go through
//! reqwest (TLS).
//!
//! The pool holds idle connections only; the caller's slot (one of
//! `max_in_flight`) is what bounds how many exist. The most recently
//! returned connection is taken first, so under steady load only as many
//! stay warm as are in use at once; the rest age, and `reap` closes those
//! idle for longer than `IDLE_TIMEOUT`. Each pooled connection holds ~27 KB
//! of hyper's buffers: after a burst of connects through ws2api the 256 a
//! full pool held came to ~460 B per idle client connection at 15,000
//! (docs/benchmarks.md, "Session 9").

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use tokio::net::TcpStream;

use super::outcome::{error_chain, Method, Outcome};

/// The largest answer read from a backend.
const MAX_ANSWER: usize = 16 << 20;

/// A pooled connection unused for this long is closed. Below the 5 s
/// keep-alive timeout of Node's HTTP server (and most others), so the pool
/// closes an idle connection before the backend does and a request never
/// races the backend's close.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct PlainPool {
    /// `host:port`, to connect to and for the Host header.
    authority: String,
    /// The endpoint URL's path and query (origin form), `/` at least.
    path: String,
    connect_timeout: Duration,
    /// Idle connections and when each was returned, oldest first: taken
    /// from the end, closed from the front.
    idle: RefCell<Vec<(SendRequest<Full<Bytes>>, Instant)>>,
}

impl PlainPool {
    /// For an `http://` URL; `None` for anything else.
    pub fn new(url: &reqwest::Url, connect_timeout: Duration) -> Option<Self> {
        if url.scheme() != "http" {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        // (An IPv6 host comes bracketed.)
        let authority = format!("{host}:{port}");
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        Some(PlainPool {
            authority,
            path,
            connect_timeout,
            idle: RefCell::new(Vec::new()),
        })
    }

    pub async fn request(
        &self,
        method: Method,
        suffix: Option<&str>,
        headers: &[(String, String)],
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Outcome {
        let target = match suffix {
            Some(s) => format!("{}{s}", self.path),
            None => self.path.clone(),
        };
        let method = match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Delete => http::Method::DELETE,
        };
        let mut b = http::Request::builder()
            .method(method)
            .uri(target)
            .header(http::header::HOST, &self.authority);
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(ct) = content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        let req = match b.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return Outcome::Unreachable(format!("bad request: {e}")),
        };
        let mut sender = match self.checkout().await {
            Ok(s) => s,
            Err(e) => return Outcome::Unreachable(e),
        };
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return Outcome::Unreachable(error_chain(&e)),
        };
        let status = resp.status().as_u16();
        let keep = !resp
            .headers()
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        match Limited::new(resp.into_body(), MAX_ANSWER).collect().await {
            Ok(body) => {
                if keep && !sender.is_closed() {
                    self.idle.borrow_mut().push((sender, Instant::now()));
                }
                Outcome::Response {
                    status,
                    body: body.to_bytes(),
                }
            }
            Err(e) => Outcome::Unreachable(format!("reading the answer: {e}")),
        }
    }

    /// Closes the connections idle since before `now - IDLE_TIMEOUT`;
    /// returns how many.
    pub fn reap(&self, now: Instant) -> usize {
        let mut idle = self.idle.borrow_mut();
        let stale = idle.partition_point(|(_, at)| now.duration_since(*at) >= IDLE_TIMEOUT);
        // Dropping the sender ends its connection task, which closes the socket.
        idle.drain(..stale);
        if idle.is_empty() && idle.capacity() > 0 {
            *idle = Vec::new();
        }
        stale
    }

    /// An idle connection that is still open, or a new one.
    async fn checkout(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        loop {
            let Some((mut s, _)) = self.idle.borrow_mut().pop() else {
                break;
            };
            // A keep-alive connection the backend has closed meanwhile.
            if s.is_closed() || s.ready().await.is_err() {
                continue;
            }
            return Ok(s);
        }
        let connect =
            tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.authority));
        let stream = match connect.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("connect {}: {e}", self.authority)),
            Err(_) => return Err(format!("connect {}: timed out", self.authority)),
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| error_chain(&e))?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}
