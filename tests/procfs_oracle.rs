//! Cross-checks our hand-written /proc parsers against an independent implementation (the
//! procfs crate) on the same fixture files: what the agent reports must equal what procfs
//! reads from the file.

mod support;
use procfs::prelude::*;
use std::collections::BTreeMap;
use support::agent::{run, stderr, stdout};
use support::samples::samples;
use support::scratch::{fixture, Scratch};

fn agent_samples() -> BTreeMap<String, f64> {
    let root = fixture("basic");
    let s = Scratch::new();
    let path = s.config(&format!(
        "procfs_root: {}\nsysfs_root: {}\ninputs: [linux_mem, linux_io, linux_net, linux_swap, system, kernel, netstat]\noutputs:\n  - stdout: {{format: json}}\n",
        root.join("proc").display(),
        root.join("sys").display()
    ));
    let o = run(&["run", "--once", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    samples(&stdout(&o))
        .into_iter()
        .map(|(k, v)| (k, v["value"].as_f64().unwrap()))
        .collect()
}

fn proc_file(name: &str) -> std::path::PathBuf {
    fixture("basic").join("proc").join(name)
}

#[test]
fn our_parsers_agree_with_procfs() {
    let got = agent_samples();
    let ours = |k: &str| *got.get(k).unwrap_or_else(|| panic!("agent wrote no {k}"));

    let mem = procfs::Meminfo::from_file(proc_file("meminfo")).unwrap();
    assert_eq!(ours("mem_total_bytes"), mem.mem_total as f64);
    assert_eq!(ours("mem_free_bytes"), mem.mem_free as f64);
    assert_eq!(
        ours("mem_available_bytes"),
        mem.mem_available.unwrap() as f64
    );
    assert_eq!(ours("mem_buffers_bytes"), mem.buffers as f64);
    assert_eq!(ours("swap_total"), mem.swap_total as f64);
    assert_eq!(ours("swap_free"), mem.swap_free as f64);

    let load = procfs::LoadAverage::from_file(proc_file("loadavg")).unwrap();
    assert_eq!(ours("system_load1") as f32, load.one);
    assert_eq!(ours("system_load5") as f32, load.five);
    assert_eq!(ours("system_load15") as f32, load.fifteen);

    let disks = procfs::DiskStats::from_file(proc_file("diskstats")).unwrap();
    let mut compared = 0;
    for d in &disks.0 {
        if let Some(v) = got.get(&format!("diskio_read_bytes{{device={}}}", d.name)) {
            assert_eq!(*v, d.sectors_read as f64 * 512.0, "{}", d.name);
            assert_eq!(
                ours(&format!("diskio_writes{{device={}}}", d.name)),
                d.writes as f64
            );
            compared += 1;
        }
    }
    assert!(compared >= 3, "compared {compared} disks");

    // procfs cannot read `eth0:98765432101` (no space after the colon, which the kernel
    // prints when a counter fills its column); we can. Give procfs the same numbers spaced.
    let dev = std::fs::read_to_string(proc_file("net/dev")).unwrap();
    let spaced = dev.replace(':', ": ");
    let net = procfs::net::InterfaceDeviceStatus::from_read(spaced.as_bytes()).unwrap();
    for (name, dev) in &net.0 {
        assert_eq!(
            ours(&format!("net_rx_bytes{{iface={name}}}")),
            dev.recv_bytes as f64,
            "{name}"
        );
        assert_eq!(
            ours(&format!("net_tx_packets{{iface={name}}}")),
            dev.sent_packets as f64,
            "{name}"
        );
        assert_eq!(
            ours(&format!("net_rx_drop{{iface={name}}}")),
            dev.recv_drop as f64,
            "{name}"
        );
    }

    let io = procfs::IoPressure::from_file(proc_file("pressure/io")).unwrap();
    assert_eq!(
        ours("kernel_pressure_avg10{resource=io,type=some}") as f32,
        io.some.avg10
    );
    assert_eq!(
        ours("kernel_pressure_avg300{resource=io,type=full}") as f32,
        io.full.avg300
    );

    let snmp = procfs::net::Snmp::from_file(proc_file("net/snmp")).unwrap();
    assert_eq!(ours("tcp_active_opens"), snmp.tcp_active_opens as f64);
    assert_eq!(ours("tcp_retrans_segs"), snmp.tcp_retrans_segs as f64);
}
