//! One PostgreSQL connection: TCP or a unix socket, TLS after an SSLRequest when `sslmode`
//! asks for it, the login (trust, cleartext, md5, SCRAM-SHA-256), and simple queries whose
//! rows land in a reused [`Table`]. Runs on the agent's executor: no thread, no runtime.

use super::wire::{self, Cursor, MAX_MESSAGE};
use crate::config::Secret;
use crate::inputs::support::db::{self, Address, Kind, Link, Stream, Table, TlsMode};

/// The most a query's answer may hold in all its cells: bounded memory whatever a custom
/// query returns.
pub const MAX_ANSWER: usize = 4 << 20;

/// Where and as whom to log in.
pub struct Target {
    pub addr: Address,
    /// The host name TLS checks the certificate against.
    pub host: String,
    pub user: String,
    pub password: Secret,
    pub dbname: String,
    pub tls_mode: TlsMode,
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

pub struct Conn {
    stream: Stream,
    /// The message being sent, then the one being read: reused.
    out: Vec<u8>,
    msg: Vec<u8>,
    /// `server_version_num` (150004 for 15.4); 0 until the server said.
    pub version: u32,
}

/// A query failed: the connection is gone (`Link`), or the server refused the query and the
/// connection is still good (`Server`).
#[derive(Debug)]
pub enum QueryError {
    Link(String),
    Server(String),
}

impl Conn {
    pub async fn connect(t: &Target) -> Result<Conn, String> {
        let link = db::open(&t.addr).await?;
        let link = negotiate_tls(link, t).await?;
        let mut c = Conn {
            stream: Stream::new(link),
            out: Vec::with_capacity(256),
            msg: Vec::with_capacity(1024),
            version: 0,
        };
        wire::startup(&mut c.out, &t.user, &t.dbname);
        c.send().await?;
        c.login(t).await?;
        Ok(c)
    }

    async fn send(&mut self) -> Result<(), String> {
        self.stream
            .send(&self.out)
            .await
            .map_err(|e| format!("lost the connection: {e}"))
    }

    /// The next backend message: its type, with the body in `self.msg`.
    async fn read_message(&mut self) -> Result<u8, String> {
        let mut head = [0u8; 5];
        let lost = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
            _ => format!("lost the connection: {e}"),
        };
        self.stream.read_exact(&mut head).await.map_err(lost)?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        let body = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .filter(|&b| b <= MAX_MESSAGE)
            .ok_or_else(|| {
                format!(
                    "the server sent a message of type {:?} with length {len}: not PostgreSQL, or damaged",
                    head[0] as char
                )
            })?;
        self.msg.resize(body, 0);
        self.stream.read_exact(&mut self.msg).await.map_err(lost)?;
        Ok(head[0])
    }

    async fn login(&mut self, t: &Target) -> Result<(), String> {
        let mut scram: Option<wire::Scram> = None;
        loop {
            match self.read_message().await? {
                b'R' => self.authenticate(t, &mut scram).await?,
                b'E' => return Err(login_error(&self.msg, t)),
                b'S' => self.note_parameter(),
                b'Z' => return Ok(()),
                // BackendKeyData, NoticeResponse, NegotiateProtocolVersion: nothing to do.
                _ => {}
            }
        }
    }

    async fn authenticate(
        &mut self,
        t: &Target,
        scram: &mut Option<wire::Scram>,
    ) -> Result<(), String> {
        let mut c = Cursor::new(&self.msg);
        let code = c.i32_be().ok_or("the server sent a damaged authentication request")?;
        let need_password = || -> Result<&str, String> {
            match t.password.expose() {
                "" => Err(format!(
                    "the server asks user `{}` for a password and none is set (`password`)",
                    t.user
                )),
                p => Ok(p),
            }
        };
        match code {
            0 => return Ok(()),
            3 => {
                let p = need_password()?;
                wire::password(&mut self.out, p);
            }
            5 => {
                let salt = c.take(4).ok_or("the server sent a damaged md5 request")?;
                let answer = wire::md5_password(&t.user, need_password()?, salt);
                wire::password(&mut self.out, &answer);
            }
            10 => {
                let mut offered = false;
                while let Some(m) = c.cstr().filter(|m| !m.is_empty()) {
                    offered |= m == b"SCRAM-SHA-256";
                }
                if !offered {
                    return Err("the server offers no SASL mechanism but SCRAM-SHA-256-PLUS (channel binding), which this client lacks".into());
                }
                need_password()?;
                let s = wire::Scram::new(&db::random_bytes::<18>()?);
                let first = s.client_first();
                wire::message(&mut self.out, b'p', |b| {
                    wire::cstr(b, "SCRAM-SHA-256");
                    b.extend_from_slice(&(first.len() as i32).to_be_bytes());
                    b.extend_from_slice(first.as_bytes());
                });
                *scram = Some(s);
            }
            11 => {
                let s = scram.as_mut().ok_or("the server sent SCRAM data unasked")?;
                let fin = s.client_final(need_password()?, c.rest())?;
                wire::message(&mut self.out, b'p', |b| b.extend_from_slice(fin.as_bytes()));
            }
            12 => {
                let s = scram.as_ref().ok_or("the server sent SCRAM data unasked")?;
                return s.verify_final(c.rest());
            }
            other => {
                return Err(format!(
                    "the server asks for an authentication this client does not speak (code {other}; it speaks trust, password, md5 and scram-sha-256)"
                ))
            }
        }
        self.send().await
    }

    /// Keeps the server's version from the ParameterStatus sent after the login.
    fn note_parameter(&mut self) {
        let mut c = Cursor::new(&self.msg);
        if let (Some(b"server_version"), Some(v)) = (c.cstr(), c.cstr()) {
            self.version = version_num(&String::from_utf8_lossy(v));
        }
    }

    /// Runs `sql` (one statement) and puts its rows into `table`.
    pub async fn query(&mut self, sql: &str, table: &mut Table) -> Result<(), QueryError> {
        table.clear();
        wire::query(&mut self.out, sql);
        self.send().await.map_err(QueryError::Link)?;
        let mut refused = None;
        let mut size = 0usize;
        loop {
            let tag = match self.read_message().await {
                Ok(tag) => tag,
                // A server that shuts down says why before it closes the connection.
                Err(e) => match refused {
                    Some(why) => return Err(QueryError::Link(format!("{why}; {e}"))),
                    None => return Err(QueryError::Link(e)),
                },
            };
            match tag {
                b'T' => {
                    table.clear();
                    row_description(&self.msg, table).map_err(QueryError::Link)?;
                }
                b'D' => {
                    size += self.msg.len();
                    if size > MAX_ANSWER {
                        return Err(QueryError::Link(format!(
                            "the answer to `{sql}` is larger than {MAX_ANSWER} bytes"
                        )));
                    }
                    data_row(&self.msg, table).map_err(QueryError::Link)?;
                }
                b'E' => refused = Some(wire::error_text(&self.msg)),
                b'Z' => break,
                // CommandComplete, EmptyQueryResponse, notices, parameter changes.
                _ => {}
            }
        }
        match refused {
            Some(e) => Err(QueryError::Server(e)),
            None => Ok(()),
        }
    }
}

/// SSLRequest and the switch to TLS, as `sslmode` asks (unix sockets never use TLS).
async fn negotiate_tls(link: Link, t: &Target) -> Result<Link, String> {
    if t.tls_mode == TlsMode::Disable || matches!(link, Link::Unix(_)) {
        return Ok(link);
    }
    let mut s = Stream::new(link);
    let mut out = Vec::new();
    wire::ssl_request(&mut out);
    s.send(&out)
        .await
        .map_err(|e| format!("lost the connection: {e}"))?;
    let mut answer = [0u8];
    s.read_exact(&mut answer)
        .await
        .map_err(|e| format!("no answer to the TLS request: {e}"))?;
    if s.has_buffered() {
        return Err("the server sent more than its answer to the TLS request (an attack?)".into());
    }
    match (answer[0], t.tls_mode) {
        (b'S', _) => start_tls(s.into_link(), t).await,
        (b'N', TlsMode::Prefer) => Ok(s.into_link()),
        (b'N', _) => Err(format!(
            "the server does not accept TLS (ssl = off) and sslmode is {:?}",
            t.tls_mode
        )),
        (other, _) => Err(format!(
            "the server answered the TLS request with byte {other}: not PostgreSQL?"
        )),
    }
}

#[cfg(feature = "tls")]
async fn start_tls(link: Link, t: &Target) -> Result<Link, String> {
    let config = t.tls.as_ref().ok_or("TLS is not set up")?;
    db::start_tls(link, config, &t.host, &t.addr.to_string()).await
}

#[cfg(not(feature = "tls"))]
async fn start_tls(_: Link, _: &Target) -> Result<Link, String> {
    Err("this build has no TLS (cargo feature `tls`)".into())
}

/// A refused login in words: the server's message, with a hint for the usual causes.
fn login_error(body: &[u8], t: &Target) -> String {
    let text = wire::error_text(body);
    if text.contains("28P01") {
        format!("login as `{}` refused: {text} (check `password`)", t.user)
    } else {
        format!("login as `{}` to database `{}` refused: {text}", t.user, t.dbname)
    }
}

/// "15.4 (Debian 15.4-1)" → 150004; "9.6.24" → 90624.
pub fn version_num(v: &str) -> u32 {
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    if major >= 10 {
        major * 10_000 + minor
    } else {
        major * 10_000 + minor * 100 + parts.next().unwrap_or(0)
    }
}

/// The kind of a column by its type OID (pg_type.dat).
pub fn kind_of(oid: i32) -> Kind {
    match oid {
        // int8, int2, int4, oid, xid, float4, float8, numeric
        20 | 21 | 23 | 26 | 28 | 700 | 701 | 1700 => Kind::Number,
        16 => Kind::Bool,
        // char, name, text, bpchar, varchar
        18 | 19 | 25 | 1042 | 1043 => Kind::Text,
        _ => Kind::Other,
    }
}

pub fn row_description(body: &[u8], table: &mut Table) -> Result<(), String> {
    let bad = || "the server sent a damaged row description".to_string();
    let mut c = Cursor::new(body);
    let n = c.i16_be().filter(|&n| n >= 0).ok_or_else(bad)?;
    for _ in 0..n {
        let name = c.cstr().ok_or_else(bad)?;
        // table oid, attribute number, then the type oid
        c.take(6).ok_or_else(bad)?;
        let oid = c.i32_be().ok_or_else(bad)?;
        // type size, modifier, format
        c.take(8).ok_or_else(bad)?;
        table.push_column(name, kind_of(oid));
    }
    Ok(())
}

pub fn data_row(body: &[u8], table: &mut Table) -> Result<(), String> {
    let bad = || "the server sent a damaged data row".to_string();
    let mut c = Cursor::new(body);
    let n = c.i16_be().ok_or_else(bad)?;
    if n < 0 || n as usize != table.width() {
        return Err(format!(
            "the server sent a row of {n} cells for {} columns",
            table.width()
        ));
    }
    for _ in 0..n {
        let len = c.i32_be().ok_or_else(bad)?;
        let cell = match usize::try_from(len) {
            Ok(len) => Some(c.take(len).ok_or_else(bad)?),
            Err(_) => None,
        };
        table.push_cell(cell);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_num("15.4 (Debian 15.4-1.pgdg120+1)"), 150004);
        assert_eq!(version_num("17.2"), 170002);
        assert_eq!(version_num("9.6.24"), 90624);
        assert_eq!(version_num("18beta1"), 180000);
        assert_eq!(version_num("garbage"), 0);
    }

    #[test]
    fn rows_of_hostile_bytes_never_panic() {
        let mut t = Table::default();
        let mut desc = Vec::new();
        desc.extend_from_slice(&2i16.to_be_bytes());
        for (name, oid) in [(&b"datname"[..], 19i32), (b"xact_commit", 20)] {
            desc.extend_from_slice(name);
            desc.push(0);
            desc.extend_from_slice(&[0; 6]);
            desc.extend_from_slice(&oid.to_be_bytes());
            desc.extend_from_slice(&[0; 8]);
        }
        row_description(&desc, &mut t).unwrap();
        assert_eq!(t.kind(0), Kind::Text);
        assert_eq!(t.kind(1), Kind::Number);
        let mut row = Vec::new();
        row.extend_from_slice(&2i16.to_be_bytes());
        row.extend_from_slice(&2i32.to_be_bytes());
        row.extend_from_slice(b"db");
        row.extend_from_slice(&(-1i32).to_be_bytes());
        data_row(&row, &mut t).unwrap();
        assert_eq!((t.text(0, 0), t.text(0, 1)), (Some("db"), None));
        // Every truncation and a pseudo-random mutation of both messages: errors only.
        let mut seed = 0x2545_f491u32;
        for msg in [&desc, &row] {
            for cut in 0..msg.len() {
                let _ = row_description(&msg[..cut], &mut Table::default());
                let _ = data_row(&msg[..cut], &mut t);
            }
            for _ in 0..2000 {
                let mut m = msg.to_vec();
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = seed as usize % m.len();
                m[i] = (seed >> 8) as u8;
                let _ = row_description(&m, &mut Table::default());
                let _ = data_row(&m, &mut t);
            }
        }
    }
}
