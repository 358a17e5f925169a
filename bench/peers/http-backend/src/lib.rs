//! A fast application backend for ringcast's backend benchmarks (the
//! ws2api mode and the Centrifugo-style proxies): HTTP/1.1 with keep-alive
//! and pipelining, answers computed without I/O.
//!
//! - `GET` anything, `DELETE` anything → `200 ok` (ws2api: let the client
//!   in; take its close);
//! - `POST` a path ending in `/connect` → `200 {"result":{"user":"u<n>"}}`
//!   (a connect proxy's answer; `n` counts the calls);
//! - any other `POST` → `200` with the request body verbatim (ws2api: a
//!   message answered by itself, so `ringcast-bench echo` checks it);
//! - anything else → `405`; a request that does not parse → `400`, closed.
//!
//! Bodies come with `Content-Length` or chunked. Every request buffered is
//! answered before one write.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;
/// Headers a request may have.
const MAX_HEADERS: usize = 64;

/// Requests answered, by kind.
#[derive(Debug, Default)]
pub struct Stats {
    pub get: AtomicU64,
    pub delete: AtomicU64,
    pub connect: AtomicU64,
    pub post: AtomicU64,
    pub other: AtomicU64,
    pub connections: AtomicU64,
}

impl Stats {
    /// One line: `connections N get N delete N connect N post N other N`.
    pub fn line(&self) -> String {
        format!(
            "connections {} get {} delete {} connect {} post {} other {}",
            self.connections.load(Relaxed),
            self.get.load(Relaxed),
            self.delete.load(Relaxed),
            self.connect.load(Relaxed),
            self.post.load(Relaxed),
            self.other.load(Relaxed),
        )
    }
}

/// Accepts connections until the listener fails; one task each.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) -> io::Result<()> {
    loop {
        let (s, _) = listener.accept().await?;
        stats.connections.fetch_add(1, Relaxed);
        let stats = stats.clone();
        tokio::spawn(async move {
            let _ = connection(s, &stats).await;
        });
    }
}

/// Serves one keep-alive connection.
pub async fn connection(mut s: TcpStream, stats: &Stats) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut rbuf = BytesMut::with_capacity(8 << 10);
    let mut out = Vec::with_capacity(8 << 10);
    loop {
        let mut close = false;
        loop {
            match next_request(&mut rbuf) {
                Ok(Some(req)) => {
                    answer(&req, stats, &mut out);
                    if req.close {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(why) => {
                    respond(&mut out, 400, "text/plain", why.as_bytes(), true);
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        if close {
            let _ = s.shutdown().await;
            return Ok(());
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(8 << 10);
        }
        if s.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Delete,
    Post,
    Other,
}

/// One request, taken off the buffer.
#[derive(Debug)]
struct Request {
    method: Method,
    /// The path (before any `?`) ends in `/connect`.
    connect: bool,
    body: BytesMut,
    /// Close after the answer (HTTP/1.0 without keep-alive, `Connection: close`).
    close: bool,
}

/// The next complete request in `buf` (`Ok(None)`: read more).
fn next_request(buf: &mut BytesMut) -> Result<Option<Request>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err("head too long"),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("bad request"),
    };
    let method = match r.method {
        Some("GET") => Method::Get,
        Some("DELETE") => Method::Delete,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let path = r.path.unwrap_or("/");
    let connect = path.split('?').next().unwrap_or("").ends_with("/connect");
    let mut close = r.version == Some(0);
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for h in r.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| "bad header")?
            .trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| "bad content-length")?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    let body = if chunked {
        let Some((body, used)) = dechunk(&buf[head..])? else {
            return Ok(None);
        };
        buf.advance(head + used);
        BytesMut::from(&body[..])
    } else {
        let n = length.unwrap_or(0);
        if n > MAX_BODY {
            return Err("body too large");
        }
        if buf.len() < head + n {
            buf.reserve(head + n - buf.len());
            return Ok(None);
        }
        buf.advance(head);
        buf.split_to(n)
    };
    Ok(Some(Request {
        method,
        connect,
        body,
        close,
    }))
}

/// A chunked body at the start of `data`: the body and the bytes it took
/// (trailers included), or `None` when it is not all there yet.
fn dechunk(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (start, size) = match httparse::parse_chunk_size(&data[at..]) {
            Ok(httparse::Status::Complete(x)) => x,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad chunk size"),
        };
        let size = usize::try_from(size).map_err(|_| "chunk too large")?;
        if body.len() + size > MAX_BODY {
            return Err("body too large");
        }
        at += start;
        if size == 0 {
            // Trailers, if any, up to the empty line.
            let rest = &data[at..];
            if rest.len() < 2 {
                return Ok(None);
            }
            if rest.starts_with(b"\r\n") {
                return Ok(Some((body, at + 2)));
            }
            return Ok(rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (body, at + i + 4)));
        }
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[at..at + size]);
        if &data[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        at += size + 2;
    }
}

/// Appends the answer to `req`.
fn answer(req: &Request, stats: &Stats, out: &mut Vec<u8>) {
    match (req.method, req.connect) {
        (Method::Get, _) => {
            stats.get.fetch_add(1, Relaxed);
            respond(out, 200, "text/plain", b"ok", req.close);
        }
        (Method::Delete, _) => {
            stats.delete.fetch_add(1, Relaxed);
            respond(out, 200, "text/plain", b"ok", req.close);
        }
        (Method::Post, true) => {
            let n = stats.connect.fetch_add(1, Relaxed);
            let body = format!("{{\"result\":{{\"user\":\"u{n}\"}}}}");
            respond(out, 200, "application/json", body.as_bytes(), req.close);
        }
        (Method::Post, false) => {
            stats.post.fetch_add(1, Relaxed);
            respond(out, 200, "application/octet-stream", &req.body, req.close);
        }
        (Method::Other, _) => {
            stats.other.fetch_add(1, Relaxed);
            respond(out, 405, "text/plain", b"method not allowed", req.close);
        }
    }
}

fn respond(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8], close: bool) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Method Not Allowed",
    };
    let connection = if close { "Connection: close\r\n" } else { "" };
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{connection}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<Request>, &'static str> {
        next_request(&mut BytesMut::from(raw))
    }

    #[test]
    fn requests_and_bodies() {
        let r = parse(b"GET /ws/c1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.method, r.connect, r.close), (Method::Get, false, false));
        let r = parse(b"POST /connect?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.method, r.connect, &r.body[..]),
            (Method::Post, true, &b"{}"[..])
        );
        let r = parse(b"POST /a HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert!(r.close);
        assert!(parse(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nab")
            .unwrap()
            .is_none());
        assert!(parse(b"POST /a HTTP/1.1\r\nContent-Len").unwrap().is_none());
        assert!(parse(b"\x01\x02 nonsense\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies() {
        let raw = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\nGET";
        let mut buf = BytesMut::from(&raw[..]);
        let r = next_request(&mut buf).unwrap().unwrap();
        assert_eq!(&r.body[..], b"abcde");
        assert_eq!(&buf[..], b"GET");
        let trailer =
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(&parse(trailer).unwrap().unwrap().body[..], b"z");
        let partial = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab";
        assert!(parse(partial).unwrap().is_none());
    }

    #[test]
    fn answers() {
        let stats = Stats::default();
        let mut out = Vec::new();
        let r = parse(b"POST /x/connect HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        answer(&r, &stats, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n{\"result\":{\"user\":\"u0\"}}"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 24\r\n"), "{text}");
        assert_eq!(stats.connect.load(Relaxed), 1);
    }
}
