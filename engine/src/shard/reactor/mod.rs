//! The shard's reactor: every upgraded connection of the shard lives here as a
//! slab entry (no task, no future, no read buffer), with readiness from the
//! shard's I/O backend.
//!
//! One task runs the loop: wait until the backend reports readiness or some
//! connection has output queued (the shard's [`Outbox`]); read and dispatch
//! what arrived; then flush every dirty connection once. Frames queued
//! during a pass (a burst of publications) leave in one send per connection.
//!
//! - `io.rs`: the I/O backend (epoll set, recv, send/sendmsg, half-close):
//!   the only part an io_uring data path replaces.
//! - `read.rs`: input, decoding, WebSocket control frames.
//! - `send.rs`: output; the send-completion point (`sent_to_kernel`).
//! - `flush.rs`: the flush policy (slices, early replies, holds), pure.
//! - `close.rs`: close frames, linger, the close deadline sweep.

mod close;
mod flush;
mod io;
mod read;
mod send;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::BytesMut;

use self::close::Phase;
use self::flush::{Pass, Sent};
use self::io::{Events, Io, Key, Socket};
use super::ceiling::{Ceiling, Slot};
use super::conn::Conn;
use super::conn::End;
use super::outbox::Outbox;
use super::service::Service;
use super::stats::ShardStats;
use super::ShardCtx;
use crate::ws::Decoder;

/// Bytes read per recv(2) into the shard's scratch buffer.
const READ_CHUNK: usize = 64 * 1024;

/// A connection as the reactor holds it, inline in its slab (no allocation
/// of its own: docs/why-subscribed-memory.md). 40 bytes with the client
/// protocol's state (`tests` below).
struct Entry<St> {
    conn: Rc<Conn>,
    sock: Socket,
    generation: u32,
    /// What a read left for the next one, if it left anything.
    spill: Option<Box<Spill>>,
    /// Service state; taken when the service is told the connection is gone.
    state: Option<St>,
    phase: Phase,
    /// A send came back short: wait for the socket to be writable.
    write_blocked: bool,
    /// Reading stopped for backpressure (echo) or budget: resume explicitly,
    /// since an edge-triggered set will not report the data again.
    read_pending: bool,
}

/// What a connection keeps between reads only when a read ended part-way:
/// an incomplete frame's bytes, a fragmented message being put together, or
/// both. One box for the two, made only while one of them is there: most
/// connections have neither, and the entry keeps one pointer, not two
/// (docs/why-subscribed-memory.md).
#[derive(Default)]
struct Spill {
    /// An incomplete frame's bytes (the scratch buffer is shared); empty
    /// when there are none.
    frame: BytesMut,
    decoder: Decoder,
}

pub(crate) struct Reactor<St> {
    io: Io,
    /// What the shard's connections have queued; each holds a handle.
    outbox: Rc<Outbox>,
    slab: RefCell<Vec<Option<Entry<St>>>>,
    /// Where every connection's place was taken. A place is given back by
    /// `remove` (or the reactor's drop).
    ceiling: Arc<Ceiling>,
    /// The address each connection's place was taken for (`Slot::into_ip`),
    /// by token, where there is one: only with a per-address limit
    /// (`max_connections_per_ip`), so the table stays empty by default and
    /// the 18 bytes are not in every entry.
    ips: RefCell<Vec<Option<IpAddr>>>,
    free: RefCell<Vec<u32>>,
    next_generation: Cell<u32>,
    /// Tokens whose reads stopped before EAGAIN.
    pending_reads: RefCell<Vec<u32>>,
    /// Connections closing or lingering, with their deadlines: token,
    /// generation (a stale token's slot may hold another connection) and
    /// the instant past which the close is given up.
    closing: RefCell<Vec<(u32, u32, Instant)>>,
    len: Cell<usize>,
}

impl<St> Reactor<St> {
    /// A reactor whose connections are cut past `limit` queued bytes (0:
    /// never).
    pub(crate) fn new(limit: usize, ceiling: Arc<Ceiling>) -> std::io::Result<Self> {
        Ok(Reactor {
            io: Io::new()?,
            outbox: Rc::new(Outbox::new(limit)),
            slab: RefCell::new(Vec::new()),
            ceiling,
            ips: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            next_generation: Cell::new(1),
            pending_reads: RefCell::new(Vec::new()),
            closing: RefCell::new(Vec::new()),
            len: Cell::new(0),
        })
    }

    /// The outbox the shard's connections queue into (`Conn::with_outbox`).
    pub(crate) fn outbox(&self) -> &Rc<Outbox> {
        &self.outbox
    }

    /// Connections held.
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// Every connection's shared half (for shutdown).
    pub(crate) fn conns(&self) -> Vec<Rc<Conn>> {
        self.slab
            .borrow()
            .iter()
            .flatten()
            .map(|e| e.conn.clone())
            .collect()
    }
}

impl<St> Drop for Reactor<St> {
    /// Gives back the places of the connections still held.
    fn drop(&mut self) {
        let ips = self.ips.get_mut();
        for (token, e) in self.slab.get_mut().iter().enumerate() {
            if e.is_some() {
                self.ceiling
                    .release(ips.get_mut(token).and_then(Option::take));
            }
        }
    }
}

/// Hands an upgraded connection to the shard's reactor. `rest` holds bytes
/// that arrived behind the upgrade request.
pub(crate) fn adopt<S: Service>(
    shard: &Rc<ShardCtx<S>>,
    fd: OwnedFd,
    conn: Rc<Conn>,
    state: S::State,
    rest: Option<BytesMut>,
    slot: Slot,
) -> std::io::Result<()> {
    let r = &shard.reactor;
    debug_assert!(conn.queues_into(&r.outbox), "a connection of another shard");
    let generation = r.next_generation.get();
    r.next_generation.set(generation.wrapping_add(1).max(1));
    let token = match r.free.borrow_mut().pop() {
        Some(t) => t,
        None => {
            let mut slab = r.slab.borrow_mut();
            slab.push(None);
            (slab.len() - 1) as u32
        }
    };
    let sock = Socket::new(fd);
    if let Err(e) = r.io.register(&sock, Key { token, generation }) {
        r.free.borrow_mut().push(token);
        return Err(e);
    }
    if let Some(ip) = slot.into_ip(&r.ceiling) {
        let mut ips = r.ips.borrow_mut();
        if ips.len() <= token as usize {
            ips.resize(token as usize + 1, None);
        }
        ips[token as usize] = Some(ip);
    }
    conn.set_token(token);
    shard.stats.transport(conn.framing(), true);
    let has_rest = rest.is_some();
    r.slab.borrow_mut()[token as usize] = Some(Entry {
        conn,
        sock,
        generation,
        spill: rest.map(|frame| {
            Box::new(Spill {
                frame,
                decoder: Decoder::new(),
            })
        }),
        state: Some(state),
        phase: Phase::Open,
        write_blocked: false,
        read_pending: has_rest,
    });
    r.len.set(r.len.get() + 1);
    if has_rest {
        r.pending_reads.borrow_mut().push(token);
        // Wake the loop: treat it like queued output.
        if let Some(e) = r.slab.borrow()[token as usize].as_ref() {
            e.conn.mark_dirty();
        }
    }
    Ok(())
}

/// The shard's send counters, as the flush policy reads them.
fn sent(stats: &ShardStats) -> Sent {
    Sent {
        frames: stats.frames_out.get(),
        sends: stats.sends.get(),
    }
}

/// The reactor loop of one shard; runs until the runtime is dropped.
pub(crate) async fn run<S: Service>(shard: Rc<ShardCtx<S>>) {
    let readiness = match shard.reactor.io.readiness() {
        Ok(r) => r,
        Err(e) => return tracing::error!(shard = shard.id, error = %e, "reactor: epoll fd"),
    };
    monoio::spawn(close::sweep_deadlines(shard.clone()));
    let outbox = shard.reactor.outbox.clone();
    let mut events = Events::with_capacity();
    let mut dirty = Vec::new();
    let mut urgent = Vec::new();
    let mut ready = pin!(readiness.wait());
    let mut input_ready = false;
    // After a big pass of small sends: no flush pass before this (flush.rs).
    let mut hold_until: Option<Instant> = None;
    loop {
        let mut hold = hold_until
            .filter(|&t| flush::holding(Some(t), Instant::now()))
            .map(|t| Box::pin(monoio::time::sleep_until(t.into())));
        // Poll the backend's readiness on every pass, so a steady stream of
        // output never starves input.
        poll_fn(|cx| {
            outbox.register(cx.waker());
            if !input_ready && ready.as_mut().poll(cx).is_ready() {
                input_ready = true;
            }
            if hold
                .as_mut()
                .is_some_and(|h| h.as_mut().poll(cx).is_ready())
            {
                hold = None;
            }
            let output = if hold.is_some() {
                outbox.has_urgent()
            } else {
                outbox.has_dirty()
            };
            if input_ready || output || !shard.reactor.pending_reads.borrow().is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        if input_ready {
            input_ready = false;
            ready.set(readiness.wait());
            poll_input(&shard, &mut events);
        }
        read::read_pending(&shard);
        if flush::holding(hold_until, Instant::now()) {
            // Holding: input is read and handled and replies leave; the
            // fan-out waits.
            shard.service.pump();
            flush_urgent(&shard, &mut urgent);
            if !shard.reactor.pending_reads.borrow().is_empty() {
                yield_now().await;
            }
            continue;
        }
        outbox.take_dirty(&mut dirty);
        outbox.take_urgent(&mut urgent);
        urgent.clear();
        let mut pass = Pass::begin(dirty.len(), Instant::now(), sent(&shard.stats));
        let mut i = 0;
        while i < dirty.len() {
            send::flush_conn(&shard, dirty[i]);
            i += 1;
            if pass.slice_ends(i) {
                // A long pass: take in what arrived meanwhile and let the
                // hub run, so publications that came in join the queues of
                // connections this pass has not reached yet (more frames
                // per send) instead of waiting for the next pass.
                poll_input(&shard, &mut events);
                read::read_pending(&shard);
                shard.service.pump();
                // Replies (a publisher's acknowledgements) leave now, a few
                // times per pass, while this pass's sends are still small.
                if pass.early_replies(sent(&shard.stats), outbox.has_urgent()) {
                    flush_urgent(&shard, &mut urgent);
                }
            }
        }
        hold_until = pass.hold_after(sent(&shard.stats), Instant::now(), shard.cfg.flush_hold_max);
        if hold_until.is_some() {
            shard.stats.held();
        }
        dirty.clear();
        if !shard.reactor.pending_reads.borrow().is_empty() {
            // Connections with unread data: let other tasks run first.
            yield_now().await;
        }
    }
}

/// Takes every readiness event the backend holds and acts on it.
fn poll_input<S: Service>(shard: &Rc<ShardCtx<S>>, events: &mut Events) {
    loop {
        match shard.reactor.io.poll(events) {
            Ok(n) => {
                for ev in events.iter() {
                    let key = ev.key();
                    if !is_live(shard, key) {
                        continue;
                    }
                    if ev.writable() {
                        on_writable(shard, key.token);
                    }
                    if ev.readable() {
                        read::read_ready(shard, key.token);
                    }
                }
                if n < io::EVENTS {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!(shard = shard.id, error = %e, "epoll_wait");
                break;
            }
        }
    }
}

/// Whether the event's connection is still the one in its slot.
fn is_live<S: Service>(shard: &ShardCtx<S>, key: Key) -> bool {
    shard
        .reactor
        .slab
        .borrow()
        .get(key.token as usize)
        .and_then(|e| e.as_ref())
        .is_some_and(|e| e.generation == key.generation)
}

/// The socket takes data again: send what waited for it.
fn on_writable<S: Service>(shard: &Rc<ShardCtx<S>>, token: u32) {
    let blocked = {
        let mut slab = shard.reactor.slab.borrow_mut();
        let Some(e) = slab.get_mut(token as usize).and_then(|e| e.as_mut()) else {
            return;
        };
        e.conn.set_blocked(false);
        std::mem::replace(&mut e.write_blocked, false)
    };
    if blocked {
        send::flush_conn(shard, token);
    }
}

/// Sends what connections with a reply queued have, ahead of the others.
fn flush_urgent<S: Service>(shard: &Rc<ShardCtx<S>>, urgent: &mut Vec<u32>) {
    shard.reactor.outbox.take_urgent(urgent);
    for &t in urgent.iter() {
        send::flush_conn(shard, t);
    }
    urgent.clear();
}

/// Drops a connection: tells the service if it has not been told, closes the
/// socket, frees the slot.
fn remove<S: Service>(shard: &Rc<ShardCtx<S>>, token: u32, end: End) {
    let entry = shard.reactor.slab.borrow_mut()[token as usize].take();
    let Some(mut e) = entry else {
        return;
    };
    shard.reactor.free.borrow_mut().push(token);
    shard.reactor.len.set(shard.reactor.len.get() - 1);
    if let Some(state) = e.state.take() {
        shard.service.on_close(&e.conn, state);
    }
    // No further flushes for this slot's old owner.
    e.conn.set_token(u32::MAX);
    shard.stats.transport(e.conn.framing(), false);
    shard.stats.closed(end);
    drop(e); // closes the socket (and leaves the epoll set)
    let ip = (shard.reactor.ips.borrow_mut())
        .get_mut(token as usize)
        .and_then(Option::take);
    shard.reactor.ceiling.release(ip);
}

/// Returns `Pending` once and lets every other ready task run first. (A task
/// that wakes itself is put at the front of monoio's queue, so the wake-up
/// comes from a task spawned behind the others.)
fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            let waker = cx.waker().clone();
            monoio::spawn(async move { waker.wake() });
            Poll::Pending
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::session::Session;

    #[test]
    fn entries_are_inline_and_small() {
        use std::mem::size_of;
        // Each connection pays its entry in the slab, with no chunk of its
        // own; the client protocol's state is one `Rc<Session>`.
        let client = size_of::<Option<Entry<Rc<Session>>>>();
        let echo = size_of::<Option<Entry<()>>>();
        println!("Entry<Rc<Session>> {client:4} B\nEntry<()>          {echo:4} B");
        assert_eq!(client, 40);
        assert!(echo <= 40, "{echo}");
    }
}
