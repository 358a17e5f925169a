//! Input: a connection's bytes are received into the shard's scratch
//! buffer, decoded into WebSocket messages and handed to the service; the
//! control frames are answered here (a ping gets its pong, a close is
//! echoed). Only an incomplete frame's tail is copied into the
//! connection's own buffer.

use std::io;
use std::rc::Rc;

use bytes::BytesMut;

use super::close::{self, Phase};
use super::{remove, send, Entry, READ_CHUNK};
use crate::shard::conn::End;
use crate::shard::service::{OutboundPolicy, Service};
use crate::shard::ShardCtx;
use crate::ws::close::code;
use crate::ws::frame::{encode, OpCode};
use crate::ws::{Decoder, DecoderConfig, Message};

/// recv(2) calls per connection per pass before others get a turn.
const READS_PER_TURN: usize = 4;

/// Reads from connections that had more input than one turn takes.
pub(super) fn read_pending<S: Service>(shard: &Rc<ShardCtx<S>>) {
    let pending = std::mem::take(&mut *shard.reactor.pending_reads.borrow_mut());
    for token in pending {
        read_ready(shard, token);
    }
}

/// Reads what is there, hands complete messages to the service, and sends
/// what that queued.
pub(super) fn read_ready<S: Service>(shard: &Rc<ShardCtx<S>>, token: u32) {
    let end = {
        let mut slab = shard.reactor.slab.borrow_mut();
        let Some(e) = slab.get_mut(token as usize).and_then(|e| e.as_mut()) else {
            return;
        };
        e.read_pending = false;
        match e.phase {
            Phase::Open if e.conn.framing().reads_websocket() => read_open(shard, token, e),
            // An HTTP stream's request came whole before it was adopted;
            // what the peer sends after it means nothing, but its end does.
            Phase::Open => {
                close::discard_input(&shard.reactor.io, &shard.scratch, e).map(|_| End::Gone)
            }
            Phase::Closing | Phase::Lingering => {
                close::discard_input(&shard.reactor.io, &shard.scratch, e)
            }
        }
    };
    if let Some(end) = end {
        remove(shard, token, end);
    } else {
        send::flush_conn(shard, token);
    }
}

fn read_open<S: Service>(
    shard: &Rc<ShardCtx<S>>,
    token: u32,
    e: &mut Entry<S::State>,
) -> Option<End> {
    let cfg = DecoderConfig {
        deflate: e.conn.framing().is_deflate(),
        ..shard.service.decoder_config()
    };
    let high_water = match shard.service.outbound_policy() {
        OutboundPolicy::Backpressure { high_water } => high_water,
        OutboundPolicy::Disconnect { .. } => usize::MAX,
    };
    let io = &shard.reactor.io;
    let mut drained = false;
    for _ in 0..READS_PER_TURN {
        if e.conn.is_closing() {
            return None;
        }
        if e.conn.queued_bytes() > high_water {
            // Backpressure: resume when the queue drains (see flush_conn).
            e.read_pending = true;
            return None;
        }
        let mut spill = e.spill.take();
        let own = spill.as_ref().is_some_and(|s| !s.frame.is_empty());
        let mut buf = match spill.as_mut() {
            Some(s) if own => std::mem::take(&mut s.frame),
            _ => shard.scratch.take(),
        };
        let mut decoder = spill
            .as_mut()
            .map(|s| std::mem::take(&mut s.decoder))
            .unwrap_or_default();
        let mut full = false;
        let mut gone = false;
        let had_buffered = !buf.is_empty();
        match io.recv(&e.sock, &mut buf, READ_CHUNK) {
            Ok(0) => gone = true,
            Ok(n) => {
                shard.stats.received(n);
                full = n == READ_CHUNK;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => drained = true,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => full = true,
            Err(_) => gone = true,
        }
        if !gone && (had_buffered || !drained) {
            decode_all(shard, e, &mut decoder, &mut buf, &cfg);
        }
        if e.conn.is_closing() {
            buf.clear();
        }
        let frame = if own {
            // Emptied: let its room go (a fragmented message may still be
            // open, and the spill kept for it).
            if buf.is_empty() {
                BytesMut::new()
            } else {
                buf
            }
        } else {
            // A partial frame: copy it out so the scratch buffer stays shared.
            let frame = if buf.is_empty() {
                BytesMut::new()
            } else {
                BytesMut::from(&buf[..])
            };
            buf.clear();
            shard.scratch.replace(buf);
            frame
        };
        if !frame.is_empty() || decoder.in_message() {
            let mut s = spill.unwrap_or_default();
            s.frame = frame;
            s.decoder = decoder;
            e.spill = Some(s);
        }
        if gone {
            return Some(End::Gone);
        }
        if drained || !full {
            return None;
        }
    }
    // Budget spent with data possibly left: come back after others had a turn.
    e.read_pending = true;
    shard.reactor.pending_reads.borrow_mut().push(token);
    None
}

/// Decodes every complete message in `buf` and acts on it, until the
/// buffer holds at most an incomplete frame or the connection is closing.
fn decode_all<S: Service>(
    shard: &ShardCtx<S>,
    e: &mut Entry<S::State>,
    decoder: &mut Decoder,
    buf: &mut BytesMut,
    cfg: &DecoderConfig,
) {
    let Some(state) = e.state.as_mut() else {
        return;
    };
    loop {
        match decoder.decode(buf, cfg) {
            Ok(Some(msg)) => {
                shard.stats.message_in();
                match msg {
                    Message::Text(data) => shard.service.on_message(&e.conn, state, true, data),
                    Message::Binary(data) => shard.service.on_message(&e.conn, state, false, data),
                    Message::Ping(data) => {
                        e.conn.send(encode(OpCode::Pong, &data));
                    }
                    Message::Pong(_) => shard.service.on_pong(&e.conn, state),
                    Message::Close(frame) => {
                        shard.service.on_peer_close(&e.conn, state, frame.as_ref());
                        // Echo the peer's code (RFC 6455 §5.5.1), then close.
                        let code = frame.map_or(code::NORMAL, |f| f.code);
                        e.conn.close_with(code, "");
                    }
                }
                if e.conn.is_closing() {
                    return;
                }
            }
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(shard = shard.id, conn = e.conn.id, error = %err, "protocol error");
                shard.stats.protocol_error();
                e.conn.close_with(err.close_code(), err.reason());
                buf.clear();
                return;
            }
        }
    }
}
