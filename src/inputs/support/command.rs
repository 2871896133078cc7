//! Running an external command on the agent's executor, for the inputs that do (`exec`,
//! `smartctl`, `zfs`'s `zpool list`).
//!
//! The command gets its own process group, so a timeout, or a run abandoned because the
//! agent stops or reloads, kills everything it started (a wrapper script's children, a
//! pipeline), not only the command. Its output is read asynchronously up to a cap; more is
//! read and discarded (counted), so a chatty command can neither block on a full pipe nor
//! grow the agent's memory.
//!
//! async-process starts a thread of its own (`async-process`) to reap children when nobody
//! drives its reaper at the moment a child is registered. [`run`] drives the reaper itself,
//! in the caller's task, for as long as the run lasts: the agent keeps its 2 threads in
//! every mode (schedule, `--once`, tests), whoever else runs commands.

use futures_lite::{future, AsyncRead, AsyncReadExt};
use smol::Timer;
use std::future::Future;
use std::io;
use std::os::unix::process::CommandExt;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::task::Poll;
use std::time::Duration;

/// How much of a run is kept, and how long it may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A command still running after this is killed with its process group.
    pub timeout: Duration,
    /// Standard output kept; more is read and discarded.
    pub stdout_cap: usize,
    /// Standard error kept (for an error message); more is read and discarded. 0: standard
    /// error goes to /dev/null and is not read at all.
    pub stderr_cap: usize,
    /// How long a killed command may take to be reaped before the run ends without it
    /// (a process stuck in the kernel, on a failing disk say, does not die at SIGKILL).
    pub reap_grace: Duration,
}

/// What a run printed. Kept by the caller between runs, so its buffers are reused.
#[derive(Debug, Default)]
pub struct Captured {
    /// Up to [`Limits::stdout_cap`] bytes of standard output.
    pub stdout: Vec<u8>,
    /// Bytes of standard output read past the cap and discarded.
    pub stdout_discarded: u64,
    /// Up to [`Limits::stderr_cap`] bytes of standard error.
    pub stderr: Vec<u8>,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// It exited (or was killed by someone else) after closing its output.
    Exited(ExitStatus),
    /// It was still running at the timeout: its group got SIGKILL. `unreaped` is its pid
    /// when it had not exited [`Limits::reap_grace`] later; async-process reaps it when it
    /// does.
    TimedOut { unreaped: Option<u32> },
    /// It could not be started (no such program, not executable, bad working directory).
    NotStarted(io::Error),
    /// Waiting for its exit status failed.
    WaitFailed(io::Error),
}

/// Runs `command` with stdin from /dev/null, in a new process group, filling `out` with what
/// it prints (cleared first) within `limits`.
///
/// Cancel-safe: dropping the future half way kills the command's group.
pub async fn run(command: std::process::Command, limits: &Limits, out: &mut Captured) -> Outcome {
    while_driving_reaper(run_child(command, limits, out)).await
}

/// Runs `work` while driving async-process's reaper in the same task, so async-process
/// never starts its thread.
///
/// The reaper is polled before `work`: it counts as driven from before the child is
/// registered, which is when async-process would otherwise start the thread. It is dropped
/// after `work` (declared first, so dropped last): an abandoned child is handed to the
/// reaper while it still has a driver, not after.
async fn while_driving_reaper<T>(work: impl Future<Output = T>) -> T {
    let mut reaper = pin!(smol::process::driver());
    let mut work = pin!(work);
    future::poll_fn(|cx| {
        if let Poll::Ready(never) = reaper.as_mut().poll(cx) {
            match never {}
        }
        work.as_mut().poll(cx)
    })
    .await
}

async fn run_child(
    mut command: std::process::Command,
    limits: &Limits,
    out: &mut Captured,
) -> Outcome {
    out.stdout.clear();
    out.stderr.clear();
    out.stdout_discarded = 0;
    // Its own group (id = the child's pid), so killing the group kills what it started.
    command.process_group(0);
    // Stdio is set on smol's Command: converting resets what std's had.
    let mut command = smol::process::Command::from(command);
    let stderr = if limits.stderr_cap == 0 {
        Stdio::null()
    } else {
        Stdio::piped()
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(e),
    };
    let mut guard = GroupGuard {
        pid: child.id(),
        armed: true,
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let Captured {
        stdout: out_buf,
        stderr: err_buf,
        stdout_discarded,
    } = out;
    let work = async {
        let (discarded, _) = future::zip(
            read_capped(stdout, out_buf, limits.stdout_cap),
            read_capped(stderr, err_buf, limits.stderr_cap),
        )
        .await;
        *stdout_discarded = discarded;
        Some(child.status().await)
    };
    let timer = async {
        Timer::after(limits.timeout).await;
        None
    };
    let finished = future::or(work, timer).await;
    // Reaped below, or killed here: either way the group needs nothing more on drop.
    guard.armed = false;
    match finished {
        Some(Ok(status)) => Outcome::Exited(status),
        Some(Err(e)) => Outcome::WaitFailed(e),
        None => {
            kill_group(child.id());
            let reaped = async { child.status().await.is_ok() };
            let grace = async {
                Timer::after(limits.reap_grace).await;
                false
            };
            let unreaped = (!future::or(reaped, grace).await).then(|| child.id());
            Outcome::TimedOut { unreaped }
        }
    }
}

/// Kills the command's process group when a run is abandoned half way (the agent stops or
/// reloads), so nothing the command started outlives it.
struct GroupGuard {
    pid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pid);
        }
    }
}

/// SIGKILL to the command's process group. The child has not been reaped yet, so its id
/// (which is the group's) cannot have been reused.
fn kill_group(pid: u32) {
    use nix::sys::signal::{killpg, Signal};
    if let Err(e) = killpg(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL) {
        log::debug!("killing process group {pid}: {e}");
    }
}

/// Reads `src` to its end, keeping the first `cap` bytes in `buf`; returns how many more
/// were read and discarded. A read error ends the read (the exit status tells the rest).
async fn read_capped(src: Option<impl AsyncRead + Unpin>, buf: &mut Vec<u8>, cap: usize) -> u64 {
    let Some(mut src) = src else {
        return 0;
    };
    let mut chunk = [0u8; 4096];
    let mut discarded = 0u64;
    loop {
        match src.read(&mut chunk).await {
            Ok(0) => return discarded,
            Ok(n) => {
                let keep = n.min(cap.saturating_sub(buf.len()));
                buf.extend_from_slice(&chunk[..keep]);
                discarded += (n - keep) as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return discarded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// A script in `dir` named `name` with `body` after the shebang, executable.
    fn script(dir: &Path, name: &str, body: &str) -> Command {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Command::new(path)
    }

    fn limits(timeout: Duration, stdout_cap: usize, stderr_cap: usize) -> Limits {
        Limits {
            timeout,
            stdout_cap,
            stderr_cap,
            reap_grace: Duration::from_secs(1),
        }
    }

    fn async_process_thread_exists() -> bool {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .any(|name| name.trim() == "async-process")
    }

    #[test]
    fn output_past_the_caps_is_read_counted_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = script(
            dir.path(),
            "chatty.sh",
            "printf 'abcdefghij'\nprintf 'uvwxyz' >&2\nexit 4\n",
        );
        let mut out = Captured {
            stdout: b"from the last run".to_vec(),
            stdout_discarded: 99,
            stderr: b"old".to_vec(),
        };
        let lim = limits(Duration::from_secs(20), 4, 3);
        let outcome = future::block_on(run(cmd, &lim, &mut out));
        let Outcome::Exited(status) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(status.code(), Some(4));
        assert_eq!(out.stdout, b"abcd");
        assert_eq!(out.stdout_discarded, 6);
        assert_eq!(out.stderr, b"uvw");
    }

    #[test]
    fn a_zero_stderr_cap_sends_it_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = script(dir.path(), "err.sh", "echo out\necho err >&2\n");
        let mut out = Captured::default();
        let lim = limits(Duration::from_secs(20), 100, 0);
        let outcome = future::block_on(run(cmd, &lim, &mut out));
        assert!(
            matches!(outcome, Outcome::Exited(s) if s.success()),
            "{outcome:?}"
        );
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"out\n"[..], &b""[..])
        );
    }

    #[test]
    fn a_missing_program_is_not_started() {
        let mut out = Captured::default();
        let lim = limits(Duration::from_secs(20), 100, 100);
        let outcome = future::block_on(run(Command::new("/nonexistent/tool"), &lim, &mut out));
        let Outcome::NotStarted(e) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_hung_command_is_killed_at_the_timeout_and_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = script(dir.path(), "hang.sh", "echo early\nexec sleep 60\n");
        let mut out = Captured::default();
        let lim = limits(Duration::from_millis(300), 100, 100);
        let outcome = future::block_on(run(cmd, &lim, &mut out));
        assert!(
            matches!(outcome, Outcome::TimedOut { unreaped: None }),
            "{outcome:?}"
        );
    }

    #[test]
    fn an_abandoned_run_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-alive");
        let cmd = script(
            dir.path(),
            "long.sh",
            &format!("(sleep 2; touch '{}') &\nexec sleep 60\n", marker.display()),
        );
        let lim = limits(Duration::from_secs(60), 100, 100);
        let mut out = Captured::default();
        // The agent stops (or reloads) 300 ms into the run: the run's future is dropped.
        future::block_on(future::or(
            async {
                run(cmd, &lim, &mut out).await;
                panic!("the command finished");
            },
            async {
                Timer::after(Duration::from_millis(300)).await;
            },
        ));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "a child of the abandoned command survived"
        );
        // The child went to the reaper before the reaper lost its driver: no thread. (Every
        // run in this test binary drives the reaper, so none may have started it. Run alone,
        // this fails if the reaper is dropped before the child; beside other runs, another
        // run's driver may hide that.)
        assert!(!async_process_thread_exists());
    }
}
