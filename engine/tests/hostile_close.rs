//! A subscriber that stops reading is cut with 3008 (Centrifugo's "slow")
//! once its queue passes `--max-queue`, and what it then reads must still be
//! a well-formed WebSocket stream: whole frames, the close frame last
//! (RFC 6455 §5.5.1: nothing after it), then EOF.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use serde_json::json;

/// A client socket with a tiny receive buffer, so the server's writes to it
/// block early.
fn small_window_ws(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(upgrade_request(WS_PATH).as_bytes()).unwrap();
    let head = read_http_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Splits a server byte stream into frames. Returns the opcodes and the
/// close code; an error says what is malformed.
fn parse_stream(raw: &[u8]) -> Result<(Vec<u8>, Option<u16>), String> {
    let mut ops = Vec::new();
    let mut close = None;
    let mut pos = 0;
    while pos < raw.len() {
        let n = ops.len();
        if let Some(code) = close {
            return Err(format!(
                "{} bytes after the close frame ({code}), after {n} frames",
                raw.len() - pos
            ));
        }
        let h = ringcast::ws::frame::parse_header(&raw[pos..])
            .map_err(|e| format!("frame {n} at byte {pos}: {e}"))?
            .ok_or_else(|| format!("frame {n} at byte {pos}: truncated header"))?;
        let end = pos + h.header_len + h.payload_len as usize;
        if end > raw.len() {
            return Err(format!(
                "frame {n} at byte {pos}: {:?} of {} bytes, only {} arrived before EOF",
                h.opcode,
                h.payload_len,
                raw.len() - pos - h.header_len
            ));
        }
        let payload = &raw[pos + h.header_len..end];
        let op = h.opcode.as_u8();
        if op == 8 {
            if payload.len() < 2 {
                return Err(format!("close frame {n} without a code"));
            }
            close = Some(u16::from_be_bytes([payload[0], payload[1]]));
        } else if op == 1 {
            for line in payload.split(|&b| b == b'\n') {
                serde_json::from_slice::<serde_json::Value>(line).map_err(|e| {
                    format!(
                        "frame {n}: not JSON ({e}): {:?}",
                        String::from_utf8_lossy(line)
                    )
                })?;
            }
        }
        ops.push(op);
        pos = end;
    }
    Ok((ops, close))
}

/// A slow consumer's cut must leave a well-formed stream: the frame on the
/// wire is finished, nothing is queued after the close frame, and the reader
/// ends with a 3008 close (regression: the cut once dropped a partly-sent
/// frame and the close frame with it).
#[test]
fn slow_consumer_gets_a_well_formed_3008() {
    let server = Server::start("serve", &["--shards", "1", "--insecure"]);
    let mut slow = Proto::over(small_window_ws(server.addr));
    let r = slow.connect(None);
    assert!(r["connect"].is_object(), "{r}");
    let r = slow.call("subscribe", json!({"channel": "c"}));
    assert!(r["subscribe"].is_object(), "{r}");

    let (mut publisher, _) = Proto::connected(&server, None);
    // 8 MB of 4 kB publications: more than the socket buffers (at most
    // 4 MB send + the small receive window) and the 1 MiB queue together.
    let blob = "y".repeat(4000);
    for i in 0..2000 {
        publisher
            .send_json(&json!({"id": 10 + i, "publish": {"channel": "c", "data": {"b": blob}}}));
    }
    for i in 0..2000 {
        let r = publisher.reply(10 + i);
        assert!(r.get("error").is_none(), "{r}");
    }

    // Now read it all, well within the 3 s close timeout.
    let mut raw = Vec::new();
    slow.into_stream()
        .read_to_end(&mut raw)
        .expect("the server closes after its close frame");
    let (ops, close) = parse_stream(&raw).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(close, Some(3008), "{} frames, no 3008 close", ops.len());
    // How much arrived before the cut depends on the kernel's buffers for this
    // deliberately tiny window; what matters is that the stream is whole.
    assert!(
        ops.iter().all(|&op| op == 1 || op == 8),
        "text frames, then the close"
    );
}

#[test]
fn stream_parser_accepts_a_clean_close() {
    // The checker itself, against a server that behaves: an echo and a
    // client-initiated close.
    let server = Server::start("echo", &["--shards", "1"]);
    let (mut s, _) = ws_connect(server.addr, "/");
    s.write_all(&client_frame(true, 1, br#"{"a":1}"#)).unwrap();
    s.write_all(&client_frame(true, 8, &3008u16.to_be_bytes()))
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_stream(&raw), Ok((vec![1, 8], Some(3008))));
    let mut cut = raw.clone();
    cut.truncate(4);
    assert!(parse_stream(&cut).unwrap_err().contains("only"));
}
