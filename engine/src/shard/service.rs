//! What runs on top of the transport: the echo server, the messaging server.
//! One instance per shard, so implementations use `Rc`/`Cell`, never locks.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use monoio::net::TcpStream;

use super::ceiling::Slot;
use super::conn::Conn;
use super::framing::Framing;
use super::ShardCtx;
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

/// How a connection's outbound queue is bounded.
#[derive(Debug, Clone, Copy)]
pub enum OutboundPolicy {
    /// Cut the connection with 3008 when its queue passes `limit` bytes
    /// (pushes from publications must never wait on one slow reader).
    Disconnect { limit: usize },
    /// Stop reading from the connection while its queue is above `high_water`
    /// (echo: the peer's own writes are what fill its queue).
    Backpressure { high_water: usize },
}

/// A connection handler for one of the shard's extra listeners.
pub type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

/// An upgrade decision that takes a while (an application backend's word).
pub type Admission = Pin<Box<dyn Future<Output = Result<(), HandshakeError>>>>;

pub trait Service: Sized + 'static {
    /// Per-connection protocol state, owned by the connection task.
    type State: 'static;

    /// Decides on an upgrade before the 101 is sent (routing, limits).
    fn accept(&self, req: &UpgradeRequest) -> Result<(), HandshakeError>;

    /// After `accept`: a decision to wait for before the 101 (within the
    /// handshake timeout); `None`: none needed.
    fn admit(&self, _req: &UpgradeRequest) -> Option<Admission> {
        None
    }

    fn decoder_config(&self) -> DecoderConfig;

    fn outbound_policy(&self) -> OutboundPolicy;

    /// Request headers (names lowercase) the service wants in
    /// `UpgradeRequest::kept`.
    fn kept_headers(&self) -> &[String] {
        &[]
    }

    /// Extra `Name: value\r\n` lines for the 101 response.
    fn response_headers(&self) -> &str {
        ""
    }

    /// How an upgraded connection's frames are framed (its path may ask for
    /// a unidirectional stream).
    fn framing(&self, _req: &UpgradeRequest) -> Framing {
        Framing::WebSocket
    }

    /// The connection is upgraded; `conn` is where replies go.
    fn open(&self, conn: &Rc<Conn>, req: UpgradeRequest) -> Self::State;

    /// A complete text (`text = true`) or binary message.
    fn on_message(&self, conn: &Rc<Conn>, state: &mut Self::State, text: bool, data: Bytes);

    /// The peer sent a close frame (`None`: without a code); the
    /// connection closes next.
    fn on_peer_close(
        &self,
        _conn: &Rc<Conn>,
        _state: &mut Self::State,
        _frame: Option<&crate::ws::close::CloseFrame>,
    ) {
    }

    /// A pong arrived (the protocol's liveness signal for some services).
    fn on_pong(&self, _conn: &Rc<Conn>, _state: &mut Self::State) {}

    /// The connection is gone; release everything it held.
    fn on_close(&self, conn: &Rc<Conn>, state: Self::State);

    /// Serves a connection accepted on extra listener `which` (the order of
    /// `ShardConfig::extra_listen`): the HTTP API, the TCP publisher port.
    fn serve_extra(shard: Rc<ShardCtx<Self>>, which: usize, stream: TcpStream) -> LocalFuture {
        let _ = (shard, which, stream);
        Box::pin(async {})
    }

    /// A plain HTTP request (not an upgrade) arrived on the upgrade port:
    /// whether the service serves it (`serve_plain`) instead of refusing it.
    fn takes_plain(&self, _method: &str, _path: &str) -> bool {
        false
    }

    /// Serves a plain HTTP connection `takes_plain` accepted; `buf` holds
    /// what was read of it so far (the request head at least). `slot` is
    /// its place under the connection ceiling, held until it is dropped.
    fn serve_plain(
        shard: Rc<ShardCtx<Self>>,
        stream: TcpStream,
        buf: BytesMut,
        slot: Slot,
    ) -> LocalFuture {
        let _ = (shard, stream, buf, slot);
        Box::pin(async {})
    }

    /// Called between slices of a long flush pass, after new input was
    /// read: runs work that input queued (the hub), so what it produces joins
    /// the rest of the pass.
    fn pump(&self) {}

    /// The close every connection gets on graceful shutdown.
    fn shutdown_close(&self) -> (u16, &'static str) {
        (crate::ws::close::code::GOING_AWAY, "going away")
    }
}
