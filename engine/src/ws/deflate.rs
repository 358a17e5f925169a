//! permessage-deflate (RFC 7692): the negotiation, and compressing and
//! inflating whole messages. No I/O.
//!
//! ringcast always answers `server_no_context_takeover;
//! client_no_context_takeover` (§7.1.1.1 and §7.1.1.2 let a server add both
//! to any offer). Every message is then compressed on its own, so a
//! connection keeps no compression state at all (a context would cost a
//! 32 KiB window per connection, against a few hundred bytes for the rest of
//! it), and a publication is compressed once for every subscriber on a shard
//! (`shard::framing`). A shard's compressor and inflater are reset between
//! messages.
//!
//! A client may limit the server's window (`server_max_window_bits`, 9 to
//! 15): below 15 its messages are compressed with a 9-bit window (one more
//! shared framing, not one per value); 8 is declined (zlib's smallest raw
//! window is 9). Its `client_max_window_bits` is a hint about its own side
//! and always fits the 15-bit inflater.

use std::cell::RefCell;

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension token.
pub const NAME: &str = "permessage-deflate";

/// What ringcast answers to an acceptable offer (plus the server window
/// when the offer limits it).
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The window of the small-window framing, in bits.
pub const SMALL_WINDOW: u8 = 9;

/// An accepted offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The `server_max_window_bits` the client asked for, if any.
    pub server_max_window_bits: Option<u8>,
}

impl Accepted {
    /// Messages must be compressed with a window below the full 15 bits.
    pub fn small_window(&self) -> bool {
        self.server_max_window_bits.is_some_and(|b| b < 15)
    }

    /// The `Sec-WebSocket-Extensions` value of the response.
    pub fn response(&self) -> String {
        match self.server_max_window_bits {
            Some(b) => format!("{RESPONSE}; server_max_window_bits={b}"),
            None => RESPONSE.to_string(),
        }
    }
}

/// Messages shorter than this are sent uncompressed (RSV1 clear), which the
/// extension allows message by message: deflating a ping or a short reply
/// costs more than the bytes it could save.
pub const MIN_COMPRESS: usize = 128;

/// The tail every deflated message ends with on the wire removed (§7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first offer in the `Sec-WebSocket-Extensions` header values that is
/// a permessage-deflate ringcast accepts.
pub fn negotiate(header_values: &[String]) -> Option<Accepted> {
    header_values
        .iter()
        .flat_map(|v| v.split(','))
        .find_map(acceptable)
}

/// One offer: `permessage-deflate` and parameters ringcast can honour, each
/// at most once.
fn acceptable(offer: &str) -> Option<Accepted> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next().is_some_and(|n| n.eq_ignore_ascii_case(NAME)) {
        return None;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut accepted = Accepted {
        server_max_window_bits: None,
    };
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        match (name, value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            ("server_max_window_bits", Some(v)) => {
                let bits = window_bits(v).filter(|&b| b >= SMALL_WINDOW)?;
                accepted.server_max_window_bits = Some(bits);
            }
            _ => return None,
        }
    }
    Some(accepted)
}

fn window_bits(v: &str) -> Option<u8> {
    let bits: u8 = v.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

thread_local! {
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    static DEFLATE_SMALL: RefCell<Compress> = RefCell::new(Compress::new_with_window_bits(
        Compression::fast(),
        false,
        SMALL_WINDOW,
    ));
    static INFLATE: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Deflates one message (fresh context), without the trailing `00 00 ff ff`;
/// with the 9-bit window when `small`.
pub fn compress(payload: &[u8], small: bool) -> Vec<u8> {
    let which = if small { &DEFLATE_SMALL } else { &DEFLATE };
    which.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.len() + 64);
            }
            let before = c.total_in();
            c.compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate of a complete buffer cannot fail");
            input = &input[(c.total_in() - before) as usize..];
            // Done once all input is in and the sync flush's tail is out
            // (with room to spare, so it was not cut short).
            if input.is_empty() && out.ends_with(&TAIL) && out.capacity() > out.len() {
                break;
            }
        }
        out.truncate(out.len() - TAIL.len());
        out
    })
}

/// Why a message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Not a valid deflate stream.
    Corrupt,
    /// It inflates to more than the message limit.
    TooLarge,
}

/// Inflates one message (fresh context), at most `max` bytes of it.
pub fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    INFLATE.with(|d| {
        let mut d = d.borrow_mut();
        d.reset(false);
        let mut out = Vec::with_capacity((compressed.len() * 3).clamp(64, max.max(64)));
        for part in [compressed, &TAIL[..]] {
            let mut input = part;
            loop {
                if out.len() == out.capacity() {
                    if out.len() > max {
                        return Err(InflateError::TooLarge);
                    }
                    out.reserve(out.len().clamp(64, (max + 1 - out.len()).max(64)));
                }
                let (before_in, before_out) = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                if out.len() > max {
                    return Err(InflateError::TooLarge);
                }
                let read = (d.total_in() - before_in) as usize;
                let wrote = (d.total_out() - before_out) as usize;
                input = &input[read..];
                if matches!(status, Status::StreamEnd) {
                    // A final block: nothing after it belongs to the message.
                    return Ok(out);
                }
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
                if read == 0 && wrote == 0 && out.len() < out.capacity() {
                    return Err(InflateError::Corrupt);
                }
            }
        }
        Ok(out)
    })
}

/// Appends `payload` compressed as one final frame with RSV1 set, or plain
/// when it is short. `opcode` is the message's (text or binary); `small`:
/// the 9-bit window.
pub fn put_message(out: &mut BytesMut, opcode: super::OpCode, payload: &[u8], small: bool) {
    if payload.len() < MIN_COMPRESS {
        super::frame::put_header(out, true, opcode, payload.len());
        out.put_slice(payload);
        return;
    }
    let body = compress(payload, small);
    let start = out.len();
    super::frame::put_header(out, true, opcode, body.len());
    out[start] |= RSV1;
    out.put_slice(&body);
}

/// The "per-message compressed" bit of the first frame byte.
pub const RSV1: u8 = 0x40;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers() {
        let o = |s: &str| negotiate(&[s.to_string()]).is_some();
        assert!(o("permessage-deflate"));
        assert!(o("permessage-deflate; client_max_window_bits"));
        assert!(o(
            "permessage-deflate; client_max_window_bits=8; client_no_context_takeover"
        ));
        assert!(o("permessage-deflate; server_max_window_bits=15"));
        let n = |s: &str| negotiate(&[s.to_string()]);
        let small = n("permessage-deflate; server_max_window_bits=10").unwrap();
        assert!(small.small_window());
        assert!(small.response().ends_with("; server_max_window_bits=10"));
        assert!(!n("permessage-deflate").unwrap().small_window());
        assert_eq!(n("permessage-deflate").unwrap().response(), RESPONSE);
        assert!(!o("permessage-deflate; server_max_window_bits=8"));
        assert!(!o("permessage-deflate; server_max_window_bits"));
        assert!(o(
            "x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover"
        ));
        // The first offer asks for too small a window: the fallback is taken.
        assert_eq!(
            n("permessage-deflate; server_max_window_bits=8, permessage-deflate"),
            n("permessage-deflate")
        );
        assert!(!o("permessage-deflate; client_max_window_bits=16"));
        assert!(!o("permessage-deflate; unknown_param"));
        assert!(!o(
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
        ));
        assert!(!o("permessage-deflate; server_no_context_takeover=1"));
        assert!(!o("x-webkit-deflate-frame"));
        assert!(negotiate(&[]).is_none());
    }

    #[test]
    fn round_trips() {
        for payload in [
            Vec::new(),
            b"{}".to_vec(),
            br#"{"push":{"channel":"news","pub":{"data":{"title":"hello hello hello"}}}}"#
                .repeat(40),
            (0..200_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ] {
            for small in [false, true] {
                let c = compress(&payload, small);
                assert!(!c.ends_with(&TAIL));
                assert_eq!(&inflate(&c, 1 << 20).unwrap()[..], &payload[..]);
            }
        }
    }

    #[test]
    fn inflating_is_bounded_and_checked() {
        let big = vec![b'a'; 100_000];
        let c = compress(&big, false);
        assert!(c.len() < 1000, "compresses well: {}", c.len());
        assert_eq!(inflate(&c, 99_999), Err(InflateError::TooLarge));
        assert_eq!(inflate(&c, 100_000).unwrap().len(), 100_000);
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff], 1000),
            Err(InflateError::Corrupt)
        );
        // RFC 7692 §7.2.3.1's example: "Hello" compressed.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(&inflate(&hello, 100).unwrap()[..], b"Hello");
    }
}
