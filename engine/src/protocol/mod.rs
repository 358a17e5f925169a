//! Wire protocols above WebSocket. Parsers and encoders only: no I/O.

pub mod client;
pub mod codes;
pub mod command;
pub mod delta;
pub mod fossil;
pub mod json;
pub mod protobuf;
pub mod publisher;
pub mod push;
pub mod tags;
