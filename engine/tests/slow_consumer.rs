//! A subscriber that stops reading is cut with 3008 once its queue passes the
//! limit; the other subscribers keep receiving everything, as promptly as they
//! did with no stuck subscriber around.
//!
//! The stuck client shrinks its receive buffer so the server's queue fills
//! first. (It cannot usefully read afterwards: Linux keeps the shrunk window
//! clamp, so draining would take minutes.)
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn connect(server: &Server, channel: &str) -> TcpStream {
    subscribed(server.addr, channel)
}

fn field(line: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let at = line.find(&key).expect("field") + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Reads `n` publications in order; returns the worst publish→receive delay (µs).
fn drain(mut s: TcpStream, n: u64) -> u64 {
    let (mut got, mut worst) = (0, 0);
    while got < n {
        let (_, op, p) = read_frame(&mut s).expect("healthy subscriber lost its connection");
        let text = String::from_utf8(p).unwrap();
        assert_eq!(op, 1, "healthy subscriber got opcode {op}: {text}");
        for line in text.lines().filter(|l| l.contains("\"pub\"")) {
            assert_eq!(field(line, "i"), got, "in order, none lost");
            worst = worst.max(now_us().saturating_sub(field(line, "t")));
            got += 1;
        }
    }
    worst
}

/// Publishes `n` 1 KB publications at a steady pace to five healthy
/// subscribers; returns the worst delay.
fn phase(server: &Server, channel: &str, n: u64) -> u64 {
    let healthy: Vec<TcpStream> = (0..5).map(|_| connect(server, channel)).collect();
    let (mut publisher, _) = ws_connect(server.addr, "/connection/websocket");
    publisher
        .write_all(&client_frame(true, 1, br#"{"id":1,"connect":{}}"#))
        .unwrap();
    read_frame(&mut publisher).unwrap();
    let mut acks = publisher.try_clone().unwrap();
    thread::spawn(move || while read_frame(&mut acks).is_ok() {});
    let readers: Vec<_> = healthy
        .into_iter()
        .map(|s| thread::spawn(move || drain(s, n)))
        .collect();
    let pad = "x".repeat(1000);
    for i in 0..n {
        let cmd = format!(
            r#"{{"id":{},"publish":{{"channel":"{channel}","data":{{"i":{i},"t":{},"pad":"{pad}"}}}}}}"#,
            i + 10,
            now_us()
        );
        publisher
            .write_all(&client_frame(true, 1, cmd.as_bytes()))
            .unwrap();
        if i % 10 == 9 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    readers
        .into_iter()
        .map(|r| r.join().unwrap())
        .max()
        .unwrap()
}

#[test]
fn slow_subscriber_is_cut_and_nobody_else_waits() {
    // The kernel's autotuned send buffer (tcp_wmem max, 4 MB by default) holds
    // data before the server's queue does: publish well past both.
    let server = Server::start(
        "serve",
        &[
            "--shards",
            "2",
            "--insecure",
            "--max-queue",
            "524288",
            "--api-port",
            "0",
            "--publisher-port",
            "0",
        ],
    );
    let n = 8000;
    let baseline = phase(&server, "calm", n);

    let slow = connect(&server, "firehose");
    // Small receive buffer so the server's queue, not the kernel, fills up.
    socket2::SockRef::from(&slow)
        .set_recv_buffer_size(4096)
        .unwrap();
    let with_slow = phase(&server, "firehose", n);
    assert!(
        with_slow <= baseline * 3 + 50_000,
        "worst delay with a stuck subscriber {with_slow} µs vs {baseline} µs without"
    );

    // The server cut exactly the stuck one with 3008 (that the close frame
    // arrives well-formed is hostile_close.rs's test).
    assert_eq!(
        server.metric("ringcast_slow_consumer_disconnects_total"),
        1.0
    );
    drop(slow);
}
