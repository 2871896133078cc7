//! Helpers shared by the inputs.

#[cfg(any(feature = "apps", feature = "smartctl"))]
pub mod command;
mod filter;
#[cfg(feature = "http")]
pub mod http;
mod keyed;
mod known;
mod parsed;
mod procfile;
pub mod snmp;
#[cfg(feature = "http")]
pub mod x509;

pub use filter::NameFilter;
pub use keyed::keyed_values;
pub use known::Known;
pub use parsed::{read_parsed, read_parsed_optional};
pub use procfile::{fields, numbers_into, ProcFile};
