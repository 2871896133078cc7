//! The wall clock, in the agent's sample stamps (ms since the epoch) and in seconds.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

pub fn now_secs() -> f64 {
    since_epoch().as_secs_f64()
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
}
