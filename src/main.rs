fn main() {
    std::process::exit(rtcollector::cli::main(
        std::env::args_os().skip(1).collect(),
    ));
}
