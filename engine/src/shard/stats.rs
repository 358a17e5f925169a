//! Per-shard counters, written only by their shard (plain `Cell`s, no atomics
//! on the hot path) and published to a shared snapshot for `/metrics`.

use std::cell::Cell;

use super::conn::End;

#[derive(Debug, Default)]
pub struct ShardStats {
    /// "io_uring" or "epoll", set when the shard starts.
    pub driver: Cell<&'static str>,
    pub messages_in: Cell<u64>,
    pub slow_disconnects: Cell<u64>,
    pub connections: Cell<u64>,
    pub opened: Cell<u64>,
    pub closed_gone: Cell<u64>,
    pub closed_clean: Cell<u64>,
    pub closed_abandoned: Cell<u64>,
    pub handshake_failures: Cell<u64>,
    pub refused_at_ceiling: Cell<u64>,
    pub protocol_errors: Cell<u64>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub frames_out: Cell<u64>,
    pub sends: Cell<u64>,
    /// Flush passes held back after a big pass of small sends.
    pub holds: Cell<u64>,
    /// Open connections by transport (`Framing as usize`).
    pub by_transport: [Cell<u64>; super::framing::ALL.len()],
}

fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get() + by);
}

impl ShardStats {
    /// A connection on `framing` joined (`+1`) or left (`-1`) the reactor.
    pub(crate) fn transport(&self, framing: super::framing::Framing, joined: bool) {
        let c = &self.by_transport[framing as usize];
        c.set(if joined {
            c.get() + 1
        } else {
            c.get().saturating_sub(1)
        });
    }

    pub(crate) fn opened(&self) {
        bump(&self.opened, 1);
        bump(&self.connections, 1);
    }

    pub(crate) fn closed(&self, end: End) {
        self.connections.set(self.connections.get() - 1);
        bump(
            match end {
                End::Gone => &self.closed_gone,
                End::Closing => &self.closed_clean,
                End::Abandoned => &self.closed_abandoned,
            },
            1,
        );
    }

    /// Connections that left the reactor, however they ended.
    pub(crate) fn closed_total(&self) -> u64 {
        self.closed_gone.get() + self.closed_clean.get() + self.closed_abandoned.get()
    }

    pub(crate) fn handshake_failed(&self) {
        bump(&self.handshake_failures, 1);
    }

    pub(crate) fn refused(&self) {
        bump(&self.refused_at_ceiling, 1);
    }

    pub(crate) fn protocol_error(&self) {
        bump(&self.protocol_errors, 1);
    }

    pub(crate) fn message_in(&self) {
        bump(&self.messages_in, 1);
    }

    pub(crate) fn slow_disconnect(&self) {
        bump(&self.slow_disconnects, 1);
    }

    pub(crate) fn received(&self, n: usize) {
        bump(&self.bytes_in, n as u64);
    }

    pub(crate) fn held(&self) {
        bump(&self.holds, 1);
    }

    pub(crate) fn sent(&self, bytes: usize, frames: usize) {
        bump(&self.bytes_out, bytes as u64);
        bump(&self.frames_out, frames as u64);
        bump(&self.sends, 1);
    }
}
