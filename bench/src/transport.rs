//! The client transports a Centrifugo connection can take (`--transport`):
//! WebSocket (`client.rs`), or the HTTP fallbacks Centrifugo and
//! centrifuge-js speak, as ringcast serves them (`serve --http-stream`,
//! `--sse`):
//!
//! - `http_stream`: `POST <prefix>/connection/http_stream` whose body is
//!   the first commands (one JSON object a line); the chunked response
//!   streams replies and pushes, one JSON object a line;
//! - `sse`: `GET <prefix>/connection/sse?cf_connect=<the same, URL-encoded>`
//!   (what a browser's `EventSource` sends); the chunked response streams
//!   server-sent events, one `data: <json>` line per object.
//!
//! On both, later commands (here: pongs, `{}`) go as `POST
//! <prefix>/emulation` with `{"session":…,"node":…,"data":"<commands>"}`,
//! session and node from the connect reply, each on a connection of its
//! own (the server closes it after the answer). The server ends a stream
//! with a disconnect push and the last chunk.
//!
//! [`Conn`] hides the difference from the scenarios: commands are queued
//! and flushed, what arrives comes out as payloads of JSON lines. On HTTP
//! the first flush sends the request, so the login (connect, subscribes,
//! one flush) is the same code for every transport.

use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use ringcast::ws::{Message, OpCode};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::centrifuge::{find, find_byte, lines};
use crate::client::{header, split_head, Rng, Sock, WsClient};
use crate::net::Target;
use crate::publish::http::{exchange, put_request};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// WebSocket at `--url`.
    #[default]
    #[value(name = "websocket")]
    WebSocket,
    /// HTTP streaming (newline-delimited JSON in a chunked response) at
    /// `/connection/http_stream`.
    #[value(name = "http_stream", alias = "http-stream")]
    HttpStream,
    /// Server-sent events at `/connection/sse`.
    #[value(name = "sse")]
    Sse,
    /// WebSocket at `--url` with `?format=protobuf`: the protobuf client
    /// protocol (binary frames).
    #[value(name = "protobuf")]
    Protobuf,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::HttpStream => "http_stream",
            Transport::Sse => "sse",
            Transport::Protobuf => "protobuf",
        }
    }
}

/// The WebSocket path the HTTP transports' paths are derived from.
const WS_PATH: &str = "/connection/websocket";
/// The longest chunk-size line accepted (hex digits and extensions).
const MAX_CHUNK_LINE: usize = 64;
/// Longest wait for an `/emulation` answer.
const EMULATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a run's Centrifugo connections go: `--url` itself for WebSocket;
/// for the HTTP transports the same host and port, the transport's path
/// after the prefix `--url` has before `/connection/websocket` (none for
/// any other path).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub transport: Transport,
    pub target: Target,
    /// `<prefix>/emulation`.
    emulation: Target,
}

impl Endpoint {
    pub fn new(transport: Transport, ws: &Target) -> Endpoint {
        let prefix = ws.path.strip_suffix(WS_PATH).unwrap_or("");
        let at = |path: String| Target { path, ..ws.clone() };
        let target = match transport {
            Transport::WebSocket => ws.clone(),
            Transport::Protobuf => {
                let sep = if ws.path.contains('?') { '&' } else { '?' };
                at(format!("{}{sep}format=protobuf", ws.path))
            }
            Transport::HttpStream => at(format!("{prefix}/connection/http_stream")),
            Transport::Sse => at(format!("{prefix}/connection/sse")),
        };
        Endpoint {
            transport,
            target,
            emulation: at(format!("{prefix}/emulation")),
        }
    }

    /// The URL the connections open (for the report).
    pub fn url(&self) -> String {
        let scheme = match self.transport {
            Transport::WebSocket | Transport::Protobuf => "ws",
            _ => "http",
        };
        format!("{scheme}://{}{}", self.target.host, self.target.path)
    }
}

/// A Centrifugo client connection on any transport.
pub enum Conn {
    Ws(WsClient),
    Http(Box<HttpConn>),
}

/// What [`Conn::next`] took off the connection.
pub enum Incoming {
    /// Client-protocol JSON lines (replies, pushes, pings).
    Text(Payload),
    /// A binary WebSocket message (not the JSON protocol).
    Binary,
    /// The server ended the connection: a close frame, or on HTTP the
    /// stream's end (after a disconnect push, whose code this is).
    Closed { code: Option<u16>, why: String },
}

/// One batch of JSON lines as it arrived: a WebSocket text message, or
/// complete lines of an HTTP stream's body.
pub struct Payload {
    bytes: Bytes,
    /// Server-sent events: the JSON is in the `data:` lines.
    sse: bool,
}

impl Payload {
    /// The JSON objects, one per line.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let sse = self.sse;
        lines(&self.bytes).filter_map(move |l| if sse { sse_data(l) } else { Some(l) })
    }
}

/// A command the protobuf transport cannot carry: a bench bug, loud.
fn no_protobuf_form(cmd: &[u8]) {
    panic!(
        "no protobuf form for command {}",
        String::from_utf8_lossy(cmd)
    );
}

/// The value of an SSE `data:` line (`None` for other fields and comments).
fn sse_data(line: &[u8]) -> Option<&[u8]> {
    let v = line.strip_prefix(b"data:")?;
    Some(v.strip_prefix(b" ").unwrap_or(v))
}

impl Conn {
    /// Opens a connection on `ep`'s transport from `src`: the WebSocket
    /// upgrade, or only the TCP connection for HTTP (the request goes with
    /// the first flush, carrying the commands queued until then).
    pub async fn connect(
        ep: &Rc<Endpoint>,
        src: Option<IpAddr>,
        rng: &mut Rng,
    ) -> anyhow::Result<Conn> {
        match ep.transport {
            Transport::WebSocket | Transport::Protobuf => WsClient::connect(&ep.target, src, rng)
                .await
                .map(|mut c| {
                    c.protobuf = ep.transport == Transport::Protobuf;
                    Conn::Ws(c)
                })
                .map_err(|e| anyhow::anyhow!("{e}")),
            Transport::HttpStream | Transport::Sse => {
                let sock = Sock::connect(&ep.target, src)
                    .await
                    .map_err(|e| anyhow::anyhow!("tcp connect: {e}"))?;
                Ok(Conn::Http(Box::new(HttpConn {
                    sock,
                    sse: ep.transport == Transport::Sse,
                    ep: ep.clone(),
                    src,
                    out: Vec::new(),
                    opened: false,
                    session: None,
                    partial: BytesMut::new(),
                    last: Bytes::new(),
                    ended: false,
                })))
            }
        }
    }

    /// Queues one command (a JSON object) for the next flush.
    pub fn queue(&mut self, cmd: &[u8]) {
        match self {
            Conn::Ws(c) if c.protobuf => match crate::protobuf::command(cmd) {
                Some(bin) => c.queue(OpCode::Binary, &bin),
                None => no_protobuf_form(cmd),
            },
            Conn::Ws(c) => c.queue(OpCode::Text, cmd),
            Conn::Http(c) => {
                if !c.out.is_empty() {
                    c.out.push(b'\n');
                }
                c.out.extend_from_slice(cmd);
            }
        }
    }

    /// Answers a server ping (`{}`), at the next flush.
    pub fn pong(&mut self) {
        self.queue(b"{}");
    }

    /// Sends what is queued: WebSocket frames; on HTTP the request that
    /// opens the stream (the first time), later an `/emulation` POST.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Conn::Ws(c) => Ok(c.flush().await?),
            Conn::Http(c) => c.flush().await,
        }
    }

    /// Waits until the socket is readable and reads what is there; 0: EOF.
    pub async fn read_some(&mut self, chunk: usize) -> io::Result<usize> {
        match self {
            Conn::Ws(c) => c.read_some(chunk).await,
            Conn::Http(c) => c.sock.read_some(chunk).await,
        }
    }

    /// The next complete message already buffered (`Ok(None)`: read more).
    /// WebSocket pings are answered (queued), and pongs skipped.
    pub fn next(&mut self) -> anyhow::Result<Option<Incoming>> {
        match self {
            Conn::Ws(c) => loop {
                return Ok(Some(match c.next_message()? {
                    None => return Ok(None),
                    Some(Message::Text(t)) => Incoming::Text(Payload {
                        bytes: t,
                        sse: false,
                    }),
                    Some(Message::Binary(b)) if c.protobuf => Incoming::Text(Payload {
                        bytes: crate::protobuf::replies(&b),
                        sse: false,
                    }),
                    Some(Message::Binary(_)) => Incoming::Binary,
                    Some(Message::Ping(_) | Message::Pong(_)) => continue,
                    Some(Message::Close(f)) => Incoming::Closed {
                        why: match &f {
                            Some(f) => format!(
                                "server sent close {} {}",
                                f.code,
                                String::from_utf8_lossy(&f.reason)
                            ),
                            None => "server sent close".into(),
                        },
                        code: f.map(|f| f.code),
                    },
                }));
            },
            Conn::Http(c) => c.next(),
        }
    }

    /// The next payload, reading as needed (pings are the caller's); the
    /// connection's end or a binary message is an error.
    pub async fn recv(&mut self) -> anyhow::Result<Payload> {
        loop {
            if let Some(m) = self.next()? {
                return match m {
                    Incoming::Text(p) => Ok(p),
                    Incoming::Binary => bail!("binary frame (protobuf server?)"),
                    Incoming::Closed { why, .. } => bail!("{why}"),
                };
            }
            // WebSocket pongs queued by `next`.
            self.flush().await?;
            if self.read_some(16 << 10).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }

    /// Takes in the connect reply: on HTTP, the session and node that
    /// `/emulation` requests name.
    pub fn connected(&mut self, reply: &[u8]) -> anyhow::Result<()> {
        let Conn::Http(c) = self else { return Ok(()) };
        let v: Value = serde_json::from_slice(reply).context("connect reply")?;
        let r = &v["connect"];
        let (Some(session), node) = (r["session"].as_str(), r["node"].as_str()) else {
            bail!("no session in the connect reply (needed for /emulation)");
        };
        c.session = Some((session.into(), node.unwrap_or("").into()));
        Ok(())
    }

    /// Drops the read buffer's allocation when nothing is buffered.
    pub fn shrink_idle(&mut self) {
        match self {
            Conn::Ws(c) => c.shrink_idle(),
            Conn::Http(c) => c.sock.shrink_idle(),
        }
    }

    /// See [`Sock::rx_timestamps`].
    pub fn rx_timestamps(&mut self) -> io::Result<()> {
        match self {
            Conn::Ws(c) => c.rx_timestamps(),
            Conn::Http(c) => c.sock.rx_timestamps(),
        }
    }

    /// See [`Sock::rx_mono_ns`].
    pub fn rx_mono_ns(&self) -> Option<u64> {
        match self {
            Conn::Ws(c) => c.rx_mono_ns(),
            Conn::Http(c) => c.sock.rx_mono_ns(),
        }
    }

    /// Says goodbye (a close frame; on HTTP closing the socket is all a
    /// client can do) and drops the connection without waiting.
    pub async fn close(self) {
        match self {
            Conn::Ws(c) => c.close().await,
            Conn::Http(mut c) => {
                let _ = c.sock.stream.shutdown().await;
            }
        }
    }

    /// See [`Sock::abort`].
    pub fn abort(self) {
        match self {
            Conn::Ws(c) => c.abort(),
            Conn::Http(c) => c.sock.abort(),
        }
    }
}

/// A connection on one of the HTTP transports.
pub struct HttpConn {
    sock: Sock,
    sse: bool,
    ep: Rc<Endpoint>,
    src: Option<IpAddr>,
    /// Commands queued for the next flush, one a line.
    out: Vec<u8>,
    /// The stream's request has gone and its response head was read.
    opened: bool,
    /// (session, node) from the connect reply.
    session: Option<(Box<str>, Box<str>)>,
    /// Body bytes after the last complete line (a chunk that ended mid-line).
    partial: BytesMut,
    /// The last lines handed out: the disconnect push, when the stream ends.
    last: Bytes,
    /// The last chunk has been read.
    ended: bool,
}

impl HttpConn {
    async fn flush(&mut self) -> anyhow::Result<()> {
        if !self.opened {
            self.open().await?;
        } else if !self.out.is_empty() {
            self.emulate().await?;
        }
        self.out.clear();
        Ok(())
    }

    /// Sends the stream's request with the queued commands and reads the
    /// response head.
    async fn open(&mut self) -> anyhow::Result<()> {
        let (t, body) = (&self.ep.target, &self.out);
        let req = if self.sse {
            format!(
                "GET {}?cf_connect={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
                t.path,
                url_encode(body),
                t.host
            )
            .into_bytes()
        } else {
            let mut req = Vec::with_capacity(128 + body.len());
            put_request(&mut req, &post_head(t), body);
            req
        };
        self.sock.stream.write_all(&req).await?;
        let head = self.sock.read_head().await?;
        let (status, headers) = split_head(&head)?;
        if status.split_whitespace().nth(1) != Some("200") {
            bail!("{} answered {status:?}", t.path);
        }
        if !header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            bail!("{} did not answer with a chunked stream", t.path);
        }
        self.opened = true;
        self.sock.shrink_idle();
        Ok(())
    }

    /// `POST /emulation` with the queued commands, on a connection of its
    /// own; the server answers 204.
    async fn emulate(&mut self) -> anyhow::Result<()> {
        let Some((session, node)) = &self.session else {
            bail!("a command to send before the connect reply named the session");
        };
        let data = std::str::from_utf8(&self.out).context("commands are not UTF-8")?;
        let body = serde_json::to_vec(&serde_json::json!({
            "session": session, "node": node, "data": data,
        }))?;
        let mut req = Vec::with_capacity(128 + body.len());
        let emulation = &self.ep.emulation;
        put_request(&mut req, &post_head(emulation), &body);
        let answer = exchange(emulation, self.src, &req);
        let (status, _) = tokio::time::timeout(EMULATION_TIMEOUT, answer)
            .await
            .map_err(|_| anyhow::anyhow!("/emulation: no answer in {EMULATION_TIMEOUT:?}"))?
            .context("/emulation")?;
        if status != 204 && status != 200 {
            bail!("/emulation answered {status}");
        }
        Ok(())
    }

    /// De-chunks what is buffered up to the next complete lines.
    fn next(&mut self) -> anyhow::Result<Option<Incoming>> {
        while !self.ended {
            let rbuf = &mut self.sock.rbuf;
            let Some(eol) = find(rbuf, b"\r\n") else {
                if rbuf.len() > MAX_CHUNK_LINE {
                    bail!("bad chunk size line");
                }
                return Ok(None);
            };
            let size = chunk_size(&rbuf[..eol])?;
            if size == 0 {
                // The last chunk (trailers, if any, are not read).
                self.ended = true;
                return Ok(Some(self.closed()));
            }
            let need = eol + 2 + size + 2;
            if rbuf.len() < need {
                rbuf.reserve(need - rbuf.len());
                return Ok(None);
            }
            rbuf.advance(eol + 2);
            let body = rbuf.split_to(size).freeze();
            if !rbuf.starts_with(b"\r\n") {
                bail!("a chunk not followed by CRLF");
            }
            rbuf.advance(2);
            if let Some(bytes) = self.complete_lines(body) {
                self.last = bytes.clone();
                return Ok(Some(Incoming::Text(Payload {
                    bytes,
                    sse: self.sse,
                })));
            }
        }
        Ok(None)
    }

    /// A chunk's body up to its last complete line, with what an earlier
    /// chunk left over in front; the rest waits for the next chunk. A whole
    /// chunk of whole lines (what the server sends) is not copied.
    fn complete_lines(&mut self, body: Bytes) -> Option<Bytes> {
        if self.partial.is_empty() && body.ends_with(b"\n") {
            return Some(body);
        }
        self.partial.extend_from_slice(&body);
        let end = self.partial.iter().rposition(|&b| b == b'\n')? + 1;
        Some(self.partial.split_to(end).freeze())
    }

    /// The stream's end, with the code of the disconnect push before it.
    fn closed(&self) -> Incoming {
        let last = Payload {
            bytes: self.last.clone(),
            sse: self.sse,
        };
        let disconnect = last.lines().find_map(|l| {
            let v: Value = serde_json::from_slice(l).ok()?;
            let d = v["push"].get("disconnect")?.clone();
            Some((
                d["code"].as_u64(),
                d["reason"].as_str().unwrap_or("").to_string(),
            ))
        });
        match disconnect {
            Some((code, reason)) => Incoming::Closed {
                code: code.map(|c| c as u16),
                why: format!("server sent disconnect {} {reason}", code.unwrap_or(0)),
            },
            None => Incoming::Closed {
                code: None,
                why: "server ended the stream".into(),
            },
        }
    }
}

/// `POST <path>` request head up to the blank line, without `Content-Length`.
fn post_head(t: &Target) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
        t.path, t.host
    )
    .into_bytes()
}

/// A chunk-size line: hex digits, then extensions after `;` (ignored).
fn chunk_size(line: &[u8]) -> anyhow::Result<usize> {
    let hex = &line[..find_byte(line, b';').unwrap_or(line.len())];
    let hex = std::str::from_utf8(hex).ok().map(str::trim).unwrap_or("");
    usize::from_str_radix(hex, 16)
        .ok()
        .filter(|_| !hex.is_empty())
        .with_context(|| format!("bad chunk size {:?}", String::from_utf8_lossy(line)))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    #[test]
    fn endpoints_keep_the_url_prefix() {
        let ws = Target::parse("ws://127.0.0.1:8000/rc/connection/websocket").unwrap();
        let e = Endpoint::new(Transport::Sse, &ws);
        assert_eq!(e.target.path, "/rc/connection/sse");
        assert_eq!(e.emulation.path, "/rc/emulation");
        assert_eq!(e.url(), "http://127.0.0.1:8000/rc/connection/sse");
        let ws = Target::parse("ws://127.0.0.1:8000/").unwrap();
        let e = Endpoint::new(Transport::HttpStream, &ws);
        assert_eq!(e.target.path, "/connection/http_stream");
        assert_eq!(e.emulation.path, "/emulation");
        let e = Endpoint::new(Transport::WebSocket, &ws);
        assert_eq!(e.url(), "ws://127.0.0.1:8000/");
    }

    #[test]
    fn chunk_sizes_and_encoding() {
        assert_eq!(chunk_size(b"1a").unwrap(), 26);
        assert_eq!(chunk_size(b"A;ext=1").unwrap(), 10);
        assert!(chunk_size(b"").is_err());
        assert!(chunk_size(b"zz").is_err());
        assert_eq!(url_encode(br#"{"a":1} b"#), "%7B%22a%22%3A1%7D%20b");
        let p = Payload {
            bytes: Bytes::from_static(b"data: {}\ndata:{\"id\":1}\n: comment\nevent: x\n\n"),
            sse: true,
        };
        let got: Vec<&[u8]> = p.lines().collect();
        assert_eq!(got, [&b"{}"[..], b"{\"id\":1}"]);
    }

    /// A stream server in the test: reads the request, answers with chunks
    /// that split a line, then a disconnect push and the last chunk.
    async fn serve_chunks(sse: bool) -> (Rc<Endpoint>, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while find(&req, b"\r\n\r\n").is_none() || (!sse && !req.ends_with(b"}}")) {
                let n = s.read(&mut buf).await.unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            let (pre, post) = if sse { ("data: ", "\n\n") } else { ("", "\n") };
            let chunk = |b: String| format!("{:x}\r\n{b}\r\n", b.len());
            let connect = r#"{"id":1,"connect":{"session":"0.s","node":"n"}}"#;
            let mut out = chunk(format!("{pre}{connect}{post}"));
            // One line over two chunks.
            let line = format!("{pre}{{\"push\":{{\"pub\":{{}}}}}}{post}");
            let (a, b) = line.split_at(7);
            out += &chunk(a.into());
            out += &chunk(b.into());
            let bye = r#"{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}"#;
            out += &chunk(format!("{pre}{bye}{post}"));
            out += "0\r\n\r\n";
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            s.write_all(out.as_bytes()).await.unwrap();
            req
        });
        let ws = Target::parse(&format!("ws://{addr}/connection/websocket")).unwrap();
        let t = if sse {
            Transport::Sse
        } else {
            Transport::HttpStream
        };
        (Rc::new(Endpoint::new(t, &ws)), server)
    }

    #[tokio::test]
    async fn http_streams_come_out_as_lines_and_end_with_the_code() {
        for sse in [false, true] {
            let (ep, server) = serve_chunks(sse).await;
            let mut c = Conn::connect(&ep, None, &mut Rng::new(1)).await.unwrap();
            c.queue(br#"{"id":1,"connect":{}}"#);
            c.queue(br#"{"id":2,"subscribe":{"channel":"c"}}"#);
            c.flush().await.unwrap();
            let req = String::from_utf8(server.await.unwrap()).unwrap();
            if sse {
                assert!(req.starts_with(
                    "GET /connection/sse?cf_connect=%7B%22id%22%3A1%2C%22connect%22%3A%7B%7D%7D%0A%7B"
                ), "{req}");
            } else {
                assert!(
                    req.starts_with("POST /connection/http_stream HTTP/1.1\r\n"),
                    "{req}"
                );
                assert!(req.ends_with("\r\n\r\n{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"c\"}}"), "{req}");
            }
            let p = c.recv().await.unwrap();
            let connect: Vec<&[u8]> = p.lines().collect();
            assert_eq!(connect.len(), 1);
            c.connected(connect[0]).unwrap();
            let p = c.recv().await.unwrap();
            assert_eq!(
                p.lines().collect::<Vec<_>>(),
                [&br#"{"push":{"pub":{}}}"#[..]]
            );
            let _disconnect = c.recv().await.unwrap();
            let end = loop {
                if let Some(m) = c.next().unwrap() {
                    break m;
                }
                assert!(c.read_some(4096).await.unwrap() > 0);
            };
            match end {
                Incoming::Closed { code, why } => {
                    assert_eq!(code, Some(3001), "{why}");
                    assert!(why.contains("shutdown"), "{why}");
                }
                _ => panic!("expected the stream's end"),
            }
        }
    }
}
