//! Closing a connection: our close frame goes out after what the
//! connection has queued, the write side is shut, and the socket is drained
//! until the peer closes too (so the close frame is not destroyed by a
//! reset) or the close timeout passes; a sweep drops the connections whose
//! close outlived it.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::io::Io;
use super::{remove, Entry, READ_CHUNK};
use crate::shard::conn::End;
use crate::shard::conn::SLOW_CONSUMER;
use crate::shard::service::Service;
use crate::shard::ShardCtx;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Open,
    /// Our close frame is queued; flushing it.
    Closing,
    /// Close frame sent and write side shut: waiting for the peer's FIN.
    Lingering,
}

/// How often closing connections are checked against their deadlines.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Acts on a close the connection asked for (`Conn::close_with`), if any:
/// whatever was held goes, then the close frame; the service is told the
/// connection is gone, and the close timeout starts.
pub(super) fn begin<S: Service>(shard: &ShardCtx<S>, token: u32, e: &mut Entry<S::State>) {
    if e.phase != Phase::Open {
        return;
    }
    let Some(req) = e.conn.take_close() else {
        return;
    };
    if req.code == SLOW_CONSUMER {
        shard.stats.slow_disconnect();
    }
    e.conn.unhold();
    e.conn
        .push_final(e.conn.framing().close(req.code, &req.reason));
    e.phase = Phase::Closing;
    if let Some(s) = e.spill.as_mut() {
        s.frame = BytesMut::new();
    }
    let deadline = Instant::now() + shard.cfg.close_timeout;
    shard
        .reactor
        .closing
        .borrow_mut()
        .push((token, e.generation, deadline));
    if let Some(state) = e.state.take() {
        shard.service.on_close(&e.conn, state);
    }
}

/// The close frame is out: half-close so it is not lost to a reset, then
/// wait for the peer to close too. `Some` when the connection is done.
pub(super) fn linger<S: Service>(shard: &ShardCtx<S>, e: &mut Entry<S::State>) -> Option<End> {
    e.phase = Phase::Lingering;
    if shard.reactor.io.shutdown_write(&e.sock).is_err() {
        Some(End::Closing)
    } else {
        discard_input(&shard.reactor.io, &shard.scratch, e)
    }
}

/// After our close frame (or on an HTTP stream, whose input means nothing):
/// read and drop whatever the peer still sends, into the shard's scratch
/// buffer (a buffer of its own would be one more allocation per stream).
/// `Some` once the peer has closed.
pub(super) fn discard_input<St>(
    io: &Io,
    scratch: &RefCell<BytesMut>,
    e: &mut Entry<St>,
) -> Option<End> {
    let mut buf = scratch.take();
    let end = loop {
        buf.clear();
        match io.recv(&e.sock, &mut buf, READ_CHUNK) {
            Ok(0) => break Some(End::Closing),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break None,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break Some(End::Closing),
        }
    };
    buf.clear();
    scratch.replace(buf);
    end
}

/// Closes connections whose close handshake outlived the close timeout.
pub(super) async fn sweep_deadlines<S: Service>(shard: Rc<ShardCtx<S>>) {
    loop {
        monoio::time::sleep(SWEEP_EVERY).await;
        let now = Instant::now();
        let closing = std::mem::take(&mut *shard.reactor.closing.borrow_mut());
        let mut keep = Vec::with_capacity(closing.len());
        for (token, generation, deadline) in closing {
            let phase = shard
                .reactor
                .slab
                .borrow()
                .get(token as usize)
                .and_then(|e| e.as_ref())
                .filter(|e| e.generation == generation)
                .map(|e| e.phase);
            match phase {
                Some(Phase::Closing) if deadline <= now => remove(&shard, token, End::Abandoned),
                Some(Phase::Lingering) if deadline <= now => remove(&shard, token, End::Closing),
                Some(Phase::Closing | Phase::Lingering) => keep.push((token, generation, deadline)),
                _ => {}
            }
        }
        shard.reactor.closing.borrow_mut().extend(keep);
    }
}
