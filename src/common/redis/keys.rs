//! The connection keys of every plugin that talks to Redis, with their defaults.

use super::{ConnOptions, RedisUrl, Target};
use crate::common::tls::TlsKeys;
use crate::config::range;
use crate::config::shared::SharedKeys;
use crate::config::{BuildError, Dur, Secret};
use serde::de::MapAccess;
use serde::ser::SerializeStruct;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisKeys {
    /// `redis://[user[:password]@]host[:port][/db]`, or `rediss://…` for TLS. Overrides `host`,
    /// `port`, `db`, `username`, `password` and `ssl` where it sets them.
    pub url: Option<RedisUrl>,
    pub host: String,
    pub port: u16,
    pub db: i64,
    /// An ACL user (Redis 6+); needs `password`.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: TlsKeys,
    /// TCP connect, TLS handshake and login together.
    pub connect_timeout: Dur,
}

impl Default for RedisKeys {
    fn default() -> Self {
        RedisKeys {
            url: None,
            host: "localhost".into(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            tls: TlsKeys::default(),
            connect_timeout: Dur(Duration::from_secs(5)),
        }
    }
}

/// The values whose range is checked where they are read, so an error names their line.
#[derive(Deserialize)]
#[serde(transparent)]
struct Port(#[serde(deserialize_with = "range::port")] u16);

#[derive(Deserialize)]
#[serde(transparent)]
struct Db(#[serde(deserialize_with = "range::redis_db")] i64);

#[derive(Deserialize)]
#[serde(transparent)]
struct Timeout(#[serde(deserialize_with = "range::timeout")] Dur);

impl SharedKeys for RedisKeys {
    fn names() -> Vec<&'static str> {
        let mut names = vec!["url", "host", "port", "db", "username", "password"];
        names.extend(TlsKeys::names());
        names.push("connect_timeout");
        names
    }

    fn serialize_fields<T: SerializeStruct>(&self, out: &mut T) -> Result<(), T::Error> {
        out.serialize_field("url", &self.url)?;
        out.serialize_field("host", &self.host)?;
        out.serialize_field("port", &self.port)?;
        out.serialize_field("db", &self.db)?;
        out.serialize_field("username", &self.username)?;
        out.serialize_field("password", &self.password)?;
        self.tls.serialize_fields(out)?;
        out.serialize_field("connect_timeout", &self.connect_timeout)
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "url" => self.url = map.next_value()?,
            "host" => self.host = map.next_value()?,
            "port" => self.port = map.next_value::<Port>()?.0,
            "db" => self.db = map.next_value::<Db>()?.0,
            "username" => self.username = map.next_value()?,
            "password" => self.password = map.next_value()?,
            "connect_timeout" => self.connect_timeout = map.next_value::<Timeout>()?.0,
            _ => return self.tls.read(key, map),
        }
        Ok(true)
    }
}

impl RedisKeys {
    /// Where to connect, checked without the network. `plugin` and the reply timeout with
    /// the key that sets it go into the connection's options (see [`Self::conn_options`]).
    pub fn target(&self, opts: &ConnOptions) -> Result<Target, BuildError> {
        Target::from_options(
            self.url.as_ref(),
            &self.host,
            self.port,
            self.db,
            self.username.as_ref(),
            self.password.as_ref(),
            self.tls.ssl,
        )
        .checked(opts)
    }

    /// The TLS files and timeouts of a connection; `write_timeout_key` names the plugin's
    /// reply timeout (`write_timeout`, `timeout`).
    pub fn conn_options(
        &self,
        plugin: &'static str,
        write_timeout: Duration,
        write_timeout_key: &'static str,
    ) -> ConnOptions<'_> {
        ConnOptions {
            plugin,
            tls: self.tls.files(),
            connect_timeout: self.connect_timeout.0,
            write_timeout,
            write_timeout_key,
        }
    }
}
