//! The options of the `redistimeseries` output, as written in the config, and the checks that
//! turn them into a connection target (no network access here: `check` must not need Redis).

use super::conn::ConnOptions;
use crate::config::{range, BuildError, Dur, Millis, Secret, Size};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default key template: `net_rx_bytes:pi4:eth0`.
pub const DEFAULT_KEY_FORMAT: &str = "{name}:{host}{:values}";

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://…` for TLS. Overrides `host`,
    /// `port`, `db`, `username`, `password` and `ssl` where it sets them.
    pub url: Option<RedisUrl>,
    pub host: String,
    #[serde(deserialize_with = "range::port")]
    pub port: u16,
    #[serde(deserialize_with = "range::redis_db")]
    pub db: i64,
    /// An ACL user (Redis 6+); needs `password`.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ssl: bool,
    /// PEM file with the CA certificates that may sign the server's certificate. Without it
    /// the Mozilla root set is used.
    pub ssl_ca_certs: Option<PathBuf>,
    /// PEM client certificate (chain) and key, for servers that ask for one.
    pub ssl_certfile: Option<PathBuf>,
    pub ssl_keyfile: Option<PathBuf>,
    /// Accepts any server certificate. For tests only: logs a warning.
    pub ssl_insecure_skip_verify: bool,
    #[serde(deserialize_with = "range::timeout")]
    pub connect_timeout: Dur,
    /// How long one flush may wait for the server's replies.
    #[serde(deserialize_with = "range::timeout")]
    pub write_timeout: Dur,
    pub key_format: String,
    /// Labels added to every series.
    pub labels: BTreeMap<String, String>,
    /// RETENTION of created series; none leaves the server's default (forever unless set).
    pub retention: Option<Millis>,
    pub duplicate_policy: DuplicatePolicy,
    /// CHUNK_SIZE in bytes (a multiple of 8 from 48 to 1 MiB).
    pub chunk_size: Option<Size>,
    pub encoding: Option<Encoding>,
    pub downsample: Vec<Downsample>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: None,
            host: "localhost".into(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            ssl: false,
            ssl_ca_certs: None,
            ssl_certfile: None,
            ssl_keyfile: None,
            ssl_insecure_skip_verify: false,
            connect_timeout: Dur(Duration::from_secs(5)),
            write_timeout: Dur(Duration::from_secs(10)),
            key_format: DEFAULT_KEY_FORMAT.into(),
            labels: BTreeMap::new(),
            retention: None,
            duplicate_policy: DuplicatePolicy::Last,
            chunk_size: None,
            encoding: None,
            downsample: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    Block,
    First,
    #[default]
    Last,
    Min,
    Max,
    Sum,
}

impl DuplicatePolicy {
    pub fn as_arg(self) -> &'static str {
        match self {
            DuplicatePolicy::Block => "BLOCK",
            DuplicatePolicy::First => "FIRST",
            DuplicatePolicy::Last => "LAST",
            DuplicatePolicy::Min => "MIN",
            DuplicatePolicy::Max => "MAX",
            DuplicatePolicy::Sum => "SUM",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Compressed,
    Uncompressed,
}

impl Encoding {
    pub fn as_arg(self) -> &'static str {
        match self {
            Encoding::Compressed => "COMPRESSED",
            Encoding::Uncompressed => "UNCOMPRESSED",
        }
    }
}

/// A compaction rule: `every: 5m, aggregation: avg, retention: 2y` keeps 5-minute averages
/// in `<key>:avg_5m`. `metrics` / `exclude_metrics` (name patterns with `*` and `?`) limit
/// it to some metrics, which is how one metric gets other rules than the rest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Downsample {
    pub every: Dur,
    pub aggregation: Aggregation,
    #[serde(default)]
    pub retention: Option<Millis>,
    #[serde(default)]
    pub metrics: Vec<String>,
    #[serde(default)]
    pub exclude_metrics: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum Aggregation {
    #[serde(rename = "avg")]
    Avg,
    #[serde(rename = "sum")]
    Sum,
    #[serde(rename = "min")]
    Min,
    #[serde(rename = "max")]
    Max,
    #[serde(rename = "range")]
    Range,
    #[serde(rename = "count")]
    Count,
    #[serde(rename = "first")]
    First,
    #[serde(rename = "last")]
    Last,
    #[serde(rename = "std.p")]
    StdP,
    #[serde(rename = "std.s")]
    StdS,
    #[serde(rename = "var.p")]
    VarP,
    #[serde(rename = "var.s")]
    VarS,
    #[serde(rename = "twa")]
    Twa,
}

impl Aggregation {
    /// The name as RedisTimeSeries spells it, also used in keys and the `aggregation` label.
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Avg => "avg",
            Aggregation::Sum => "sum",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Range => "range",
            Aggregation::Count => "count",
            Aggregation::First => "first",
            Aggregation::Last => "last",
            Aggregation::StdP => "std.p",
            Aggregation::StdS => "std.s",
            Aggregation::VarP => "var.p",
            Aggregation::VarS => "var.s",
            Aggregation::Twa => "twa",
        }
    }
}

/// A `redis://` or `rediss://` URL. Its password is a [`Secret`] and never printed.
#[derive(Clone, PartialEq)]
pub struct RedisUrl {
    pub tls: bool,
    pub host: String,
    pub port: Option<u16>,
    pub db: Option<i64>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.tls {
            "\"rediss://"
        } else {
            "\"redis://"
        })?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            (None, None) => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(db) = self.db {
            write!(f, "/{db}")?;
        }
        f.write_str("\"")
    }
}

/// As `check` prints it: the URL with its password masked (the `Debug` form, unquoted).
impl Serialize for RedisUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(format!("{self:?}").trim_matches('"'))
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(RedisUrlVisitor)
    }
}

/// Parses inside the visitor, so that a bad URL is reported at its value's line and column.
struct RedisUrlVisitor;

impl serde::de::Visitor<'_> for RedisUrlVisitor {
    type Value = RedisUrl;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a redis:// or rediss:// URL, or secret:NAME")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RedisUrl, E> {
        // Through `Secret`, so `url: secret:redis/url` works too.
        let text = crate::config::secret::resolve::<E>(text)?;
        RedisUrl::parse(text.expose()).map_err(E::custom)
    }
}

impl RedisUrl {
    /// Parses `redis[s]://[user[:password]@]host[:port][/db]`; user and password may be
    /// percent-encoded. Messages never repeat any part of the URL (it may hold a password).
    ///
    /// The user and password end at the *last* `@`, so a password may hold `/`, `@`, `:`,
    /// `?` and `#` as written (the URL standard, and redis-rs, want those percent-encoded
    /// and would read `redis://u:a/b@h` as host `u`, port `a/b@h`); the user ends at the
    /// first `:`. Every URL the standard accepts reads the same here, except one with an
    /// `@` after its host (in a query, which Redis URLs do not use).
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let (tls, rest) = if let Some(r) = text.strip_prefix("rediss://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("redis://") {
            (false, r)
        } else {
            return Err("url: must start with redis:// or rediss://".into());
        };
        let (userinfo, after_user) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostport, path) = match after_user.find('/') {
            Some(i) => (&after_user[..i], &after_user[i + 1..]),
            None => (after_user, ""),
        };
        let (mut username, mut password) = (None, None);
        if let Some(info) = userinfo {
            let (u, p) = match info.find(':') {
                Some(i) => (&info[..i], Some(&info[i + 1..])),
                None => (info, None),
            };
            if !u.is_empty() {
                username = Some(percent_decode(u)?);
            }
            if let Some(p) = p.filter(|p| !p.is_empty()) {
                password = Some(Secret::new(percent_decode(p)?));
            }
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or("url: unclosed `[` around an IPv6 address")?;
            let port = v6[end + 1..].strip_prefix(':');
            (v6[..end].to_string(), port)
        } else {
            match hostport.rfind(':') {
                Some(i) => (hostport[..i].to_string(), Some(&hostport[i + 1..])),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err("url: no host".into());
        }
        let port = port
            .map(|p| match p.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err("url: the port after the host is not a number from 1 to 65535"),
            })
            .transpose()?;
        let path = path.split(['?', '#']).next().unwrap_or("");
        let db = if path.is_empty() {
            None
        } else {
            match path.parse::<i64>() {
                Ok(db) if (0..=i64::from(i32::MAX)).contains(&db) => Some(db),
                _ => return Err("url: the database after `/` is not a whole number from 0 to 2147483647".into()),
            }
        };
        Ok(RedisUrl {
            tls,
            host,
            port,
            db,
            username,
            password,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("url: invalid percent-encoding in the user or password")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "url: user or password is not UTF-8".into())
}

/// Where to connect and how to log in, from `url` and the separate keys.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: bool,
}

impl Target {
    /// The target of `url` where it says, of the separate keys elsewhere. An empty username
    /// or password is none.
    pub fn from_options(
        url: Option<&RedisUrl>,
        host: &str,
        port: u16,
        db: i64,
        username: Option<&String>,
        password: Option<&Secret>,
        ssl: bool,
    ) -> Target {
        Target {
            host: url.map_or_else(|| host.to_string(), |u| u.host.clone()),
            port: url.and_then(|u| u.port).unwrap_or(port),
            db: url.and_then(|u| u.db).unwrap_or(db),
            username: url
                .and_then(|u| u.username.clone())
                .or_else(|| username.cloned())
                .filter(|u| !u.is_empty()),
            password: url
                .and_then(|u| u.password.clone())
                .or_else(|| password.cloned())
                .filter(|p| !p.is_empty()),
            tls: ssl || url.is_some_and(|u| u.tls),
        }
    }

    /// Validates everything that can be checked without the network.
    pub fn checked(self, o: &ConnOptions) -> Result<Target, BuildError> {
        if self.host.is_empty() {
            return Err(BuildError::at("host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(BuildError::at("port", "must be 1 to 65535"));
        }
        if self.db < 0 {
            return Err(BuildError::at("db", "must be 0 or more"));
        }
        if self.username.is_some() && self.password.is_none() {
            return Err(BuildError::at(
                "username",
                "an ACL user needs `password` too",
            ));
        }
        if !self.tls
            && (o.ssl_ca_certs.is_some() || o.ssl_certfile.is_some() || o.ssl_keyfile.is_some())
        {
            return Err(
                "ssl_ca_certs / ssl_certfile / ssl_keyfile are set but TLS is off: add `ssl: true` (or use a rediss:// url)"
                    .into(),
            );
        }
        if o.ssl_certfile.is_some() != o.ssl_keyfile.is_some() {
            return Err("ssl_certfile and ssl_keyfile go together: set both or neither".into());
        }
        if self.tls && !cfg!(feature = "tls") {
            return Err(
                "TLS was asked for (ssl: true or a rediss:// url) but this binary was built without TLS (cargo feature `tls`); use a build with default features, or a plain redis:// connection"
                    .into(),
            );
        }
        Ok(self)
    }

    /// `host:port` for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl Config {
    /// Validates everything that can be checked without the network.
    pub fn target(&self) -> Result<Target, BuildError> {
        let target = Target::from_options(
            self.url.as_ref(),
            &self.host,
            self.port,
            self.db,
            self.username.as_ref(),
            self.password.as_ref(),
            self.ssl,
        );
        target.checked(&self.conn_options("redistimeseries"))
    }

    /// The TLS files and timeouts of this config.
    pub fn conn_options(&self, plugin: &'static str) -> ConnOptions<'_> {
        ConnOptions {
            plugin,
            ssl_ca_certs: self.ssl_ca_certs.as_deref(),
            ssl_certfile: self.ssl_certfile.as_deref(),
            ssl_keyfile: self.ssl_keyfile.as_deref(),
            ssl_insecure_skip_verify: self.ssl_insecure_skip_verify,
            connect_timeout: self.connect_timeout.0,
            write_timeout: self.write_timeout.0,
            write_timeout_key: "write_timeout",
        }
    }

    /// Checks the series options that the server would otherwise refuse at run time.
    pub fn validate_series(&self) -> Result<(), BuildError> {
        if let Some(Size(c)) = self.chunk_size {
            if !(48..=1_048_576).contains(&c) || c % 8 != 0 {
                return Err(BuildError::at(
                    "chunk_size",
                    format!("{c} bytes is not allowed; use a multiple of 8 from 48 to 1048576"),
                ));
            }
        }
        if self.connect_timeout.0.is_zero() || self.write_timeout.0.is_zero() {
            return Err("connect_timeout and write_timeout must be more than 0".into());
        }
        for (k, v) in &self.labels {
            if k.is_empty() || v.is_empty() {
                return Err(BuildError::at(
                    "labels",
                    format!("`{k}: {v}` has an empty name or value; RedisTimeSeries does not store those"),
                ));
            }
        }
        for (i, d) in self.downsample.iter().enumerate() {
            if d.every.0.as_millis() == 0 {
                return Err(BuildError::entry(format!(
                    "downsample[{i}].every: must be at least 1ms"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_everything() {
        let u = RedisUrl::parse("rediss://metrics:p%40ss@redis.lan:6380/3").unwrap();
        assert!(u.tls);
        assert_eq!(u.host, "redis.lan");
        assert_eq!(u.port, Some(6380));
        assert_eq!(u.db, Some(3));
        assert_eq!(u.username.as_deref(), Some("metrics"));
        assert_eq!(u.password.as_ref().unwrap().expose(), "p@ss");
        let shown = format!("{u:?}");
        assert_eq!(shown, "\"rediss://metrics:***@redis.lan:6380/3\"");
        assert!(!shown.contains("p@ss") && !shown.contains("p%40ss"));
    }

    #[test]
    fn url_minimal_and_ipv6_and_password_only() {
        let u = RedisUrl::parse("redis://localhost").unwrap();
        assert!(!u.tls && u.port.is_none() && u.db.is_none() && u.password.is_none());
        let u = RedisUrl::parse("redis://:secret@[::1]:7000").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, Some(7000));
        assert!(u.username.is_none());
        assert_eq!(u.password.unwrap().expose(), "secret");
    }

    #[test]
    fn url_errors_do_not_repeat_the_url() {
        for bad in [
            "http://u:hunter2@x",
            "redis://u:hunter2@x:port",
            "redis://u:hunter2@x/zero",
            "redis://u:hunter2@",
            "redis://hunter2:hunter2",
            "redis://hunter2/hunter2",
            "redis://u:%zzhunter2@x",
            "redis://[hunter2",
            "redis://u:hunter2@x:0",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_password_may_hold_slashes_at_signs_and_colons() {
        let u = RedisUrl::parse("redis://admin:Secr3tXYZ/Pass@127.0.0.1:26499/0").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", Some(26499), Some(0)));
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.unwrap().expose(), "Secr3tXYZ/Pass");
        let u = RedisUrl::parse("rediss://:p@ss:w/rd?#@[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", None, true));
        assert_eq!(u.username, None);
        assert_eq!(u.password.unwrap().expose(), "p@ss:w/rd?#");
        // Percent-encoded, as the URL standard wants it, reads the same.
        let u = RedisUrl::parse("redis://admin:Secr3tXYZ%2FPass@h").unwrap();
        assert_eq!(u.password.unwrap().expose(), "Secr3tXYZ/Pass");
    }

    #[test]
    fn url_overrides_separate_keys() {
        let cfg = Config {
            url: Some(RedisUrl::parse("redis://u:pw@h:1/2").unwrap()),
            host: "other".into(),
            ..Config::default()
        };
        let t = cfg.target().unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("h", 1, 2));
        assert_eq!(t.username.as_deref(), Some("u"));
        assert_eq!(t.password.unwrap().expose(), "pw");
    }

    #[test]
    fn config_parses_rtcollector_keys_and_hides_the_password() {
        let cfg: Config = yaml_serde::from_str(
            "host: r.lan\nport: 6380\nusername: metrics\npassword: hunter2\nretention: 7d\n\
             duplicate_policy: max\nchunk_size: 4KiB\nencoding: compressed\n\
             labels: {site: home}\n\
             downsample:\n  - {every: 5m, aggregation: avg, retention: 2y}\n  - {every: 1h, aggregation: std.p, metrics: ['cpu_*']}\n",
        )
        .unwrap();
        assert_eq!(cfg.retention, Some(Millis(7 * 86_400_000)));
        assert_eq!(cfg.duplicate_policy, DuplicatePolicy::Max);
        assert_eq!(cfg.chunk_size, Some(Size(4096)));
        assert_eq!(cfg.downsample[1].aggregation, Aggregation::StdP);
        assert!(cfg.validate_series().is_ok());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(cfg.target().is_ok());
    }

    #[test]
    fn bad_combinations_are_config_errors() {
        let cfg = Config {
            username: Some("u".into()),
            ..Config::default()
        };
        assert!(cfg.target().unwrap_err().to_string().contains("password"));
        let cfg = Config {
            ssl_certfile: Some("/c.pem".into()),
            ..Config::default()
        };
        assert!(cfg.target().unwrap_err().to_string().contains("ssl: true"));
        let cfg = Config {
            chunk_size: Some(Size(100)),
            ..Config::default()
        };
        assert!(cfg.validate_series().is_err());
        assert!(yaml_serde::from_str::<Config>("bogus: 1").is_err());
    }

    #[test]
    fn tls_without_the_feature_says_so() {
        let cfg = Config {
            ssl: true,
            ..Config::default()
        };
        let r = cfg.target();
        if cfg!(feature = "tls") {
            assert!(r.is_ok());
        } else {
            assert!(r.unwrap_err().to_string().contains("built without TLS"));
        }
    }
}
