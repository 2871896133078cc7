//! rtcollector: a small metrics agent for Linux and ARM boards.
//!
//! See ARCHITECTURE.md for the data path and the invariants.

pub mod agent;
pub mod cli;
pub mod common;
pub mod config;
pub mod core;
pub mod inputs;
pub mod logging;
pub mod outputs;
pub mod signals;
