//! The slice of Centrifugo's client protocol (v2, JSON) the bench speaks:
//! commands out, replies / pushes / pings in. One WebSocket text frame may
//! hold several JSON objects separated by `\n`.
//!
//! Parsing is a fast path for the shapes ringcast and the peer emit (keys in
//! the order Centrifugo writes them), with a serde_json fallback for any
//! other valid spelling, so the client stays cheap without being brittle.

use std::io::Write as _;

use serde_json::Value;

pub fn connect_cmd(id: u64, token: Option<&str>) -> Vec<u8> {
    match token {
        Some(t) => serde_json::to_vec(&serde_json::json!({"id": id, "connect": {"token": t}}))
            .expect("json"),
        None => format!("{{\"id\":{id},\"connect\":{{}}}}").into_bytes(),
    }
}

pub fn subscribe_cmd(id: u64, channel: &str) -> Vec<u8> {
    let ch = serde_json::to_string(channel).expect("json");
    format!("{{\"id\":{id},\"subscribe\":{{\"channel\":{ch}}}}}").into_bytes()
}

/// A subscribe asking for fossil deltas.
pub fn subscribe_delta_cmd(id: u64, channel: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"id": id, "subscribe": {"channel": channel, "delta": "fossil"}}),
    )
    .expect("json")
}

/// A fossil subscriber's publication push: `data` is a string, the
/// payload or a delta against `base` (the last payload, updated here).
/// Returns our stamp in the payload.
pub fn delta_stamp(line: &[u8], base: &mut Vec<u8>) -> Option<Stamp> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let p = &v["push"]["pub"];
    let text = p["data"].as_str()?.as_bytes();
    *base = if p["delta"] == true {
        ringcast::protocol::fossil::apply(base, text).ok()?
    } else {
        text.to_vec()
    };
    stamp_of(&serde_json::from_slice(base).ok()?)
}

/// A subscribe asking for a recoverable subscription; with `recover`
/// (offset, epoch) it asks for the publications missed since that position
/// (Centrifugo client protocol v2: `recoverable`, `recover`, `offset`,
/// `epoch`).
pub fn subscribe_recover_cmd(id: u64, channel: &str, recover: Option<(u64, &str)>) -> Vec<u8> {
    let mut sub = serde_json::json!({"channel": channel, "recoverable": true});
    if let Some((offset, epoch)) = recover {
        sub["recover"] = true.into();
        sub["offset"] = offset.into();
        sub["epoch"] = epoch.into();
    }
    serde_json::to_vec(&serde_json::json!({"id": id, "subscribe": sub})).expect("json")
}

/// Appends a publish command whose `data` is a bench payload.
pub fn publish_cmd(out: &mut Vec<u8>, id: u64, channel: &str, data: &[u8]) {
    let _ = write!(
        out,
        "{{\"id\":{id},\"publish\":{{\"channel\":\"{channel}\",\"data\":"
    );
    out.extend_from_slice(data);
    out.extend_from_slice(b"}}");
}

/// The payload a publisher sends: send time (CLOCK_MONOTONIC ns), sequence
/// number in its stream, publisher and channel index, then padding so the
/// whole `data` object is about `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub t: u64,
    pub s: u64,
    pub p: u32,
    pub c: u32,
}

pub fn write_data(out: &mut Vec<u8>, stamp: Stamp, size: usize) {
    let start = out.len();
    let _ = write!(
        out,
        "{{\"t\":{},\"s\":{},\"p\":{},\"c\":{},\"x\":\"",
        stamp.t, stamp.s, stamp.p, stamp.c
    );
    let used = out.len() - start + 2;
    out.resize(out.len() + size.saturating_sub(used), b'x');
    out.extend_from_slice(b"\"}");
}

/// One JSON object from a server frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// `{}`: a server ping, to be answered with `{}`.
    Ping,
    /// A reply to command `id`; `error` when it carries an error object.
    Reply {
        id: u64,
        error: bool,
    },
    /// A push: a publication (with our stamp when it is one of ours) or
    /// another push kind.
    Push {
        stamp: Option<Stamp>,
    },
    Other,
}

/// Splits a frame into its JSON objects.
pub fn lines(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(frame);
    std::iter::from_fn(move || {
        let r = rest?;
        Some(match find_byte(r, b'\n') {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                &r[..i]
            }
            None => {
                rest = None;
                r
            }
        })
    })
    .map(trim)
    .filter(|l| !l.is_empty())
}

/// Position of `b` in `hay` (libc `memchr`: vectorised; a publication is
/// mostly padding, and a byte-at-a-time scan for the line end was half of
/// the client's CPU per delivery).
pub fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    if hay.is_empty() {
        return None;
    }
    // SAFETY: reads at most `hay.len()` bytes from `hay`.
    let p = unsafe { libc::memchr(hay.as_ptr().cast(), b as libc::c_int, hay.len()) };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

/// Position of `needle` in `hay` (libc `memmem`).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    // SAFETY: reads within `hay` and `needle`.
    let p = unsafe {
        libc::memmem(
            hay.as_ptr().cast(),
            hay.len(),
            needle.as_ptr().cast(),
            needle.len(),
        )
    };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

fn trim(mut l: &[u8]) -> &[u8] {
    while let [b' ' | b'\r' | b'\t', rest @ ..] = l {
        l = rest;
    }
    while let [rest @ .., b' ' | b'\r' | b'\t'] = l {
        l = rest;
    }
    l
}

pub fn classify(line: &[u8]) -> Line {
    if line == b"{}" {
        return Line::Ping;
    }
    if let Some(rest) = line.strip_prefix(b"{\"id\":") {
        if let Some((id, after)) = number(rest) {
            return Line::Reply {
                id,
                error: after.starts_with(b",\"error\""),
            };
        }
    }
    if line.starts_with(b"{\"push\":") {
        if let Some(stamp) = fast_stamp(line) {
            return Line::Push { stamp: Some(stamp) };
        }
    }
    slow_classify(line)
}

/// `{"push":{"channel":"…","pub":{"data":{"t":…,"s":…,"p":…,"c":…`
fn fast_stamp(line: &[u8]) -> Option<Stamp> {
    const KEY: &[u8] = b"\"data\":{\"t\":";
    // The usual spelling, checked in place: `{"push":{"channel":"<name>",`
    // then `"pub":{"data":{"t":`; anything else is searched for.
    const PUSH: &[u8] = b"{\"push\":{\"channel\":\"";
    const PUB: &[u8] = b",\"pub\":{\"data\":{\"t\":";
    let direct = line.strip_prefix(PUSH).and_then(|r| {
        let q = find_byte(r, b'"')?;
        r[q + 1..].strip_prefix(PUB)
    });
    let rest = match direct {
        Some(rest) => rest,
        None => &line[find(line, KEY)? + KEY.len()..],
    };
    let (t, rest) = number(rest)?;
    let (s, rest) = number(rest.strip_prefix(b",\"s\":")?)?;
    let (p, rest) = number(rest.strip_prefix(b",\"p\":")?)?;
    let (c, _) = number(rest.strip_prefix(b",\"c\":")?)?;
    Some(Stamp {
        t,
        s,
        p: p as u32,
        c: c as u32,
    })
}

/// The `offset` of a publication push. Servers write it last
/// (`…,"offset":N}}}`), so the line's tail is looked at first; anything else
/// goes through serde_json.
pub fn pub_offset(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"offset\":";
    let tail = &line[line.len().saturating_sub(40)..];
    if let Some(i) = find(tail, KEY) {
        if let Some((n, rest)) = number(&tail[i + KEY.len()..]) {
            if rest.iter().all(|&b| b == b'}') {
                return Some(n);
            }
        }
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    v["push"]["pub"]["offset"].as_u64()
}

/// What a subscribe reply said about the stream and recovery.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SubscribeReply {
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    pub was_recovering: bool,
    pub recovered: bool,
    /// Publications the reply carried (recovered), with their offsets.
    pub publications: Vec<(Option<Stamp>, Option<u64>)>,
}

/// Parses `{"id":N,"subscribe":{…}}` (`None`: not a subscribe result).
pub fn subscribe_reply(line: &[u8]) -> Option<SubscribeReply> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let r = v.get("subscribe")?;
    let flag = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
    let publications = r
        .get("publications")
        .and_then(Value::as_array)
        .map(|pubs| {
            pubs.iter()
                .map(|p| (stamp_of(&p["data"]), p["offset"].as_u64()))
                .collect()
        })
        .unwrap_or_default();
    Some(SubscribeReply {
        epoch: r.get("epoch").and_then(Value::as_str).map(str::to_string),
        offset: r.get("offset").and_then(Value::as_u64),
        was_recovering: flag("was_recovering"),
        recovered: flag("recovered"),
        publications,
    })
}

/// Our stamp in a publication's `data`, if it is one of ours.
fn stamp_of(data: &Value) -> Option<Stamp> {
    let field = |k: &str| data.get(k).and_then(Value::as_u64);
    Some(Stamp {
        t: field("t")?,
        s: field("s")?,
        p: field("p")? as u32,
        c: field("c")? as u32,
    })
}

fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let mut v = 0u64;
    for &d in &b[..n] {
        v = v * 10 + (d - b'0') as u64;
    }
    Some((v, &b[n..]))
}

fn slow_classify(line: &[u8]) -> Line {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return Line::Other;
    };
    let Some(obj) = v.as_object() else {
        return Line::Other;
    };
    if obj.is_empty() {
        return Line::Ping;
    }
    if let Some(id) = obj.get("id").and_then(Value::as_u64) {
        return Line::Reply {
            id,
            error: obj.get("error").is_some_and(|e| !e.is_null()),
        };
    }
    if let Some(push) = obj.get("push") {
        return Line::Push {
            stamp: stamp_of(&push["pub"]["data"]),
        };
    }
    Line::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(connect_cmd(1, None), br#"{"id":1,"connect":{}}"#);
        assert_eq!(
            subscribe_cmd(2, "c"),
            br#"{"id":2,"subscribe":{"channel":"c"}}"#
        );
        let mut out = vec![];
        publish_cmd(&mut out, 3, "c", br#"{"a":1}"#);
        assert_eq!(out, br#"{"id":3,"publish":{"channel":"c","data":{"a":1}}}"#);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["publish"]["data"]["a"], 1);
    }

    #[test]
    fn recovery_commands_and_replies() {
        assert_eq!(
            subscribe_recover_cmd(2, "s:1", None),
            br#"{"id":2,"subscribe":{"channel":"s:1","recoverable":true}}"#
        );
        let v: Value =
            serde_json::from_slice(&subscribe_recover_cmd(3, "c", Some((17, "ab")))).unwrap();
        assert_eq!(v["subscribe"]["recover"], true);
        assert_eq!(v["subscribe"]["offset"], 17);
        assert_eq!(v["subscribe"]["epoch"], "ab");
        let r = subscribe_reply(
            br#"{"id":2,"subscribe":{"recoverable":true,"epoch":"xyz","offset":9,"was_recovering":true,"recovered":true,"publications":[{"data":{"t":5,"s":8,"p":0,"c":1,"x":""},"offset":8},{"data":{"a":1},"offset":9}]}}"#,
        )
        .unwrap();
        assert_eq!(r.epoch.as_deref(), Some("xyz"));
        assert_eq!(r.offset, Some(9));
        assert!(r.was_recovering && r.recovered);
        let stamp = Stamp {
            t: 5,
            s: 8,
            p: 0,
            c: 1,
        };
        assert_eq!(
            r.publications,
            vec![(Some(stamp), Some(8)), (None, Some(9))]
        );
        // A server without recovery (the peer): an empty result.
        let r = subscribe_reply(br#"{"id":2,"subscribe":{}}"#).unwrap();
        assert_eq!(r, SubscribeReply::default());
        assert_eq!(subscribe_reply(br#"{"id":2,"publish":{}}"#), None);
        assert_eq!(
            pub_offset(br#"{"push":{"channel":"c","pub":{"data":{"x":"offset"},"offset":42}}}"#),
            Some(42)
        );
        assert_eq!(
            pub_offset(br#"{"push":{"pub":{"offset":7,"data":{}},"channel":"c"}}"#),
            Some(7)
        );
        assert_eq!(
            pub_offset(br#"{"push":{"channel":"c","pub":{"data":{}}}}"#),
            None
        );
    }

    #[test]
    fn data_is_padded_to_size() {
        let stamp = Stamp {
            t: 123456789,
            s: 7,
            p: 2,
            c: 9,
        };
        for size in [0, 10, 64, 100, 1000] {
            let mut d = vec![];
            write_data(&mut d, stamp, size);
            let v: Value = serde_json::from_slice(&d).unwrap();
            assert_eq!(v["s"], 7);
            if size >= 64 {
                assert_eq!(d.len(), size);
            }
        }
    }

    #[test]
    fn classifies_fast_and_slow() {
        assert_eq!(classify(b"{}"), Line::Ping);
        assert_eq!(
            classify(br#"{"id":1,"connect":{"client":"x","version":"1","ping":25,"pong":true}}"#),
            Line::Reply {
                id: 1,
                error: false
            }
        );
        assert_eq!(
            classify(br#"{"id":5,"error":{"code":107,"message":"bad request"}}"#),
            Line::Reply { id: 5, error: true }
        );
        // Keys in another order go through serde_json.
        assert_eq!(
            classify(br#"{"error":{"code":1},"id":6}"#),
            Line::Reply { id: 6, error: true }
        );
        let stamp = Stamp {
            t: 1,
            s: 2,
            p: 3,
            c: 4,
        };
        let mut data = vec![];
        write_data(&mut data, stamp, 80);
        let push = format!(
            r#"{{"push":{{"channel":"ch","pub":{{"data":{},"offset":2}}}}}}"#,
            String::from_utf8(data.clone()).unwrap()
        );
        assert_eq!(classify(push.as_bytes()), Line::Push { stamp: Some(stamp) });
        let reordered = format!(
            r#"{{"push":{{"pub":{{"offset":2,"data":{}}},"channel":"ch"}}}}"#,
            String::from_utf8(data)
                .unwrap()
                .replace(r#""t":1,"s":2"#, r#""s":2,"t":1"#)
        );
        assert_eq!(
            classify(reordered.as_bytes()),
            Line::Push { stamp: Some(stamp) }
        );
        let frame = b"{}\n{\"id\":1,\"subscribe\":{}}\n";
        assert_eq!(lines(frame).count(), 2);
        let got: Vec<&[u8]> = lines(b" a \n\nb\r\nc").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"c"]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(find(b"xx\"data\":{\"t\":1", b"\"data\":{\"t\":"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find_byte(b"abc", b'c'), Some(2));
        assert_eq!(find_byte(b"", b'c'), None);
    }
}
