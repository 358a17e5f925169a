//! Codec errors. Every variant maps to the close code the peer is sent
//! (`WsError::close_code`, in `close.rs`).

use std::fmt;

/// The peer broke RFC 6455 framing rules (close 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// A client frame without the mask bit (§5.1).
    UnmaskedFrame,
    /// A server frame with the mask bit, seen by a client decoder.
    MaskedFrame,
    /// RSV1-3 set with no extension negotiated.
    ReservedBits,
    /// Opcodes 3-7 and 0xB-0xF.
    UnknownOpcode(u8),
    /// A control frame with FIN clear.
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    ControlTooLong,
    /// A continuation frame with no message started.
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// The most significant bit of a 64-bit length was set.
    LengthOverflow,
    /// A close frame with a one-byte payload.
    CloseTooShort,
    /// A close code that must not be sent on the wire.
    BadCloseCode(u16),
    /// A compressed message (RSV1) that does not inflate.
    BadCompression,
}

/// A size limit was exceeded (close 1009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityError {
    FrameTooLarge { size: u64, max: usize },
    MessageTooLarge { size: u64, max: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    Protocol(ProtocolError),
    Capacity(CapacityError),
    /// A text message or close reason that is not UTF-8 (close 1007).
    InvalidUtf8,
}

impl WsError {
    /// A short reason for the close frame and the logs.
    pub fn reason(&self) -> &'static str {
        match self {
            WsError::Protocol(p) => match p {
                ProtocolError::UnmaskedFrame => "unmasked client frame",
                ProtocolError::MaskedFrame => "masked server frame",
                ProtocolError::ReservedBits => "reserved bits set",
                ProtocolError::UnknownOpcode(_) => "unknown opcode",
                ProtocolError::FragmentedControl => "fragmented control frame",
                ProtocolError::ControlTooLong => "control frame too long",
                ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
                ProtocolError::ExpectedContinuation => "expected continuation frame",
                ProtocolError::LengthOverflow => "payload length overflow",
                ProtocolError::CloseTooShort => "close payload of one byte",
                ProtocolError::BadCloseCode(_) => "invalid close code",
                ProtocolError::BadCompression => "invalid compressed message",
            },
            WsError::Capacity(CapacityError::FrameTooLarge { .. }) => "frame too large",
            WsError::Capacity(CapacityError::MessageTooLarge { .. }) => "message too large",
            WsError::InvalidUtf8 => "invalid UTF-8",
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(ProtocolError::UnknownOpcode(op)) => {
                write!(f, "unknown opcode {op:#x}")
            }
            WsError::Protocol(ProtocolError::BadCloseCode(c)) => {
                write!(f, "invalid close code {c}")
            }
            WsError::Capacity(CapacityError::FrameTooLarge { size, max })
            | WsError::Capacity(CapacityError::MessageTooLarge { size, max }) => {
                write!(f, "{} ({size} > {max} bytes)", self.reason())
            }
            _ => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for WsError {}

impl From<ProtocolError> for WsError {
    fn from(e: ProtocolError) -> Self {
        WsError::Protocol(e)
    }
}

impl From<CapacityError> for WsError {
    fn from(e: CapacityError) -> Self {
        WsError::Capacity(e)
    }
}
