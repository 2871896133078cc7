//! What `processes` and `process` share about /proc/<pid>.

/// The longest `/proc/<pid>/stat` read; real lines are under 1 KiB (52 numbers and a command
/// name of at most 64 bytes).
pub const STAT_MAX: usize = 4096;

/// `pid` as a decimal number, if `name` is a process directory's name.
pub fn pid_of(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}
