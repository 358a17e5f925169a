//! At the connection ceiling (derived from a small fd limit) the next client is
//! refused with 503 before the upgrade, existing clients keep working, a slot
//! freed is usable again, and the server does not spin.
mod common;

use std::time::Duration;

use common::*;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 after the name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn full_ceiling_refuses_cleanly_and_keeps_serving() {
    // 200 fds, 1 shard: the ceiling is 200 - (64 + 8) = 128 connections.
    let server = Server::start_under(
        &["prlimit", "--nofile=200:200", "--"],
        "serve",
        &[
            "--shards",
            "1",
            "--insecure",
            "--api-port",
            "0",
            "--publisher-port",
            "0",
        ],
    );
    let start_log = server.log_text();
    assert!(start_log.contains("max_connections=128"), "{start_log}");
    assert_eq!(server.metric("ringcast_fd_limit"), 200.0);
    assert_eq!(server.metric("ringcast_max_connections"), 128.0);

    let mut held: Vec<Proto> = (0..128)
        .map(|_| Proto::connected(&server, None).0)
        .collect();
    assert_eq!(server.metric("ringcast_connections"), 128.0);
    // Every one of them holds a descriptor, within the limit.
    let fds = server.metric("ringcast_open_fds");
    assert!((128.0..200.0).contains(&fds), "{fds} fds open");

    // The next clients are refused before the upgrade with 503, and counted.
    for _ in 0..20 {
        let resp = http_exchange(server.addr, upgrade_request(WS_PATH).as_bytes());
        assert_eq!(resp.status(), 503, "{resp:?}");
        assert!(resp.header("Retry-After").is_some(), "{resp:?}");
    }
    assert_eq!(server.metric("ringcast_connections_refused_total"), 20.0);

    // Everyone already connected is still served.
    for c in held.iter_mut() {
        c.assert_alive();
    }

    // No spinning: while full and idle, the server uses almost no CPU. This
    // sleep is the point: it is the idle time the CPU use is measured over.
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(server.pid()) - before;
    assert!(
        used <= 10,
        "server burned {used} ticks (1/100 s) while idle at its ceiling"
    );

    // A slot freed is a slot usable again, as soon as the server has seen the
    // close.
    drop(held.pop());
    server.wait_metric("ringcast_connections", 127.0);
    let (mut again, _) = Proto::connected(&server, None);
    again.assert_alive();
    assert_eq!(server.metric("ringcast_connections"), 128.0);
    assert_eq!(server.metric("ringcast_connections_refused_total"), 20.0);
}

#[test]
fn a_per_address_place_is_given_back_when_its_connection_closes() {
    // The reactor keeps a connection's address apart from its slab entry
    // (only where a per-address limit is set): closing the connection must
    // still give the address's place back.
    let server = Server::with_config(
        "[client]\ninsecure = true\nmax_connections_per_ip = 2\n",
        &["--shards", "1"],
    );
    let mut held: Vec<Proto> = (0..2).map(|_| Proto::connected(&server, None).0).collect();
    let resp = http_exchange(server.addr, upgrade_request(WS_PATH).as_bytes());
    assert_eq!(resp.status(), 503, "{resp:?}");
    for round in 0..3 {
        drop(held.pop());
        server.wait_metric("ringcast_connections", 1.0);
        let (mut again, _) = Proto::connected(&server, None);
        again.assert_alive();
        held.push(again);
        let resp = http_exchange(server.addr, upgrade_request(WS_PATH).as_bytes());
        assert_eq!(resp.status(), 503, "round {round}: {resp:?}");
    }
    for c in held.iter_mut() {
        c.assert_alive();
    }
}
