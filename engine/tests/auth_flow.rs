//! JWT authentication end to end: `ringcast serve --config FILE` with an HMAC
//! secret, real tokens made with jsonwebtoken, the raw JSON protocol over a
//! real socket. What the server answers follows Centrifugo (see the table in
//! engine/src/auth/error.rs): connect with an expired token → error 109 and
//! the connection stays; any other bad or missing token → close 3500; an
//! expired connection → close 3005.
mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "auth-flow-secret-0123456789abcdef";
const API_KEY: &str = "auth-flow-api-key";

const RSA_PRIVATE: &str = include_str!("keys/rsa_private.pem");

/// `pres:` keeps presence anyone connected may read; `private:` needs a
/// subscription token; channels outside namespaces are closed to clients.
fn config(extra: &str) -> String {
    format!(
        r#"
[auth]
token_hmac_secret_key = "{SECRET}"

[api]
key = "{API_KEY}"

[namespace.pres]
presence = true
allow_presence_for_client = true
allow_subscribe_for_client = true

[namespace.private]
presence = true

{extra}
"#
    )
}

fn serve(extra: &str) -> Server {
    Server::with_config(&config(extra), &["--shards", "2"])
}

fn token(claims: Value) -> String {
    hs256(SECRET, &claims)
}

fn subscribe(c: &mut Proto, channel: &str, token: Option<&str>) -> Value {
    let mut req = json!({ "channel": channel });
    if let Some(t) = token {
        req["token"] = t.into();
    }
    c.call("subscribe", req)
}

fn error_code(r: &Value) -> Option<u64> {
    r["error"]["code"].as_u64()
}

#[test]
fn valid_token_connects_and_presence_shows_user_and_conn_info() {
    let server = serve("");
    let t = token(json!({"sub": "alice", "info": {"name": "Alice", "tags": [1, 2]}}));
    let (mut alice, connect) = Proto::connected(&server, Some(&t));
    assert_eq!(alice.client.len(), 36, "{connect}");
    assert!(
        connect.get("expires").is_none(),
        "no exp: no expiry: {connect}"
    );
    let r = subscribe(&mut alice, "pres:room", None);
    assert!(r["subscribe"].is_object(), "{r}");

    // Someone else, not subscribed, may read presence in `pres:`.
    let (mut bob, _) = Proto::connected(&server, Some(&token(json!({"sub": "bob"}))));
    let r = bob.call("presence", json!({"channel": "pres:room"}));
    let presence = r["presence"]["presence"]
        .as_object()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(presence.len(), 1, "{r}");
    assert_eq!(
        presence[&alice.client],
        json!({"user": "alice", "client": alice.client, "conn_info": {"name": "Alice", "tags": [1, 2]}})
    );
    let r = bob.call("presence_stats", json!({"channel": "pres:room"}));
    assert_eq!(
        r["presence_stats"],
        json!({"num_clients": 1, "num_users": 1})
    );
    // `private:` keeps presence but does not let outsiders read it.
    let r = bob.call("presence", json!({"channel": "private:x"}));
    assert_eq!(error_code(&r), Some(103), "{r}");
}

#[test]
fn expired_connect_token_is_error_109_and_the_connection_stays() {
    let server = serve("");
    let mut c = Proto::open(&server);
    let now = unix_now();
    let expired = token(json!({"sub": "alice", "exp": now - 10, "iat": now - 100}));
    let r = c.connect(Some(&expired));
    assert_eq!(
        r,
        json!({"id": 1, "error": {"code": 109, "message": "token expired"}})
    );
    // The SDK fetches a fresh token and connects again.
    let fresh = token(json!({"sub": "alice", "exp": now + 3600}));
    let r = c.connect(Some(&fresh));
    assert!(r["connect"]["client"].is_string(), "{r}");
    c.assert_alive();
}

#[test]
fn bad_or_missing_tokens_close_with_3500() {
    let server = serve("");
    let claims = json!({"sub": "alice", "exp": unix_now() + 3600});
    let wrong_secret = hs256("another-secret", &claims);
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rs256 = sign_jwt(
        jsonwebtoken::Algorithm::RS256,
        &jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        &claims,
    );
    // A well-signed token with its payload swapped for another user's.
    let good = token(claims.clone());
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(json!({"sub": "admin"}).to_string());
    let tampered = parts.join(".");
    // A subscription token (with a `channel` claim) used to connect.
    let sub_token = token(json!({"sub": "alice", "channel": "private:x"}));
    let cases = [
        ("wrong signature", Some(wrong_secret.as_str())),
        ("alg none", Some(alg_none.as_str())),
        ("RS256 with only HMAC configured", Some(rs256.as_str())),
        ("tampered payload", Some(tampered.as_str())),
        ("subscription token", Some(sub_token.as_str())),
        ("not a JWT", Some("not-a-token")),
        ("no token", None),
        ("empty token", Some("")),
    ];
    for (what, t) in cases {
        let mut c = Proto::open(&server);
        let req = match t {
            Some(t) => json!({"id": 1, "connect": {"token": t}}),
            None => json!({"id": 1, "connect": {}}),
        };
        c.send_json(&req);
        let (code, lines) = c.close_code();
        assert_eq!(code, 3500, "{what}: lines before the close: {lines:?}");
        assert!(lines.is_empty(), "{what}: {lines:?}");
    }
}

#[test]
fn insecure_client_mode_connects_without_a_token_anonymously() {
    let server = serve("[client]\ninsecure = true\n");
    let (mut anon, connect) = Proto::connected(&server, None);
    assert!(connect.get("expires").is_none(), "{connect}");
    // Insecure mode lets the client subscribe anywhere, even `private:`.
    let r = subscribe(&mut anon, "private:x", None);
    assert!(r["subscribe"].is_object(), "{r}");
    let r = anon.call("presence", json!({"channel": "private:x"}));
    assert_eq!(
        r["presence"]["presence"][&anon.client],
        json!({"user": "", "client": anon.client}),
        "{r}"
    );
    // A token is still honoured: the user is the token's.
    let (mut alice, _) = Proto::connected(&server, Some(&token(json!({"sub": "alice"}))));
    subscribe(&mut alice, "private:x", None);
    let r = alice.call("presence", json!({"channel": "private:x"}));
    assert_eq!(r["presence"]["presence"][&alice.client]["user"], "alice");
}

/// Server with a 1 s ping sweep (which is also when expiry is checked).
fn serve_fast_sweep() -> Server {
    Server::with_config(
        &config(""),
        &[
            "--shards",
            "2",
            "--ping-interval",
            "1",
            "--pong-timeout",
            "0.3",
        ],
    )
}

#[test]
fn refresh_before_expiry_keeps_the_connection() {
    let server = serve_fast_sweep();
    let exp = unix_now() + 2;
    let (mut c, connect) =
        Proto::connected(&server, Some(&token(json!({"sub": "alice", "exp": exp}))));
    assert_eq!(connect["expires"], true, "{connect}");
    let ttl = connect["ttl"]
        .as_u64()
        .unwrap_or_else(|| panic!("{connect}"));
    assert!((1..=2).contains(&ttl), "ttl {ttl}: {connect}");

    let exp2 = unix_now() + 30;
    let r = c.call(
        "refresh",
        json!({"token": token(json!({"sub": "alice", "exp": exp2}))}),
    );
    let refresh = &r["refresh"];
    assert_eq!(refresh["client"], c.client.as_str(), "{r}");
    assert_eq!(refresh["expires"], true, "{r}");
    let ttl = refresh["ttl"].as_u64().unwrap_or_else(|| panic!("{r}"));
    assert!((28..=30).contains(&ttl), "ttl {ttl}: {r}");

    // Let the first token's exp pass (that is what the test is about),
    // answering pings meanwhile.
    c.pump_until(Duration::from_secs(10), "the first exp to pass", |_| {
        unix_now() >= exp
    });
    // Then a sweep past it keeps the connection: see `sweep_after_now`.
    c.keep_pings = true;
    sweep_after_now(&mut c);
    let v = c.next();
    assert_eq!(v, json!({}), "a sweep after exp pings instead of closing");
    c.assert_alive();
}

/// Sends a `ping` command and reads up to its reply. A sweep (pings and the
/// expiry check) runs on the connection's shard between commands, and one
/// connection's output stays in order, so a ping read after this reply
/// comes from a sweep that began after the command was sent, with a clock
/// at least `unix_now()` of then. The connection keeps its pings
/// (`keep_pings`), so what follows the reply is in arrival order.
fn sweep_after_now(c: &mut Proto) {
    assert!(c.keep_pings);
    c.send_json(&json!({"id": 50, "ping": {}}));
    loop {
        if c.next()["id"] == 50 {
            return;
        }
    }
}

#[test]
fn without_refresh_an_expiring_connection_closes_with_3005() {
    let server = serve_fast_sweep();
    let exp = unix_now() + 2;
    let (mut c, connect) =
        Proto::connected(&server, Some(&token(json!({"sub": "alice", "exp": exp}))));
    assert_eq!(connect["expires"], true, "{connect}");
    // Pings are answered, so only the expiry can end it.
    c.keep_pings = true;
    c.pump_until(Duration::from_secs(10), "exp to pass", |_| {
        unix_now() >= exp
    });
    if c.closed().is_none() {
        // The first sweep after now closes it: no ping after the reply to a
        // command sent now (see `sweep_after_now`). The close may be on its
        // way already, so a failed write is fine.
        let _ = c.try_send(&json!({"id": 50, "ping": {}}).to_string());
    }
    let (code, lines) = c.close_code();
    let at = unix_now_f64();
    assert_eq!(code, 3005, "lines before the close: {lines:?}");
    assert!(
        at >= exp as f64 - 0.05,
        "closed {:.2} s before the token's exp",
        exp as f64 - at
    );
    if let Some(reply) = lines.iter().position(|v| v["id"] == 50) {
        assert!(
            !lines[reply..].contains(&json!({})),
            "a sweep after exp pinged instead of closing: {lines:?}"
        );
    }
}

#[test]
fn refresh_with_a_token_for_another_user_closes_with_3500() {
    let server = serve("");
    let now = unix_now();
    let (mut c, _) = Proto::connected(
        &server,
        Some(&token(json!({"sub": "alice", "exp": now + 60}))),
    );
    c.send_json(
        &json!({"id": 2, "refresh": {"token": token(json!({"sub": "mallory", "exp": now + 60}))}}),
    );
    c.expect_closed_with(3500);

    // Refresh with an expired token: 3005 (reconnect and fetch a new one).
    let (mut c, _) = Proto::connected(
        &server,
        Some(&token(json!({"sub": "alice", "exp": now + 60}))),
    );
    c.send_json(
        &json!({"id": 2, "refresh": {"token": token(json!({"sub": "alice", "exp": now - 5}))}}),
    );
    c.expect_closed_with(3005);

    // Refresh with a forged token: 3500.
    let (mut c, _) = Proto::connected(&server, Some(&token(json!({"sub": "alice"}))));
    c.send_json(&json!({"id": 2, "refresh": {"token": hs256("forged", &json!({"sub": "alice"}))}}));
    c.expect_closed_with(3500);
}

#[test]
fn subscription_tokens_for_private_channels() {
    let server = serve("");
    let alice_token = token(json!({"sub": "alice"}));
    let (mut alice, _) = Proto::connected(&server, Some(&alice_token));

    // No allow_subscribe_for_client: a token is required.
    let r = subscribe(&mut alice, "private:x", None);
    assert_eq!(error_code(&r), Some(103), "{r}");

    let now = unix_now();
    let sub = token(json!({"sub": "alice", "channel": "private:x", "info": {"role": "owner"}}));
    let r = subscribe(&mut alice, "private:x", Some(&sub));
    assert!(r["subscribe"].is_object(), "{r}");
    // The token's info is the subscriber's chan_info.
    let r = alice.call("presence", json!({"channel": "private:x"}));
    assert_eq!(
        r["presence"]["presence"][&alice.client],
        json!({"user": "alice", "client": alice.client, "chan_info": {"role": "owner"}}),
        "{r}"
    );

    // sub_refresh with a fresh token for the same channel.
    let fresh = token(json!({"sub": "alice", "channel": "private:x", "exp": now + 60}));
    let r = alice.call(
        "sub_refresh",
        json!({"channel": "private:x", "token": fresh}),
    );
    let ttl = r["sub_refresh"]["ttl"]
        .as_u64()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(r["sub_refresh"]["expires"], true, "{r}");
    assert!((58..=60).contains(&ttl), "{r}");

    // An expired subscription token: error 109, the connection stays.
    let expired = token(json!({"sub": "alice", "channel": "private:y", "exp": now - 5}));
    let r = subscribe(&mut alice, "private:y", Some(&expired));
    assert_eq!(error_code(&r), Some(109), "{r}");
    // A forged one: error 103, the connection stays.
    let forged = hs256("forged", &json!({"sub": "alice", "channel": "private:y"}));
    let r = subscribe(&mut alice, "private:y", Some(&forged));
    assert_eq!(error_code(&r), Some(103), "{r}");
    alice.assert_alive();

    // A valid token for another channel: close 3500.
    alice.send_json(&json!({"id": 50, "subscribe": {"channel": "private:y", "token": sub}}));
    alice.expect_closed_with(3500);

    // A valid token for another user: close 3500.
    let (mut bob, _) = Proto::connected(&server, Some(&token(json!({"sub": "bob"}))));
    bob.send_json(&json!({"id": 2, "subscribe": {"channel": "private:x", "token": sub}}));
    bob.expect_closed_with(3500);
}

#[test]
fn subscription_token_bound_to_a_client() {
    let server = serve("");
    let t = token(json!({"sub": "alice"}));
    let (mut a, _) = Proto::connected(&server, Some(&t));
    let mine = token(json!({"sub": "alice", "channel": "private:c", "client": a.client}));
    let r = subscribe(&mut a, "private:c", Some(&mine));
    assert!(r["subscribe"].is_object(), "{r}");
    // The same user on another connection cannot use it.
    let (mut other, _) = Proto::connected(&server, Some(&t));
    other.send_json(&json!({"id": 2, "subscribe": {"channel": "private:c", "token": mine}}));
    other.expect_closed_with(3500);
}

#[test]
fn expiring_subscription_token_reply_has_expires_and_ttl() {
    let server = serve("");
    let (mut alice, _) = Proto::connected(&server, Some(&token(json!({"sub": "alice"}))));
    let exp = unix_now() + 60;
    let sub = token(json!({"sub": "alice", "channel": "private:x", "exp": exp}));
    let r = subscribe(&mut alice, "private:x", Some(&sub));
    assert!(r["subscribe"].is_object(), "{r}");
    // Centrifugo's SubscribeResult: expires + ttl when the token expires.
    assert_eq!(r["subscribe"]["expires"], true, "{r}");
    let ttl = r["subscribe"]["ttl"].as_u64().unwrap_or(0);
    assert!((58..=60).contains(&ttl), "{r}");
}

#[test]
fn token_channels_are_server_side_subscriptions() {
    let server = serve("");
    let t = token(json!({
        "sub": "alice",
        "channels": ["news", "private:srv", "nope:unknown-namespace"],
    }));
    let (mut c, connect) = Proto::connected(&server, Some(&t));
    // Reported in the connect reply's `subs` (no client permission needed:
    // the token grants them), the unknown namespace left out.
    let subs = connect["subs"]
        .as_object()
        .unwrap_or_else(|| panic!("{connect}"));
    let mut announced: Vec<&String> = subs.keys().collect();
    announced.sort();
    assert_eq!(announced, ["news", "private:srv"], "{connect}");
    for sub in subs.values() {
        assert!(sub["epoch"].is_string(), "{connect}");
        assert_eq!(sub["offset"], 0, "{connect}");
    }

    for i in 1..=3 {
        let r = server.api(
            API_KEY,
            "publish",
            &json!({"channel": "news", "data": {"n": i}}),
        );
        assert_eq!(r["result"]["offset"], i, "{r}");
    }
    let r = server.api(
        API_KEY,
        "publish",
        &json!({"channel": "private:srv", "data": "hello"}),
    );
    assert!(r["result"]["epoch"].is_string(), "{r}");
    for i in 1..=3 {
        let p = c.push("news", "pub");
        assert_eq!(p, json!({"data": {"n": i}, "offset": i}));
    }
    assert_eq!(
        c.push("private:srv", "pub"),
        json!({"data": "hello", "offset": 1})
    );
    // Nothing ever came for the unknown namespace.
    c.assert_alive();
    assert!(
        c.pending
            .iter()
            .all(|v| v["push"]["channel"] != "nope:unknown-namespace"),
        "{:?}",
        c.pending
    );
    // A server-side subscription counts as subscribed: presence is readable.
    let r = c.call("presence_stats", json!({"channel": "private:srv"}));
    assert_eq!(r["presence_stats"]["num_clients"], 1, "{r}");
}

#[test]
fn token_subs_claim_info_becomes_chan_info() {
    let server = serve("");
    let t = token(json!({"sub": "alice", "subs": {"private:s": {"info": {"seat": 7}}}}));
    let (mut c, connect) = Proto::connected(&server, Some(&t));
    let sub = &connect["subs"]["private:s"];
    assert!(sub["epoch"].is_string(), "{connect}");
    let r = c.call("presence", json!({"channel": "private:s"}));
    assert_eq!(
        r["presence"]["presence"][&c.client],
        json!({"user": "alice", "client": c.client, "chan_info": {"seat": 7}}),
        "{r}"
    );
}

#[test]
fn require_sub_refuses_anonymous_tokens_with_3507() {
    let server = serve("");
    let strict = Server::with_config(
        &config("").replace("[api]", "require_sub = true\n\n[api]"),
        &["--shards", "1"],
    );
    let anonymous = token(json!({"exp": unix_now() + 60}));
    // Without require_sub a token without `sub` is the anonymous user.
    let (mut c, _) = Proto::connected(&server, Some(&anonymous));
    c.call("subscribe", json!({"channel": "pres:a"}));
    let r = c.call("presence", json!({"channel": "pres:a"}));
    assert_eq!(r["presence"]["presence"][&c.client]["user"], "", "{r}");
    // With it: close 3507 permission denied.
    let mut c = Proto::open(&strict);
    c.send_json(&json!({"id": 1, "connect": {"token": anonymous}}));
    c.expect_closed_with(3507);
    let (_, r) = Proto::connected(&strict, Some(&token(json!({"sub": "alice"}))));
    assert!(r["client"].is_string());
}

#[test]
fn duplicate_token_channels_subscribe_once() {
    let server = serve("");
    let t = token(json!({"sub": "alice", "channels": ["news", "news"]}));
    let (mut c, connect) = Proto::connected(&server, Some(&t));
    let subs = connect["subs"]
        .as_object()
        .unwrap_or_else(|| panic!("{connect}"));
    assert_eq!(subs.len(), 1, "{connect}");
    assert!(subs["news"]["epoch"].is_string(), "{connect}");
    for i in 1..=2 {
        server.api(API_KEY, "publish", &json!({"channel": "news", "data": i}));
    }
    // Everything up to the second publication, then a ping round trip.
    let mut seen = vec![];
    loop {
        let v = c.next();
        let last = v["push"]["pub"]["offset"] == 2;
        seen.push(v);
        if last {
            break;
        }
    }
    c.assert_alive();
    seen.extend(c.pending.drain(..));
    let subscribes = seen
        .iter()
        .filter(|v| v["push"]["subscribe"].is_object())
        .count();
    let pubs: Vec<&Value> = seen
        .iter()
        .filter(|v| v["push"]["pub"].is_object())
        .collect();
    assert_eq!(pubs.len(), 2, "each publication once: {seen:?}");
    assert_eq!(subscribes, 0, "a subscribe push: {seen:?}");
}

#[test]
fn no_keys_and_not_insecure_refuses_every_connect() {
    let server = Server::with_config("[client]\ninsecure = false\n", &["--shards", "1"]);
    let mut c = Proto::open(&server);
    c.send_json(&json!({"id": 1, "connect": {"token": token(json!({"sub": "alice"}))}}));
    let (code, lines) = c.close_code();
    assert_eq!(code, 3500, "lines before the close: {lines:?}");
    assert!(lines.is_empty(), "{lines:?}");
}
