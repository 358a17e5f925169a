//! Message assembly: frames to messages, fragmentation, control frames
//! interleaved with fragments, size limits and UTF-8 checks.

use bytes::{Buf, Bytes, BytesMut};

use super::close::{parse_close_payload, CloseFrame};
use super::deflate::{self, InflateError};
use super::error::{CapacityError, ProtocolError, WsError};
use super::frame::{parse_header, OpCode};
use super::mask::apply_mask;
use super::utf8::{self, Utf8Progress};

/// Which side of the connection decodes: servers require masked frames,
/// clients require unmasked ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

#[derive(Debug, Clone, Copy)]
pub struct DecoderConfig {
    pub role: Role,
    /// Largest single frame payload accepted.
    pub max_frame: usize,
    /// Largest assembled message accepted (inflated, when compressed).
    pub max_message: usize,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    pub deflate: bool,
}

impl DecoderConfig {
    pub fn server(max_message: usize) -> Self {
        DecoderConfig {
            role: Role::Server,
            max_frame: max_message,
            max_message,
            deflate: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

/// Per-connection decoder state. Idle and between messages it is one null
/// pointer: fragment state is allocated only while a fragmented message is open.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Option<Box<Partial>>,
}

#[derive(Debug)]
struct Partial {
    text: bool,
    buf: BytesMut,
    /// For text: bytes of `buf` known to be valid UTF-8.
    checked: usize,
    /// `buf` holds the compressed message (checked once inflated).
    compressed: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Whether a fragmented message is in progress.
    pub fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Decodes the next complete message from the front of `buf`. Complete
    /// frames are consumed (and unmasked in place); a trailing partial frame is
    /// left untouched and `Ok(None)` returned. After an error the connection
    /// must be closed with `err.close_code()`.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        cfg: &DecoderConfig,
    ) -> Result<Option<Message>, WsError> {
        loop {
            let Some(h) = parse_header(buf)? else {
                return Ok(None);
            };
            match (cfg.role, h.mask.is_some()) {
                (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame.into()),
                (Role::Client, true) => return Err(ProtocolError::MaskedFrame.into()),
                _ => {}
            }
            if !h.opcode.is_control()
                && self.partial.is_none()
                && h.payload_len > cfg.max_message as u64
            {
                return Err(CapacityError::MessageTooLarge {
                    size: h.payload_len,
                    max: cfg.max_message,
                }
                .into());
            }
            if h.rsv1 && (!cfg.deflate || h.opcode.is_control() || h.opcode == OpCode::Continuation)
            {
                // Only a message's first frame may say it is compressed.
                return Err(ProtocolError::ReservedBits.into());
            }
            if h.payload_len > cfg.max_frame as u64 {
                return Err(CapacityError::FrameTooLarge {
                    size: h.payload_len,
                    max: cfg.max_frame,
                }
                .into());
            }
            let len = h.payload_len as usize;
            if let Some(p) = &self.partial {
                if !h.opcode.is_control() && (p.buf.len() + len) > cfg.max_message {
                    return Err(CapacityError::MessageTooLarge {
                        size: (p.buf.len() + len) as u64,
                        max: cfg.max_message,
                    }
                    .into());
                }
            }
            if buf.len() < h.header_len + len {
                return Ok(None);
            }
            if let Some(mask) = h.mask {
                apply_mask(&mut buf[h.header_len..h.header_len + len], mask);
            }
            buf.advance(h.header_len);
            let payload = buf.split_to(len);

            match h.opcode {
                OpCode::Ping => return Ok(Some(Message::Ping(payload.freeze()))),
                OpCode::Pong => return Ok(Some(Message::Pong(payload.freeze()))),
                OpCode::Close => {
                    return parse_close_payload(payload.freeze()).map(|c| Some(Message::Close(c)))
                }
                OpCode::Text | OpCode::Binary => {
                    if self.partial.is_some() {
                        return Err(ProtocolError::ExpectedContinuation.into());
                    }
                    let text = h.opcode == OpCode::Text;
                    if h.fin && h.rsv1 {
                        return finish(text, inflated(&payload, cfg)?).map(Some);
                    }
                    if h.fin {
                        let payload = payload.freeze();
                        return if !text {
                            Ok(Some(Message::Binary(payload)))
                        } else if utf8::is_valid(&payload) {
                            Ok(Some(Message::Text(payload)))
                        } else {
                            Err(WsError::InvalidUtf8)
                        };
                    }
                    // Copied out: the fragment must not keep the shard's
                    // shared read buffer alive while the message stays open.
                    let mut p = Partial {
                        text,
                        buf: BytesMut::from(&payload[..]),
                        checked: 0,
                        compressed: h.rsv1,
                    };
                    p.check_utf8()?;
                    self.partial = Some(Box::new(p));
                }
                OpCode::Continuation => {
                    let Some(p) = self.partial.as_mut() else {
                        return Err(ProtocolError::UnexpectedContinuation.into());
                    };
                    p.buf.unsplit(payload);
                    p.check_utf8()?;
                    if h.fin {
                        let p = self.partial.take().expect("checked above");
                        if p.compressed {
                            return finish(p.text, inflated(&p.buf, cfg)?).map(Some);
                        }
                        if p.text && p.checked != p.buf.len() {
                            return Err(WsError::InvalidUtf8);
                        }
                        let data = p.buf.freeze();
                        return Ok(Some(if p.text {
                            Message::Text(data)
                        } else {
                            Message::Binary(data)
                        }));
                    }
                }
            }
        }
    }
}

/// A compressed message's payload, inflated within the message limit.
fn inflated(compressed: &[u8], cfg: &DecoderConfig) -> Result<Bytes, WsError> {
    match deflate::inflate(compressed, cfg.max_message) {
        Ok(v) => Ok(Bytes::from(v)),
        Err(InflateError::Corrupt) => Err(ProtocolError::BadCompression.into()),
        Err(InflateError::TooLarge) => Err(CapacityError::MessageTooLarge {
            size: cfg.max_message as u64 + 1,
            max: cfg.max_message,
        }
        .into()),
    }
}

/// A whole message's data, checked.
fn finish(text: bool, data: Bytes) -> Result<Message, WsError> {
    if !text {
        Ok(Message::Binary(data))
    } else if utf8::is_valid(&data) {
        Ok(Message::Text(data))
    } else {
        Err(WsError::InvalidUtf8)
    }
}

impl Partial {
    fn check_utf8(&mut self) -> Result<(), WsError> {
        if !self.text || self.compressed {
            return Ok(());
        }
        match utf8::validate_from(&self.buf, self.checked) {
            Utf8Progress::ValidUpTo(n) => {
                self.checked = n;
                Ok(())
            }
            Utf8Progress::Invalid => Err(WsError::InvalidUtf8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::encode_masked;

    const M: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    fn cfg() -> DecoderConfig {
        DecoderConfig::server(1 << 20)
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, WsError> {
        let mut buf = BytesMut::from(bytes);
        let mut d = Decoder::new();
        let mut out = vec![];
        while let Some(m) = d.decode(&mut buf, &cfg())? {
            out.push(m);
        }
        assert!(buf.is_empty(), "left {} bytes", buf.len());
        Ok(out)
    }

    #[test]
    fn fragments_with_interleaved_ping() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&encode_masked(false, OpCode::Text, b"hel", M));
        wire.extend_from_slice(&encode_masked(true, OpCode::Ping, b"p", M));
        wire.extend_from_slice(&encode_masked(false, OpCode::Continuation, b"lo ", M));
        wire.extend_from_slice(&encode_masked(true, OpCode::Continuation, b"world", M));
        let msgs = decode_all(&wire).unwrap();
        assert_eq!(
            msgs,
            vec![
                Message::Ping(Bytes::from_static(b"p")),
                Message::Text(Bytes::from_static(b"hello world"))
            ]
        );
    }

    #[test]
    fn partial_input_consumes_nothing() {
        let frame = encode_masked(true, OpCode::Binary, &[9u8; 300], M);
        let mut d = Decoder::new();
        for cut in 0..frame.len() {
            let mut buf = BytesMut::from(&frame[..cut]);
            assert_eq!(d.decode(&mut buf, &cfg()).unwrap(), None);
            assert_eq!(&buf[..], &frame[..cut], "cut {cut} modified the buffer");
        }
    }

    #[test]
    fn utf8_split_across_fragments_is_accepted() {
        let s = "€uro".as_bytes();
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&encode_masked(false, OpCode::Text, &s[..1], M));
        wire.extend_from_slice(&encode_masked(false, OpCode::Continuation, &s[1..2], M));
        wire.extend_from_slice(&encode_masked(true, OpCode::Continuation, &s[2..], M));
        assert_eq!(
            decode_all(&wire).unwrap(),
            vec![Message::Text(Bytes::from_static("€uro".as_bytes()))]
        );
    }

    #[test]
    fn invalid_utf8_in_first_fragment_fails_fast() {
        let mut d = Decoder::new();
        let mut buf = encode_masked(false, OpCode::Text, b"ok\xff", M);
        assert_eq!(d.decode(&mut buf, &cfg()), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn truncated_utf8_at_message_end_is_invalid() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&encode_masked(false, OpCode::Text, b"a", M));
        wire.extend_from_slice(&encode_masked(true, OpCode::Continuation, b"\xe2\x82", M));
        assert_eq!(decode_all(&wire), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn protocol_violations() {
        use ProtocolError::*;
        let unmasked = crate::ws::frame::encode(OpCode::Text, b"x");
        assert_eq!(decode_all(&unmasked), Err(UnmaskedFrame.into()));
        let cont = encode_masked(true, OpCode::Continuation, b"x", M);
        assert_eq!(decode_all(&cont), Err(UnexpectedContinuation.into()));
        let mut two = BytesMut::new();
        two.extend_from_slice(&encode_masked(false, OpCode::Text, b"a", M));
        two.extend_from_slice(&encode_masked(true, OpCode::Text, b"b", M));
        assert_eq!(decode_all(&two), Err(ExpectedContinuation.into()));
    }

    #[test]
    fn compressed_messages_only_where_negotiated() {
        let long = "ringcast ".repeat(40);
        let mut frame = BytesMut::new();
        deflate::put_message(&mut frame, OpCode::Text, long.as_bytes(), false);
        assert_eq!(frame[0] & deflate::RSV1, deflate::RSV1);
        // Mask it as a client would.
        let masked = encode_masked(true, OpCode::Text, &frame[2..], M);
        let mut wire = BytesMut::from(&masked[..]);
        wire[0] |= deflate::RSV1;
        let on = DecoderConfig {
            deflate: true,
            ..cfg()
        };
        let mut buf = wire.clone();
        assert_eq!(
            Decoder::new().decode(&mut buf, &on).unwrap(),
            Some(Message::Text(Bytes::from(long.clone())))
        );
        let mut buf = wire.clone();
        assert_eq!(
            Decoder::new().decode(&mut buf, &cfg()),
            Err(ProtocolError::ReservedBits.into())
        );
        // Fragmented: RSV1 on the first frame only.
        let body = &frame[2..];
        let mut first = encode_masked(false, OpCode::Text, &body[..10], M);
        first[0] |= deflate::RSV1;
        let mut wire = first.clone();
        wire.extend_from_slice(&encode_masked(true, OpCode::Continuation, &body[10..], M));
        assert_eq!(
            Decoder::new().decode(&mut wire, &on).unwrap(),
            Some(Message::Text(Bytes::from(long.clone())))
        );
        let mut bad = first;
        let mut cont = encode_masked(true, OpCode::Continuation, &body[10..], M);
        cont[0] |= deflate::RSV1;
        bad.extend_from_slice(&cont);
        assert_eq!(
            Decoder::new().decode(&mut bad, &on),
            Err(ProtocolError::ReservedBits.into())
        );
        // A bomb stops at the message limit (1009).
        let bomb = vec![b'a'; 10_000];
        let mut frame = BytesMut::new();
        deflate::put_message(&mut frame, OpCode::Text, &bomb, false);
        let mut wire = encode_masked(true, OpCode::Text, &frame[2..], M);
        wire[0] |= deflate::RSV1;
        let tight = DecoderConfig {
            deflate: true,
            ..DecoderConfig::server(9_999)
        };
        assert_eq!(
            Decoder::new()
                .decode(&mut wire, &tight)
                .unwrap_err()
                .close_code(),
            1009
        );
    }

    #[test]
    fn size_limits() {
        let small = DecoderConfig {
            role: Role::Server,
            max_frame: 100,
            max_message: 150,
            deflate: false,
        };
        let mut d = Decoder::new();
        // Rejected from the header alone, before the payload arrives.
        let big = encode_masked(true, OpCode::Binary, &[0u8; 101], M);
        let mut head = BytesMut::from(&big[..8]);
        assert!(matches!(
            d.decode(&mut head, &small),
            Err(WsError::Capacity(CapacityError::FrameTooLarge { .. }))
        ));
        let mut d = Decoder::new();
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&encode_masked(false, OpCode::Binary, &[0u8; 100], M));
        wire.extend_from_slice(&encode_masked(true, OpCode::Continuation, &[0u8; 51], M));
        assert!(matches!(
            d.decode(&mut wire, &small),
            Err(WsError::Capacity(CapacityError::MessageTooLarge { .. }))
        ));
    }

    #[test]
    fn close_frames() {
        let f = encode_masked(true, OpCode::Close, b"\x03\xe8done", M);
        let msgs = decode_all(&f).unwrap();
        assert_eq!(
            msgs,
            vec![Message::Close(Some(CloseFrame {
                code: 1000,
                reason: Bytes::from_static(b"done")
            }))]
        );
        let bad = encode_masked(true, OpCode::Close, b"\x03\xed", M);
        assert_eq!(
            decode_all(&bad),
            Err(ProtocolError::BadCloseCode(1005).into())
        );
    }
}
