//! OIDs as they are written in a config: numeric (`1.3.6.1.2.1.1.3.0`, with or without a
//! leading dot, `iso.3.6.1…` as snmpget prints them) or a name from a small built-in table
//! (`sysUpTime.0`, `IF-MIB::ifHCInOctets`), so that no MIB files are needed.

use super::ber::Oid;

/// Names the sample config and the interface preset use: SNMPv2-MIB's system group, IF-MIB's
/// ifTable and ifXTable, HOST-RESOURCES-MIB's system, storage and processor entries, and
/// UCD-SNMP-MIB's memory, load, CPU and disk entries.
const NAMES: &[(&str, &str)] = &[
    // SNMPv2-MIB
    ("sysDescr", "1.3.6.1.2.1.1.1"),
    ("sysObjectID", "1.3.6.1.2.1.1.2"),
    ("sysUpTime", "1.3.6.1.2.1.1.3"),
    ("sysContact", "1.3.6.1.2.1.1.4"),
    ("sysName", "1.3.6.1.2.1.1.5"),
    ("sysLocation", "1.3.6.1.2.1.1.6"),
    // IF-MIB
    ("ifNumber", "1.3.6.1.2.1.2.1"),
    ("ifTable", "1.3.6.1.2.1.2.2"),
    ("ifEntry", "1.3.6.1.2.1.2.2.1"),
    ("ifIndex", "1.3.6.1.2.1.2.2.1.1"),
    ("ifDescr", "1.3.6.1.2.1.2.2.1.2"),
    ("ifType", "1.3.6.1.2.1.2.2.1.3"),
    ("ifMtu", "1.3.6.1.2.1.2.2.1.4"),
    ("ifSpeed", "1.3.6.1.2.1.2.2.1.5"),
    ("ifPhysAddress", "1.3.6.1.2.1.2.2.1.6"),
    ("ifAdminStatus", "1.3.6.1.2.1.2.2.1.7"),
    ("ifOperStatus", "1.3.6.1.2.1.2.2.1.8"),
    ("ifLastChange", "1.3.6.1.2.1.2.2.1.9"),
    ("ifInOctets", "1.3.6.1.2.1.2.2.1.10"),
    ("ifInUcastPkts", "1.3.6.1.2.1.2.2.1.11"),
    ("ifInNUcastPkts", "1.3.6.1.2.1.2.2.1.12"),
    ("ifInDiscards", "1.3.6.1.2.1.2.2.1.13"),
    ("ifInErrors", "1.3.6.1.2.1.2.2.1.14"),
    ("ifInUnknownProtos", "1.3.6.1.2.1.2.2.1.15"),
    ("ifOutOctets", "1.3.6.1.2.1.2.2.1.16"),
    ("ifOutUcastPkts", "1.3.6.1.2.1.2.2.1.17"),
    ("ifOutNUcastPkts", "1.3.6.1.2.1.2.2.1.18"),
    ("ifOutDiscards", "1.3.6.1.2.1.2.2.1.19"),
    ("ifOutErrors", "1.3.6.1.2.1.2.2.1.20"),
    ("ifOutQLen", "1.3.6.1.2.1.2.2.1.21"),
    ("ifXTable", "1.3.6.1.2.1.31.1.1"),
    ("ifXEntry", "1.3.6.1.2.1.31.1.1.1"),
    ("ifName", "1.3.6.1.2.1.31.1.1.1.1"),
    ("ifInMulticastPkts", "1.3.6.1.2.1.31.1.1.1.2"),
    ("ifInBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.3"),
    ("ifOutMulticastPkts", "1.3.6.1.2.1.31.1.1.1.4"),
    ("ifOutBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.5"),
    ("ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6"),
    ("ifHCInUcastPkts", "1.3.6.1.2.1.31.1.1.1.7"),
    ("ifHCInMulticastPkts", "1.3.6.1.2.1.31.1.1.1.8"),
    ("ifHCInBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.9"),
    ("ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10"),
    ("ifHCOutUcastPkts", "1.3.6.1.2.1.31.1.1.1.11"),
    ("ifHCOutMulticastPkts", "1.3.6.1.2.1.31.1.1.1.12"),
    ("ifHCOutBroadcastPkts", "1.3.6.1.2.1.31.1.1.1.13"),
    ("ifHighSpeed", "1.3.6.1.2.1.31.1.1.1.15"),
    ("ifAlias", "1.3.6.1.2.1.31.1.1.1.18"),
    // HOST-RESOURCES-MIB
    ("hrSystemUptime", "1.3.6.1.2.1.25.1.1"),
    ("hrSystemNumUsers", "1.3.6.1.2.1.25.1.5"),
    ("hrSystemProcesses", "1.3.6.1.2.1.25.1.6"),
    ("hrMemorySize", "1.3.6.1.2.1.25.2.2"),
    ("hrStorageTable", "1.3.6.1.2.1.25.2.3"),
    ("hrStorageIndex", "1.3.6.1.2.1.25.2.3.1.1"),
    ("hrStorageType", "1.3.6.1.2.1.25.2.3.1.2"),
    ("hrStorageDescr", "1.3.6.1.2.1.25.2.3.1.3"),
    ("hrStorageAllocationUnits", "1.3.6.1.2.1.25.2.3.1.4"),
    ("hrStorageSize", "1.3.6.1.2.1.25.2.3.1.5"),
    ("hrStorageUsed", "1.3.6.1.2.1.25.2.3.1.6"),
    ("hrProcessorLoad", "1.3.6.1.2.1.25.3.3.1.2"),
    // UCD-SNMP-MIB
    ("memTotalSwap", "1.3.6.1.4.1.2021.4.3"),
    ("memAvailSwap", "1.3.6.1.4.1.2021.4.4"),
    ("memTotalReal", "1.3.6.1.4.1.2021.4.5"),
    ("memAvailReal", "1.3.6.1.4.1.2021.4.6"),
    ("memTotalFree", "1.3.6.1.4.1.2021.4.11"),
    ("memShared", "1.3.6.1.4.1.2021.4.13"),
    ("memBuffer", "1.3.6.1.4.1.2021.4.14"),
    ("memCached", "1.3.6.1.4.1.2021.4.15"),
    ("dskPath", "1.3.6.1.4.1.2021.9.1.2"),
    ("dskTotal", "1.3.6.1.4.1.2021.9.1.6"),
    ("dskAvail", "1.3.6.1.4.1.2021.9.1.7"),
    ("dskUsed", "1.3.6.1.4.1.2021.9.1.8"),
    ("dskPercent", "1.3.6.1.4.1.2021.9.1.9"),
    ("laNames", "1.3.6.1.4.1.2021.10.1.2"),
    ("laLoad", "1.3.6.1.4.1.2021.10.1.3"),
    ("laLoadInt", "1.3.6.1.4.1.2021.10.1.5"),
    ("ssCpuUser", "1.3.6.1.4.1.2021.11.9"),
    ("ssCpuSystem", "1.3.6.1.4.1.2021.11.10"),
    ("ssCpuIdle", "1.3.6.1.4.1.2021.11.11"),
    ("ssCpuRawUser", "1.3.6.1.4.1.2021.11.50"),
    ("ssCpuRawNice", "1.3.6.1.4.1.2021.11.51"),
    ("ssCpuRawSystem", "1.3.6.1.4.1.2021.11.52"),
    ("ssCpuRawIdle", "1.3.6.1.4.1.2021.11.53"),
    ("ssCpuRawWait", "1.3.6.1.4.1.2021.11.54"),
];

/// The numeric form of a built-in name.
pub fn lookup(name: &str) -> Option<&'static str> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
}

/// An OID as written: `[MODULE::]name[.arcs]`, `[.]1.3.6…` or `iso.3.6…`.
pub fn parse(text: &str) -> Result<Oid, String> {
    let text = text.trim();
    let without_module = text.rsplit_once("::").map_or(text, |(_, rest)| rest);
    let body = without_module.strip_prefix('.').unwrap_or(without_module);
    let (head, tail) = body.split_once('.').unwrap_or((body, ""));
    let expanded;
    let numeric = if head == "iso" {
        expanded = format!("1.{tail}");
        expanded.trim_end_matches('.')
    } else if head.chars().all(|c| c.is_ascii_digit()) {
        body
    } else {
        let base = lookup(head).ok_or_else(|| {
            format!("`{text}`: `{head}` is not a name rtcollector knows (no MIB files are read); write the OID in numbers")
        })?;
        expanded = if tail.is_empty() { base.to_string() } else { format!("{base}.{tail}") };
        &expanded
    };
    let mut oid = Oid::EMPTY;
    for arc in numeric.split('.') {
        let n: u32 = arc
            .parse()
            .map_err(|_| format!("`{text}` is not an OID (`{arc}` is not a number)"))?;
        oid.push(n)
            .ok_or_else(|| format!("`{text}` has more than 128 sub-identifiers"))?;
    }
    if oid.len() < 2 || oid.arcs()[0] > 2 {
        return Err(format!("`{text}` is not an OID: it starts with 1, 2 or 0 and has two arcs or more"));
    }
    Ok(oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_parse_to_the_same_oid() {
        let want = "1.3.6.1.2.1.1.3.0";
        for text in ["1.3.6.1.2.1.1.3.0", ".1.3.6.1.2.1.1.3.0", "iso.3.6.1.2.1.1.3.0", "sysUpTime.0", "SNMPv2-MIB::sysUpTime.0"] {
            assert_eq!(parse(text).unwrap().to_string(), want, "{text}");
        }
        assert_eq!(parse("ifHCInOctets").unwrap().to_string(), "1.3.6.1.2.1.31.1.1.1.6");
    }

    #[test]
    fn unknown_names_and_garbage_are_errors() {
        assert!(parse("ifFrobnicate.1").unwrap_err().contains("`ifFrobnicate` is not a name"));
        assert!(parse("1.3.x").is_err());
        assert!(parse("1").is_err());
        assert!(parse("7.1").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn every_built_in_name_is_a_valid_oid() {
        for (name, _) in NAMES {
            assert!(parse(name).is_ok(), "{name}");
        }
    }
}
