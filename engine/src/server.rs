//! `ringcast serve`: the messaging server's WebSocket endpoint.

use std::rc::Rc;

use bytes::Bytes;

use crate::shard::conn::Conn;
use crate::shard::service::{OutboundPolicy, Service};
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

pub const WS_PATH: &str = "/connection/websocket";

pub struct Server {
    pub max_message: usize,
    pub max_queue: usize,
}

impl Service for Server {
    type State = ();

    fn accept(&self, req: &UpgradeRequest) -> Result<(), HandshakeError> {
        if req.path == WS_PATH {
            Ok(())
        } else {
            Err(HandshakeError::NotFound)
        }
    }

    fn decoder_config(&self) -> DecoderConfig {
        DecoderConfig::server(self.max_message)
    }

    fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy::Disconnect {
            limit: self.max_queue,
        }
    }

    fn open(&self, _conn: &Rc<Conn>, _req: UpgradeRequest) {}

    fn on_message(&self, _conn: &Rc<Conn>, _state: &mut (), _text: bool, _data: Bytes) {}

    fn on_close(&self, _conn: &Rc<Conn>, _state: ()) {}
}
