//! Frame headers (RFC 6455 §5.2): parsing without consuming, and encoding.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{ProtocolError, WsError};
use super::mask::apply_mask;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    pub fn from_u8(op: u8) -> Result<OpCode, ProtocolError> {
        Ok(match op {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header. `header_len + payload_len` bytes make the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate); the decoder
    /// decides whether that is allowed.
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    pub header_len: usize,
}

/// The longest header: 2 + 8 (length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// The payload of a complete unmasked frame (one this server encoded);
/// empty when `frame` is not one.
pub fn payload_of(frame: &[u8]) -> &[u8] {
    match parse_header(frame) {
        Ok(Some(h))
            if h.mask.is_none() && frame.len() as u64 == h.header_len as u64 + h.payload_len =>
        {
            &frame[h.header_len..]
        }
        _ => &[],
    }
}

/// Parses the header at the start of `buf`. `Ok(None)` means more bytes are
/// needed; nothing is consumed either way. Errors are for headers that can never
/// become valid (reserved bits, unknown opcodes, bad control frames).
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x30 != 0 {
        return Err(ProtocolError::ReservedBits.into());
    }
    let rsv1 = b0 & 0x40 != 0;
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_u8(b0 & 0x0F)?;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControl.into());
        }
        if len7 > 125 {
            return Err(ProtocolError::ControlTooLong.into());
        }
    }
    let (payload_len, mut pos) = match len7 {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(b);
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthOverflow.into());
            }
            (len, 10)
        }
        n => (n as u64, 2),
    };
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        rsv1,
        opcode,
        mask,
        payload_len,
        header_len: pos,
    }))
}

/// Writes an unmasked (server) header for a payload of `len` bytes.
pub fn put_header(out: &mut BytesMut, fin: bool, opcode: OpCode, len: usize) {
    put_header_masked(out, fin, opcode, len, None)
}

fn put_header_masked(
    out: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    let b0 = (if fin { 0x80 } else { 0 }) | opcode.as_u8();
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    out.put_u8(b0);
    if len < 126 {
        out.put_u8(mbit | len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(mbit | 126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(mbit | 127);
        out.put_u64(len as u64);
    }
    if let Some(m) = mask {
        out.put_slice(&m);
    }
}

/// Header length for an unmasked frame of `len` payload bytes.
pub fn header_len(len: usize) -> usize {
    if len < 126 {
        2
    } else if len <= u16::MAX as usize {
        4
    } else {
        10
    }
}

/// Encodes one complete unmasked frame into a single shareable buffer: a
/// broadcast encodes once and every subscriber's queue holds a clone.
pub fn encode(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    put_header(&mut out, true, opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// Builds a final text frame whose payload `write` appends, without copying
/// the payload: room for the longest header is kept in front and the unused
/// part is skipped once the length is known.
pub fn text_frame_with(capacity: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
    const ROOM: usize = 10;
    let mut out = BytesMut::with_capacity(ROOM + capacity);
    out.put_bytes(0, ROOM);
    write(&mut out);
    let len = out.len() - ROOM;
    let start = ROOM - header_len(len);
    let mut header = BytesMut::with_capacity(ROOM);
    put_header(&mut header, true, OpCode::Text, len);
    out[start..ROOM].copy_from_slice(&header);
    out.advance(start);
    out.freeze()
}

/// Encodes a masked (client) frame; used by the load generator and tests.
pub fn encode_masked(fin: bool, opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> BytesMut {
    let mut out = BytesMut::with_capacity(MAX_HEADER_LEN + payload.len());
    put_header_masked(&mut out, fin, opcode, payload.len(), Some(mask));
    let start = out.len();
    out.put_slice(payload);
    apply_mask(&mut out[start..], mask);
    out
}

/// Encodes a close frame with `code` and `reason` (truncated to fit the
/// 125-byte control-frame limit on a character boundary).
pub fn encode_close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(OpCode::Close, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_headers_need_more() {
        let frame = encode_masked(true, OpCode::Binary, &[7u8; 70000], [1, 2, 3, 4]);
        for cut in 0..14 {
            assert_eq!(parse_header(&frame[..cut]).unwrap(), None, "cut {cut}");
        }
        let h = parse_header(&frame).unwrap().unwrap();
        assert_eq!(h.payload_len, 70000);
        assert_eq!(h.header_len, 14);
    }

    #[test]
    fn length_boundaries() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 100_000] {
            let f = encode(OpCode::Text, &vec![b'a'; len]);
            let h = parse_header(&f).unwrap().unwrap();
            assert_eq!(h.payload_len as usize, len);
            assert_eq!(h.header_len, header_len(len));
            assert_eq!(f.len(), h.header_len + len);
            assert_eq!(h.mask, None);
        }
    }

    #[test]
    fn rejects_bad_headers() {
        use ProtocolError::*;
        let cases: [(&[u8], ProtocolError); 6] = [
            (&[0xA1, 0x80], ReservedBits),
            (&[0x91, 0x80], ReservedBits),
            (&[0x83, 0x80], UnknownOpcode(3)),
            (&[0x09, 0x80], FragmentedControl),
            (&[0x89, 0xFE], ControlTooLong),
            (&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], LengthOverflow),
        ];
        for (bytes, err) in cases {
            assert_eq!(parse_header(bytes), Err(WsError::Protocol(err)));
        }
    }

    #[test]
    fn text_frame_with_matches_encode() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let payload = vec![b'z'; len];
            let f = text_frame_with(len, |out| out.put_slice(&payload));
            assert_eq!(f, encode(OpCode::Text, &payload));
        }
    }

    #[test]
    fn close_reason_truncated_on_char_boundary() {
        let reason = "é".repeat(100);
        let f = encode_close(1000, &reason);
        let h = parse_header(&f).unwrap().unwrap();
        assert!(h.payload_len <= 125);
        assert!(std::str::from_utf8(&f[h.header_len + 2..]).is_ok());
    }
}
