//! RFC 6455 WebSocket codec. Pure functions over byte buffers: no I/O, no
//! allocation beyond what the caller's `BytesMut` already holds, payloads handed
//! on as `Bytes` slices of the read buffer. The shard's connection loop
//! (`crate::shard::conn`) drives it.

pub mod close;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod utf8;

pub use close::CloseFrame;
pub use error::{CapacityError, ProtocolError, WsError};
pub use frame::{FrameHeader, OpCode};
pub use message::{Decoder, DecoderConfig, Message, Role};
