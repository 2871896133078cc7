//! Helpers shared by the Linux inputs.

mod filter;
mod keyed;
mod known;
mod parsed;
mod procfile;
pub mod snmp;

pub use filter::NameFilter;
pub use keyed::keyed_values;
pub use known::Known;
pub use parsed::{read_parsed, read_parsed_optional};
pub use procfile::{fields, numbers_into, ProcFile};
