//! Publications for `delta: "fossil"` subscribers (Centrifugo's delta
//! compression). Such a subscriber gets a publication's `data` as a JSON
//! string: the payload itself with `"delta":false`, or, when it already holds
//! the publication before, a fossil delta against that one with
//! `"delta":true`. The SDKs keep the last payload and apply the delta to it.
//!
//! Everything here is computed once per publication (on the channel's owner
//! shard or the node's Redis link) and shared by every delta subscriber, as
//! the plain push is by the others: [`DeltaFrames`] holds both forms, and a
//! subscriber's table entry only says which one it can take.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fossil;
use super::json::{put_str, put_u64};
use super::push::Fields;
use crate::ws::frame::text_frame_with;

/// A publication as delta subscribers get it.
#[derive(Debug, Clone)]
pub struct DeltaFrames {
    /// The publication's offset (0: not positioned).
    pub offset: u64,
    /// The push with the payload in full, as a string.
    pub full: Bytes,
    /// The push with a delta against publication `offset - 1`, when there
    /// is one and it is smaller than the payload.
    pub patch: Option<Bytes>,
}

impl DeltaFrames {
    /// The push for a subscriber that last got publication `had` (0: none
    /// it can build on).
    pub fn for_base(&self, had: u64) -> &Bytes {
        match &self.patch {
            Some(p) if self.builds_on(had) => p,
            _ => &self.full,
        }
    }

    /// Whether a subscriber that last got publication `had` takes the delta.
    #[inline]
    pub fn builds_on(&self, had: u64) -> bool {
        self.patch.is_some() && had > 0 && had + 1 == self.offset
    }
}

/// The last payload of a channel's stream, kept where publications are
/// encoded: the base of the next delta.
#[derive(Debug, Clone)]
pub struct Base {
    pub offset: u64,
    pub data: Bytes,
}

/// Builds what delta subscribers get of publication `offset` of `channel`.
/// `prev`: the channel's last payload, if known; a delta is made only when
/// `delta` (the namespace's `delta_publish`) and `prev` is publication
/// `offset - 1`.
pub fn frames(
    channel: &str,
    data: &[u8],
    fields: Fields<'_>,
    offset: u64,
    prev: Option<&Base>,
    delta: bool,
) -> DeltaFrames {
    let full = push(channel, data, fields, offset, false);
    let patch = prev
        .filter(|p| delta && offset > 0 && p.offset + 1 == offset)
        .and_then(|p| patch_of(&p.data, data))
        .map(|d| push(channel, &d, fields, offset, true));
    DeltaFrames {
        offset,
        full,
        patch,
    }
}

/// A fossil delta from `prev` to `data`, when it is worth sending: smaller
/// than `data` and text (so it fits a JSON string).
fn patch_of(prev: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let d = fossil::create(prev, data);
    (d.len() < data.len() && std::str::from_utf8(&d).is_ok()).then_some(d)
}

/// `{"push":{"channel":"C","pub":{"data":"<payload as a string>",…,"delta":B}}}`
fn push(channel: &str, payload: &[u8], fields: Fields<'_>, offset: u64, delta: bool) -> Bytes {
    text_frame_with(64 + channel.len() + payload.len() * 5 / 4, |out| {
        out.put_slice(b"{\"push\":{\"channel\":");
        put_str(out, channel);
        out.put_slice(b",\"pub\":");
        put_object(out, payload, fields, offset, delta);
        out.put_slice(b"}}");
    })
}

/// A publication object with its payload as a string and its `delta` flag.
fn put_object(out: &mut BytesMut, payload: &[u8], fields: Fields<'_>, offset: u64, delta: bool) {
    out.put_slice(b"{\"data\":");
    // Payloads are JSON text, and deltas of text are text (fossil.rs).
    put_str(out, &String::from_utf8_lossy(payload));
    fields.put(out);
    if offset > 0 {
        out.put_slice(b",\"offset\":");
        put_u64(out, offset);
    }
    out.put_slice(if delta {
        b",\"delta\":true}"
    } else {
        b",\"delta\":false}"
    });
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow, default)]
    info: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tags: Option<&'a RawValue>,
    #[serde(default)]
    offset: u64,
}

/// An encoded publication object's fields.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    /// `data`, raw JSON.
    pub data: &'a [u8],
    pub fields: Fields<'a>,
    pub offset: u64,
}

/// The parts of an encoded publication object (`{"data":…,"info":…,"offset":N}`,
/// as history keeps it).
pub fn parts(object: &[u8]) -> Option<Parts<'_>> {
    let o: Object<'_> = serde_json::from_slice(object).ok()?;
    Some(Parts {
        data: o.data.get().as_bytes(),
        fields: Fields {
            info: o.info.map(|i| i.get().as_bytes()),
            tags: o.tags.map(|t| t.get().as_bytes()),
        },
        offset: o.offset,
    })
}

/// Recovered publications (history objects, oldest first) as a delta
/// subscriber gets them: the first in full, each next one as a delta
/// against the one before when that is smaller. An object that does not
/// parse is passed on as it is (it never does: history holds what this
/// node encoded).
pub fn recovered(objects: &[Bytes]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(objects.len());
    let mut prev: Option<&[u8]> = None;
    for o in objects {
        let Some(Parts {
            data,
            fields,
            offset,
        }) = parts(o)
        else {
            out.push(o.clone());
            prev = None;
            continue;
        };
        let mut line = BytesMut::with_capacity(o.len() + 16);
        match prev.and_then(|p| patch_of(p, data)) {
            Some(d) => put_object(&mut line, &d, fields, offset, true),
            None => put_object(&mut line, data, fields, offset, false),
        }
        out.push(line.freeze());
        prev = Some(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::push::publication_object;
    use crate::ws::frame::parse_header;

    fn pub_of(frame: &Bytes) -> serde_json::Value {
        let h = parse_header(frame).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&frame[h.header_len..]).unwrap();
        v["push"]["pub"].clone()
    }

    /// What an SDK does with a delta subscriber's publication.
    fn decode(base: &mut Vec<u8>, p: &serde_json::Value) -> serde_json::Value {
        let text = p["data"].as_str().unwrap().as_bytes();
        *base = if p["delta"] == true {
            fossil::apply(base, text).unwrap()
        } else {
            text.to_vec()
        };
        serde_json::from_slice(base).unwrap()
    }

    fn payload(i: u32) -> Vec<u8> {
        format!(r#"{{"board":"main","scores":[{i},2,3,4,5,6,7,8,9,10],"note":"näïve ☃ text that stays the same"}}"#)
            .into_bytes()
    }

    #[test]
    fn a_stream_decodes_to_its_payloads() {
        let info = br#"{"user":"u"}"#;
        let mut prev: Option<Base> = None;
        let mut base = Vec::new();
        let mut had = 0;
        for offset in 1..=5u64 {
            let data = payload(offset as u32);
            let fields = Fields {
                info: Some(info),
                tags: Some(br#"{"k":"v"}"#),
            };
            let f = frames("ch", &data, fields, offset, prev.as_ref(), true);
            assert_eq!(f.patch.is_some(), offset > 1, "publication {offset}");
            let p = pub_of(f.for_base(had));
            assert_eq!(p["offset"], offset);
            assert_eq!(p["info"]["user"], "u");
            assert_eq!(p["tags"]["k"], "v");
            assert_eq!(p["delta"], offset > 1);
            let v = decode(&mut base, &p);
            assert_eq!(
                v,
                serde_json::from_slice::<serde_json::Value>(&data).unwrap()
            );
            had = offset;
            prev = Some(Base {
                offset,
                data: data.into(),
            });
        }
        // A subscriber that missed nothing but holds no base gets it in full.
        let data = payload(9);
        let f = frames("ch", &data, Fields::default(), 6, prev.as_ref(), true);
        assert_eq!(pub_of(f.for_base(0))["delta"], false);
        assert_eq!(pub_of(f.for_base(4))["delta"], false, "base is not 5");
        assert_eq!(pub_of(f.for_base(5))["delta"], true);
        // Without delta_publish, or without the publication before: in full.
        assert!(
            frames("ch", &data, Fields::default(), 6, prev.as_ref(), false)
                .patch
                .is_none()
        );
        assert!(
            frames("ch", &data, Fields::default(), 7, prev.as_ref(), true)
                .patch
                .is_none()
        );
        assert!(
            frames("ch", &data, Fields::default(), 0, prev.as_ref(), true)
                .patch
                .is_none()
        );
    }

    #[test]
    fn recovered_publications_chain() {
        let objects: Vec<Bytes> = (1..=4u64)
            .map(|o| publication_object(&payload(o as u32), None, o))
            .collect();
        let chain = recovered(&objects);
        let mut base = Vec::new();
        for (i, line) in chain.iter().enumerate() {
            let p: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(p["delta"], i > 0);
            assert_eq!(p["offset"], i + 1);
            let v = decode(&mut base, &p);
            assert_eq!(
                v,
                serde_json::from_slice::<serde_json::Value>(&payload(i as u32 + 1)).unwrap()
            );
        }
        assert_eq!(
            parts(b"{\"data\":[1, 2],\"offset\":3}"),
            Some(Parts {
                data: b"[1, 2]",
                fields: Fields::default(),
                offset: 3
            })
        );
        assert_eq!(parts(b"junk"), None);
    }
}
