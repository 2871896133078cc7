//! Log setup: `log` + `simplelog` to stderr, level switchable at reload.

use simplelog::{ConfigBuilder, LevelFilter, WriteLogger};

pub fn init(debug: bool) {
    let config = ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .build();
    // Ignored if a logger exists already (tests that run the agent twice).
    let _ = WriteLogger::init(LevelFilter::Trace, config, std::io::stderr());
    set_debug(debug);
}

/// The logger accepts everything; this filter is what `debug:` switches.
pub fn set_debug(debug: bool) {
    log::set_max_level(if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
}
