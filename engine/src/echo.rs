//! `ringcast echo`: every message back to its sender, text as text, binary as
//! binary, on any path. The conformance and echo-benchmark target.

use std::rc::Rc;

use bytes::Bytes;

use crate::shard::conn::Conn;
use crate::shard::framing::Framing;
use crate::shard::service::{OutboundPolicy, Service};
use crate::shard::task::frame;
use crate::ws::frame::{put_header, OpCode};
use crate::ws::handshake::{HandshakeError, UpgradeRequest};
use crate::ws::DecoderConfig;

/// Payloads up to this size are copied next to their header (one buffer, the
/// read buffer freed at once); larger ones go out as header + the read slice.
const COPY_BELOW: usize = 4096;

pub struct Echo {
    pub max_message: usize,
}

impl Service for Echo {
    type State = ();

    fn accept(&self, _req: &UpgradeRequest) -> Result<(), HandshakeError> {
        Ok(())
    }

    fn decoder_config(&self) -> DecoderConfig {
        DecoderConfig::server(self.max_message)
    }

    fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy::Backpressure {
            high_water: 1 << 20,
        }
    }

    /// permessage-deflate whenever the client offers it (Autobahn 12.*, 13.*).
    fn framing(&self, req: &UpgradeRequest) -> Framing {
        Framing::websocket(crate::ws::deflate::negotiate(&req.extensions))
    }

    fn open(&self, _conn: &Rc<Conn>, _req: UpgradeRequest) {}

    fn on_message(&self, conn: &Rc<Conn>, _state: &mut (), text: bool, data: Bytes) {
        // A compressed connection gets the message as one frame, which its
        // framing compresses.
        if data.len() < COPY_BELOW || conn.framing().is_deflate() {
            conn.send(frame(text, &data));
        } else {
            let mut header = bytes::BytesMut::with_capacity(10);
            let op = if text { OpCode::Text } else { OpCode::Binary };
            put_header(&mut header, true, op, data.len());
            conn.send(header.freeze());
            conn.send(data);
        }
    }

    fn on_close(&self, _conn: &Rc<Conn>, _state: ()) {}
}
