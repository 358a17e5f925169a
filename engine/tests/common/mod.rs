//! Shared by the integration tests: start the real `ringcast` binary on a free
//! port and talk to it over real sockets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The ready line's object: `listen`, `api`, `publisher`, `shards`, `pid`.
    pub ready: serde_json::Value,
}

impl Server {
    /// Starts `ringcast <mode> --port 0 --address 127.0.0.1 <args>` and waits for
    /// its ready line (one JSON object on stdout); the log (stderr) is kept.
    pub fn start(mode: &str, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args([mode, "--port", "0", "--address", "127.0.0.1", "--no-pin"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringcast");
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if let (Some(tx), Some(ready)) = (tx.take(), v.get("ready")) {
                        let _ = tx.send(ready.clone());
                    }
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!(
                    "no ready line within 10 s; log:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        let addr = ready["listen"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("listen in the ready line");
        // The log is read on its own thread: wait until it has caught up to
        // the ready point (its `listening` line comes just before the ready
        // line), so tests see every start-up line.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !log.lock().unwrap().iter().any(|l| l.contains("listening")) {
            assert!(
                std::time::Instant::now() < deadline,
                "no `listening` log line"
            );
            std::thread::yield_now();
        }
        Server {
            child,
            addr,
            log,
            ready,
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Connects and completes a WebSocket upgrade; returns the stream and the
/// response head.
pub fn ws_connect(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(upgrade_request(path).as_bytes()).unwrap();
    let head = read_http_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (s, head)
}

/// Reads up to and including the blank line ending an HTTP response head.
pub fn read_http_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !head.ends_with(b"\r\n\r\n") {
        assert!(Instant::now() < deadline, "timed out reading response head");
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(_) => head.push(b[0]),
            Err(e) => panic!("reading response head: {e}"),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A client-protocol connection (no token: the server runs `--insecure`)
/// subscribed to `channel`, after the subscribe reply.
pub fn subscribed(addr: SocketAddr, channel: &str) -> TcpStream {
    let (mut s, _) = ws_connect(addr, "/connection/websocket");
    let cmds = format!(
        "{{\"id\":1,\"connect\":{{}}}}\n{{\"id\":2,\"subscribe\":{{\"channel\":\"{channel}\"}}}}"
    );
    s.write_all(&client_frame(true, 1, cmds.as_bytes()))
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("\"id\":2") {
        let (_, _, p) = read_frame(&mut s).unwrap();
        seen.push_str(&String::from_utf8(p).unwrap());
    }
    s
}

/// A masked client frame.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let op = ringcast::ws::OpCode::from_u8(opcode).expect("valid opcode");
    ringcast::ws::frame::encode_masked(fin, op, payload, [0x37, 0xfa, 0x21, 0x3d]).to_vec()
}

/// Reads one server frame: (fin, opcode, payload).
pub fn read_frame(s: &mut TcpStream) -> std::io::Result<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok((h[0] & 0x80 != 0, h[0] & 0x0f, payload))
}

/// Reads frames until a close frame; returns its code.
pub fn expect_close(s: &mut TcpStream) -> u16 {
    loop {
        let (_, op, p) = read_frame(s).expect("connection ended before a close frame");
        if op == 8 {
            assert!(p.len() >= 2, "close frame without a code");
            return u16::from_be_bytes([p[0], p[1]]);
        }
    }
}

// ---- Helpers for the hostile-peer and shard tests ----

/// Connects with a read timeout so no test can hang on a silent server.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// An HTTP response as the server sent it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status_line: String,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn status(&self) -> u16 {
        self.status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// Whether the comma-separated list header `name`, over all its field
    /// lines (RFC 9110 §5.3), holds `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.head.lines().skip(1).any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case(name)
                    && v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        })
    }
}

/// Sends `request` on a fresh connection and reads the whole response, up
/// to the server closing the connection (which it must do after refusing a
/// handshake). Panics if the connection is reset before a full response
/// head arrives.
pub fn http_exchange(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut s = connect(addr);
    s.write_all(request).expect("send request");
    read_http_response(&mut s)
}

/// Reads an HTTP response head and everything after it until EOF (5 s
/// read timeout). A reset after the head is tolerated.
pub fn read_http_response(s: &mut TcpStream) -> HttpResponse {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let err = loop {
        match s.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e),
        }
    };
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head ({err:?}); got {:?}",
                String::from_utf8_lossy(&data)
            )
        });
    let head = String::from_utf8_lossy(&data[..end + 4]).into_owned();
    if let Some(e) = err {
        assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "server did not close the connection after its response: {head}"
        );
    }
    HttpResponse {
        status_line: head.lines().next().unwrap_or("").to_string(),
        head,
        body: data[end + 4..].to_vec(),
    }
}

/// A client frame from raw parts: `b0` is the first header byte as sent
/// (FIN, RSV bits and opcode unchecked), masked with a fixed key.
pub fn raw_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    raw_len(&mut out, 0x80, payload.len() as u64);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// Just the header of a masked frame that announces `len` payload bytes.
pub fn raw_header(b0: u8, len: u64) -> Vec<u8> {
    let mut out = vec![b0];
    raw_len(&mut out, 0x80, len);
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

fn raw_len(out: &mut Vec<u8>, mask_bit: u8, len: u64) {
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= u16::MAX as u64 {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Reads frames until a close frame; returns its code, then asserts the
/// server half-closes (EOF) right behind it.
pub fn expect_close_then_eof(s: &mut TcpStream) -> u16 {
    let code = expect_close(s);
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes after the close frame"),
        Err(e) => assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset,
            "no EOF after the close frame: {e}"
        ),
    }
    code
}

/// Sends a text and a binary message (small enough for any `--max-message`
/// the tests use) and checks both come back unchanged.
pub fn assert_echoes(s: &mut TcpStream, tag: &str) {
    let text = format!("still echoing after {tag}");
    s.write_all(&client_frame(true, 1, text.as_bytes()))
        .expect("send text");
    let got = read_frame(s).expect("read text echo");
    assert_eq!(got, (true, 1, text.into_bytes()), "{tag}");
    let bin: Vec<u8> = (0..700u32).map(|i| (i * 31) as u8).collect();
    s.write_all(&client_frame(true, 2, &bin))
        .expect("send binary");
    let (fin, op, payload) = read_frame(s).expect("read binary echo");
    assert!(
        fin && op == 2 && payload == bin,
        "{tag}: binary echo came back as fin={fin} op={op} len={}",
        payload.len()
    );
}

/// The `X-Ringcast-Shard` header of a 101 response.
pub fn shard_of(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("x-ringcast-shard")
            .then(|| v.trim().parse().ok())?
    })
}

/// Deterministic pseudo-random bytes (xorshift64), for junk input.
pub fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---- Config files, JWTs, the server API and a JSON protocol client
// ---- (auth_flow.rs, namespaces.rs, config_check.rs) ----

/// A file under the temp directory, removed on drop.
pub struct TempFile {
    pub path: std::path::PathBuf,
}

impl TempFile {
    pub fn new(name: &str, contents: &str) -> TempFile {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ringcast-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile { path }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Server {
    /// `ringcast serve --config FILE` with `toml` as the file, free API and
    /// publisher ports, and `args` on top. The file is removed once the
    /// server has read it (it is listening).
    pub fn with_config(toml: &str, args: &[&str]) -> Server {
        let file = TempFile::new("config.toml", toml);
        let mut all = vec![
            "--config",
            file.path_str(),
            "--api-port",
            "0",
            "--publisher-port",
            "0",
        ];
        all.extend_from_slice(args);
        Server::start("serve", &all)
    }

    /// The API and TCP publisher addresses, from the ready line.
    pub fn extra_addrs(&self) -> (SocketAddr, SocketAddr) {
        let addr = |name: &str| -> SocketAddr {
            self.ready[name]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("{name} in the ready line {}", self.ready))
        };
        (addr("api"), addr("publisher"))
    }

    /// The sum over shards of a `/metrics` family (e.g.
    /// `ringcast_flush_holds_total`); needs `--api-port`.
    pub fn metric(&self, name: &str) -> f64 {
        let (api, _) = self.extra_addrs();
        let resp = http_exchange(
            api,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let prefix = format!("{name}{{");
        String::from_utf8_lossy(&resp.body)
            .lines()
            .filter(|l| l.starts_with(&prefix) || l.split(' ').next() == Some(name))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }

    /// `POST /api/<method>` with `X-API-Key: key`; the response body as JSON.
    pub fn api(&self, key: &str, method: &str, body: &serde_json::Value) -> serde_json::Value {
        let (api, _) = self.extra_addrs();
        let body = body.to_string();
        let req = format!(
            "POST /api/{method} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let resp = http_exchange(api, req.as_bytes());
        assert_eq!(resp.status(), 200, "{resp:?}");
        serde_json::from_slice(&resp.body).expect("API response is JSON")
    }
}

/// Unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Unix time in seconds, with the fraction.
pub fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An HS256 JWT over `claims`, signed with `secret`.
pub fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode JWT")
}

/// One line (JSON object) or the close code the server sent.
#[derive(Debug)]
pub enum Received {
    Line(serde_json::Value),
    Close(u16),
}

/// A Centrifugo JSON-protocol client over a raw socket. Server pings (`{}`)
/// are answered and skipped unless `auto_pong` is off.
pub struct Proto {
    pub s: TcpStream,
    pub pending: std::collections::VecDeque<serde_json::Value>,
    pub client: String,
    pub auto_pong: bool,
    pub pings: usize,
    closed: Option<u16>,
    next_id: u32,
}

impl Proto {
    /// Upgrades, without sending `connect`.
    pub fn open(server: &Server) -> Proto {
        let (s, _) = ws_connect(server.addr, "/connection/websocket");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Proto {
            s,
            pending: Default::default(),
            client: String::new(),
            auto_pong: true,
            pings: 0,
            closed: None,
            next_id: 100,
        }
    }

    /// Upgrades and connects with `token` (none: `{}`); panics unless the
    /// reply is a connect result. Returns the client and the result.
    pub fn connected(server: &Server, token: Option<&str>) -> (Proto, serde_json::Value) {
        let mut c = Proto::open(server);
        let r = c.connect(token);
        assert!(r["connect"]["client"].is_string(), "connect failed: {r}");
        c.client = r["connect"]["client"].as_str().unwrap().to_string();
        (c, r["connect"].clone())
    }

    /// Sends `connect` (id 1) and returns the reply.
    pub fn connect(&mut self, token: Option<&str>) -> serde_json::Value {
        let req = match token {
            Some(t) => serde_json::json!({"id": 1, "connect": {"token": t, "name": "test"}}),
            None => serde_json::json!({"id": 1, "connect": {"name": "test"}}),
        };
        self.send_json(&req);
        self.reply(1)
    }

    pub fn send(&mut self, text: &str) {
        self.s
            .write_all(&client_frame(true, 1, text.as_bytes()))
            .expect("send");
    }

    pub fn send_json(&mut self, v: &serde_json::Value) {
        self.send(&v.to_string());
    }

    /// Sends `{"id":N,"<method>":body}` with a fresh id; returns the reply.
    pub fn call(&mut self, method: &str, body: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut cmd = serde_json::Map::new();
        cmd.insert("id".into(), id.into());
        cmd.insert(method.into(), body);
        self.send_json(&serde_json::Value::Object(cmd));
        self.reply(id as u64)
    }

    /// The next line or close (pings answered and skipped when `auto_pong`).
    pub fn recv(&mut self) -> Received {
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Received::Line(v);
            }
            if let Some(code) = self.closed {
                return Received::Close(code);
            }
            let (_, op, p) = read_frame(&mut self.s).unwrap_or_else(|e| {
                panic!("reading from the server (client {}): {e}", self.client)
            });
            match op {
                1 => {
                    for line in std::str::from_utf8(&p).expect("UTF-8 text").lines() {
                        let v: serde_json::Value = serde_json::from_str(line)
                            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                        if v.as_object().is_some_and(|o| o.is_empty()) {
                            self.pings += 1;
                            if self.auto_pong {
                                self.send("{}");
                                continue;
                            }
                        }
                        self.pending.push_back(v);
                    }
                }
                8 => {
                    assert!(p.len() >= 2, "close frame without a code");
                    self.closed = Some(u16::from_be_bytes([p[0], p[1]]));
                }
                9 | 10 => {}
                other => panic!("unexpected opcode {other}"),
            }
        }
    }

    /// The next JSON line; panics on a close.
    pub fn next(&mut self) -> serde_json::Value {
        match self.recv() {
            Received::Line(v) => v,
            Received::Close(code) => panic!("closed with {code} while waiting for a line"),
        }
    }

    /// The reply with this id; lines seen meanwhile stay queued for `next`.
    pub fn reply(&mut self, id: u64) -> serde_json::Value {
        let mut skipped = vec![];
        loop {
            let v = match self.recv() {
                Received::Line(v) => v,
                Received::Close(code) => {
                    panic!("closed with {code} while waiting for reply {id}; seen {skipped:?}")
                }
            };
            if v["id"] == id {
                for s in skipped.into_iter().rev() {
                    self.pending.push_front(s);
                }
                return v;
            }
            skipped.push(v);
        }
    }

    /// The next push for `channel` of `kind` (`pub`, `join`, `subscribe`, ...);
    /// other lines are kept queued.
    pub fn push(&mut self, channel: &str, kind: &str) -> serde_json::Value {
        let mut skipped = vec![];
        loop {
            let v = match self.recv() {
                Received::Line(v) => v,
                Received::Close(code) => {
                    panic!("closed with {code} waiting for a {kind} push in {channel}; seen {skipped:?}")
                }
            };
            if v["push"]["channel"] == channel && v["push"].get(kind).is_some() {
                for s in skipped.into_iter().rev() {
                    self.pending.push_front(s);
                }
                return v["push"][kind].clone();
            }
            skipped.push(v);
        }
    }

    /// Reads (answering pings) until the server closes; returns the code.
    /// Lines before the close are returned too.
    pub fn close_code(&mut self) -> (u16, Vec<serde_json::Value>) {
        let mut lines = vec![];
        loop {
            match self.recv() {
                Received::Line(v) => lines.push(v),
                Received::Close(code) => return (code, lines),
            }
        }
    }

    /// Asserts the server closes with `code` (pings answered meanwhile).
    pub fn expect_closed_with(&mut self, code: u16) {
        let (got, lines) = self.close_code();
        assert_eq!(got, code, "close code; lines before it: {lines:?}");
    }

    /// Whether the connection is still served: a `ping` command is answered.
    pub fn assert_alive(&mut self) {
        let r = self.call("ping", serde_json::json!({}));
        assert!(r.get("ping").is_some(), "{r}");
    }
}
