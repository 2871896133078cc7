//! The wait between reconnection attempts: doubling from a first delay up to a cap.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            current: first.min(cap),
        }
    }

    /// The wait before the next attempt; the one after it is twice as long, at most the cap.
    pub fn next_delay(&mut self) -> Duration {
        let wait = self.current;
        self.current = self.current.saturating_mul(2).min(self.cap);
        wait
    }

    /// After a success: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.current = self.first.min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(b: &mut Backoff, n: usize) -> Vec<u128> {
        (0..n).map(|_| b.next_delay().as_millis()).collect()
    }

    #[test]
    fn doubles_up_to_the_cap_and_stays_there() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(
            millis(&mut b, 9),
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::from_secs(30));
    }

    #[test]
    fn reset_starts_again_from_the_first_delay() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(millis(&mut b, 3), [1000, 2000, 4000]);
        b.reset();
        assert_eq!(millis(&mut b, 2), [1000, 2000]);
    }
}
