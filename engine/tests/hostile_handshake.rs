//! Junk where an upgrade request should be: each gets the right HTTP status
//! and a closed connection, and the shard goes on serving a connection that
//! was open before and one opened after.

mod common;

use std::io::Write;

use common::*;

fn request(method: &str, path: &str, version: &str, headers: &[&str]) -> Vec<u8> {
    let mut r = format!("{method} {path} {version}\r\nHost: localhost\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY_HEADER: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

/// Proof of life for an upgraded connection: echo mode echoes, serve mode
/// (which does not echo) answers a ping with a pong.
fn assert_alive(mode: &str, s: &mut std::net::TcpStream, tag: &str) {
    if mode == "echo" {
        assert_echoes(s, tag);
    } else {
        s.write_all(&client_frame(true, 9, b"alive?")).unwrap();
        assert_eq!(
            read_frame(s).unwrap(),
            (true, 10, b"alive?".to_vec()),
            "{tag}"
        );
    }
}

/// Sends `req` to a one-shard server in `mode` and checks the response
/// status line; then that the shard still serves an old and a new
/// connection and the process is up. Returns the response.
fn refused(mode: &str, req: &[u8], status_line: &str) -> HttpResponse {
    refused_with(mode, &[], req, status_line)
}

fn refused_with(mode: &str, args: &[&str], req: &[u8], status_line: &str) -> HttpResponse {
    let mut all = vec!["--shards", "1"];
    all.extend_from_slice(args);
    let mut server = Server::start(mode, &all);
    let (mut before, _) = ws_connect(server.addr, WS_PATH);
    let resp = http_exchange(server.addr, req);
    assert_eq!(resp.status_line, status_line, "{}", resp.head);
    assert!(resp.has_token("Connection", "close"), "{}", resp.head);
    assert!(!resp.body.is_empty(), "a refusal says why");
    still_serving(&mut server, mode, &mut before, status_line);
    resp
}

fn still_serving(server: &mut Server, mode: &str, before: &mut std::net::TcpStream, tag: &str) {
    assert_alive(mode, before, tag);
    let (mut after, _) = ws_connect(server.addr, WS_PATH);
    assert_alive(mode, &mut after, tag);
    assert!(server.is_running(), "server exited after {tag}");
}

#[test]
fn random_bytes_get_400() {
    for seed in [1u64, 2, 3] {
        let mut bytes = junk(seed, 600);
        bytes[0] = 0xff; // never a method token character
        refused("echo", &bytes, "HTTP/1.1 400 Bad Request");
    }
}

#[test]
fn tls_client_hello_gets_400() {
    // The start of a TLS 1.2/1.3 ClientHello record, as a TLS client sends
    // it to a plain-text port.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03,
    ];
    hello.extend_from_slice(&junk(7, 32)); // client random
    hello.extend_from_slice(&[0x20]);
    hello.extend_from_slice(&junk(8, 32)); // session id
    hello.extend_from_slice(&[0x00, 0x08, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0x00, 0xff]);
    refused("echo", &hello, "HTTP/1.1 400 Bad Request");
}

#[test]
fn http_1_0_gets_400() {
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.0",
        &[UPGRADE, CONNECTION, KEY_HEADER, VERSION],
    );
    refused("echo", &req, "HTTP/1.1 400 Bad Request");
}

#[test]
fn post_gets_405() {
    let req = request(
        "POST",
        WS_PATH,
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, VERSION],
    );
    refused("echo", &req, "HTTP/1.1 405 Method Not Allowed");
}

#[test]
fn missing_upgrade_gets_426() {
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.1",
        &[CONNECTION, KEY_HEADER, VERSION],
    );
    let resp = refused("echo", &req, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(resp.header("Upgrade"), Some("websocket"), "{}", resp.head);
    // A response with Upgrade must list "upgrade" in Connection (RFC 9110 §7.8).
    assert!(resp.has_token("Connection", "upgrade"), "{}", resp.head);
}

#[test]
fn missing_connection_upgrade_gets_426() {
    let req = request("GET", WS_PATH, "HTTP/1.1", &[UPGRADE, KEY_HEADER, VERSION]);
    let resp = refused("echo", &req, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(resp.header("Upgrade"), Some("websocket"), "{}", resp.head);
    // A plain keep-alive is not an upgrade either.
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.1",
        &[UPGRADE, "Connection: keep-alive", KEY_HEADER, VERSION],
    );
    refused("echo", &req, "HTTP/1.1 426 Upgrade Required");
}

#[test]
fn plain_http_get_gets_426() {
    let req = request("GET", "/", "HTTP/1.1", &["Accept: */*"]);
    refused("echo", &req, "HTTP/1.1 426 Upgrade Required");
}

#[test]
fn version_8_gets_426_naming_13() {
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, "Sec-WebSocket-Version: 8"],
    );
    let resp = refused("echo", &req, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(
        resp.header("Sec-WebSocket-Version"),
        Some("13"),
        "{}",
        resp.head
    );
}

#[test]
fn missing_or_bad_key_gets_400() {
    let req = request("GET", WS_PATH, "HTTP/1.1", &[UPGRADE, CONNECTION, VERSION]);
    refused("echo", &req, "HTTP/1.1 400 Bad Request");
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.1",
        &[
            UPGRADE,
            CONNECTION,
            VERSION,
            "Sec-WebSocket-Key: not-base64-16-bytes",
        ],
    );
    refused("echo", &req, "HTTP/1.1 400 Bad Request");
}

#[test]
fn oversized_headers_get_431() {
    // 10 KiB of headers in a request that is otherwise a valid upgrade.
    let filler = format!("X-Filler: {}", "a".repeat(10 * 1024));
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, VERSION, &filler],
    );
    refused("echo", &req, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn endless_headers_get_431() {
    // Headers that never end: the server must answer once it has 8 KiB,
    // without waiting for the blank line.
    let mut server = Server::start("echo", &["--shards", "1"]);
    let (mut before, _) = ws_connect(server.addr, WS_PATH);
    let mut s = connect(server.addr);
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    for i in 0..300 {
        if s.write_all(format!("X-H{i}: {}\r\n", "b".repeat(40)).as_bytes())
            .is_err()
        {
            break; // the server has already answered and closed
        }
    }
    let resp = read_http_response(&mut s);
    assert_eq!(resp.status(), 431, "{}", resp.head);
    still_serving(&mut server, "echo", &mut before, "endless headers");
}

#[test]
fn too_many_headers_get_431() {
    let many: Vec<String> = (0..60).map(|i| format!("X-N{i}: v")).collect();
    let mut headers: Vec<&str> = vec![UPGRADE, CONNECTION, KEY_HEADER, VERSION];
    headers.extend(many.iter().map(String::as_str));
    let req = request("GET", WS_PATH, "HTTP/1.1", &headers);
    refused("echo", &req, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn wrong_path_on_serve_gets_404() {
    let req = request(
        "GET",
        "/other",
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, VERSION],
    );
    refused("serve", &req, "HTTP/1.1 404 Not Found");
    // A query string does not change the path; a prefix is not the path.
    let req = request(
        "GET",
        "/connection/websocketx?a=/connection/websocket",
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, VERSION],
    );
    refused("serve", &req, "HTTP/1.1 404 Not Found");
}

#[test]
fn serve_checks_the_handshake_before_the_path() {
    // The same refusals hold on the messaging server's endpoint.
    let req = request(
        "POST",
        WS_PATH,
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, VERSION],
    );
    refused("serve", &req, "HTTP/1.1 405 Method Not Allowed");
    let req = request(
        "GET",
        WS_PATH,
        "HTTP/1.1",
        &[UPGRADE, CONNECTION, KEY_HEADER, "Sec-WebSocket-Version: 8"],
    );
    let resp = refused("serve", &req, "HTTP/1.1 426 Upgrade Required");
    assert_eq!(resp.header("Sec-WebSocket-Version"), Some("13"));
}

#[test]
fn serve_upgrades_its_path_with_a_query() {
    let server = Server::start("serve", &["--shards", "1"]);
    let (mut s, head) = ws_connect(server.addr, "/connection/websocket?format=json");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    assert_alive("serve", &mut s, "query");
}

#[test]
fn peer_that_vanishes_mid_request_does_not_hurt_the_shard() {
    let mut server = Server::start("echo", &["--shards", "1"]);
    let (mut before, _) = ws_connect(server.addr, WS_PATH);
    for cut in [1, 20, 60] {
        let req = request(
            "GET",
            WS_PATH,
            "HTTP/1.1",
            &[UPGRADE, CONNECTION, KEY_HEADER, VERSION],
        );
        let mut s = connect(server.addr);
        s.write_all(&req[..cut]).unwrap();
        drop(s);
    }
    still_serving(&mut server, "echo", &mut before, "vanishing peers");
}
