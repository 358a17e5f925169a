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
//! of the pass. The observer then gets both publications, in order. Which
//! socket got its data first is told by the kernel's receive timestamps
//! (`Stamped`), not by when the test's threads woke up.
mod common;

use std::thread;

use common::*;
use serde_json::{json, Value};

const SUBSCRIBERS: usize = 4000;

fn publish_cmd(id: u32, n: u32) -> String {
    json!({"id": id, "publish": {"channel": "lp", "data": {"n": n}}}).to_string()
}

/// Reads lines until the reply with `id`; it must not be an error.
fn stamped_reply(s: &mut Stamped, id: u32) -> StampedLine {
    loop {
        let l = s.line();
        if l.v["id"] == id {
            assert!(l.v.get("error").is_none(), "publish refused: {}", l.v);
            return l;
        }
    }
}

#[test]
fn ack_leaves_during_a_long_flush_pass() {
    let server = Server::start("serve", &["--insecure", "--shards", "1"]);
    // Held open, never read: two small frames each fit their socket buffers.
    let _crowd: Vec<Proto> = (0..SUBSCRIBERS)
        .map(|_| Proto::subscribed(&server, "lp"))
        .collect();
    let mut observer = Stamped::new(Proto::subscribed(&server, "lp").into_stream());
    let mut publisher = Stamped::new(Proto::connected(&server, None).0.into_stream());

    // The observer reads as the publications come (so no later data merges
    // with them and moves their stamps).
    let watcher = thread::spawn(move || [observer.line(), observer.line()]);

    publisher.send(&publish_cmd(10, 1));
    stamped_reply(&mut publisher, 10);
    publisher.send(&publish_cmd(11, 2));
    let second_ack = stamped_reply(&mut publisher, 11);

    let [first, second] = watcher.join().unwrap();
    let n = |l: &StampedLine| l.v["push"]["pub"]["data"]["n"].clone();
    assert_eq!(
        [n(&first), n(&second)],
        [json!(1), json!(2)],
        "the observer gets both publications in order: {first:?} {second:?}"
    );
    assert_eq!(first.v["push"]["channel"], "lp", "{first:?}");
    eprintln!(
        "second ack {:?} before the first publication reached the last subscriber",
        first.first.saturating_sub(second_ack.last)
    );
    assert!(
        second_ack.last < first.first,
        "the second publication's ack came {:?} after the first publication reached \
         the last subscriber: acks wait for the end of the flush pass",
        second_ack.last - first.first
    );
}

/// Publishes `n` publications in one burst (so a pass has several frames
/// for every subscriber), waits for their acknowledgements, and checks the
/// observer gets all, in order.
fn publish_and_observe(publisher: &mut Proto, observer: &mut Proto, n: u32) {
    for i in 1..=n {
        publisher.send(&publish_cmd(100 + i, i));
    }
    for i in 1..=n {
        let r: Value = publisher.reply(u64::from(100 + i));
        assert!(r.get("error").is_none(), "publish refused: {r}");
    }
    for i in 1..=n {
        let p = observer.push("lp", "pub");
        assert_eq!(p["data"]["n"], i, "publication {i} out of order: {p}");
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
        let _crowd: Vec<Proto> = (0..4200)
            .map(|_| Proto::subscribed(&server, "lp"))
            .collect();
        let mut observer = Proto::subscribed(&server, "lp");
        let (mut publisher, _) = Proto::connected(&server, None);
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
