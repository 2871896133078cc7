//! Every output, one module each, and the registry that maps config names to them.

use crate::config::Registry;
use crate::core::Output;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// What an output may need from the agent when it is built.
pub struct OutputCtx {
    pub hostname: String,
    /// Unique per output in the config (`stdout`, `stdout#2`): names its stats and files.
    pub key: String,
}

/// An output's parsed options, able to build the output.
pub trait OutputOptions: fmt::Debug {
    fn build(&self, ctx: &OutputCtx) -> Result<Box<dyn Output>, String>;
}

macro_rules! outputs {
    ($($name:literal => $module:ident : $about:literal,)*) => {
        $(pub mod $module;)*

        $(impl OutputOptions for $module::Config {
            fn build(&self, ctx: &OutputCtx) -> Result<Box<dyn Output>, String> {
                Ok(Box::new($module::build(self, ctx)?))
            }
        })*

        /// The output registry.
        pub struct Outputs;

        impl Registry for Outputs {
            type Options = dyn OutputOptions;
            const KIND: &'static str = "output";
            const COMMON_KEYS: &'static [&'static str] = &[];

            fn known() -> &'static [(&'static str, &'static str)] {
                &[$(($name, $about)),*]
            }

            fn defaults(name: &str) -> Option<Box<dyn OutputOptions>> {
                match name {
                    $($name => Some(Box::new($module::Config::default())),)*
                    _ => None,
                }
            }

            fn deserialize<'de, D: Deserializer<'de>>(
                name: &str,
                d: D,
            ) -> Result<Option<Box<dyn OutputOptions>>, D::Error> {
                match name {
                    $($name => Ok(Some(Box::new($module::Config::deserialize(d)?))),)*
                    _ => Ok(None),
                }
            }
        }

        /// The commented YAML sample of plugin `name`, as a list item.
        pub fn sample(name: &str) -> Option<&'static str> {
            match name {
                $($name => Some($module::SAMPLE),)*
                _ => None,
            }
        }
    };
}

outputs! {
    "stdout" => stdout: "prints samples as JSON lines or a readable table",
    "redistimeseries" => redistimeseries: "writes samples to RedisTimeSeries (Redis Stack or Redis 8), one labelled key per series",
}
