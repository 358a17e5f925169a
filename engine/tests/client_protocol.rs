//! The Centrifugo JSON protocol over real sockets against `ringcast serve`.
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn connect(server: &Server) -> Proto {
    Proto::connected(server, None).0
}

/// Skips lines until a `kind` (join/leave) push in `channel` about client
/// `who`.
fn join_leave(c: &mut Proto, channel: &str, kind: &str, who: &str) -> Value {
    loop {
        let v = c.push(channel, kind);
        if v["info"]["client"] == who {
            return v;
        }
    }
}

fn serve(extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2", "--insecure", "--presence"];
    args.extend_from_slice(extra);
    Server::start("serve", &args)
}

#[test]
fn subscribe_publish_across_shards_in_order() {
    let server = serve(&[]);
    let mut subs: Vec<Proto> = (0..12).map(|_| connect(&server)).collect();
    for c in subs.iter_mut() {
        // A client id is a UUID.
        assert_eq!(c.client.len(), 36, "{}", c.client);
        c.send(r#"{"id":2,"subscribe":{"channel":"news"}}"#);
        let r = c.reply(2);
        assert!(r.get("error").is_none(), "{r}");
    }
    let mut publisher = connect(&server);
    for i in 0..50 {
        publisher.send(&format!(
            r#"{{"id":{},"publish":{{"channel":"news","data":{{"n":{i}}}}}}}"#,
            10 + i
        ));
    }
    for i in 0..50 {
        assert_eq!(
            publisher.reply(10 + i),
            json!({"id": 10 + i, "publish": {}})
        );
    }
    for c in subs.iter_mut() {
        let mut last = 0;
        for i in 0..50 {
            let v = c.next();
            let p = &v["push"];
            assert_eq!(p["channel"], "news");
            assert_eq!(p["pub"]["data"], json!({"n": i}));
            let off = p["pub"]["offset"].as_u64().unwrap();
            assert!(off > last, "offsets increase: {off} after {last}");
            last = off;
        }
    }
}

#[test]
fn replies_batched_errors_and_limits() {
    let server = serve(&[]);
    let mut c = connect(&server);
    // Two commands in one frame: both answered.
    c.send("{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{\"id\":3,\"subscribe\":{\"channel\":\"a\"}}");
    let r2 = c.reply(2);
    assert!(r2["subscribe"].is_object(), "{r2}");
    let r3 = c.reply(3);
    assert_eq!(r3["error"]["code"], 105, "{r3}");
    let long = "x".repeat(256);
    c.send(&format!(r#"{{"id":4,"subscribe":{{"channel":"{long}"}}}}"#));
    assert_eq!(c.reply(4)["error"]["code"], 107);
    c.send(r#"{"id":5,"rpc":{"method":"m","data":{}}}"#);
    assert_eq!(c.reply(5)["error"]["code"], 104);
    c.send(r#"{"id":6,"history":{"channel":"a"}}"#);
    assert_eq!(c.reply(6)["error"]["code"], 108);
    for i in 0..127 {
        c.send(&format!(
            r#"{{"id":{},"subscribe":{{"channel":"c{i}"}}}}"#,
            100 + i
        ));
    }
    for i in 0..127 {
        assert!(c.reply(100 + i).get("error").is_none());
    }
    c.send(r#"{"id":300,"subscribe":{"channel":"one-too-many"}}"#);
    assert_eq!(c.reply(300)["error"]["code"], 106);
    c.send(r#"{"id":301,"unsubscribe":{"channel":"a"}}"#);
    assert_eq!(c.reply(301), json!({"id":301,"unsubscribe":{}}));
}

#[test]
fn junk_json_disconnects_with_3501() {
    let server = serve(&[]);
    let mut c = connect(&server);
    c.send("this is not json");
    c.expect_closed_with(3501);
    // Commands before connect are a bad request too.
    let mut c = Proto::open(&server);
    c.send(r#"{"id":1,"subscribe":{"channel":"a"}}"#);
    c.expect_closed_with(3501);
    // An empty text frame (and one of blank lines) carries no command.
    for empty in ["", "\n\r\n \n"] {
        let mut c = connect(&server);
        c.send(empty);
        let (code, lines) = c.close_code();
        assert_eq!(code, 3501, "{empty:?}: lines before the close: {lines:?}");
    }
}

#[test]
fn without_insecure_connect_is_refused_with_3500() {
    let server = Server::start("serve", &["--shards", "1"]);
    let mut c = Proto::open(&server);
    c.send(r#"{"id":1,"connect":{}}"#);
    c.expect_closed_with(3500);
}

#[test]
fn presence_lists_subscribers_and_forgets_them() {
    let server = serve(&["--join-leave"]);
    let mut a = connect(&server);
    let mut b = connect(&server);
    a.send(r#"{"id":2,"subscribe":{"channel":"room"}}"#);
    a.reply(2);
    b.send(r#"{"id":2,"subscribe":{"channel":"room"}}"#);
    b.reply(2);
    // a sees b join.
    let b_id = b.client.clone();
    join_leave(&mut a, "room", "join", &b_id);
    a.send(r#"{"id":3,"presence":{"channel":"room"}}"#);
    let p = a.reply(3);
    assert_eq!(
        p["presence"]["presence"].as_object().unwrap().len(),
        2,
        "{p}"
    );
    a.send(r#"{"id":4,"presence_stats":{"channel":"room"}}"#);
    assert_eq!(a.reply(4)["presence_stats"]["num_clients"], 2);
    drop(b);
    join_leave(&mut a, "room", "leave", &b_id);
    a.send(r#"{"id":5,"presence_stats":{"channel":"room"}}"#);
    assert_eq!(a.reply(5)["presence_stats"]["num_clients"], 1);
}

#[test]
fn unanswered_pings_close_with_3012() {
    let server = serve(&["--ping-interval", "1", "--pong-timeout", "0.3"]);
    let mut quiet = connect(&server);
    quiet.auto_pong = false;
    let mut polite = connect(&server);
    // polite answers every ping; quiet never does. A second ping means
    // polite outlived the pong check after the first.
    polite.pump_until(Duration::from_secs(20), "two server pings", |c| {
        c.pings >= 2
    });
    // quiet got one ping, left it unanswered, and was closed at that pong
    // check: no sweep pings a closing connection.
    let (code, lines) = quiet.close_code();
    assert_eq!(code, 3012, "lines before the close: {lines:?}");
    assert_eq!(lines, [json!({})], "one ping, then the close");
    polite.send(r#"{"id":9,"ping":{}}"#);
    assert_eq!(polite.reply(9), json!({"id":9,"ping":{}}));
}

#[test]
fn pings_are_spread_over_the_interval_not_sent_all_at_once() {
    // One shard, 20 clients, a ping every second: each client gets its
    // pings a second apart, but the shard pings them in slices over the
    // second, never all in the same pass.
    let server = Server::start(
        "serve",
        &["--shards", "1", "--insecure", "--ping-interval", "1"],
    );
    let clients: Vec<Proto> = (0..20).map(|_| connect(&server)).collect();
    let times: Vec<(std::time::Instant, std::time::Instant)> = std::thread::scope(|scope| {
        let runs: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                scope.spawn(move || {
                    c.pump_until(Duration::from_secs(10), "a first ping", |c| c.pings >= 1);
                    let first = std::time::Instant::now();
                    c.pump_until(Duration::from_secs(10), "a second ping", |c| c.pings >= 2);
                    (first, std::time::Instant::now())
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (first, second) in &times {
        let gap = second.duration_since(*first);
        assert!(
            gap >= Duration::from_millis(700) && gap <= Duration::from_millis(1500),
            "a client's pings {gap:?} apart, not the ping interval"
        );
    }
    let firsts: Vec<_> = times.iter().map(|t| t.0).collect();
    let spread = firsts
        .iter()
        .max()
        .unwrap()
        .duration_since(*firsts.iter().min().unwrap());
    assert!(
        spread >= Duration::from_millis(300),
        "the 20 first pings came within {spread:?}: one burst, not slices"
    );
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ten_thousand_subscribes_on_one_connection_are_bounded() {
    let server = serve(&[]);
    let mut bystander = connect(&server);
    bystander.send(r#"{"id":2,"subscribe":{"channel":"calm"}}"#);
    bystander.reply(2);
    let before = rss_kb(server.child.id());
    let mut c = connect(&server);
    // 10,000 subscribe commands, 100 per frame.
    for batch in 0..100 {
        let frame: Vec<String> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                format!(r#"{{"id":{},"subscribe":{{"channel":"ch{n}"}}}}"#, 10 + n)
            })
            .collect();
        c.send(&frame.join("\n"));
    }
    let (mut ok, mut limited) = (0, 0);
    for n in 0..10_000u64 {
        let r = c.reply(10 + n);
        match r["error"]["code"].as_u64() {
            None => ok += 1,
            Some(106) => limited += 1,
            Some(other) => panic!("unexpected error {other}: {r}"),
        }
    }
    assert_eq!((ok, limited), (128, 9872));
    // The connection is still usable; so is everyone else's.
    c.send(r#"{"id":99999,"ping":{}}"#);
    assert_eq!(c.reply(99999), json!({"id":99999,"ping":{}}));
    bystander.send(r#"{"id":3,"ping":{}}"#);
    assert_eq!(bystander.reply(3), json!({"id":3,"ping":{}}));
    let grown = rss_kb(server.child.id()).saturating_sub(before);
    assert!(grown < 16 * 1024, "server RSS grew by {grown} kB");
}
