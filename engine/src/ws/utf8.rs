//! Incremental UTF-8 validation for fragmented text messages: each fragment is
//! checked as it arrives, so an invalid sequence fails fast instead of after the
//! whole message has been buffered.

/// Outcome of validating a prefix of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf8Progress {
    /// Everything up to this index is valid; what follows is an incomplete
    /// sequence that later bytes may complete.
    ValidUpTo(usize),
    /// The bytes can never become valid UTF-8.
    Invalid,
}

/// Validates `buf[from..]`, where `from` is on a character boundary.
pub fn validate_from(buf: &[u8], from: usize) -> Utf8Progress {
    let tail = &buf[from..];
    match simdutf8::compat::from_utf8(tail) {
        Ok(_) => Utf8Progress::ValidUpTo(buf.len()),
        Err(e) => match e.error_len() {
            // The input ends inside a sequence: wait for more.
            None => Utf8Progress::ValidUpTo(from + e.valid_up_to()),
            Some(_) => Utf8Progress::Invalid,
        },
    }
}

/// Whole-message validation (fast path for unfragmented text).
#[inline]
pub fn is_valid(buf: &[u8]) -> bool {
    simdutf8::basic::from_utf8(buf).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sequences_wait_for_more() {
        let s = "κόσμε".as_bytes();
        for cut in 0..s.len() {
            match validate_from(&s[..cut], 0) {
                Utf8Progress::ValidUpTo(n) => assert!(n <= cut && cut - n < 4),
                Utf8Progress::Invalid => panic!("prefix {cut} judged invalid"),
            }
        }
        assert_eq!(validate_from(s, 0), Utf8Progress::ValidUpTo(s.len()));
    }

    #[test]
    fn invalid_fails_fast() {
        assert_eq!(validate_from(b"ab\xffcd", 0), Utf8Progress::Invalid);
        // A lone continuation byte can never start a character.
        assert_eq!(validate_from(b"\x80", 0), Utf8Progress::Invalid);
        // Surrogates encoded in UTF-8 are invalid.
        assert_eq!(validate_from(b"\xed\xa0\x80", 0), Utf8Progress::Invalid);
        assert!(!is_valid(b"\xf4\x90\x80\x80"));
    }
}
