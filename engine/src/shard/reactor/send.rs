//! Output: a dirty connection's close request is acted on and its queue is
//! sent, as much as the socket takes. Every byte that leaves a connection's
//! queue for the kernel passes through [`sent_to_kernel`], once.

use std::io;
use std::rc::Rc;

use super::close::{self, Phase};
use super::{remove, Entry};
use crate::shard::conn::Conn;
use crate::shard::conn::End;
use crate::shard::service::Service;
use crate::shard::stats::ShardStats;
use crate::shard::ShardCtx;

/// Acts on a connection's close request and sends what it has queued.
pub(super) fn flush_conn<S: Service>(shard: &Rc<ShardCtx<S>>, token: u32) {
    let end = {
        let mut slab = shard.reactor.slab.borrow_mut();
        let Some(e) = slab.get_mut(token as usize).and_then(|e| e.as_mut()) else {
            return;
        };
        e.conn.clear_dirty();
        close::begin(shard, token, e);
        if e.write_blocked {
            return;
        }
        match write_queue(shard, e) {
            Err(_) => Some(End::Gone),
            Ok(false) => {
                e.write_blocked = true;
                // May cut it as a slow consumer: the close is acted on when
                // the flush pass comes back to it.
                e.conn.set_blocked(true);
                None
            }
            Ok(true) if e.phase == Phase::Closing => close::linger(shard, e),
            Ok(true) => {
                if e.read_pending && !shard.reactor.pending_reads.borrow().contains(&token) {
                    shard.reactor.pending_reads.borrow_mut().push(token);
                }
                None
            }
        }
    };
    if let Some(end) = end {
        remove(shard, token, end);
    }
}

/// Sends as much of the queue as the socket takes. `Ok(true)`: drained
/// (or held); `Ok(false)`: the socket is full, wait for it to be writable.
fn write_queue<S: Service, St>(shard: &ShardCtx<S>, e: &Entry<St>) -> io::Result<bool> {
    while e.conn.has_output() && !e.conn.is_held() {
        match shard.reactor.io.send_front(&e.sock, &e.conn) {
            Ok(n) => sent_to_kernel(&shard.stats, &e.conn, n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

/// The send-completion point: the kernel took the first `n` queued bytes
/// of `conn` (one send). They leave the queue here; frames whose last byte
/// went are counted as sent, and the timed deliveries among them get their
/// latency recorded (`Conn::consume`): this is its only caller.
#[inline]
fn sent_to_kernel(stats: &ShardStats, conn: &Conn, n: usize) {
    let frames = conn.consume(n);
    stats.sent(n, frames);
}
