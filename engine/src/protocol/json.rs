//! Writing JSON by hand on the hot path: replies and pushes are assembled from
//! pre-validated pieces (raw `data` from the publisher, pre-encoded client info)
//! instead of going through a generic serializer.

use bytes::{BufMut, BytesMut};

/// Appends `s` as a JSON string literal (quotes and escapes included).
pub fn put_str(out: &mut BytesMut, s: &str) {
    out.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.put_slice(&bytes[start..i]);
                let hex = b"0123456789abcdef";
                out.put_slice(b"\\u00");
                out.put_u8(hex[(b >> 4) as usize]);
                out.put_u8(hex[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(esc);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
    out.put_u8(b'"');
}

/// Appends an unsigned integer in decimal.
pub fn put_u64(out: &mut BytesMut, n: u64) {
    let mut buf = itoa_buf(n);
    out.put_slice(buf.as_bytes_mut());
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_serde() {
        for s in [
            "plain",
            "quo\"te",
            "back\\slash",
            "nl\n\t\r",
            "\u{1}\u{1f}",
            "ünï€😀",
            "",
        ] {
            let mut out = BytesMut::new();
            put_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn integers() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = BytesMut::new();
            put_u64(&mut out, n);
            assert_eq!(std::str::from_utf8(&out).unwrap(), n.to_string());
        }
    }
}
