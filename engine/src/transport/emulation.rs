//! `POST /emulation`: a later command batch for a session on the
//! bidirectional HTTP transports. The body is `{"session":…,"node":…,
//! "data":…}`, `data` being the commands as one JSON string (centrifuge-js
//! sends it so). The session's id names its shard, so the batch goes
//! straight there; another node's session is reached over the broker's
//! control channel.
//!
//! Answers (Centrifugo's): 204 once the batch is on its way (a session that
//! has gone meanwhile drops it, as in Centrifugo), 400 for a body that does
//! not parse, 404 for a node this one does not know, 413 past the size
//! limit (read by the caller).

use std::borrow::Cow;

use base64::Engine as _;
use bytes::Bytes;
use prost::Message as _;
use serde::Deserialize;

use crate::client::registry::Registry;
use crate::client::{shard_of_session, ClientService};
use crate::http::Request;
use crate::hub::mesh::MeshMsg;
use crate::hub::seam::Control;

#[derive(Debug, PartialEq, Eq, Deserialize)]
pub struct EmulationRequest<'a> {
    #[serde(borrow)]
    pub session: Cow<'a, str>,
    #[serde(borrow, default)]
    pub node: Cow<'a, str>,
    /// The commands, unescaped from their JSON string.
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

/// `EmulationRequest` of `client.proto`, the protobuf body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoEmulationRequest {
    #[prost(string, tag = "1")]
    pub node: String,
    #[prost(string, tag = "2")]
    pub session: String,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// Parses an emulation body (no I/O; fuzzed).
pub fn parse(body: &[u8]) -> Option<EmulationRequest<'_>> {
    let r: EmulationRequest<'_> = serde_json::from_slice(body).ok()?;
    (!r.session.is_empty()).then_some(r)
}

/// Routes one request; returns the status to answer with.
pub(super) fn handle(client: &ClientService, req: &Request) -> u16 {
    let (session, node, data, binary) = if super::is_protobuf(req) {
        // The protobuf body: an `EmulationRequest`, the commands as bytes.
        match ProtoEmulationRequest::decode(&req.body[..]) {
            Ok(e) if !e.session.is_empty() => (e.session, e.node, Bytes::from(e.data), true),
            _ => return 400,
        }
    } else {
        match parse(&req.body) {
            Some(e) => (
                e.session.into_owned(),
                e.node.into_owned(),
                Bytes::from(e.data.into_owned()),
                false,
            ),
            None => return 400,
        }
    };
    let hub = &client.hub;
    if node != *client.options().node_uid {
        let known = hub
            .broker()
            .other_nodes()
            .iter()
            .any(|n| n["uid"].as_str() == Some(&*node));
        if !known {
            return 404;
        }
        let data = if binary {
            base64::engine::general_purpose::STANDARD.encode(&data)
        } else {
            String::from_utf8_lossy(&data).into_owned()
        };
        hub.broker().control(
            hub,
            Control::Emulate {
                session,
                data,
                base64: binary,
            },
        );
        return 204;
    }
    match shard_of_session(&session) {
        Some(shard) if shard == hub.shard => Registry::of(hub).emulate(&session, data),
        Some(shard) if shard < hub.shards() => hub.send(
            shard,
            MeshMsg::Run(Box::new(move |hub| {
                Registry::of(hub).emulate(&session, data)
            })),
        ),
        // No such shard, so no such session: dropped, as a gone one is.
        _ => {}
    }
    204
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let r =
            parse(br#"{"session":"1.abc","node":"n1","data":"{\"id\":2,\"ping\":{}}"}"#).unwrap();
        assert_eq!(r.session, "1.abc");
        assert_eq!(r.node, "n1");
        assert_eq!(r.data, r#"{"id":2,"ping":{}}"#);
        assert!(parse(b"").is_none());
        assert!(parse(br#"{"session":"","data":""}"#).is_none());
        assert!(parse(br#"{"session":"s","data":{"id":1}}"#).is_none());
        assert!(parse(br#"{"session":"s"}"#).is_none());
        assert!(parse(b"\xff\xfe").is_none());
    }
}
