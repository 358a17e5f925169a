//! At the connection ceiling (derived from a small fd limit) the next client is
//! refused with 503 before the upgrade, existing clients keep working, and the
//! server does not spin.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
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
    let mut child = Command::new("prlimit")
        .args(["--nofile=200:200", "--"])
        .arg(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "echo",
            "--port",
            "0",
            "--address",
            "127.0.0.1",
            "--shards",
            "1",
            "--no-pin",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs ringcast");
    // The ready line (stdout) says where it listens; the log (stderr) up to
    // it says what ceiling it computed.
    let ready = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .expect("a ready line")
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("JSON ready line");
    let addr: SocketAddr = ready["ready"]["listen"].as_str().unwrap().parse().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut start_log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        start_log.push_str(&line);
        if line.contains("listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(start_log.contains("max_connections=128"), "{start_log}");

    let mut held: Vec<TcpStream> = (0..128).map(|_| ws_connect(addr, "/").0).collect();

    // The next clients are refused before the upgrade with 503.
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(upgrade_request("/").as_bytes()).unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 503 "), "{resp:?}");
        assert!(resp.contains("Retry-After"), "{resp:?}");
    }

    // Everyone already connected still echoes.
    for (i, s) in held.iter_mut().enumerate() {
        let msg = format!("still here {i}");
        s.write_all(&client_frame(true, 1, msg.as_bytes())).unwrap();
        assert_eq!(read_frame(s).unwrap().2, msg.as_bytes());
    }

    // No spinning: while full and idle, the server uses almost no CPU.
    let before = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(child.id()) - before;
    assert!(
        used <= 10,
        "server burned {used} ticks (1/100 s) while idle at its ceiling"
    );

    // A slot freed is a slot usable again (once the server has seen the
    // close: upgrades are refused with 503 until then).
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut s = loop {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(upgrade_request("/").as_bytes()).unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        if head.starts_with(b"HTTP/1.1 101") {
            // The rest of the 101 response.
            let mut rest = Vec::new();
            let mut b = [0u8; 1];
            while !rest.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).unwrap();
                rest.push(b[0]);
            }
            break s;
        }
        assert!(
            head.starts_with(b"HTTP/1.1 503"),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the freed slot was never usable"
        );
        std::thread::yield_now();
    };
    s.write_all(&client_frame(true, 2, b"in")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap().2, b"in");

    let _ = child.kill();
    let _ = child.wait();
}
