//! Namespaces and their permissions, history and recovery, user-limited
//! channels and the command rate limit, end to end against
//! `ringcast serve --config FILE` with JWT-authenticated users.
mod common;

use common::*;
use serde_json::{json, Value};

const SECRET: &str = "namespaces-secret-0123456789abcdef";

const CONFIG: &str = r#"
[auth]
token_hmac_secret_key = "namespaces-secret-0123456789abcdef"

[namespace.chat]
allow_subscribe_for_client = true
allow_publish_for_client = true
presence = true
join_leave = true
history_size = 5
history_ttl = 60
allow_history_for_client = true

[namespace.ro]
allow_subscribe_for_client = true

[namespace.dm]
allow_user_limited_channels = true
"#;

fn serve() -> Server {
    Server::with_config(CONFIG, &["--shards", "2"])
}

fn user(server: &Server, name: &str) -> Proto {
    let t = hs256(SECRET, &json!({ "sub": name }));
    Proto::connected(server, Some(&t)).0
}

fn code(r: &Value) -> Option<u64> {
    r["error"]["code"].as_u64()
}

fn publish(c: &mut Proto, channel: &str, data: Value) -> Value {
    c.call("publish", json!({"channel": channel, "data": data}))
}

/// Offsets of a list of publications.
fn offsets(pubs: &Value) -> Vec<u64> {
    pubs.as_array()
        .unwrap_or_else(|| panic!("not a list: {pubs}"))
        .iter()
        .map(|p| p["offset"].as_u64().expect("offset"))
        .collect()
}

#[test]
fn unknown_namespace_is_102_everywhere() {
    let server = serve();
    let mut c = user(&server, "alice");
    for (method, body) in [
        ("subscribe", json!({"channel": "nope:x"})),
        ("publish", json!({"channel": "nope:x", "data": {}})),
        ("history", json!({"channel": "nope:x", "limit": -1})),
        ("presence", json!({"channel": "nope:x"})),
        ("presence_stats", json!({"channel": "nope:x"})),
    ] {
        let r = c.call(method, body);
        assert_eq!(code(&r), Some(102), "{method}: {r}");
    }
    c.assert_alive();
}

#[test]
fn read_only_namespace_refuses_publish() {
    let server = serve();
    let mut c = user(&server, "alice");
    let r = c.call("subscribe", json!({"channel": "ro:news"}));
    assert!(r["subscribe"].is_object(), "{r}");
    let r = publish(&mut c, "ro:news", json!({"text": "hi"}));
    assert_eq!(code(&r), Some(103), "{r}");
    // No history, no presence there.
    let r = c.call("history", json!({"channel": "ro:news", "limit": -1}));
    assert_eq!(code(&r), Some(108), "{r}");
    let r = c.call("presence", json!({"channel": "ro:news"}));
    assert_eq!(code(&r), Some(108), "{r}");
    // Channels outside namespaces: no client subscribe or publish at all.
    let r = c.call("subscribe", json!({"channel": "plain"}));
    assert_eq!(code(&r), Some(103), "{r}");
    let r = publish(&mut c, "plain", json!(1));
    assert_eq!(code(&r), Some(103), "{r}");
}

#[test]
fn chat_publish_join_and_presence() {
    let server = serve();
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let r = alice.call("subscribe", json!({"channel": "chat:room"}));
    assert!(r["subscribe"].is_object(), "{r}");
    let r = bob.call("subscribe", json!({"channel": "chat:room"}));
    assert!(r["subscribe"].is_object(), "{r}");
    // alice sees bob join (she may see her own join first).
    let bob_info = json!({"user": "bob", "client": bob.client});
    loop {
        let j = alice.push("chat:room", "join");
        if j["info"]["client"] == bob.client.as_str() {
            assert_eq!(j["info"], bob_info);
            break;
        }
    }
    let r = publish(&mut bob, "chat:room", json!({"text": "hello"}));
    assert_eq!(r, json!({"id": r["id"], "publish": {}}));
    let p = alice.push("chat:room", "pub");
    assert_eq!(p["data"], json!({"text": "hello"}));
    assert_eq!(p["info"], bob_info, "{p}");
    assert_eq!(p["offset"], 1, "{p}");
    let r = alice.call("presence_stats", json!({"channel": "chat:room"}));
    assert_eq!(
        r["presence_stats"],
        json!({"num_clients": 2, "num_users": 2})
    );
    drop(bob);
    let l = alice.push("chat:room", "leave");
    assert_eq!(l["info"], bob_info);
}

#[test]
fn history_keeps_the_last_five_with_epoch_and_offset() {
    let server = serve();
    let mut c = user(&server, "alice");
    // Nobody subscribed: the stream lives on in its history.
    for i in 1..=8 {
        let r = publish(&mut c, "chat:h", json!({"n": i}));
        assert!(r["publish"].is_object(), "{r}");
    }
    let r = c.call("history", json!({"channel": "chat:h", "limit": -1}));
    let h = &r["history"];
    assert_eq!(offsets(&h["publications"]), [4, 5, 6, 7, 8], "{r}");
    assert_eq!(h["publications"][0]["data"], json!({"n": 4}));
    assert_eq!(
        h["publications"][0]["info"],
        json!({"user": "alice", "client": c.client})
    );
    assert_eq!(h["offset"], 8, "{r}");
    let epoch = h["epoch"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert!(!epoch.is_empty());

    // limit 0: only the stream position (Centrifugo's semantics).
    let r = c.call("history", json!({"channel": "chat:h", "limit": 0}));
    assert!(
        r["history"]["publications"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{r}"
    );
    assert_eq!(r["history"]["offset"], 8);
    assert_eq!(r["history"]["epoch"], epoch.as_str());
    // since + limit, and reverse.
    let r = c.call(
        "history",
        json!({"channel": "chat:h", "limit": 10, "since": {"offset": 6, "epoch": epoch}}),
    );
    assert_eq!(offsets(&r["history"]["publications"]), [7, 8], "{r}");
    let r = c.call(
        "history",
        json!({"channel": "chat:h", "limit": 2, "reverse": true}),
    );
    assert_eq!(offsets(&r["history"]["publications"]), [8, 7], "{r}");
    // since in another epoch: unrecoverable position.
    let r = c.call(
        "history",
        json!({"channel": "chat:h", "limit": -1, "since": {"offset": 6, "epoch": "not-this-one"}}),
    );
    assert_eq!(code(&r), Some(112), "{r}");
}

#[test]
fn user_limited_channels_admit_only_listed_users() {
    let server = serve();
    for (name, allowed) in [("alice", true), ("bob", true), ("carol", false)] {
        let mut c = user(&server, name);
        let r = c.call("subscribe", json!({"channel": "dm:dialog#alice,bob"}));
        if allowed {
            assert!(r["subscribe"].is_object(), "{name}: {r}");
        } else {
            assert_eq!(code(&r), Some(103), "{name}: {r}");
        }
    }
    // The boundary is only honoured where the namespace allows it.
    let mut alice = user(&server, "alice");
    let r = alice.call("subscribe", json!({"channel": "ro:dialog#bob"}));
    assert!(r["subscribe"].is_object(), "ro: allows anyone anyway: {r}");
    let r = alice.call("subscribe", json!({"channel": "plain#alice"}));
    assert_eq!(code(&r), Some(103), "{r}");
}

#[test]
fn a_burst_over_commands_per_second_closes_with_3013() {
    let config = format!("{CONFIG}\n[client]\ncommands_per_second = 5\n");
    let server = Server::with_config(&config, &["--shards", "1"]);
    let mut c = user(&server, "alice");
    // Well under the limit (connect + 2).
    c.assert_alive();
    c.assert_alive();
    let burst: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"id":{},"ping":{{}}}}"#, 1000 + i))
        .collect();
    c.send(&burst.join("\n"));
    let (code, lines) = c.close_code();
    assert_eq!(code, 3013, "lines before the close: {lines:?}");
    assert!(lines.len() < 20, "{} replies before the close", lines.len());
}

/// Connects as `name` and subscribes to `channel` with `extra` fields.
fn subscribe_as(server: &Server, name: &str, channel: &str, extra: Value) -> (Proto, Value) {
    let mut c = user(server, name);
    let mut req = json!({ "channel": channel });
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    let r = c.call("subscribe", req);
    assert!(r["subscribe"].is_object(), "{r}");
    (c, r["subscribe"].clone())
}

#[test]
fn recovery_returns_exactly_the_missed_publications() {
    let server = serve();
    let ch = "chat:rec";
    let mut publisher = user(&server, "bob");
    publish(&mut publisher, ch, json!({"n": 1}));

    let (mut alice, sub) = subscribe_as(&server, "alice", ch, json!({"recoverable": true}));
    assert_eq!(sub["recoverable"], true, "{sub}");
    assert_eq!(sub["offset"], 1, "{sub}");
    let epoch = sub["epoch"].as_str().unwrap().to_string();
    for n in 2..=3 {
        publish(&mut publisher, ch, json!({ "n": n }));
    }
    assert_eq!(alice.push(ch, "pub")["offset"], 2);
    assert_eq!(alice.push(ch, "pub")["offset"], 3);
    // alice goes away at offset 3; two publications happen meanwhile.
    drop(alice);
    for n in 4..=5 {
        publish(&mut publisher, ch, json!({ "n": n }));
    }
    let (mut alice, sub) = subscribe_as(
        &server,
        "alice",
        ch,
        json!({"recover": true, "epoch": epoch, "offset": 3}),
    );
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(sub["was_recovering"], true, "{sub}");
    assert_eq!(sub["epoch"], epoch.as_str(), "{sub}");
    assert_eq!(sub["offset"], 5, "{sub}");
    assert_eq!(offsets(&sub["publications"]), [4, 5], "{sub}");
    assert_eq!(sub["publications"][0]["data"], json!({"n": 4}));
    assert_eq!(sub["publications"][1]["info"]["user"], "bob");
    // Nothing recovered is delivered twice: the next live one is 6.
    publish(&mut publisher, ch, json!({"n": 6}));
    assert_eq!(alice.push(ch, "pub")["offset"], 6);
    drop(alice);

    // Recovering at the top: recovered, nothing to send.
    let (_, sub) = subscribe_as(
        &server,
        "alice",
        ch,
        json!({"recover": true, "epoch": epoch, "offset": 6}),
    );
    assert_eq!(sub["recovered"], true, "{sub}");
    assert!(
        sub["publications"].as_array().is_none_or(|a| a.is_empty()),
        "{sub}"
    );

    // The window (5) moved on past offset 6: 7..=13 published, 9..=13 kept.
    for n in 7..=13 {
        publish(&mut publisher, ch, json!({ "n": n }));
    }
    let (_, sub) = subscribe_as(
        &server,
        "alice",
        ch,
        json!({"recover": true, "epoch": epoch, "offset": 6}),
    );
    assert_eq!(sub["recovered"], false, "{sub}");
    assert_eq!(sub["offset"], 13, "{sub}");
    // Right at the window's edge it still works.
    let (_, sub) = subscribe_as(
        &server,
        "alice",
        ch,
        json!({"recover": true, "epoch": epoch, "offset": 8}),
    );
    assert_eq!(sub["recovered"], true, "{sub}");
    assert_eq!(offsets(&sub["publications"]), [9, 10, 11, 12, 13]);

    // Another epoch: not recovered.
    let (_, sub) = subscribe_as(
        &server,
        "alice",
        ch,
        json!({"recover": true, "epoch": "another1", "offset": 12}),
    );
    assert_eq!(sub["recovered"], false, "{sub}");
    assert_eq!(sub["epoch"], epoch.as_str(), "{sub}");
}
