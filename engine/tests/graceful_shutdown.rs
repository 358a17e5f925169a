//! SIGTERM with 1,000 connected clients: every one gets close 3001
//! "shutdown", and the process exits 0 without waiting out the shutdown
//! timeout.
mod common;

use std::time::Duration;

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
            "--publisher-port",
            "0",
        ],
    );
    let mut clients: Vec<Proto> = (0..1000)
        .map(|_| Proto::connected(&server, None).0)
        .collect();

    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    for (i, c) in clients.iter_mut().enumerate() {
        let (code, lines) = c.close_code();
        assert_eq!(code, 3001, "client {i}; lines before the close: {lines:?}");
        assert_eq!(c.closed(), Some((3001, "shutdown")), "client {i}");
    }
    // Clients close their side; the server is then free to exit.
    drop(clients);
    let code = server.wait_exit(Duration::from_secs(20));
    assert!(code.success(), "exit status {code:?}");
    let log = server.log_text();
    assert!(log.contains("graceful shutdown"), "{log}");
    // Every shard told all its connections, and all were gone before the
    // shutdown timeout: none had to be dropped.
    let told: usize = log
        .lines()
        .filter(|l| l.contains("shutting down"))
        .map(|l| {
            let at = l.find("connections=").expect("connections=") + "connections=".len();
            let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(told, 1000, "{log}");
    assert!(!log.contains("shutdown timeout"), "{log}");
}
