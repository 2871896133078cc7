//! Opening a TCP connection on smol to the first address of a name that answers.

use smol::net::TcpStream;
use std::net::SocketAddr;

/// Connects to the first of `addrs` that accepts, with TCP_NODELAY (requests are small and
/// wait for their replies). `shown` names the peer in the error: `host:port`, or a proxy.
pub async fn connect_first(addrs: Vec<SocketAddr>, shown: &str) -> Result<TcpStream, String> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => format!("cannot connect to {shown}: {e}"),
        None => format!("cannot connect to {shown}: the name has no address"),
    })
}
