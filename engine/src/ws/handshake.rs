//! The HTTP/1.1 upgrade (RFC 6455 §4.2). Parses with `httparse`, validates,
//! and renders the 101 or the error response. No I/O.

use base64::Engine as _;
use sha1::{Digest, Sha1};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADERS: usize = 48;

/// A validated upgrade request: what the server keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// Request target without the query string.
    pub path: String,
    /// The query string, without `?`, if any.
    pub query: Option<String>,
    pub key: String,
    /// `Sec-WebSocket-Protocol` values offered, in order.
    pub protocols: Vec<String>,
    pub origin: Option<String>,
    /// `X-Forwarded-For`, `X-Real-IP` as sent (a proxy's word; not trusted by default).
    pub forwarded_for: Option<String>,
    /// `Sec-WebSocket-Extensions` header values, as sent.
    pub extensions: Vec<String>,
    /// The headers the service asked to keep (`parse_request_keeping`),
    /// names lowercase.
    pub kept: Vec<(String, String)>,
}

/// Why a request is refused, with the HTTP status it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Headers exceed the configured bound (431).
    TooLarge,
    /// Not a parseable HTTP/1.1 request (400).
    Malformed,
    /// Not GET (405).
    MethodNotAllowed,
    /// A plain HTTP request, not an upgrade (426 with `Upgrade: websocket`).
    NotUpgrade,
    /// `Sec-WebSocket-Version` other than 13 (426 with the supported version).
    BadVersion,
    /// Missing or malformed `Sec-WebSocket-Key` (400).
    BadKey,
    /// The path is not served here (404).
    NotFound,
    /// The page's `Origin` is not among the allowed ones (403).
    Forbidden,
    /// An application backend said no (403).
    Denied,
    /// The application backend that decides could not be asked (502).
    BadGateway,
}

impl HandshakeError {
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HandshakeError::TooLarge => (431, "Request Header Fields Too Large"),
            HandshakeError::Malformed | HandshakeError::BadKey => (400, "Bad Request"),
            HandshakeError::MethodNotAllowed => (405, "Method Not Allowed"),
            HandshakeError::NotUpgrade | HandshakeError::BadVersion => (426, "Upgrade Required"),
            HandshakeError::NotFound => (404, "Not Found"),
            HandshakeError::Forbidden | HandshakeError::Denied => (403, "Forbidden"),
            HandshakeError::BadGateway => (502, "Bad Gateway"),
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::TooLarge => "request headers too large",
            HandshakeError::Malformed => "malformed HTTP request",
            HandshakeError::MethodNotAllowed => "WebSocket upgrade requires GET",
            HandshakeError::NotUpgrade => "expected a WebSocket upgrade request",
            HandshakeError::BadVersion => "unsupported Sec-WebSocket-Version (supported: 13)",
            HandshakeError::BadKey => "missing or invalid Sec-WebSocket-Key",
            HandshakeError::NotFound => "no WebSocket endpoint at this path",
            HandshakeError::Forbidden => "origin not allowed",
            HandshakeError::Denied => "forbidden",
            HandshakeError::BadGateway => "bad gateway",
        }
    }

    /// The full HTTP response: status line, headers, a one-line reason.
    pub fn response(&self) -> Vec<u8> {
        let (status, text) = self.status();
        let extra = match self {
            HandshakeError::BadVersion => "Sec-WebSocket-Version: 13\r\n",
            HandshakeError::NotUpgrade => "Upgrade: websocket\r\nConnection: Upgrade\r\n",
            _ => "",
        };
        plain_response(status, text, extra, self.reason())
    }
}

/// A small `text/plain` response that closes the connection.
pub fn plain_response(status: u16, text: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {text}\r\n{extra_headers}Content-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
        body.len() + 1
    )
    .into_bytes()
}

/// Parses an upgrade request from the start of `buf`. `Ok(None)`: incomplete
/// (and under `max_len`); `Ok(Some((req, n)))`: `n` bytes were the request.
pub fn parse_request(
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(UpgradeRequest, usize)>, HandshakeError> {
    parse_request_keeping(buf, max_len, &[])
}

/// `parse_request`, also keeping the headers named in `keep` (lowercase)
/// in `UpgradeRequest::kept`.
pub fn parse_request_keeping(
    buf: &[u8],
    max_len: usize,
    keep: &[String],
) -> Result<Option<(UpgradeRequest, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max_len {
                Err(HandshakeError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooLarge),
        Err(_) => return Err(HandshakeError::Malformed),
    };
    if n > max_len {
        return Err(HandshakeError::TooLarge);
    }
    if req.version != Some(1) {
        return Err(HandshakeError::Malformed);
    }
    if req.method != Some("GET") {
        return Err(HandshakeError::MethodNotAllowed);
    }
    let target = req.path.unwrap_or("/");

    let mut upgrade = false;
    let mut connection_upgrade = false;
    let mut version = None;
    let mut key = None;
    let mut protocols = Vec::new();
    let mut origin = None;
    let mut forwarded_for = None;
    let mut extensions = Vec::new();
    let mut kept = Vec::new();
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| HandshakeError::Malformed)?;
        let name = h.name;
        if keep.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            kept.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection_upgrade |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = Some(value.trim());
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value.trim());
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            protocols.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from),
            );
        } else if name.eq_ignore_ascii_case("origin") {
            origin = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            extensions.push(value.to_string());
        } else if name.eq_ignore_ascii_case("x-forwarded-for")
            || (forwarded_for.is_none() && name.eq_ignore_ascii_case("x-real-ip"))
        {
            forwarded_for = Some(value.to_string());
        }
    }
    if !upgrade || !connection_upgrade {
        return Err(HandshakeError::NotUpgrade);
    }
    if version != Some("13") {
        return Err(HandshakeError::BadVersion);
    }
    let key = key.ok_or(HandshakeError::BadKey)?;
    if !valid_key(key) {
        return Err(HandshakeError::BadKey);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    Ok(Some((
        UpgradeRequest {
            path: path.to_string(),
            query,
            key: key.to_string(),
            protocols,
            origin,
            forwarded_for,
            extensions,
            kept,
        },
        n,
    )))
}

/// The method and path of a complete plain HTTP request head in `buf` (one
/// `parse_request` refused as not an upgrade), for a service that also
/// serves plain HTTP on the upgrade port.
pub fn plain_target(buf: &[u8]) -> Option<(String, String)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let target = req.path?;
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    Some((req.method?.to_string(), path.to_string()))
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A key is 16 random bytes, base64-encoded: 24 characters.
fn valid_key(key: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|k| k.len() == 16)
}

/// `Sec-WebSocket-Accept` for a key.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The 101 response. `extra_headers` are complete `Name: value\r\n` lines.
pub fn switching_protocols(key: &str, protocol: Option<&str>, extra_headers: &str) -> Vec<u8> {
    let proto = match protocol {
        Some(p) => format!("Sec-WebSocket-Protocol: {p}\r\n"),
        None => String::new(),
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{proto}{extra_headers}\r\n",
        accept_key(key)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "GET /connection/websocket?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\n\r\n";

    #[test]
    fn rfc_example_accept_key() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn parses_valid_request_and_every_prefix_is_incomplete() {
        let (req, n) = parse_request(GOOD.as_bytes(), 8192).unwrap().unwrap();
        assert_eq!(n, GOOD.len());
        assert_eq!(req.path, "/connection/websocket");
        assert_eq!(req.query.as_deref(), Some("x=1"));
        assert_eq!(req.protocols, vec!["a", "b"]);
        for cut in 0..GOOD.len() {
            assert_eq!(parse_request(&GOOD.as_bytes()[..cut], 8192), Ok(None));
        }
    }

    #[test]
    fn plain_requests_show_method_and_path() {
        let post = b"POST /api/publish?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            plain_target(post),
            Some(("POST".into(), "/api/publish".into()))
        );
        assert_eq!(
            parse_request(post, 8192),
            Err(HandshakeError::MethodNotAllowed)
        );
        // An incomplete head: nothing yet.
        assert_eq!(plain_target(&post[..20]), None);
        assert_eq!(plain_target(b"\x00junk\r\n\r\n"), None);
    }

    #[test]
    fn rejections() {
        let cases = [
            (
                GOOD.replace("GET", "POST"),
                HandshakeError::MethodNotAllowed,
            ),
            (
                GOOD.replace("Upgrade: websocket\r\n", ""),
                HandshakeError::NotUpgrade,
            ),
            (
                GOOD.replace("keep-alive, Upgrade", "keep-alive"),
                HandshakeError::NotUpgrade,
            ),
            (
                GOOD.replace("Version: 13", "Version: 8"),
                HandshakeError::BadVersion,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
                HandshakeError::BadKey,
            ),
            (
                GOOD.replace("HTTP/1.1", "HTTP/1.0"),
                HandshakeError::Malformed,
            ),
            (
                "\x16\x03\x01junk\r\n\r\n".to_string(),
                HandshakeError::Malformed,
            ),
        ];
        for (req, want) in cases {
            assert_eq!(parse_request(req.as_bytes(), 8192), Err(want), "{req:?}");
        }
        assert_eq!(
            parse_request(GOOD.as_bytes(), 64),
            Err(HandshakeError::TooLarge)
        );
        let endless = format!("GET / HTTP/1.1\r\n{}", "X-A: b\r\n".repeat(100));
        assert_eq!(
            parse_request(endless.as_bytes(), 512),
            Err(HandshakeError::TooLarge)
        );
    }

    #[test]
    fn bad_version_response_names_supported_version() {
        let r = String::from_utf8(HandshakeError::BadVersion.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 426 "));
        assert!(r.contains("Sec-WebSocket-Version: 13\r\n"));
    }
}
