//! Keys that several plugins share (a Redis connection's, TLS files), written flat among a
//! plugin's own keys as users write them, and read in the same pass as the rest of the
//! file. serde's `flatten` would buffer the map and lose every error's line and column
//! under `deny_unknown_fields`; here the shared keys are peeled off the map as it is read
//! (as `entry.rs` does for `interval`) and the rest goes to the plugin's derived
//! `Deserialize`, which still denies unknown keys.

use serde::de::value::StringDeserializer;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A group of shared keys, each read from the map by its own name.
pub trait SharedKeys: Default {
    /// The keys, in the order an "unknown field" error lists them.
    fn names() -> Vec<&'static str>;
    /// Reads the value of `key` from `map` into `self` when `key` is one of this group's;
    /// `false` (nothing read) leaves it to the plugin.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// A plugin's options that hold a group of shared keys beside their own. The own keys are
/// read by the derived `Deserialize` of a `#[serde(remote = "Self")]` struct whose shared
/// field is `#[serde(flatten, skip_deserializing)]` (flattened when `check` prints it).
pub trait WithShared<'de>: Sized {
    type Shared: SharedKeys;
    /// The derived `Deserialize` (`Self::deserialize` of `remote = "Self"`).
    fn own<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    fn shared_mut(&mut self) -> &mut Self::Shared;
}

/// Reads options with shared keys: the plugin's `Deserialize`.
pub fn deserialize<'de, D: Deserializer<'de>, T: WithShared<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_map(SplitVisitor::<T>(PhantomData))
}

struct SplitVisitor<T>(PhantomData<T>);

impl<'de, T: WithShared<'de>> Visitor<'de> for SplitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of options")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let mut shared = T::Shared::default();
        let peeled = Peeled {
            inner: map,
            shared: &mut shared,
            own: &[],
        };
        let mut options = T::own(OwnKeys(peeled))?;
        *options.shared_mut() = shared;
        Ok(options)
    }
}

/// The map without the shared keys, which are read into `shared` on the way. `own` is
/// learnt from the plugin's derived `Deserialize`, so that an unknown key's error lists
/// the shared keys too.
struct Peeled<'s, S, A> {
    inner: A,
    shared: &'s mut S,
    own: &'static [&'static str],
}

/// The deserializer the plugin's own keys are read from: a struct's field names are noted
/// and the peeled map is handed over.
struct OwnKeys<'s, S, A>(Peeled<'s, S, A>);

impl<'de, S: SharedKeys, A: MapAccess<'de>> Deserializer<'de> for OwnKeys<'_, S, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.own = fields;
        visitor.visit_map(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// serde's "unknown field" message, listing the shared keys and the plugin's own.
fn unknown_key<S: SharedKeys>(key: &str, own: &[&str]) -> String {
    let mut known = S::names();
    known.extend_from_slice(own);
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{key}`, expected one of {}",
        quoted.join(", ")
    )
}

impl<'de, S: SharedKeys, A: MapAccess<'de>> MapAccess<'de> for Peeled<'_, S, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else {
                return Ok(None);
            };
            if self.shared.read(&key, &mut self.inner)? {
                continue;
            }
            if !self.own.is_empty() && !self.own.contains(&key.as_str()) {
                return Err(A::Error::custom(unknown_key::<S>(&key, self.own)));
            }
            return seed
                .deserialize(StringDeserializer::<A::Error>::new(key))
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Implements `Deserialize` (through [`deserialize`]), [`WithShared`] and `Serialize` for
/// a `#[serde(remote = "Self")]` options struct whose field `$field` holds the `$shared` keys.
macro_rules! with_shared {
    ($options:ty, $field:ident: $shared:ty) => {
        impl<'de> serde::Deserialize<'de> for $options {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::config::shared::deserialize(d)
            }
        }

        impl<'de> $crate::config::shared::WithShared<'de> for $options {
            type Shared = $shared;
            fn own<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$options>::deserialize(d)
            }
            fn shared_mut(&mut self) -> &mut $shared {
                &mut self.$field
            }
        }

        impl serde::Serialize for $options {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$options>::serialize(self, s)
            }
        }
    };
}
pub(crate) use with_shared;

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::outputs::redistimeseries::Config;
    use std::path::Path;

    fn error(options: &str) -> String {
        let text = format!("outputs:\n  - redistimeseries:\n{options}");
        parse(Path::new("c.yaml"), &text).unwrap_err().to_string()
    }

    #[test]
    fn shared_and_own_keys_are_read_from_one_flat_map() {
        let cfg: Config = yaml_serde::from_str(
            "host: r.lan\nport: 6380\nssl: true\nconnect_timeout: 2s\nkey_format: \"{name}\"\nwrite_timeout: 3s\n",
        )
        .unwrap();
        assert_eq!((cfg.conn.host.as_str(), cfg.conn.port), ("r.lan", 6380));
        assert!(cfg.conn.tls.ssl);
        assert_eq!(cfg.conn.connect_timeout.0.as_secs(), 2);
        assert_eq!(cfg.key_format, "{name}");
        assert_eq!(cfg.write_timeout.0.as_secs(), 3);
        assert_eq!(cfg.conn.db, 0, "an unset shared key keeps its default");
    }

    #[test]
    fn errors_in_shared_keys_keep_their_line_column_and_key() {
        let e = error("      host: h\n      port: 0\n");
        assert!(
            e.starts_with("c.yaml:4:13: outputs[0].redistimeseries.port: must be at least 1"),
            "{e}"
        );
        let e = error("      key_format: k\n      ssl: maybe\n");
        assert!(
            e.starts_with("c.yaml:4:12: outputs[0].redistimeseries.ssl: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn errors_in_own_keys_after_shared_ones_keep_theirs() {
        let e = error("      host: h\n      ssl: true\n      retention: xx\n");
        assert!(
            e.starts_with("c.yaml:5:18: outputs[0].redistimeseries.retention: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_and_the_list_names_shared_and_own_keys() {
        let e = error("      host: h\n      hots: x\n");
        assert!(
            e.starts_with("c.yaml:3:7: outputs[0].redistimeseries: unknown field `hots`, expected one of `url`, `host`,"),
            "{e}"
        );
        assert!(
            e.contains("`ssl_keyfile`") && e.contains("`key_format`"),
            "{e}"
        );
    }
}
