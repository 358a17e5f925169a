//! Centrifugo's proxy protocol: JSON request bodies POSTed to a backend and
//! the answers it gives (`{"result":…}`, `{"error":…}` or
//! `{"disconnect":…}`). No I/O here; `parse_answer` is fuzzed.
//!
//! ringcast carries JSON payloads only: a backend's `b64data` / `b64info`
//! must decode to JSON (else the answer is malformed).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What every proxy request starts with: who is asking, and over what.
#[derive(Debug, Clone, Serialize)]
pub struct Base<'a> {
    pub client: &'a str,
    pub transport: &'a str,
    /// "json" or "protobuf".
    pub protocol: &'a str,
    /// Payload encoding: always "json" here.
    pub encoding: &'a str,
}

#[derive(Serialize)]
pub struct ConnectRequest<'a> {
    #[serde(flatten)]
    pub base: Base<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    /// Channels the client asked to be subscribed to at connect.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub channels: &'a [&'a str],
}

#[derive(Serialize)]
pub struct RefreshRequest<'a> {
    #[serde(flatten)]
    pub base: Base<'a>,
    pub user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

#[derive(Serialize)]
pub struct SubscribeRequest<'a> {
    #[serde(flatten)]
    pub base: Base<'a>,
    pub user: &'a str,
    pub channel: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

#[derive(Serialize)]
pub struct PublishRequest<'a> {
    #[serde(flatten)]
    pub base: Base<'a>,
    pub user: &'a str,
    pub channel: &'a str,
    pub data: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

#[derive(Serialize)]
pub struct SubRefreshRequest<'a> {
    #[serde(flatten)]
    pub base: Base<'a>,
    pub user: &'a str,
    pub channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

#[derive(Serialize)]
pub struct RpcRequest<'a> {
    #[serde(flatten)]
    pub base: Base<'a>,
    pub user: &'a str,
    pub method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

/// A request body as bytes.
pub fn body<T: Serialize>(req: &T) -> Vec<u8> {
    serde_json::to_vec(req).expect("proxy requests serialize")
}

/// A backend's answer.
#[derive(Debug)]
pub enum Answer<T> {
    /// `None`: no `result` in the answer (`{}`).
    Result(Option<T>),
    /// An error for the client's command (`code` from the backend).
    Error {
        code: u32,
        message: String,
        temporary: bool,
    },
    /// Close the connection with this code and reason.
    Disconnect { code: u16, reason: String },
}

/// Why a backend's answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

#[derive(Deserialize)]
struct Envelope<T> {
    result: Option<T>,
    error: Option<ErrorBody>,
    disconnect: Option<DisconnectBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: u32,
    #[serde(default)]
    message: String,
    #[serde(default)]
    temporary: bool,
}

#[derive(Deserialize)]
struct DisconnectBody {
    code: u32,
    #[serde(default)]
    reason: String,
}

/// Reads an answer: a disconnect wins over an error, an error over a
/// result.
pub fn parse_answer<T>(body: &[u8]) -> Result<Answer<T>, Malformed>
where
    T: for<'de> Deserialize<'de>,
{
    let env: Envelope<T> = serde_json::from_slice(body).map_err(|e| Malformed(e.to_string()))?;
    if let Some(d) = env.disconnect {
        // Closes are 16-bit, and the application's range is 4000-4999;
        // 3000-3999 are Centrifugo's own, allowed as they mean the same here.
        if !(3000..=4999).contains(&d.code) {
            return Err(Malformed(format!(
                "disconnect code {} outside 3000-4999",
                d.code
            )));
        }
        if d.reason.len() > 123 {
            return Err(Malformed("disconnect reason over 123 bytes".into()));
        }
        return Ok(Answer::Disconnect {
            code: d.code as u16,
            reason: d.reason,
        });
    }
    if let Some(e) = env.error {
        if e.code == 0 {
            return Err(Malformed("error code 0".into()));
        }
        return Ok(Answer::Error {
            code: e.code,
            message: e.message,
            temporary: e.temporary,
        });
    }
    Ok(Answer::Result(env.result))
}

/// `data` or `b64data` (which must hold JSON), whichever is set.
pub fn payload(
    raw: &Option<Box<RawValue>>,
    b64: &Option<String>,
    what: &str,
) -> Result<Option<Box<RawValue>>, Malformed> {
    if let Some(r) = raw {
        return Ok(Some(r.clone()));
    }
    let Some(b) = b64 else { return Ok(None) };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|e| Malformed(format!("b64{what}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| Malformed(format!("b64{what}: not UTF-8")))?;
    RawValue::from_string(text)
        .map(Some)
        .map_err(|_| Malformed(format!("b64{what}: not JSON (ringcast carries JSON only)")))
}

#[derive(Debug, Default, Deserialize)]
pub struct ConnectResult {
    #[serde(default)]
    pub user: String,
    /// Unix seconds when the connection expires (0: never).
    #[serde(default)]
    pub expire_at: u64,
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
    /// Channels to subscribe the client to (server-side).
    #[serde(default)]
    pub channels: Vec<String>,
    /// The same, with options per channel.
    #[serde(default)]
    pub subs: BTreeMap<String, SubOptions>,
    /// Kept with the connection and sent to its later proxy calls.
    pub meta: Option<Box<RawValue>>,
}

/// Options of one server-side subscription from a connect result.
#[derive(Debug, Default, Deserialize)]
pub struct SubOptions {
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RefreshResult {
    #[serde(default)]
    pub expired: bool,
    #[serde(default)]
    pub expire_at: u64,
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
}

/// A sub_refresh result has the same fields as a refresh result.
pub type SubRefreshResult = RefreshResult;

/// `{"value": true}`: how the subscribe result overrides a channel option.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct BoolValue {
    pub value: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct Override {
    pub presence: Option<BoolValue>,
    pub join_leave: Option<BoolValue>,
    pub force_recovery: Option<BoolValue>,
    pub force_positioning: Option<BoolValue>,
    pub force_push_join_leave: Option<BoolValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SubscribeResult {
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
    #[serde(default, rename = "override")]
    pub overrides: Override,
    #[serde(default)]
    pub expire_at: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct PublishResult {
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
    #[serde(default)]
    pub skip_history: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RpcResult {
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base<'static> {
        Base {
            client: "c1",
            transport: "websocket",
            protocol: "json",
            encoding: "json",
        }
    }

    #[test]
    fn connect_request_shape() {
        let data = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let b = body(&ConnectRequest {
            base: base(),
            name: "js",
            version: "",
            data: Some(&data),
            channels: &[],
        });
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"client":"c1","transport":"websocket","protocol":"json","encoding":"json","name":"js","data":{"a":1}}"#
        );
    }

    #[test]
    fn answers() {
        let a: Answer<ConnectResult> =
            parse_answer(br#"{"result":{"user":"56","expire_at":9,"channels":["x"]}}"#).unwrap();
        match a {
            Answer::Result(Some(r)) => {
                assert_eq!((r.user.as_str(), r.expire_at), ("56", 9));
                assert_eq!(r.channels, vec!["x".to_string()]);
            }
            _ => panic!("{a:?}"),
        }
        let a: Answer<RpcResult> =
            parse_answer(br#"{"error":{"code":1000,"message":"nope","temporary":true}}"#).unwrap();
        assert!(
            matches!(&a, Answer::Error { code: 1000, message, temporary: true } if message == "nope"),
            "{a:?}"
        );
        // A disconnect wins over an error in the same answer.
        let a: Answer<RpcResult> =
            parse_answer(br#"{"error":{"code":1000},"disconnect":{"code":4500,"reason":"bye"}}"#)
                .unwrap();
        assert!(
            matches!(&a, Answer::Disconnect { code: 4500, reason } if reason == "bye"),
            "{a:?}"
        );
        assert!(parse_answer::<RpcResult>(br#"{"disconnect":{"code":1000}}"#).is_err());
        assert!(parse_answer::<RpcResult>(b"ok").is_err());
        assert!(matches!(
            parse_answer::<PublishResult>(b"{}"),
            Ok(Answer::Result(None))
        ));
    }

    #[test]
    fn base64_payloads_must_be_json() {
        let ok = payload(&None, &Some("eyJ4IjoxfQ==".into()), "data").unwrap();
        assert_eq!(ok.unwrap().get(), r#"{"x":1}"#);
        assert!(payload(&None, &Some("AAEC".into()), "data").is_err());
        assert!(payload(&None, &Some("!!".into()), "data").is_err());
        assert!(payload(&None, &None, "data").unwrap().is_none());
    }
}
