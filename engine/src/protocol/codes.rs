//! Centrifugo's client error codes (in replies) and disconnect codes (close
//! frames): 3000-3499 advise reconnecting, 3500-3999 are terminal.

/// A reply error: `{"id":N,"error":{"code":C,"message":"..."}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientError {
    pub code: u32,
    pub message: &'static str,
}

impl ClientError {
    /// Errors the SDKs retry by themselves (Centrifugo marks these
    /// `temporary`): internal (e.g. the broker is unreachable) and too many
    /// requests.
    pub fn is_temporary(&self) -> bool {
        matches!(self.code, 100 | 111)
    }
}

macro_rules! client_errors {
    ($($name:ident = $code:expr, $msg:expr;)*) => {
        $(pub const $name: ClientError = ClientError { code: $code, message: $msg };)*
    };
}

client_errors! {
    INTERNAL = 100, "internal server error";
    UNAUTHORIZED = 101, "unauthorized";
    UNKNOWN_CHANNEL = 102, "unknown channel";
    PERMISSION_DENIED = 103, "permission denied";
    METHOD_NOT_FOUND = 104, "method not found";
    ALREADY_SUBSCRIBED = 105, "already subscribed";
    LIMIT_EXCEEDED = 106, "limit exceeded";
    BAD_REQUEST = 107, "bad request";
    NOT_AVAILABLE = 108, "not available";
    TOKEN_EXPIRED = 109, "token expired";
    EXPIRED = 110, "expired";
    TOO_MANY_REQUESTS = 111, "too many requests";
    UNRECOVERABLE_POSITION = 112, "unrecoverable position";
}

/// A disconnect: sent as the WebSocket close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnect {
    pub code: u16,
    pub reason: &'static str,
}

macro_rules! disconnects {
    ($($name:ident = $code:expr, $reason:expr;)*) => {
        $(pub const $name: Disconnect = Disconnect { code: $code, reason: $reason };)*
    };
}

disconnects! {
    SHUTDOWN = 3001, "shutdown";
    INTERNAL_SERVER_ERROR = 3004, "internal server error";
    CONNECTION_EXPIRED = 3005, "expired";
    SUBSCRIPTION_EXPIRED = 3006, "subscription expired";
    SLOW = 3008, "slow";
    WRITE_ERROR = 3009, "write error";
    INSUFFICIENT_STATE = 3010, "insufficient state";
    FORCE_RECONNECT = 3011, "force reconnect";
    NO_PONG = 3012, "no pong";
    TOO_MANY_REQUESTS_DISCONNECT = 3013, "too many requests";
    INVALID_TOKEN = 3500, "invalid token";
    BAD_REQUEST_DISCONNECT = 3501, "bad request";
    STALE = 3502, "stale";
    FORCE_NO_RECONNECT = 3503, "force disconnect";
    CONNECTION_LIMIT = 3504, "connection limit";
    CHANNEL_LIMIT = 3505, "channel limit";
    PERMISSION_DENIED_DISCONNECT = 3507, "permission denied";
    NOT_AVAILABLE_DISCONNECT = 3508, "not available";
    TOO_MANY_ERRORS = 3509, "too many errors";
}
