//! Publishing through the server API: `POST <api>/publish` with
//! `{"channel":…,"data":…}` and `X-API-Key`, on one keep-alive connection
//! with requests pipelined. Responses come back in request order; a 200
//! whose body is `{"result":…}` acknowledges, anything else refuses.

use std::io::Write as _;

use bytes::Buf;
use serde::Serialize;

use super::{Ack, PublishConfig, Stream};
use crate::net::Target;
use crate::worker::Hand;

pub struct HttpPublisher {
    s: Stream,
    head: Vec<u8>,
    body: Vec<u8>,
    next_id: u64,
    next_ack: u64,
}

/// `POST <base path>/<method>` request head up to the blank line, without
/// `Content-Length`.
fn request_head(target: &Target, method: &str, key: Option<&str>) -> Vec<u8> {
    let mut head = Vec::new();
    let _ = write!(
        head,
        "POST {}/{method} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
        target.path.trim_end_matches('/'),
        target.host
    );
    if let Some(k) = key {
        let _ = write!(head, "X-API-Key: {k}\r\n");
    }
    head
}

/// Appends a whole request: head, `Content-Length`, body.
pub fn put_request(out: &mut Vec<u8>, head: &[u8], body: &[u8]) {
    out.extend_from_slice(head);
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

/// A 200 whose body is `{"result":…}`: what the API says on success.
fn is_result(status: u16, body: &[u8]) -> bool {
    status == 200 && body.starts_with(b"{\"result\"")
}

impl HttpPublisher {
    pub async fn open(
        h: &mut Hand,
        index: usize,
        target: &Target,
        cfg: &PublishConfig,
    ) -> Option<HttpPublisher> {
        let t = target.clone();
        let s = h
            .establish(index, move |src, _| async move {
                Stream::connect(&t, src).await
            })
            .await?;
        Some(HttpPublisher {
            s,
            head: request_head(target, "publish", cfg.api_key.as_deref()),
            body: Vec::with_capacity(256),
            next_id: 1,
            next_ack: 1,
        })
    }

    pub fn queue(&mut self, channel: &str, data: &[u8]) -> u64 {
        self.body.clear();
        let ch = serde_json::to_string(channel).expect("json");
        let _ = write!(self.body, "{{\"channel\":{ch},\"data\":");
        self.body.extend_from_slice(data);
        self.body.push(b'}');
        put_request(&mut self.s.wbuf, &self.head, &self.body);
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.s.flush().await
    }

    pub async fn read_acks(&mut self, acks: &mut Vec<Ack>) -> anyhow::Result<()> {
        self.s.read().await?;
        while let Some((status, body)) = parse_response(&mut self.s.rbuf)? {
            acks.push(Ack {
                id: self.next_ack,
                ok: is_result(status, &body),
            });
            self.next_ack += 1;
        }
        Ok(())
    }

    pub async fn close(self) {
        self.s.close().await
    }
}

/// The server API at a base URL (`http://host:port/api`) with its key, for
/// one-off calls (the storm's `disconnect`).
#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub url: String,
    #[serde(skip)]
    target: Target,
    #[serde(skip)]
    key: Option<String>,
}

impl Api {
    pub fn new(url: &str, key: Option<String>) -> anyhow::Result<Api> {
        let url = url.trim_end_matches('/').to_string();
        Ok(Api {
            target: Target::parse_scheme(&url, "http")?,
            url,
            key,
        })
    }

    /// `POST <url>/<method>` with a JSON body on a connection of its own;
    /// the `result` body, or an error naming the status and body.
    pub async fn call(&self, method: &str, body: &[u8]) -> anyhow::Result<bytes::Bytes> {
        let head = request_head(&self.target, method, self.key.as_deref());
        let mut req = Vec::new();
        put_request(&mut req, &head, body);
        let (status, body) = exchange(&self.target, None, &req).await?;
        if !is_result(status, &body) {
            anyhow::bail!(
                "API {method}: HTTP {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
}

/// One request (whole, as bytes) on a connection of its own, from `src`
/// on loopback: the response's status and body.
pub async fn exchange(
    target: &Target,
    src: Option<std::net::IpAddr>,
    request: &[u8],
) -> anyhow::Result<(u16, bytes::Bytes)> {
    let mut s = Stream::connect(target, src).await?;
    s.wbuf.extend_from_slice(request);
    s.flush().await?;
    let r = loop {
        if let Some(r) = parse_response(&mut s.rbuf)? {
            break r;
        }
        s.read().await?;
    };
    s.close().await;
    Ok(r)
}

/// Takes one complete response off the front of `buf`: (status, body).
/// `Ok(None)`: incomplete.
fn parse_response(buf: &mut bytes::BytesMut) -> anyhow::Result<Option<(u16, bytes::Bytes)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 16 << 10 {
            anyhow::bail!("HTTP response head too long");
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end])?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad HTTP status line"))?;
    let mut len = 0usize;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse()?;
            } else if k.trim().eq_ignore_ascii_case("transfer-encoding") {
                anyhow::bail!("chunked API responses are not supported");
            }
        }
    }
    if buf.len() < end + 4 + len {
        return Ok(None);
    }
    buf.advance(end + 4);
    Ok(Some((status, buf.split_to(len).freeze())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_responses() {
        let mut b = bytes::BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{\"result\":{\"offset\":1}}\n\
               HTTP/1.1 200 OK\r\ncontent-length: 38\r\n\r\n{\"error\":{\"code\":102,\"message\":\"x\"}}\n\
               HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\nHTTP/1.1 2"[..],
        );
        let mut next = || {
            let (status, body) = parse_response(&mut b).unwrap().unwrap();
            (status, is_result(status, &body))
        };
        assert_eq!(next(), (200, true));
        assert_eq!(next(), (200, false));
        assert_eq!(next(), (401, false));
        assert_eq!(parse_response(&mut b).unwrap(), None);
        assert_eq!(&b[..], b"HTTP/1.1 2");
    }
}
