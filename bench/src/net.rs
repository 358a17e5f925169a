//! Targets, source-address spreading and the fd limit.
//!
//! A TCP connection is a 4-tuple; towards one server `ip:port` a single
//! source address has only the ephemeral port range (~28 k ports here) to
//! offer. Linux answers on all of 127.0.0.0/8, so connection `i` binds to
//! `127.0.0.2 + i / conns_per_addr` with `IP_BIND_ADDRESS_NO_PORT`: the bind
//! fixes only the address and the kernel picks the port at `connect()`, per
//! destination, instead of reserving one port per socket up front.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

use anyhow::{bail, Context};
use tokio::net::{TcpSocket, TcpStream};

/// In `--url`'s path: replaced by the connection's index.
pub const CONN_INDEX: &str = "{i}";

/// Where the load goes: `ws://host:port/path`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host:` header value.
    pub host: String,
    /// Request target, starting with `/`.
    pub path: String,
}

impl Target {
    /// A `ws://host[:port]/path` URL.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        Target::parse_scheme(url, "ws")
    }

    /// A `<scheme>://host[:port]/path` URL (`ws`, `http`, `tcp`; port 80 by default).
    pub fn parse_scheme(url: &str, want: &str) -> anyhow::Result<Target> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme == want => rest,
            Some((scheme, _)) => bail!("unsupported scheme {scheme:?} in {url:?} (only {want}://)"),
            None => bail!("{url:?} is not a {want}:// URL"),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("no host in {url:?}");
        }
        let with_port = if authority.starts_with('[') {
            if authority.contains("]:") {
                authority.to_string()
            } else {
                format!("{authority}:80")
            }
        } else if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} resolves to nothing"))?;
        Ok(Target {
            addr,
            host: authority.to_string(),
            path: path.to_string(),
        })
    }

    /// This target for connection `index`: `{i}` in the path replaced by
    /// the index (`ws://127.0.0.1:7001/c{i}` → `/c0`, `/c1`, …: a path,
    /// hence an id, of its own per connection, as ws2api wants).
    pub fn for_conn(&self, index: usize) -> Target {
        Target {
            path: self.path.replace(CONN_INDEX, &index.to_string()),
            ..self.clone()
        }
    }

    /// Whether the path has `{i}` (see [`Target::for_conn`]).
    pub fn per_conn(&self) -> bool {
        self.path.contains(CONN_INDEX)
    }

    pub fn is_loopback_v4(&self) -> bool {
        matches!(self.addr.ip(), IpAddr::V4(v4) if v4.is_loopback())
    }
}

/// Which local address connection number `i` binds to.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    base: Option<Ipv4Addr>,
    per_addr: usize,
}

impl Spread {
    /// Spreading is on only for loopback IPv4 targets (every 127/8 address is
    /// local); elsewhere the kernel picks the source address as usual.
    pub fn new(
        target: &Target,
        base: Ipv4Addr,
        per_addr: usize,
        disabled: bool,
    ) -> anyhow::Result<Spread> {
        if disabled || !target.is_loopback_v4() {
            return Ok(Spread {
                base: None,
                per_addr: 1,
            });
        }
        if !base.is_loopback() {
            bail!("--source-base {base} is not in 127.0.0.0/8");
        }
        Ok(Spread {
            base: Some(base),
            per_addr: per_addr.max(1),
        })
    }

    /// Checks that `total` connections stay inside 127.0.0.0/8.
    pub fn check(&self, total: usize) -> anyhow::Result<()> {
        if let Some(base) = self.base {
            let last = u32::from(base) as u64 + ((total.max(1) - 1) / self.per_addr) as u64;
            if last > u32::from(Ipv4Addr::new(127, 255, 255, 254)) as u64 {
                bail!(
                    "{total} connections at {} per address run past 127.255.255.254",
                    self.per_addr
                );
            }
        }
        Ok(())
    }

    pub fn source(&self, index: usize) -> Option<IpAddr> {
        self.base.map(|b| {
            IpAddr::V4(Ipv4Addr::from(
                u32::from(b).wrapping_add((index / self.per_addr) as u32),
            ))
        })
    }

    /// Number of distinct source addresses `total` connections use.
    pub fn addresses(&self, total: usize) -> usize {
        match self.base {
            Some(_) => total.div_ceil(self.per_addr),
            None => 0,
        }
    }
}

/// Opens a TCP connection to `dst`, from `src` when given, with
/// `TCP_NODELAY` (a load generator batches by itself).
pub async fn connect(dst: SocketAddr, src: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if dst.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = src {
        bind_address_no_port(&socket)?;
        socket.bind(SocketAddr::new(src, 0))?;
    }
    socket.set_nodelay(true)?;
    socket.connect(dst).await
}

fn bind_address_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd, a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit
/// now in force.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// File descriptors a process keeps for itself (stdio, runtime, pipes).
pub const FD_RESERVE: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("ws://127.0.0.1:8000/connection/websocket").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(t.path, "/connection/websocket");
        assert_eq!(t.host, "127.0.0.1:8000");
        let t = Target::parse("ws://127.0.0.1:9002").unwrap();
        assert_eq!(t.path, "/");
        assert!(Target::parse("wss://x/").is_err());
        assert!(Target::parse("http://x/").is_err());
        let t = Target::parse_scheme("http://127.0.0.1:9000/api", "http").unwrap();
        assert_eq!(t.addr.port(), 9000);
        assert_eq!(t.path, "/api");
        let t = Target::parse("ws://127.0.0.1:7001/c{i}").unwrap();
        assert!(t.per_conn());
        assert_eq!(t.for_conn(42).path, "/c42");
        assert_eq!(t.for_conn(42).host, "127.0.0.1:7001");
        let t = Target::parse("ws://127.0.0.1:7001/same").unwrap();
        assert!(!t.per_conn());
        assert_eq!(t.for_conn(3).path, "/same");
    }

    #[test]
    fn spreads_over_loopback() {
        let t = Target::parse("ws://127.0.0.1:1/").unwrap();
        let s = Spread::new(&t, Ipv4Addr::new(127, 0, 0, 2), 20_000, false).unwrap();
        assert_eq!(s.source(0), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(s.source(19_999), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(s.source(20_000), Some("127.0.0.3".parse().unwrap()));
        assert_eq!(s.source(20_000 * 254), Some("127.0.1.0".parse().unwrap()));
        assert_eq!(s.addresses(40_001), 3);
        assert!(s.check(1_000_000).is_ok());
        let off = Spread::new(&t, Ipv4Addr::new(127, 0, 0, 2), 10, true).unwrap();
        assert_eq!(off.source(5), None);
    }
}
