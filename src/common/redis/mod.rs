//! The Redis client every plugin uses (the `redistimeseries` output, the `redis` input):
//! the keys users write, where to connect, one connection on smol, and the session that
//! keeps it and reconnects with backoff.

#[cfg(feature = "cluster")]
pub mod cluster;
mod conn;
mod keys;
mod session;
mod target;

pub use conn::{Conn, ConnOptions, Endpoint};
pub use keys::RedisKeys;
pub use session::{Connected, Session};
#[cfg(feature = "socks")]
pub(crate) use target::percent_decode;
pub use target::{RedisUrl, Target};
