//! One listening socket per shard on the shared port (SO_REUSEPORT): the kernel
//! spreads incoming connections over the shards by flow hash.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let socket = bound_reuseport(addr)?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// A socket bound to `addr` with SO_REUSEPORT and not listening: it holds
/// the port (a bind to port 0 picks a free one) without taking connections.
pub fn bound_reuseport(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}
