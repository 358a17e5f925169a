//! The TCP publisher port: a persistent, authenticated, pipelined connection
//! whose publishes are answered in order (docs/publisher-protocol.md).

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use monoio::net::TcpStream;
use serde_json::value::RawValue;

use super::ApiCtx;
use crate::hub::call::Call;
use crate::protocol::codes;
use crate::protocol::publisher::{self as wire, Frame};
use crate::shard::task::write_all;
use crate::sys;

const READ_CHUNK: usize = 64 * 1024;

/// An answer owed, in request order.
enum Answer {
    Published(Arc<str>, u64),
    Remote(Call<Result<(Arc<str>, u64), codes::ClientError>>),
    Pong,
    AuthOk,
    Error(u16, String),
}

pub async fn serve_publisher(ctx: Rc<ApiCtx>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut authed = false;
    let max = ctx.opts.publisher_max_frame;
    loop {
        let readable = monoio::time::timeout(ctx.opts.idle_timeout, stream.readable(false)).await;
        if !matches!(readable, Ok(Ok(()))) {
            return;
        }
        match sys::recv_into(fd, &mut buf, READ_CHUNK) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
        let mut answers = Vec::new();
        let mut fatal = false;
        loop {
            match wire::parse(&buf, max) {
                Ok(Some((frame, n))) => {
                    let answer = answer(&ctx, frame, &mut authed);
                    fatal = matches!(answer, Answer::Error(101, _));
                    answers.push(answer);
                    buf.advance(n);
                    if fatal {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    answers.push(Answer::Error(codes::BAD_REQUEST.code as u16, e.message()));
                    fatal = true;
                    break;
                }
            }
        }
        let mut out = BytesMut::with_capacity(answers.len() * 24);
        for a in answers {
            match a {
                Answer::Published(epoch, offset) => wire::put_published(&mut out, offset, &epoch),
                Answer::Remote(call) => match call.await {
                    Ok((epoch, offset)) => wire::put_published(&mut out, offset, &epoch),
                    Err(e) => wire::put_error(&mut out, e.code as u16, e.message),
                },
                Answer::Pong => wire::put_pong(&mut out),
                Answer::AuthOk => wire::put_auth_ok(&mut out),
                Answer::Error(code, msg) => wire::put_error(&mut out, code, &msg),
            }
        }
        if !out.is_empty() && write_all(&stream, &out).await.is_err() {
            return;
        }
        if fatal {
            let _ = sys::shutdown_write(fd);
            return;
        }
    }
}

fn answer(ctx: &ApiCtx, frame: Frame<'_>, authed: &mut bool) -> Answer {
    let unauthorized = || Answer::Error(codes::UNAUTHORIZED.code as u16, "unauthorized".into());
    match frame {
        Frame::Auth(key) => {
            let ok = match &ctx.opts.key {
                Some(k) => super::same_key(key, k.as_bytes()),
                None => ctx.opts.insecure,
            };
            if ok {
                *authed = true;
                Answer::AuthOk
            } else {
                unauthorized()
            }
        }
        _ if !*authed => unauthorized(),
        Frame::Ping => Answer::Pong,
        Frame::Publish { channel, data } => {
            let bad = |why: &str| Answer::Error(codes::BAD_REQUEST.code as u16, why.into());
            let Ok(channel) = std::str::from_utf8(channel) else {
                return bad("channel is not UTF-8");
            };
            if channel.is_empty() || channel.len() > ctx.max_channel_len {
                return bad("invalid channel name");
            }
            if serde_json::from_slice::<&RawValue>(data).is_err() {
                return bad("data is not one JSON value");
            }
            match ctx.hub.publish_here(channel, data) {
                Some((epoch, offset)) => Answer::Published(epoch, offset),
                None => {
                    let data = bytes::Bytes::copy_from_slice(data);
                    Answer::Remote(ctx.hub.publish_wait(channel.into(), data, None))
                }
            }
        }
    }
}
