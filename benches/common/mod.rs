//! What the benches share besides the peers (those come from `tests/support`, as the tests
//! start them): knobs read from the environment and the CPU time a run took.
//!
//! Included with `mod common;`. The allocation counter is beside it in `counting_alloc.rs`,
//! included only by the benches that report allocations.

use std::str::FromStr;
use std::time::Duration;

/// The number in environment variable `name`, else `default` (also when it does not parse).
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User and system CPU time of this process so far (zero where getrusage fails).
// Not every bench that reads knobs also times its CPU.
#[allow(dead_code)]
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(ru) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Duration::ZERO;
    };
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(ru.user_time()) + tv(ru.system_time())
}
