//! The Centrifugo JSON protocol over real sockets against `ringcast serve`.
mod common;

use std::io::Write;
use std::net::TcpStream;

use common::*;
use serde_json::{json, Value};

struct Client {
    s: TcpStream,
    pending: std::collections::VecDeque<Value>,
    id: String,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let (s, _) = ws_connect(server.addr, "/connection/websocket");
        let mut c = Client {
            s,
            pending: Default::default(),
            id: String::new(),
        };
        c.send(r#"{"id":1,"connect":{"name":"test"}}"#);
        let r = c.reply(1);
        assert!(r["connect"]["client"].as_str().unwrap().len() == 36, "{r}");
        c.id = r["connect"]["client"].as_str().unwrap().to_string();
        c
    }

    /// Skips pushes until one of `kind` (join/leave) about client `who`.
    fn next_join_leave(&mut self, kind: &str, who: &str) -> Value {
        loop {
            let v = self.next();
            if v["push"][kind]["info"]["client"] == who {
                return v;
            }
        }
    }

    fn send(&mut self, text: &str) {
        self.s
            .write_all(&client_frame(true, 1, text.as_bytes()))
            .unwrap();
    }

    /// Next JSON object from the server (frames may carry several lines).
    fn next(&mut self) -> Value {
        loop {
            if let Some(v) = self.pending.pop_front() {
                return v;
            }
            let (_, op, p) = read_frame(&mut self.s).expect("frame");
            assert_eq!(op, 1, "expected text, got opcode {op}: {p:?}");
            for line in std::str::from_utf8(&p).unwrap().lines() {
                self.pending.push_back(serde_json::from_str(line).unwrap());
            }
        }
    }

    /// The reply with this id; pushes seen meanwhile are kept for `next`.
    fn reply(&mut self, id: u64) -> Value {
        let mut skipped = vec![];
        loop {
            let v = self.next();
            if v["id"] == id {
                for s in skipped.into_iter().rev() {
                    self.pending.push_front(s);
                }
                return v;
            }
            skipped.push(v);
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
    let mut subs: Vec<Client> = (0..12).map(|_| Client::connect(&server)).collect();
    for c in subs.iter_mut() {
        c.send(r#"{"id":2,"subscribe":{"channel":"news"}}"#);
        let r = c.reply(2);
        assert!(r.get("error").is_none(), "{r}");
    }
    let mut publisher = Client::connect(&server);
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
    let mut c = Client::connect(&server);
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
    let mut c = Client::connect(&server);
    c.send("this is not json");
    assert_eq!(expect_close(&mut c.s), 3501);
    // Commands before connect are a bad request too.
    let (mut s, _) = ws_connect(server.addr, "/connection/websocket");
    s.write_all(&client_frame(
        true,
        1,
        br#"{"id":1,"subscribe":{"channel":"a"}}"#,
    ))
    .unwrap();
    assert_eq!(expect_close(&mut s), 3501);
    // An empty text frame (and one of blank lines) carries no command.
    for empty in [&b""[..], b"\n\r\n \n"] {
        let mut c = Client::connect(&server);
        c.s.write_all(&client_frame(true, 1, empty)).unwrap();
        assert_eq!(expect_close(&mut c.s), 3501, "{empty:?}");
    }
}

#[test]
fn without_insecure_connect_is_refused_with_3500() {
    let server = Server::start("serve", &["--shards", "1"]);
    let (mut s, _) = ws_connect(server.addr, "/connection/websocket");
    s.write_all(&client_frame(true, 1, br#"{"id":1,"connect":{}}"#))
        .unwrap();
    assert_eq!(expect_close(&mut s), 3500);
}

#[test]
fn presence_lists_subscribers_and_forgets_them() {
    let server = serve(&["--join-leave"]);
    let mut a = Client::connect(&server);
    let mut b = Client::connect(&server);
    a.send(r#"{"id":2,"subscribe":{"channel":"room"}}"#);
    a.reply(2);
    b.send(r#"{"id":2,"subscribe":{"channel":"room"}}"#);
    b.reply(2);
    // a sees b join.
    let b_id = b.id.clone();
    let join = a.next_join_leave("join", &b_id);
    assert_eq!(join["push"]["channel"], "room");
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
    a.next_join_leave("leave", &b_id);
    a.send(r#"{"id":5,"presence_stats":{"channel":"room"}}"#);
    assert_eq!(a.reply(5)["presence_stats"]["num_clients"], 1);
}

#[test]
fn unanswered_pings_close_with_3012() {
    let server = serve(&["--ping-interval", "1", "--pong-timeout", "0.3"]);
    let mut quiet = Client::connect(&server);
    let mut polite = Client::connect(&server);
    // polite answers every ping; quiet never does.
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < std::time::Duration::from_millis(2500) {
        polite
            .s
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        if let Ok((_, 1, p)) = read_frame(&mut polite.s) {
            if p == b"{}" {
                pings += 1;
                polite.send("{}");
            }
        }
    }
    assert!(pings >= 2, "pings seen: {pings}");
    assert_eq!(expect_close(&mut quiet.s), 3012);
    polite
        .s
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    polite.send(r#"{"id":9,"ping":{}}"#);
    assert_eq!(polite.reply(9), json!({"id":9,"ping":{}}));
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
    let mut bystander = Client::connect(&server);
    bystander.send(r#"{"id":2,"subscribe":{"channel":"calm"}}"#);
    bystander.reply(2);
    let before = rss_kb(server.child.id());
    let mut c = Client::connect(&server);
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
