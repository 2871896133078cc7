//! List entries of `inputs:` and `outputs:`: a bare name, or a one-key map `name: {options}`.
//!
//! Parsed in the same pass as the rest of the file, so an error inside an input's options
//! still carries the line and column of the offending key.

use super::range::DAY_MS;
use super::units::{Bounded, Dur};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// The plugins of one kind (inputs or outputs) that can be named in the config.
pub trait Registry {
    type Options: ?Sized + fmt::Debug;
    /// "input" or "output", for messages.
    const KIND: &'static str;
    /// Keys every entry of this kind accepts besides its own options.
    const COMMON_KEYS: &'static [&'static str];
    /// Every name in this build with a one-line description.
    fn known() -> &'static [(&'static str, &'static str)];
    /// Names this build left out, each as `name feature` (the cargo feature that brings it
    /// in): one string per entry, half the table of (name, feature) pairs in the minimal build.
    fn not_built() -> &'static [&'static str];
    /// Options for `name` with every default, or `None` for an unknown name.
    fn defaults(name: &str) -> Option<Box<Self::Options>>;
    /// Options for `name` read from `d`, or `Ok(None)` for an unknown name.
    fn deserialize<'de, D: Deserializer<'de>>(
        name: &str,
        d: D,
    ) -> Result<Option<Box<Self::Options>>, D::Error>;
}

/// Options every input accepts.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Common {
    /// Overrides the global `interval` for this input.
    pub interval: Option<Dur>,
}

pub struct Entry<R: Registry> {
    pub name: String,
    pub common: Common,
    pub options: Box<R::Options>,
}

impl<R: Registry> fmt::Debug for Entry<R> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {:?}", self.name, self.options)
    }
}

fn unknown_name<R: Registry>(name: &str) -> String {
    let left_out = R::not_built()
        .iter()
        .filter_map(|entry| entry.split_once(' '))
        .find(|(n, _)| *n == name);
    if let Some((_, feature)) = left_out {
        return format!(
            "{} `{name}` is not in this build of rtcollector; build with `--features {feature}`",
            R::KIND
        );
    }
    let known: Vec<&str> = R::known().iter().map(|(n, _)| *n).collect();
    format!(
        "unknown {} `{name}`; known {}s: {}",
        R::KIND,
        R::KIND,
        known.join(", ")
    )
}

impl<'de, R: Registry> Deserialize<'de> for Entry<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor::<R>(PhantomData))
    }
}

struct EntryVisitor<R>(PhantomData<R>);

impl<'de, R: Registry> Visitor<'de> for EntryVisitor<R> {
    type Value = Entry<R>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an {} name, or a map `name: {{options}}`", R::KIND)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Entry<R>, E> {
        let options = R::defaults(name).ok_or_else(|| E::custom(unknown_name::<R>(name)))?;
        Ok(Entry {
            name: name.to_string(),
            common: Common::default(),
            options,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry<R>, A::Error> {
        let name: String = map
            .next_key()?
            .ok_or_else(|| de::Error::custom(format!("empty map: name the {}", R::KIND)))?;
        if R::defaults(&name).is_none() {
            return Err(de::Error::custom(unknown_name::<R>(&name)));
        }
        let (common, options) = map.next_value_seed(OptionsSeed::<R> {
            name: &name,
            kind: PhantomData,
        })?;
        if let Some(IgnoredAny) = map.next_key()? {
            return Err(de::Error::custom(format!(
                "more than one {} in one list item; start each with its own `- `",
                R::KIND
            )));
        }
        Ok(Entry {
            name,
            common,
            options,
        })
    }
}

struct OptionsSeed<'n, R> {
    name: &'n str,
    kind: PhantomData<R>,
}

impl<'de, R: Registry> DeserializeSeed<'de> for OptionsSeed<'_, R> {
    type Value = (Common, Box<R::Options>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, R: Registry> Visitor<'de> for OptionsSeed<'_, R> {
    type Value = (Common, Box<R::Options>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the options of {} `{}` as a map", R::KIND, self.name)
    }

    /// `- linux_cpu:` with nothing after it.
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        let options =
            R::defaults(self.name).ok_or_else(|| E::custom(unknown_name::<R>(self.name)))?;
        Ok((Common::default(), options))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut common = Common::default();
        let stripped = CommonKeys {
            inner: map,
            common: &mut common,
            accepted: R::COMMON_KEYS,
        };
        let options = R::deserialize(self.name, MapAccessDeserializer::new(stripped))?
            .ok_or_else(|| de::Error::custom(unknown_name::<R>(self.name)))?;
        Ok((common, options))
    }
}

/// Takes the common keys out of an entry's map and passes the rest on to the plugin's
/// own options struct (which denies unknown fields).
struct CommonKeys<'c, A> {
    inner: A,
    common: &'c mut Common,
    accepted: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CommonKeys<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else {
                return Ok(None);
            };
            if key == "interval" && self.accepted.contains(&"interval") {
                let interval: Bounded<Dur, 100, { DAY_MS }> = self.inner.next_value()?;
                self.common.interval = Some(interval.0);
                continue;
            }
            return seed
                .deserialize(de::value::StringDeserializer::<A::Error>::new(key))
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// Declares the plugin modules of one kind and their registry. An entry is
/// `"name" => module: "about",`, or `"name" => module if "feature": "about",` for a plugin
/// that only exists when the cargo feature is on (its name still gets a clear error).
macro_rules! plugin_registry {
    (
        $registry:ident, $options:ident, $ctx:ident, $output:ident, $kind:literal, $common:expr;
        $($name:literal => $module:ident $(if $feature:literal)? : $about:literal,)*
    ) => {
        $($(#[cfg(feature = $feature)])? pub mod $module;)*

        $($(#[cfg(feature = $feature)])?
        impl $options for $module::Config {
            fn build(&self, ctx: &$ctx) -> Result<Box<dyn $output>, $crate::config::BuildError> {
                // A module's `build` returns a `BuildError`, or a `String` when none of its
                // errors names an option.
                Ok(Box::new($module::build(self, ctx).map_err($crate::config::BuildError::from)?))
            }
            fn yaml(&self) -> String {
                $crate::config::yaml_text::flow(self)
            }
        })*

        #[doc = concat!("The ", $kind, " registry.")]
        pub struct $registry;

        impl $crate::config::Registry for $registry {
            type Options = dyn $options;
            const KIND: &'static str = $kind;
            const COMMON_KEYS: &'static [&'static str] = $common;

            fn known() -> &'static [(&'static str, &'static str)] {
                &[$($(#[cfg(feature = $feature)])? ($name, $about),)*]
            }

            fn not_built() -> &'static [&'static str] {
                &[$($(#[cfg(not(feature = $feature))] concat!($name, " ", $feature),)?)*]
            }

            fn defaults(name: &str) -> Option<Box<dyn $options>> {
                match name {
                    $($(#[cfg(feature = $feature)])?
                    $name => Some(Box::new($module::Config::default())),)*
                    _ => None,
                }
            }

            fn deserialize<'de, D: serde::Deserializer<'de>>(
                name: &str,
                d: D,
            ) -> Result<Option<Box<dyn $options>>, D::Error> {
                match name {
                    $($(#[cfg(feature = $feature)])?
                    $name => Ok(Some(Box::new(<$module::Config as serde::Deserialize>::deserialize(d)?))),)*
                    _ => {
                        drop(d);
                        Ok(None)
                    }
                }
            }
        }

        /// The commented YAML sample of plugin `name`, as a list item.
        pub fn sample(name: &str) -> Option<&'static str> {
            match name {
                $($(#[cfg(feature = $feature)])? $name => Some($module::SAMPLE),)*
                _ => None,
            }
        }
    };
}
pub(crate) use plugin_registry;

#[cfg(test)]
#[allow(unexpected_cfgs, dead_code)]
mod tests {
    use super::*;

    pub trait Plugin {}
    pub struct Ctx;
    pub trait Options: fmt::Debug {
        fn build(&self, ctx: &Ctx) -> Result<Box<dyn Plugin>, crate::config::BuildError>;
    }

    plugin_registry! {
        Ghosts, Options, Ctx, Plugin, "input", &[];
        "ghost" => ghost if "never-built": "only in builds with a feature no build has",
    }

    #[test]
    fn a_plugin_left_out_of_the_build_names_its_feature() {
        assert!(Ghosts::known().is_empty());
        assert_eq!(
            unknown_name::<Ghosts>("ghost"),
            "input `ghost` is not in this build of rtcollector; build with `--features never-built`"
        );
        assert!(unknown_name::<Ghosts>("other").starts_with("unknown input `other`"));
    }
}
