//! Peers that hold connections open without finishing the handshake: a
//! slowloris is cut at the handshake timeout, and a thousand silent
//! connections do not delay a real client on the same shard.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// How a slowloris connection ended, and when (since connect).
#[derive(Debug)]
enum Ended {
    /// The server answered (408) and closed.
    Response(String, Duration),
    /// Closed without a response: EOF or reset.
    Closed(Duration),
}

/// Sends `request` one byte at a time, one byte every `gap`, until the
/// server ends the connection or `give_up` passes.
fn trickle(s: &mut TcpStream, request: &[u8], gap: Duration, give_up: Duration) -> Option<Ended> {
    let start = Instant::now();
    s.set_read_timeout(Some(gap)).unwrap();
    let mut got = Vec::new();
    let mut next = 0;
    let mut buf = [0u8; 1024];
    while start.elapsed() < give_up {
        if next < request.len() {
            // A write error means the server has already closed; the read
            // below tells how.
            if s.write_all(&request[next..next + 1]).is_ok() {
                next += 1;
            }
        }
        match s.read(&mut buf) {
            Ok(0) => {
                let t = start.elapsed();
                return Some(if got.is_empty() {
                    Ended::Closed(t)
                } else {
                    Ended::Response(String::from_utf8_lossy(&got).into_owned(), t)
                });
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                let t = start.elapsed();
                return Some(if got.is_empty() {
                    Ended::Closed(t)
                } else {
                    Ended::Response(String::from_utf8_lossy(&got).into_owned(), t)
                });
            }
        }
    }
    None
}

/// A `serve` server with a 1 s handshake timeout and `/metrics`.
fn serve_with_handshake_timeout_1s() -> Server {
    Server::start(
        "serve",
        &[
            "--shards",
            "1",
            "--insecure",
            "--handshake-timeout",
            "1",
            "--api-port",
            "0",
            "--publisher-port",
            "0",
        ],
    )
}

#[test]
fn slowloris_is_cut_at_the_handshake_timeout() {
    let mut server = serve_with_handshake_timeout_1s();
    let (mut before, _) = Proto::connected(&server, None);
    let mut slow = connect(server.addr);
    // One byte every 0.3 s: never quiet for the 1 s timeout, and the whole
    // request would take ~45 s. Only a deadline counted from the connect
    // cuts it within `give_up`.
    let request = upgrade_request(WS_PATH);
    let ended = trickle(
        &mut slow,
        request.as_bytes(),
        Duration::from_millis(300),
        Duration::from_secs(20),
    );
    let t = match ended {
        None => panic!("slowloris still connected after 20 s (handshake timeout 1 s)"),
        Some(Ended::Response(head, t)) => {
            assert!(head.starts_with("HTTP/1.1 408 "), "{head}");
            t
        }
        Some(Ended::Closed(t)) => t,
    };
    // Not before its time (a lower bound: a busy machine only adds to it).
    assert!(t >= Duration::from_millis(900), "cut early, after {t:?}");
    // The server counts it as a failed handshake, and nothing else.
    server.wait_metric("ringcast_handshake_failures_total", 1.0);
    // The timeout is per connection: the one that upgraded in time lives on.
    before.assert_alive();
    let (mut after, _) = Proto::connected(&server, None);
    after.assert_alive();
    assert!(server.is_running());
    assert_eq!(server.metric("ringcast_handshake_failures_total"), 1.0);
}

#[test]
fn slow_but_steady_handshake_within_the_timeout_succeeds() {
    // A slow client that finishes in time is not a slowloris: the same
    // request trickled in 20 pieces over ~0.4 s upgrades fine.
    let server = Server::start("echo", &["--shards", "1", "--handshake-timeout", "2"]);
    let mut s = connect(server.addr);
    let req = upgrade_request("/");
    for piece in req.as_bytes().chunks(req.len().div_ceil(20)) {
        s.write_all(piece).unwrap();
        // Slowness is the point: the pieces arrive apart.
        std::thread::sleep(Duration::from_millis(20));
    }
    let head = read_http_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_echoes(&mut s, "a slow handshake");
}

#[test]
fn silent_connection_gets_408_at_the_handshake_timeout() {
    let server = serve_with_handshake_timeout_1s();
    let start = Instant::now();
    let mut s = connect(server.addr);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let resp = read_http_response(&mut s);
    let t = start.elapsed();
    assert_eq!(resp.status(), 408, "{}", resp.head);
    // Not before its time (a lower bound: a busy machine only adds to it).
    assert!(t >= Duration::from_millis(900), "408 early, after {t:?}");
    server.wait_metric("ringcast_handshake_failures_total", 1.0);
}

#[test]
fn thousand_half_open_handshakes_do_not_delay_a_real_client() {
    const HALF_OPEN: usize = 1000;
    // A handshake timeout far beyond anything below: every half-open
    // connection is still waiting when the real client is served.
    let mut server = Server::start("echo", &["--shards", "1", "--handshake-timeout", "120"]);
    let (mut before, _) = ws_connect(server.addr, "/");
    let mut idle = Vec::with_capacity(HALF_OPEN + 100);
    for _ in 0..HALF_OPEN {
        idle.push(TcpStream::connect(server.addr).expect("half-open connect"));
    }
    // And some that got partway through a request before going quiet.
    for i in 0..100 {
        let mut s = TcpStream::connect(server.addr).expect("partial connect");
        let req = upgrade_request("/");
        s.write_all(&req.as_bytes()[..10 + i]).unwrap();
        idle.push(s);
    }

    // Served at once, not after the handshakes ahead of it: a shard that
    // waited on them would hold this one until they time out (120 s), far
    // past the 10 s read timeouts here.
    let (mut fresh, _) = ws_connect(server.addr, "/");
    for i in 0..20 {
        let msg = format!("prompt {i}");
        fresh
            .write_all(&client_frame(true, 1, msg.as_bytes()))
            .unwrap();
        assert_eq!(read_frame(&mut fresh).unwrap(), (true, 1, msg.into_bytes()));
    }
    assert_echoes(&mut before, "1,100 half-open connections");
    assert!(server.is_running());

    // And all the half-open ones are still waiting on their handshake, none
    // refused or closed to make room.
    let mut probe = [0u8; 1];
    for (i, s) in idle.iter_mut().enumerate() {
        s.set_nonblocking(true).unwrap();
        match s.read(&mut probe) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("half-open connection {i} was closed early: {other:?}"),
        }
    }
}

/// Resident memory of a process, in bytes (Linux `VmRSS`).
fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// BUG (engine/src/ws/message.rs `Decoder::decode`, with the shared read
/// buffer in engine/src/shard/task.rs `on_readable`): the first fragment of
/// a message is kept as a `BytesMut` split off the shard's 64 KiB scratch
/// buffer, so a connection that sends one 1-byte non-final fragment and goes
/// quiet pins a whole scratch allocation (the shard then allocates a new
/// one). `on_readable` copies a trailing partial *frame* out for exactly this
/// reason, but not the fragments of an open *message*. Measured: ~4.2 kB RSS
/// (one touched page) and 64 KiB of address space per such connection,
/// against ~0.15 kB for an idle one.
#[test]
fn open_fragments_do_not_pin_read_buffers() {
    const CONNS: usize = 400;
    let server = Server::start("echo", &["--shards", "1"]);
    let pid = server.child.id();
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| ws_connect(server.addr, "/").0).collect();
    // Control: a whole 1-byte message on each, echoed.
    for s in conns.iter_mut() {
        s.write_all(&client_frame(true, 2, b"x")).unwrap();
        assert_eq!(read_frame(s).unwrap(), (true, 2, b"x".to_vec()));
    }
    // Every echo is back: the shard has nothing left to do.
    let base = rss_bytes(pid);
    // Now a 1-byte first fragment on each, and nothing more.
    for s in conns.iter_mut() {
        s.write_all(&client_frame(false, 2, b"x")).unwrap();
    }
    // Proof the shard has read them all: a ping on the last one is answered
    // after its fragment was decoded.
    let last = conns.last_mut().unwrap();
    last.write_all(&client_frame(true, 9, b"sync")).unwrap();
    assert_eq!(read_frame(last).unwrap(), (true, 10, b"sync".to_vec()));
    let grown = rss_bytes(pid).saturating_sub(base);
    let per_conn = grown / CONNS;
    assert!(
        per_conn < 1536,
        "{per_conn} bytes of RSS per connection holding a 1-byte open fragment ({grown} in all)"
    );
}
