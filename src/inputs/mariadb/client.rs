//! One MariaDB/MySQL connection: TCP or a unix socket, TLS after an SSL request when
//! `ssl_mode` asks for it, the login (mysql_native_password, caching_sha2_password's fast
//! path and, over TLS or a socket, its full path), and text queries whose rows land in a
//! reused [`Table`]. Runs on the agent's executor: no thread, no runtime.

use super::wire::{self, Cursor, LenEnc, MAX_PACKET};
use crate::config::Secret;
use crate::inputs::support::db::{self, Address, Kind, Link, Stream, Table, TlsMode};

/// The most a query's answer may hold in all its rows.
pub const MAX_ANSWER: usize = 4 << 20;

pub struct Target {
    pub addr: Address,
    pub host: String,
    pub user: String,
    pub password: Secret,
    pub tls_mode: TlsMode,
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

pub struct Conn {
    stream: Stream,
    out: Vec<u8>,
    msg: Vec<u8>,
    /// The sequence number of the last packet read.
    seq: u8,
    pub server_version: String,
}

#[derive(Debug)]
pub enum QueryError {
    Link(String),
    Server(String),
}

impl Conn {
    pub async fn connect(t: &Target) -> Result<Conn, String> {
        let link = db::open(&t.addr).await?;
        let unix = matches!(link, Link::Unix(_));
        let mut c = Conn {
            stream: Stream::new(link),
            out: Vec::with_capacity(256),
            msg: Vec::with_capacity(1024),
            seq: 0,
            server_version: String::new(),
        };
        c.read_packet().await?;
        let hello = wire::handshake(&c.msg)?;
        c.server_version = hello.server_version.clone();
        let offers_tls = hello.capabilities & wire::CLIENT_SSL != 0;
        let tls = match t.tls_mode {
            TlsMode::Disable => false,
            _ if unix => false,
            TlsMode::Prefer => offers_tls,
            _ if offers_tls => true,
            mode => {
                return Err(format!(
                    "the server does not offer TLS and ssl_mode is {mode:?}"
                ))
            }
        };
        if tls {
            c.seq = c.seq.wrapping_add(1);
            wire::ssl_request(&mut c.out, c.seq);
            c.send().await?;
            if c.stream.has_buffered() {
                return Err("the server sent more than its greeting before TLS (an attack?)".into());
            }
            let link = tls_upgrade(c.stream.into_link(), t).await?;
            c = Conn {
                stream: Stream::new(link),
                ..c
            };
        }
        c.login(t, &hello, tls, tls || unix).await?;
        Ok(c)
    }

    async fn send(&mut self) -> Result<(), String> {
        self.stream
            .send(&self.out)
            .await
            .map_err(|e| format!("lost the connection: {e}"))
    }

    /// The next packet's payload into `self.msg`.
    async fn read_packet(&mut self) -> Result<(), String> {
        let lost = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
            _ => format!("lost the connection: {e}"),
        };
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head).await.map_err(lost)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        if len > MAX_PACKET {
            return Err(format!("the server sent a packet of {len} bytes (at most {MAX_PACKET} taken)"));
        }
        self.seq = head[3];
        self.msg.resize(len, 0);
        self.stream.read_exact(&mut self.msg).await.map_err(lost)
    }

    /// The handshake response and whatever exchange the server's plugin wants after it.
    /// `secure`: TLS or a unix socket, where a password may go in the clear.
    async fn login(
        &mut self,
        t: &Target,
        hello: &wire::Handshake,
        tls: bool,
        secure: bool,
    ) -> Result<(), String> {
        let password = t.password.expose();
        let mut plugin = hello.plugin.clone();
        let mut nonce = hello.nonce.clone();
        let auth = auth_data(&plugin, password, &nonce, secure)?;
        self.seq = self.seq.wrapping_add(1);
        wire::handshake_response(&mut self.out, self.seq, tls, &t.user, &auth, &plugin);
        self.send().await?;
        loop {
            self.read_packet().await?;
            match self.msg.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => return Err(login_error(&self.msg, t)),
                Some(0xfe) => {
                    // Auth switch: another plugin, with a new scramble.
                    let mut c = Cursor::new(&self.msg[1..]);
                    plugin = String::from_utf8_lossy(c.cstr().unwrap_or(b"")).into_owned();
                    nonce = wire::switch_nonce(c.rest()).to_vec();
                    let auth = auth_data(&plugin, password, &nonce, secure)?;
                    self.reply(&auth).await?;
                }
                Some(0x01) if plugin == "caching_sha2_password" => match self.msg.get(1) {
                    // Fast path: the server had the digest cached; OK follows.
                    Some(3) => {}
                    Some(4) if secure => {
                        let mut clear = password.as_bytes().to_vec();
                        clear.push(0);
                        self.reply(&clear).await?;
                    }
                    Some(4) => return Err("caching_sha2_password wants the full login, which this client does only over TLS or a unix socket (no RSA key exchange): use ssl_mode REQUIRED, the socket, or a mysql_native_password user".into()),
                    _ => return Err("the server sent a damaged caching_sha2_password message".into()),
                },
                _ => return Err("the server sent an unexpected packet during the login".into()),
            }
        }
    }

    async fn reply(&mut self, data: &[u8]) -> Result<(), String> {
        self.seq = self.seq.wrapping_add(1);
        wire::packet(&mut self.out, self.seq, |b| b.extend_from_slice(data));
        self.send().await
    }

    /// Runs `sql` and puts its rows into `table` (none for a statement without rows).
    pub async fn query(&mut self, sql: &str, table: &mut Table) -> Result<(), QueryError> {
        table.clear();
        wire::query(&mut self.out, sql);
        self.send().await.map_err(QueryError::Link)?;
        self.read_packet().await.map_err(QueryError::Link)?;
        let columns = match self.msg.first() {
            Some(0x00) => return Ok(()),
            Some(0xff) => return Err(QueryError::Server(wire::error_text(&self.msg))),
            _ => Cursor::new(&self.msg)
                .lenenc()
                .filter(|&n| n > 0 && n < 4096)
                .ok_or_else(|| QueryError::Link("the server sent a damaged result header".into()))?,
        };
        for _ in 0..columns {
            self.read_packet().await.map_err(QueryError::Link)?;
            column_definition(&self.msg, table).map_err(QueryError::Link)?;
        }
        self.read_packet().await.map_err(QueryError::Link)?;
        if !wire::is_eof(&self.msg) {
            return Err(QueryError::Link("the server sent no end of the column list".into()));
        }
        let mut size = 0;
        loop {
            self.read_packet().await.map_err(QueryError::Link)?;
            if wire::is_eof(&self.msg) {
                return Ok(());
            }
            if self.msg.first() == Some(&0xff) {
                return Err(QueryError::Server(wire::error_text(&self.msg)));
            }
            size += self.msg.len();
            if size > MAX_ANSWER {
                return Err(QueryError::Link(format!("the answer to `{sql}` is larger than {MAX_ANSWER} bytes")));
            }
            text_row(&self.msg, table).map_err(QueryError::Link)?;
        }
    }
}

/// What the login answers for `plugin`.
fn auth_data(plugin: &str, password: &str, nonce: &[u8], secure: bool) -> Result<Vec<u8>, String> {
    let nonce = &nonce[..nonce.len().min(20)];
    match plugin {
        "mysql_native_password" | "" => Ok(wire::native_password(password, nonce)),
        "caching_sha2_password" => Ok(wire::caching_sha2(password, nonce)),
        "mysql_clear_password" if secure => {
            let mut v = password.as_bytes().to_vec();
            v.push(0);
            Ok(v)
        }
        other => Err(format!(
            "the server asks for the `{other}` login, which this client does not speak (it speaks mysql_native_password, caching_sha2_password, and mysql_clear_password over TLS or a socket)"
        )),
    }
}

fn login_error(body: &[u8], t: &Target) -> String {
    let text = wire::error_text(body);
    if text.starts_with("error 1045") {
        format!("login as `{}` refused: {text} (check `password`)", t.user)
    } else {
        format!("login as `{}` refused: {text}", t.user)
    }
}

#[cfg(feature = "tls")]
async fn tls_upgrade(link: Link, t: &Target) -> Result<Link, String> {
    let config = t.tls.as_ref().ok_or("TLS is not set up")?;
    db::start_tls(link, config, &t.host, &t.addr.to_string()).await
}

#[cfg(not(feature = "tls"))]
async fn tls_upgrade(_: Link, _: &Target) -> Result<Link, String> {
    Err("this build has no TLS (cargo feature `tls`)".into())
}

/// A column definition (protocol 4.1): catalog, schema, table, org_table, name, org_name,
/// then the fixed fields with the type.
pub fn column_definition(body: &[u8], table: &mut Table) -> Result<(), String> {
    let bad = || "the server sent a damaged column definition".to_string();
    let mut c = Cursor::new(body);
    for _ in 0..4 {
        c.lenenc_str().ok_or_else(bad)?;
    }
    let name = c.lenenc_str().ok_or_else(bad)?;
    c.lenenc_str().ok_or_else(bad)?;
    c.lenenc().ok_or_else(bad)?;
    // charset, column length
    c.take(6).ok_or_else(bad)?;
    let kind = match c.u8().ok_or_else(bad)? {
        t if wire::is_numeric_type(t) => Kind::Number,
        // varchar, var_string, string, and the blob types that SHOW answers with
        15 | 249..=254 => Kind::Text,
        _ => Kind::Other,
    };
    table.push_column(name, kind);
    Ok(())
}

pub fn text_row(body: &[u8], table: &mut Table) -> Result<(), String> {
    let mut c = Cursor::new(body);
    for _ in 0..table.width() {
        let cell = c.cell().ok_or("the server sent a damaged row")?;
        table.push_cell(cell);
    }
    if !c.rest().is_empty() {
        return Err("the server sent a row with more cells than columns".into());
    }
    Ok(())
}
