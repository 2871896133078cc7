//! The Redis client every plugin uses (the `redistimeseries` output, the `redis` input):
//! where to connect, and one connection on smol.

mod conn;
mod target;

pub use conn::{Conn, ConnOptions, Endpoint};
pub use target::{RedisUrl, Target};
