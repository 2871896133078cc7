//! Keys that several plugins share (a Redis connection's, TLS files), written flat among a
//! plugin's own keys as users write them, and read in the same pass as the rest of the
//! file. serde's `flatten` would buffer the map and lose every error's line and column
//! under `deny_unknown_fields`; here the shared keys are peeled off the map as it is read
//! (as `entry.rs` does for `interval`) and the rest goes to the plugin's derived
//! `Deserialize`, which still denies unknown keys.

use serde::de::value::StringDeserializer;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};
use serde::ser::{Impossible, SerializeStruct};
use serde::{Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A group of shared keys, each read from the map by its own name.
pub trait SharedKeys: Default {
    /// The keys, in the order an "unknown field" error lists them.
    fn names() -> Vec<&'static str>;
    /// Writes the keys as fields of the plugin's options (`check` prints them).
    fn serialize_fields<T: SerializeStruct>(&self, out: &mut T) -> Result<(), T::Error>;
    /// Reads the value of `key` from `map` into `self` when `key` is one of this group's;
    /// `false` (nothing read) leaves it to the plugin.
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// A plugin's options that hold a group of shared keys beside their own. The own keys are
/// read by the derived `Deserialize` of a `#[serde(remote = "Self")]` struct whose shared
/// field is `#[serde(skip)]`; its `Serialize` splices the shared keys in ([`SplicedShared`]).
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
            seen: Vec::new(),
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
    /// The shared keys read so far: one written twice is refused, as serde refuses an own one.
    seen: Vec<String>,
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
                if self.seen.contains(&key) {
                    return Err(A::Error::custom(format_args!("duplicate field `{key}`")));
                }
                self.seen.push(key);
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

/// The `Serializer` methods of [`SplicedShared`] for values that are not a struct.
macro_rules! refuse_scalars {
    ($($method:ident($ty:ty),)*) => {
        $(fn $method(self, _: $ty) -> Result<S::Ok, S::Error> {
            Err(not_a_struct())
        })*
    };
}

/// The serializer a plugin's derived `Serialize` writes its own keys into, with the shared
/// ones spliced in where the struct declares them: before the own key `before`, or first.
/// serde's `flatten` would do the same through a map and cost the minimal build 20 KB.
pub struct SplicedShared<'k, S, K> {
    pub inner: S,
    pub shared: &'k K,
    pub before: Option<&'static str>,
}

/// A struct being written, that writes the shared keys before the field `before`.
pub struct Spliced<'k, T, K> {
    inner: T,
    shared: Option<&'k K>,
    before: Option<&'static str>,
}

impl<T: SerializeStruct, K: SharedKeys> Spliced<'_, T, K> {
    fn write_shared(&mut self) -> Result<(), T::Error> {
        match self.shared.take() {
            Some(shared) => shared.serialize_fields(&mut self.inner),
            None => Ok(()),
        }
    }
}

impl<T: SerializeStruct, K: SharedKeys> SerializeStruct for Spliced<'_, T, K> {
    type Ok = T::Ok;
    type Error = T::Error;

    fn serialize_field<V: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), T::Error> {
        if self.before.is_none_or(|b| b == key) {
            self.write_shared()?;
        }
        self.inner.serialize_field(key, value)
    }

    fn end(mut self) -> Result<T::Ok, T::Error> {
        self.write_shared()?;
        self.inner.end()
    }
}

impl<'k, S: Serializer, K: SharedKeys> Serializer for SplicedShared<'k, S, K> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Spliced<'k, S::SerializeStruct, K>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.inner.serialize_struct(name, len + K::names().len())?;
        Ok(Spliced {
            inner,
            shared: Some(self.shared),
            before: self.before,
        })
    }

    refuse_scalars! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_f32(f32), serialize_f64(f64), serialize_char(char),
        serialize_str(&str), serialize_bytes(&[u8]), serialize_unit_struct(&'static str),
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(not_a_struct())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Err(not_a_struct())
    }
}

/// Options with shared keys are structs; anything else is a mistake in this file.
fn not_a_struct<E: serde::ser::Error>() -> E {
    E::custom("options with shared keys must serialize as a struct")
}

/// Implements `Deserialize` (through [`deserialize`]), [`WithShared`] and `Serialize` for
/// a `#[serde(remote = "Self")]` options struct whose field `$field` (`#[serde(skip)]`)
/// holds the `$shared` keys; `before "key"` prints them before that own key, not first.
macro_rules! with_shared {
    ($options:ty, $field:ident: $shared:ty) => {
        $crate::config::shared::with_shared!($options, $field: $shared, None);
    };
    ($options:ty, $field:ident: $shared:ty, before $key:literal) => {
        $crate::config::shared::with_shared!($options, $field: $shared, Some($key));
    };
    ($options:ty, $field:ident: $shared:ty, $before:expr) => {
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
                let shared = $crate::config::shared::SplicedShared {
                    inner: s,
                    shared: &self.$field,
                    before: $before,
                };
                <$options>::serialize(self, shared)
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
        assert_eq!(cfg.key_format.as_deref(), Some("{name}"));
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
    fn check_prints_the_shared_keys_flat_where_the_options_declare_them() {
        use crate::config::yaml_text::flow;
        let cfg: Config =
            yaml_serde::from_str("host: r.lan\npassword: hunter2\nssl: true\n").unwrap();
        let shown = flow(&cfg);
        assert!(
            shown.starts_with("{ host: r.lan, port: 6379, db: 0, password: ***, ssl: true, ssl_insecure_skip_verify: false, connect_timeout: 5s, write_timeout: 10s, cluster: false, "),
            "{shown}"
        );
        #[cfg(feature = "mqtt")]
        {
            let mqtt: crate::outputs::mqtt::Config = yaml_serde::from_str("ssl: true\n").unwrap();
            let shown = flow(&mqtt);
            assert!(
                shown.starts_with("{ host: 127.0.0.1, port: 1883, ssl: true, ssl_insecure_skip_verify: false, keep_alive: 30s, "),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_shared_key_written_twice_is_refused_as_an_own_one_is() {
        let e = error("      host: h\n      port: 1\n      host: i\n");
        assert!(
            e.starts_with("c.yaml:3:7: outputs[0].redistimeseries: duplicate field `host`"),
            "{e}"
        );
        let e = error("      key_format: k\n      key_format: l\n");
        assert!(
            e.starts_with("c.yaml:3:7: outputs[0].redistimeseries: duplicate field `key_format`"),
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
