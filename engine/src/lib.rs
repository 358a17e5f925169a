//! ringcast: a WebSocket real-time messaging engine on io_uring, one shard per
//! core. See `docs/architecture.md` for the shape; this file only wires modules.
//!
//! - [`ws`]: the RFC 6455 codec (no I/O)
//! - [`http`]: HTTP/1.1 requests and responses for the plain-HTTP ports (no I/O)
//! - [`protocol`]: Centrifugo client protocol parsing and encoding (no I/O)
//! - [`shard`]: runtime, listeners, the connection task
//! - [`hub`]: local subscriptions, the mesh between shards, the node's calls
//! - [`broker`]: where publications get offsets and travel: memory (owner
//!   shards) or Redis (many nodes); history and presence
//! - [`client`]: the client-protocol service that ties them together
//! - [`transport`]: the client protocol over HTTP: streams, SSE, emulation
//! - [`api`]: the internal port: server API, metrics, health
//! - [`echo`]: the echo service (conformance and benchmark target)

pub mod api;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod client;
pub mod config;
pub mod echo;
pub mod http;
pub mod hub;
pub mod node;
pub mod protocol;
pub mod proxy;
pub mod shard;
pub mod sys;
pub mod transport;
pub mod ws;

/// The version printed at start and in the connect reply.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
