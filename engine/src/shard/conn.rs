//! The shared half of a connection: its outbound queue and close request. The
//! shard's reactor owns the socket; services and the hub hold `Rc<Conn>` and
//! only ever enqueue. Enqueueing marks the connection dirty in its shard's
//! outbox (`outbox.rs`), a handle the connection holds: the reactor then
//! flushes every dirty connection once per pass, so frames queued in one pass
//! leave together.

use std::borrow::Cow;
use std::cell::{Cell, UnsafeCell};
use std::io::IoSlice;
use std::rc::Rc;

use bytes::{Buf, Bytes};

use super::framing::{FrameSet, Framing};
use super::latency;
use super::outbox::{CloseRequest, Outbox};
use super::outq::OutQueue;

/// Centrifugo's "slow" disconnect: the outbound queue passed its byte limit.
pub const SLOW_CONSUMER: u16 = 3008;

/// On the dirty list already.
const DIRTY_FLAG: u8 = 1;
/// The front frame is partly on the wire: it must be finished before
/// anything else, even when the rest of the queue is dropped.
const FRONT_STARTED: u8 = 2;
/// The socket refused data (EAGAIN) and has not become writable since.
const BLOCKED: u8 = 4;
/// Set by the first close request and never cleared: a closing connection
/// accepts no more frames.
const CLOSED: u8 = 8;
/// Frames queue but do not leave: a reply that must go first is still being
/// put together (`hold`, `release_with`).
const HELD: u8 = 16;
/// The id came from the outbox (`of_shard`) and goes back to it on drop.
const OWN_ID: u8 = 32;

/// A connection's boolean states, one bit each.
struct Flags(Cell<u8>);

impl Flags {
    #[inline]
    fn get(&self, f: u8) -> bool {
        self.0.get() & f != 0
    }

    #[inline]
    fn set(&self, f: u8, on: bool) {
        let v = self.0.get();
        self.0.set(if on { v | f } else { v & !f });
    }

    /// Sets `f` to `on` and returns what it was.
    #[inline]
    fn replace(&self, f: u8, on: bool) -> bool {
        let was = self.get(f);
        self.set(f, on);
        was
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed or reset the TCP connection.
    Gone,
    /// A close frame went out (ours, or our echo of the peer's).
    Closing,
    /// A close was pending but could not be delivered in time.
    Abandoned,
}

pub struct Conn {
    /// Unique on its shard; stable for the connection's life. For a shard's
    /// connections, its low 32 bits are a slot no other live connection of
    /// the shard holds (`outbox::slot_of`), for tables indexed by it.
    pub id: u64,
    /// The reactor's slab slot (set when the connection is handed over).
    token: Cell<u32>,
    /// What waits to be sent (one frame inline: no allocation while idle).
    /// Not a `RefCell` (whose count would take 8 bytes more): every access
    /// is one `with_out` call, whose closures reach nothing but the queue.
    out: UnsafeCell<OutQueue>,
    /// Bytes queued, in 32 bits like the limit (this, and the limit kept in
    /// the outbox, leave room for the outbox handle within 88 bytes).
    /// Saturating at 4 GiB: a connection with a limit is cut long before;
    /// one without (the backpressure policy) that queued 4 GiB would count
    /// too few bytes once it drained below, which only `queued_bytes` reads.
    out_bytes: Cell<u32>,
    /// `DIRTY_FLAG`, `FRONT_STARTED`, `BLOCKED`, `CLOSED`, `HELD`, `OWN_ID` (one
    /// byte: the connection is allocated per client, see
    /// docs/why-subscribed-memory.md).
    flags: Flags,
    /// How this connection's transport frames what it is sent.
    framing: Framing,
    /// Timed deliveries (publications) queued and not yet sent, and the
    /// stamp of the oldest of them (after a send that left some queued, an
    /// estimate: see `latency::sent`). Both fit in the padding the other
    /// fields leave.
    timed: Cell<u16>,
    timed_since: Cell<latency::Stamp>,
    /// The shard's outbox, where the reactor finds it once it has output;
    /// it also keeps the queue limit, the service's and the same for every
    /// connection of the shard: queue bytes past which the connection is
    /// cut with 3008 (0: never), once its socket is full (a burst queued
    /// within one pass is only cut at four times the limit).
    outbox: Rc<Outbox>,
}

impl Conn {
    /// A connection outside any shard (tests): it has an outbox of its own,
    /// with the queue limit `limit`, which no reactor takes from.
    pub fn new(id: u64, limit: usize) -> Self {
        Self::with_framing(id, limit, Framing::WebSocket)
    }

    /// The same, framed by `framing`.
    pub fn with_framing(id: u64, limit: usize, framing: Framing) -> Self {
        Self::with_outbox(id, framing, &Rc::new(Outbox::new(limit)))
    }

    /// A connection of the shard whose reactor takes from `outbox`, with
    /// its queue limit and an id from it (`task::new_conn`); the id is
    /// given back when the connection is dropped.
    pub(crate) fn of_shard(framing: Framing, outbox: &Rc<Outbox>) -> Self {
        let c = Self::with_outbox(outbox.new_id(), framing, outbox);
        c.flags.set(OWN_ID, true);
        c
    }

    /// A connection with id `id` whose reactor takes from `outbox`.
    pub(crate) fn with_outbox(id: u64, framing: Framing, outbox: &Rc<Outbox>) -> Self {
        Conn {
            id,
            token: Cell::new(u32::MAX),
            out: UnsafeCell::new(OutQueue::Empty),
            out_bytes: Cell::new(0),
            flags: Flags(Cell::new(0)),
            framing,
            timed: Cell::new(0),
            timed_since: Cell::new(latency::NO_STAMP),
            outbox: outbox.clone(),
        }
    }

    /// Runs `f` on the queue. Every closure passed here is in this file and
    /// touches the queue and local values only, never this `Conn`.
    #[inline]
    fn with_out<R>(&self, f: impl FnOnce(&mut OutQueue) -> R) -> R {
        // SAFETY: `Conn` is not `Sync` (its `Cell`s), so only this thread
        // reaches `out`, and only through this function; its callers' closures
        // do not call back into the `Conn`, so no other reference to the
        // queue is alive while `f` runs.
        f(unsafe { &mut *self.out.get() })
    }

    /// Whether this connection queues into `outbox`.
    pub(crate) fn queues_into(&self, outbox: &Rc<Outbox>) -> bool {
        Rc::ptr_eq(&self.outbox, outbox)
    }

    /// Adds `n` bytes to the queued count (saturating: see `out_bytes`).
    fn add_queued(&self, n: usize) {
        self.out_bytes
            .set(saturate(self.out_bytes.get() as usize + n));
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Frames a client-protocol payload (JSON lines) for this connection.
    pub fn frame(&self, payload: &[u8]) -> Bytes {
        self.framing.frame(payload)
    }

    /// From now on frames queue without leaving, until `release_with` puts
    /// the reply they must follow in front of them (a connect reply that
    /// reports server-side subscriptions whose publications may already be
    /// arriving). A close request releases the hold.
    pub fn hold(&self) {
        self.flags.set(HELD, true);
    }

    /// Queues `first` (a WebSocket frame the hub or session encoded) ahead
    /// of everything held, and lets it all go.
    pub fn release_with(&self, first: Bytes) {
        let first = self.framing.reframe(&first);
        if !self.flags.replace(HELD, false) || self.flags.get(CLOSED) || first.is_empty() {
            return;
        }
        self.add_queued(first.len());
        // Nothing has left while held, so nothing is partly on the wire.
        self.with_out(|out| out.push_front(first));
        self.mark_dirty();
        if self.token.get() != u32::MAX {
            self.outbox.urgent(self.token.get(), false);
        }
    }

    pub(crate) fn is_held(&self) -> bool {
        self.flags.get(HELD)
    }

    pub(crate) fn unhold(&self) {
        self.flags.set(HELD, false);
    }

    /// Queues a WebSocket text frame the hub or session encoded, framed for
    /// this connection's transport (as it is on WebSocket, the fast path).
    /// Returns false when the frame was refused: the connection is closing, or
    /// this frame pushed it over its limit (it is then cut with 3008).
    pub fn send(&self, frame: Bytes) -> bool {
        if self.framing == Framing::WebSocket {
            self.send_framed(frame)
        } else {
            self.send_framed(self.framing.reframe(&frame))
        }
    }

    /// Queues one of a fan-out's frames: the copy for this connection's
    /// framing, shared with every other connection on it.
    #[inline]
    pub fn send_set(&self, set: &FrameSet<'_>) -> bool {
        self.send_framed(set.get(self.framing))
    }

    /// Queues a delivery (bytes already framed for this connection) of the
    /// publication accepted at `since`: its latency is recorded when the
    /// send that carries it is made (`NO_STAMP`: not timed).
    #[inline]
    pub fn send_delivery(&self, frame: Bytes, since: latency::Stamp) -> bool {
        let queued = self.send_framed(frame);
        if queued && since != latency::NO_STAMP {
            match self.timed.get() {
                0 => {
                    self.timed_since.set(since);
                    self.timed.set(1);
                }
                // Never in practice (a queue that long is cut as slow
                // unless the limit is off): counted as sent now.
                u16::MAX => latency::record(since, 1),
                n => self.timed.set(n + 1),
            }
        }
        queued
    }

    /// Queues bytes already framed for this connection. The same `Bytes`
    /// may sit in many queues.
    pub fn send_framed(&self, frame: Bytes) -> bool {
        if self.flags.get(CLOSED) {
            return false;
        }
        if frame.is_empty() {
            // Nothing to send (a payload with nothing in it for this
            // framing); an empty entry would never leave the queue.
            return true;
        }
        let total = self.out_bytes.get() as usize + frame.len();
        let limit = self.outbox.limit() as usize;
        if limit != 0
            && total > limit
            && (self.flags.get(BLOCKED) || total > limit.saturating_mul(4))
        {
            self.cut_slow();
            return false;
        }
        self.out_bytes.set(saturate(total));
        self.with_out(|out| out.push_back(frame));
        self.mark_dirty();
        true
    }

    /// Queues a reply to one of the client's commands. Like `send`, and the
    /// reactor may send it in the middle of a long flush pass, so a client
    /// waiting on it (a publisher's acknowledgement) does not wait behind
    /// the fan-out to thousands of others.
    pub fn reply(&self, frame: Bytes) -> bool {
        let queued = self.send_framed(frame);
        if queued && self.token.get() != u32::MAX {
            // The reactor may be holding its flush pass back: wake it.
            self.outbox.urgent(self.token.get(), true);
        }
        queued
    }

    /// Queues a reply payload (JSON lines), framed for this connection.
    pub fn reply_text(&self, payload: &[u8]) -> bool {
        self.reply(self.frame(payload))
    }

    /// Asks the connection task to send a close frame and close. The first
    /// request wins.
    pub fn close_with(&self, code: u16, reason: impl Into<Cow<'static, str>>) {
        if !self.flags.replace(CLOSED, true) {
            let req = CloseRequest {
                code,
                reason: reason.into(),
            };
            self.outbox.put_close(self.id, req);
            self.mark_dirty();
        }
    }

    /// The socket is full (or writable again). A full socket with more than
    /// the limit queued behind it is a slow consumer: cut.
    pub(crate) fn set_blocked(&self, blocked: bool) {
        self.flags.set(BLOCKED, blocked);
        let limit = self.outbox.limit();
        if blocked && limit != 0 && self.out_bytes.get() > limit && !self.flags.get(CLOSED) {
            self.cut_slow();
        }
    }

    fn cut_slow(&self) {
        self.drop_queued();
        self.close_with(SLOW_CONSUMER, "slow");
    }

    /// Drops everything queued except a frame already partly sent (cutting
    /// that one would corrupt the stream before the close frame).
    fn drop_queued(&self) {
        let started = self.flags.get(FRONT_STARTED);
        let keep = self.with_out(|out| {
            let keep = if started { out.pop_front() } else { None };
            out.clear();
            keep
        });
        // Dropped deliveries never reach the kernel: not timed. (A frame
        // already partly on the wire is not counted either.)
        self.timed.set(0);
        self.out_bytes
            .set(saturate(keep.as_ref().map_or(0, |b| b.len())));
        if let Some(k) = keep {
            self.with_out(|out| out.push_back(k));
        }
    }

    pub fn is_closing(&self) -> bool {
        self.flags.get(CLOSED)
    }

    pub fn queued_bytes(&self) -> usize {
        self.out_bytes.get() as usize
    }

    pub fn has_output(&self) -> bool {
        self.with_out(|out| !out.is_empty())
    }

    /// The close request, once (it is kept in the outbox: `close_with`).
    pub(crate) fn take_close(&self) -> Option<CloseRequest> {
        if !self.flags.get(CLOSED) {
            return None;
        }
        self.outbox.take_close(self.id)
    }

    pub(crate) fn set_token(&self, token: u32) {
        self.token.set(token);
    }

    /// Off the dirty list (the reactor took it).
    pub(crate) fn clear_dirty(&self) {
        self.flags.set(DIRTY_FLAG, false);
    }

    /// Puts the connection on its shard's dirty list, once.
    pub(crate) fn mark_dirty(&self) {
        if self.token.get() == u32::MAX || self.flags.replace(DIRTY_FLAG, true) {
            return;
        }
        self.outbox.dirty(self.token.get());
    }

    /// Queues a frame bypassing the close check (the close frame itself).
    pub(crate) fn push_final(&self, frame: Bytes) {
        self.add_queued(frame.len());
        self.with_out(|out| out.push_back(frame));
    }

    /// Fills `iov` with the front of the queue (at most `iov`'s capacity
    /// slices) and returns how many slices and bytes it gathered.
    pub(crate) fn with_front<R>(&self, max: usize, f: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
        // Out of its cell while `f` runs: a frame queued meanwhile (which the
        // reactor's sends never do) would be dropped, not sent out of order.
        let out = self.with_out(std::mem::take);
        let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
        let mut n = 0;
        for b in out.iter().take(max.min(MAX_IOV)) {
            iov[n] = IoSlice::new(b);
            n += 1;
        }
        let r = f(&iov[..n]);
        self.with_out(|q| *q = out);
        r
    }

    /// Whether the next send should copy the front of the queue into one
    /// buffer ([`Conn::gather_front`]) rather than hand the kernel one iovec
    /// per frame: several frames queued, the first of them small. The
    /// kernel's cost per iovec segment dominates for runs of small frames.
    pub(crate) fn should_gather(&self) -> bool {
        self.with_out(|out| {
            out.len() > 1 && out.front().is_some_and(|f| f.len() <= GATHER_FRAME_MAX)
        })
    }

    /// Copies frames from the front of the queue into `buf` (cleared first)
    /// while they fit in `max` bytes (the first one always).
    pub(crate) fn gather_front(&self, buf: &mut Vec<u8>, max: usize) {
        buf.clear();
        self.with_out(|out| {
            for b in out.iter() {
                if !buf.is_empty() && buf.len() + b.len() > max {
                    break;
                }
                buf.extend_from_slice(b);
            }
        });
    }

    /// Drops `sent` bytes from the front of the queue; returns whole frames sent.
    pub(crate) fn consume(&self, mut sent: usize) -> usize {
        self.out_bytes
            .set(self.out_bytes.get().saturating_sub(saturate(sent)));
        // Whether the front frame is partly sent: unchanged when nothing was.
        let mut started = None;
        let frames = self.with_out(|out| {
            let mut frames = 0;
            while sent > 0 {
                let front = out.front_mut().expect("sent more than queued");
                if front.len() <= sent {
                    sent -= front.len();
                    out.pop_front();
                    frames += 1;
                    started = Some(false);
                } else {
                    front.advance(sent);
                    sent = 0;
                    started = Some(true);
                }
            }
            frames
        });
        if let Some(started) = started {
            self.flags.set(FRONT_STARTED, started);
        }
        let timed = self.timed.get();
        if timed > 0 && frames > 0 {
            let sent = timed.min(frames.min(u16::MAX as usize) as u16);
            let oldest = latency::sent(self.timed_since.get(), sent, timed);
            self.timed_since.set(oldest);
            self.timed.set(timed - sent);
        }
        // A drained queue gives its ring back when it was small or a
        // burst grew it (`OutQueue::pop_front`).
        frames
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.flags.get(CLOSED) {
            // A close request never acted on (a connection that closed
            // before it was handed to the reactor): not kept for its id's
            // next holder.
            drop(self.outbox.take_close(self.id));
        }
        if self.flags.get(OWN_ID) {
            self.outbox.free_id(self.id);
        }
    }
}

/// A byte count in the 32 bits `Conn` keeps it in (4 GiB at most).
#[inline]
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Slices gathered into one sendmsg(2). Linux allows 1024 (UIO_MAXIOV).
pub const MAX_IOV: usize = 64;

/// A front frame up to this size is sent from a copy with the frames behind
/// it; a longer one goes as its own iovec (no copy of big publications).
pub const GATHER_FRAME_MAX: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_not_slowness_but_a_full_socket_is() {
        let c = Conn::new(1, 100);
        // Socket writable: a burst up to 4x the limit waits for the flush.
        for _ in 0..6 {
            assert!(c.send(Bytes::from_static(&[0; 60])));
        }
        assert!(!c.is_closing());
        // The flush hit EAGAIN with 360 bytes still queued: slow.
        c.set_blocked(true);
        assert_eq!(c.take_close().unwrap().code, 3008);
        // Past 4x the limit even a writable socket's queue is cut.
        let d = Conn::new(2, 100);
        for _ in 0..6 {
            d.send(Bytes::from_static(&[0; 60]));
        }
        assert!(!d.send(Bytes::from_static(&[0; 60])));
        assert!(d.is_closing());
    }

    #[test]
    fn over_limit_clears_queue_and_requests_3008() {
        let c = Conn::new(1, 100);
        c.set_blocked(true);
        assert!(c.send(Bytes::from_static(&[0; 60])));
        assert!(!c.send(Bytes::from_static(&[0; 60])));
        assert_eq!(c.queued_bytes(), 0);
        assert!(!c.has_output());
        let req = c.take_close().unwrap();
        assert_eq!((req.code, req.reason.as_ref()), (3008, "slow"));
    }

    #[test]
    fn cutting_a_slow_consumer_keeps_the_frame_on_the_wire() {
        let c = Conn::new(1, 100);
        c.set_blocked(true);
        c.send(Bytes::from_static(&[1; 40]));
        c.send(Bytes::from_static(&[2; 40]));
        assert_eq!(c.consume(10), 0);
        assert!(!c.send(Bytes::from_static(&[3; 40])));
        assert_eq!(c.queued_bytes(), 30);
        let left = c.with_front(8, |iov| iov.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
        assert_eq!(left, vec![vec![1u8; 30]]);
        assert_eq!(c.take_close().unwrap().code, 3008);
        // Still closing after the request was taken: nothing more is queued.
        assert!(c.is_closing());
        assert!(!c.send(Bytes::from_static(&[4; 1])));
        assert_eq!(c.queued_bytes(), 30);
    }

    #[test]
    fn queueing_puts_the_connection_in_its_outbox_once_per_pass() {
        let outbox = Rc::new(Outbox::default());
        let c = Conn::with_outbox(1, Framing::WebSocket, &outbox);
        assert!(c.queues_into(&outbox) && !Conn::new(2, 0).queues_into(&outbox));
        // Not in a reactor yet: the frame waits, nothing is marked.
        assert!(c.send(Bytes::from_static(b"a")));
        assert!(!outbox.has_dirty() && !outbox.has_urgent());
        c.set_token(7);
        c.send(Bytes::from_static(b"b"));
        assert!(c.reply(Bytes::from_static(b"c")));
        c.send(Bytes::from_static(b"d"));
        let (mut dirty, mut urgent) = (Vec::new(), Vec::new());
        outbox.take_dirty(&mut dirty);
        outbox.take_urgent(&mut urgent);
        assert_eq!((&dirty[..], &urgent[..]), (&[7][..], &[7][..]));
        // Until the reactor has taken it off the list, nothing is added.
        c.send(Bytes::from_static(b"e"));
        assert!(!outbox.has_dirty());
        c.clear_dirty();
        c.close_with(1000, "");
        let mut again = Vec::new();
        outbox.take_dirty(&mut again);
        assert_eq!(again, [7]);
        // Out of the reactor: a reply is not marked either.
        c.set_token(u32::MAX);
        c.clear_dirty();
        let d = Conn::with_outbox(3, Framing::WebSocket, &outbox);
        assert!(d.reply(Bytes::from_static(b"f")));
        assert!(!outbox.has_dirty() && !outbox.has_urgent());
    }

    #[test]
    fn a_held_reply_released_is_urgent_and_counted() {
        let outbox = Rc::new(Outbox::default());
        let c = Conn::with_outbox(1, Framing::WebSocket, &outbox);
        c.set_token(4);
        c.hold();
        c.send(Bytes::from_static(b"pub"));
        c.release_with(Bytes::from_static(b"reply"));
        let mut urgent = Vec::new();
        outbox.take_urgent(&mut urgent);
        assert_eq!(urgent, [4]);
        assert_eq!(c.queued_bytes(), 8);
        assert_eq!(c.consume(8), 2);
        assert_eq!(c.queued_bytes(), 0);
    }

    #[test]
    fn consume_handles_partial_frames() {
        let c = Conn::new(1, 0);
        c.send(Bytes::from_static(b"abc"));
        c.send(Bytes::from_static(b"defg"));
        assert_eq!(c.consume(4), 1);
        assert_eq!(c.queued_bytes(), 3);
        let front = c.with_front(8, |iov| iov.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
        assert_eq!(front, vec![b"efg".to_vec()]);
        assert_eq!(c.consume(3), 1);
        assert!(!c.has_output());
    }

    /// The histogram's total count, on this thread.
    fn timed_count() -> u64 {
        latency::snapshot().count()
    }

    #[test]
    fn each_timed_delivery_is_counted_once_when_its_frame_leaves() {
        let c = Conn::new(1, 0);
        let n0 = timed_count();
        let since = latency::stamp();
        c.send(Bytes::from_static(b"reply"));
        c.send_delivery(Bytes::from_static(b"pub1"), since);
        c.send_delivery(Bytes::from_static(b"pub2"), since);
        // Not timed: a join push.
        c.send_delivery(Bytes::from_static(b"join"), latency::NO_STAMP);
        assert_eq!(timed_count(), n0, "nothing sent yet");
        // The reply and half of pub1 leave, then the rest of pub1, pub2
        // and the join. (Which of a send's frames are the timed ones is not
        // kept, only how many are queued: the total is exact once they left.)
        assert_eq!(c.consume(7), 1);
        assert_eq!(c.consume(2 + 4 + 4), 3);
        assert_eq!(timed_count() - n0, 2, "two timed deliveries in all");
        assert!(!c.has_output());
        // A later publication counts again; one dropped with a cut queue
        // never reached the kernel and does not.
        c.send_delivery(Bytes::from_static(b"pub3"), latency::stamp());
        c.consume(4);
        assert_eq!(timed_count() - n0, 3);
        let d = Conn::new(2, 10);
        d.set_blocked(true);
        d.send_delivery(Bytes::from_static(b"pub4"), latency::stamp());
        assert!(!d.send_delivery(Bytes::from_static(b"pub5-too-big"), latency::stamp()));
        assert!(!d.has_output());
        assert_eq!(timed_count() - n0, 3);
    }

    #[test]
    fn timing_deliveries_makes_no_connection_bigger() {
        // 72 bytes: `Rc<Conn>` (88 B) takes a 96 B chunk.
        assert!(
            std::mem::size_of::<Conn>() <= 72,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }

    /// Drains the queue the way the reactor does (gathered copies or
    /// iovecs), in sends of at most `chunk` bytes; returns the bytes on the
    /// wire and the frames counted.
    fn drain(c: &Conn, chunk: usize) -> (Vec<u8>, usize) {
        let mut wire = Vec::new();
        let mut frames = 0;
        let mut buf = Vec::new();
        while c.has_output() {
            let n = if c.should_gather() {
                c.gather_front(&mut buf, 1000);
                let n = buf.len().min(chunk);
                wire.extend_from_slice(&buf[..n]);
                n
            } else {
                c.with_front(usize::MAX, |iov| {
                    let mut n = 0;
                    for s in iov {
                        let take = (chunk - n).min(s.len());
                        wire.extend_from_slice(&s[..take]);
                        n += take;
                        if n == chunk {
                            break;
                        }
                    }
                    n
                })
            };
            frames += c.consume(n);
        }
        (wire, frames)
    }

    #[test]
    fn small_and_big_frames_leave_in_order_whatever_the_send_sizes() {
        let big = Bytes::from(vec![7u8; GATHER_FRAME_MAX + 1]);
        let frames: Vec<Bytes> = (0..40u8)
            .map(|i| {
                if i % 7 == 3 {
                    big.clone()
                } else {
                    Bytes::from(vec![i; 1 + 9 * i as usize])
                }
            })
            .collect();
        let expect: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        for chunk in [1, 3, 64, 500, 999, 4096, usize::MAX] {
            let c = Conn::new(1, 0);
            for f in &frames {
                assert!(c.send(f.clone()));
            }
            assert_eq!(c.queued_bytes(), expect.len());
            let (wire, n) = drain(&c, chunk);
            assert_eq!(wire, expect, "chunk {chunk}");
            assert_eq!(n, frames.len(), "chunk {chunk}");
            assert_eq!(c.queued_bytes(), 0);
        }
    }
}
