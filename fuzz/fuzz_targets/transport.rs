//! What the HTTP transports parse from a client, over arbitrary bytes: the
//! HTTP/1.1 request, the `/emulation` body (JSON and protobuf), a
//! unidirectional connect request;
//! and the framings they write, over arbitrary payloads. Nothing may panic;
//! a parsed request's body is exactly its Content-Length, and every framed
//! HTTP chunk says its own size and is never the zero-size last chunk.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast::http::parse;
use ringcast::protocol::command::parse_connect_request;
use ringcast::shard::framing::{Framing, ALL};
use prost::Message as _;
use ringcast::transport::{parse_emulation, ProtoEmulationRequest};


fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let before = buf.len();
    if let Ok(Some(req)) = parse(&mut buf, 64 * 1024) {
        assert!(req.body.len() <= 64 * 1024);
        assert!(before - buf.len() >= req.body.len());
        assert!(!req.path.contains('?'), "the query stays out of the path");
    }
    if let Some(e) = parse_emulation(data) {
        assert!(!e.session.is_empty());
    }
    let _ = parse_connect_request(data);
    let _ = ProtoEmulationRequest::decode(data);
    for f in ALL {
        let out = f.frame(data);
        let chunked = matches!(
            f,
            Framing::HttpStream
                | Framing::Sse
                | Framing::UniHttpStream
                | Framing::UniSse
                | Framing::HttpStreamProtobuf
        );
        // Nothing to send is no chunk at all (a zero-size one would end
        // the body).
        if chunked && !out.is_empty() {
            let head = out.iter().position(|&b| b == b'\r').expect("chunk size line");
            let size = usize::from_str_radix(std::str::from_utf8(&out[..head]).unwrap(), 16).unwrap();
            assert_eq!(out.len(), head + 2 + size + 2, "{f:?}");
            assert!(size > 0, "{f:?}: a zero-size chunk ends the body");
            assert!(out.ends_with(b"\r\n"));
        }
        let _ = f.close(3000, std::str::from_utf8(data).unwrap_or(""));
    }
});
