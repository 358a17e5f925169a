//! Sharding as a client sees it: SO_REUSEPORT spreads connections over every
//! shard (each names itself in `X-Ringcast-Shard`), every shard serves, and
//! the epoll fallback driver serves the same protocol.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

#[test]
fn connections_spread_over_both_shards() {
    const CONNS: usize = 200;
    let mut server = Server::start("echo", &["--shards", "2"]);
    let mut by_shard: BTreeMap<usize, Vec<std::net::TcpStream>> = BTreeMap::new();
    for i in 0..CONNS {
        let (s, head) = ws_connect(server.addr, "/");
        let shard =
            shard_of(&head).unwrap_or_else(|| panic!("connection {i}: no shard header: {head}"));
        assert!(shard < 2, "shard {shard} of 2");
        by_shard.entry(shard).or_default().push(s);
    }
    let counts: Vec<(usize, usize)> = by_shard.iter().map(|(k, v)| (*k, v.len())).collect();
    // With a fair flow hash the chance of all 200 on one shard is 2^-199.
    assert_eq!(counts.len(), 2, "connections per shard: {counts:?}");
    for (shard, conns) in by_shard.iter_mut() {
        // Each shard echoes on the first and last of its connections.
        let first = conns.first_mut().unwrap();
        assert_echoes(first, &format!("shard {shard} first"));
        let last = conns.last_mut().unwrap();
        assert_echoes(last, &format!("shard {shard} last"));
    }
    assert!(server.is_running());
}

#[test]
fn every_shard_reports_ready_and_the_header_matches() {
    let server = Server::start("echo", &["--shards", "2"]);
    let log = server.log.lock().unwrap().join("\n");
    for id in 0..2 {
        assert!(
            log.lines()
                .any(|l| l.contains("shard ready") && l.contains(&format!("shard={id}"))),
            "no ready line for shard {id}:\n{log}"
        );
    }
    drop(log);
    let (_, head) = ws_connect(server.addr, "/");
    assert!(head.contains("\r\nX-Ringcast-Shard: "), "{head}");
}

#[test]
fn epoll_driver_serves_echo() {
    let mut server = Server::start("echo", &["--shards", "2", "--driver", "epoll"]);
    let mut conns = Vec::new();
    for _ in 0..20 {
        conns.push(ws_connect(server.addr, "/").0);
    }
    for (i, s) in conns.iter_mut().enumerate() {
        assert_echoes(s, &format!("epoll connection {i}"));
    }
    // A larger message than one read, and fragments with a ping between.
    let s = &mut conns[0];
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::io::Write::write_all(s, &client_frame(true, 2, &big)).unwrap();
    let (fin, op, payload) = read_frame(s).unwrap();
    assert!(fin && op == 2 && payload == big, "200 kB echo over epoll");
    let mut wire = client_frame(false, 1, b"hel");
    wire.extend(client_frame(true, 9, b"p"));
    wire.extend(client_frame(true, 0, b"lo"));
    std::io::Write::write_all(s, &wire).unwrap();
    assert_eq!(read_frame(s).unwrap(), (true, 10, b"p".to_vec()));
    assert_eq!(read_frame(s).unwrap(), (true, 1, b"hello".to_vec()));

    let log = server.log.lock().unwrap().join("\n");
    let ready: Vec<&str> = log.lines().filter(|l| l.contains("shard ready")).collect();
    assert_eq!(ready.len(), 2, "{log}");
    assert!(
        ready.iter().all(|l| l.contains("driver=epoll")),
        "{ready:#?}"
    );
    drop(log);
    assert!(server.is_running());
}

#[test]
fn epoll_driver_enforces_the_handshake_timeout_and_close_codes() {
    let server = Server::start(
        "echo",
        &[
            "--shards",
            "1",
            "--driver",
            "epoll",
            "--handshake-timeout",
            "1",
        ],
    );
    // Timers work on epoll too: a silent connection gets its 408.
    let mut idle = connect(server.addr);
    idle.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let resp = read_http_response(&mut idle);
    assert_eq!(resp.status(), 408, "{}", resp.head);
    // And a protocol error gets its close code.
    let (mut s, _) = ws_connect(server.addr, "/");
    std::io::Write::write_all(&mut s, &[0x81, 0x01, b'x']).unwrap();
    assert_eq!(expect_close_then_eof(&mut s), 1002);
}
