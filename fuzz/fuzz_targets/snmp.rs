//! Any bytes through the SNMP message decoders the `snmp` input applies to a datagram:
//! v1/v2c, v3 (header, security parameters, plain scoped PDU) and a decrypted scoped PDU,
//! each variable binding read and turned into a number and a label text. No panic, and
//! decoding is pure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtcollector::inputs::snmp::pdu::{read_community, read_decrypted, read_scoped, read_v3, Pdu};
use rtcollector::inputs::snmp::values::{number, text_into};

fn drain(mut p: Pdu<'_>, text: &mut String) -> usize {
    let mut n = 0;
    while let Some(Ok((_, v))) = p.next_varbind() {
        let _ = number(&v);
        text_into(&v, text);
        n += 1;
    }
    n
}

fn decode(data: &[u8]) -> usize {
    let mut text = String::new();
    let mut n = 0;
    for version in [0, 1] {
        if let Ok(p) = read_community(data, version, b"public") {
            n += drain(p, &mut text);
        }
    }
    if let Ok(m) = read_v3(data) {
        assert!(m.sec.auth_at + m.sec.auth.len() <= data.len());
        if !m.encrypted {
            if let Ok(p) = read_scoped(m.scoped) {
                n += drain(p, &mut text);
            }
        }
    }
    if let Ok(p) = read_decrypted(data) {
        n += drain(p, &mut text);
    }
    n
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(decode(data), decode(data), "decoding is pure");
});
