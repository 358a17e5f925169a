//! The TCP publisher framing over arbitrary bytes: the first byte picks a
//! small frame limit, the rest is the stream. Frames are consumed in a loop
//! until the parser needs more input or fails. It must never panic; every
//! frame must lie inside the input and within the limit, re-encode to the
//! same bytes, and no prefix of the input may parse differently.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast::protocol::publisher::{parse, put_auth, put_publish, Frame, FrameError};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, mut wire)) = data.split_first() else {
        return;
    };
    let max = [16, 17, 64, 300, 4096, 1 << 20][(knobs & 0x7) as usize % 6];
    let mut frames = 0;
    loop {
        let result = parse(wire, max);
        prefixes_agree(wire, max, &result);
        match result {
            Ok(Some((frame, n))) => {
                assert!(n >= 5 && n <= wire.len(), "frame of {n} bytes");
                assert!(n - 4 <= max, "frame of {n} bytes over the limit {max}");
                check_frame(&frame, &wire[..n]);
                wire = &wire[n..];
                frames += 1;
                assert!(frames <= data.len());
            }
            Ok(None) => {
                if wire.len() >= 4 {
                    let len = u32::from_be_bytes([wire[0], wire[1], wire[2], wire[3]]) as usize;
                    assert!(len > 0 && len <= max && wire.len() < 4 + len);
                }
                break;
            }
            Err(e) => {
                assert!(!e.message().is_empty());
                if let FrameError::TooLarge { len, max: m } = e {
                    assert!(len as usize > m && m == max);
                }
                break;
            }
        }
    }
});

/// The frame's fields lie inside its bytes, and encoding it again gives them back.
fn check_frame(frame: &Frame<'_>, bytes: &[u8]) {
    let inside = |s: &[u8]| {
        let r = bytes.as_ptr_range();
        s.is_empty() || (r.start <= s.as_ptr() && s.as_ptr_range().end <= r.end)
    };
    let mut again = BytesMut::new();
    match *frame {
        Frame::Auth(key) => {
            assert!(inside(key));
            assert_eq!(key.len(), bytes.len() - 5);
            match std::str::from_utf8(key) {
                Ok(k) => put_auth(&mut again, k),
                Err(_) => return,
            }
        }
        Frame::Publish { channel, data } => {
            assert!(inside(channel) && inside(data));
            assert_eq!(channel.len() + data.len(), bytes.len() - 7);
            match std::str::from_utf8(channel) {
                Ok(c) => put_publish(&mut again, c, data),
                Err(_) => return,
            }
        }
        // A ping's body is ignored: only an empty one re-encodes the same.
        Frame::Ping => {
            if bytes.len() > 5 {
                return;
            }
            again.extend_from_slice(&[0, 0, 0, 1, 0x03]);
        }
    }
    assert_eq!(&again[..], bytes, "re-encoded frame differs");
}

/// Feeding the stream a byte at a time (a short read) must never produce a
/// frame early or a different outcome: every prefix of the input either needs
/// more, or says what the whole input says.
fn prefixes_agree(wire: &[u8], max: usize, full: &Result<Option<(Frame<'_>, usize)>, FrameError>) {
    let end = match full {
        Ok(Some((_, n))) => *n,
        _ => wire.len(),
    };
    // Bounded: long inputs are checked at their first 64 cut points and the end.
    for cut in (0..end.min(64)).chain(end.saturating_sub(2)..end) {
        match (parse(&wire[..cut], max), full) {
            (Ok(None), _) => {}
            (Err(e), Err(f)) => assert_eq!(e, *f, "prefix of {cut} bytes"),
            (other, _) => panic!("prefix of {cut} bytes gave {other:?}, the whole {full:?}"),
        }
    }
}
