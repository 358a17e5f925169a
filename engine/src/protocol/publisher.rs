//! The TCP publisher protocol's framing (docs/publisher-protocol.md):
//! `u32 BE length | u8 type | body`. Parsing and encoding only; no I/O.

use bytes::{BufMut, BytesMut};

pub const AUTH: u8 = 0x01;
pub const PUBLISH: u8 = 0x02;
pub const PING: u8 = 0x03;
pub const AUTH_OK: u8 = 0x81;
pub const PUBLISHED: u8 = 0x82;
pub const PONG: u8 = 0x83;
pub const ERROR: u8 = 0xE0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Auth(&'a [u8]),
    /// Channel and data as sent; the handler validates them (a bad one is an
    /// error for that publish only).
    Publish {
        channel: &'a [u8],
        data: &'a [u8],
    },
    Ping,
}

/// Framing errors: the stream can no longer be trusted and is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    TooLarge {
        len: u32,
        max: usize,
    },
    Empty,
    UnknownType(u8),
    /// The body is shorter than its own fields say.
    Truncated,
}

impl FrameError {
    pub fn message(&self) -> String {
        match self {
            FrameError::TooLarge { len, max } => format!("bad frame: length {len} over {max}"),
            FrameError::Empty => "bad frame: zero length".into(),
            FrameError::UnknownType(t) => format!("bad frame: unknown type {t:#04x}"),
            FrameError::Truncated => "bad frame: body shorter than its fields".into(),
        }
    }
}

/// Parses the frame at the front of `buf`: `Ok(None)` until it is complete;
/// `Ok(Some((frame, n)))` with the `n` bytes it took.
pub fn parse(buf: &[u8], max: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len as usize > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        // Reject an unknown type as soon as it is visible.
        if buf.len() > 4 && !matches!(buf[4], AUTH | PUBLISH | PING) {
            return Err(FrameError::UnknownType(buf[4]));
        }
        return Ok(None);
    }
    let body = &buf[5..total];
    let frame = match buf[4] {
        AUTH => Frame::Auth(body),
        PING => Frame::Ping,
        PUBLISH => {
            if body.len() < 2 {
                return Err(FrameError::Truncated);
            }
            let clen = u16::from_be_bytes([body[0], body[1]]) as usize;
            if body.len() < 2 + clen {
                return Err(FrameError::Truncated);
            }
            Frame::Publish {
                channel: &body[2..2 + clen],
                data: &body[2 + clen..],
            }
        }
        t => return Err(FrameError::UnknownType(t)),
    };
    Ok(Some((frame, total)))
}

fn put_frame(out: &mut BytesMut, kind: u8, body_len: usize) {
    out.put_u32(1 + body_len as u32);
    out.put_u8(kind);
}

pub fn put_auth_ok(out: &mut BytesMut) {
    put_frame(out, AUTH_OK, 0);
}

pub fn put_pong(out: &mut BytesMut) {
    put_frame(out, PONG, 0);
}

pub fn put_published(out: &mut BytesMut, offset: u64, epoch: &str) {
    let epoch = &epoch.as_bytes()[..epoch.len().min(255)];
    put_frame(out, PUBLISHED, 8 + 1 + epoch.len());
    out.put_u64(offset);
    out.put_u8(epoch.len() as u8);
    out.put_slice(epoch);
}

pub fn put_error(out: &mut BytesMut, code: u16, message: &str) {
    put_frame(out, ERROR, 2 + message.len());
    out.put_u16(code);
    out.put_slice(message.as_bytes());
}

/// Client-side encoders (tests, the bench, examples in Rust).
pub fn put_auth(out: &mut BytesMut, key: &str) {
    put_frame(out, AUTH, key.len());
    out.put_slice(key.as_bytes());
}

pub fn put_publish(out: &mut BytesMut, channel: &str, data: &[u8]) {
    put_frame(out, PUBLISH, 2 + channel.len() + data.len());
    out.put_u16(channel.len() as u16);
    out.put_slice(channel.as_bytes());
    out.put_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_partial_input() {
        let mut out = BytesMut::new();
        put_auth(&mut out, "key");
        put_publish(&mut out, "news", br#"{"a":1}"#);
        let wire = out.freeze();
        for cut in 0..wire.len() {
            let r = parse(&wire[..cut], 1024).unwrap();
            if cut < 8 {
                assert_eq!(r, None, "cut {cut}");
            }
        }
        let (f, n) = parse(&wire, 1024).unwrap().unwrap();
        assert_eq!(f, Frame::Auth(b"key"));
        let (f, m) = parse(&wire[n..], 1024).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Publish {
                channel: b"news",
                data: br#"{"a":1}"#
            }
        );
        assert_eq!(n + m, wire.len());
    }

    #[test]
    fn framing_errors() {
        assert_eq!(parse(&[0, 0, 0, 0], 16), Err(FrameError::Empty));
        assert!(matches!(
            parse(&[0, 0, 1, 0, 2], 16),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(
            parse(&[0, 0, 0, 9, 0x7f], 16),
            Err(FrameError::UnknownType(0x7f))
        );
        assert_eq!(
            parse(&[0, 0, 0, 2, PUBLISH, 0], 16),
            Err(FrameError::Truncated)
        );
        assert_eq!(
            parse(&[0, 0, 0, 3, PUBLISH, 0, 5], 16),
            Err(FrameError::Truncated)
        );
    }

    #[test]
    fn published_encoding() {
        let mut out = BytesMut::new();
        put_published(&mut out, 42, "abcd");
        assert_eq!(
            &out[..],
            &[0, 0, 0, 14, PUBLISHED, 0, 0, 0, 0, 0, 0, 0, 42, 4, b'a', b'b', b'c', b'd']
        );
    }
}
