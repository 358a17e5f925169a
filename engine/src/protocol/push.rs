//! Replies and pushes, written as bytes. A publication's push is encoded once
//! into a complete WebSocket frame that every subscriber's queue shares.

use bytes::{BufMut, Bytes, BytesMut};

use super::codes::ClientError;
use super::json::{put_str, put_u64};
use crate::ws::frame::text_frame_with;

/// `{"id":N,"<method>":{}}`
pub fn empty_result(out: &mut BytesMut, id: u32, method: &str) {
    out.put_slice(b"{\"id\":");
    put_u64(out, id as u64);
    out.put_slice(b",\"");
    out.put_slice(method.as_bytes());
    out.put_slice(b"\":{}}");
}

/// `{"id":N,"error":{"code":C,"message":"..."}}`
pub fn error(out: &mut BytesMut, id: u32, e: ClientError) {
    error_parts(out, id, e.code, e.message, e.is_temporary());
}

/// A reply error with any code and message (an application backend's).
pub fn error_parts(out: &mut BytesMut, id: u32, code: u32, message: &str, temporary: bool) {
    out.put_slice(b"{\"id\":");
    put_u64(out, id as u64);
    out.put_slice(b",\"error\":{\"code\":");
    put_u64(out, code as u64);
    out.put_slice(b",\"message\":");
    put_str(out, message);
    if temporary {
        out.put_slice(b",\"temporary\":true");
    }
    out.put_slice(b"}}");
}

/// The code of a reply error (`{"id":N,"error":{"code":C,...`) at the start
/// of `out`, if that is what it holds.
pub fn error_code(out: &[u8]) -> Option<u32> {
    let rest = out.strip_prefix(b"{\"id\":")?;
    let at = rest.iter().position(|&b| b == b',')?;
    let rest = rest[at..].strip_prefix(b",\"error\":{\"code\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Opens `{"id":N,"<method>":{` for a result the caller fills and closes with
/// [`close_result`].
pub fn open_result(out: &mut BytesMut, id: u32, method: &str) {
    out.put_slice(b"{\"id\":");
    put_u64(out, id as u64);
    out.put_slice(b",\"");
    out.put_slice(method.as_bytes());
    out.put_slice(b"\":{");
}

pub fn close_result(out: &mut BytesMut) {
    out.put_slice(b"}}");
}

/// Writes `"key":` preceded by a comma unless it is the first field.
pub fn key(out: &mut BytesMut, first: &mut bool, name: &str) {
    if !*first {
        out.put_u8(b',');
    }
    *first = false;
    out.put_u8(b'"');
    out.put_slice(name.as_bytes());
    out.put_slice(b"\":");
}

/// A connection's `ClientInfo` as JSON, encoded once per connection:
/// `{"user":"u","client":"c","conn_info":...}`.
pub fn client_info(user: &str, client: &str, conn_info: Option<&str>) -> Bytes {
    client_info_with(user, client, conn_info, None)
}

/// `ClientInfo` with a channel's `chan_info` (from a subscription token).
pub fn client_info_with(
    user: &str,
    client: &str,
    conn_info: Option<&str>,
    chan_info: Option<&str>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + user.len());
    out.put_slice(b"{\"user\":");
    put_str(&mut out, user);
    out.put_slice(b",\"client\":");
    put_str(&mut out, client);
    if let Some(ci) = conn_info {
        out.put_slice(b",\"conn_info\":");
        out.put_slice(ci.as_bytes());
    }
    if let Some(ci) = chan_info {
        out.put_slice(b",\"chan_info\":");
        out.put_slice(ci.as_bytes());
    }
    out.put_u8(b'}');
    out.freeze()
}

/// What a publication object carries besides `data` and `offset`, encoded:
/// the publisher's `info` (ClientInfo) and `tags` (an object of strings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    pub info: Option<&'a [u8]>,
    pub tags: Option<&'a [u8]>,
}

impl Fields<'_> {
    fn len(&self) -> usize {
        self.info.map_or(0, |i| i.len() + 8) + self.tags.map_or(0, |t| t.len() + 8)
    }

    /// `,"info":I,"tags":T` (what is set).
    pub fn put(&self, out: &mut BytesMut) {
        if let Some(i) = self.info {
            out.put_slice(b",\"info\":");
            out.put_slice(i);
        }
        if let Some(t) = self.tags {
            out.put_slice(b",\"tags\":");
            out.put_slice(t);
        }
    }
}

/// A publication object: `{"data":D,"info":I,"offset":N}` (what history keeps).
pub fn publication_object(data: &[u8], info: Option<&[u8]>, offset: u64) -> Bytes {
    publication_object_with(data, Fields { info, tags: None }, offset)
}

/// A publication object with all its fields:
/// `{"data":D,"info":I,"tags":T,"offset":N}`.
pub fn publication_object_with(data: &[u8], fields: Fields<'_>, offset: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + data.len() + fields.len());
    out.put_slice(b"{\"data\":");
    out.put_slice(data);
    fields.put(&mut out);
    if offset > 0 {
        out.put_slice(b",\"offset\":");
        put_u64(&mut out, offset);
    }
    out.put_u8(b'}');
    out.freeze()
}

/// The publication push as a complete text frame around a publication object:
/// `{"push":{"channel":"C","pub":OBJECT}}`.
pub fn publication_push(channel: &str, object: &[u8]) -> Bytes {
    text_frame_with(32 + channel.len() + object.len(), |out| {
        out.put_slice(b"{\"push\":{\"channel\":");
        put_str(out, channel);
        out.put_slice(b",\"pub\":");
        out.put_slice(object);
        out.put_slice(b"}}");
    })
}

/// The publication push as a complete text frame:
/// `{"push":{"channel":"C","pub":{"data":D,"info":I,"offset":N}}}`.
pub fn publication_frame(channel: &str, data: &[u8], info: Option<&[u8]>, offset: u64) -> Bytes {
    let cap = 48 + channel.len() + data.len() + info.map_or(0, |i| i.len());
    text_frame_with(cap, |out| {
        out.put_slice(b"{\"push\":{\"channel\":");
        put_str(out, channel);
        out.put_slice(b",\"pub\":{\"data\":");
        out.put_slice(data);
        if let Some(i) = info {
            out.put_slice(b",\"info\":");
            out.put_slice(i);
        }
        if offset > 0 {
            out.put_slice(b",\"offset\":");
            put_u64(out, offset);
        }
        out.put_slice(b"}}}");
    })
}

/// `[A,B,...]` from encoded JSON values.
pub fn put_array(out: &mut BytesMut, items: &[Bytes]) {
    out.put_u8(b'[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(it);
    }
    out.put_u8(b']');
}

/// Join or leave push: `{"push":{"channel":"C","join":{"info":I}}}`.
pub fn join_leave_frame(channel: &str, join: bool, info: &[u8]) -> Bytes {
    text_frame_with(40 + channel.len() + info.len(), |out| {
        out.put_slice(b"{\"push\":{\"channel\":");
        put_str(out, channel);
        out.put_slice(if join {
            b",\"join\":{\"info\":"
        } else {
            b",\"leave\":{\"info\":"
        });
        out.put_slice(info);
        out.put_slice(b"}}}");
    })
}

/// Server-side unsubscribe push.
pub fn unsubscribe_frame(channel: &str, code: u32, reason: &str) -> Bytes {
    text_frame_with(64 + channel.len(), |out| {
        out.put_slice(b"{\"push\":{\"channel\":");
        put_str(out, channel);
        out.put_slice(b",\"unsubscribe\":{\"code\":");
        put_u64(out, code as u64);
        out.put_slice(b",\"reason\":");
        put_str(out, reason);
        out.put_slice(b"}}}");
    })
}

/// `"epoch":"E","offset":N` inside a subscribe result or push.
pub fn stream_position(out: &mut BytesMut, epoch: &str, offset: u64) {
    out.put_slice(b"\"epoch\":");
    put_str(out, epoch);
    out.put_slice(b",\"offset\":");
    put_u64(out, offset);
}

/// Server-side subscription push:
/// `{"push":{"channel":"C","subscribe":{"epoch":"E","offset":N}}}`.
pub fn server_subscribe_frame(channel: &str, epoch: &str, offset: u64) -> Bytes {
    text_frame_with(64 + channel.len(), |out| {
        out.put_slice(b"{\"push\":{\"channel\":");
        put_str(out, channel);
        out.put_slice(b",\"subscribe\":{");
        stream_position(out, epoch, offset);
        out.put_slice(b"}}}");
    })
}

/// Asynchronous message push (server `send`): `{"push":{"message":{"data":D}}}`.
pub fn message_frame(data: &[u8]) -> Bytes {
    text_frame_with(32 + data.len(), |out| {
        out.put_slice(b"{\"push\":{\"message\":{\"data\":");
        out.put_slice(data);
        out.put_slice(b"}}}");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::parse_header;

    fn payload(frame: &Bytes) -> serde_json::Value {
        let h = parse_header(frame).unwrap().unwrap();
        assert_eq!(frame.len(), h.header_len + h.payload_len as usize);
        serde_json::from_slice(&frame[h.header_len..]).unwrap()
    }

    #[test]
    fn publication_push_shape() {
        let info = client_info("u1", "c-1", None);
        let f = publication_frame("chat:\"1\"", br#"{"text":"hi"}"#, Some(&info), 7);
        assert_eq!(
            payload(&f),
            serde_json::json!({"push":{"channel":"chat:\"1\"","pub":{
                "data":{"text":"hi"},"info":{"user":"u1","client":"c-1"},"offset":7}}})
        );
        // A large payload takes the 2-byte length form and stays one buffer.
        let big = format!("\"{}\"", "x".repeat(70_000));
        let f = publication_frame("c", big.as_bytes(), None, 1);
        assert_eq!(payload(&f)["push"]["pub"]["offset"], 1);
    }

    #[test]
    fn object_and_push_agree() {
        let obj = publication_object(br#"{"a":1}"#, None, 9);
        assert_eq!(
            publication_push("c", &obj),
            publication_frame("c", br#"{"a":1}"#, None, 9)
        );
    }

    #[test]
    fn replies() {
        let mut out = BytesMut::new();
        error(&mut out, 3, super::super::codes::ALREADY_SUBSCRIBED);
        out.put_u8(b'\n');
        empty_result(&mut out, 4, "publish");
        let text = std::str::from_utf8(&out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"id":3,"error":{"code":105,"message":"already subscribed"}})
        );
        assert_eq!(lines[1], serde_json::json!({"id":4,"publish":{}}));
    }
}
