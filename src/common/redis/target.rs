//! Where a Redis connection goes: a `redis://` URL, or the separate keys, checked without
//! the network (`check` must not need Redis).

use super::ConnOptions;
use crate::common::tls::check_options;
use crate::config::{BuildError, Secret};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

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
        let db =
            if path.is_empty() {
                None
            } else {
                match path.parse::<i64>() {
                    Ok(db) if (0..=i64::from(i32::MAX)).contains(&db) => Some(db),
                    _ => return Err(
                        "url: the database after `/` is not a whole number from 0 to 2147483647"
                            .into(),
                    ),
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

/// `%XX` sequences decoded (the user and password of a URL); errors start with `url: `.
pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
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
        check_options(self.tls, &o.tls, "`ssl: true` or a rediss:// url")?;
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
        assert_eq!(
            (u.host.as_str(), u.port, u.db),
            ("127.0.0.1", Some(26499), Some(0))
        );
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
}
