//! The client's side of the JSON client protocol (Centrifugo v2): commands
//! out; pings, replies and pushes in. The server's side is `command` (what
//! it reads) and `push` (what it writes); this is what ringcast-bench
//! speaks, and the `client_codec` fuzz target checks the two sides agree.
//! No I/O.
//!
//! One WebSocket text frame may hold several JSON objects separated by
//! `\n` ([`lines`]). [`classify`] reads the shapes servers write (keys in
//! the order Centrifugo and ringcast write them) in place, without parsing
//! the whole object: a publication is mostly payload, and a load generator
//! reading millions of them per second cannot afford a JSON parse of each.
//! Any other valid spelling goes through serde_json, so a client built on
//! it is cheap without being brittle.

use std::io::Write as _;

use serde_json::Value;

use super::json::put_str;

/// `{"id":N,"connect":{}}`, with the connection token if there is one.
pub fn connect(id: u64, token: Option<&str>) -> Vec<u8> {
    let mut out = format!("{{\"id\":{id},\"connect\":{{").into_bytes();
    if let Some(t) = token {
        out.extend_from_slice(b"\"token\":");
        put_json_str(&mut out, t);
    }
    out.extend_from_slice(b"}}");
    out
}

/// What a subscribe command asks for besides its channel.
#[derive(Debug, Default, Clone, Copy)]
pub struct SubscribeOpts<'a> {
    /// `recoverable`: a position in the channel's stream is wanted.
    pub recoverable: bool,
    /// `recover` from (offset, epoch): the publications missed since.
    pub recover: Option<(u64, &'a str)>,
    /// `delta`: a delta type (`fossil`).
    pub delta: Option<&'a str>,
}

/// `{"id":N,"subscribe":{"channel":…}}` with `opts`' fields.
pub fn subscribe(id: u64, channel: &str, opts: SubscribeOpts<'_>) -> Vec<u8> {
    let mut out = format!("{{\"id\":{id},\"subscribe\":{{\"channel\":").into_bytes();
    put_json_str(&mut out, channel);
    if opts.recoverable || opts.recover.is_some() {
        out.extend_from_slice(b",\"recoverable\":true");
    }
    if let Some((offset, epoch)) = opts.recover {
        out.extend_from_slice(
            format!(",\"recover\":true,\"offset\":{offset},\"epoch\":").as_bytes(),
        );
        put_json_str(&mut out, epoch);
    }
    if let Some(d) = opts.delta {
        out.extend_from_slice(b",\"delta\":");
        put_json_str(&mut out, d);
    }
    out.extend_from_slice(b"}}");
    out
}

/// Appends `{"id":N,"publish":{"channel":…,"data":<data>}}`; `data` is
/// JSON, written as it is.
pub fn publish(out: &mut Vec<u8>, id: u64, channel: &str, data: &[u8]) {
    let _ = write!(out, "{{\"id\":{id},\"publish\":{{\"channel\":");
    put_json_str(out, channel);
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(data);
    out.extend_from_slice(b"}}");
}

fn put_json_str(out: &mut Vec<u8>, s: &str) {
    // A publisher's channel names: nothing to escape.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let mut b = bytes::BytesMut::new();
    put_str(&mut b, s);
    out.extend_from_slice(&b);
}

/// One JSON object of a server frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `{}`: a server ping, to be answered with `{}`.
    Ping,
    /// A reply to command `id`; `error` when it carries an error object.
    Reply {
        id: u64,
        error: bool,
    },
    /// A push; `data` is a publication's `data`.
    Push {
        data: Option<Data<'a>>,
    },
    Other,
}

/// A publication's `data` as [`classify`] found it.
#[derive(Debug, PartialEq, Eq)]
pub enum Data<'a> {
    /// The line from where the value starts: the value, then the rest of
    /// the line (read it with [`Data::value`], or parse just the part of
    /// it you need).
    At(&'a [u8]),
    /// The value, from a parse of the whole line.
    Parsed(Value),
}

impl Data<'_> {
    /// The bytes from the value's start (more may follow it), when it was
    /// found in place.
    pub fn raw(&self) -> Option<&[u8]> {
        match self {
            Data::At(b) => Some(b),
            Data::Parsed(_) => None,
        }
    }

    /// The value, parsed.
    pub fn value(&self) -> Option<Value> {
        match self {
            Data::At(b) => first_value(b),
            Data::Parsed(v) => Some(v.clone()),
        }
    }
}

/// The first JSON value in `b`, whatever follows it.
pub fn first_value(b: &[u8]) -> Option<Value> {
    serde_json::Deserializer::from_slice(b)
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// Splits a frame into its JSON objects (blank lines and the spaces around
/// an object are dropped).
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

/// Position of `b` in `hay` (vectorised: a publication is mostly payload,
/// and a byte-at-a-time scan for the line end was half of the bench
/// client's CPU per delivery).
pub fn find_byte(hay: &[u8], b: u8) -> Option<usize> {
    memchr::memchr(b, hay)
}

/// Position of `needle` in `hay` (none for an empty needle).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
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

/// What one line is; see the module's note on the fast path.
pub fn classify(line: &[u8]) -> Line<'_> {
    if line == b"{}" {
        return Line::Ping;
    }
    if let Some(rest) = line.strip_prefix(b"{\"id\":") {
        if let Some((id, after)) = number(rest) {
            if after.starts_with(b",\"error\":{") {
                return Line::Reply { id, error: true };
            }
            // A result: `,"<method>":{`.
            if after.starts_with(b",\"") && !after.starts_with(b",\"error\"") {
                return Line::Reply { id, error: false };
            }
        }
    }
    // `{"push":{"channel":"<name>","pub":{"data":<value>…`
    const PUSH: &[u8] = b"{\"push\":{\"channel\":\"";
    const PUB: &[u8] = b",\"pub\":{\"data\":";
    if let Some(r) = line.strip_prefix(PUSH) {
        // A name with an escape in it is left to the slow path.
        if let Some(q) = find_byte(r, b'"') {
            if !r[..q].contains(&b'\\') {
                if let Some(at) = r[q + 1..].strip_prefix(PUB) {
                    if at.first().is_some_and(|b| !b.is_ascii_whitespace()) {
                        return Line::Push {
                            data: Some(Data::At(at)),
                        };
                    }
                }
            }
        }
    }
    slow_classify(line)
}

/// [`classify`] by a full parse (any key order, any spacing).
pub fn slow_classify(line: &[u8]) -> Line<'_> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(line) else {
        return Line::Other;
    };
    if obj.is_empty() {
        return Line::Ping;
    }
    if let Some(id) = obj.get("id").and_then(Value::as_u64) {
        return Line::Reply {
            id,
            error: obj.get("error").is_some_and(Value::is_object),
        };
    }
    if let Some(push) = obj.get("push") {
        let data = push
            .get("pub")
            .and_then(|p| p.get("data"))
            .map(|d| Data::Parsed(d.clone()));
        return Line::Push { data };
    }
    Line::Other
}

/// The `offset` of a publication push. Servers write it last
/// (`…,"offset":N}}}`), so the line's tail is looked at first; anything
/// else goes through serde_json.
pub fn pub_offset(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"offset\":";
    let tail = &line[line.len().saturating_sub(40)..];
    if let Some(i) = find(tail, KEY) {
        if let Some((n, rest)) = number(&tail[i + KEY.len()..]) {
            if rest == b"}}}" {
                return Some(n);
            }
        }
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    v["push"]["pub"]["offset"].as_u64()
}

/// What a subscribe reply said about the stream and recovery.
#[derive(Debug, Default, PartialEq)]
pub struct SubscribeReply {
    pub epoch: Option<String>,
    pub offset: Option<u64>,
    pub was_recovering: bool,
    pub recovered: bool,
    /// `delta` was accepted.
    pub delta: bool,
    /// The publications the reply carried (recovered): data and offset.
    pub publications: Vec<(Value, Option<u64>)>,
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
                .map(|p| (p["data"].clone(), p["offset"].as_u64()))
                .collect()
        })
        .unwrap_or_default();
    Some(SubscribeReply {
        epoch: r.get("epoch").and_then(Value::as_str).map(str::to_string),
        offset: r.get("offset").and_then(Value::as_u64),
        was_recovering: flag("was_recovering"),
        recovered: flag("recovered"),
        delta: flag("delta"),
        publications,
    })
}

/// A delta subscriber's publication push: `data` is a string holding the
/// payload, or (`"delta":true`) a fossil delta against `base`, the last
/// payload. Sets `base` to this publication's payload; `None` when the
/// line is no such push or the delta does not apply.
pub fn apply_delta_push(line: &[u8], base: &mut Vec<u8>) -> Option<()> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let p = &v["push"]["pub"];
    let text = p["data"].as_str()?.as_bytes();
    *base = if p["delta"] == true {
        super::fossil::apply(base, text).ok()?
    } else {
        text.to_vec()
    };
    Some(())
}

/// A decimal number at the start of `b` (at most 19 digits), and the rest.
pub fn number(b: &[u8]) -> Option<(u64, &[u8])> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::push;

    #[test]
    fn commands_are_what_the_server_reads() {
        assert_eq!(connect(1, None), br#"{"id":1,"connect":{}}"#);
        let v: Value = serde_json::from_slice(&connect(2, Some("a\"b"))).unwrap();
        assert_eq!(v["connect"]["token"], "a\"b");
        assert_eq!(
            subscribe(2, "c", SubscribeOpts::default()),
            br#"{"id":2,"subscribe":{"channel":"c"}}"#
        );
        let v: Value = serde_json::from_slice(&subscribe(
            3,
            "n:\"x\"",
            SubscribeOpts {
                recover: Some((17, "ab")),
                delta: Some("fossil"),
                ..Default::default()
            },
        ))
        .unwrap();
        let s = &v["subscribe"];
        assert_eq!(s["channel"], "n:\"x\"");
        assert_eq!(
            (&s["recoverable"], &s["recover"], &s["offset"], &s["epoch"]),
            (
                &Value::Bool(true),
                &Value::Bool(true),
                &17.into(),
                &"ab".into()
            )
        );
        assert_eq!(s["delta"], "fossil");
        let mut out = vec![];
        publish(&mut out, 3, "c", br#"{"a":1}"#);
        assert_eq!(out, br#"{"id":3,"publish":{"channel":"c","data":{"a":1}}}"#);
        // And the server's parser reads each of them.
        for cmd in [
            connect(1, Some("t")),
            subscribe(2, "c", SubscribeOpts::default()),
            out,
        ] {
            assert!(crate::protocol::command::parse(&cmd).is_ok(), "{cmd:?}");
        }
    }

    #[test]
    fn the_fast_path_reads_what_the_server_writes() {
        let frame = push::publication_frame("news", br#"{"t":1,"x":"y"}"#, None, 7);
        // The frame's payload is after its 2-byte WebSocket header.
        assert!(frame[1] < 126);
        let line = &frame[2..];
        let Line::Push { data: Some(d) } = classify(line) else {
            panic!("{:?}", String::from_utf8_lossy(line));
        };
        assert!(matches!(d, Data::At(_)), "in place");
        assert_eq!(d.value().unwrap()["t"], 1);
        assert_eq!(pub_offset(line), Some(7));
        assert_eq!(
            slow_classify(line),
            Line::Push {
                data: Some(Data::Parsed(serde_json::json!({"t": 1, "x": "y"})))
            }
        );
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
        // Another order, or a null error, goes through serde_json.
        assert_eq!(
            classify(br#"{"error":{"code":1},"id":6}"#),
            Line::Reply { id: 6, error: true }
        );
        assert_eq!(
            classify(br#"{"id":6,"error":null}"#),
            Line::Reply {
                id: 6,
                error: false
            }
        );
        let reordered = br#"{"push":{"pub":{"offset":2,"data":{"s":2,"t":1}},"channel":"ch"}}"#;
        let Line::Push { data: Some(d) } = classify(reordered) else {
            panic!()
        };
        assert_eq!(d.value().unwrap()["t"], 1);
        // A join push has no data.
        assert_eq!(
            classify(br#"{"push":{"channel":"c","join":{"info":{"user":"u","client":"c"}}}}"#),
            Line::Push { data: None }
        );
        assert_eq!(classify(b"[1]"), Line::Other);
        assert_eq!(classify(b"{\"push\":{\"channel\":\""), Line::Other);
        let frame = b"{}\n{\"id\":1,\"subscribe\":{}}\n";
        assert_eq!(lines(frame).count(), 2);
        let got: Vec<&[u8]> = lines(b" a \n\nb\r\nc").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"c"]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(find(b"xx\"data\":{\"t\":1", b"\"data\":{\"t\":"), Some(2));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"ab", b""), None);
        assert_eq!(find_byte(b"abc", b'c'), Some(2));
        assert_eq!(find_byte(b"", b'c'), None);
    }

    #[test]
    fn subscribe_replies_and_offsets() {
        let r = subscribe_reply(
            br#"{"id":2,"subscribe":{"recoverable":true,"epoch":"xyz","offset":9,"was_recovering":true,"recovered":true,"publications":[{"data":{"a":1},"offset":9}]}}"#,
        )
        .unwrap();
        assert_eq!(r.epoch.as_deref(), Some("xyz"));
        assert_eq!(r.offset, Some(9));
        assert!(r.was_recovering && r.recovered && !r.delta);
        assert_eq!(r.publications, vec![(serde_json::json!({"a": 1}), Some(9))]);
        assert_eq!(
            subscribe_reply(br#"{"id":2,"subscribe":{}}"#).unwrap(),
            SubscribeReply::default()
        );
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
        // The tail's number is not the offset unless the object ends there.
        assert_eq!(
            pub_offset(br#"{"push":{"channel":"c","pub":{"data":{"offset":5}}}}"#),
            None
        );
    }

    #[test]
    fn delta_pushes_apply_to_the_last_payload() {
        let mut base = Vec::new();
        let full = br#"{"push":{"channel":"c","pub":{"data":"hello world","offset":1}}}"#;
        assert_eq!(apply_delta_push(full, &mut base), Some(()));
        assert_eq!(base, b"hello world");
        let patch = crate::protocol::fossil::create(b"hello world", b"hello there");
        let line = serde_json::to_vec(&serde_json::json!({"push": {"channel": "c", "pub": {
            "data": String::from_utf8(patch).unwrap(), "delta": true, "offset": 2}}}))
        .unwrap();
        assert_eq!(apply_delta_push(&line, &mut base), Some(()));
        assert_eq!(base, b"hello there");
        assert_eq!(apply_delta_push(b"{}", &mut base), None);
    }
}
