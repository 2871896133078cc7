//! The Redis client every plugin uses (the `redistimeseries` output, the `redis` input):
//! where to connect, and one connection on smol.

mod conn;
mod keys;
mod target;

pub use conn::{Conn, ConnOptions, Endpoint};
pub use keys::RedisKeys;
pub use target::{RedisUrl, Target};
