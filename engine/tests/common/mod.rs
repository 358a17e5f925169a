//! Shared by the integration tests: start the real `ringcast` binary on a free
//! port and talk to it over real sockets. One of each thing the tests need:
//! the server (its ready line, log and `/metrics`; killed on drop), waits that
//! poll a condition until a deadline, the WebSocket wire, JWTs, the client
//! protocol (`Proto`) and receive timestamps (`Stamped`).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// ---- Waiting ----

/// How long `wait_until` sleeps between two looks at its condition.
const POLL: Duration = Duration::from_millis(2);

/// Polls `cond` until it holds; panics, naming `what`, once `timeout` has
/// passed without it.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(timeout, what, || cond().then_some(()))
}

/// Polls `f` until it returns a value; panics, naming `what`, once `timeout`
/// has passed without one.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "still waiting for {what} after {timeout:?}"
        );
        std::thread::sleep(POLL);
    }
}

// ---- The server ----

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The ready line's object: `listen`, `api`, `publisher`, `shards`, `pid`.
    pub ready: Value,
    log_reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `ringcast <mode> --port 0 --address 127.0.0.1 <args>` and waits for
    /// its ready line (one JSON object on stdout); the log (stderr) is kept.
    pub fn start(mode: &str, args: &[&str]) -> Server {
        Server::start_under(&[], mode, args)
    }

    /// `start`, with the binary run by `wrapper` (a command and its
    /// arguments that then exec the rest, e.g. `prlimit --nofile=200:200 --`).
    pub fn start_under(wrapper: &[&str], mode: &str, args: &[&str]) -> Server {
        let bin = env!("CARGO_BIN_EXE_ringcast");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args([mode, "--port", "0", "--address", "127.0.0.1", "--no-pin"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {wrapper:?} ringcast: {e}"));
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        let log_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if let (Some(tx), Some(ready)) = (tx.take(), v.get("ready")) {
                        let _ = tx.send(ready.clone());
                    }
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "no ready line within 20 s; log:\n{}",
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
        wait_until(Duration::from_secs(10), "the `listening` log line", || {
            log.lock().unwrap().iter().any(|l| l.contains("listening"))
        });
        Server {
            child,
            addr,
            log,
            ready,
            log_reader: Some(log_reader),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The server's process id, from its ready line (its own, also when it
    /// runs under a wrapper).
    pub fn pid(&self) -> u32 {
        self.ready["pid"].as_u64().expect("pid in the ready line") as u32
    }

    /// The log so far, one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (up to `timeout`) for the process to exit and for its log to be
    /// read to the end; returns the exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        let status = wait_for(timeout, "the server to exit", || child.try_wait().unwrap());
        if let Some(reader) = self.log_reader.take() {
            reader.join().expect("log reader");
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- The WebSocket wire ----

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Where `ringcast serve` speaks the client protocol over WebSocket.
pub const WS_PATH: &str = "/connection/websocket";

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

/// Reads an HTTP response head and everything after it until EOF (within
/// the stream's read timeout). A reset after the head is tolerated.
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

// ---- Config files and the server API ----

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

    /// The sum over shards (and other labels) of a `/metrics` family, e.g.
    /// `ringcast_flush_holds_total`; needs `--api-port`.
    pub fn metric(&self, name: &str) -> f64 {
        let (api, _) = self.extra_addrs();
        let resp = http_exchange(
            api,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(resp.status(), 200, "{resp:?}");
        let prefix = format!("{name}{{");
        String::from_utf8_lossy(&resp.body)
            .lines()
            .filter(|l| l.starts_with(&prefix) || l.split(' ').next() == Some(name))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }

    /// Polls `/metrics` until `name` is `value` (for figures the server
    /// updates just after a client can see the event); panics after 10 s.
    pub fn wait_metric(&self, name: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.metric(name);
            if now == value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} is {now}, not {value}, after 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `POST /api/<method>` with `X-API-Key: key`; the response body as JSON.
    pub fn api(&self, key: &str, method: &str, body: &Value) -> Value {
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

// ---- Time and JWTs ----

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

/// A JWT over `claims` made by jsonwebtoken, signed with `key` by `alg`.
pub fn sign_jwt(
    alg: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::EncodingKey,
    claims: &Value,
) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, key).expect("encode JWT")
}

/// A JWT over `claims`, HMAC-signed with `secret` (HS256, HS384 or HS512).
pub fn hmac_jwt(alg: jsonwebtoken::Algorithm, secret: &[u8], claims: &Value) -> String {
    sign_jwt(alg, &jsonwebtoken::EncodingKey::from_secret(secret), claims)
}

/// An HS256 JWT over `claims`, signed with `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    hmac_jwt(jsonwebtoken::Algorithm::HS256, secret.as_bytes(), claims)
}

/// `header.payload.signature` from raw header and payload bytes (JSON or
/// not), HMAC-signed with `secret`.
pub fn hmac_jwt_raw(
    alg: jsonwebtoken::Algorithm,
    secret: &[u8],
    header: &[u8],
    payload: &[u8],
) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    hmac_sign(
        alg,
        secret,
        &format!("{}.{}", b64.encode(header), b64.encode(payload)),
    )
}

/// `msg.signature`: `msg` (the `header.payload` part as sent, well encoded
/// or not) HMAC-signed with `secret`.
pub fn hmac_sign(alg: jsonwebtoken::Algorithm, secret: &[u8], msg: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &key, alg).expect("sign JWT");
    format!("{msg}.{sig}")
}

// ---- The client protocol ----

/// One line (JSON object) or the close code the server sent.
#[derive(Debug)]
pub enum Received {
    Line(Value),
    Close(u16),
}

/// A Centrifugo JSON-protocol client over a raw socket, the one every test
/// uses. Server pings (`{}`) are answered as soon as they are read (unless
/// `auto_pong` is off) and skipped (unless `keep_pings` is on). No wait
/// lasts longer than `wait`, however many pings arrive meanwhile.
pub struct Proto {
    pub s: TcpStream,
    pub pending: VecDeque<Value>,
    pub client: String,
    pub auto_pong: bool,
    /// Also queue the pings, in order with the other lines (answered or not).
    pub keep_pings: bool,
    pub pings: usize,
    pub wait: Duration,
    closed: Option<(u16, String)>,
    next_id: u32,
}

impl Proto {
    /// A client over a stream that has completed its WebSocket upgrade.
    pub fn over(s: TcpStream) -> Proto {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Proto {
            s,
            pending: Default::default(),
            client: String::new(),
            auto_pong: true,
            keep_pings: false,
            pings: 0,
            wait: Duration::from_secs(30),
            closed: None,
            next_id: 100,
        }
    }

    /// Upgrades, without sending `connect`.
    pub fn open(server: &Server) -> Proto {
        Proto::over(ws_connect(server.addr, WS_PATH).0)
    }

    /// Upgrades and connects with `token` (none: `{}`); panics unless the
    /// reply is a connect result. Returns the client and the result.
    pub fn connected(server: &Server, token: Option<&str>) -> (Proto, Value) {
        let mut c = Proto::open(server);
        let r = c.connect(token);
        assert!(r["connect"]["client"].is_string(), "connect failed: {r}");
        c.client = r["connect"]["client"].as_str().unwrap().to_string();
        (c, r["connect"].clone())
    }

    /// Upgrades, connects without a token (the server runs `--insecure`) and
    /// subscribes to `channel`, both commands in one frame; returns after the
    /// subscribe reply.
    pub fn subscribed(server: &Server, channel: &str) -> Proto {
        let mut c = Proto::open(server);
        let connect = json!({"id": 1, "connect": {"name": "test"}});
        let subscribe = json!({"id": 2, "subscribe": {"channel": channel}});
        c.send(&format!("{connect}\n{subscribe}"));
        let r = c.reply(1);
        assert!(r["connect"]["client"].is_string(), "connect failed: {r}");
        c.client = r["connect"]["client"].as_str().unwrap().to_string();
        let r = c.reply(2);
        assert!(r["subscribe"].is_object(), "subscribe to {channel}: {r}");
        c
    }

    /// Sends `connect` (id 1) and returns the reply.
    pub fn connect(&mut self, token: Option<&str>) -> Value {
        let req = match token {
            Some(t) => json!({"id": 1, "connect": {"token": t, "name": "test"}}),
            None => json!({"id": 1, "connect": {"name": "test"}}),
        };
        self.send_json(&req);
        self.reply(1)
    }

    pub fn send(&mut self, text: &str) {
        self.try_send(text).expect("send");
    }

    /// `send`, for when the server may have closed the connection already.
    pub fn try_send(&mut self, text: &str) -> std::io::Result<()> {
        self.s.write_all(&client_frame(true, 1, text.as_bytes()))
    }

    pub fn send_json(&mut self, v: &Value) {
        self.send(&v.to_string());
    }

    /// Sends `{"id":N,"<method>":body}` with a fresh id; returns the reply.
    pub fn call(&mut self, method: &str, body: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut cmd = serde_json::Map::new();
        cmd.insert("id".into(), id.into());
        cmd.insert(method.into(), body);
        self.send_json(&Value::Object(cmd));
        self.reply(id as u64)
    }

    /// The close code and reason, once the close frame has been read.
    pub fn closed(&self) -> Option<(u16, &str)> {
        self.closed.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    /// Reads one frame: queues its lines, answers and counts pings, notes a
    /// close.
    fn read_one(&mut self) {
        let (_, op, p) = read_frame(&mut self.s)
            .unwrap_or_else(|e| panic!("reading from the server (client {}): {e}", self.client));
        match op {
            1 => {
                for line in std::str::from_utf8(&p).expect("UTF-8 text").lines() {
                    let v: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    if v.as_object().is_some_and(|o| o.is_empty()) {
                        self.pings += 1;
                        if self.auto_pong {
                            self.send("{}");
                            if !self.keep_pings {
                                continue;
                            }
                        }
                    }
                    self.pending.push_back(v);
                }
            }
            8 => {
                assert!(p.len() >= 2, "close frame without a code");
                let reason = String::from_utf8_lossy(&p[2..]).into_owned();
                self.closed = Some((u16::from_be_bytes([p[0], p[1]]), reason));
            }
            9 | 10 => {}
            other => panic!("unexpected opcode {other}"),
        }
    }

    fn recv_by(&mut self, deadline: Instant, what: &str) -> Received {
        loop {
            if let Some(v) = self.pending.pop_front() {
                return Received::Line(v);
            }
            if let Some((code, _)) = self.closed {
                return Received::Close(code);
            }
            assert!(
                Instant::now() < deadline,
                "client {}: still waiting for {what} after {:?}",
                self.client,
                self.wait
            );
            self.read_one();
        }
    }

    /// The next line or close.
    pub fn recv(&mut self) -> Received {
        self.recv_by(Instant::now() + self.wait, "a line")
    }

    /// The next JSON line; panics on a close.
    pub fn next(&mut self) -> Value {
        match self.recv() {
            Received::Line(v) => v,
            Received::Close(code) => panic!("closed with {code} while waiting for a line"),
        }
    }

    /// The first queued or arriving line `pick` returns something for; the
    /// other lines stay queued, in order.
    fn find<T>(&mut self, what: &str, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + self.wait;
        let mut skipped = vec![];
        loop {
            let v = match self.recv_by(deadline, what) {
                Received::Line(v) => v,
                Received::Close(code) => {
                    panic!("closed with {code} while waiting for {what}; seen {skipped:?}")
                }
            };
            if let Some(found) = pick(&v) {
                for s in skipped.into_iter().rev() {
                    self.pending.push_front(s);
                }
                return found;
            }
            skipped.push(v);
        }
    }

    /// The reply with this id; lines seen meanwhile stay queued for `next`.
    pub fn reply(&mut self, id: u64) -> Value {
        self.find(&format!("reply {id}"), |v| {
            (v["id"] == id).then(|| v.clone())
        })
    }

    /// The next push for `channel` of `kind` (`pub`, `join`, `subscribe`, ...);
    /// other lines are kept queued.
    pub fn push(&mut self, channel: &str, kind: &str) -> Value {
        self.find(&format!("a {kind} push in {channel}"), |v| {
            let p = &v["push"];
            (p["channel"] == channel && p.get(kind).is_some()).then(|| p[kind].clone())
        })
    }

    /// Reads until the server closes; returns the code and the lines before
    /// it.
    pub fn close_code(&mut self) -> (u16, Vec<Value>) {
        let deadline = Instant::now() + self.wait;
        let mut lines = vec![];
        loop {
            match self.recv_by(deadline, "a close") {
                Received::Line(v) => lines.push(v),
                Received::Close(code) => return (code, lines),
            }
        }
    }

    /// Asserts the server closes with `code`.
    pub fn expect_closed_with(&mut self, code: u16) {
        let (got, lines) = self.close_code();
        assert_eq!(got, code, "close code; lines before it: {lines:?}");
    }

    /// Whether the connection is still served: a `ping` command is answered.
    pub fn assert_alive(&mut self) {
        let r = self.call("ping", json!({}));
        assert!(r.get("ping").is_some(), "{r}");
    }

    /// Reads whatever arrives (answering pings, queueing lines) until
    /// `done` holds, which is checked at least every 50 ms; panics after
    /// `timeout` or on a close before `done`.
    pub fn pump_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Proto) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        let read_timeout = self.s.read_timeout().unwrap();
        while !done(self) {
            if let Some((code, reason)) = &self.closed {
                panic!("closed with {code} {reason:?} while waiting for {what}");
            }
            assert!(
                Instant::now() < deadline,
                "still waiting for {what} after {timeout:?}"
            );
            // Wait briefly for a frame to begin, then read it whole.
            self.s
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let arrived = match self.s.peek(&mut [0u8; 1]) {
                Ok(_) => true,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
            self.s.set_read_timeout(read_timeout).unwrap();
            if arrived {
                self.read_one();
            }
        }
    }

    /// The socket, for reading on without the protocol (nothing may be
    /// queued).
    pub fn into_stream(self) -> TcpStream {
        assert!(self.pending.is_empty(), "lines queued: {:?}", self.pending);
        assert!(self.closed.is_none(), "closed: {:?}", self.closed);
        self.s
    }
}

// ---- Receive timestamps ----

/// JSON lines read off a socket with the kernel's receive timestamps
/// (`SO_TIMESTAMPNS`: the wall clock when the bytes reached the socket), so
/// the order two sockets got their data in is the order the server sent it,
/// whenever this test's threads got round to reading. TCP merges segments
/// that wait unread and stamps the merge with the newest arrival, so a stamp
/// is an upper bound on when the bytes read with it arrived.
pub struct Stamped {
    pub s: TcpStream,
    buf: Vec<u8>,
    /// (end offset in `buf`, stamp) of each read, oldest first.
    reads: VecDeque<(usize, Duration)>,
    lines: VecDeque<StampedLine>,
}

/// A JSON line and the stamps of the first and the last byte of its frame.
#[derive(Debug, Clone)]
pub struct StampedLine {
    pub v: Value,
    pub first: Duration,
    pub last: Duration,
}

/// Asks for `SO_TIMESTAMPNS` receive timestamps on `s`.
fn enable_rx_stamps(s: &TcpStream) {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt(2) reads one c_int from the pointer it is given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
}

/// One `recvmsg` into `buf`: the bytes read and their receive timestamp,
/// if the kernel stamped them.
fn recv_stamped(s: &TcpStream, buf: &mut [u8]) -> (usize, Option<Duration>) {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data, and all zeroes is an empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, which
    // outlive the call.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    assert!(n > 0, "the peer closed the connection");
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within the `msg_controllen` bytes of
    // `control` that the kernel filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    (n as usize, stamp)
}

impl Stamped {
    /// Turns the stamps on for `s`, and waits until the kernel stamps what
    /// arrives: it switches stamping on for the whole stack a moment after
    /// the first socket asks (a deferred static-key switch), so a probe
    /// over loopback has to come back stamped first.
    pub fn new(s: TcpStream) -> Stamped {
        enable_rx_stamps(&s);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tx = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (rx, _) = listener.accept().unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        enable_rx_stamps(&rx);
        wait_until(Duration::from_secs(10), "receive timestamps", || {
            tx.write_all(b"?").unwrap();
            recv_stamped(&rx, &mut [0u8; 1]).1.is_some()
        });
        Stamped {
            s,
            buf: Vec::new(),
            reads: VecDeque::new(),
            lines: VecDeque::new(),
        }
    }

    pub fn send(&mut self, text: &str) {
        self.s
            .write_all(&client_frame(true, 1, text.as_bytes()))
            .expect("send");
    }

    /// One read into the buffer, with its stamp.
    fn read_more(&mut self) {
        let mut chunk = vec![0u8; 65536];
        let (n, stamp) = recv_stamped(&self.s, &mut chunk);
        self.buf.extend_from_slice(&chunk[..n]);
        let stamp = stamp.expect("a receive timestamp (SO_TIMESTAMPNS)");
        self.reads.push_back((self.buf.len(), stamp));
    }

    /// The stamp of the read that brought the byte at `offset` in `buf`.
    fn stamp_at(&self, offset: usize) -> Duration {
        self.reads
            .iter()
            .find(|(end, _)| offset < *end)
            .expect("a read covers every buffered byte")
            .1
    }

    /// The next JSON line, with its frame's stamps.
    pub fn line(&mut self) -> StampedLine {
        loop {
            if let Some(l) = self.lines.pop_front() {
                return l;
            }
            let h = loop {
                match ringcast::ws::frame::parse_header(&self.buf).expect("a valid server frame") {
                    Some(h) if self.buf.len() >= h.header_len + h.payload_len as usize => break h,
                    _ => self.read_more(),
                }
            };
            let len = h.header_len + h.payload_len as usize;
            let (first, last) = (self.stamp_at(0), self.stamp_at(len - 1));
            let payload: Vec<u8> = self.buf.drain(..len).skip(h.header_len).collect();
            self.reads = self
                .reads
                .iter()
                .filter(|(end, _)| *end > len)
                .map(|(end, stamp)| (end - len, *stamp))
                .collect();
            assert_eq!(h.opcode.as_u8(), 1, "a text frame: {payload:?}");
            for line in std::str::from_utf8(&payload).expect("UTF-8").lines() {
                let v = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                self.lines.push_back(StampedLine { v, first, last });
            }
        }
    }
}
