//! The life of one connection on its shard: handshake, the WebSocket loop,
//! the closing handshake. One task per connection; while idle it waits on a
//! single readiness poll and holds no read buffer.

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use monoio::time::{sleep, timeout};

use super::conn::{CloseRequest, Conn};
use super::service::{OutboundPolicy, Service};
use super::ShardCtx;
use crate::sys;
use crate::ws::close::code;
use crate::ws::frame::{encode, encode_close, OpCode};
use crate::ws::handshake::{self, HandshakeError, UpgradeRequest};
use crate::ws::{Decoder, Message};

/// Bytes read per recv(2) into the shard's scratch buffer.
const READ_CHUNK: usize = 64 * 1024;
/// recv(2) calls per readiness event before yielding to other connections.
const READS_PER_TURN: usize = 4;

/// Serves one accepted connection; `_slot` holds its place under the
/// connection ceiling until the task ends.
pub(crate) async fn serve<S: Service>(
    shard: Rc<ShardCtx<S>>,
    stream: TcpStream,
    _slot: super::ceiling::Slot,
) {
    // The handshake runs in its own allocation, freed once it is done: the
    // future that stays resident for the connection's life holds only what
    // the WebSocket loop needs.
    let Some((req, rest)) = Box::pin(upgrade(&shard, &stream)).await else {
        shard.stats.handshake_failed();
        return;
    };
    let limit = match shard.service.outbound_policy() {
        OutboundPolicy::Disconnect { limit } => limit,
        OutboundPolicy::Backpressure { .. } => 0,
    };
    let conn = Rc::new(Conn::new(shard.next_conn_id(), limit));
    shard.stats.opened();
    shard.register(&conn);
    let mut state = shard.service.open(&conn, req);
    let end = ws_loop(&shard, &stream, &conn, &mut state, rest).await;
    shard.service.on_close(&conn, state);
    shard.unregister(&conn);
    shard.stats.closed(end);
    if end == End::Closing {
        Box::pin(linger(&shard, &stream)).await;
    }
}

/// Reads and answers the upgrade request. `None`: refused, timed out or gone
/// (the peer got its status where there was one to give).
async fn upgrade<S: Service>(
    shard: &ShardCtx<S>,
    stream: &TcpStream,
) -> Option<(UpgradeRequest, Option<BytesMut>)> {
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let hs = timeout(
        shard.cfg.handshake_timeout,
        read_upgrade(stream, shard.cfg.max_handshake),
    );
    let (req, rest) = match hs.await {
        Err(_) => {
            let resp = handshake::plain_response(408, "Request Timeout", "", "handshake timeout");
            let _ = sys::send(fd, &resp);
            return None;
        }
        Ok(Err(None)) => return None,
        Ok(Err(Some(e))) => {
            reject(shard, stream, e).await;
            return None;
        }
        Ok(Ok(r)) => r,
    };
    if let Err(e) = shard.service.accept(&req) {
        reject(shard, stream, e).await;
        return None;
    }
    let headers = format!(
        "X-Ringcast-Shard: {}\r\n{}",
        shard.id,
        shard.service.response_headers()
    );
    let resp = handshake::switching_protocols(&req.key, None, &headers);
    let write = timeout(shard.cfg.handshake_timeout, write_all(stream, &resp));
    if !matches!(write.await, Ok(Ok(()))) {
        return None;
    }
    Some((req, rest))
}

/// Reads until a complete upgrade request. `Err(None)`: the peer went away.
async fn read_upgrade(
    stream: &TcpStream,
    max: usize,
) -> Result<(UpgradeRequest, Option<BytesMut>), Option<HandshakeError>> {
    let fd = stream.as_raw_fd();
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        stream.readable(false).await.map_err(|_| None)?;
        let room = max + 1 - buf.len().min(max);
        match sys::recv_into(fd, &mut buf, room) {
            Ok(0) => return Err(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(None),
        }
        if let Some((req, n)) = handshake::parse_request(&buf, max).map_err(Some)? {
            let _ = buf.split_to(n);
            let rest = (!buf.is_empty()).then(|| BytesMut::from(&buf[..]));
            return Ok((req, rest));
        }
    }
}

async fn reject<S: Service>(shard: &ShardCtx<S>, stream: &TcpStream, e: HandshakeError) {
    tracing::debug!(shard = shard.id, reason = e.reason(), "handshake refused");
    let _ = timeout(
        shard.cfg.handshake_timeout,
        write_all(stream, &e.response()),
    )
    .await;
    let _ = sys::shutdown_write(stream.as_raw_fd());
}

/// Writes all of `data`, waiting for writability as needed.
pub(crate) async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    while !data.is_empty() {
        match sys::send(fd, data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable(false).await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How the WebSocket loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The peer closed or reset the TCP connection.
    Gone,
    /// A close frame went out (ours, or our echo of the peer's).
    Closing,
    /// A close was pending but could not be delivered in time.
    Abandoned,
}

enum Event {
    Readable(io::Result<()>),
    Writable,
    Wake,
    Deadline,
}

async fn ws_loop<S: Service>(
    shard: &ShardCtx<S>,
    stream: &TcpStream,
    conn: &Rc<Conn>,
    state: &mut S::State,
    mut partial: Option<BytesMut>,
) -> End {
    let fd = stream.as_raw_fd();
    let high_water = match shard.service.outbound_policy() {
        OutboundPolicy::Backpressure { high_water } => high_water,
        OutboundPolicy::Disconnect { .. } => usize::MAX,
    };
    let mut decoder = Decoder::new();
    let mut readable = pin!(stream.readable(false));
    // Rare states get their own allocations so the resident future stays small.
    let mut writable: Option<Pin<Box<dyn Future<Output = io::Result<()>> + '_>>> = None;
    let mut deadline: Option<Pin<Box<monoio::time::Sleep>>> = None;
    let mut blocked = false;
    let mut closing = false;

    // Frames that arrived right behind the upgrade request.
    if partial.is_some() {
        if let Some(end) = on_readable(shard, fd, conn, state, &mut decoder, &mut partial, true) {
            return end;
        }
    }
    loop {
        if !closing {
            if let Some(CloseRequest { code, reason }) = conn.take_close() {
                if code == super::conn::SLOW_CONSUMER {
                    shard.stats.slow_disconnect();
                }
                conn.push_final(encode_close(code, &reason));
                closing = true;
                partial = None;
                deadline = Some(Box::pin(sleep(shard.cfg.close_timeout)));
            }
        }
        if !blocked && conn.has_output() {
            match flush(shard, fd, conn) {
                Ok(true) => {}
                Ok(false) => {
                    blocked = true;
                    writable = Some(Box::pin(stream.writable(false)));
                }
                Err(_) => return End::Gone,
            }
        }
        if closing && !conn.has_output() {
            return End::Closing;
        }
        let read_paused = closing || conn.queued_bytes() > high_water;

        let event = poll_fn(|cx| {
            if (!blocked && conn.has_output()) || (!closing && conn.is_closing()) {
                return Poll::Ready(Event::Wake);
            }
            conn.set_waker(cx.waker());
            if let Some(w) = writable.as_mut() {
                if w.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Writable);
                }
            }
            if !read_paused {
                if let Poll::Ready(r) = readable.as_mut().poll(cx) {
                    return Poll::Ready(Event::Readable(r));
                }
            }
            if let Some(d) = deadline.as_mut() {
                if d.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Deadline);
                }
            }
            Poll::Pending
        })
        .await;

        match event {
            Event::Wake => {}
            Event::Writable => {
                writable = None;
                blocked = false;
            }
            Event::Deadline => return End::Abandoned,
            Event::Readable(Err(_)) => return End::Gone,
            Event::Readable(Ok(())) => {
                readable.set(stream.readable(false));
                if let Some(end) =
                    on_readable(shard, fd, conn, state, &mut decoder, &mut partial, false)
                {
                    return end;
                }
            }
        }
    }
}

/// Sends as much of the queue as the socket takes. `Ok(true)`: drained.
fn flush<S: Service>(shard: &ShardCtx<S>, fd: RawFd, conn: &Conn) -> io::Result<bool> {
    while conn.has_output() {
        match conn.with_front(usize::MAX, |iov| sys::send_vectored(fd, iov)) {
            Ok(n) => {
                let frames = conn.consume(n);
                shard.stats.sent(n, frames);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads what is there and hands complete messages on. `Some(end)` when the
/// connection is over.
fn on_readable<S: Service>(
    shard: &ShardCtx<S>,
    fd: RawFd,
    conn: &Rc<Conn>,
    state: &mut S::State,
    decoder: &mut Decoder,
    partial: &mut Option<BytesMut>,
    mut buffered_only: bool,
) -> Option<End> {
    let cfg = shard.service.decoder_config();
    for _ in 0..READS_PER_TURN {
        let own = partial.is_some();
        let mut buf = partial.take().unwrap_or_else(|| shard.scratch.take());
        let mut full = false;
        if !buffered_only {
            match sys::recv_into(fd, &mut buf, READ_CHUNK) {
                Ok(0) => return Some(End::Gone),
                Ok(n) => {
                    shard.stats.received(n);
                    full = n == READ_CHUNK;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => full = true,
                Err(_) => return Some(End::Gone),
            }
        }
        buffered_only = false;
        loop {
            match decoder.decode(&mut buf, &cfg) {
                Ok(Some(msg)) => {
                    if let Some(end) = dispatch(shard, conn, state, msg) {
                        return Some(end);
                    }
                    if conn.is_closing() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(shard = shard.id, conn = conn.id, error = %e, "protocol error");
                    shard.stats.protocol_error();
                    conn.close_with(e.close_code(), e.reason());
                    buf.clear();
                    break;
                }
            }
        }
        if conn.is_closing() {
            buf.clear();
        }
        if own {
            if !buf.is_empty() {
                *partial = Some(buf);
            }
        } else {
            if !buf.is_empty() {
                // A partial frame: copy it out so the scratch buffer stays shared.
                *partial = Some(BytesMut::from(&buf[..]));
                buf.clear();
            }
            shard.scratch.replace(buf);
        }
        if !full || conn.is_closing() || conn.queued_bytes() > READ_CHUNK * 64 {
            break;
        }
    }
    None
}

fn dispatch<S: Service>(
    shard: &ShardCtx<S>,
    conn: &Rc<Conn>,
    state: &mut S::State,
    msg: Message,
) -> Option<End> {
    shard.stats.message_in();
    match msg {
        Message::Text(data) => shard.service.on_message(conn, state, true, data),
        Message::Binary(data) => shard.service.on_message(conn, state, false, data),
        Message::Ping(data) => {
            conn.send(encode(OpCode::Pong, &data));
        }
        Message::Pong(_) => shard.service.on_pong(conn, state),
        Message::Close(frame) => {
            // Echo the peer's code (RFC 6455 §5.5.1), then close.
            let code = frame.map_or(code::NORMAL, |f| f.code);
            conn.close_with(code, "");
        }
    }
    None
}

/// After our close frame: half-close, then read and discard until the peer
/// closes too (or the close timeout passes), so the frame is not lost to a
/// reset.
async fn linger<S: Service>(shard: &ShardCtx<S>, stream: &TcpStream) {
    let fd = stream.as_raw_fd();
    if sys::shutdown_write(fd).is_err() {
        return;
    }
    let drain = async {
        let mut buf = BytesMut::new();
        loop {
            if stream.readable(false).await.is_err() {
                return;
            }
            buf.clear();
            match sys::recv_into(fd, &mut buf, 4096) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = timeout(shard.cfg.close_timeout, drain).await;
}

/// For services: a complete unmasked frame for one message.
pub fn frame(text: bool, payload: &[u8]) -> Bytes {
    encode(if text { OpCode::Text } else { OpCode::Binary }, payload)
}
