//! The protobuf client protocol for `--transport protobuf` (WebSocket with
//! `?format=protobuf`, binary frames of varint-length-delimited messages):
//! the bench's JSON commands become protobuf `Command`s on the way out, and
//! the server's protobuf `Reply`s become the JSON lines the scenarios read
//! (`{"id":N,…}`, `{"push":{"channel":…,"pub":{"data":…,"offset":N}}}`, `{}`
//! for a ping). The messages are the engine's (ringcast::protocol::protobuf),
//! so the bench speaks exactly what the server decodes. The transcoding is
//! the bench's own CPU, on the load generator's core.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use ringcast::protocol::protobuf::{
    Command, ConnectRequest, PublishRequest, Reply, SubscribeRequest,
};
use serde_json::Value;

/// A JSON command of the bench (connect, subscribe, publish, or `{}`, the
/// pong) as one length-delimited protobuf `Command`; None for anything else.
pub fn command(json: &[u8]) -> Option<Vec<u8>> {
    let v: Value = serde_json::from_slice(json).ok()?;
    let o = v.as_object()?;
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut cmd = Command {
        id: o.get("id").and_then(Value::as_u64).unwrap_or(0) as u32,
        ..Command::default()
    };
    if let Some(c) = o.get("connect") {
        cmd.connect = Some(ConnectRequest {
            token: str_of(c, "token"),
            ..ConnectRequest::default()
        });
    } else if let Some(s) = o.get("subscribe") {
        cmd.subscribe = Some(SubscribeRequest {
            channel: str_of(s, "channel"),
            delta: str_of(s, "delta"),
            recover: s.get("recover").and_then(Value::as_bool).unwrap_or(false),
            recoverable: s
                .get("recoverable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            offset: s.get("offset").and_then(Value::as_u64).unwrap_or(0),
            epoch: str_of(s, "epoch"),
            ..SubscribeRequest::default()
        });
    } else if let Some(p) = o.get("publish") {
        cmd.publish = Some(PublishRequest {
            channel: str_of(p, "channel"),
            data: p.get("data").map(|d| d.to_string().into_bytes())?,
        });
    } else if !o.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(cmd.encoded_len() + 4);
    cmd.encode_length_delimited(&mut out).ok()?;
    Some(out)
}

/// The replies of one binary message as JSON lines (`\n`-separated); a
/// message that does not decode gives what decoded before it.
pub fn replies(mut bin: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(bin.len() + 64);
    while !bin.is_empty() {
        let Ok(r) = Reply::decode_length_delimited(&mut bin) else {
            break;
        };
        if !out.is_empty() {
            out.put_u8(b'\n');
        }
        line(&mut out, &r);
    }
    out.freeze()
}

fn line(out: &mut BytesMut, r: &Reply) {
    let put_json = |out: &mut BytesMut, v: Value| out.put_slice(v.to_string().as_bytes());
    if r.id != 0 {
        let v = match (&r.error, &r.subscribe) {
            (Some(e), _) => {
                serde_json::json!({"id": r.id, "error": {"code": e.code, "message": e.message}})
            }
            (None, Some(s)) => serde_json::json!({"id": r.id, "subscribe": {
                "epoch": s.epoch, "offset": s.offset, "recoverable": s.recoverable,
                "was_recovering": s.was_recovering, "recovered": s.recovered}}),
            (None, None) if r.connect.is_some() => {
                let c = r.connect.as_ref().expect("connect");
                serde_json::json!({"id": r.id, "connect": {"client": c.client}})
            }
            (None, None) => serde_json::json!({"id": r.id, "result": {}}),
        };
        return put_json(out, v);
    }
    let Some(push) = &r.push else {
        return out.put_slice(b"{}"); // a ping
    };
    let Some(p) = &push.publication else {
        return out.put_slice(b"{\"push\":{}}");
    };
    out.put_slice(b"{\"push\":{\"channel\":");
    out.put_slice(Value::from(push.channel.as_str()).to_string().as_bytes());
    out.put_slice(b",\"pub\":{\"data\":");
    // Payloads are JSON text (what ringcast carries); anything else goes
    // as a string, where the stamp is not looked for.
    match std::str::from_utf8(&p.data)
        .ok()
        .filter(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok())
    {
        Some(t) => out.put_slice(t.as_bytes()),
        None => put_json(out, Value::from(String::from_utf8_lossy(&p.data).as_ref())),
    }
    if p.offset > 0 {
        out.put_slice(b",\"offset\":");
        out.put_slice(p.offset.to_string().as_bytes());
    }
    out.put_slice(b"}}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::centrifuge::{classify, Line};
    use ringcast::protocol::protobuf::encode_replies;

    #[test]
    fn commands_and_replies_round_trip_through_the_engine() {
        // Out: the engine decodes our commands back to the JSON we meant.
        let mut wire = command(br#"{"id":1,"connect":{}}"#).unwrap();
        wire.extend(command(br#"{"id":2,"subscribe":{"channel":"c","delta":"fossil"}}"#).unwrap());
        wire.extend(command(b"{}").unwrap());
        let lines = ringcast::protocol::protobuf::decode_commands(&wire).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(command(br#"{"id":3,"rpc":{}}"#).is_none());

        // In: the server's replies, as the engine encodes them, read back.
        let json = br#"{"id":1,"connect":{"client":"abc","version":"x"}}
{"push":{"channel":"c","pub":{"data":{"t":5,"s":1,"p":0,"c":0,"x":""},"offset":9}}}
{}
{"id":2,"error":{"code":107,"message":"bad request"}}"#;
        let text = replies(&encode_replies(json));
        let got: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(got.len(), 4);
        assert_eq!(
            classify(got[0]),
            Line::Reply {
                id: 1,
                error: false
            }
        );
        assert!(matches!(classify(got[1]), Line::Push { stamp: Some(s) } if s.t == 5));
        assert_eq!(classify(got[2]), Line::Ping);
        assert_eq!(classify(got[3]), Line::Reply { id: 2, error: true });
    }
}
