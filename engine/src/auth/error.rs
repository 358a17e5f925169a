//! Why a token was refused, and what the client is told.
//!
//! Centrifugo answers differently depending on the command (checked against
//! its client handler and the centrifuge library):
//!
//! | command      | `Expired`                | `Invalid`                                  |
//! |--------------|--------------------------|--------------------------------------------|
//! | `connect`    | error 109 token expired  | disconnect 3500 invalid token              |
//! | `refresh`    | disconnect 3005 expired  | disconnect 3500 invalid token              |
//! | `subscribe`  | error 109 token expired  | error 103, or 3500 when the token is valid but for another channel/user/client |
//! | `sub_refresh`| disconnect 3005 expired  | disconnect 3500 invalid token              |
//!
//! Error 109 makes the SDK fetch a new token and retry; a 3005 disconnect
//! makes it reconnect (and so fetch a new connection token). Besides the
//! per-command [`TokenError::on_connect`] and friends, [`TokenError::client_error`]
//! and [`TokenError::disconnect`] give the plain mappings.

use std::fmt;

use crate::protocol::codes::{self, ClientError, Disconnect};

/// A token verification failure. Cheap to make and copy: reconnect storms
/// make many of them, so there is no allocation and no formatted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// `exp` is past (or `nbf` is ahead), with the configured leeway: the SDK
    /// should fetch a fresh token.
    Expired,
    /// Anything else: the token will never be accepted.
    Invalid(InvalidReason),
}

/// Why a token is invalid. For logs; clients only see the mapped code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// Not three base64url parts separated by dots, or a part that does not
    /// decode, or a header that is not a JSON object with a string `alg`.
    Malformed,
    /// A header with `crit`: extensions ringcast does not understand.
    UnsupportedHeader,
    /// The header's `alg` is not admitted by the configured keys
    /// (`none`, or a key type that is not configured).
    AlgorithmNotAllowed,
    /// The signature does not match.
    BadSignature,
    /// The payload is not a JSON object, or a known claim has the wrong type.
    BadClaims,
    /// `b64info`/`b64data` is not base64 of a JSON value.
    BadInfo,
    /// `aud` does not contain the configured audience.
    Audience,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `sub` missing or empty while `require_sub` is set.
    MissingSub,
    /// A connection token carrying a `channel` claim (a subscription token
    /// used to connect).
    ChannelInConnectToken,
    /// A subscription token without a `channel` claim.
    MissingChannel,
    /// A subscription token for another channel.
    ChannelMismatch,
    /// A subscription or refresh token for another user.
    UserMismatch,
    /// A subscription token whose `client` claim names another connection.
    ClientMismatch,
    /// No keys are configured for this token kind.
    NoKeys,
}

impl InvalidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::Malformed => "malformed token",
            InvalidReason::UnsupportedHeader => "unsupported header (crit)",
            InvalidReason::AlgorithmNotAllowed => "algorithm not allowed",
            InvalidReason::BadSignature => "bad signature",
            InvalidReason::BadClaims => "bad claims",
            InvalidReason::BadInfo => "bad b64info/b64data",
            InvalidReason::Audience => "audience mismatch",
            InvalidReason::Issuer => "issuer mismatch",
            InvalidReason::MissingSub => "sub claim required",
            InvalidReason::ChannelInConnectToken => "channel claim in connection token",
            InvalidReason::MissingChannel => "channel claim required",
            InvalidReason::ChannelMismatch => "channel mismatch",
            InvalidReason::UserMismatch => "user mismatch",
            InvalidReason::ClientMismatch => "client mismatch",
            InvalidReason::NoKeys => "no token keys configured",
        }
    }

    /// A well-signed token that is for someone or something else.
    fn is_mismatch(self) -> bool {
        matches!(
            self,
            InvalidReason::ChannelMismatch
                | InvalidReason::UserMismatch
                | InvalidReason::ClientMismatch
        )
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Expired => f.write_str("token expired"),
            TokenError::Invalid(r) => write!(f, "invalid token: {r}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// What to send a client whose token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Reply `{"id":N,"error":{...}}` and keep the connection.
    Error(ClientError),
    /// Close the connection with this code and reason.
    Disconnect(Disconnect),
}

impl TokenError {
    /// As a reply error: `Expired` → 109 "token expired", `Invalid` → 103
    /// "permission denied".
    pub fn client_error(&self) -> ClientError {
        match self {
            TokenError::Expired => codes::TOKEN_EXPIRED,
            TokenError::Invalid(_) => codes::PERMISSION_DENIED,
        }
    }

    /// As a disconnect: `Expired` → 3005 "expired", `Invalid` → 3500
    /// "invalid token".
    pub fn disconnect(&self) -> Disconnect {
        match self {
            TokenError::Expired => codes::CONNECTION_EXPIRED,
            TokenError::Invalid(_) => codes::INVALID_TOKEN,
        }
    }

    /// For `connect`: expired → error 109 (the SDK refreshes and reconnects);
    /// invalid → disconnect 3500; `sub` missing under `require_sub` → 3507
    /// permission denied (Centrifugo's answer to a disallowed anonymous token).
    pub fn on_connect(&self) -> Rejection {
        match self {
            TokenError::Expired => Rejection::Error(codes::TOKEN_EXPIRED),
            TokenError::Invalid(InvalidReason::MissingSub) => {
                Rejection::Disconnect(codes::PERMISSION_DENIED_DISCONNECT)
            }
            TokenError::Invalid(_) => Rejection::Disconnect(codes::INVALID_TOKEN),
        }
    }

    /// For `refresh`: expired → disconnect 3005; invalid (including a token
    /// for another user) → disconnect 3500.
    pub fn on_refresh(&self) -> Rejection {
        Rejection::Disconnect(self.disconnect())
    }

    /// For `subscribe`: expired → error 109; a valid token for another
    /// channel, user or client → disconnect 3500; any other invalid token →
    /// error 103.
    pub fn on_subscribe(&self) -> Rejection {
        match self {
            TokenError::Expired => Rejection::Error(codes::TOKEN_EXPIRED),
            TokenError::Invalid(r) if r.is_mismatch() => {
                Rejection::Disconnect(codes::INVALID_TOKEN)
            }
            TokenError::Invalid(_) => Rejection::Error(codes::PERMISSION_DENIED),
        }
    }

    /// For `sub_refresh`: expired → disconnect 3005; invalid → disconnect 3500.
    pub fn on_sub_refresh(&self) -> Rejection {
        Rejection::Disconnect(self.disconnect())
    }
}
