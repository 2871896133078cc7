//! Polling for a condition that a peer or the agent makes true in its own time.

use std::time::{Duration, Instant};

/// Calls `f` every 100 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
