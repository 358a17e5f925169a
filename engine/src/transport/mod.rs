//! The client protocol over plain HTTP on the client port, for clients that
//! cannot use WebSocket (Centrifugo's transports, as centrifuge-js 5.x and
//! any HTTP stack speak them; docs/transports.md):
//!
//! - `POST /connection/http_stream`: bidirectional; the body holds the first
//!   commands, replies and pushes stream back newline-delimited;
//! - `GET /connection/sse?cf_connect=…` (or `POST`): bidirectional over
//!   server-sent events;
//! - `POST /emulation`: a later command batch for one of those sessions;
//! - `/connection/uni_sse`, `POST /connection/uni_http_stream`: pushes only,
//!   after the connect request in the query or body.
//!
//! A request is read whole (bounded in size and time), answered with the
//! head of a chunked response, and the socket is handed to the shard's
//! reactor like an upgraded WebSocket: from then on the connection differs
//! only in its framing (`shard::framing`), and the session on it does not
//! know which transport carries it.

mod emulation;

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use monoio::time::timeout;

use crate::client::session::Session;
use crate::client::{origin_allowed, ClientService};
use crate::config::TransportsSection;
use crate::http::{self, HttpError, Request};
use crate::shard::ceiling::Slot;
use crate::shard::framing::Framing;
use crate::shard::service::Service;
use crate::shard::task::{adopt_stream, new_conn, write_all};
use crate::shard::ShardCtx;
use crate::sys;

pub use emulation::{parse as parse_emulation, EmulationRequest, ProtoEmulationRequest};

pub const HTTP_STREAM_PATH: &str = "/connection/http_stream";
pub const SSE_PATH: &str = "/connection/sse";
pub const UNI_SSE_PATH: &str = "/connection/uni_sse";
pub const UNI_HTTP_STREAM_PATH: &str = "/connection/uni_http_stream";
pub const EMULATION_PATH: &str = "/emulation";

/// A service whose connections are client sessions: what the HTTP
/// transports open their sessions with.
pub trait Edge: Service<State = Rc<Session>> {
    fn client(&self) -> &ClientService;
}

/// Which transport (if any) serves `path` under `t`: its framing, or
/// `None` for `/emulation`.
fn route(t: &TransportsSection, path: &str) -> Option<Option<Framing>> {
    let (on, framing) = match path {
        HTTP_STREAM_PATH => (t.http_stream, Some(Framing::HttpStream)),
        SSE_PATH => (t.sse, Some(Framing::Sse)),
        UNI_SSE_PATH => (t.uni_sse, Some(Framing::UniSse)),
        UNI_HTTP_STREAM_PATH => (t.uni_http_stream, Some(Framing::UniHttpStream)),
        EMULATION_PATH => (t.http_stream || t.sse, None),
        _ => return None,
    };
    on.then_some(framing)
}

/// Whether a plain request for `path` is for an HTTP transport (served by
/// [`serve`]; one that is off answers 404, not the upgrade port's 405/426).
pub fn takes(path: &str) -> bool {
    matches!(
        path,
        HTTP_STREAM_PATH | SSE_PATH | UNI_SSE_PATH | UNI_HTTP_STREAM_PATH | EMULATION_PATH
    )
}

/// Serves one plain HTTP connection on a transport path: reads the request,
/// then answers it or turns it into a stream the reactor serves.
pub async fn serve<S: Edge>(shard: Rc<ShardCtx<S>>, stream: TcpStream, buf: BytesMut, slot: Slot) {
    let client = shard.service.client().clone();
    let opts = client.options().clone();
    let t = &opts.config.transports;
    let read = timeout(
        shard.cfg.handshake_timeout,
        read_request(&stream, buf, t.max_request_body, client.kept_headers()),
    );
    let req = match read.await {
        Err(_) => return answer(&shard, &stream, plain(408, "request timeout", "")).await,
        Ok(Err(None)) => return,
        Ok(Err(Some(e))) => return answer(&shard, &stream, e.response()).await,
        Ok(Ok(r)) => r,
    };
    let mut req = req;
    let Some(cors) = cors(t, req.origin.as_deref()) else {
        return answer(&shard, &stream, plain(403, "origin not allowed", "")).await;
    };
    let Some(framing) = route(t, &req.path) else {
        return answer(&shard, &stream, plain(404, "transport not enabled", &cors)).await;
    };
    if req.method == "OPTIONS" {
        // A browser's CORS preflight for the POST that follows.
        let headers = format!(
            "{cors}Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n\
             Access-Control-Allow-Headers: {}\r\nAccess-Control-Max-Age: 300\r\n",
            req.cors_headers.as_deref().unwrap_or("content-type")
        );
        return answer(
            &shard,
            &stream,
            http::response_with(204, "", &headers, b"", false),
        )
        .await;
    }
    let Some(framing) = framing else {
        let status = if req.method == "POST" {
            emulation::handle(&client, &req)
        } else {
            405
        };
        return answer(&shard, &stream, plain(status, "", &cors)).await;
    };
    let body = match first_payload(framing, &req) {
        Ok(b) => b,
        Err(status) => return answer(&shard, &stream, plain(status, "", &cors)).await,
    };
    let framing = match (framing, is_protobuf(&req)) {
        (f, false) => f,
        // The protobuf protocol: length-delimited replies in the chunks.
        (Framing::HttpStream, true) => Framing::HttpStreamProtobuf,
        // SSE and the unidirectional streams carry JSON only.
        (_, true) => {
            return answer(
                &shard,
                &stream,
                plain(415, "JSON only on this transport", &cors),
            )
            .await
        }
    };
    // What outlives the request is copied out and the request (its read
    // buffer) freed before the connection's long-lived state is allocated,
    // so the buffer's memory can be reused for that state rather than left
    // as a hole among live allocations. Measured with 4,000 idle SSE streams
    // (debug build, one shard, RSS per stream): 3,182 B before, 3,064 B
    // after; the rest of the gap to WebSocket is other transient allocations
    // of the request (issue 15's note).
    let body = Bytes::copy_from_slice(&body);
    let kept = std::mem::take(&mut req.kept);
    drop(req);
    let head = stream_head(framing, &cors);
    drop(cors);
    let write = timeout(shard.cfg.handshake_timeout, write_all(&stream, &head));
    if !matches!(write.await, Ok(Ok(()))) {
        return;
    }
    drop(head);
    let conn = new_conn(&shard, framing);
    let session = client.open_transport(&conn, &kept);
    drop(kept);
    if let Err(e) = adopt_stream(&shard, stream, conn.clone(), session.clone(), slot) {
        tracing::warn!(shard = shard.id, error = %e, "could not register a stream");
        return;
    }
    if framing.is_unidirectional() {
        client.uni_connect(&session, &body);
    } else {
        let mut s = session;
        let text = !framing.is_protobuf();
        shard.service.on_message(&conn, &mut s, text, body);
    }
}

/// The protobuf protocol (centrifuge-js's protobuf build sends this type).
fn is_protobuf(req: &Request) -> bool {
    req.content_type.as_deref() == Some("application/octet-stream")
}

/// The first client-protocol payload: the body, or for a `GET` of the SSE
/// transports the `cf_connect` query parameter. `Err(status)` otherwise.
fn first_payload(framing: Framing, req: &Request) -> Result<Bytes, u16> {
    match (req.method.as_str(), framing) {
        ("POST", _) => Ok(req.body.clone()),
        ("GET", Framing::Sse | Framing::UniSse) => {
            let query = req.query.as_deref().unwrap_or("");
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "cf_connect")
                .map(|(_, v)| Bytes::from(v.into_owned()))
                .ok_or(400)
        }
        _ => Err(405),
    }
}

/// The head of a streamed (chunked) response. The connection ends with the
/// stream (`Connection: close`: a client must not send its next request on
/// it).
fn stream_head(framing: Framing, cors: &str) -> Vec<u8> {
    let content_type = match framing {
        Framing::Sse | Framing::UniSse => "text/event-stream; charset=utf-8",
        _ => "application/x-ndjson",
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
         Cache-Control: private, no-cache, no-store, must-revalidate, max-age=0\r\n\
         Pragma: no-cache\r\nExpires: 0\r\nX-Accel-Buffering: no\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n{cors}\r\n"
    )
    .into_bytes()
}

/// The CORS headers for a request from `origin`; `None` when that origin is
/// not allowed.
fn cors(t: &TransportsSection, origin: Option<&str>) -> Option<String> {
    if !origin_allowed(&t.allowed_origins, origin) {
        return None;
    }
    Some(match origin {
        Some(o) => format!(
            "Access-Control-Allow-Origin: {o}\r\nAccess-Control-Allow-Credentials: true\r\n\
             Vary: Origin\r\n"
        ),
        None => String::new(),
    })
}

fn plain(status: u16, body: &str, headers: &str) -> Bytes {
    http::response_with(status, "text/plain", headers, body.as_bytes(), false)
}

/// Sends a whole response and closes the write side, then reads what the
/// peer still sends until it closes too (bounded in time and bytes): closing
/// with unread input would reset the connection and could lose the
/// response (a 413 while the body is still coming).
async fn answer<S: Service>(shard: &ShardCtx<S>, stream: &TcpStream, resp: Bytes) {
    let _ = timeout(shard.cfg.handshake_timeout, write_all(stream, &resp)).await;
    let fd = stream.as_raw_fd();
    if sys::shutdown_write(fd).is_err() {
        return;
    }
    let drain = async {
        let mut buf = BytesMut::new();
        let mut left = LINGER_BYTES;
        while left > 0 {
            if stream.readable(false).await.is_err() {
                return;
            }
            buf.clear();
            // Small reads: most requests are under a kilobyte, and a big
            // buffer per request in flight outlives its request in the
            // allocator (the held connections' RSS).
            match sys::recv_into(fd, &mut buf, READ_STEP) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    };
    let _ = timeout(shard.cfg.close_timeout, drain).await;
}

/// Bytes read per recv(2) of a request.
const READ_STEP: usize = 2048;

/// Bytes read and dropped after an early answer before the socket closes.
const LINGER_BYTES: usize = 1 << 20;

/// Reads until one complete request (head and body). `Err(None)`: the peer
/// went away; `Err(Some(e))`: refused.
async fn read_request(
    stream: &TcpStream,
    mut buf: BytesMut,
    max_body: usize,
    keep: &[String],
) -> Result<Request, Option<HttpError>> {
    let fd = stream.as_raw_fd();
    loop {
        match http::parse_keeping(&mut buf, max_body, keep) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(e) => return Err(Some(e)),
        }
        stream.readable(false).await.map_err(|_| None)?;
        loop {
            // Small reads: most requests are under a kilobyte, and a big
            // buffer per request in flight outlives its request in the
            // allocator (the held connections' RSS).
            match sys::recv_into(fd, &mut buf, READ_STEP) {
                Ok(0) => return Err(None),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_config() {
        let mut t = TransportsSection::default();
        assert_eq!(route(&t, SSE_PATH), None);
        assert_eq!(route(&t, EMULATION_PATH), None);
        assert!(takes(SSE_PATH) && !takes("/connection/websocket"));
        t.sse = true;
        assert_eq!(route(&t, SSE_PATH), Some(Some(Framing::Sse)));
        assert_eq!(route(&t, EMULATION_PATH), Some(None));
        assert_eq!(route(&t, HTTP_STREAM_PATH), None);
        t.uni_http_stream = true;
        assert_eq!(
            route(&t, UNI_HTTP_STREAM_PATH),
            Some(Some(Framing::UniHttpStream))
        );
        assert_eq!(route(&t, "/connection/websocket"), None);
    }

    #[test]
    fn cors_echoes_an_allowed_origin_only() {
        let mut t = TransportsSection::default();
        assert_eq!(cors(&t, None).as_deref(), Some(""));
        assert!(cors(&t, Some("http://a.test"))
            .unwrap()
            .contains("http://a.test"));
        t.allowed_origins = vec!["http://a.test".into()];
        assert!(cors(&t, Some("http://b.test")).is_none());
        assert!(cors(&t, Some("http://a.test")).is_some());
    }

    #[test]
    fn the_sse_connect_comes_from_the_query() {
        let mut buf = BytesMut::from(
            &b"GET /connection/sse?x=1&cf_connect=%7B%22id%22%3A1%2C%22connect%22%3A%7B%7D%7D HTTP/1.1\r\n\r\n"[..],
        );
        let req = http::parse(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(
            first_payload(Framing::Sse, &req).unwrap(),
            Bytes::from_static(br#"{"id":1,"connect":{}}"#)
        );
        assert_eq!(first_payload(Framing::HttpStream, &req), Err(405));
        let mut buf = BytesMut::from(&b"GET /connection/uni_sse HTTP/1.1\r\n\r\n"[..]);
        let req = http::parse(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(first_payload(Framing::UniSse, &req), Err(400));
    }
}
