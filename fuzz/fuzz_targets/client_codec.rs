//! The client's side of the JSON protocol (engine/src/protocol/client.rs)
//! against the server's side (protocol/push.rs), over arbitrary bytes.
//!
//! The input's first line is read as a server line: classifying it never
//! panics, and when it is valid JSON the in-place reading agrees with a full
//! parse on what the line is. The rest is a channel name and a payload: the
//! publication push the server writes for them reads back, in place, as the
//! same data and offset, and an error reply as an error reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast::protocol::client::{self, Line};
use ringcast::protocol::push;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    for l in client::lines(line) {
        let fast = client::classify(l);
        let _ = client::pub_offset(l);
        let _ = client::subscribe_reply(l);
        if serde_json::from_slice::<Value>(l).is_ok() && !has_duplicate_keys(l) {
            same(&fast, &client::slow_classify(l), l);
        }
    }

    // A publication push as the server writes it.
    let (head, rest) = rest.split_at(rest.len().min(9));
    let offset = head.iter().fold(0u64, |n, &b| n.wrapping_mul(251).wrapping_add(b as u64));
    let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let channel = String::from_utf8_lossy(&rest[..cut]);
    let payload = &rest[(cut + 1).min(rest.len())..];
    let value: Value = serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    let encoded = serde_json::to_vec(&value).unwrap();
    let frame = push::publication_frame(&channel, &encoded, None, offset);
    let line = ws_payload(&frame);
    match client::classify(line) {
        // In place, and read by the same parser as the line the server
        // was given (a float need not survive a print and a parse).
        // (In place unless the channel's name had to be escaped.)
        Line::Push { data: Some(d) } => {
            match d.raw() {
                Some(r) => assert!(r.starts_with(&encoded)),
                None => assert!(channel.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')),
            }
            assert_eq!(d.value(), client::first_value(&encoded));
        }
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(line)),
    }
    assert_eq!(client::pub_offset(line), (offset > 0).then_some(offset));

    let mut reply = bytes::BytesMut::new();
    let id = (offset % u32::MAX as u64) as u32;
    push::error_parts(&mut reply, id, 100 + (offset % 900) as u32, &channel, offset % 2 == 0);
    assert_eq!(client::classify(&reply), Line::Reply { id: id as u64, error: true });
});

/// Whether the JSON in `l` repeats a key in one object (a full parse keeps
/// the last, the in-place reading the first: both are allowed readings).
fn has_duplicate_keys(l: &[u8]) -> bool {
    struct Check(bool);
    impl<'de> serde::de::Visitor<'de> for &mut Check {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = m.next_key::<String>()? {
                self.0 |= !seen.insert(k);
                m.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
            while s.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> { Ok(()) }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> { Ok(()) }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> { Ok(()) }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> { Ok(()) }
        fn visit_str<E>(self, _: &str) -> Result<(), E> { Ok(()) }
        fn visit_unit<E>(self) -> Result<(), E> { Ok(()) }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Check {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut c = Check(false);
    let mut de = serde_json::Deserializer::from_slice(l);
    serde::de::DeserializeSeed::deserialize(&mut c, &mut de).is_ok() && c.0
}

fn same(fast: &Line<'_>, slow: &Line<'_>, l: &[u8]) {
    let ok = match (fast, slow) {
        (Line::Push { data: a }, Line::Push { data: b }) => {
            a.as_ref().map(|d| d.value()) == b.as_ref().map(|d| d.value())
        }
        (a, b) => a == b,
    };
    assert!(ok, "{fast:?} vs {slow:?} for {:?}", String::from_utf8_lossy(l));
}

/// The payload of one unmasked WebSocket frame.
fn ws_payload(frame: &[u8]) -> &[u8] {
    let head = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    &frame[head..]
}
