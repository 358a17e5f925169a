//! Close frames and close codes (RFC 6455 §7.4, plus Centrifugo's 3xxx/4xxx).

use bytes::Bytes;

use super::error::{ProtocolError, WsError};

pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Reserved: "no status received". Never sent on the wire.
    pub const NO_STATUS: u16 = 1005;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A parsed close frame payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    pub code: u16,
    /// Valid UTF-8 (checked by [`parse_close_payload`]).
    pub reason: Bytes,
}

/// Whether `code` may appear in a close frame on the wire.
pub fn is_valid_wire_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Parses a close frame payload: empty (no code), or a 2-byte code plus a
/// UTF-8 reason.
pub fn parse_close_payload(payload: Bytes) -> Result<Option<CloseFrame>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ProtocolError::CloseTooShort.into()),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_wire_code(code) {
                return Err(ProtocolError::BadCloseCode(code).into());
            }
            let reason = payload.slice(2..);
            if simdutf8::basic::from_utf8(&reason).is_err() {
                return Err(WsError::InvalidUtf8);
            }
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

impl WsError {
    /// The close code to send the peer for this error. (Here, not in
    /// `error.rs`: errors know nothing of close frames.)
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => code::PROTOCOL_ERROR,
            WsError::Capacity(_) => code::MESSAGE_TOO_BIG,
            WsError::InvalidUtf8 => code::INVALID_PAYLOAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 3000, 3500, 4999] {
            assert!(is_valid_wire_code(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_wire_code(bad), "{bad}");
        }
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close_payload(Bytes::new()), Ok(None));
        assert!(parse_close_payload(Bytes::from_static(&[3])).is_err());
        let f = parse_close_payload(Bytes::from_static(b"\x03\xe8bye"))
            .unwrap()
            .unwrap();
        assert_eq!((f.code, &f.reason[..]), (1000, &b"bye"[..]));
        assert_eq!(
            parse_close_payload(Bytes::from_static(b"\x03\xe8\xff")),
            Err(WsError::InvalidUtf8)
        );
        assert!(parse_close_payload(Bytes::from_static(b"\x03\xed")).is_err());
    }
}
