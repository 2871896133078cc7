use super::*;

#[test]
fn server_addresses_as_the_python_agent_wrote_them() {
    assert_eq!(
        Listen::parse("tcp://127.0.0.1:5514"),
        Ok(Listen::Tcp("127.0.0.1:5514".into()))
    );
    assert_eq!(Listen::parse("udp://:514"), Ok(Listen::Udp("0.0.0.0:514".into())));
    assert_eq!(Listen::parse("tls://[::1]:6514"), Ok(Listen::Tls("[::1]:6514".into())));
    assert_eq!(
        Listen::parse("unix:///run/rtc.sock"),
        Ok(Listen::Unix("/run/rtc.sock".into()))
    );
    assert_eq!(
        Listen::parse("unixgram:///dev/log"),
        Ok(Listen::UnixGram("/dev/log".into()))
    );
    assert!(Listen::parse("udp://host").is_err());
    assert!(Listen::parse("http://x:1").is_err());
    assert!(Listen::parse("udp://:99999").is_err());
}

fn built(yaml: &str) -> Result<Syslog, BuildError> {
    let cfg: Config = yaml_serde::from_str(yaml).unwrap();
    build(&cfg, &BuildCtx::with_roots("/proc", "/sys"))
}

#[test]
fn bad_options_name_the_option() {
    let err = |y: &str| built(y).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err("server: 'udp//x'").contains("server"));
    assert!(err("content_encoding: gzip").contains("content_encoding"));
    assert!(err("socket_mode: '999'").contains("socket_mode"));
    assert!(err("server: 'tcp://:1'\ntls_cert: /x.pem\ntls_key: /x.key").contains("server"));
    assert!(built("server: 'tcp://:5514'\nframing: non-transparent\ntrailer: NUL").is_ok());
}

#[test]
fn the_python_agents_example_is_accepted() {
    let cfg: Config = yaml_serde::from_str(
        "server: \"tcp://127.0.0.1:5514\"\ntls_cert: \"\"\ntls_key: \"\"\nsocket_mode: \"\"\n\
         max_connections: 0\nread_timeout: 0\nread_buffer_size: \"64KiB\"\n\
         keep_alive_period: \"5m\"\ncontent_encoding: \"identity\"\n\
         max_decompression_size: \"500MB\"\nframing: \"octet-counting\"\ntrailer: \"LF\"\n\
         best_effort: false\nsyslog_standard: \"RFC5424\"\nsdparam_separator: \"_\"\n",
    )
    .unwrap();
    assert_eq!(cfg.read_buffer_size.0, 64 << 10);
    assert!(build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).is_ok());
}
