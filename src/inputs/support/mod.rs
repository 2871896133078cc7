//! Helpers shared by the Linux inputs.

mod filter;
mod known;
mod procfile;

pub use filter::NameFilter;
pub use known::Known;
pub use procfile::{fields, ProcFile};
