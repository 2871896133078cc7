use super::*;

fn config(yaml: &str) -> Config {
    yaml_serde::from_str(yaml).unwrap()
}

#[test]
fn options_at_fault_are_named() {
    let ctx = BuildCtx::with_roots("/proc", "/sys");
    for (yaml, key) in [
        ("listen: here", "listen"),
        ("path: metrics", "path"),
        ("metrics: {\"a b\": {}}", "metrics"),
    ] {
        let e = build(&config(yaml), &ctx).err().unwrap();
        assert_eq!(e.option, Some(key), "{yaml}: {e:?}");
    }
    assert!(build(&config("metrics: {done: {type: counter, labels: [job]}}"), &ctx).is_ok());
}

#[test]
fn the_token_never_prints() {
    let cfg = config("token: hunter2");
    let text = crate::config::yaml_text::flow(&cfg);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{cfg:?}").contains("hunter2"));
}

#[test]
fn sample_is_the_default() {
    let cfg: Config = crate::inputs::testutil::sample_options(SAMPLE);
    assert_eq!(cfg.port, Config::default().port);
    assert!(cfg.metrics.is_empty());
}
