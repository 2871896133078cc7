//! Helpers shared by the Linux inputs.

mod filter;
mod procfile;

pub use filter::NameFilter;
pub use procfile::{fields, ProcFile};
