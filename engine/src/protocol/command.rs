//! Client commands (Centrifugo protocol v2, JSON): one JSON object per line,
//! several lines per WebSocket frame. Parsed in place: strings borrow from the
//! frame unless they contain escapes, `data` stays the raw JSON the client sent
//! so a publication is forwarded byte for byte.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Debug, Default, Deserialize)]
struct RawCommand<'a> {
    #[serde(default)]
    id: u32,
    #[serde(borrow, default)]
    connect: Option<ConnectRequest<'a>>,
    #[serde(borrow, default)]
    subscribe: Option<SubscribeRequest<'a>>,
    #[serde(borrow, default)]
    unsubscribe: Option<ChannelRequest<'a>>,
    #[serde(borrow, default)]
    publish: Option<PublishRequest<'a>>,
    #[serde(borrow, default)]
    presence: Option<ChannelRequest<'a>>,
    #[serde(borrow, default)]
    presence_stats: Option<ChannelRequest<'a>>,
    #[serde(borrow, default)]
    history: Option<HistoryRequest<'a>>,
    #[serde(borrow, default)]
    ping: Option<&'a RawValue>,
    #[serde(borrow, default)]
    send: Option<SendRequest<'a>>,
    #[serde(borrow, default)]
    rpc: Option<RpcRequest<'a>>,
    #[serde(borrow, default)]
    refresh: Option<RefreshRequest<'a>>,
    #[serde(borrow, default)]
    sub_refresh: Option<SubRefreshRequest<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConnectRequest<'a> {
    #[serde(borrow, default)]
    pub token: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub subs: std::collections::HashMap<Cow<'a, str>, ConnectSub<'a>>,
}

/// A server-side subscription's position in a connect request's `subs`
/// (the SDKs send one per recoverable server-side channel they had).
#[derive(Debug, Default, Deserialize)]
pub struct ConnectSub<'a> {
    #[serde(default)]
    pub recover: bool,
    #[serde(borrow, default)]
    pub epoch: Option<Cow<'a, str>>,
    #[serde(default)]
    pub offset: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct SubscribeRequest<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(borrow, default)]
    pub token: Option<Cow<'a, str>>,
    #[serde(default)]
    pub recover: bool,
    #[serde(borrow, default)]
    pub epoch: Option<Cow<'a, str>>,
    #[serde(default)]
    pub offset: u64,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    #[serde(default)]
    pub positioned: bool,
    #[serde(default)]
    pub recoverable: bool,
    #[serde(default)]
    pub join_leave: bool,
    /// The delta encoding the subscriber can take: `fossil` (or none).
    #[serde(borrow, default)]
    pub delta: Option<Cow<'a, str>>,
    /// A tags filter (Centrifugo 6); ringcast has none, so one is refused.
    #[serde(borrow, default)]
    pub tf: Option<&'a RawValue>,
    /// Bits: 1 channel compaction, 2 reject an unrecoverable position
    /// (error 112 instead of a subscription with `recovered: false`).
    #[serde(default)]
    pub flag: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChannelRequest<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct PublishRequest<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamPosition<'a> {
    #[serde(default)]
    pub offset: u64,
    #[serde(borrow, default)]
    pub epoch: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryRequest<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(default)]
    pub limit: i32,
    #[serde(borrow, default)]
    pub since: Option<StreamPosition<'a>>,
    #[serde(default)]
    pub reverse: bool,
}

#[derive(Debug, Deserialize)]
pub struct SendRequest<'a> {
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct RpcRequest<'a> {
    #[serde(borrow, default)]
    pub method: Cow<'a, str>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct RefreshRequest<'a> {
    #[serde(borrow, default)]
    pub token: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct SubRefreshRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(borrow, default)]
    pub token: Cow<'a, str>,
}

/// One decoded command line.
#[derive(Debug)]
pub enum Command<'a> {
    /// `{}`: the answer to a server ping.
    Pong,
    Connect(ConnectRequest<'a>),
    Subscribe(SubscribeRequest<'a>),
    Unsubscribe(ChannelRequest<'a>),
    Publish(PublishRequest<'a>),
    Presence(ChannelRequest<'a>),
    PresenceStats(ChannelRequest<'a>),
    History(HistoryRequest<'a>),
    Ping,
    Send(SendRequest<'a>),
    Rpc(RpcRequest<'a>),
    Refresh(RefreshRequest<'a>),
    SubRefresh(SubRefreshRequest<'a>),
}

/// Why a line is not a command. Undecodable input disconnects (3501); a
/// well-formed line with the wrong shape gets error 107 when it has an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong types.
    Undecodable,
    /// Several methods in one command, or a method that needs an id without one.
    BadRequest { id: u32 },
}

/// Parses one line into `(id, command)`.
/// The connect request a unidirectional transport starts with (the body of
/// a connect command, alone): an object, or nothing for `{}`.
pub fn parse_connect_request(body: &[u8]) -> Result<ConnectRequest<'_>, ParseError> {
    let body = body.trim_ascii();
    if body.is_empty() {
        return Ok(ConnectRequest::default());
    }
    if body[0] != b'{' {
        return Err(ParseError::Undecodable);
    }
    serde_json::from_slice(body).map_err(|_| ParseError::Undecodable)
}

pub fn parse(line: &[u8]) -> Result<(u32, Command<'_>), ParseError> {
    let raw: RawCommand<'_> = serde_json::from_slice(line).map_err(|_| ParseError::Undecodable)?;
    let id = raw.id;
    // At most one method per command (no allocation for the usual one).
    let mut found: Option<Command<'_>> = None;
    let mut several = false;
    let mut take = |c| several |= found.replace(c).is_some();
    // Destructure so a field added to RawCommand cannot be forgotten here.
    let RawCommand {
        id: _,
        connect,
        subscribe,
        unsubscribe,
        publish,
        presence,
        presence_stats,
        history,
        ping,
        send,
        rpc,
        refresh,
        sub_refresh,
    } = raw;
    if let Some(r) = connect {
        take(Command::Connect(r));
    }
    if let Some(r) = subscribe {
        take(Command::Subscribe(r));
    }
    if let Some(r) = unsubscribe {
        take(Command::Unsubscribe(r));
    }
    if let Some(r) = publish {
        take(Command::Publish(r));
    }
    if let Some(r) = presence {
        take(Command::Presence(r));
    }
    if let Some(r) = presence_stats {
        take(Command::PresenceStats(r));
    }
    if let Some(r) = history {
        take(Command::History(r));
    }
    if ping.is_some() {
        take(Command::Ping);
    }
    if let Some(r) = send {
        take(Command::Send(r));
    }
    if let Some(r) = rpc {
        take(Command::Rpc(r));
    }
    if let Some(r) = refresh {
        take(Command::Refresh(r));
    }
    if let Some(r) = sub_refresh {
        take(Command::SubRefresh(r));
    }
    if several {
        return Err(ParseError::BadRequest { id });
    }
    match found {
        None if id == 0 => Ok((0, Command::Pong)),
        Some(c @ Command::Send(_)) => Ok((id, c)),
        Some(c) if id != 0 => Ok((id, c)),
        _ => Err(ParseError::BadRequest { id }),
    }
}

/// Splits a frame into command lines (`\n`-separated; blank lines skipped, a
/// trailing `\r` tolerated).
pub fn lines(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    frame
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_centrifuge_js_commands() {
        let (id, c) = parse(br#"{"id":1,"connect":{"name":"js","version":"5.2.0"}}"#).unwrap();
        assert_eq!(id, 1);
        assert!(matches!(
            c,
            Command::Connect(ConnectRequest { token: None, .. })
        ));
        let (_, c) = parse(br#"{"id":2,"subscribe":{"channel":"news"}}"#).unwrap();
        assert!(matches!(c, Command::Subscribe(ref s) if s.channel == "news"));
        let (_, c) = parse(br#"{"id":3,"publish":{"channel":"n","data":{"x":[1, 2]}}}"#).unwrap();
        match c {
            Command::Publish(p) => assert_eq!(p.data.get(), r#"{"x":[1, 2]}"#),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(b"{}"), Ok((0, Command::Pong))));
        assert!(matches!(
            parse(br#"{"send":{"data":1}}"#),
            Ok((0, Command::Send(_)))
        ));
    }

    #[test]
    fn escaped_channel_names_are_unescaped() {
        let (_, c) = parse(br#"{"id":2,"subscribe":{"channel":"a\"b\u00e9"}}"#).unwrap();
        assert!(matches!(c, Command::Subscribe(ref s) if s.channel == "a\"bé"));
    }

    #[test]
    fn rejects_junk_and_ambiguous_commands() {
        assert_eq!(parse(b"not json").unwrap_err(), ParseError::Undecodable);
        assert_eq!(parse(b"[1,2]").unwrap_err(), ParseError::Undecodable);
        assert_eq!(
            parse(br#"{"id":"x"}"#).unwrap_err(),
            ParseError::Undecodable
        );
        assert_eq!(
            parse(br#"{"id":4,"subscribe":{"channel":"a"},"unsubscribe":{"channel":"a"}}"#)
                .unwrap_err(),
            ParseError::BadRequest { id: 4 }
        );
        assert_eq!(
            parse(br#"{"subscribe":{"channel":"a"}}"#).unwrap_err(),
            ParseError::BadRequest { id: 0 }
        );
        assert_eq!(
            parse(br#"{"id":5}"#).unwrap_err(),
            ParseError::BadRequest { id: 5 }
        );
        // publish without data is the wrong shape.
        assert_eq!(
            parse(br#"{"id":6,"publish":{"channel":"a"}}"#).unwrap_err(),
            ParseError::Undecodable
        );
    }

    #[test]
    fn splits_lines() {
        let frame = b"{\"id\":1}\n\n{\"id\":2}\r\n";
        let v: Vec<&[u8]> = lines(frame).collect();
        assert_eq!(v, vec![&b"{\"id\":1}"[..], &b"{\"id\":2}"[..]]);
    }
}
