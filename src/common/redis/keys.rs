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

#[cfg(feature = "socks")]
use crate::common::socks::{ProxySeed, ProxyUrl};

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
    /// TCP connect, proxy handshake, TLS handshake and login together.
    pub connect_timeout: Dur,
    /// `socks5_proxy` or `socks4_proxy`: every connection goes through this proxy.
    #[cfg(feature = "socks")]
    pub proxy: Option<ProxyUrl>,
    /// Built without SOCKS: the proxy key that was set, refused by [`Self::target`].
    #[cfg(not(feature = "socks"))]
    pub proxy_key: Option<&'static str>,
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
            #[cfg(feature = "socks")]
            proxy: None,
            #[cfg(not(feature = "socks"))]
            proxy_key: None,
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
        names.extend(["connect_timeout", "socks5_proxy", "socks4_proxy"]);
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
        out.serialize_field("connect_timeout", &self.connect_timeout)?;
        #[cfg(feature = "socks")]
        {
            let proxy = |socks5: bool| self.proxy.as_ref().filter(|p| p.socks5 == socks5);
            out.serialize_field("socks5_proxy", &proxy(true))?;
            out.serialize_field("socks4_proxy", &proxy(false))?;
        }
        Ok(())
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
            "socks5_proxy" | "socks4_proxy" => self.read_proxy(key, map)?,
            _ => return self.tls.read(key, map),
        }
        Ok(true)
    }
}

/// The proxy key `key` (one of the two) as a `&'static str`, for messages and errors.
fn proxy_key(key: &str) -> &'static str {
    if key == "socks5_proxy" {
        "socks5_proxy"
    } else {
        "socks4_proxy"
    }
}

impl RedisKeys {
    #[cfg(feature = "socks")]
    fn read_proxy<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let key = proxy_key(key);
        let other = self.proxy.as_ref().map(ProxyUrl::key);
        self.proxy = Some(map.next_value_seed(ProxySeed { key, other })?);
        Ok(())
    }

    /// Built without SOCKS: a proxy key is noted (its value read as the string it must be)
    /// and refused when the target is built, at the key's line, as TLS is. Refused here, the
    /// error would need a visitor of its own to point at the value, which costs the minimal
    /// build 3 KB.
    #[cfg(not(feature = "socks"))]
    fn read_proxy<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        map.next_value::<String>()?;
        self.proxy_key = Some(proxy_key(key));
        Ok(())
    }

    /// Where to connect, checked without the network. `plugin` and the reply timeout with
    /// the key that sets it go into the connection's options (see [`Self::conn_options`]).
    pub fn target(&self, opts: &ConnOptions) -> Result<Target, BuildError> {
        #[cfg(not(feature = "socks"))]
        if let Some(key) = self.proxy_key {
            return Err(BuildError::at(
                key,
                "a SOCKS proxy was set but this binary was built without SOCKS (cargo feature `socks`); use a build with default features, or connect without a proxy",
            ));
        }
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
            #[cfg(feature = "socks")]
            proxy: self.proxy.as_ref(),
            connect_timeout: self.connect_timeout.0,
            write_timeout,
            write_timeout_key,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "socks")]
    use crate::config::parse;
    #[cfg(feature = "socks")]
    use std::path::Path;

    /// The errors of configs with `options` (written at 6 spaces) in a `redistimeseries`
    /// output and (built with `apps`) in a `redis` input, each with the plugin's key path.
    #[cfg(feature = "socks")]
    fn errors(options: &str) -> Vec<(String, &'static str)> {
        let mut plugins = vec![(
            "outputs:\n  - redistimeseries:\n",
            "outputs[0].redistimeseries",
        )];
        if cfg!(feature = "apps") {
            plugins.push(("inputs:\n  - redis:\n", "inputs[0].redis"));
        }
        plugins
            .into_iter()
            .map(|(head, at)| {
                let text = format!("{head}{options}");
                match parse(Path::new("c.yaml"), &text) {
                    Ok(_) => (String::new(), at),
                    Err(e) => (e.to_string(), at),
                }
            })
            .collect()
    }

    #[cfg(feature = "socks")]
    #[test]
    fn both_proxy_keys_are_refused_at_the_second() {
        let errors = errors(
            "      socks4_proxy: socks4://127.0.0.1:1080\n      socks5_proxy: socks5://u:hunter2@127.0.0.1:1080\n",
        );
        for (e, at) in errors {
            assert!(
                e.starts_with(&format!(
                    "c.yaml:4:21: {at}.socks5_proxy: socks4_proxy is set already"
                )),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[cfg(feature = "socks")]
    #[test]
    fn a_bad_proxy_url_is_refused_at_its_line_and_column() {
        for (e, at) in errors("      host: h\n      socks5_proxy: socks4://u@h\n") {
            assert!(
                e.starts_with(&format!(
                    "c.yaml:4:21: {at}.socks5_proxy: must start with socks5:// or socks5h://"
                )),
                "{e}"
            );
        }
    }

    /// Options with nothing but the connection keys, as a plugin declares them.
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Options {
        #[serde(skip)]
        conn: super::RedisKeys,
    }

    crate::config::shared::with_shared!(Options, conn: super::RedisKeys);

    #[cfg(feature = "socks")]
    #[test]
    fn a_proxy_url_may_be_a_secret_and_reaches_the_connection_options() {
        std::env::set_var("SECRET_KEYS_TEST_PROXY", "socks5h://u:hunter2@p.lan:9050");
        let cfg: Options = yaml_serde::from_str("socks5_proxy: secret:keys-test/proxy\n").unwrap();
        let timeout = std::time::Duration::from_secs(1);
        let opts = cfg.conn.conn_options("test", timeout, "timeout");
        let proxy = opts.proxy.expect("the proxy is in the connection options");
        assert_eq!(proxy.password.as_ref().unwrap().expose(), "hunter2");
        assert!(proxy.remote_dns);
        let shown = format!("{:?} {}", cfg.conn, crate::config::yaml_text::flow(&cfg));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("socks5_proxy: \"socks5h://u:***@p.lan:9050\""),
            "{shown}"
        );
    }

    /// The error's place (the key's line) is tested through `check` in tests/cli.rs.
    #[cfg(not(feature = "socks"))]
    #[test]
    fn without_the_socks_feature_a_proxy_key_is_a_clear_config_error() {
        for key in ["socks5_proxy", "socks4_proxy"] {
            let cfg: Options = yaml_serde::from_str(&format!("{key}: socks5://h\n")).unwrap();
            let timeout = std::time::Duration::from_secs(1);
            let e = cfg
                .conn
                .target(&cfg.conn.conn_options("test", timeout, "timeout"))
                .unwrap_err();
            assert_eq!(e.option, Some(key));
            assert!(
                e.message.starts_with("a SOCKS proxy was set but this binary was built without SOCKS (cargo feature `socks`)"),
                "{}",
                e.message
            );
        }
    }
}
