//! A connection's first moments: read and answer the upgrade request (bounded
//! in size and time), then hand the socket to the shard's reactor
//! (`reactor/`), which serves it from then on. The handshake is the only part
//! of a connection's life served by a task: one of the shard's handshake
//! workers (`handshakes.rs`), which serve one connection after another.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;
use monoio::time::timeout;

use super::ceiling::Slot;
use super::conn::{Conn, End};
use super::framing::PROTOBUF_SUBPROTOCOL;
use super::reactor;
use super::service::{OutboundPolicy, Service};
use super::ShardCtx;
use crate::sys;
use crate::ws::frame::{encode, OpCode};
use crate::ws::handshake::{self, HandshakeError, UpgradeRequest};

/// Serves one accepted connection up to the upgrade, then hands it to the
/// shard's reactor; `slot` holds its place under the connection ceiling.
pub(crate) async fn serve<S: Service>(shard: Rc<ShardCtx<S>>, stream: TcpStream, slot: Slot) {
    let (req, rest, framing) = match upgrade(&shard, &stream).await {
        Upgrade::Done(req, rest, framing) => (req, rest, framing),
        Upgrade::Plain(buf) => {
            // The service serves this plain HTTP connection; it keeps its
            // place under the ceiling until it ends (or hands the place on
            // with the socket to the reactor: `adopt_stream`).
            S::serve_plain(shard.clone(), stream, buf, slot).await;
            return;
        }
        Upgrade::Failed => {
            shard.stats.handshake_failed();
            return;
        }
    };
    let fd = match stream.into_raw_fd() {
        raw if raw >= 0 => sys::adopt_fd(raw),
        _ => return,
    };
    let conn = new_conn(&shard, framing);
    let state = shard.service.open(&conn, req);
    shard.stats.opened();
    if let Err(e) = reactor::adopt(&shard, fd, conn.clone(), state, rest, slot) {
        tracing::warn!(shard = shard.id, error = %e, "could not register a connection");
        shard.stats.closed(End::Gone);
    }
}

/// Hands a plain HTTP connection whose response has begun (an HTTP stream)
/// to the shard's reactor, which serves it like an upgraded connection from
/// then on: `conn`'s framing says how.
pub fn adopt_stream<S: Service>(
    shard: &Rc<ShardCtx<S>>,
    stream: TcpStream,
    conn: Rc<Conn>,
    state: S::State,
    slot: Slot,
) -> io::Result<()> {
    let fd = match stream.into_raw_fd() {
        raw if raw >= 0 => sys::adopt_fd(raw),
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    shard.stats.opened();
    reactor::adopt(shard, fd, conn, state, None, slot).inspect_err(|_| {
        shard.stats.closed(End::Gone);
    })
}

/// A new connection's shared half, queueing into the shard's outbox (which
/// keeps the service's outbound limit: `queue_limit`).
pub fn new_conn<S: Service>(shard: &ShardCtx<S>, framing: super::framing::Framing) -> Rc<Conn> {
    Rc::new(Conn::of_shard(framing, shard.reactor.outbox()))
}

/// The queue limit of the service's connections (0: none, they are paused
/// by backpressure instead).
pub(crate) fn queue_limit<S: Service>(service: &S) -> usize {
    match service.outbound_policy() {
        OutboundPolicy::Disconnect { limit } => limit,
        OutboundPolicy::Backpressure { .. } => 0,
    }
}

enum Upgrade {
    /// Upgraded: the request, what the peer sent after it, and how the
    /// connection's messages are framed.
    Done(UpgradeRequest, Option<BytesMut>, super::framing::Framing),
    /// A plain HTTP request the service takes (what was read of it).
    Plain(BytesMut),
    /// Refused, timed out or gone (the peer got its status where there was
    /// one to give).
    Failed,
}

/// Reads and answers the upgrade request.
async fn upgrade<S: Service>(shard: &ShardCtx<S>, stream: &TcpStream) -> Upgrade {
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let hs = timeout(
        shard.cfg.handshake_timeout,
        read_upgrade(
            stream,
            shard.cfg.max_handshake,
            shard.service.kept_headers(),
        ),
    );
    let (req, rest) = match hs.await {
        Err(_) => {
            let resp = handshake::plain_response(408, "Request Timeout", "", "handshake timeout");
            let _ = sys::send(fd, &resp);
            return Upgrade::Failed;
        }
        Ok(Err(None)) => return Upgrade::Failed,
        Ok(Err(Some((e, buf)))) => {
            let plain = matches!(
                e,
                HandshakeError::NotUpgrade | HandshakeError::MethodNotAllowed
            );
            if plain {
                let takes = handshake::plain_target(&buf)
                    .is_some_and(|(method, path)| shard.service.takes_plain(&method, &path));
                if takes {
                    return Upgrade::Plain(buf);
                }
            }
            reject(shard, stream, e).await;
            return Upgrade::Failed;
        }
        Ok(Ok(r)) => r,
    };
    if let Err(e) = shard.service.accept(&req) {
        reject(shard, stream, e).await;
        return Upgrade::Failed;
    }
    if let Some(admission) = shard.service.admit(&req) {
        let verdict = match timeout(shard.cfg.handshake_timeout, admission).await {
            Ok(v) => v,
            Err(_) => Err(HandshakeError::BadGateway),
        };
        if let Err(e) = verdict {
            reject(shard, stream, e).await;
            return Upgrade::Failed;
        }
    }
    let framing = shard.service.framing(&req);
    let mut headers = format!(
        "X-Ringcast-Shard: {}\r\n{}",
        shard.id,
        shard.service.response_headers()
    );
    if framing.is_deflate() {
        if let Some(a) = crate::ws::deflate::negotiate(&req.extensions) {
            headers.push_str("Sec-WebSocket-Extensions: ");
            headers.push_str(&a.response());
            headers.push_str("\r\n");
        }
    }
    let subprotocol = (framing.is_protobuf()
        && req.protocols.iter().any(|p| p == PROTOBUF_SUBPROTOCOL))
    .then_some(PROTOBUF_SUBPROTOCOL);
    let resp = handshake::switching_protocols(&req.key, subprotocol, &headers);
    let write = timeout(shard.cfg.handshake_timeout, write_all(stream, &resp));
    if !matches!(write.await, Ok(Ok(()))) {
        return Upgrade::Failed;
    }
    Upgrade::Done(req, rest, framing)
}

/// Reads until a complete upgrade request. `Err(None)`: the peer went away;
/// `Err(Some((e, buf)))`: refused, with what was read.
async fn read_upgrade(
    stream: &TcpStream,
    max: usize,
    keep: &[String],
) -> Result<(UpgradeRequest, Option<BytesMut>), Option<(HandshakeError, BytesMut)>> {
    let fd = stream.as_raw_fd();
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        stream.readable(false).await.map_err(|_| None)?;
        let room = max + 1 - buf.len().min(max);
        // Read into the room the buffer has and double it only once full:
        // asking for all of `room` at once would make every handshake
        // allocate an 8 KiB buffer for a request of a few hundred bytes.
        let spare = buf.capacity() - buf.len();
        let want = if spare > 0 { spare } else { buf.capacity() }.min(room);
        match sys::recv_into(fd, &mut buf, want) {
            Ok(0) => return Err(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(None),
        }
        let parsed = match handshake::parse_request_keeping(&buf, max, keep) {
            Ok(p) => p,
            Err(e) => return Err(Some((e, buf))),
        };
        if let Some((req, n)) = parsed {
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

/// For services: a complete unmasked frame for one message.
pub fn frame(text: bool, payload: &[u8]) -> Bytes {
    encode(if text { OpCode::Text } else { OpCode::Binary }, payload)
}
