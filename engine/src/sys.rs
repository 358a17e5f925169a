//! Every direct OS call the engine makes lives here, each `unsafe` block with the
//! reason it holds. The rest of the crate is safe code.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use bytes::BytesMut;

/// Turns a libc return value into `io::Result`, reading `errno` on -1.
macro_rules! syscall {
    ($e:expr) => {{
        let r = $e;
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }};
}

/// Non-blocking `recv` into the spare capacity of `buf` (at most `max` bytes),
/// extending its length by what arrived. `Ok(0)` is end of stream.
pub fn recv_into(fd: RawFd, buf: &mut BytesMut, max: usize) -> io::Result<usize> {
    if buf.capacity() - buf.len() < max {
        buf.reserve(max);
    }
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: `spare` is writable memory of at least `want` bytes owned by `buf`;
    // recv(2) writes at most `want` bytes into it and does not retain the pointer.
    let n =
        syscall!(unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), want, libc::MSG_DONTWAIT) })?
            as usize;
    // SAFETY: recv(2) initialised exactly `n <= want` bytes after the old length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Non-blocking gather send of `bufs` in one syscall. Never raises SIGPIPE.
pub fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is a valid "no name, no control data" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec (documented guarantee on Unix).
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: msg points at `bufs.len()` valid iovecs that outlive the call;
    // sendmsg(2) only reads them.
    let n = syscall!(unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })?;
    Ok(n as usize)
}

/// Non-blocking send of one buffer.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    send_vectored(fd, &[IoSlice::new(buf)])
}

/// Half-closes the write side so a close frame is delivered before FIN, and the
/// peer's remaining data does not turn our close into a reset.
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown(2) on an fd we own; an invalid fd only yields EBADF.
    syscall!(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(|_| ())
}

/// Takes ownership of a descriptor handed over by `IntoRawFd`.
pub fn adopt_fd(raw: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor they own and no longer use (the result
    // of `into_raw_fd`), so exactly one owner closes it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// A new epoll instance (close-on-exec).
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1(2) returns a fresh descriptor we then own.
    let fd = syscall!(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    Ok(adopt_fd(fd))
}

/// Adds `fd` to `ep`, edge-triggered for input, output and peer hang-up, with
/// `token` as its event data.
pub fn epoll_add(ep: &OwnedFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: token,
    };
    // SAFETY: both descriptors are open; the kernel copies `ev` during the call.
    syscall!(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
        .map(|_| ())
}

/// Ready events without waiting: (token, event bits) into `out`.
pub fn epoll_poll(ep: &OwnedFd, out: &mut Vec<(u64, u32)>, max: usize) -> io::Result<usize> {
    let mut events: [libc::epoll_event; 256] = [libc::epoll_event { events: 0, u64: 0 }; 256];
    let max = max.min(events.len()) as libc::c_int;
    // SAFETY: `events` has room for `max` entries; timeout 0 never blocks.
    let n = syscall!(unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), max, 0) })?
        as usize;
    out.extend(events[..n].iter().map(|e| {
        let (token, bits) = (e.u64, e.events);
        (token, bits)
    }));
    Ok(n)
}

/// RLIMIT_NOFILE as (soft, hard).
// rlim_t is u64 on 64-bit Linux but not on every target.
#[allow(clippy::unnecessary_cast)]
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the struct we pass.
    syscall!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) })?;
    Ok((r.rlim_cur as u64, r.rlim_max as u64))
}

/// Sets the soft RLIMIT_NOFILE to `soft` (≤ hard), returning the new (soft, hard).
pub fn set_nofile_soft(soft: u64) -> io::Result<(u64, u64)> {
    let (_, hard) = nofile_limit()?;
    let r = libc::rlimit {
        rlim_cur: soft.min(hard) as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit(2) reads one rlimit from the struct we pass.
    syscall!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) })?;
    nofile_limit()
}

/// Puts the calling thread under the real-time policy SCHED_FIFO at
/// `priority` (1–99): it then runs whenever it is runnable, ahead of every
/// normal (SCHED_OTHER) thread on its core, and is preempted only by a
/// higher real-time priority — or by the kernel's real-time throttling
/// (`kernel.sched_rt_runtime_us`, 95 % of each second by default), which
/// keeps a busy one from taking the whole core. `SCHED_RESET_ON_FORK`:
/// processes it starts do not inherit the policy. Needs `CAP_SYS_NICE` or an
/// `RLIMIT_RTPRIO` of at least `priority`; otherwise `EPERM`.
pub fn set_realtime(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
    // SAFETY: sched_setscheduler(2) reads one sched_param from the struct we
    // pass; pid 0 is the calling thread.
    syscall!(unsafe { libc::sched_setscheduler(0, policy, &param) }).map(|_| ())
}

/// The calling thread's scheduling policy (without `SCHED_RESET_ON_FORK`)
/// and real-time priority (0 for the normal policies).
pub fn scheduling() -> io::Result<(i32, i32)> {
    // SAFETY: sched_getscheduler(2) takes a pid (0: the calling thread) and
    // touches no memory of ours.
    let policy = syscall!(unsafe { libc::sched_getscheduler(0) })?;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_getparam(2) writes one sched_param into the struct we pass.
    syscall!(unsafe { libc::sched_getparam(0, &mut param) })?;
    Ok((policy & !libc::SCHED_RESET_ON_FORK, param.sched_priority))
}

/// Grows this process's fd table to hold descriptors `0..n` now, so that
/// accepting connections later never grows it: the kernel grows it by
/// doubling, and in a process with more than one thread each growth waits
/// for an RCU grace period with the fd table's resize in progress, which
/// blocked a shard's `accept` (and every other fd allocation) for 5–20 ms
/// per doubling, ~8 times on the way to 10,000 connections (session 11,
/// docs/benchmarks.md). Duplicates a descriptor of `/dev/null` to the
/// lowest free number ≥ `n - 1` (never onto one in use) and closes it; the
/// table stays that big. Returns the table's size after, from
/// `/proc/self/status`.
pub fn reserve_fd_table(n: u64) -> io::Result<u64> {
    let null = std::fs::File::open("/dev/null")?;
    let top = libc::c_int::try_from(n.saturating_sub(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_DUPFD_CLOEXEC duplicates our own open descriptor to a new
    // number it picks (≥ `top`, unused); we own and close the result.
    let dup = syscall!(unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top) })?;
    drop(adopt_fd(dup));
    fd_table_size()
}

/// The size of this process's fd table (`FDSize` in `/proc/self/status`).
pub fn fd_table_size() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no FDSize in /proc/self/status"))
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(1))
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC in nanoseconds: one vDSO call, without the epoch
/// arithmetic of `Instant::elapsed` (the delivery-latency stamps read it
/// once per send).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Resident set size of this process in bytes, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let page = 4096u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// Returns the heap's free pages to the OS, wherever they are in it (glibc's
/// `malloc_trim(0)`: every arena, not only each heap's top). Whether any
/// memory was released. Elsewhere than glibc: nothing, `false`.
pub fn malloc_trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim(3) only takes the allocator's own locks and
        // madvises pages no allocation uses; it has no preconditions.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The wall clock in Unix seconds (token expiry, presence expiry shared
/// through Redis). 0 if the clock is before 1970.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    /// Whether this process may take a real-time priority: `CAP_SYS_NICE`
    /// (bit 23 of `CapEff`) or a non-zero `RLIMIT_RTPRIO`.
    fn may_take_realtime() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2) writes one rlimit into the struct we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_RTPRIO, &mut r) }, 0);
        eff & (1 << 23) != 0 || r.rlim_cur > 0
    }

    #[test]
    fn realtime_is_taken_by_the_calling_thread_alone() {
        let before = scheduling().unwrap();
        let in_thread = std::thread::spawn(|| (set_realtime(7), scheduling().unwrap()))
            .join()
            .unwrap();
        match in_thread {
            (Ok(()), now) => assert_eq!(now, (libc::SCHED_FIFO, 7)),
            (Err(e), now) => {
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                assert!(!may_take_realtime(), "refused although permitted: {e}");
                assert_eq!(now, before);
            }
        }
        // The thread that asked, not its process: this one is as it was.
        assert_eq!(scheduling().unwrap(), before);
        assert_eq!(before.0, libc::SCHED_OTHER);
    }

    #[test]
    fn recv_and_gather_send_over_a_socket_pair() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut buf = BytesMut::new();
        let err = recv_into(b.as_raw_fd(), &mut buf, 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        a.write_all(b"hello world").unwrap();
        assert_eq!(recv_into(b.as_raw_fd(), &mut buf, 5).unwrap(), 5);
        assert_eq!(recv_into(b.as_raw_fd(), &mut buf, 64).unwrap(), 6);
        assert_eq!(&buf[..], b"hello world");
        let n = send_vectored(b.as_raw_fd(), &[IoSlice::new(b"ab"), IoSlice::new(b"cd")]).unwrap();
        assert_eq!(n, 4);
        let mut got = [0u8; 4];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcd");
    }

    #[test]
    fn limits_and_process_figures() {
        let (soft, hard) = nofile_limit().unwrap();
        assert!(soft <= hard && soft > 0);
        // One more descriptor open: one more counted; closed: back. Other
        // tests run in parallel threads and open their own: some attempt
        // sees no one else's.
        let counted = (0..20).any(|_| {
            let before = open_fds();
            let f = std::fs::File::open("/proc/self/stat").unwrap();
            let opened = open_fds();
            drop(f);
            opened == before + 1 && open_fds() == before
        });
        assert!(counted, "open_fds does not follow an open and a close");
        assert!(rss_bytes() > 0);
    }

    #[test]
    fn the_fd_table_is_grown_ahead_and_nothing_stays_open() {
        let before = fd_table_size().unwrap();
        let want = (before * 4).min(nofile_limit().unwrap().0);
        assert!(want > before, "the fd limit leaves no room to grow");
        let after = reserve_fd_table(want).unwrap();
        assert!(after >= want, "FDSize {after} after reserving {want}");
        // The duplicate is closed again: nothing open at or above `want - 1`.
        let high = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .filter(|&fd| fd + 1 >= want)
            .count();
        assert_eq!(high, 0);
        // Asking for less than the table holds changes nothing.
        assert_eq!(reserve_fd_table(8).unwrap(), after);
    }

    #[test]
    fn malloc_trim_can_be_called_any_time() {
        let v: Vec<Vec<u8>> = (0..256).map(|_| vec![1u8; 16 * 1024]).collect();
        drop(v);
        let _ = malloc_trim();
        let _ = malloc_trim();
    }
}
