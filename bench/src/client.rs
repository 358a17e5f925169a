//! A minimal WebSocket client over a tokio `TcpStream`, on ringcast's own
//! codec: masked frames out (`frame::encode_masked`), unmasked frames in
//! (`Decoder` with `Role::Client`).
//!
//! Built for load: outgoing frames are appended to one buffer and written
//! with a single `write` per `flush`, so a burst costs one syscall; an idle
//! connection keeps no read buffer until the socket turns readable.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

use anyhow::{bail, Context};
use base64::Engine as _;
use bytes::BytesMut;
use ringcast::ws::frame::encode_masked;
use ringcast::ws::handshake::accept_key;
use ringcast::ws::{Decoder, DecoderConfig, Message, OpCode, Role};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::net::{self, Target};

/// Largest message the client accepts from a server.
const MAX_MESSAGE: usize = 64 << 20;
/// Longest HTTP response head accepted.
const MAX_HEAD: usize = 16 << 10;

pub struct WsClient {
    sock: Sock,
    wbuf: BytesMut,
    decoder: Decoder,
    mask: [u8; 4],
    /// The protobuf client protocol (`--transport protobuf`): commands go
    /// out as binary frames, replies come in as them (see `protobuf.rs`).
    pub protobuf: bool,
}

/// A TCP stream with its read buffer: what every client connection of the
/// bench reads through (WebSocket here, the HTTP transports in
/// `transport.rs`). The buffer holds no allocation while idle.
pub struct Sock {
    pub stream: TcpStream,
    pub rbuf: BytesMut,
    /// Reads go through recvmsg(2) and keep the kernel's receive timestamp
    /// (`rx_timestamps`).
    stamps: bool,
    /// The kernel's receive timestamp of the last data read (CLOCK_REALTIME
    /// ns; 0: none).
    rx_real_ns: u64,
}

/// Why a connection attempt failed: at the TCP level or during the upgrade.
#[derive(Debug)]
pub enum ConnectError {
    Tcp(io::Error),
    Upgrade(anyhow::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Tcp(e) => write!(f, "tcp connect: {e}"),
            ConnectError::Upgrade(e) => write!(f, "upgrade: {e:#}"),
        }
    }
}

fn decoder_config() -> DecoderConfig {
    DecoderConfig {
        role: Role::Client,
        max_frame: MAX_MESSAGE,
        max_message: MAX_MESSAGE,
        deflate: false,
    }
}

impl WsClient {
    /// TCP connect (from `src` when given) and the RFC 6455 upgrade.
    pub async fn connect(
        target: &Target,
        src: Option<IpAddr>,
        rng: &mut Rng,
    ) -> Result<WsClient, ConnectError> {
        let sock = Sock::connect(target, src)
            .await
            .map_err(ConnectError::Tcp)?;
        let mut c = WsClient {
            sock,
            wbuf: BytesMut::new(),
            decoder: Decoder::new(),
            mask: rng.next_u32().to_ne_bytes(),
            protobuf: false,
        };
        c.upgrade(target, rng)
            .await
            .map_err(ConnectError::Upgrade)?;
        Ok(c)
    }

    async fn upgrade(&mut self, target: &Target, rng: &mut Rng) -> anyhow::Result<()> {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&rng.next_u64().to_ne_bytes());
        key[8..].copy_from_slice(&rng.next_u64().to_ne_bytes());
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            target.path, target.host
        );
        self.sock.stream.write_all(req.as_bytes()).await?;
        let head = self.sock.read_head().await?;
        let (status, headers) = split_head(&head)?;
        if !status.starts_with("HTTP/1.1 101") {
            bail!("expected 101, got {status:?}");
        }
        let accept = header(headers, "sec-websocket-accept")
            .context("no Sec-WebSocket-Accept in the 101 response")?;
        if accept != accept_key(&key) {
            bail!("wrong Sec-WebSocket-Accept {accept:?}");
        }
        self.sock.shrink_idle();
        Ok(())
    }

    /// Appends a masked frame to the outgoing batch.
    pub fn queue(&mut self, opcode: OpCode, payload: &[u8]) {
        self.wbuf
            .extend_from_slice(&encode_masked(true, opcode, payload, self.mask));
    }

    /// Appends an already encoded (masked) frame to the outgoing batch.
    pub fn queue_encoded(&mut self, frame: &[u8]) {
        self.wbuf.extend_from_slice(frame);
    }

    /// The mask this connection uses, for frames encoded once and reused.
    pub fn mask(&self) -> [u8; 4] {
        self.mask
    }

    /// Writes the whole outgoing batch.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.sock.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Decodes the next complete message already buffered. Pings are
    /// answered (the pong is queued; the caller flushes). `Ok(None)`: read more.
    pub fn next_message(&mut self) -> anyhow::Result<Option<Message>> {
        let cfg = decoder_config();
        match self.decoder.decode(&mut self.sock.rbuf, &cfg) {
            Ok(Some(Message::Ping(p))) => {
                self.queue(OpCode::Pong, &p);
                Ok(Some(Message::Ping(p)))
            }
            Ok(m) => Ok(m),
            Err(e) => bail!("bad frame from server: {e:?}"),
        }
    }

    /// See [`Sock::rx_timestamps`].
    pub fn rx_timestamps(&mut self) -> io::Result<()> {
        self.sock.rx_timestamps()
    }

    /// See [`Sock::rx_mono_ns`].
    pub fn rx_mono_ns(&self) -> Option<u64> {
        self.sock.rx_mono_ns()
    }

    /// See [`Sock::read_some`].
    pub async fn read_some(&mut self, chunk: usize) -> io::Result<usize> {
        self.sock.read_some(chunk).await
    }

    /// Drops the read buffer's allocation when nothing is buffered, so an
    /// idle connection costs the client only its socket and this struct.
    pub fn shrink_idle(&mut self) {
        if !self.decoder.in_message() {
            self.sock.shrink_idle();
        }
    }

    /// Sends a close frame (1000) and drops the connection without waiting.
    pub async fn close(mut self) {
        self.queue(OpCode::Close, &1000u16.to_be_bytes());
        let _ = self.flush().await;
        let _ = self.sock.stream.shutdown().await;
    }

    /// See [`Sock::abort`].
    pub fn abort(self) {
        self.sock.abort()
    }

    /// Bytes buffered but not yet decoded (for tests).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.sock.rbuf.len()
    }
}

impl Sock {
    /// TCP connect to `target`, from `src` when given.
    pub async fn connect(target: &Target, src: Option<IpAddr>) -> io::Result<Sock> {
        Ok(Sock {
            stream: net::connect(target.addr, src).await?,
            rbuf: BytesMut::new(),
            stamps: false,
            rx_real_ns: 0,
        })
    }

    /// Asks the kernel to timestamp received data (SO_TIMESTAMPNS, software
    /// receive time): from then on `rx_mono_ns` says when the data of the
    /// last read reached the socket, as opposed to when the bench read it.
    pub fn rx_timestamps(&mut self) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option of the size we pass.
        let r = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        self.stamps = true;
        Ok(())
    }

    /// When the data of the last read reached the socket (CLOCK_MONOTONIC
    /// ns), with `rx_timestamps` on. For TCP the kernel reports the
    /// timestamp of the last segment the read took.
    pub fn rx_mono_ns(&self) -> Option<u64> {
        (self.rx_real_ns != 0)
            .then(|| (self.rx_real_ns as i64 - crate::stats::realtime_offset_ns()) as u64)
    }

    /// Waits until the socket is readable, then reads what is there. Returns
    /// the bytes read; 0 means the server closed the connection.
    pub async fn read_some(&mut self, chunk: usize) -> io::Result<usize> {
        loop {
            self.stream.readable().await?;
            if self.rbuf.capacity() - self.rbuf.len() < chunk / 2 {
                self.rbuf.reserve(chunk);
            }
            let r = if self.stamps {
                let (fd, buf, stamp) = (
                    self.stream.as_raw_fd(),
                    &mut self.rbuf,
                    &mut self.rx_real_ns,
                );
                self.stream
                    .try_io(Interest::READABLE, || recv_stamped(fd, buf, stamp))
            } else {
                self.stream.try_read_buf(&mut self.rbuf)
            };
            match r {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until a whole HTTP response head is buffered and takes it off
    /// the buffer (what follows stays).
    pub async fn read_head(&mut self) -> anyhow::Result<BytesMut> {
        let head_len = loop {
            if let Some(i) = find(&self.rbuf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.rbuf.len() > MAX_HEAD {
                bail!("response head longer than {MAX_HEAD} bytes");
            }
            if self.read_some(4096).await? == 0 {
                bail!("connection closed before the response head");
            }
        };
        Ok(self.rbuf.split_to(head_len))
    }

    /// Gives the read buffer's allocation back when nothing is buffered:
    /// an idle connection holds none.
    pub fn shrink_idle(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
    }

    /// Drops the connection abruptly: no goodbye, and a zero linger so
    /// the kernel answers with a reset (a client that vanished). Leaves no
    /// TIME_WAIT on the bench's side.
    pub fn abort(self) {
        // A zero linger never blocks on drop (tokio's deprecation is about
        // a non-zero one): the socket is reset at once.
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(std::time::Duration::ZERO));
    }
}

/// A response head's status line and header lines.
pub fn split_head(head: &[u8]) -> anyhow::Result<(&str, &str)> {
    let head = std::str::from_utf8(head).context("response head is not UTF-8")?;
    Ok(head.split_once("\r\n").unwrap_or((head, "")))
}

/// The value of header `name` (case-insensitive) in `headers`.
pub fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// recvmsg(2) into `buf`'s spare capacity; a receive timestamp in the
/// control data goes to `stamp` (CLOCK_REALTIME ns).
fn recv_stamped(fd: RawFd, buf: &mut BytesMut, stamp: &mut u64) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // Room for one SCM_TIMESTAMPNS (a timespec), u64-aligned.
    let mut control = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: the iovec covers `spare`, writable memory owned by `buf`; the
    // control buffer is ours and its length is given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    // SAFETY: CMSG_FIRSTHDR/NXTHDR walk the control data the kernel wrote,
    // within msg_controllen; a timestamp cmsg carries one timespec.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                *stamp = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// splitmix64: masks, keys and jitter. Not for anything secret.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn from_clock(salt: u64) -> Rng {
        Rng::new(crate::stats::mono_ns() ^ salt.rotate_left(32) ^ std::process::id() as u64)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast::ws::frame::encode;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A tiny in-test server: answers the upgrade, sends a ping and a text
    /// frame, then expects the pong and echoes one masked frame back.
    #[tokio::test]
    async fn handshake_ping_and_messages() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while find(&got, b"\r\n\r\n").is_none() {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8(got).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .trim()
                .to_string();
            let resp = ringcast::ws::handshake::switching_protocols(&key, None, "");
            s.write_all(&resp).await.unwrap();
            s.write_all(&encode(OpCode::Ping, b"p")).await.unwrap();
            s.write_all(&encode(OpCode::Text, b"hello")).await.unwrap();
            // The pong and the client's text frame arrive masked.
            let mut rb = BytesMut::new();
            let mut dec = Decoder::new();
            let mut msgs = Vec::new();
            while msgs.len() < 2 {
                let n = s.read_buf(&mut rb).await.unwrap();
                assert!(n > 0);
                while let Some(m) = dec
                    .decode(&mut rb, &DecoderConfig::server(1 << 20))
                    .unwrap()
                {
                    msgs.push(m);
                }
            }
            msgs
        });
        let target = Target::parse(&format!("ws://{addr}/x")).unwrap();
        let mut rng = Rng::new(1);
        let mut c = WsClient::connect(&target, None, &mut rng).await.unwrap();
        // Frames may have come with the 101: decode what is there first.
        let mut got = Vec::new();
        loop {
            while let Some(m) = c.next_message().unwrap() {
                got.push(m);
            }
            if got.len() >= 2 {
                break;
            }
            assert!(c.read_some(4096).await.unwrap() > 0);
        }
        assert_eq!(got[0], Message::Ping(bytes::Bytes::from_static(b"p")));
        assert_eq!(got[1], Message::Text(bytes::Bytes::from_static(b"hello")));
        assert_eq!(c.buffered(), 0);
        c.queue(OpCode::Text, b"back");
        c.flush().await.unwrap();
        let msgs = server.await.unwrap();
        assert_eq!(msgs[0], Message::Pong(bytes::Bytes::from_static(b"p")));
        assert_eq!(msgs[1], Message::Text(bytes::Bytes::from_static(b"back")));
    }
}
