//! How a connection's bytes are framed on the wire: the transport seam of the
//! outbound queue. Everything above the shard writes client-protocol payloads
//! (one or more JSON lines); the connection's [`Framing`] wraps them for its
//! transport. No I/O here.
//!
//! The fan-out path encodes a publication once, as a WebSocket text frame
//! (the fast path, queued as it is). A connection on another transport gets
//! the frame re-framed, and [`FrameSet`] does that once per framing per
//! delivery, not once per subscriber: every SSE subscriber of a channel on a
//! shard shares one `data:` event, every http_stream subscriber one chunk.
//!
//! The HTTP transports answer with a chunked response (`Transfer-Encoding:
//! chunked`), so every queued frame is one complete chunk and a stream ends
//! with the zero-length chunk after its disconnect push.
//!
//! Unidirectional transports carry pushes without their `{"push":…}`
//! wrapper (Centrifugo's unidirectional protocol): a line that starts with
//! the wrapper is unwrapped, any other line (the connect push, a ping `{}`)
//! goes as it is.

use std::cell::OnceCell;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::protocol::protobuf;
use crate::ws::deflate;
use crate::ws::frame::{encode, encode_close, parse_header, OpCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Framing {
    /// WebSocket text frames: `/connection/websocket`.
    #[default]
    WebSocket = 0,
    /// Newline-delimited JSON in HTTP chunks: `/connection/http_stream`.
    HttpStream = 1,
    /// Server-sent events, one `data:` line per JSON line: `/connection/sse`.
    Sse = 2,
    /// WebSocket text frames of unwrapped pushes: `/connection/uni_websocket`.
    UniWebSocket = 3,
    /// Newline-delimited unwrapped pushes: `/connection/uni_http_stream`.
    UniHttpStream = 4,
    /// Server-sent events of unwrapped pushes: `/connection/uni_sse`.
    UniSse = 5,
    /// WebSocket with permessage-deflate: messages of at least
    /// `deflate::MIN_COMPRESS` bytes compressed, each on its own.
    WebSocketDeflate = 6,
    /// The same, compressed with a 9-bit window (the client limited the
    /// server's window).
    WebSocketDeflateSmall = 7,
    /// WebSocket binary frames of length-delimited protobuf replies (the
    /// protobuf client protocol, transcoded from the JSON payloads).
    WebSocketProtobuf = 8,
    /// Length-delimited protobuf replies in HTTP chunks: http_stream with
    /// `Content-Type: application/octet-stream`.
    HttpStreamProtobuf = 9,
}

/// The subprotocol centrifuge-js's protobuf build asks for.
pub const PROTOBUF_SUBPROTOCOL: &str = "centrifuge-protobuf";

/// Every framing, in `as usize` order.
pub const ALL: [Framing; 10] = [
    Framing::WebSocket,
    Framing::HttpStream,
    Framing::Sse,
    Framing::UniWebSocket,
    Framing::UniHttpStream,
    Framing::UniSse,
    Framing::WebSocketDeflate,
    Framing::WebSocketDeflateSmall,
    Framing::WebSocketProtobuf,
    Framing::HttpStreamProtobuf,
];

/// Framings other than the fast path (the slots of [`FrameSet`]).
const DERIVED: usize = ALL.len() - 1;

const PUSH_PREFIX: &[u8] = b"{\"push\":";

impl Framing {
    /// The transport's name (Centrifugo's, as the SDKs and metrics say it).
    pub fn name(self) -> &'static str {
        match self {
            Framing::WebSocket
            | Framing::WebSocketDeflate
            | Framing::WebSocketDeflateSmall
            | Framing::WebSocketProtobuf => "websocket",
            Framing::HttpStream | Framing::HttpStreamProtobuf => "http_stream",
            Framing::Sse => "sse",
            Framing::UniWebSocket => "uni_websocket",
            Framing::UniHttpStream => "uni_http_stream",
            Framing::UniSse => "uni_sse",
        }
    }

    /// Frames arrive as WebSocket frames (commands, pings, close).
    pub fn reads_websocket(self) -> bool {
        matches!(
            self,
            Framing::WebSocket
                | Framing::UniWebSocket
                | Framing::WebSocketDeflate
                | Framing::WebSocketDeflateSmall
                | Framing::WebSocketProtobuf
        )
    }

    /// The protobuf client protocol (binary frames).
    pub fn is_protobuf(self) -> bool {
        matches!(
            self,
            Framing::WebSocketProtobuf | Framing::HttpStreamProtobuf
        )
    }

    /// Messages may arrive compressed (RSV1), and may leave so.
    pub fn is_deflate(self) -> bool {
        matches!(
            self,
            Framing::WebSocketDeflate | Framing::WebSocketDeflateSmall
        )
    }

    /// The framing of a WebSocket connection that negotiated `deflate`.
    pub fn websocket(deflate: Option<deflate::Accepted>) -> Framing {
        match deflate {
            None => Framing::WebSocket,
            Some(a) if a.small_window() => Framing::WebSocketDeflateSmall,
            Some(_) => Framing::WebSocketDeflate,
        }
    }

    /// Pushes only; the client sends nothing after its connect request.
    pub fn is_unidirectional(self) -> bool {
        matches!(
            self,
            Framing::UniWebSocket | Framing::UniHttpStream | Framing::UniSse
        )
    }

    /// Bidirectional over HTTP: later commands come by `/emulation`.
    pub fn is_emulation(self) -> bool {
        matches!(
            self,
            Framing::HttpStream | Framing::Sse | Framing::HttpStreamProtobuf
        )
    }

    /// Frames a client-protocol payload (JSON lines separated by `\n`).
    pub fn frame(self, payload: &[u8]) -> Bytes {
        match self {
            Framing::WebSocket => encode(OpCode::Text, payload),
            Framing::WebSocketProtobuf => {
                encode(OpCode::Binary, &protobuf::encode_replies(payload))
            }
            Framing::HttpStreamProtobuf => {
                let replies = protobuf::encode_replies(payload);
                chunk(replies.len(), |out| out.put_slice(&replies))
            }
            Framing::WebSocketDeflate | Framing::WebSocketDeflateSmall => {
                let mut out = BytesMut::with_capacity(payload.len() + 10);
                let small = self == Framing::WebSocketDeflateSmall;
                deflate::put_message(&mut out, OpCode::Text, payload, small);
                out.freeze()
            }
            Framing::UniWebSocket => {
                let mut body = BytesMut::with_capacity(payload.len());
                for (i, line) in lines(payload).enumerate() {
                    if i > 0 {
                        body.put_u8(b'\n');
                    }
                    body.put_slice(unwrap_push(line));
                }
                encode(OpCode::Text, &body)
            }
            Framing::HttpStream | Framing::UniHttpStream => {
                let uni = self == Framing::UniHttpStream;
                chunk(payload.len() + 1, |out| {
                    for line in lines(payload) {
                        out.put_slice(if uni { unwrap_push(line) } else { line });
                        out.put_u8(b'\n');
                    }
                })
            }
            Framing::Sse | Framing::UniSse => {
                let uni = self == Framing::UniSse;
                chunk(payload.len() + 8, |out| {
                    for line in lines(payload) {
                        out.put_slice(b"data: ");
                        out.put_slice(if uni { unwrap_push(line) } else { line });
                        out.put_u8(b'\n');
                    }
                    out.put_u8(b'\n');
                })
            }
        }
    }

    /// Re-frames a frame the hub encoded for WebSocket (an unmasked text
    /// frame) for this framing.
    pub fn reframe(self, ws: &Bytes) -> Bytes {
        match self {
            Framing::WebSocket => ws.clone(),
            Framing::WebSocketDeflate | Framing::WebSocketDeflateSmall => {
                // The frame's own opcode (the echo service sends binary).
                let opcode = match parse_header(ws) {
                    Ok(Some(h)) => h.opcode,
                    _ => OpCode::Text,
                };
                let payload = ws_payload(ws);
                let mut out = BytesMut::with_capacity(payload.len() + 10);
                let small = self == Framing::WebSocketDeflateSmall;
                deflate::put_message(&mut out, opcode, payload, small);
                out.freeze()
            }
            _ => self.frame(ws_payload(ws)),
        }
    }

    /// What ends the connection: a close frame on WebSocket; on the HTTP
    /// transports a disconnect push and the stream's last chunk (the
    /// SDK reads the code from the push, as from a close frame).
    pub fn close(self, code: u16, reason: &str) -> Bytes {
        if self.reads_websocket() {
            return encode_close(code, reason);
        }
        let mut push = BytesMut::with_capacity(64 + reason.len());
        push.put_slice(b"{\"push\":{\"disconnect\":{\"code\":");
        push.put_slice(code.to_string().as_bytes());
        push.put_slice(b",\"reason\":");
        push.put_slice(&serde_json::to_vec(reason).unwrap_or_else(|_| b"\"\"".to_vec()));
        push.put_slice(b"}}}");
        let mut out = BytesMut::from(&self.frame(&push)[..]);
        out.put_slice(LAST_CHUNK);
        out.freeze()
    }
}

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The lines of a payload (a trailing newline makes no empty line).
fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// `{"push":P}` → `P`; anything else as it is.
fn unwrap_push(line: &[u8]) -> &[u8] {
    match line.strip_prefix(PUSH_PREFIX) {
        Some(rest) if rest.last() == Some(&b'}') => &rest[..rest.len() - 1],
        _ => line,
    }
}

/// One HTTP chunk: `<hex size>\r\n<body>\r\n`, the body written by `write`.
fn chunk(capacity: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
    // Room for the longest size line in front, so the body is written in
    // place once and the size line goes in front of it once it is known.
    const ROOM: usize = 2 * std::mem::size_of::<usize>() + 2;
    let mut out = BytesMut::with_capacity(ROOM + capacity + 2);
    out.put_bytes(0, ROOM);
    write(&mut out);
    let len = out.len() - ROOM;
    if len == 0 {
        // A zero-size chunk would end the body: nothing to send instead.
        return Bytes::new();
    }
    let mut size = [0u8; ROOM];
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, d) in size[..digits].iter_mut().rev().enumerate() {
        *d = b"0123456789abcdef"[(len >> (4 * i)) & 0xf];
    }
    size[digits..digits + 2].copy_from_slice(b"\r\n");
    let start = ROOM - digits - 2;
    out[start..ROOM].copy_from_slice(&size[..digits + 2]);
    out.put_slice(b"\r\n");
    out.advance(start);
    out.freeze()
}

/// The payload of an unmasked WebSocket frame the server encoded.
fn ws_payload(ws: &Bytes) -> &[u8] {
    match parse_header(ws) {
        Ok(Some(h)) => &ws[h.header_len..],
        _ => &ws[..],
    }
}

/// One frame the hub encoded for WebSocket, and the other framings of it,
/// each made the first time a subscriber on that framing asks for it.
pub struct FrameSet<'a> {
    ws: &'a Bytes,
    derived: [OnceCell<Bytes>; DERIVED],
}

impl<'a> FrameSet<'a> {
    pub fn new(ws: &'a Bytes) -> Self {
        FrameSet {
            ws,
            derived: Default::default(),
        }
    }

    /// The frame for `framing`: the shared WebSocket frame itself, or the
    /// one re-framed copy every connection on that framing shares.
    #[inline]
    pub fn get(&self, framing: Framing) -> Bytes {
        match framing {
            Framing::WebSocket => self.ws.clone(),
            f => self.derived[f as usize - 1]
                .get_or_init(|| f.reframe(self.ws))
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUB: &[u8] = br#"{"push":{"channel":"c","pub":{"data":{"a":1},"offset":3}}}"#;

    fn ws(payload: &[u8]) -> Bytes {
        encode(OpCode::Text, payload)
    }

    #[test]
    fn each_framing_of_a_publication() {
        let f = ws(PUB);
        assert_eq!(Framing::WebSocket.reframe(&f), f);
        let chunked = |body: &str| format!("{:x}\r\n{body}\r\n", body.len());
        let s = |b: Bytes| String::from_utf8(b.to_vec()).unwrap();
        let p = std::str::from_utf8(PUB).unwrap();
        let uni = r#"{"channel":"c","pub":{"data":{"a":1},"offset":3}}"#;
        assert_eq!(
            s(Framing::HttpStream.reframe(&f)),
            chunked(&format!("{p}\n"))
        );
        assert_eq!(
            s(Framing::Sse.reframe(&f)),
            chunked(&format!("data: {p}\n\n"))
        );
        assert_eq!(
            s(Framing::UniHttpStream.reframe(&f)),
            chunked(&format!("{uni}\n"))
        );
        assert_eq!(
            s(Framing::UniSse.reframe(&f)),
            chunked(&format!("data: {uni}\n\n"))
        );
        assert_eq!(Framing::UniWebSocket.reframe(&f), ws(uni.as_bytes()));
    }

    #[test]
    fn several_lines_become_several_lines_of_the_framing() {
        let two = b"{\"id\":1,\"subscribe\":{}}\n{\"push\":{\"channel\":\"c\",\"pub\":{}}}";
        let sse = Framing::Sse.frame(two);
        let body = "data: {\"id\":1,\"subscribe\":{}}\ndata: {\"push\":{\"channel\":\"c\",\"pub\":{}}}\n\n";
        assert_eq!(
            &sse[..],
            format!("{:x}\r\n{body}\r\n", body.len()).as_bytes()
        );
        let uni = Framing::UniSse.frame(two);
        let body = "data: {\"id\":1,\"subscribe\":{}}\ndata: {\"channel\":\"c\",\"pub\":{}}\n\n";
        assert_eq!(
            &uni[..],
            format!("{:x}\r\n{body}\r\n", body.len()).as_bytes()
        );
    }

    #[test]
    fn a_long_frame_keeps_its_payload() {
        // 16-bit and 64-bit WebSocket length headers are skipped too.
        for len in [125usize, 126, 70_000] {
            let payload = format!("{{\"push\":{{\"x\":\"{}\"}}}}", "y".repeat(len));
            let f = ws(payload.as_bytes());
            let out = Framing::HttpStream.reframe(&f);
            let body = format!("{payload}\n");
            assert_eq!(
                &out[..],
                format!("{:x}\r\n{body}\r\n", body.len()).as_bytes()
            );
        }
    }

    #[test]
    fn close_is_a_disconnect_push_then_the_last_chunk() {
        let c = Framing::HttpStream.close(3008, "slow \"x\"");
        let body = "{\"push\":{\"disconnect\":{\"code\":3008,\"reason\":\"slow \\\"x\\\"\"}}}\n";
        let want = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        assert_eq!(&c[..], want.as_bytes());
        let u = Framing::UniSse.close(3005, "expired");
        let body = "data: {\"disconnect\":{\"code\":3005,\"reason\":\"expired\"}}\n\n";
        let want = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        assert_eq!(&u[..], want.as_bytes());
        assert_eq!(Framing::WebSocket.close(3001, "x"), encode_close(3001, "x"));
        assert_eq!(
            Framing::UniWebSocket.close(3001, "x"),
            encode_close(3001, "x")
        );
    }

    #[test]
    fn deflate_compresses_long_messages_only_and_keeps_the_opcode() {
        use crate::ws::{Decoder, DecoderConfig, Message, Role};
        let long = PUB.repeat(4);
        for (ws, want) in [
            (ws(PUB), Message::Text(Bytes::from_static(PUB))),
            (ws(&long), Message::Text(Bytes::from(long.clone()))),
            (
                encode(OpCode::Binary, &long),
                Message::Binary(Bytes::from(long.clone())),
            ),
        ] {
            let f = Framing::WebSocketDeflate.reframe(&ws);
            assert_eq!(
                f[0] & deflate::RSV1 != 0,
                ws.len() > 2 + deflate::MIN_COMPRESS
            );
            let cfg = DecoderConfig {
                role: Role::Client,
                deflate: true,
                ..DecoderConfig::server(1 << 20)
            };
            let mut buf = BytesMut::from(&f[..]);
            assert_eq!(Decoder::new().decode(&mut buf, &cfg).unwrap(), Some(want));
        }
    }

    #[test]
    fn a_frame_set_frames_once_per_framing() {
        let f = ws(PUB);
        let set = FrameSet::new(&f);
        let a = set.get(Framing::Sse);
        let b = set.get(Framing::Sse);
        // The same buffer, not an equal copy.
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(set.get(Framing::WebSocket).as_ptr(), f.as_ptr());
        assert_ne!(set.get(Framing::UniSse).as_ptr(), a.as_ptr());
    }
}
