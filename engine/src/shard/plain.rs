//! Plain HTTP/1.1 connections on a shard (the API, ws2api's pushes):
//! keep-alive, pipelined requests answered in order, the answers of what
//! arrived together written together.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use monoio::net::TcpStream;

use super::task::write_all;
use crate::http::{self, Request};
use crate::sys;

/// Serves requests on `stream` (whose first bytes are in `buf`) with
/// `handle` until the peer closes, asks to, sends something that is not
/// HTTP, or stays quiet for `idle`.
pub async fn serve_requests<F, Fut>(
    stream: &TcpStream,
    mut buf: BytesMut,
    max_body: usize,
    idle: Duration,
    mut handle: F,
) where
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Bytes>,
{
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    loop {
        let mut out = BytesMut::new();
        let mut close = false;
        loop {
            match http::parse(&mut buf, max_body) {
                Ok(Some(req)) => {
                    let keep = req.keep_alive;
                    out.put_slice(&handle(req).await);
                    if !keep {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.put_slice(&e.response());
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() && write_all(stream, &out).await.is_err() {
            return;
        }
        if close {
            let _ = sys::shutdown_write(fd);
            return;
        }
        let readable = monoio::time::timeout(idle, stream.readable(false)).await;
        if !matches!(readable, Ok(Ok(()))) {
            return;
        }
        match sys::recv_into(fd, &mut buf, 64 * 1024) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
