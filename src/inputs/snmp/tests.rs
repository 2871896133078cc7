//! The codec on real-shaped and random bytes, the config's checks and its secrets. The
//! exchanges with a real agent are in tests/snmp.rs (Debian's snmpd).

use super::ber::{self, Oid, Writer};
use super::pdu::{self, Value};
use super::*;
use crate::inputs::testutil::sample_options;

fn oid(s: &str) -> Oid {
    oids::parse(s).unwrap()
}

/// A v2c response with one variable binding of every type a value can have.
fn response(community: &[u8], request_id: i64) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    let msg = w.open(ber::SEQUENCE);
    w.integer(1);
    w.octets(community);
    let p = w.open(pdu::RESPONSE);
    w.integer(request_id);
    w.integer(0);
    w.integer(0);
    let list = w.open(ber::SEQUENCE);
    let values: [(u8, &[u8]); 10] = [
        (ber::INTEGER, &[0xff, 0x38]),
        (ber::OCTET_STRING, b"eth0"),
        (ber::COUNTER32, &[0x00, 0xff, 0xff, 0xff, 0xff]),
        (ber::GAUGE32, &[0x3b, 0x9a, 0xca, 0x00]),
        (ber::TIMETICKS, &[0x01, 0x00]),
        (ber::COUNTER64, &[0x00, 0xff, 0, 0, 0, 0, 0, 0, 1]),
        (ber::IP_ADDRESS, &[10, 0, 0, 1]),
        (ber::OCTET_STRING, b"0.25"),
        (ber::NO_SUCH_INSTANCE, &[]),
        (ber::END_OF_MIB_VIEW, &[]),
    ];
    for (i, (tag, content)) in values.iter().enumerate() {
        let vb = w.open(ber::SEQUENCE);
        w.oid(&Oid::from_arcs(&[1, 3, 6, 1, 2, 1, 2, 2, 1, 10, i as u32 + 1]).unwrap());
        w.tlv(*tag, content);
        w.close(vb);
    }
    w.close(list);
    w.close(p);
    w.close(msg);
    buf
}

/// A v3 request as the session writes it (authPriv with a made-up engine).
fn v3_message() -> Vec<u8> {
    let mut scoped = Vec::new();
    let ask = pdu::Ask { kind: pdu::GET_BULK, request_id: 7, max_repetitions: 25 };
    pdu::write_scoped(&mut scoped, b"engine-id-12", ask, &[oid("ifHCInOctets")]);
    let header = pdu::V3Header {
        msg_id: 99,
        flags: pdu::FLAG_AUTH | pdu::FLAG_REPORTABLE,
        engine_id: b"engine-id-12",
        boots: 3,
        time: 12345,
        user: b"monitor",
        mac_len: 12,
        salt: b"",
    };
    let mut buf = Vec::new();
    pdu::write_v3(&mut buf, &header, &scoped, false);
    buf
}

#[test]
fn a_response_decodes_with_every_value_type() {
    let bytes = response(b"public", 42);
    let mut p = pdu::read_community(&bytes, 1, b"public").unwrap();
    assert_eq!((p.kind, p.request_id, p.error_status), (pdu::RESPONSE, 42, 0));
    let mut got = Vec::new();
    while let Some(vb) = p.next_varbind() {
        got.push(vb.unwrap().1);
    }
    assert_eq!(
        got,
        [
            Value::Integer(-200),
            Value::Octets(b"eth0"),
            Value::Counter32(u32::MAX),
            Value::Gauge32(1_000_000_000),
            Value::TimeTicks(256),
            Value::Counter64(0xff00_0000_0000_0001),
            Value::IpAddress([10, 0, 0, 1]),
            Value::Octets(b"0.25"),
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ]
    );
    assert_eq!(pdu::read_community(&bytes, 1, b"private").unwrap_err(), pdu::MessageError::Foreign);
    assert_eq!(pdu::read_community(&bytes, 0, b"public").unwrap_err(), pdu::MessageError::Foreign);
}

#[test]
fn a_v3_message_reads_back_with_its_auth_parameters_located() {
    let bytes = v3_message();
    let m = pdu::read_v3(&bytes).unwrap();
    assert_eq!((m.msg_id, m.flags, m.sec.boots, m.sec.time), (99, 5, 3, 12345));
    assert_eq!((m.sec.engine_id, m.sec.user), (&b"engine-id-12"[..], &b"monitor"[..]));
    assert_eq!(&bytes[m.sec.auth_at..m.sec.auth_at + 12], &[0; 12]);
    assert!(!m.encrypted);
}

/// Every decoder a datagram meets, as the session applies them; returns how many variable
/// bindings decoded. Must never panic.
fn decode_everything(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut text = String::new();
    let mut drain = |mut p: pdu::Pdu<'_>| {
        while let Some(Ok((_, v))) = p.next_varbind() {
            let _ = values::number(&v);
            values::text_into(&v, &mut text);
            n += 1;
        }
    };
    if let Ok(p) = pdu::read_community(bytes, 1, b"public") {
        drain(p);
    }
    if let Ok(m) = pdu::read_v3(bytes) {
        assert!(m.sec.auth_at + m.sec.auth.len() <= bytes.len());
        if !m.encrypted {
            if let Ok(p) = pdu::read_scoped(m.scoped) {
                drain(p);
            }
        }
    }
    if let Ok(p) = pdu::read_decrypted(bytes) {
        drain(p);
    }
    let _ = ber::Reader::new(bytes).oid();
    n
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The decoders on garbage in every test run (the `fuzz/` target `snmp` does the same with
/// coverage guidance): mutated real-shaped messages and random bytes. No panic, and what
/// decodes decodes the same way twice.
#[test]
fn random_and_mutated_messages_never_panic() {
    let mut rng = Rng(0x51_7c_c1_b7_27_22_0a_95);
    let bases = [response(b"public", 1), v3_message()];
    let mut buf = Vec::with_capacity(2048);
    let mut decoded = 0usize;
    for _ in 0..200_000u32 {
        buf.clear();
        let base = &bases[rng.below(bases.len())];
        match rng.below(5) {
            0 => {
                buf.extend_from_slice(&base[..rng.below(base.len())]);
                let n = rng.below(300);
                buf.extend((0..n).map(|_| rng.next() as u8));
            }
            1 => {
                // A length byte anywhere set to anything (long forms included).
                buf.extend_from_slice(base);
                let at = rng.below(buf.len());
                buf[at] = [0x80, 0x81, 0x82, 0x84, 0x85, 0xff, 0x7f][rng.below(7)];
            }
            2 => buf.extend_from_slice(&base[..rng.below(base.len() + 1)]),
            _ => {
                buf.extend_from_slice(base);
                for _ in 0..1 + rng.below(6) {
                    let at = rng.below(buf.len());
                    buf[at] ^= 1 << rng.below(8);
                }
            }
        }
        let n = decode_everything(&buf);
        assert_eq!(decode_everything(&buf), n, "decoding is pure");
        decoded += n;
    }
    assert!(decoded > 100_000, "the mutations still reach the variable bindings: {decoded}");
}

// ---------------------------------------------------------------- config

fn config(yaml: &str) -> Config {
    yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"))
}

fn build_error(yaml: &str) -> BuildError {
    match build(&config(yaml), &BuildCtx::with_roots("/proc", "/sys")) {
        Ok(_) => panic!("accepted: {yaml}"),
        Err(e) => e,
    }
}

#[test]
fn the_sample_is_a_valid_config_that_builds() {
    // The loader checks the sample as it is; built here after its `$$` became `$`, as the
    // loader's interpolation does.
    let _: Config = sample_options(SAMPLE);
    let mut items: Vec<BTreeMap<String, Config>> = yaml_serde::from_str(&SAMPLE.replace("$$", "$")).unwrap();
    let cfg = items.pop().unwrap().remove("snmp").unwrap();
    assert_eq!(cfg.snmp_version, Version::V2c);
    assert!(cfg.interfaces);
    let input = build(&cfg, &BuildCtx::with_roots("/proc", "/sys")).expect("the sample builds");
    // The range of ten and the three single OIDs, ifTable and ifXTable columns.
    assert_eq!(input.scalars.len(), 13);
    assert_eq!(input.scalars[3].oid.to_string(), "1.3.6.1.2.1.2.2.1.8.1");
    assert_eq!(input.scalars[12].oid.to_string(), "1.3.6.1.2.1.2.2.1.8.10");
}

#[test]
fn defaults_are_pollects() {
    let d = Config::default();
    assert_eq!((d.port, d.snmp_version, d.community_string.expose()), (161, Version::V1, ""));
    let Ok(Security::Community { community, .. }) = security(&config("{host: h}")) else { panic!("v1") };
    assert_eq!(community, b"public", "an empty community is pollect's default");
    assert_eq!((d.auth_protocol, d.privacy_protocol), (AuthProtocol::Sha1, PrivProtocol::Aes128));
    for v in ["1", "2", "2c", "3", "v3"] {
        let c = config(&format!("{{host: h, snmpVersion: {v}}}"));
        assert_ne!(format!("{:?}", c.snmp_version), "", "{v}");
    }
    assert!(yaml_serde::from_str::<Config>("{host: h, snmpVersion: 4}").is_err());
    assert!(yaml_serde::from_str::<Config>("{host: h, authProtocol: SHA1024}").is_err());
    let c = config("{host: h, authProtocol: SHA-256, privacyProtocol: DES}");
    assert_eq!((c.auth_protocol, c.privacy_protocol), (AuthProtocol::Sha256, PrivProtocol::Des));
}

#[test]
fn config_errors_name_the_option() {
    let m = "metrics: [{name: up, oid: sysUpTime.0}]";
    let cases: &[(&str, &str, &str)] = &[
        (m, "host", "required"),
        ("{host: h}", "metrics", "at least one metric"),
        (&format!("{{host: h, snmpVersion: 3, {m}}}"), "username", "security name"),
        (&format!("{{host: h, snmpVersion: 3, username: u, authPassPhrase: short, {m}}}"), "authPassPhrase", "8 characters"),
        (&format!("{{host: h, snmpVersion: 3, username: u, privacyPassPhrase: longenough, {m}}}"), "privacyPassPhrase", "authentication too"),
        ("{host: h, metrics: [{name: x, oid: ifFrob.1}]}", "metrics", "`ifFrob` is not a name"),
        ("{host: h, metrics: [{name: 1x, oid: sysUpTime.0}]}", "metrics", "`name` must be"),
        ("{host: h, metrics: [{name: x, oid: ifOperStatus.1, range: {from: 1, to: 3, label: i}}]}", "metrics", "`$${i}`"),
        ("{host: h, metrics: [{name: x, oid: 'ifOperStatus.${i}', range: {from: 3, to: 1, label: i}}]}", "metrics", "from"),
        ("{host: h, metrics: [{name: x, oid: 'ifOperStatus.${i}', walk: true, range: {from: 1, to: 3, label: i}}]}", "metrics", "do not go together"),
        ("{host: h, metrics: [{name: x, oid: ifOperStatus.1, labels: {a: ifDescr}}]}", "metrics", "need `walk: true`"),
        ("{host: h, metrics: [{name: x, oid: ifOperStatus, walk: true, labels: {agent: ifDescr}}]}", "metrics", "taken"),
    ];
    for (yaml, option, words) in cases {
        let yaml = if yaml.starts_with('{') { yaml.to_string() } else { format!("{{{yaml}}}") };
        let e = build_error(&yaml);
        let text = format!("{e:?} {e}");
        assert!(text.contains(option) && text.contains(words), "{yaml}: {text}");
    }
    assert!(yaml_serde::from_str::<Config>("{host: h, port: 0}").is_err());
    assert!(yaml_serde::from_str::<Config>("{host: h, timeout: 1ms}").is_err());
    assert!(yaml_serde::from_str::<Config>("{host: h, community: x}").is_err(), "unknown keys");
}

#[test]
fn secrets_never_print_in_the_check_plan() {
    std::env::set_var("SECRET_SNMP_TEST_AUTH", "auth-from-env");
    let c = config(
        "{host: h, communityString: comm-secret, snmpVersion: 3, username: u, authPassPhrase: 'secret:snmp/test/auth', \
         privacyPassPhrase: priv-secret-1, metrics: [{name: up, oid: sysUpTime.0}]}",
    );
    assert_eq!(c.auth_pass_phrase.expose(), "auth-from-env");
    let plan = crate::inputs::InputOptions::yaml(&c);
    for secret in ["comm-secret", "auth-from-env", "priv-secret-1", "snmp/test/auth"] {
        assert!(!plan.contains(secret), "{plan}");
        assert!(!format!("{c:?}").contains(secret));
    }
    assert!(plan.contains("***"), "{plan}");
}

#[test]
fn a_fallback_column_is_skipped_only_when_nothing_else_reads_it() {
    let built = |yaml: &str| build(&config(yaml), &BuildCtx::with_roots("/proc", "/sys")).unwrap();
    let column = |s: &Snmp, name: &str| s.columns.iter().find(|c| c.oid == oid(name)).unwrap().only_fallback_of;
    let preset = built("{host: h, snmpVersion: 2c, interfaces: true}");
    let hc = preset.columns.iter().position(|c| c.oid == oid("ifHCInOctets")).unwrap();
    assert_eq!(column(&preset, "ifInOctets"), Some(hc));
    let high = preset.columns.iter().position(|c| c.oid == oid("ifHighSpeed")).unwrap();
    assert_eq!(column(&preset, "ifSpeed"), Some(high));
    assert_eq!(column(&preset, "ifDescr"), None, "a label column");
    let both = built("{host: h, snmpVersion: 2c, interfaces: true, metrics: [{name: mine, oid: ifInOctets, walk: true}]}");
    assert_eq!(column(&both, "ifInOctets"), None, "a metric of its own reads it");
    // v1: the 32-bit columns are the primaries; nothing stands in.
    let v1 = built("{host: h, interfaces: true}");
    assert!(v1.columns.iter().all(|c| c.only_fallback_of.is_none()));
    assert!(!v1.columns.iter().any(|c| c.oid == oid("ifHCInOctets")));
}
