//! Minimal HTTP/1.1 for the plain-HTTP endpoints (the server API, the HTTP
//! transports): requests parsed with `httparse` (Content-Length bodies,
//! keep-alive, pipelining), responses written whole. No I/O.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const MAX_HEADERS: usize = 32;
pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// What follows `?` in the target, undecoded.
    pub query: Option<String>,
    /// `Origin` (a browser's page).
    pub origin: Option<String>,
    pub content_type: Option<String>,
    /// `Access-Control-Request-Headers` of a CORS preflight.
    pub cors_headers: Option<String>,
    pub api_key: Option<String>,
    /// `X-Centrifugo-Error-Mode: transport`.
    pub transport_errors: bool,
    pub keep_alive: bool,
    /// The headers asked for by `parse_keeping`, names lowercase.
    pub kept: Vec<(String, String)>,
    pub body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    Malformed,
    HeadTooLarge,
    BodyTooLarge,
    /// Chunked or otherwise unsized bodies.
    LengthRequired,
}

impl HttpError {
    pub fn response(&self) -> Bytes {
        let (status, text) = match self {
            HttpError::Malformed => (400, "malformed request"),
            HttpError::HeadTooLarge => (431, "request headers too large"),
            HttpError::BodyTooLarge => (413, "request body too large"),
            HttpError::LengthRequired => (411, "Content-Length required"),
        };
        response(status, "text/plain", text.as_bytes(), false)
    }
}

/// Parses one request from the front of `buf`, consuming it. `Ok(None)`: need more.
pub fn parse(buf: &mut BytesMut, max_body: usize) -> Result<Option<Request>, HttpError> {
    parse_keeping(buf, max_body, &[])
}

/// `parse`, also keeping the headers named in `keep` (lowercase) in
/// `Request::kept`.
pub fn parse_keeping(
    buf: &mut BytesMut,
    max_body: usize,
    keep: &[String],
) -> Result<Option<Request>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(HttpError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(_) => return Err(HttpError::Malformed),
    };
    let http11 = req.version == Some(1);
    let mut keep_alive = http11;
    let mut content_length = 0usize;
    let mut api_key = None;
    let mut transport_errors = false;
    let (mut origin, mut content_type, mut cors_headers) = (None, None, None);
    let mut kept = Vec::new();
    for h in req.headers.iter() {
        let name = h.name;
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::Malformed)?
            .trim();
        if keep.iter().any(|k| name.eq_ignore_ascii_case(k)) {
            kept.push((name.to_ascii_lowercase(), value.to_string()));
        }
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| HttpError::Malformed)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::LengthRequired);
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("x-api-key") {
            api_key = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("authorization") {
            if let Some(k) = value
                .strip_prefix("apikey ")
                .or_else(|| value.strip_prefix("Apikey "))
            {
                api_key = Some(k.trim().to_string());
            }
        } else if name.eq_ignore_ascii_case("x-centrifugo-error-mode") {
            transport_errors = value.eq_ignore_ascii_case("transport");
        } else if name.eq_ignore_ascii_case("origin") {
            origin = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("access-control-request-headers") {
            cors_headers = Some(value.to_string());
        }
    }
    if content_length > max_body {
        return Err(HttpError::BodyTooLarge);
    }
    if buf.len() < head_len + content_length {
        return Ok(None);
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    buf.advance(head_len);
    let body = buf.split_to(content_length).freeze();
    Ok(Some(Request {
        method,
        path,
        query,
        origin,
        content_type,
        cors_headers,
        api_key,
        transport_errors,
        keep_alive,
        kept,
        body,
    }))
}

/// A complete response.
pub fn response(status: u16, content_type: &str, body: &[u8], keep_alive: bool) -> Bytes {
    response_with(status, content_type, "", body, keep_alive)
}

/// A complete response with extra `Name: value\r\n` header lines.
pub fn response_with(
    status: u16,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
    keep_alive: bool,
) -> Bytes {
    let mut out = BytesMut::with_capacity(128 + body.len());
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.to_string().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason(status).as_bytes());
    if status != 204 {
        // A 204 has no body, and says nothing about one.
        out.put_slice(b"\r\nContent-Type: ");
        out.put_slice(content_type.as_bytes());
        out.put_slice(b"\r\nContent-Length: ");
        out.put_slice(body.len().to_string().as_bytes());
    }
    if !extra_headers.is_empty() {
        out.put_slice(b"\r\n");
        out.put_slice(extra_headers.trim_end().as_bytes());
    }
    if !keep_alive {
        out.put_slice(b"\r\nConnection: close");
    }
    out.put_slice(b"\r\n\r\n");
    out.put_slice(body);
    out.freeze()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_requests() {
        let mut buf = BytesMut::from(
            &b"POST /api/publish HTTP/1.1\r\nX-API-Key: k\r\nContent-Length: 2\r\n\r\n{}\
               POST /api/info HTTP/1.1\r\nAuthorization: apikey k2\r\nConnection: close\r\n\
               Content-Length: 0\r\n\r\nGET /hea"[..],
        );
        let a = parse(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(
            (a.path.as_str(), a.api_key.as_deref(), &a.body[..]),
            ("/api/publish", Some("k"), &b"{}"[..])
        );
        assert!(a.keep_alive);
        let b = parse(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(b.api_key.as_deref(), Some("k2"));
        assert!(!b.keep_alive);
        assert_eq!(parse(&mut buf, 1024).unwrap(), None);
        assert_eq!(&buf[..], b"GET /hea");
    }

    #[test]
    fn body_not_yet_complete_consumes_nothing() {
        let raw = b"POST /api/publish HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345";
        let mut buf = BytesMut::from(&raw[..]);
        assert_eq!(parse(&mut buf, 1024).unwrap(), None);
        assert_eq!(buf.len(), raw.len());
    }

    #[test]
    fn limits_and_junk() {
        let mut big = BytesMut::from(&b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"[..]);
        assert_eq!(parse(&mut big, 1024), Err(HttpError::BodyTooLarge));
        let mut chunked =
            BytesMut::from(&b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
        assert_eq!(parse(&mut chunked, 1024), Err(HttpError::LengthRequired));
        let mut junk = BytesMut::from(&b"\x16\x03\x01\x00\xa5\x01\r\n\r\n"[..]);
        assert_eq!(parse(&mut junk, 1024), Err(HttpError::Malformed));
    }
}
