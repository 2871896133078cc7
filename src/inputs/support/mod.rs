//! Helpers shared by the inputs.

#[cfg(any(feature = "apps", feature = "smartctl", feature = "zfs"))]
pub mod command;
#[cfg(any(feature = "postgres", feature = "mariadb"))]
pub mod db;
#[cfg(feature = "http")]
pub mod http;
mod keyed;
mod known;
mod parsed;
mod pids;
mod procfile;
pub mod snmp;
#[cfg(feature = "sensors")]
pub mod sysfs_attr;

pub use crate::common::filter::NameFilter;
pub use keyed::keyed_values;
pub use known::Known;
pub use parsed::{read_parsed, read_parsed_optional};
pub use pids::{pid_of, STAT_MAX};
pub use procfile::{fields, numbers_into, ProcFile};
