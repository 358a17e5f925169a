//! What ringcast nodes send each other through Redis PUB/SUB, as bytes. Pure
//! functions, no I/O (fuzzed: `fuzz/fuzz_targets/redis_message.rs`).
//!
//! On a channel's PUB/SUB channel:
//! - `p<offset>:<epoch>:<publication>`: a publication; `<publication>` is the
//!   JSON object without its offset (`{"data":D,"info":I}`), exactly as kept
//!   in the history stream. Offset 0 and an empty epoch: a channel without
//!   history. The Lua publish script writes the prefix, since only it knows
//!   the offset.
//! - `j<info>` / `l<info>`: join / leave, with the ClientInfo JSON.
//!
//! On the control channel:
//! - `n<node uid>\n<json>`: a node's heartbeat (its `info` API object).
//! - `c<node uid>\n<json>`: a control action (`broker::Control`).
//! - `q<node uid>\n<json>`: a survey question (`{"id":N}`: your channels?).
//! - `a<node uid>\n<json>`: a survey answer
//!   (`{"to":"<asker uid>","id":N,"channels":{"name":clients,..}}`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::json::put_u64;

#[derive(Debug, PartialEq, Eq)]
pub enum ChannelMsg<'a> {
    Publication {
        offset: u64,
        epoch: &'a str,
        /// `{"data":..[,"info":..]}`
        object: &'a [u8],
    },
    Join(&'a [u8]),
    Leave(&'a [u8]),
}

#[derive(Debug, PartialEq, Eq)]
pub enum ControlMsg<'a> {
    Heartbeat { node: &'a str, json: &'a [u8] },
    Action { node: &'a str, json: &'a [u8] },
    Question { node: &'a str, json: &'a [u8] },
    Answer { node: &'a str, json: &'a [u8] },
}

/// Control message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    Heartbeat,
    Action,
    Question,
    Answer,
}

/// Why a message was not understood.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The publication without offset, as kept in the stream and sent to nodes.
pub fn publication(data: &[u8], fields: crate::protocol::push::Fields<'_>) -> Bytes {
    crate::protocol::push::publication_object_with(data, fields, 0)
}

/// `p0::<object>`: a publication on a channel without history (no script).
pub fn unpositioned(object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + object.len());
    out.put_slice(b"p0::");
    out.put_slice(object);
    out.freeze()
}

pub fn join_leave(join: bool, info: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + info.len());
    out.put_u8(if join { b'j' } else { b'l' });
    out.put_slice(info);
    out.freeze()
}

pub fn parse_channel_msg(msg: &[u8]) -> Result<ChannelMsg<'_>, Malformed> {
    let (&kind, rest) = msg.split_first().ok_or(Malformed)?;
    match kind {
        b'p' => {
            let colon = rest.iter().position(|&b| b == b':').ok_or(Malformed)?;
            let (digits, rest) = (&rest[..colon], &rest[colon + 1..]);
            // Canonical decimal only (what the Lua script writes): no sign,
            // no leading zero, at most 19 digits.
            let canonical = !digits.is_empty()
                && digits.len() <= 19
                && digits.iter().all(u8::is_ascii_digit)
                && (digits[0] != b'0' || digits.len() == 1);
            if !canonical {
                return Err(Malformed);
            }
            let offset = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or(Malformed)?;
            let colon = rest.iter().position(|&b| b == b':').ok_or(Malformed)?;
            let epoch = std::str::from_utf8(&rest[..colon]).map_err(|_| Malformed)?;
            let object = &rest[colon + 1..];
            if object.len() < 2 || object[0] != b'{' || object[object.len() - 1] != b'}' {
                return Err(Malformed);
            }
            if (offset == 0) != epoch.is_empty() {
                return Err(Malformed);
            }
            Ok(ChannelMsg::Publication {
                offset,
                epoch,
                object,
            })
        }
        b'j' if !rest.is_empty() => Ok(ChannelMsg::Join(rest)),
        b'l' if !rest.is_empty() => Ok(ChannelMsg::Leave(rest)),
        _ => Err(Malformed),
    }
}

/// The publication object with its offset: `{"data":..,"offset":N}`.
pub fn with_offset(object: &[u8], offset: u64) -> Bytes {
    if offset == 0 {
        return Bytes::copy_from_slice(object);
    }
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(&object[..object.len() - 1]);
    out.put_slice(b",\"offset\":");
    put_u64(&mut out, offset);
    out.put_u8(b'}');
    out.freeze()
}

pub fn control(kind: ControlKind, node: &str, json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + node.len() + json.len());
    out.put_u8(match kind {
        ControlKind::Heartbeat => b'n',
        ControlKind::Action => b'c',
        ControlKind::Question => b'q',
        ControlKind::Answer => b'a',
    });
    out.put_slice(node.as_bytes());
    out.put_u8(b'\n');
    out.put_slice(json);
    out.freeze()
}

pub fn parse_control(msg: &[u8]) -> Result<ControlMsg<'_>, Malformed> {
    let (&kind, rest) = msg.split_first().ok_or(Malformed)?;
    let nl = rest.iter().position(|&b| b == b'\n').ok_or(Malformed)?;
    let node = std::str::from_utf8(&rest[..nl]).map_err(|_| Malformed)?;
    let json = &rest[nl + 1..];
    if node.is_empty() {
        return Err(Malformed);
    }
    match kind {
        b'n' => Ok(ControlMsg::Heartbeat { node, json }),
        b'c' => Ok(ControlMsg::Action { node, json }),
        b'q' => Ok(ControlMsg::Question { node, json }),
        b'a' => Ok(ControlMsg::Answer { node, json }),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publications_round_trip() {
        let object = publication(
            br#"{"n":1}"#,
            crate::protocol::push::Fields {
                info: Some(br#"{"user":"u"}"#),
                tags: None,
            },
        );
        let msg = [b"p42:AbC:".as_slice(), &object].concat();
        let parsed = parse_channel_msg(&msg).unwrap();
        assert_eq!(
            parsed,
            ChannelMsg::Publication {
                offset: 42,
                epoch: "AbC",
                object: &object
            }
        );
        assert_eq!(
            &with_offset(&object, 42)[..],
            br#"{"data":{"n":1},"info":{"user":"u"},"offset":42}"#
        );
        let bare = unpositioned(&object);
        assert!(matches!(
            parse_channel_msg(&bare),
            Ok(ChannelMsg::Publication {
                offset: 0,
                epoch: "",
                ..
            })
        ));
        assert_eq!(&with_offset(&object, 0)[..], &object[..]);
    }

    #[test]
    fn junk_is_malformed() {
        for junk in [
            &b""[..],
            b"p",
            b"p:e:{}",
            b"px:e:{}",
            b"p1:e:",
            b"p1:e:{",
            b"p1::{}",
            b"p0:e:{}",
            b"p99999999999999999999:e:{}",
            b"p01:e:{}",
            b"p00::{}",
            b"j",
            b"q{}",
        ] {
            assert_eq!(parse_channel_msg(junk), Err(Malformed), "{junk:?}");
        }
    }

    #[test]
    fn control_round_trip() {
        let m = control(ControlKind::Heartbeat, "node-1", b"{}");
        assert_eq!(
            parse_control(&m),
            Ok(ControlMsg::Heartbeat {
                node: "node-1",
                json: b"{}"
            })
        );
        let m = control(ControlKind::Action, "n", b"{\"op\":\"x\"}");
        assert!(matches!(
            parse_control(&m),
            Ok(ControlMsg::Action { node: "n", .. })
        ));
        let m = control(ControlKind::Question, "n", b"{}");
        assert!(matches!(
            parse_control(&m),
            Ok(ControlMsg::Question { node: "n", .. })
        ));
        let m = control(ControlKind::Answer, "n", b"{}");
        assert!(matches!(
            parse_control(&m),
            Ok(ControlMsg::Answer { node: "n", .. })
        ));
        assert_eq!(parse_control(b"n\n{}"), Err(Malformed));
        assert_eq!(parse_control(b"x1\n{}"), Err(Malformed));
        assert_eq!(parse_control(b"c1{}"), Err(Malformed));
    }
}
