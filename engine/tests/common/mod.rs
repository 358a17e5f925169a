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
}

impl Server {
    /// Starts `ringcast <mode> --port 0 --address 127.0.0.1 <args>` and waits for
    /// its "listening" line.
    pub fn start(mode: &str, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args([mode, "--port", "0", "--address", "127.0.0.1", "--no-pin"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringcast");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line.clone());
                if line.contains("listening") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server did not report listening");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
            .expect("listen= in log line")
            .parse()
            .unwrap();
        Server { child, addr, log }
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
