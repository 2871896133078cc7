use super::*;
use crate::inputs::testutil::{collect_fixture, Harness};
use std::path::Path;

fn input(ctx: &BuildCtx) -> Box<dyn Input> {
    Box::new(build(&Config::default(), ctx).unwrap())
}

fn stat_line(pid: u32, comm: &str, state: char, threads: u32) -> String {
    format!(
        "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 {threads} 0 500 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
    )
}

fn write_pid(proc: &Path, pid: u32, content: &[u8]) {
    let d = proc.join(pid.to_string());
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("stat"), content).unwrap();
}

fn scratch() -> (tempfile::TempDir, BuildCtx) {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    std::fs::create_dir(&proc).unwrap();
    std::fs::write(proc.join("loadavg"), "0.1 0.1 0.1 1/1 1\n").unwrap();
    let ctx = BuildCtx::with_roots(&proc, dir.path().join("sys"));
    (dir, ctx)
}

#[test]
fn parses_state_and_threads_after_the_last_parenthesis() {
    assert_eq!(
        parse_pid_stat(stat_line(7, "nginx", 'S', 5).as_bytes()),
        Ok((b'S', 5))
    );
    // A command name built to fool a parser that stops at the first `)`.
    assert_eq!(
        parse_pid_stat(stat_line(8, "a) Z 9 (b c", 'R', 3).as_bytes()),
        Ok((b'R', 3))
    );
    // Names are bytes, not necessarily UTF-8.
    let mut raw = b"9 (\xff\xfe) ".to_vec();
    raw.extend_from_slice(
        stat_line(9, "x", 'D', 1)
            .split_once(") ")
            .unwrap()
            .1
            .as_bytes(),
    );
    assert_eq!(parse_pid_stat(&raw), Ok((b'D', 1)));
}

#[test]
fn garbage_stat_content_is_rejected() {
    assert!(parse_pid_stat(b"").is_err());
    assert!(parse_pid_stat(b"12 (init S 1 2 3").is_err());
    assert!(parse_pid_stat(b"12 (init) S 1 2 3\n").is_err(), "truncated");
    assert!(parse_pid_stat(stat_line(1, "x", '?', 1).as_bytes()).is_err());
    assert!(parse_pid_stat(stat_line(1, "x", 'S', 1).replace(" S ", " SS ").as_bytes()).is_err());
    let bad_threads = stat_line(1, "x", 'S', 1).replace(" 20 0 1 0 ", " 20 0 many 0 ");
    assert!(parse_pid_stat(bad_threads.as_bytes()).is_err());
}

#[test]
fn every_state_letter_has_its_count() {
    let mut c = Counts::default();
    for (s, threads) in [
        (b'R', 2),
        (b'S', 1),
        (b'D', 1),
        (b'Z', 1),
        (b'T', 1),
        (b't', 1),
        (b'X', 1),
        (b'x', 1),
        (b'W', 1),
        (b'P', 1),
        (b'I', 1),
        (b'K', 4),
    ] {
        c.add(s, threads);
    }
    assert_eq!(
        c,
        Counts {
            total: 12,
            threads: 16,
            running: 1,
            sleeping: 1,
            zombie: 1,
            blocked: 1,
            stopped: 2,
            dead: 2,
            paging: 1,
            parked: 1,
            idle: 1,
        }
    );
}

#[test]
fn reports_exact_counts_from_the_fixture() {
    // tests/fixtures/basic/proc/<pid>/stat: 12 processes, one of them (1288) with `)` and
    // spaces in its name; 1999/ has no stat, like a process that exited meanwhile.
    let got = collect_fixture("basic", input);
    assert_eq!(got["processes_total"], 12.0);
    assert_eq!(got["processes_total_threads"], 33.0);
    assert_eq!(got["processes_running"], 2.0);
    assert_eq!(got["processes_sleeping"], 4.0);
    assert_eq!(got["processes_zombie"], 1.0);
    assert_eq!(got["processes_blocked"], 1.0);
    assert_eq!(got["processes_stopped"], 2.0);
    assert_eq!(got["processes_dead"], 0.0);
    assert_eq!(got["processes_paging"], 0.0);
    assert_eq!(got["processes_parked"], 1.0);
    assert_eq!(got["processes_idle"], 1.0);
    assert_eq!(got.samples.len(), 11);
}

#[test]
fn every_collection_sees_the_current_processes() {
    let (dir, ctx) = scratch();
    let proc = dir.path().join("proc");
    write_pid(&proc, 1, stat_line(1, "init", 'S', 1).as_bytes());
    let mut h = Harness::new(input(&ctx));
    assert_eq!(h.collect(1_000)["processes_total"], 1.0);
    write_pid(&proc, 40, stat_line(40, "worker pool", 'R', 8).as_bytes());
    let got = h.collect(2_000);
    assert_eq!(got["processes_total"], 2.0);
    assert_eq!(got["processes_total_threads"], 9.0);
    assert_eq!(got["processes_running"], 1.0);
    std::fs::remove_dir_all(proc.join("1")).unwrap();
    let got = h.collect(3_000);
    assert_eq!(got["processes_total"], 1.0);
    assert_eq!(got["processes_sleeping"], 0.0);
}

#[test]
fn an_exited_process_is_skipped_quietly() {
    let (dir, ctx) = scratch();
    let proc = dir.path().join("proc");
    write_pid(&proc, 1, stat_line(1, "init", 'S', 1).as_bytes());
    // Listed but gone: no stat file, or an empty read.
    std::fs::create_dir(proc.join("77")).unwrap();
    write_pid(&proc, 78, b"");
    let got = Harness::new(input(&ctx)).collect(1_000);
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got["processes_total"], 1.0);
}

#[test]
fn a_garbage_stat_is_an_error_naming_the_file_and_nothing_is_reported() {
    let (dir, ctx) = scratch();
    let proc = dir.path().join("proc");
    write_pid(&proc, 1, stat_line(1, "init", 'S', 1).as_bytes());
    write_pid(&proc, 5, b"5 (trunc) S 1 2");
    let mut h = Harness::new(input(&ctx));
    let got = h.collect(1_000);
    let e = got.error.clone().expect("error");
    assert!(
        e.0.contains(&proc.join("5/stat").display().to_string()),
        "{e}"
    );
    assert!(got.samples.is_empty());
    // Fixed: reported again.
    write_pid(&proc, 5, stat_line(5, "trunc", 'S', 1).as_bytes());
    assert_eq!(h.collect(2_000)["processes_total"], 2.0);
}

#[test]
fn a_missing_procfs_root_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = BuildCtx::with_roots(dir.path().join("nope"), dir.path().join("sys"));
    let got = Harness::new(input(&ctx)).collect(1_000);
    assert!(got.error.clone().expect("error").0.contains("nope"));
}

#[test]
fn the_sample_is_a_valid_config() {
    let text: String = SAMPLE.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(Path::new("sample.yaml"), &format!("inputs:\n{text}")).unwrap();
}

fn held_pids(p: &Processes) -> Vec<u32> {
    p.held.iter().map(|h| h.pid).collect()
}

#[test]
fn a_kept_stat_file_shows_new_content_and_a_reused_pid_is_read_afresh() {
    let (dir, ctx) = scratch();
    let proc = dir.path().join("proc");
    write_pid(&proc, 1, stat_line(1, "init", 'S', 1).as_bytes());
    let mut p = build(&Config::default(), &ctx).unwrap();
    assert_eq!(p.count().unwrap().sleeping, 1);
    assert_eq!(held_pids(&p), [1]);
    // Rewritten in place: the kept file is read again at offset 0.
    write_pid(&proc, 1, stat_line(1, "init", 'Z', 1).as_bytes());
    assert_eq!(p.count().unwrap().zombie, 1);
    // The kept file now belongs to an exited process (it reads empty, as procfs answers
    // ESRCH) while a new process has the same pid: the new one is opened and counted.
    let old = proc.join("1/stat.old");
    std::fs::rename(proc.join("1/stat"), &old).unwrap();
    std::fs::write(&old, b"").unwrap();
    write_pid(&proc, 1, stat_line(1, "reborn", 'R', 3).as_bytes());
    let c = p.count().unwrap();
    assert_eq!((c.total, c.running, c.zombie, c.threads), (1, 1, 0, 3));
    assert_eq!(held_pids(&p), [1]);
}

#[test]
fn beyond_the_cap_processes_are_still_counted_with_their_files_closed() {
    let (dir, ctx) = scratch();
    let proc = dir.path().join("proc");
    let n = 11;
    for pid in 1..=n {
        write_pid(&proc, pid, stat_line(pid, "p", 'S', 2).as_bytes());
    }
    let mut p = build(&Config::default(), &ctx).unwrap();
    assert!(p.max_held >= 1 && p.max_held <= MAX_HELD);
    p.max_held = 8;
    for _ in 0..2 {
        let c = p.count().unwrap();
        assert_eq!((c.total, c.sleeping, c.threads), (n as u64, n as u64, 2 * n as u64));
        assert_eq!(p.held.len(), 8);
    }
}

#[test]
fn real_proc_kept_files_follow_a_child_through_zombie_to_reaped() {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("sleep starts");
    let pid = child.id();
    // A procfs root listing only the child, whose entry leads to the real /proc/<pid>: the
    // kept file is a real procfs file (ESRCH once the process is reaped), and the other
    // processes of the machine cannot push the child past the cap.
    let (dir, ctx) = scratch();
    std::os::unix::fs::symlink(format!("/proc/{pid}"), dir.path().join("proc").join(pid.to_string()))
        .unwrap();
    let mut p = build(&Config::default(), &ctx).unwrap();
    let first = p.count().expect("counts the child");
    assert_eq!(first.total, 1, "{first:?}");
    assert_eq!(held_pids(&p), [pid]);
    // Killed, not yet waited for: a zombie, seen through the file kept open.
    child.kill().unwrap();
    let mut zombie = false;
    for _ in 0..200 {
        if p.count().unwrap().zombie == 1 {
            zombie = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(zombie, "the killed child never showed as a zombie");
    assert_eq!(held_pids(&p), [pid], "the same kept file");
    // Reaped: the kept file answers ESRCH, the reopen finds nothing, nothing is counted.
    child.wait().unwrap();
    let gone = p.count().unwrap();
    assert_eq!(gone.total, 0, "{gone:?}");
    assert!(held_pids(&p).is_empty(), "a reaped process's file stays open");
}
