//! A subscriber that stops reading is cut with 3008 once its queue passes the
//! limit, and the other subscribers keep receiving everything all the while.
//!
//! The publisher is paced by the healthy subscribers, not by a clock: it
//! never gets more than `WINDOW` publications ahead of the slowest of them.
//! So the run gets through only if they are served while the stuck
//! subscriber's queue fills up and after it is cut; a server that made them
//! wait on the stuck one would stall it (each wait has a deadline).
//!
//! The stuck client shrinks its receive buffer so the server's queue fills
//! first. (It cannot usefully read afterwards: Linux keeps the shrunk window
//! clamp, so draining would take minutes.)
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::json;

/// Publications of 1 KB: 8 MB in all, well past the kernel's autotuned send
/// buffer (tcp_wmem max, 4 MB by default) and the 512 KiB queue together.
const N: u64 = 8000;
/// How far the publisher may run ahead of the slowest healthy subscriber.
const WINDOW: u64 = 64;

#[test]
fn slow_subscriber_is_cut_and_nobody_else_waits() {
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
    let slow = Proto::subscribed(&server, "firehose");
    // Small receive buffer so the server's queue, not the kernel, fills up.
    socket2::SockRef::from(&slow.s)
        .set_recv_buffer_size(4096)
        .unwrap();

    // Five healthy subscribers, each reading on its own thread and saying
    // how many publications it has had, in order, none lost.
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..5).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<_> = (0..5)
        .map(|k| {
            let mut c = Proto::subscribed(&server, "firehose");
            let progress = progress.clone();
            thread::spawn(move || {
                for i in 0..N {
                    let p = c.push("firehose", "pub");
                    assert_eq!(
                        p["data"]["i"], i,
                        "healthy subscriber {k}: in order, none lost"
                    );
                    progress[k].store(i + 1, Ordering::Release);
                }
            })
        })
        .collect();

    let (mut publisher, _) = Proto::connected(&server, None);
    let pad = "x".repeat(1000);
    let slowest = || {
        progress
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap()
    };
    for i in 0..N {
        wait_until(
            Duration::from_secs(30),
            &format!(
                "the healthy subscribers to get {} publications",
                (i + 1).saturating_sub(WINDOW)
            ),
            || slowest() + WINDOW > i || readers.iter().any(|r| r.is_finished()),
        );
        let cmd =
            json!({"id": i + 10, "publish": {"channel": "firehose", "data": {"i": i, "pad": pad}}});
        publisher.send_json(&cmd);
        // Take the acknowledgements as they come, a window behind.
        if i >= WINDOW {
            let r = publisher.reply(i - WINDOW + 10);
            assert!(r.get("error").is_none(), "{r}");
        }
    }
    for i in N - WINDOW..N {
        let r = publisher.reply(i + 10);
        assert!(r.get("error").is_none(), "{r}");
    }
    for r in readers {
        r.join().expect("a healthy subscriber failed");
    }

    // The server cut exactly the stuck one with 3008 (that the close frame
    // arrives well-formed is hostile_close.rs's test).
    server.wait_metric("ringcast_slow_consumer_disconnects_total", 1.0);
    drop(slow);
}
