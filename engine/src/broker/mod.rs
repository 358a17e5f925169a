//! The broker seam: where a publication gets its offset and reaches the
//! shards (and nodes) with subscribers, where history and presence live.
//!
//! - [`memory`]: one node. Every channel has an owner shard (FNV-1a of the
//!   name modulo the shard count) that keeps its stream position, history
//!   and presence; shards talk to owners over the mesh.
//! - [`redis`]: many nodes. Publications go through Redis PUB/SUB, history
//!   is a Redis stream plus a meta hash kept by one Lua script per publish,
//!   presence is a hash plus an expiring sorted set, and nodes exchange
//!   control messages and heartbeats on a control channel. The Redis I/O runs
//!   on a thread of its own; shards never wait on it.
//!
//! Presence sits beside the broker behind its own seam, `PresenceManager`,
//! with the same two implementations.
//!
//! Both answer on the shard that asked: results arrive as mesh messages and
//! complete there (a reply line to a connection, a waiting API call, or the
//! hub's subscribe step).

pub mod memory;
pub mod redis;

// The seam itself (the traits and their types) belongs to the hub, which
// holds one of each per shard; the implementations are here.
pub use crate::hub::seam::*;
