//! Every RFC 6455 framing violation gets its close code (1002 protocol
//! error, 1007 invalid UTF-8, 1009 too big), then a half-close; the shard
//! goes on echoing for a connection opened before and one opened after, and
//! the process stays up.

mod common;

use std::io::Write;

use common::*;

const MAX_MESSAGE: usize = 1000;

/// Sends `wire` after a good upgrade on a one-shard echo server started with
/// `--max-message 1000`, and expects a close frame with `code`.
fn violation(wire: &[u8], code: u16) {
    let max = MAX_MESSAGE.to_string();
    let mut server = Server::start("echo", &["--shards", "1", "--max-message", &max]);
    let (mut before, _) = ws_connect(server.addr, "/");
    assert_echoes(&mut before, "warm-up");

    let (mut bad, _) = ws_connect(server.addr, "/");
    bad.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // The server may close before it has read everything; a failed write
    // then is fine, the close frame is what counts.
    let _ = bad.write_all(wire);
    assert_eq!(
        expect_close_then_eof(&mut bad),
        code,
        "wire {:02x?}",
        &wire[..wire.len().min(32)]
    );

    assert_echoes(&mut before, "a violation on another connection");
    let (mut after, _) = ws_connect(server.addr, "/");
    assert_echoes(&mut after, "a violation on an earlier connection");
    assert!(server.is_running(), "server exited");
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

// ---- 1002: protocol errors ----

#[test]
fn unmasked_client_frame_is_1002() {
    violation(&[FIN | TEXT, 0x02, b'h', b'i'], 1002);
}

#[test]
fn reserved_bit_1_is_1002() {
    violation(&raw_frame(FIN | 0x40 | TEXT, b"rsv1"), 1002);
}

#[test]
fn reserved_bits_2_and_3_are_1002() {
    violation(&raw_frame(FIN | 0x20 | BINARY, b"rsv2"), 1002);
    violation(&raw_frame(FIN | 0x10 | PING, b"rsv3"), 1002);
}

#[test]
fn unknown_data_opcode_is_1002() {
    violation(&raw_frame(FIN | 0x3, b"op3"), 1002);
}

#[test]
fn unknown_control_opcode_is_1002() {
    violation(&raw_frame(FIN | 0xB, b"opB"), 1002);
}

#[test]
fn fragmented_ping_is_1002() {
    violation(&raw_frame(PING, b"not final"), 1002);
}

#[test]
fn fragmented_close_is_1002() {
    violation(&raw_frame(CLOSE, &1000u16.to_be_bytes()), 1002);
}

#[test]
fn ping_over_125_bytes_is_1002() {
    violation(&raw_frame(FIN | PING, &[b'p'; 126]), 1002);
}

#[test]
fn pong_over_125_bytes_announced_in_header_is_1002() {
    // Refused from the header alone: no payload follows.
    violation(&raw_header(FIN | PONG, 200), 1002);
}

#[test]
fn continuation_without_start_is_1002() {
    violation(&raw_frame(FIN, b"orphan"), 1002);
}

#[test]
fn new_message_during_fragmentation_is_1002() {
    violation(
        &cat(&[
            raw_frame(TEXT, b"first "),
            raw_frame(FIN | BINARY, b"second"),
        ]),
        1002,
    );
}

#[test]
fn new_message_after_interleaved_ping_is_1002() {
    violation(
        &cat(&[
            raw_frame(BINARY, b"first"),
            raw_frame(FIN | PING, b"p"),
            raw_frame(FIN | TEXT, b"second"),
        ]),
        1002,
    );
}

#[test]
fn close_with_one_byte_payload_is_1002() {
    violation(&raw_frame(FIN | CLOSE, &[0x03]), 1002);
}

#[test]
fn close_code_1005_is_1002() {
    violation(&raw_frame(FIN | CLOSE, &1005u16.to_be_bytes()), 1002);
}

#[test]
fn close_code_999_is_1002() {
    violation(&raw_frame(FIN | CLOSE, &999u16.to_be_bytes()), 1002);
}

#[test]
fn other_reserved_close_codes_are_1002() {
    for code in [0u16, 1004, 1006, 1015, 1016, 2999, 5000, 65535] {
        violation(&raw_frame(FIN | CLOSE, &code.to_be_bytes()), 1002);
    }
}

#[test]
fn length_with_top_bit_set_is_1002() {
    let mut h = vec![FIN | BINARY, 0x80 | 127];
    h.extend_from_slice(&(1u64 << 63).to_be_bytes());
    h.extend_from_slice(&[1, 2, 3, 4]);
    violation(&h, 1002);
}

// ---- 1007: invalid UTF-8 ----

#[test]
fn invalid_utf8_text_is_1007() {
    violation(&raw_frame(FIN | TEXT, b"caf\xc3"), 1007);
    violation(&raw_frame(FIN | TEXT, b"\xed\xa0\x80 surrogate"), 1007);
}

#[test]
fn invalid_utf8_in_a_later_fragment_is_1007() {
    // "€" is e2 82 ac; the first fragment ends mid-character (valid so far),
    // the second breaks it.
    violation(
        &cat(&[raw_frame(TEXT, b"price: \xe2\x82"), raw_frame(FIN, b"X")]),
        1007,
    );
}

#[test]
fn invalid_utf8_fails_before_the_final_fragment() {
    // The decoder checks each fragment as it comes: no final fragment is
    // ever sent, yet the close arrives.
    violation(&cat(&[raw_frame(TEXT, b"ok"), raw_frame(0, b"\xff")]), 1007);
}

#[test]
fn text_ending_mid_character_is_1007() {
    violation(
        &cat(&[raw_frame(TEXT, b"a\xf0\x9f"), raw_frame(FIN, b"\x98")]),
        1007,
    );
}

#[test]
fn close_reason_not_utf8_is_1007() {
    let mut p = 1000u16.to_be_bytes().to_vec();
    p.extend_from_slice(b"bye \xff");
    violation(&raw_frame(FIN | CLOSE, &p), 1007);
}

// ---- 1009: over --max-message ----

#[test]
fn frame_over_max_message_is_1009() {
    violation(&raw_frame(FIN | BINARY, &vec![0u8; MAX_MESSAGE + 1]), 1009);
}

#[test]
fn text_frame_over_max_message_is_1009() {
    violation(&raw_frame(FIN | TEXT, &vec![b'a'; MAX_MESSAGE + 1]), 1009);
}

#[test]
fn huge_length_in_header_alone_is_1009() {
    // 1 TiB announced; the server must not wait for (or allocate) it.
    violation(&raw_header(FIN | BINARY, 1 << 40), 1009);
}

#[test]
fn fragments_over_max_message_are_1009() {
    let half = vec![b'x'; MAX_MESSAGE / 2 + 1];
    violation(&cat(&[raw_frame(TEXT, &half), raw_frame(FIN, &half)]), 1009);
}

#[test]
fn many_small_fragments_over_max_message_are_1009() {
    let mut frames = vec![raw_frame(BINARY, &[1u8; 100])];
    for _ in 0..20 {
        frames.push(raw_frame(0, &[2u8; 100]));
    }
    violation(&cat(&frames), 1009);
}

// ---- what is allowed right up to the limits ----

#[test]
fn limits_are_inclusive_and_controls_may_interleave() {
    let max = MAX_MESSAGE.to_string();
    let mut server = Server::start("echo", &["--shards", "1", "--max-message", &max]);
    let (mut s, _) = ws_connect(server.addr, "/");
    let exact = vec![b'e'; MAX_MESSAGE];
    s.write_all(&raw_frame(FIN | TEXT, &exact)).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), (true, 1, exact.clone()));
    // 1000 bytes in fragments, with a 125-byte ping between them.
    s.write_all(&cat(&[
        raw_frame(BINARY, &exact[..400]),
        raw_frame(FIN | PING, &[b'p'; 125]),
        raw_frame(0, &exact[400..]),
        raw_frame(FIN, &[]),
    ]))
    .unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), (true, 10, vec![b'p'; 125]));
    assert_eq!(read_frame(&mut s).unwrap(), (true, 2, exact));
    // Text split inside a character is fine when the next fragment ends it.
    s.write_all(&cat(&[
        raw_frame(TEXT, b"\xe2"),
        raw_frame(FIN, b"\x82\xac"),
    ]))
    .unwrap();
    assert_eq!(
        read_frame(&mut s).unwrap(),
        (true, 1, "€".as_bytes().to_vec())
    );
    // A close with a valid code and reason is echoed with that code.
    let mut p = 4000u16.to_be_bytes().to_vec();
    p.extend_from_slice("done ✓".as_bytes());
    s.write_all(&raw_frame(FIN | CLOSE, &p)).unwrap();
    assert_eq!(expect_close_then_eof(&mut s), 4000);
    assert!(server.is_running());
}

#[test]
fn empty_close_is_answered_with_1000() {
    let server = Server::start("echo", &["--shards", "1"]);
    let (mut s, _) = ws_connect(server.addr, "/");
    s.write_all(&raw_frame(FIN | CLOSE, &[])).unwrap();
    assert_eq!(expect_close_then_eof(&mut s), 1000);
}

// ---- pipelining and bursts ----

#[test]
fn frames_right_behind_the_upgrade_request_are_served() {
    let server = Server::start("echo", &["--shards", "1"]);
    let mut s = connect(server.addr);
    let mut wire = upgrade_request("/").into_bytes();
    wire.extend(raw_frame(FIN | TEXT, b"early"));
    wire.extend(raw_frame(BINARY, b"frag"));
    s.write_all(&wire).unwrap();
    let head = read_http_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(read_frame(&mut s).unwrap(), (true, 1, b"early".to_vec()));
    s.write_all(&raw_frame(FIN, b"ment")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), (true, 2, b"fragment".to_vec()));
}

#[test]
fn violation_right_behind_the_upgrade_request_is_1002() {
    let server = Server::start("echo", &["--shards", "1"]);
    let mut s = connect(server.addr);
    let mut wire = upgrade_request("/").into_bytes();
    wire.extend([FIN | TEXT, 0x01, b'x']); // unmasked
    s.write_all(&wire).unwrap();
    let head = read_http_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(expect_close_then_eof(&mut s), 1002);
}

#[test]
fn nothing_is_echoed_after_the_peers_close() {
    let server = Server::start("echo", &["--shards", "1"]);
    let (mut s, _) = ws_connect(server.addr, "/");
    s.write_all(&cat(&[
        raw_frame(FIN | TEXT, b"before"),
        raw_frame(FIN | CLOSE, &1001u16.to_be_bytes()),
        raw_frame(FIN | TEXT, b"after"),
        raw_frame(FIN | PING, b"after"),
    ]))
    .unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), (true, 1, b"before".to_vec()));
    assert_eq!(expect_close_then_eof(&mut s), 1001);
}

#[test]
fn burst_of_tiny_messages_is_echoed_in_order() {
    // 50,000 one-frame messages in writes of ~64 kB while another thread
    // reads: the server's read budget, backpressure and coalesced writes
    // must neither drop nor reorder anything.
    const N: usize = 50_000;
    let server = Server::start("echo", &["--shards", "1"]);
    let (mut s, _) = ws_connect(server.addr, "/");
    let mut reader = s.try_clone().unwrap();
    let read = std::thread::spawn(move || {
        for i in 0..N {
            let (fin, op, p) = read_frame(&mut reader).expect("echo");
            let want = (i as u32).to_be_bytes();
            assert!(fin && op == 2 && p == want, "message {i}: op {op} {p:?}");
        }
    });
    let mut wire = Vec::new();
    for i in 0..N {
        wire.extend(raw_frame(FIN | BINARY, &(i as u32).to_be_bytes()));
        if wire.len() > 64 * 1024 {
            s.write_all(&wire).unwrap();
            wire.clear();
        }
    }
    s.write_all(&wire).unwrap();
    read.join().expect("reader");
}
