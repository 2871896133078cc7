//! SOCKS4/4a and SOCKS5 proxies for the clients' TCP connections (`socks5_proxy`,
//! `socks4_proxy`): the proxy URL as users write it, and the client side of the handshake
//! (SOCKS5 greeting, RFC 1929 username/password, CONNECT to an IPv4, IPv6 or domain address;
//! SOCKS4 CONNECT, SOCKS4a with a name). Hand-written: the protocol is a few bytes each way,
//! and a crate for it would cost the binary more than this file.
//!
//! Every reply is read to its exact length (the stream then carries the client's protocol),
//! every byte of it is checked before use, and every failure is put in words an operator can
//! act on, naming the proxy and never its password.

use crate::common::redis::percent_decode;
use crate::config::Secret;
use crate::core::offload;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::de::{DeserializeSeed, Deserializer, Visitor};
use serde::Serialize;
use smol::net::TcpStream;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// The port of a proxy URL that names none (SOCKS's registered port).
const DEFAULT_PORT: u16 = 1080;

/// A `socks5://`, `socks5h://`, `socks4://` or `socks4a://` URL. As in curl, the `h` and `a`
/// schemes have the proxy resolve the destination's name (remote DNS); the others have the
/// agent resolve it and send the address. Its password is a [`Secret`] and never printed.
#[derive(Clone, PartialEq)]
pub struct ProxyUrl {
    pub socks5: bool,
    pub remote_dns: bool,
    pub host: String,
    pub port: u16,
    /// SOCKS5: the RFC 1929 username (with `password`); SOCKS4: the user id.
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl ProxyUrl {
    /// The option this URL is written in.
    pub fn key(&self) -> &'static str {
        if self.socks5 {
            "socks5_proxy"
        } else {
            "socks4_proxy"
        }
    }

    fn scheme(&self) -> &'static str {
        match (self.socks5, self.remote_dns) {
            (true, false) => "socks5",
            (true, true) => "socks5h",
            (false, false) => "socks4",
            (false, true) => "socks4a",
        }
    }

    /// `host:port` of the proxy.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// "SOCKS5 proxy 127.0.0.1:1080", for messages.
    pub fn name(&self) -> String {
        let v = if self.socks5 { "SOCKS5" } else { "SOCKS4" };
        format!("{v} proxy {}", self.addr())
    }

    /// Parses the value of `key` (`socks5_proxy` or `socks4_proxy`):
    /// `scheme://[user[:password]@]host[:port]`, user and password percent-encoded where
    /// they hold `@` or `:`. Messages never repeat any part of the URL (it may hold a
    /// password).
    pub fn parse(key: &str, text: &str) -> Result<ProxyUrl, String> {
        let socks5 = key == "socks5_proxy";
        let schemes: [(&str, bool); 2] = if socks5 {
            [("socks5h://", true), ("socks5://", false)]
        } else {
            [("socks4a://", true), ("socks4://", false)]
        };
        let Some((rest, remote_dns)) = schemes
            .iter()
            .find_map(|(s, dns)| text.strip_prefix(s).map(|r| (r, *dns)))
        else {
            let other = if socks5 {
                " (a SOCKS4 proxy goes in socks4_proxy)"
            } else {
                " (a SOCKS5 proxy goes in socks5_proxy)"
            };
            return Err(format!(
                "must start with {} or {}{other}",
                schemes[1].0, schemes[0].0
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            Some(info) => userinfo_parts(info)?,
            None => (None, None),
        };
        if !socks5 && password.is_some() {
            return Err(
                "SOCKS4 has no password (only a user id): use a SOCKS5 proxy for username/password"
                    .into(),
            );
        }
        if socks5 && username.is_some() != password.is_some() {
            return Err(
                "SOCKS5 authentication needs both user and password (user:password@)".into(),
            );
        }
        let (host, port) = host_port(hostport)?;
        Ok(ProxyUrl {
            socks5,
            remote_dns,
            host,
            port,
            username,
            password,
        })
    }
}

/// The user and password of `user[:password]`; RFC 1929 allows 1 to 255 bytes each.
fn userinfo_parts(info: &str) -> Result<(Option<String>, Option<Secret>), String> {
    let decode = |s: &str| percent_decode(s).map_err(|e| e.replacen("url: ", "", 1));
    let (u, p) = match info.find(':') {
        Some(i) => (&info[..i], Some(&info[i + 1..])),
        None => (info, None),
    };
    let username = Some(decode(u)?).filter(|u| !u.is_empty());
    let password = match p.filter(|p| !p.is_empty()) {
        Some(p) => Some(Secret::new(decode(p)?)),
        None => None,
    };
    let too_long = username.as_ref().is_some_and(|u| u.len() > 255)
        || password.as_ref().is_some_and(|p| p.expose().len() > 255);
    if too_long {
        return Err("the user and the password may have at most 255 bytes each".into());
    }
    Ok((username, password))
}

fn host_port(hostport: &str) -> Result<(String, u16), String> {
    if hostport.contains('/') {
        return Err("a proxy URL has no path: scheme://[user:password@]host[:port]".into());
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed `[` around an IPv6 address")?;
        (&v6[..end], v6[end + 1..].strip_prefix(':'))
    } else {
        match hostport.rfind(':') {
            Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no proxy host".into());
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err("the port after the host is not a number from 1 to 65535".into()),
        },
    };
    Ok((host.to_string(), port))
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "\"{}://", self.scheme())?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        write!(f, "{}\"", self.addr())
    }
}

/// As `check` prints it: the URL with its password masked (the `Debug` form, unquoted).
impl Serialize for ProxyUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(format!("{self:?}").trim_matches('"'))
    }
}

/// Reads the value of `key`; `other` is the other proxy key when it was set already, which
/// is refused here so that the error points at this (the second) one.
pub struct ProxySeed {
    pub key: &'static str,
    pub other: Option<&'static str>,
}

impl<'de> DeserializeSeed<'de> for ProxySeed {
    type Value = ProxyUrl;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ProxyUrl, D::Error> {
        d.deserialize_string(self)
    }
}

/// Parses inside the visitor, so that a bad URL is reported at its value's line and column.
impl Visitor<'_> for ProxySeed {
    type Value = ProxyUrl;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a SOCKS proxy URL, or secret:NAME")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ProxyUrl, E> {
        if let Some(other) = self.other.filter(|o| *o != self.key) {
            return Err(E::custom(format!(
                "{other} is set already: a connection goes through one proxy, set only one of socks5_proxy and socks4_proxy"
            )));
        }
        // Through `Secret`, so `socks5_proxy: secret:proxy/url` works too.
        let text = crate::config::secret::resolve::<E>(text)?;
        ProxyUrl::parse(self.key, text.expose()).map_err(E::custom)
    }
}

/// Where the proxy is asked to connect: an address the agent resolved, or a name the proxy
/// resolves (remote DNS).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dest<'a> {
    Addr(SocketAddr),
    Name(&'a str, u16),
}

/// A TCP stream to `host:port` through `proxy`, the handshake done: what follows on the
/// stream is the client's own protocol (TLS or RESP). `shown` is `host:port` for messages.
pub async fn connect(
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    shown: &str,
) -> Result<TcpStream, String> {
    // An address is sent as one even with remote DNS: there is no name to resolve.
    if proxy.remote_dns && host.parse::<IpAddr>().is_err() {
        return connect_to(proxy, Dest::Name(host, port), shown).await;
    }
    // The name is looked up here as for a direct connection; SOCKS4 carries IPv4 only.
    let addrs = offload::resolve(host, port)
        .await
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?;
    let mut last = None;
    for addr in addrs.into_iter().filter(|a| proxy.socks5 || a.is_ipv4()) {
        match connect_to(proxy, Dest::Addr(addr), shown).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        format!(
            "`{host}` has no IPv4 address, and SOCKS4 carries only IPv4 addresses: use socks4a:// (the proxy resolves the name) or a SOCKS5 proxy"
        )
    }))
}

async fn connect_to(proxy: &ProxyUrl, dest: Dest<'_>, shown: &str) -> Result<TcpStream, String> {
    let mut stream = tcp_to_proxy(proxy).await?;
    handshake(&mut stream, proxy, dest, shown).await?;
    Ok(stream)
}

async fn tcp_to_proxy(proxy: &ProxyUrl) -> Result<TcpStream, String> {
    let addrs = offload::resolve(&proxy.host, proxy.port)
        .await
        .map_err(|e| format!("cannot resolve {} `{}`: {e}", proxy.key(), proxy.host))?;
    super::tcp::connect_first(addrs, &proxy.name()).await
}

/// The SOCKS handshake on a stream connected to `proxy`, asking for `dest`.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    proxy: &ProxyUrl,
    dest: Dest<'_>,
    shown: &str,
) -> Result<(), String> {
    let io_error = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => format!(
            "{} closed the connection during the SOCKS handshake; is it a {} proxy?",
            proxy.name(),
            if proxy.socks5 { "SOCKS5" } else { "SOCKS4" }
        ),
        _ => format!("SOCKS handshake with {}: {e}", proxy.name()),
    };
    let r = if proxy.socks5 {
        socks5(s, proxy, dest, shown).await
    } else {
        socks4(s, proxy, dest, shown).await
    };
    r.map_err(|e| match e {
        Failure::Io(e) => io_error(e),
        Failure::Said(m) => m,
    })
}

/// What went wrong in a handshake: the stream, or what the proxy answered (in words).
enum Failure {
    Io(io::Error),
    Said(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 0x01;

async fn socks5<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    proxy: &ProxyUrl,
    dest: Dest<'_>,
    shown: &str,
) -> Result<(), Failure> {
    let creds = proxy.username.as_deref().zip(proxy.password.as_ref());
    let greeting: &[u8] = if creds.is_some() {
        &[5, 2, NO_AUTH, USER_PASS]
    } else {
        &[5, 1, NO_AUTH]
    };
    s.write_all(greeting).await?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await?;
    let method = chosen_method(reply, proxy, creds.is_some()).map_err(Failure::Said)?;
    if let (USER_PASS, Some((user, password))) = (method, creds) {
        s.write_all(&auth_request(user, password.expose())).await?;
        s.read_exact(&mut reply).await?;
        auth_status(reply, proxy, user).map_err(Failure::Said)?;
    }
    let request = socks5_request(dest).map_err(Failure::Said)?;
    s.write_all(&request).await?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let rest = socks5_reply_rest(head, proxy, dest, shown).map_err(Failure::Said)?;
    // The bound address the proxy reports is of no use here; it is read to leave the stream
    // at the start of the client's protocol.
    let mut bound = [0u8; 1 + 255 + 2];
    let rest = match rest {
        BoundLen::Fixed(n) => n,
        BoundLen::Domain => {
            s.read_exact(&mut bound[..1]).await?;
            usize::from(bound[0]) + 2
        }
    };
    s.read_exact(&mut bound[..rest]).await?;
    Ok(())
}

/// The method the proxy chose from those offered (`offered_auth`: username/password too).
fn chosen_method(reply: [u8; 2], proxy: &ProxyUrl, offered_auth: bool) -> Result<u8, String> {
    let name = proxy.name();
    match reply {
        [5, NO_AUTH] => Ok(NO_AUTH),
        [5, USER_PASS] if offered_auth => Ok(USER_PASS),
        [5, NO_ACCEPTABLE] if offered_auth => Err(format!(
            "{name} accepts neither no authentication nor username/password"
        )),
        [5, _] if !offered_auth => Err(format!(
            "{name} wants authentication: set user:password in socks5_proxy (socks5://user:password@host:port)"
        )),
        [5, m] => Err(format!(
            "{name} chose an authentication method that was not offered ({m:#04x})"
        )),
        [v, _] => Err(format!(
            "{name} did not answer as a SOCKS5 proxy (version byte {v:#04x}); is it a SOCKS5 proxy?"
        )),
    }
}

/// RFC 1929: version 1, then the user and the password, each behind its length (both are
/// at most 255 bytes: checked when the URL was read).
fn auth_request(user: &str, password: &str) -> Vec<u8> {
    let mut req = Vec::with_capacity(3 + user.len() + password.len());
    req.push(1);
    for field in [user, password] {
        let bytes = &field.as_bytes()[..field.len().min(255)];
        req.push(bytes.len() as u8);
        req.extend_from_slice(bytes);
    }
    req
}

/// The RFC 1929 status: 0 is success. The version byte is not checked: some proxies answer
/// 5 there instead of 1, and the status alone says what matters.
fn auth_status(reply: [u8; 2], proxy: &ProxyUrl, user: &str) -> Result<(), String> {
    match reply[1] {
        0 => Ok(()),
        _ => Err(format!(
            "{} refused the username/password (user `{user}`): check them in socks5_proxy",
            proxy.name()
        )),
    }
}

/// CONNECT to `dest`: an IPv4 or IPv6 address, or a name of at most 255 bytes.
fn socks5_request(dest: Dest) -> Result<Vec<u8>, String> {
    let mut req = vec![5, CONNECT, 0];
    let port = match dest {
        Dest::Addr(a) => {
            match a.ip() {
                IpAddr::V4(ip) => {
                    req.push(1);
                    req.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    req.push(4);
                    req.extend_from_slice(&ip.octets());
                }
            }
            a.port()
        }
        Dest::Name(host, port) => {
            let len = u8::try_from(host.len())
                .map_err(|_| format!("`{host}` is longer than the 255 bytes SOCKS5 carries"))?;
            req.push(3);
            req.push(len);
            req.extend_from_slice(host.as_bytes());
            port
        }
    };
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

/// How many bytes of a SOCKS5 reply follow its first four: a fixed count, or a name whose
/// length byte comes first.
#[derive(Debug, PartialEq)]
enum BoundLen {
    Fixed(usize),
    Domain,
}

/// The first four bytes of the reply to CONNECT: success, or why not in words.
fn socks5_reply_rest(
    head: [u8; 4],
    proxy: &ProxyUrl,
    dest: Dest,
    shown: &str,
) -> Result<BoundLen, String> {
    let name = proxy.name();
    let [version, code, _, atyp] = head;
    if version != 5 {
        return Err(format!(
            "{name} did not answer as a SOCKS5 proxy (version byte {version:#04x}); is it a SOCKS5 proxy?"
        ));
    }
    let why = match code {
        0 => {
            return match atyp {
                1 => Ok(BoundLen::Fixed(4 + 2)),
                4 => Ok(BoundLen::Fixed(16 + 2)),
                3 => Ok(BoundLen::Domain),
                t => Err(format!(
                    "{name} answered with an unknown address type ({t:#04x})"
                )),
            }
        }
        1 => "general failure",
        2 => {
            return Err(format!(
                "{name} does not allow a connection to {shown} (its rules refuse it)"
            ))
        }
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => return Err(format!("{name} does not support CONNECT")),
        8 => {
            let hint = match dest {
                Dest::Name(..) => ": use socks5:// so that the agent resolves the name",
                Dest::Addr(a) if a.is_ipv6() => ": connect by an IPv4 address or a name",
                Dest::Addr(_) => "",
            };
            return Err(format!(
                "{name} does not support the address type asked for {shown}{hint}"
            ));
        }
        c => {
            return Err(format!(
                "{name} refused the connection to {shown} (reply code {c:#04x})"
            ))
        }
    };
    Err(format!("{name} cannot reach {shown} ({why})"))
}

async fn socks4<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    proxy: &ProxyUrl,
    dest: Dest<'_>,
    shown: &str,
) -> Result<(), Failure> {
    let request =
        socks4_request(dest, proxy.username.as_deref().unwrap_or("")).map_err(Failure::Said)?;
    s.write_all(&request).await?;
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).await?;
    socks4_status(reply, proxy, shown).map_err(Failure::Said)
}

/// CONNECT to an IPv4 address, or (SOCKS4a) to a name behind the address 0.0.0.1; the user
/// id ends with a zero byte, as does the name.
fn socks4_request(dest: Dest, user: &str) -> Result<Vec<u8>, String> {
    let (port, ip, name) = match dest {
        Dest::Addr(SocketAddr::V4(a)) => (a.port(), a.ip().octets(), None),
        Dest::Addr(a) => {
            return Err(format!(
                "{a} is an IPv6 address, and SOCKS4 carries only IPv4 addresses: use a SOCKS5 proxy"
            ))
        }
        Dest::Name(host, port) => (port, [0, 0, 0, 1], Some(host)),
    };
    if user.contains('\0') || name.is_some_and(|n| n.contains('\0')) {
        return Err("a SOCKS4 user id or host name cannot hold a zero byte".into());
    }
    let mut req = vec![4, CONNECT];
    req.extend_from_slice(&port.to_be_bytes());
    req.extend_from_slice(&ip);
    req.extend_from_slice(user.as_bytes());
    req.push(0);
    if let Some(n) = name {
        req.extend_from_slice(n.as_bytes());
        req.push(0);
    }
    Ok(req)
}

/// The SOCKS4 reply: 90 is granted. Its version byte should be 0; some proxies send 4.
fn socks4_status(reply: [u8; 8], proxy: &ProxyUrl, shown: &str) -> Result<(), String> {
    let name = proxy.name();
    let [version, code, ..] = reply;
    match (version, code) {
        (0 | 4, 90) => Ok(()),
        (0 | 4, 91) => Err(format!(
            "{name} refused or failed the connection to {shown} (it cannot reach it, or its rules refuse it)"
        )),
        (0 | 4, 92) => Err(format!(
            "{name} refused the connection to {shown}: it wants an identd on this host, which it cannot reach"
        )),
        (0 | 4, 93) => Err(format!(
            "{name} refused the connection to {shown}: identd does not confirm the user id in socks4_proxy"
        )),
        (0 | 4, c) => Err(format!(
            "{name} refused the connection to {shown} (reply code {c})"
        )),
        (v, _) => Err(format!(
            "{name} did not answer as a SOCKS4 proxy (version byte {v:#04x}); is it a SOCKS4 proxy?"
        )),
    }
}

#[cfg(test)]
mod tests;
