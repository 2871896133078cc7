//! The receiving socket: UDP on the meter port with `SO_REUSEADDR` and `SO_REUSEPORT` (so
//! other tools on the box can listen too), joined to the group on one interface. Nothing
//! is ever sent on it.

use super::wire::GROUP;
use rustix::net::{self, AddressFamily, SocketFlags, SocketType};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;

/// Where to join the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// Unicast only: no group membership.
    None,
    /// On the interface of this name.
    Interface(String),
    /// On the interface that has this address.
    Address(Ipv4Addr),
    /// On the interface of the default route (read when the socket is opened).
    DefaultRoute,
}

/// The interface of the default IPv4 route in a `/proc/net/route` table: the `Destination
/// 00000000 Mask 00000000` route that is up, of the lowest metric.
pub fn default_route_interface(table: &str) -> Option<&str> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: heapless::Vec<&str, 11> = line.split_whitespace().take(11).collect();
            let (iface, dest, flags, metric, mask) = (f.first()?, f.get(1)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let up = u16::from_str_radix(flags, 16).ok()? & 0x1 != 0;
            (up && *dest == "00000000" && *mask == "00000000")
                .then(|| Some((metric.parse::<u32>().ok()?, *iface)))
                .flatten()
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, iface)| iface)
}

/// The interface name `join` resolves to, if it names one.
fn interface_name(join: &Join, procfs_root: &Path) -> Result<Option<String>, String> {
    match join {
        Join::Interface(name) => Ok(Some(name.clone())),
        Join::DefaultRoute => {
            let path = procfs_root.join("net/route");
            let table = std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            default_route_interface(&table)
                .map(|name| Some(name.to_string()))
                .ok_or_else(|| {
                    format!(
                        "no default route in {} to pick an interface from; set `interface` or `interface_ip`",
                        path.display()
                    )
                })
        }
        Join::None | Join::Address(_) => Ok(None),
    }
}

/// Opens the socket, bound to `0.0.0.0:port` (so unicast to any local address arrives too)
/// and joined as `join` says. Returns it with a description for logs.
pub fn open(port: u16, join: &Join, procfs_root: &Path) -> Result<(UdpSocket, String), String> {
    let fd = net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| format!("cannot create a UDP socket: {e}"))?;
    net::sockopt::set_socket_reuseaddr(&fd, true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    net::sockopt::set_socket_reuseport(&fd, true).map_err(|e| format!("SO_REUSEPORT: {e}"))?;
    net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .map_err(|e| format!("cannot listen on UDP port {port}: {e}"))?;
    let what = match (join, interface_name(join, procfs_root)?) {
        (_, Some(name)) => {
            let index = net::netdevice::name_to_index(&fd, &name)
                .map_err(|e| format!("interface `{name}`: {e}"))?;
            net::sockopt::set_ip_add_membership_with_ifindex(
                &fd,
                &GROUP,
                &Ipv4Addr::UNSPECIFIED,
                index,
            )
            .map_err(|e| format!("cannot join {GROUP} on `{name}`: {e}"))?;
            format!("UDP port {port}, group {GROUP} on {name}")
        }
        (Join::Address(ip), None) => {
            net::sockopt::set_ip_add_membership(&fd, &GROUP, ip)
                .map_err(|e| format!("cannot join {GROUP} on the interface of {ip}: {e}"))?;
            format!("UDP port {port}, group {GROUP} on the interface of {ip}")
        }
        _ => format!("UDP port {port}, unicast only"),
    };
    Ok((UdpSocket::from(fd), what))
}
