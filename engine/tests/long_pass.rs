//! Long flush passes: a publisher's acknowledgement does not wait behind a
//! long fan-out; a pass of a few frames each to thousands of connections
//! holds the next pass back (`--flush-hold-max`) without losing anything,
//! while a pass of one frame each (quiet channels) does not.
//!
//! One shard, 4,000 subscribers on one channel, so flushing one publication
//! to all of them is a long pass. The observer subscribed last, so it is the
//! last connection that pass reaches. The publisher sends a second
//! publication the moment the first is acknowledged, which is while the pass
//! runs. The reactor reads input between slices of the pass, so the second
//! publication's acknowledgement must reach the publisher before the first
//! publication reaches the observer. Before that change it waited for the end
//! of the pass. The observer then gets both publications, in order.
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use common::*;

const SUBSCRIBERS: usize = 4000;

fn subscribe(server: &Server, channel: &str) -> TcpStream {
    subscribed(server.addr, channel)
}

/// A connected client that publishes (and subscribes to nothing).
fn publisher(server: &Server) -> TcpStream {
    let (mut s, _) = ws_connect(server.addr, "/connection/websocket");
    s.write_all(&client_frame(true, 1, br#"{"id":1,"connect":{}}"#))
        .unwrap();
    await_reply(&mut s, 1);
    s
}

fn publish(s: &mut TcpStream, id: u32, n: u32) {
    let cmd = format!("{{\"id\":{id},\"publish\":{{\"channel\":\"lp\",\"data\":{{\"n\":{n}}}}}}}");
    s.write_all(&client_frame(true, 1, cmd.as_bytes())).unwrap();
}

/// Reads until a reply with `id` arrives.
fn await_reply(s: &mut TcpStream, id: u32) {
    let want = format!("\"id\":{id}");
    loop {
        let (_, _, p) = read_frame(s).expect("publisher connection lost");
        let text = String::from_utf8(p).unwrap();
        assert!(!text.contains("\"error\""), "publish refused: {text}");
        if text.lines().any(|l| l.contains(&want)) {
            return;
        }
    }
}

#[test]
fn ack_leaves_during_a_long_flush_pass() {
    let server = Server::start("serve", &["--insecure", "--shards", "1"]);
    // Held open, never read: two small frames each fit their socket buffers.
    let _crowd: Vec<TcpStream> = (0..SUBSCRIBERS).map(|_| subscribe(&server, "lp")).collect();
    let mut observer = subscribe(&server, "lp");
    let mut publisher = publisher(&server);

    let (tx, rx) = mpsc::channel();
    let watcher = thread::spawn(move || {
        let mut got = Vec::new();
        let mut first_at = None;
        while got.len() < 2 {
            let (_, _, p) = read_frame(&mut observer).expect("observer connection lost");
            let text = String::from_utf8(p).unwrap();
            for line in text.lines().filter(|l| l.contains("\"pub\"")) {
                first_at.get_or_insert_with(Instant::now);
                let at = line.find("\"n\":").expect("data") + 4;
                got.push(line[at..at + 1].to_string());
            }
        }
        tx.send((first_at.unwrap(), got)).unwrap();
    });

    publish(&mut publisher, 10, 1);
    await_reply(&mut publisher, 10);
    publish(&mut publisher, 11, 2);
    await_reply(&mut publisher, 11);
    let second_acked = Instant::now();

    let (first_seen, got) = rx.recv().unwrap();
    watcher.join().unwrap();
    assert_eq!(
        got,
        ["1", "2"],
        "the observer gets both publications in order"
    );
    eprintln!(
        "second ack {:?} before the first publication reached the last subscriber",
        first_seen.saturating_duration_since(second_acked)
    );
    assert!(
        second_acked < first_seen,
        "the second publication's ack came {:?} after the first publication reached \
         the last subscriber: acks wait for the end of the flush pass",
        second_acked - first_seen
    );
}

/// Publishes `n` publications in one burst (so a pass has several frames
/// for every subscriber), waits for their acknowledgements, and checks the
/// observer gets all, in order.
fn publish_and_observe(publisher: &mut TcpStream, observer: &mut TcpStream, n: u32) {
    for i in 1..=n {
        publish(publisher, 100 + i, i);
    }
    let mut acked = 0;
    while acked < n {
        let (_, _, p) = read_frame(publisher).expect("publisher connection lost");
        let text = String::from_utf8(p).unwrap();
        assert!(!text.contains("\"error\""), "publish refused: {text}");
        acked += text.lines().filter(|l| l.contains("\"id\":1")).count() as u32;
    }
    let mut got = 0;
    while got < n {
        let (_, _, p) = read_frame(observer).expect("observer connection lost");
        let text = String::from_utf8(p).unwrap();
        for line in text.lines().filter(|l| l.contains("\"pub\"")) {
            got += 1;
            assert!(
                line.contains(&format!("\"n\":{got}}}")),
                "publication {got} out of order: {line}"
            );
        }
    }
}

#[test]
fn a_pass_of_a_few_frames_each_to_thousands_holds_the_next() {
    for (hold, holds_expected) in [("0.1", true), ("0", false)] {
        let server = Server::start(
            "serve",
            &[
                "--insecure",
                "--shards",
                "1",
                "--api-port",
                "0",
                "--publisher-port",
                "0",
                "--flush-hold-max",
                hold,
            ],
        );
        // Over the 4,096-connection threshold; one frame each per pass.
        let _crowd: Vec<TcpStream> = (0..4200).map(|_| subscribe(&server, "lp")).collect();
        let mut observer = subscribe(&server, "lp");
        let mut publisher = publisher(&server);
        // One frame per connection: waiting would batch nothing.
        publish_and_observe(&mut publisher, &mut observer, 1);
        assert_eq!(server.metric("ringcast_flush_holds_total"), 0.0);
        // Six per connection: the pass is held.
        publish_and_observe(&mut publisher, &mut observer, 6);
        let holds = server.metric("ringcast_flush_holds_total");
        if holds_expected {
            assert!(holds >= 1.0, "--flush-hold-max {hold}: {holds} holds");
        } else {
            assert_eq!(holds, 0.0, "--flush-hold-max {hold}");
        }
    }
}
