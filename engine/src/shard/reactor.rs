//! The shard's reactor: every upgraded connection of the shard lives here as a
//! slab entry (no task, no future, no read buffer), with readiness from one
//! edge-triggered epoll set per shard. That set's descriptor is itself awaited
//! through monoio, so one io_uring poll stands for all of the shard's
//! connections.
//!
//! One task runs the loop: wait until the epoll set is readable or some
//! connection has output queued; read and dispatch what arrived; then flush
//! every dirty connection once. Frames queued during a pass (a burst of
//! publications) leave in one `sendmsg` per connection.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::ceiling::Slot;
use super::conn::{self, Conn, SLOW_CONSUMER};
use super::service::{OutboundPolicy, Service};
use super::task::End;
use super::ShardCtx;
use crate::sys;
use crate::ws::close::code;
use crate::ws::frame::{encode, OpCode};
use crate::ws::{Decoder, Message};

/// Bytes read per recv(2) into the shard's scratch buffer.
const READ_CHUNK: usize = 64 * 1024;
/// recv(2) calls per connection per pass before others get a turn.
const READS_PER_TURN: usize = 4;
/// Events taken per epoll_wait.
const EVENTS: usize = 256;
/// Connections flushed between looks at new input during one pass.
const FLUSH_SLICE: usize = 256;
/// Times per pass that queued replies are sent ahead of the pass's end.
const EARLY_REPLIES: usize = 2;
/// Replies leave early only while the pass averages fewer frames per send.
const EARLY_BELOW_FRAMES_PER_SEND: u64 = 128;
/// A pass over at least this many connections that averaged fewer frames
/// per send than `HOLD_BELOW_FRAMES_PER_SEND` holds the next pass back —
/// if it averaged at least `HOLD_MIN_FRAMES_PER_SEND`: only then do the
/// connections get frames faster than passes come, so that waiting one
/// pass time batches more. (Thousands of connections on quiet channels
/// would only wait longer.)
const HOLD_MIN_CONNS: usize = 4096;
const HOLD_MIN_FRAMES_PER_SEND: u64 = 2;
const HOLD_BELOW_FRAMES_PER_SEND: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Our close frame is queued; flushing it.
    Closing,
    /// Close frame sent and write side shut: waiting for the peer's FIN.
    Lingering,
}

struct Entry<St> {
    conn: Rc<Conn>,
    fd: OwnedFd,
    /// The connection's place under the ceiling, freed with the entry.
    _slot: Slot,
    generation: u32,
    decoder: Decoder,
    /// An incomplete frame's bytes (the scratch buffer is shared).
    partial: Option<Box<BytesMut>>,
    /// Service state; taken when the service is told the connection is gone.
    state: Option<St>,
    phase: Phase,
    /// A send came back short: wait for EPOLLOUT.
    write_blocked: bool,
    /// Reading stopped for backpressure (echo) or budget: resume explicitly,
    /// since an edge-triggered set will not report the data again.
    read_pending: bool,
    deadline: Option<Instant>,
}

pub(crate) struct Reactor<St> {
    ep: OwnedFd,
    slab: RefCell<Vec<Option<Box<Entry<St>>>>>,
    free: RefCell<Vec<u32>>,
    next_generation: Cell<u32>,
    /// Tokens whose reads stopped before EAGAIN.
    pending_reads: RefCell<Vec<u32>>,
    /// Tokens closing or lingering, checked against their deadlines.
    closing: RefCell<Vec<u32>>,
    len: Cell<usize>,
}

impl<St> Reactor<St> {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Reactor {
            ep: sys::epoll_create()?,
            slab: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            next_generation: Cell::new(1),
            pending_reads: RefCell::new(Vec::new()),
            closing: RefCell::new(Vec::new()),
            len: Cell::new(0),
        })
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

fn token_of(data: u64) -> (u32, u32) {
    ((data & 0xffff_ffff) as u32, (data >> 32) as u32)
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
) -> io::Result<()> {
    let r = &shard.reactor;
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
    let data = token as u64 | (generation as u64) << 32;
    sys::epoll_add(&r.ep, fd.as_raw_fd(), data)?;
    conn.set_token(token);
    shard.stats.transport(conn.framing(), true);
    let has_rest = rest.is_some();
    r.slab.borrow_mut()[token as usize] = Some(Box::new(Entry {
        conn,
        fd,
        _slot: slot,
        generation,
        decoder: Decoder::new(),
        partial: rest.map(Box::new),
        state: Some(state),
        phase: Phase::Open,
        write_blocked: false,
        read_pending: has_rest,
        deadline: None,
    }));
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

/// The reactor loop of one shard; runs until the runtime is dropped.
pub(crate) async fn run<S: Service>(shard: Rc<ShardCtx<S>>) {
    let waiter = match shard.reactor.ep.try_clone().map(std::net::UdpSocket::from) {
        Ok(std_sock) => match monoio::net::udp::UdpSocket::from_std(std_sock) {
            Ok(w) => w,
            Err(e) => return tracing::error!(shard = shard.id, error = %e, "reactor: epoll fd"),
        },
        Err(e) => return tracing::error!(shard = shard.id, error = %e, "reactor: epoll fd"),
    };
    monoio::spawn(sweep_deadlines(shard.clone()));
    let mut events = Vec::with_capacity(EVENTS);
    let mut dirty = Vec::new();
    let mut urgent = Vec::new();
    let mut ready = pin!(waiter.readable(false));
    let mut epoll_ready = false;
    // After a big pass of small sends: no flush pass before this (see HOLD_*).
    let mut hold_until: Option<Instant> = None;
    loop {
        let mut hold = hold_until
            .filter(|&t| t > Instant::now())
            .map(|t| Box::pin(monoio::time::sleep_until(t.into())));
        // Poll the epoll set's readiness on every pass, so a steady stream of
        // output never starves input.
        poll_fn(|cx| {
            conn::register_reactor(cx.waker());
            if !epoll_ready && ready.as_mut().poll(cx).is_ready() {
                epoll_ready = true;
            }
            if hold
                .as_mut()
                .is_some_and(|h| h.as_mut().poll(cx).is_ready())
            {
                hold = None;
            }
            let output = if hold.is_some() {
                conn::has_urgent()
            } else {
                conn::has_dirty()
            };
            if epoll_ready || output || !shard.reactor.pending_reads.borrow().is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        if epoll_ready {
            epoll_ready = false;
            ready.set(waiter.readable(false));
            poll_input(&shard, &mut events);
        }
        read_pending(&shard);
        if hold_until.is_some_and(|t| t > Instant::now()) {
            // Holding: input is read and handled and replies leave; the
            // fan-out waits.
            shard.service.pump();
            flush_urgent(&shard, &mut urgent);
            if !shard.reactor.pending_reads.borrow().is_empty() {
                yield_now().await;
            }
            continue;
        }
        hold_until = None;
        let pass_start = Instant::now();
        conn::take_dirty(&mut dirty);
        conn::take_urgent(&mut urgent);
        urgent.clear();
        let (mut i, mut early) = (0, 0);
        let (frames0, sends0) = (shard.stats.frames_out.get(), shard.stats.sends.get());
        while i < dirty.len() {
            flush_conn(&shard, dirty[i]);
            i += 1;
            if i % FLUSH_SLICE == 0 && i < dirty.len() {
                // A long pass: take in what arrived meanwhile and let the
                // hub run, so publications that came in join the queues of
                // connections this pass has not reached yet (more frames
                // per send) instead of waiting for the next pass.
                poll_input(&shard, &mut events);
                read_pending(&shard);
                shard.service.pump();
                // Replies (a publisher's acknowledgements) leave now, a few
                // times per pass, while this pass's sends are still small:
                // each lets a windowed publisher send more while the pass
                // goes on, so later connections get more frames per send.
                // Once sends are big enough, queueing deeper only adds
                // latency; the cap bounds how much one pass's queues grow.
                let sends = shard.stats.sends.get() - sends0;
                let frames = shard.stats.frames_out.get() - frames0;
                if early < EARLY_REPLIES
                    && frames < EARLY_BELOW_FRAMES_PER_SEND * sends
                    && conn::has_urgent()
                {
                    early += 1;
                    flush_urgent(&shard, &mut urgent);
                }
            }
        }
        // A pass over many connections that sent them a few frames each
        // (2 to 32 on average: they get frames faster than passes come)
        // spent most of its time on per-send cost: hold the next pass for as
        // long as this one took (at most `flush_hold_max`), so each
        // connection has more frames queued by then. At most half the core
        // goes to such passes, at the price of up to one pass time of extra
        // latency. Input is still read and replies still leave meanwhile.
        let sends = shard.stats.sends.get() - sends0;
        let frames = shard.stats.frames_out.get() - frames0;
        if dirty.len() >= HOLD_MIN_CONNS
            && (HOLD_MIN_FRAMES_PER_SEND * sends..HOLD_BELOW_FRAMES_PER_SEND * sends)
                .contains(&frames)
            && !shard.cfg.flush_hold_max.is_zero()
        {
            let took = pass_start.elapsed().min(shard.cfg.flush_hold_max);
            hold_until = Some(Instant::now() + took);
            shard.stats.held();
        }
        dirty.clear();
        if !shard.reactor.pending_reads.borrow().is_empty() {
            // Connections with unread data: let other tasks run first.
            yield_now().await;
        }
    }
}

/// Takes every readiness event the epoll set holds and acts on it.
fn poll_input<S: Service>(shard: &Rc<ShardCtx<S>>, events: &mut Vec<(u64, u32)>) {
    loop {
        events.clear();
        match sys::epoll_poll(&shard.reactor.ep, events, EVENTS) {
            Ok(n) => {
                for &(data, bits) in events.iter() {
                    on_event(shard, data, bits);
                }
                if n < EVENTS {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!(shard = shard.id, error = %e, "epoll_wait");
                break;
            }
        }
    }
}

/// Sends what connections with a reply queued have, ahead of the others.
fn flush_urgent<S: Service>(shard: &Rc<ShardCtx<S>>, urgent: &mut Vec<u32>) {
    conn::take_urgent(urgent);
    for &t in urgent.iter() {
        flush_conn(shard, t);
    }
    urgent.clear();
}

/// Reads from connections that had more input than one turn takes.
fn read_pending<S: Service>(shard: &Rc<ShardCtx<S>>) {
    let pending = std::mem::take(&mut *shard.reactor.pending_reads.borrow_mut());
    for token in pending {
        read_ready(shard, token);
    }
}

fn on_event<S: Service>(shard: &Rc<ShardCtx<S>>, data: u64, bits: u32) {
    let (token, generation) = token_of(data);
    let live = shard
        .reactor
        .slab
        .borrow()
        .get(token as usize)
        .and_then(|e| e.as_ref())
        .is_some_and(|e| e.generation == generation);
    if !live {
        return;
    }
    if bits & libc::EPOLLOUT as u32 != 0 {
        let blocked = {
            let mut slab = shard.reactor.slab.borrow_mut();
            let e = slab[token as usize].as_mut().expect("live");
            e.conn.set_blocked(false);
            std::mem::replace(&mut e.write_blocked, false)
        };
        if blocked {
            flush_conn(shard, token);
        }
    }
    if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
        read_ready(shard, token);
    }
}

/// Reads what is there, hands complete messages to the service.
fn read_ready<S: Service>(shard: &Rc<ShardCtx<S>>, token: u32) {
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
            Phase::Open => discard_input(&shard.scratch, e).map(|_| End::Gone),
            Phase::Closing | Phase::Lingering => discard_input(&shard.scratch, e),
        }
    };
    if let Some(end) = end {
        remove(shard, token, end);
    } else {
        flush_conn(shard, token);
    }
}

/// After our close frame (or on an HTTP stream, whose input means nothing):
/// read and drop whatever the peer still sends, into the shard's scratch
/// buffer (a buffer of its own would be one more allocation per stream).
/// `Some` once the peer has closed.
fn discard_input<St>(scratch: &RefCell<BytesMut>, e: &mut Entry<St>) -> Option<End> {
    let mut buf = scratch.take();
    let end = loop {
        buf.clear();
        match sys::recv_into(e.fd.as_raw_fd(), &mut buf, READ_CHUNK) {
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

fn read_open<S: Service>(
    shard: &Rc<ShardCtx<S>>,
    token: u32,
    e: &mut Entry<S::State>,
) -> Option<End> {
    let cfg = crate::ws::DecoderConfig {
        deflate: e.conn.framing().is_deflate(),
        ..shard.service.decoder_config()
    };
    let high_water = match shard.service.outbound_policy() {
        OutboundPolicy::Backpressure { high_water } => high_water,
        OutboundPolicy::Disconnect { .. } => usize::MAX,
    };
    let fd = e.fd.as_raw_fd();
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
        let own = e.partial.is_some();
        let mut buf = match e.partial.take() {
            Some(b) => *b,
            None => shard.scratch.take(),
        };
        let mut full = false;
        let mut gone = false;
        let had_buffered = !buf.is_empty();
        match sys::recv_into(fd, &mut buf, READ_CHUNK) {
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
            decode_all(shard, e, &mut buf, &cfg);
        }
        if e.conn.is_closing() {
            buf.clear();
        }
        if own {
            if !buf.is_empty() {
                e.partial = Some(Box::new(buf));
            }
        } else {
            if !buf.is_empty() {
                // A partial frame: copy it out so the scratch buffer stays shared.
                e.partial = Some(Box::new(BytesMut::from(&buf[..])));
                buf.clear();
            }
            shard.scratch.replace(buf);
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

fn decode_all<S: Service>(
    shard: &ShardCtx<S>,
    e: &mut Entry<S::State>,
    buf: &mut BytesMut,
    cfg: &crate::ws::DecoderConfig,
) {
    let Some(state) = e.state.as_mut() else {
        return;
    };
    loop {
        match e.decoder.decode(buf, cfg) {
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

/// Acts on a connection's close request and sends what it has queued.
fn flush_conn<S: Service>(shard: &Rc<ShardCtx<S>>, token: u32) {
    let end = {
        let mut slab = shard.reactor.slab.borrow_mut();
        let Some(e) = slab.get_mut(token as usize).and_then(|e| e.as_mut()) else {
            return;
        };
        e.conn.clear_dirty();
        if e.phase == Phase::Open {
            if let Some(req) = e.conn.take_close() {
                if req.code == SLOW_CONSUMER {
                    shard.stats.slow_disconnect();
                }
                // What was held goes, then the close.
                e.conn.unhold();
                e.conn
                    .push_final(e.conn.framing().close(req.code, &req.reason));
                e.phase = Phase::Closing;
                e.partial = None;
                e.deadline = Some(Instant::now() + shard.cfg.close_timeout);
                shard.reactor.closing.borrow_mut().push(token);
                if let Some(state) = e.state.take() {
                    shard.service.on_close(&e.conn, state);
                }
            }
        }
        if e.write_blocked {
            return;
        }
        match flush(shard, e) {
            Err(_) => Some(End::Gone),
            Ok(false) => {
                e.write_blocked = true;
                // May cut it as a slow consumer: the close is acted on when
                // the flush pass comes back to it.
                e.conn.set_blocked(true);
                None
            }
            Ok(true) if e.phase == Phase::Closing => {
                // Close frame out: half-close so it is not lost to a reset,
                // then wait for the peer to close too.
                e.phase = Phase::Lingering;
                if sys::shutdown_write(e.fd.as_raw_fd()).is_err() {
                    Some(End::Closing)
                } else {
                    discard_input(&shard.scratch, e)
                }
            }
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

thread_local! {
    /// The shard's staging buffer: a connection's queued small frames are
    /// copied into it and leave in one contiguous send (one iovec).
    static GATHER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(GATHER_MAX));
}
/// Bytes copied into one send at most.
const GATHER_MAX: usize = 64 * 1024;

/// Sends as much of the queue as the socket takes. `Ok(true)`: drained.
fn flush<S: Service, St>(shard: &ShardCtx<S>, e: &Entry<St>) -> io::Result<bool> {
    let fd = e.fd.as_raw_fd();
    while e.conn.has_output() && !e.conn.is_held() {
        let sent = if e.conn.should_gather() {
            GATHER.with(|g| {
                let mut g = g.borrow_mut();
                e.conn.gather_front(&mut g, GATHER_MAX);
                sys::send(fd, &g)
            })
        } else {
            e.conn
                .with_front(usize::MAX, |iov| sys::send_vectored(fd, iov))
        };
        match sent {
            Ok(n) => {
                let frames = e.conn.consume(n);
                shard.stats.sent(n, frames);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
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
}

/// Closes connections whose close handshake outlived the close timeout.
async fn sweep_deadlines<S: Service>(shard: Rc<ShardCtx<S>>) {
    loop {
        monoio::time::sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        let tokens = std::mem::take(&mut *shard.reactor.closing.borrow_mut());
        let mut keep = Vec::with_capacity(tokens.len());
        for token in tokens {
            let state = shard
                .reactor
                .slab
                .borrow()
                .get(token as usize)
                .and_then(|e| e.as_ref())
                .map(|e| (e.phase, e.deadline));
            match state {
                Some((Phase::Closing, Some(d))) if d <= now => {
                    remove(&shard, token, End::Abandoned)
                }
                Some((Phase::Lingering, Some(d))) if d <= now => {
                    remove(&shard, token, End::Closing)
                }
                Some((Phase::Closing | Phase::Lingering, _)) => keep.push(token),
                _ => {}
            }
        }
        shard.reactor.closing.borrow_mut().extend(keep);
    }
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
