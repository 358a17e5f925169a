//! The protobuf client protocol (centrifugal/protocol `client.proto`), as a
//! transcoding of the JSON one at the edge: a protobuf connection's commands
//! become JSON command lines before the session sees them, and its replies
//! and pushes are the JSON ones re-encoded (once per shard for a
//! publication, see `shard::framing`). The session, the hub and the brokers
//! keep one encoding. No I/O; the decoder is fuzzed.
//!
//! The messages are declared here by hand with prost's derive (the fields
//! ringcast uses, with `client.proto`'s numbers), so no protoc is needed.
//! Every `bytes` payload (publication data, connect data, client info)
//! travels as JSON inside the engine: a protobuf client's payloads must be
//! JSON text (as for mixing JSON and protobuf clients in Centrifugo); a
//! command whose payload is not is answered 107 (bad request).
//!
//! Framing: commands and replies are varint-length-delimited, several per
//! WebSocket binary message.

use std::collections::HashMap;

use prost::Message;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

// ---- bytes fields that carry JSON ----

fn raw_in<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let raw: &RawValue = Deserialize::deserialize(d)?;
    Ok(raw.get().as_bytes().to_vec())
}

fn raw_out<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let text = std::str::from_utf8(v).map_err(serde::ser::Error::custom)?;
    let raw: &RawValue = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

// ---- commands (client → server): decoded, then written as JSON ----

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct Command {
    #[prost(uint32, tag = "1")]
    #[serde(skip_serializing_if = "is_zero")]
    pub id: u32,
    #[prost(message, optional, tag = "4")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectRequest>,
    #[prost(message, optional, tag = "5")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeRequest>,
    #[prost(message, optional, tag = "6")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<ChannelRequest>,
    #[prost(message, optional, tag = "7")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishRequest>,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<ChannelRequest>,
    #[prost(message, optional, tag = "9")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_stats: Option<ChannelRequest>,
    #[prost(message, optional, tag = "10")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRequest>,
    #[prost(message, optional, tag = "11")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<Empty>,
    #[prost(message, optional, tag = "12")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<DataRequest>,
    #[prost(message, optional, tag = "13")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc: Option<RpcRequest>,
    #[prost(message, optional, tag = "14")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<TokenRequest>,
    #[prost(message, optional, tag = "15")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_refresh: Option<ChannelTokenRequest>,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct Empty {}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct ConnectRequest {
    #[prost(string, tag = "1")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    #[prost(bytes = "vec", tag = "2")]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "raw_out")]
    pub data: Vec<u8>,
    #[prost(map = "string, message", tag = "3")]
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub subs: HashMap<String, SubscribeRequest>,
    #[prost(string, tag = "4")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[prost(string, tag = "5")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct SubscribeRequest {
    #[prost(string, tag = "1")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[prost(string, tag = "2")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    #[prost(bool, tag = "3")]
    #[serde(skip_serializing_if = "is_zero")]
    pub recover: bool,
    #[prost(string, tag = "6")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    #[prost(uint64, tag = "7")]
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[prost(bytes = "vec", tag = "8")]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "raw_out")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "9")]
    #[serde(skip_serializing_if = "is_zero")]
    pub positioned: bool,
    #[prost(bool, tag = "10")]
    #[serde(skip_serializing_if = "is_zero")]
    pub recoverable: bool,
    #[prost(bool, tag = "11")]
    #[serde(skip_serializing_if = "is_zero")]
    pub join_leave: bool,
    #[prost(string, tag = "12")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub delta: String,
    #[prost(message, optional, tag = "13")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tf: Option<FilterNode>,
    #[prost(int64, tag = "14")]
    #[serde(skip_serializing_if = "is_zero")]
    pub flag: i64,
}

/// A tags filter node (read as JSON by `protocol::tags`).
#[derive(Clone, PartialEq, Message, Serialize)]
pub struct FilterNode {
    #[prost(string, tag = "1")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[prost(string, tag = "2")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[prost(string, tag = "3")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cmp: String,
    #[prost(string, tag = "4")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub val: String,
    #[prost(string, repeated, tag = "5")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vals: Vec<String>,
    #[prost(message, repeated, tag = "6")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<FilterNode>,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct ChannelRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct PublishRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(bytes = "vec", tag = "2")]
    #[serde(serialize_with = "raw_out")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct StreamPosition {
    #[prost(uint64, tag = "1")]
    pub offset: u64,
    #[prost(string, tag = "2")]
    pub epoch: String,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct HistoryRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(int32, tag = "7")]
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: i32,
    #[prost(message, optional, tag = "8")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<StreamPosition>,
    #[prost(bool, tag = "9")]
    #[serde(skip_serializing_if = "is_zero")]
    pub reverse: bool,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct DataRequest {
    #[prost(bytes = "vec", tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "raw_out")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct RpcRequest {
    #[prost(bytes = "vec", tag = "1")]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "raw_out")]
    pub data: Vec<u8>,
    #[prost(string, tag = "2")]
    pub method: String,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct TokenRequest {
    #[prost(string, tag = "1")]
    pub token: String,
}

#[derive(Clone, PartialEq, Message, Serialize)]
pub struct ChannelTokenRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(string, tag = "2")]
    pub token: String,
}

// ---- replies and pushes (server → client): read from JSON, encoded ----

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Reply {
    #[prost(uint32, tag = "1")]
    pub id: u32,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "4")]
    pub push: Option<Push>,
    #[prost(message, optional, tag = "5")]
    pub connect: Option<ConnectResult>,
    #[prost(message, optional, tag = "6")]
    pub subscribe: Option<SubscribeResult>,
    #[prost(message, optional, tag = "7")]
    pub unsubscribe: Option<Nothing>,
    #[prost(message, optional, tag = "8")]
    pub publish: Option<Nothing>,
    #[prost(message, optional, tag = "9")]
    pub presence: Option<PresenceResult>,
    #[prost(message, optional, tag = "10")]
    pub presence_stats: Option<PresenceStatsResult>,
    #[prost(message, optional, tag = "11")]
    pub history: Option<HistoryResult>,
    #[prost(message, optional, tag = "12")]
    pub ping: Option<Nothing>,
    #[prost(message, optional, tag = "13")]
    pub rpc: Option<DataResult>,
    #[prost(message, optional, tag = "14")]
    pub refresh: Option<RefreshResult>,
    #[prost(message, optional, tag = "15")]
    pub sub_refresh: Option<Refresh>,
}

/// A result with no fields (its fields in JSON, if any, are ignored).
#[derive(Clone, PartialEq, Message, Deserialize)]
pub struct Nothing {}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Error {
    #[prost(uint32, tag = "1")]
    pub code: u32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(bool, tag = "3")]
    pub temporary: bool,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Push {
    #[prost(string, tag = "2")]
    pub channel: String,
    #[prost(message, optional, tag = "4")]
    #[serde(rename = "pub")]
    pub publication: Option<Publication>,
    #[prost(message, optional, tag = "5")]
    pub join: Option<InfoPush>,
    #[prost(message, optional, tag = "6")]
    pub leave: Option<InfoPush>,
    #[prost(message, optional, tag = "7")]
    pub unsubscribe: Option<UnsubscribePush>,
    #[prost(message, optional, tag = "8")]
    pub message: Option<DataResult>,
    #[prost(message, optional, tag = "9")]
    pub subscribe: Option<SubscribePush>,
    #[prost(message, optional, tag = "10")]
    pub connect: Option<ConnectPush>,
    #[prost(message, optional, tag = "11")]
    pub disconnect: Option<Disconnect>,
    #[prost(message, optional, tag = "12")]
    pub refresh: Option<Refresh>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct ClientInfo {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(string, tag = "2")]
    pub client: String,
    #[prost(bytes = "vec", tag = "3")]
    #[serde(deserialize_with = "raw_in")]
    pub conn_info: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    #[serde(deserialize_with = "raw_in")]
    pub chan_info: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default, from = "PublicationJson")]
pub struct Publication {
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub info: Option<ClientInfo>,
    #[prost(uint64, tag = "6")]
    pub offset: u64,
    #[prost(map = "string, string", tag = "7")]
    pub tags: HashMap<String, String>,
    #[prost(bool, tag = "8")]
    pub delta: bool,
    #[prost(int64, tag = "9")]
    pub time: i64,
    #[prost(string, tag = "10")]
    pub channel: String,
}

/// A publication as the engine writes it. For a fossil-delta subscriber
/// (`delta` present, true or false) `data` is a JSON string holding the
/// bytes: the payload, or the delta; protobuf carries those bytes as they
/// are.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PublicationJson {
    data: Option<Box<RawValue>>,
    info: Option<ClientInfo>,
    offset: u64,
    tags: HashMap<String, String>,
    delta: Option<bool>,
    time: i64,
    channel: String,
}

impl From<PublicationJson> for Publication {
    fn from(p: PublicationJson) -> Publication {
        let raw = p.data.as_deref().map_or("", RawValue::get);
        let data = match p.delta {
            Some(_) => serde_json::from_str::<String>(raw)
                .map(String::into_bytes)
                .unwrap_or_else(|_| raw.as_bytes().to_vec()),
            None => raw.as_bytes().to_vec(),
        };
        Publication {
            data,
            info: p.info,
            offset: p.offset,
            tags: p.tags,
            delta: p.delta.unwrap_or(false),
            time: p.time,
            channel: p.channel,
        }
    }
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct InfoPush {
    #[prost(message, optional, tag = "1")]
    pub info: Option<ClientInfo>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct UnsubscribePush {
    #[prost(uint32, tag = "2")]
    pub code: u32,
    #[prost(string, tag = "3")]
    pub reason: String,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct SubscribePush {
    #[prost(bool, tag = "1")]
    pub recoverable: bool,
    #[prost(string, tag = "4")]
    pub epoch: String,
    #[prost(uint64, tag = "5")]
    pub offset: u64,
    #[prost(bool, tag = "6")]
    pub positioned: bool,
    #[prost(bytes = "vec", tag = "7")]
    #[serde(deserialize_with = "raw_in")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Disconnect {
    #[prost(uint32, tag = "1")]
    pub code: u32,
    #[prost(string, tag = "2")]
    pub reason: String,
    #[prost(bool, tag = "3")]
    pub reconnect: bool,
}

/// `Refresh` push and `SubRefreshResult` (the same two fields).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct Refresh {
    #[prost(bool, tag = "1")]
    pub expires: bool,
    #[prost(uint32, tag = "2")]
    pub ttl: u32,
}

/// The unidirectional `Connect` push (its own field numbers).
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct ConnectPush {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(bytes = "vec", tag = "3")]
    #[serde(deserialize_with = "raw_in")]
    pub data: Vec<u8>,
    #[prost(map = "string, message", tag = "4")]
    pub subs: HashMap<String, SubscribeResult>,
    #[prost(bool, tag = "5")]
    pub expires: bool,
    #[prost(uint32, tag = "6")]
    pub ttl: u32,
    #[prost(uint32, tag = "7")]
    pub ping: u32,
    #[prost(bool, tag = "8")]
    pub pong: bool,
    #[prost(string, tag = "9")]
    pub session: String,
    #[prost(string, tag = "10")]
    pub node: String,
}

/// `ConnectResult`.
#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct ConnectResult {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(bool, tag = "3")]
    pub expires: bool,
    #[prost(uint32, tag = "4")]
    pub ttl: u32,
    #[prost(bytes = "vec", tag = "5")]
    #[serde(deserialize_with = "raw_in")]
    pub data: Vec<u8>,
    #[prost(map = "string, message", tag = "6")]
    pub subs: HashMap<String, SubscribeResult>,
    #[prost(uint32, tag = "7")]
    pub ping: u32,
    #[prost(bool, tag = "8")]
    pub pong: bool,
    #[prost(string, tag = "9")]
    pub session: String,
    #[prost(string, tag = "10")]
    pub node: String,
    #[prost(int64, tag = "11")]
    pub time: i64,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct SubscribeResult {
    #[prost(bool, tag = "1")]
    pub expires: bool,
    #[prost(uint32, tag = "2")]
    pub ttl: u32,
    #[prost(bool, tag = "3")]
    pub recoverable: bool,
    #[prost(string, tag = "6")]
    pub epoch: String,
    #[prost(message, repeated, tag = "7")]
    pub publications: Vec<Publication>,
    #[prost(bool, tag = "8")]
    pub recovered: bool,
    #[prost(uint64, tag = "9")]
    pub offset: u64,
    #[prost(bool, tag = "10")]
    pub positioned: bool,
    #[prost(bytes = "vec", tag = "11")]
    #[serde(deserialize_with = "raw_in")]
    pub data: Vec<u8>,
    #[prost(bool, tag = "12")]
    pub was_recovering: bool,
    #[prost(bool, tag = "13")]
    pub delta: bool,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct PresenceResult {
    #[prost(map = "string, message", tag = "1")]
    pub presence: HashMap<String, ClientInfo>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct PresenceStatsResult {
    #[prost(uint32, tag = "1")]
    pub num_clients: u32,
    #[prost(uint32, tag = "2")]
    pub num_users: u32,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct HistoryResult {
    #[prost(message, repeated, tag = "1")]
    pub publications: Vec<Publication>,
    #[prost(string, tag = "2")]
    pub epoch: String,
    #[prost(uint64, tag = "3")]
    pub offset: u64,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct DataResult {
    #[prost(bytes = "vec", tag = "1")]
    #[serde(deserialize_with = "raw_in")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message, Deserialize)]
#[serde(default)]
pub struct RefreshResult {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(bool, tag = "3")]
    pub expires: bool,
    #[prost(uint32, tag = "4")]
    pub ttl: u32,
}

// ---- the transcoding ----

/// Why a protobuf message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a sequence of length-delimited `Command`s.
    Malformed,
}

/// A decoded command as a JSON command line, or the id of one whose
/// payload is not JSON (to be answered 107).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Json(Vec<u8>),
    NotJson { id: u32 },
}

/// Decodes the length-delimited commands of one protobuf message.
pub fn decode_commands(mut data: &[u8]) -> Result<Vec<Line>, DecodeError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let cmd =
            Command::decode_length_delimited(&mut data).map_err(|_| DecodeError::Malformed)?;
        out.push(match serde_json::to_vec(&cmd) {
            Ok(json) => Line::Json(json),
            Err(_) => Line::NotJson { id: cmd.id },
        });
    }
    Ok(out)
}

/// Re-encodes JSON replies and pushes (one per line) as length-delimited
/// protobuf `Reply`s. A line that does not parse (never written by the
/// engine) is skipped.
pub fn encode_replies(json_lines: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json_lines.len());
    for line in json_lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Reply>(line) {
            Ok(r) => r
                .encode_length_delimited(&mut out)
                .expect("a Vec grows as needed"),
            Err(e) => tracing::warn!(error = %e, "reply not transcoded to protobuf"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_become_json_lines() {
        let cmds = [
            Command {
                id: 1,
                connect: Some(ConnectRequest {
                    token: "t".into(),
                    data: br#"{"a":1}"#.to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Command {
                id: 2,
                publish: Some(PublishRequest {
                    channel: "c".into(),
                    data: br#"{"n": [1, 2]}"#.to_vec(),
                }),
                ..Default::default()
            },
            Command {
                id: 3,
                publish: Some(PublishRequest {
                    channel: "c".into(),
                    data: b"\x00binary".to_vec(),
                }),
                ..Default::default()
            },
            Command::default(),
        ];
        let mut wire = Vec::new();
        for c in &cmds {
            c.encode_length_delimited(&mut wire).unwrap();
        }
        let lines = decode_commands(&wire).unwrap();
        assert_eq!(
            lines,
            vec![
                Line::Json(br#"{"id":1,"connect":{"token":"t","data":{"a":1}}}"#.to_vec()),
                // The payload byte for byte.
                Line::Json(br#"{"id":2,"publish":{"channel":"c","data":{"n": [1, 2]}}}"#.to_vec()),
                Line::NotJson { id: 3 },
                // An empty command is the pong.
                Line::Json(b"{}".to_vec()),
            ]
        );
        assert_eq!(decode_commands(b"\x05ab"), Err(DecodeError::Malformed));
    }

    #[test]
    fn replies_become_protobuf() {
        let json = br#"{"id":2,"subscribe":{"recoverable":true,"epoch":"e","offset":7,"was_recovering":true,"recovered":true,"publications":[{"data":{"x":"y"},"offset":7,"info":{"user":"u","client":"c","conn_info":{"k":1}}}]}}
{"push":{"channel":"c","pub":{"data":[1, 2],"offset":8}}}
{}"#;
        let wire = encode_replies(json);
        let mut buf = &wire[..];
        let a = Reply::decode_length_delimited(&mut buf).unwrap();
        let s = a.subscribe.unwrap();
        assert_eq!((a.id, s.offset, s.epoch.as_str()), (2, 7, "e"));
        assert!(s.recoverable && s.recovered && s.was_recovering);
        assert_eq!(s.publications[0].data, br#"{"x":"y"}"#);
        assert_eq!(
            s.publications[0].info.as_ref().unwrap().conn_info,
            br#"{"k":1}"#
        );
        let b = Reply::decode_length_delimited(&mut buf).unwrap();
        let p = b.push.unwrap();
        assert_eq!(p.channel, "c");
        assert_eq!(p.publication.unwrap().data, b"[1, 2]");
        let c = Reply::decode_length_delimited(&mut buf).unwrap();
        assert_eq!(c, Reply::default(), "the ping");
        assert!(buf.is_empty());
    }
    #[test]
    fn delta_publications_carry_their_bytes() {
        // A fossil subscriber's pushes: the payload, then a delta, as strings.
        let json = br#"{"push":{"channel":"c","pub":{"data":"{\"a\":1}","offset":1,"delta":false}}}
{"push":{"channel":"c","pub":{"data":"7\n3:abc0@0,1;","offset":2,"delta":true}}}
{"id":3,"subscribe":{"delta":true,"epoch":"e","offset":2}}"#;
        let wire = encode_replies(json);
        let mut buf = &wire[..];
        let full = Reply::decode_length_delimited(&mut buf).unwrap();
        let p = full.push.unwrap().publication.unwrap();
        assert_eq!((p.data.as_slice(), p.delta), (&br#"{"a":1}"#[..], false));
        let d = Reply::decode_length_delimited(&mut buf).unwrap();
        let p = d.push.unwrap().publication.unwrap();
        assert_eq!((p.data.as_slice(), p.delta), (&b"7\n3:abc0@0,1;"[..], true));
        let r = Reply::decode_length_delimited(&mut buf).unwrap();
        assert!(r.subscribe.unwrap().delta);
    }
}
