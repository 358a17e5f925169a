//! SIGTERM with 1,000 connected clients: every one gets close 3001
//! "shutdown", and the process exits 0 within the shutdown timeout.
mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigterm_tells_every_client_and_exits_zero() {
    let mut server = Server::start(
        "serve",
        &[
            "--shards",
            "2",
            "--insecure",
            "--shutdown-timeout",
            "5",
            "--api-port",
            "0",
        ],
    );
    let mut clients: Vec<_> = (0..1000)
        .map(|_| {
            let (mut s, _) = ws_connect(server.addr, "/connection/websocket");
            s.write_all(&client_frame(true, 1, br#"{"id":1,"connect":{}}"#))
                .unwrap();
            s
        })
        .collect();
    for s in clients.iter_mut() {
        let (_, op, reply) = read_frame(s).unwrap();
        assert_eq!(op, 1);
        assert!(reply.starts_with(br#"{"id":1,"connect""#));
    }

    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    for (i, s) in clients.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (_, op, payload) = read_frame(s).unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(op, 8, "client {i} got opcode {op}");
        assert_eq!(
            u16::from_be_bytes([payload[0], payload[1]]),
            3001,
            "client {i}"
        );
        assert_eq!(&payload[2..], b"shutdown");
    }
    // Clients close their side; the server is then free to exit.
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(8);
    let code = loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "server still running 8 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(code.success(), "exit status {code:?}");
    assert!(started.elapsed() < Duration::from_secs(7));
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("graceful shutdown"), "{log}");
}
