//! Token claims: the wire shapes (private) and what verification hands back.
//!
//! Connection token claims (Centrifugo v5): `sub`, `exp`, `iat`, `nbf`, `jti`,
//! `aud`, `iss`, `info`/`b64info`, `channels`, `subs`, `meta`, `expire_at`.
//! Subscription token claims: `sub`, `channel`, `client`, `exp`, `iat`, `nbf`,
//! `jti`, `aud`, `iss`, `info`/`b64info`, `data`/`b64data`, `expire_at`.
//! Unknown claims are ignored; a known claim of the wrong JSON type makes the
//! token invalid (as Centrifugo's decoder does).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::InvalidReason;
use crate::protocol::codes::{self, ClientError};

/// What a verified connection token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectClaims {
    /// The `sub` claim: the user id. `""` (claim absent or empty) is an
    /// anonymous user, unless `require_sub` is set.
    pub user: String,
    /// The `info` claim as raw JSON (or `b64info`, decoded), for `conn_info`
    /// in ClientInfo. Always valid JSON when present.
    pub info: Option<String>,
    /// Server-side subscriptions: the keys of `subs` when that claim is a
    /// non-empty object, otherwise the `channels` claim (Centrifugo's
    /// precedence). Order as in the token (`subs`: sorted by name).
    pub channels: Vec<String>,
    /// Per-channel options from `subs`, one entry per channel there (empty
    /// when the token used `channels`). `override` options are not read.
    pub subs: Vec<ServerSub>,
    /// The `meta` claim as raw JSON: server-only data, never sent to clients.
    pub meta: Option<String>,
    /// When the connection expires (Unix seconds): `expire_at` when present
    /// (`0` or less: never), otherwise `exp`. `None`: never.
    pub expires_at: Option<u64>,
    /// The `exp` claim: when the token itself stops being accepted.
    pub token_exp: Option<u64>,
    /// The `iat` claim.
    pub issued_at: Option<u64>,
    /// The `jti` claim.
    pub jti: Option<String>,
}

/// One entry of a connection token's `subs` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSub {
    pub channel: String,
    /// `info` (raw JSON) or `b64info` (decoded): `chan_info` for this channel.
    pub info: Option<String>,
    /// `data` (raw JSON) or `b64data` (decoded): sent with the subscribe push.
    pub data: Option<String>,
}

/// What a verified subscription token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubClaims {
    /// The `sub` claim (equal to the connection's user, or verification fails).
    pub user: String,
    /// The `channel` claim (equal to the requested channel, or verification fails).
    pub channel: String,
    /// The optional `client` claim (equal to the connection's client id when set).
    pub client: Option<String>,
    /// `info` (raw JSON) or `b64info` (decoded): `chan_info` in ClientInfo.
    pub info: Option<String>,
    /// `data` (raw JSON) or `b64data` (decoded): the subscribe reply's `data`.
    pub data: Option<String>,
    /// When the subscription expires (Unix seconds): `expire_at` when present
    /// (`0` or less: never), otherwise `exp`. `None`: never.
    pub expires_at: Option<u64>,
    /// The `exp` claim.
    pub token_exp: Option<u64>,
    /// The `iat` claim.
    pub issued_at: Option<u64>,
    /// The `jti` claim.
    pub jti: Option<String>,
}

/// The reply fields for an expiring connection or subscription:
/// `Ok(None)` never expires; `Ok(Some(ttl))` expires in `ttl` seconds (the
/// reply's `expires: true, ttl`); `Err(codes::EXPIRED)` is already past
/// (a valid token whose `expire_at` is behind `now`), which Centrifugo
/// answers with error 110 "expired".
pub fn ttl(expires_at: Option<u64>, now: u64) -> Result<Option<u64>, ClientError> {
    match expires_at {
        None => Ok(None),
        Some(at) if at < now => Err(codes::EXPIRED),
        Some(at) => Ok(Some(at - now)),
    }
}

impl ConnectClaims {
    /// See [`ttl`].
    pub fn ttl(&self, now: u64) -> Result<Option<u64>, ClientError> {
        ttl(self.expires_at, now)
    }
}

impl SubClaims {
    /// See [`ttl`].
    pub fn ttl(&self, now: u64) -> Result<Option<u64>, ClientError> {
        ttl(self.expires_at, now)
    }
}

// ---------------------------------------------------------------------------
// Wire shapes.

/// Declares a claims struct: the claims both token kinds share, then its own.
/// (Not `#[serde(flatten)]`: that buffers the input and cannot carry
/// `RawValue`.) `null` counts as absent everywhere.
macro_rules! claims_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$m])*
        #[derive(Deserialize)]
        pub(crate) struct $name {
            #[serde(default)]
            pub sub: Option<String>,
            #[serde(default, deserialize_with = "numeric_date")]
            pub exp: Option<i64>,
            #[serde(default, deserialize_with = "numeric_date")]
            pub nbf: Option<i64>,
            #[serde(default, deserialize_with = "numeric_date")]
            pub iat: Option<i64>,
            #[serde(default)]
            pub jti: Option<String>,
            #[serde(default)]
            pub iss: Option<String>,
            #[serde(default)]
            pub aud: Option<Audience>,
            #[serde(default, deserialize_with = "numeric_date")]
            pub expire_at: Option<i64>,
            #[serde(default)]
            pub info: Option<Box<RawValue>>,
            #[serde(default)]
            pub b64info: Option<String>,
            /// A connection token must not carry one; a subscription token must.
            #[serde(default)]
            pub channel: Option<String>,
            $($(#[$fm])* #[serde(default)] pub $field: $ty,)*
        }
    };
}

claims_struct!(RawConnect {
    channels: Option<Vec<String>>,
    subs: Option<BTreeMap<String, RawSubOptions>>,
    meta: Option<Box<RawValue>>,
});

claims_struct!(RawSubscribe {
    client: Option<String>,
    data: Option<Box<RawValue>>,
    b64data: Option<String>,
});

#[derive(Deserialize)]
pub(crate) struct RawSubOptions {
    #[serde(default)]
    pub info: Option<Box<RawValue>>,
    #[serde(default)]
    pub b64info: Option<String>,
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
    #[serde(default)]
    pub b64data: Option<String>,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, want: &str) -> bool {
        match self {
            Audience::One(a) => a == want,
            Audience::Many(all) => all.iter().any(|a| a == want),
        }
    }
}

/// A NumericDate: any JSON number of seconds (fractions are floored), or null.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number of seconds")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() {
                // `as` saturates at the i64 range.
                Ok(Some(v.floor() as i64))
            } else {
                Err(E::custom("not a finite number"))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

/// Raw JSON from `json` or, failing that, base64 (standard alphabet, as
/// Centrifugo) `b64`, which must decode to JSON too: ringcast speaks the JSON
/// protocol, where info and data are embedded verbatim.
pub(crate) fn raw_or_b64(
    json: Option<Box<RawValue>>,
    b64: Option<String>,
) -> Result<Option<String>, InvalidReason> {
    match b64.filter(|s| !s.is_empty()) {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| InvalidReason::BadInfo)?;
            let raw: Box<RawValue> =
                serde_json::from_slice(&bytes).map_err(|_| InvalidReason::BadInfo)?;
            Ok(Some(String::from(Box::<str>::from(raw))))
        }
        None => Ok(json.map(|raw| String::from(Box::<str>::from(raw)))),
    }
}

/// A NumericDate as Unix seconds for the API: negative dates become 0.
pub(crate) fn unix(v: i64) -> u64 {
    v.max(0) as u64
}

/// Centrifugo's rule: `expire_at` present wins (`<= 0`: no expiry), otherwise `exp`.
pub(crate) fn lifetime(expire_at: Option<i64>, exp: Option<i64>) -> Option<u64> {
    match expire_at {
        Some(at) if at > 0 => Some(at as u64),
        Some(_) => None,
        None => exp.map(unix),
    }
}
