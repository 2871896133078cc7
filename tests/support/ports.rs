//! Loopback ports for peers and agents.

use std::net::{TcpListener, UdpSocket};

/// A TCP port nobody listens on right now (another test may take it before the caller binds:
/// a peer that must get it back after a restart wants [`reserve_port`]).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A UDP port nobody listens on right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free loopback UDP port")
        .port()
}

/// A loopback port kept for a peer that a test stops and starts again on it. Between a stop
/// and the next start a port from [`free_port`] is free for anyone: another test's
/// `free_port()` or an outgoing connection's source port can take it, and the restarted peer
/// then cannot bind. This holds a bound, never listening socket with SO_REUSEADDR for the
/// test's whole life: nothing else can bind the port, a connect to it is refused as to a
/// stopped server, and the peer (redis-server, mosquitto and asyncio's servers all bind with
/// SO_REUSEADDR) can still listen on it.
pub struct ReservedPort {
    _socket: std::os::fd::OwnedFd,
    pub port: u16,
}

pub fn reserve_port() -> ReservedPort {
    use rustix::net::{bind, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};
    // CLOEXEC: the peers and agents other tests start meanwhile must not inherit it.
    let socket = socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("a TCP socket");
    sockopt::set_socket_reuseaddr(&socket, true).expect("SO_REUSEADDR");
    let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
    bind(&socket, &any).expect("bind a free loopback port");
    let local = rustix::net::getsockname(&socket).expect("getsockname");
    let port = std::net::SocketAddrV4::try_from(local)
        .expect("an IPv4 address")
        .port();
    ReservedPort {
        _socket: socket,
        port,
    }
}
