//! ringcast: a WebSocket real-time messaging engine on io_uring, one shard per
//! core. See `docs/architecture.md` for the shape; this file only wires modules.

pub mod cli;
pub mod echo;
pub mod server;
pub mod shard;
pub mod sys;
pub mod ws;

/// The version printed at start and in the connect reply.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
