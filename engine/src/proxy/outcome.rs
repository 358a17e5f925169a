//! What a request to a backend is and what became of it, shared by the
//! backends thread (`backend.rs`) and its HTTP/1.1 pool (`plain.rs`).

use bytes::Bytes;

/// An HTTP method the proxies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered (any status).
    Response { status: u16, body: Bytes },
    /// No answer within the endpoint's timeout (queueing included).
    Timeout,
    /// No connection, or it broke: the reason.
    Unreachable(String),
    /// Too many requests waiting for this endpoint already.
    Overloaded,
}

impl Outcome {
    /// The body of a 200 answer.
    pub fn ok_body(&self) -> Option<&Bytes> {
        match self {
            Outcome::Response { status: 200, body } => Some(body),
            _ => None,
        }
    }

    /// A short word for logs and the `result` label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Response { status, .. } if (200..300).contains(status) => "ok",
            Outcome::Response { .. } => "status",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::Overloaded => "overloaded",
        }
    }
}

/// An error with its causes ("connection refused" is a few levels down).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
