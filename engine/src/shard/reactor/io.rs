//! The reactor's I/O backend: readiness of the shard's sockets and the data
//! path (receive, send, half-close). The rest of the reactor reaches its
//! sockets only through [`Io`] and [`Socket`]; this file is what an io_uring
//! data path replaces.
//!
//! This one is readiness-based: one edge-triggered epoll set per shard,
//! whose descriptor is itself awaited through monoio (on io_uring, one
//! `PollAdd` stands for all of the shard's connections), then plain
//! non-blocking `recv`, `send` and `sendmsg` calls. A send hands bytes to
//! the kernel at once and says how many it took; the caller counts them
//! as sent at one place (`send::sent_to_kernel`), which a completion-based
//! backend would call when the send completes.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use bytes::BytesMut;

use crate::shard::conn::Conn;
use crate::sys;

/// Events taken per look at the epoll set.
pub(super) const EVENTS: usize = 256;
/// Bytes copied into one send at most (the staging buffer's size).
const GATHER_MAX: usize = 64 * 1024;

/// A connection's socket as the backend holds it; dropping it closes the
/// socket (and takes it out of the epoll set).
pub(super) struct Socket(OwnedFd);

impl Socket {
    pub(super) fn new(fd: OwnedFd) -> Self {
        Socket(fd)
    }
}

/// Which slab entry an event is for: the slot, and the generation of the
/// connection that had it when it was registered (a slot is reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) token: u32,
    pub(super) generation: u32,
}

impl Key {
    fn pack(self) -> u64 {
        self.token as u64 | (self.generation as u64) << 32
    }

    fn unpack(data: u64) -> Self {
        Key {
            token: (data & 0xffff_ffff) as u32,
            generation: (data >> 32) as u32,
        }
    }
}

/// One readiness event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    data: u64,
    bits: u32,
}

impl Event {
    pub(super) fn key(&self) -> Key {
        Key::unpack(self.data)
    }

    /// The socket takes data again (after a short send).
    pub(super) fn writable(&self) -> bool {
        self.bits & libc::EPOLLOUT as u32 != 0
    }

    /// Input, or the peer's end (read to find out which).
    pub(super) fn readable(&self) -> bool {
        self.bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }
}

/// A buffer for the events of one look at the set.
#[derive(Default)]
pub(super) struct Events(Vec<(u64, u32)>);

impl Events {
    pub(super) fn with_capacity() -> Self {
        Events(Vec::with_capacity(EVENTS))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.0.iter().map(|&(data, bits)| Event { data, bits })
    }
}

/// The shard's backend: its epoll set and its send staging buffer.
pub(super) struct Io {
    ep: OwnedFd,
    /// A connection's queued small frames are copied into it and leave in
    /// one contiguous send (one iovec).
    gather: RefCell<Vec<u8>>,
}

/// Awaits the epoll set's readability through the runtime.
pub(super) struct Readiness(monoio::net::udp::UdpSocket);

impl Readiness {
    /// Ready once the set has events (take them with [`Io::poll`]).
    pub(super) fn wait(&self) -> impl Future<Output = io::Result<()>> + '_ {
        self.0.readable(false)
    }
}

impl Io {
    pub(super) fn new() -> io::Result<Self> {
        Ok(Io {
            ep: sys::epoll_create()?,
            gather: RefCell::new(Vec::with_capacity(GATHER_MAX)),
        })
    }

    /// The set's descriptor as something the runtime can await.
    pub(super) fn readiness(&self) -> io::Result<Readiness> {
        let sock = std::net::UdpSocket::from(self.ep.try_clone()?);
        Ok(Readiness(monoio::net::udp::UdpSocket::from_std(sock)?))
    }

    /// Watches `sock` for input, output and the peer's end, edge-triggered;
    /// its events carry `key`.
    pub(super) fn register(&self, sock: &Socket, key: Key) -> io::Result<()> {
        sys::epoll_add(&self.ep, sock.0.as_raw_fd(), key.pack())
    }

    /// The events the set holds now, without waiting (at most [`EVENTS`]);
    /// returns how many.
    pub(super) fn poll(&self, events: &mut Events) -> io::Result<usize> {
        events.0.clear();
        sys::epoll_poll(&self.ep, &mut events.0, EVENTS)
    }

    /// Receives at most `max` bytes, appended to `buf`. `Ok(0)`: the peer
    /// closed.
    pub(super) fn recv(&self, sock: &Socket, buf: &mut BytesMut, max: usize) -> io::Result<usize> {
        sys::recv_into(sock.0.as_raw_fd(), buf, max)
    }

    /// One send of the front of `conn`'s queue; returns the bytes the
    /// kernel took (the caller consumes them from the queue). Several
    /// frames with a small one in front are copied into the staging buffer
    /// and leave as one contiguous send; otherwise up to `MAX_IOV` frames
    /// leave as one `sendmsg`, without a copy.
    pub(super) fn send_front(&self, sock: &Socket, conn: &Conn) -> io::Result<usize> {
        let fd = sock.0.as_raw_fd();
        if conn.should_gather() {
            let mut g = self.gather.borrow_mut();
            conn.gather_front(&mut g, GATHER_MAX);
            sys::send(fd, &g)
        } else {
            conn.with_front(usize::MAX, |iov| sys::send_vectored(fd, iov))
        }
    }

    /// Shuts the sending side (after the close frame went out).
    pub(super) fn shutdown_write(&self, sock: &Socket) -> io::Result<()> {
        sys::shutdown_write(sock.0.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_event_data() {
        for key in [
            Key {
                token: 0,
                generation: 1,
            },
            Key {
                token: u32::MAX - 1,
                generation: u32::MAX,
            },
            Key {
                token: 77,
                generation: 0x8000_0001,
            },
        ] {
            let ev = Event {
                data: key.pack(),
                bits: libc::EPOLLOUT as u32,
            };
            assert_eq!(ev.key(), key);
            assert!(ev.writable() && !ev.readable());
        }
        let hup = Event {
            data: 0,
            bits: libc::EPOLLRDHUP as u32,
        };
        assert!(hup.readable() && !hup.writable());
    }

    /// The whole backend on a real socket pair: readiness with its key,
    /// receive, a gathered send and a vectored one, the half-close, and
    /// the peer's end.
    #[test]
    fn a_registered_socket_reports_its_events_and_carries_a_queue() {
        use bytes::Bytes;
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;

        let io = Io::new().unwrap();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let sock = Socket::new(OwnedFd::from(ours));
        let key = Key {
            token: 5,
            generation: 9,
        };
        io.register(&sock, key).unwrap();
        let mut events = Events::with_capacity();
        let first = |io: &Io, events: &mut Events| {
            assert_eq!(io.poll(events).unwrap(), 1);
            events.iter().next().unwrap()
        };
        // Writable from the start; nothing to read.
        let ev = first(&io, &mut events);
        assert_eq!(ev.key(), key);
        assert!(ev.writable() && !ev.readable());
        assert_eq!(io.poll(&mut events).unwrap(), 0, "edge-triggered");

        peer.write_all(b"hello").unwrap();
        let ev = first(&io, &mut events);
        assert!(ev.readable() && ev.key() == key);
        let mut buf = BytesMut::new();
        assert_eq!(io.recv(&sock, &mut buf, 64).unwrap(), 5);
        assert_eq!(&buf[..], b"hello");
        let again = io.recv(&sock, &mut buf, 64).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::WouldBlock);

        // Small frames leave as one gathered copy, a big one by itself.
        let conn = Conn::new(1, 0);
        conn.send(Bytes::from_static(b"ab"));
        conn.send(Bytes::from_static(b"cd"));
        conn.send(Bytes::from(vec![b'x'; 70_000]));
        assert!(conn.should_gather());
        let mut wire = Vec::new();
        while conn.has_output() {
            let n = io.send_front(&sock, &conn).unwrap();
            conn.consume(n);
            let mut got = vec![0; n];
            peer.read_exact(&mut got).unwrap();
            wire.extend(got);
        }
        assert_eq!(wire.len(), 4 + 70_000);
        assert!(wire.starts_with(b"abcdxx") && wire[4..].iter().all(|&b| b == b'x'));

        // Half-closed: the peer reads the end; its own end is an event.
        io.shutdown_write(&sock).unwrap();
        assert_eq!(peer.read(&mut [0; 8]).unwrap(), 0);
        drop(peer);
        assert!(first(&io, &mut events).readable());
        assert_eq!(io.recv(&sock, &mut buf, 64).unwrap(), 0);
    }
}
