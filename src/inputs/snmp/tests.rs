//! Unit tests: the codec on real-shaped and random bytes.
