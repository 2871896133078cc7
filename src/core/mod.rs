//! The agent's core: metric model, scheduling, fan-out and buffering. It knows no input or
//! output by name.

pub mod atomic_file;
pub mod backoff;
pub mod byte_ring;
pub mod clock;
pub mod dir_lock;
pub mod emit;
pub mod hub;
pub mod input;
#[cfg(feature = "logs")]
pub mod logs;
pub mod metric;
pub mod offload;
pub mod output;
pub mod publish;
pub mod rate;
pub mod ring;
pub mod shared;
pub mod spill;
pub mod stats;

pub use emit::{Emitter, InputError};
pub use input::{ready, CollectFuture, Input};
pub use metric::{Sample, Series, SeriesId, SeriesKind, SeriesTable};
pub use output::{ready_write, Output, OutputError, SeriesView, WriteFuture, WriteReport};
