//! The log records of library code a test runs in its own process (an output driven
//! directly), kept for asserting on messages; `RTC_TEST_LOG=1` also prints them.

use std::sync::{Mutex, OnceLock};

/// Every log line of the test binary, for asserting on messages.
static LOGS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        let line = format!("{} {}", r.level(), r.args());
        if std::env::var_os("RTC_TEST_LOG").is_some() {
            eprintln!("{line}");
        }
        LOGS.get_or_init(Default::default)
            .lock()
            .unwrap()
            .push(line);
    }
    fn flush(&self) {}
}

pub fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = log::set_boxed_logger(Box::new(Capture));
        log::set_max_level(log::LevelFilter::Debug);
    });
}

pub fn logs_containing(needle: &str) -> Vec<String> {
    LOGS.get_or_init(Default::default)
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}
