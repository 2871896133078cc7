//! Clients and helpers that inputs and outputs share (TLS, SOCKS, Redis, MQTT, HTTP, name filters,
//! JSON strings, backoff). Beneath both: nothing here imports an input or an output.

#[cfg(any(feature = "prometheus", feature = "remote-write", feature = "postgres"))]
pub mod base64;
pub mod filter;
#[cfg(feature = "http")]
pub mod http;
#[cfg(any(feature = "prometheus", feature = "http-ingress"))]
pub mod http_server;
pub mod json;
#[cfg(feature = "logs")]
pub mod log_json;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(any(feature = "remote-write", feature = "otlp"))]
pub mod post;
#[cfg(any(feature = "remote-write", feature = "otlp"))]
pub mod protobuf;
pub mod redis;
#[cfg(feature = "socks")]
pub mod socks;
pub mod tcp;
pub mod tls;
