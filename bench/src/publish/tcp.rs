//! Publishing over ringcast's TCP publisher protocol
//! (docs/publisher-protocol.md): frames `u32 BE length | u8 type | body`,
//! AUTH first, then pipelined PUBLISH frames answered in order by PUBLISHED
//! or ERROR.

use bytes::Buf;

use super::{Ack, PublishConfig, Stream};
use crate::net::Target;
use crate::worker::Hand;

const AUTH: u8 = 0x01;
const PUBLISH: u8 = 0x02;
const AUTH_OK: u8 = 0x81;
const PUBLISHED: u8 = 0x82;
const PONG: u8 = 0x83;
const ERROR: u8 = 0xE0;

pub struct TcpPublisher {
    s: Stream,
    next_id: u64,
    next_ack: u64,
}

fn put_frame(out: &mut Vec<u8>, kind: u8, parts: &[&[u8]]) {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(kind);
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// One frame off the front of `buf`: (type, body).
fn take_frame(buf: &mut bytes::BytesMut) -> anyhow::Result<Option<(u8, bytes::Bytes)>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > 16 << 20 {
        anyhow::bail!("bad publisher frame length {len}");
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    let kind = buf[0];
    buf.advance(1);
    Ok(Some((kind, buf.split_to(len - 1).freeze())))
}

fn error_text(body: &[u8]) -> String {
    if body.len() < 2 {
        return "ERROR".into();
    }
    let code = u16::from_be_bytes([body[0], body[1]]);
    format!("ERROR {code} {}", String::from_utf8_lossy(&body[2..]))
}

impl TcpPublisher {
    pub async fn open(
        h: &mut Hand,
        index: usize,
        target: &Target,
        cfg: &PublishConfig,
    ) -> Option<TcpPublisher> {
        let t = target.clone();
        let key = cfg.api_key.clone().unwrap_or_default();
        let s = h
            .establish(index, move |src, _| async move {
                let mut s = Stream::connect(&t, src).await?;
                put_frame(&mut s.wbuf, AUTH, &[key.as_bytes()]);
                s.flush().await?;
                loop {
                    if let Some((kind, body)) = take_frame(&mut s.rbuf)? {
                        match kind {
                            AUTH_OK => return Ok(s),
                            ERROR => anyhow::bail!("publisher auth refused: {}", error_text(&body)),
                            k => {
                                anyhow::bail!("unexpected publisher frame 0x{k:02x} before AUTH_OK")
                            }
                        }
                    }
                    s.read().await?;
                }
            })
            .await?;
        Some(TcpPublisher {
            s,
            next_id: 1,
            next_ack: 1,
        })
    }

    pub fn queue(&mut self, channel: &str, data: &[u8]) -> u64 {
        let ch = channel.as_bytes();
        put_frame(
            &mut self.s.wbuf,
            PUBLISH,
            &[&(ch.len() as u16).to_be_bytes(), ch, data],
        );
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.s.flush().await
    }

    pub async fn read_acks(&mut self, acks: &mut Vec<Ack>) -> anyhow::Result<()> {
        self.s.read().await?;
        while let Some((kind, _body)) = take_frame(&mut self.s.rbuf)? {
            let ok = match kind {
                PUBLISHED => true,
                ERROR => false,
                PONG => continue,
                k => anyhow::bail!("unexpected publisher frame 0x{k:02x}"),
            };
            acks.push(Ack {
                id: self.next_ack,
                ok,
            });
            self.next_ack += 1;
        }
        Ok(())
    }

    pub async fn close(self) {
        self.s.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        put_frame(&mut out, PUBLISH, &[&2u16.to_be_bytes(), b"ch", b"{}"]);
        assert_eq!(&out[..5], &[0, 0, 0, 7, PUBLISH]);
        put_frame(&mut out, PUBLISHED, &[&7u64.to_be_bytes(), &[1], b"e"]);
        let mut b = bytes::BytesMut::from(&out[..out.len() - 1]);
        let (k, body) = take_frame(&mut b).unwrap().unwrap();
        assert_eq!((k, &body[..]), (PUBLISH, &b"\x00\x02ch{}"[..]));
        assert_eq!(take_frame(&mut b).unwrap(), None);
        assert_eq!(
            error_text(b"\x00\x65unauthorized"),
            "ERROR 101 unauthorized"
        );
    }
}
