use super::*;
use crate::inputs::testutil::{sample_options, Harness};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn options(yaml: &str) -> Config {
    yaml_serde::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn harness(yaml: &str, ctx: &BuildCtx) -> Harness {
    Harness::new(Box::new(build(&options(yaml), ctx).unwrap()))
}

/// A stat line with the figures `process` reads: CPU ticks, threads, start, vsize, rss pages.
fn stat_line(pid: u32, comm: &str, utime: u64, stime: u64, threads: u64, start: u64) -> String {
    format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 120 0 0 0 {utime} {stime} 0 0 20 0 {threads} 0 {start} 10000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
}

const BTIME: u64 = 1_765_000_000;

/// A fake procfs root with /proc/stat's btime, and an empty sysfs root.
fn scratch() -> (tempfile::TempDir, BuildCtx, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    std::fs::create_dir(&proc).unwrap();
    std::fs::write(proc.join("stat"), format!("cpu 1 2 3 4\nbtime {BTIME}\n")).unwrap();
    let ctx = BuildCtx::with_roots(&proc, dir.path().join("sys"));
    (dir, ctx, proc)
}

/// Writes `<pid>/stat` and readable smaps_rollup, io and fd entries.
fn write_pid(proc: &Path, pid: u32, stat: &str, pss_kb: u64, fds: usize, io: (u64, u64)) {
    let d = proc.join(pid.to_string());
    std::fs::create_dir_all(d.join("fd")).unwrap();
    std::fs::write(d.join("stat"), stat).unwrap();
    std::fs::write(d.join("smaps_rollup"), format!("00400000-7ffd0000 ---p 00000000 00:00 0 [rollup]\nRss: 1200 kB\nPss: {pss_kb} kB\n")).unwrap();
    std::fs::write(
        d.join("io"),
        format!("rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: {}\nwrite_bytes: {}\ncancelled_write_bytes: 0\n", io.0, io.1),
    )
    .unwrap();
    for i in 0..fds {
        std::fs::write(d.join("fd").join(i.to_string()), "").unwrap();
    }
    std::fs::write(d.join("cmdline"), format!("/usr/bin/{pid}\0--flag\0")).unwrap();
}

fn page() -> f64 {
    sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap() as f64
}

fn hz() -> f64 {
    sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap() as f64
}

#[test]
fn the_sample_is_a_valid_config() {
    let c: Config = sample_options(SAMPLE);
    assert_eq!(c.proc_regex, "^nginx$");
    assert!(c.memory && c.load && !c.per_pid);
}

#[test]
fn pollects_keys_are_accepted() {
    let c = options("{name: db, procRegex: postgres, memory: false, load: false}");
    assert_eq!(c.proc_regex, "postgres");
    assert!(!c.memory && !c.load);
}

#[test]
fn bad_options_name_the_key() {
    let (_dir, ctx, _) = scratch();
    let err = |yaml: &str| build(&options(yaml), &ctx).err().expect(yaml).to_string();
    assert!(err("{}").contains("at least one of proc_regex"), "{}", err("{}"));
    assert!(err("{proc_regex: '('}").contains("proc_regex"));
    assert!(err("{exe: '['}").contains("exe"));
    assert!(err("{pattern: '(a'}").contains("pattern"));
    assert!(err("{user: no-such-user-rtc}").contains("user"));
    assert!(err("{pid_file: /a, systemd_unit: b}").contains("systemd_unit"));
    assert!(yaml_serde::from_str::<Config>("{proc_regx: a}").is_err());
}

#[test]
fn sums_the_group_and_counts_zero_when_none_match() {
    let (_dir, ctx, proc) = scratch();
    write_pid(&proc, 10, &stat_line(10, "nginx", 5, 1, 1, 500), 100, 3, (4096, 0));
    write_pid(&proc, 11, &stat_line(11, "nginx", 7, 2, 4, 700), 300, 5, (0, 8192));
    write_pid(&proc, 12, &stat_line(12, "redis", 9, 9, 9, 100), 900, 9, (1, 1));
    let mut h = harness("{proc_regex: ^nginx$}", &ctx);
    let got = h.collect(1_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    let l = "{process=^nginx$}";
    assert_eq!(got[&format!("process_count{l}")], 2.0);
    assert_eq!(got[&format!("process_threads{l}")], 5.0);
    assert_eq!(got[&format!("process_rss_bytes{l}")], 600.0 * page());
    assert_eq!(got[&format!("process_virtual_memory{l}")], 20_000_000.0);
    assert_eq!(got[&format!("process_pss_bytes{l}")], 400.0 * 1024.0);
    assert_eq!(got[&format!("process_open_fds{l}")], 8.0);
    assert_eq!(got[&format!("process_read_bytes{l}")], 4096.0);
    assert_eq!(got[&format!("process_write_bytes{l}")], 8192.0);
    // The oldest member's start.
    assert_eq!(
        got[&format!("process_start_time_seconds{l}")],
        BTIME as f64 + (500.0 / hz()).floor()
    );
    assert!(got.keys_starting("process_cpu").is_empty(), "no CPU % at the first collection");

    let mut none = harness("{name: web, exe: ^apache2$}", &ctx);
    let got = none.collect(1_000);
    assert_eq!(got["process_count{process=web}"], 0.0);
    assert_eq!(got.samples.len(), 1, "{:?}", got.samples);
}

#[test]
fn cpu_percent_from_the_ticks_between_two_collections() {
    let (_dir, ctx, proc) = scratch();
    write_pid(&proc, 10, &stat_line(10, "nginx", 100, 50, 1, 500), 1, 0, (0, 0));
    write_pid(&proc, 11, &stat_line(11, "nginx", 0, 0, 1, 600), 1, 0, (0, 0));
    let mut h = harness("{proc_regex: nginx, name: web, per_pid: true}", &ctx);
    h.collect(10_000);
    // 10 s later: pid 10 used 3 s of user and 1 s of system time; pid 11 exited and its pid
    // went to a new process (another start time), whose ticks count from its next reading.
    let t = hz() as u64;
    write_pid(&proc, 10, &stat_line(10, "nginx", 100 + 3 * t, 50 + t, 1, 500), 1, 0, (0, 0));
    write_pid(&proc, 11, &stat_line(11, "nginx", 900, 900, 1, 9999), 1, 0, (0, 0));
    let got = h.collect(20_000);
    assert_eq!(got["process_cpu_user_percent{process=web}"], 30.0);
    assert_eq!(got["process_cpu_system_percent{process=web}"], 10.0);
    assert_eq!(got["process_load_percent{process=web}"], 40.0);
    assert_eq!(got["process_cpu_user_percent{pid=10,process=web}"], 30.0);
    assert!(!got.has("process_cpu_user_percent{pid=11,process=web}"));
    assert_eq!(got["process_threads{pid=11,process=web}"], 1.0);
    assert!(!got.has("process_count{pid=10,process=web}"), "a count only per group");
}

#[test]
fn load_and_memory_can_be_left_out() {
    let (_dir, ctx, proc) = scratch();
    write_pid(&proc, 10, &stat_line(10, "nginx", 1, 1, 1, 1), 1, 0, (0, 0));
    let mut h = harness("{procRegex: nginx, name: w, load: false, memory: false}", &ctx);
    h.collect(1_000);
    let got = h.collect(2_000);
    assert!(got.keys_starting("process_cpu").is_empty());
    assert!(!got.has("process_load_percent{process=w}"));
    assert!(!got.has("process_rss_bytes{process=w}"));
    assert!(!got.has("process_pss_bytes{process=w}"));
    assert!(!got.has("process_virtual_memory{process=w}"));
    assert_eq!(got["process_threads{process=w}"], 1.0);
}

#[test]
fn pattern_matches_the_command_line_and_user_the_owner() {
    let (_dir, ctx, proc) = scratch();
    write_pid(&proc, 10, &stat_line(10, "a", 1, 1, 1, 1), 1, 0, (0, 0));
    write_pid(&proc, 20, &stat_line(20, "b", 1, 1, 2, 1), 1, 0, (0, 0));
    let got = harness("{pattern: '^/usr/bin/20 --flag$', name: p}", &ctx).collect(1_000);
    assert_eq!(got["process_count{process=p}"], 1.0);
    assert_eq!(got["process_threads{process=p}"], 2.0);
    // The files belong to whoever runs the test: both match its uid, neither another.
    let me = rustix::process::geteuid().as_raw().to_string();
    let got = harness(&format!("{{user: '{me}', name: u}}"), &ctx).collect(1_000);
    assert_eq!(got["process_count{process=u}"], 2.0);
    let other = if me == "0" { "1" } else { "0" };
    let got = harness(&format!("{{user: '{other}', name: u}}"), &ctx).collect(1_000);
    assert_eq!(got["process_count{process=u}"], 0.0);
}

#[test]
fn pid_file_and_systemd_unit_look_only_at_the_pids_they_name() {
    let (dir, ctx, proc) = scratch();
    write_pid(&proc, 10, &stat_line(10, "a", 1, 1, 1, 1), 1, 0, (0, 0));
    write_pid(&proc, 20, &stat_line(20, "b", 1, 1, 2, 1), 1, 0, (0, 0));
    write_pid(&proc, 30, &stat_line(30, "c", 1, 1, 4, 1), 1, 0, (0, 0));
    let pid_file = dir.path().join("b.pid");
    let mut h = harness(&format!("{{pid_file: {}, name: b}}", pid_file.display()), &ctx);
    // No pid file: the daemon is not running.
    assert_eq!(h.collect(1_000)["process_count{process=b}"], 0.0);
    std::fs::write(&pid_file, "20\n").unwrap();
    let got = h.collect(2_000);
    assert_eq!(got["process_threads{process=b}"], 2.0);
    std::fs::write(&pid_file, "twenty\n").unwrap();
    let e = h.collect(3_000).error.expect("garbage pid file");
    assert!(e.0.contains("b.pid"), "{e}");

    let unit = dir.path().join("sys/fs/cgroup/system.slice/web.service");
    let mut h = harness("{systemd_unit: web, name: web}", &ctx);
    assert_eq!(h.collect(1_000)["process_count{process=web}"], 0.0, "unit stopped");
    std::fs::create_dir_all(&unit).unwrap();
    // A pid listed whose process has exited since is not an error.
    std::fs::write(unit.join("cgroup.procs"), "30\n10\n999\n").unwrap();
    let got = h.collect(2_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got["process_count{process=web}"], 2.0);
    assert_eq!(got["process_threads{process=web}"], 5.0);
    // The v1 hierarchy's systemd tree, and a path under the cgroup root.
    let v1 = dir.path().join("sys/fs/cgroup/systemd/user.slice/x.scope");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("cgroup.procs"), "20\n").unwrap();
    let got = harness("{systemd_unit: user.slice/x.scope, name: x}", &ctx).collect(1_000);
    assert_eq!(got["process_threads{process=x}"], 2.0);
}

#[test]
fn an_exited_or_unreadable_process_does_not_stop_the_others() {
    let (_dir, ctx, proc) = scratch();
    write_pid(&proc, 10, &stat_line(10, "w", 1, 1, 1, 1), 1, 0, (0, 0));
    // Listed but gone: no stat, an empty stat.
    std::fs::create_dir(proc.join("11")).unwrap();
    std::fs::create_dir(proc.join("12")).unwrap();
    std::fs::write(proc.join("12/stat"), "").unwrap();
    // Matching, but its io and smaps_rollup vanished after its stat was read.
    write_pid(&proc, 13, &stat_line(13, "w", 1, 1, 1, 1), 1, 0, (0, 0));
    std::fs::remove_file(proc.join("13/io")).unwrap();
    std::fs::remove_file(proc.join("13/smaps_rollup")).unwrap();
    let mut h = harness("{exe: ^w$, name: w}", &ctx);
    let got = h.collect(1_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got["process_count{process=w}"], 2.0);
    assert_eq!(got["process_pss_bytes{process=w}"], 1024.0);

    // A garbage stat: a partial failure naming it; the rest still counts.
    std::fs::write(proc.join("12/stat"), "12 (w) S 1 2\n").unwrap();
    std::fs::write(proc.join("13/io"), "nonsense\n").unwrap();
    let got = h.collect(2_000);
    let e = got.error.clone().expect("garbage");
    assert!(e.0.contains(&proc.join("12").display().to_string()), "{e}");
    assert_eq!(got["process_count{process=w}"], 2.0);
}

#[test]
fn a_missing_procfs_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx::with_roots(dir.path().join("nope"), dir.path().join("sys"));
    let got = harness("{exe: x}", &ctx).collect(1_000);
    assert!(got.error.expect("error").0.contains("nope"));
}

// Live processes, against /proc read independently by the procfs crate.

/// Children killed and reaped when the test ends, pass or fail.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `program` run under the name `name` (the kernel's comm comes from the path executed, so
/// a symlink renames it), with `argv0` as its first argument.
fn spawn_named(dir: &Path, name: &str, program: &str, args: &[&str]) -> Child {
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(program, &link).unwrap();
    }
    Command::new(&link)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn oracle(pid: u32) -> procfs::process::Stat {
    procfs::process::Process::new(pid as i32).unwrap().stat().unwrap()
}

/// Waits until the kernel shows `pid` in `state` (a stopped child is `T`).
fn wait_state(pid: u32, state: char) {
    for _ in 0..500 {
        if oracle(pid).state == state {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("pid {pid} never reached state {state}");
}

fn live() -> BuildCtx {
    BuildCtx::with_roots("/proc", "/sys")
}

/// A 15-byte-at-most name no other process has.
fn unique(tag: &str) -> String {
    format!("rtc{tag}{}", std::process::id() % 100_000)
}

#[test]
fn live_children_rss_threads_and_count_equal_procs_own() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("slp");
    let mut kids = Children(Vec::new());
    for _ in 0..3 {
        kids.0.push(spawn_named(dir.path(), &name, "/bin/sleep", &["300"]));
    }
    for k in &kids.0 {
        wait_state(k.id(), 'S');
    }
    let mut h = harness(&format!("{{proc_regex: '^{name}$', name: kids, per_pid: true}}"), &live());
    let got = h.collect(1_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got["process_count{process=kids}"], 3.0);
    let page = procfs::page_size() as f64;
    let (mut rss, mut threads, mut vsize) = (0.0, 0.0, 0.0);
    for k in &kids.0 {
        let s = oracle(k.id());
        let l = format!("{{pid={},process=kids}}", k.id());
        // A sleeping `sleep` touches no new memory: its figures hold still.
        assert_eq!(got[&format!("process_rss_bytes{l}")], s.rss as f64 * page, "{l}");
        assert_eq!(got[&format!("process_threads{l}")], s.num_threads as f64, "{l}");
        assert_eq!(got[&format!("process_virtual_memory{l}")], s.vsize as f64, "{l}");
        let p = procfs::process::Process::new(k.id() as i32).unwrap();
        assert_eq!(got[&format!("process_open_fds{l}")], p.fd_count().unwrap() as f64, "{l}");
        let start = procfs::boot_time_secs().unwrap() as f64
            + (s.starttime as f64 / procfs::ticks_per_second() as f64).floor();
        assert_eq!(got[&format!("process_start_time_seconds{l}")], start, "{l}");
        let io = p.io().unwrap();
        assert_eq!(got[&format!("process_read_bytes{l}")], io.read_bytes as f64, "{l}");
        rss += s.rss as f64 * page;
        threads += s.num_threads as f64;
        vsize += s.vsize as f64;
    }
    assert_eq!(got["process_rss_bytes{process=kids}"], rss);
    assert_eq!(got["process_threads{process=kids}"], threads);
    assert_eq!(got["process_virtual_memory{process=kids}"], vsize);
    assert!(got["process_pss_bytes{process=kids}"] > 0.0);

    // One exits between collections: fewer, and no error.
    let mut first = kids.0.remove(0);
    first.kill().unwrap();
    first.wait().unwrap();
    let got = h.collect(2_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got["process_count{process=kids}"], 2.0);
    assert!(!got.has(&format!("process_threads{{pid={},process=kids}}", first.id())));
}

#[test]
fn live_busy_child_cpu_percent_equals_its_ticks_over_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("busy");
    let kids = Children(vec![spawn_named(
        dir.path(),
        &name,
        "/bin/sh",
        &["-c", "while :; do :; done"],
    )]);
    let pid = kids.0[0].id();
    let signal = |sig| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
    // Stopped while read, so its ticks hold still between our reading and the oracle's.
    std::thread::sleep(Duration::from_millis(200));
    signal(nix::sys::signal::SIGSTOP);
    wait_state(pid, 'T');
    let mut h = harness(&format!("{{exe: '^{name}$', name: busy}}"), &live());
    assert!(h.collect(100_000).error.is_none());
    let before = oracle(pid);
    signal(nix::sys::signal::SIGCONT);
    // Until it has run at least a tick more, however loaded the machine.
    while oracle(pid).utime + oracle(pid).stime < before.utime + before.stime + 2 {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(nix::sys::signal::SIGSTOP);
    wait_state(pid, 'T');
    let after = oracle(pid);
    // The collection is stamped 10 s after the first: the percentages are the ticks over
    // those 10 s, whatever the wall clock did.
    let got = h.collect(110_000);
    let hz = procfs::ticks_per_second() as f64;
    let pct = |ticks: u64| ticks as f64 / hz * 100_000.0 / 10_000.0;
    let user = pct(after.utime - before.utime);
    let system = pct(after.stime - before.stime);
    assert_eq!(got["process_cpu_user_percent{process=busy}"], user);
    assert_eq!(got["process_cpu_system_percent{process=busy}"], system);
    assert_eq!(got["process_load_percent{process=busy}"], user + system);
    assert!(user + system > 0.0);
    // Still stopped: nothing more in the next interval.
    let got = h.collect(120_000);
    assert_eq!(got["process_load_percent{process=busy}"], 0.0);
    drop(kids);
}

#[test]
fn live_pattern_sees_the_command_line_a_process_was_given() {
    let marker = unique("pat");
    let mut kids = Children(Vec::new());
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg0(format!("{marker}-worker")).arg("300");
    kids.0.push(cmd.stdin(Stdio::null()).spawn().unwrap());
    wait_state(kids.0[0].id(), 'S');
    let got = harness(&format!("{{pattern: '^{marker}-worker 300$', name: pat}}"), &live())
        .collect(1_000);
    assert_eq!(got["process_count{process=pat}"], 1.0);
    drop(kids);
}
