//! Running smartctl on the agent's executor: output read up to a cap, a timeout that
//! kills the whole process group, and no reaper thread.

use futures_lite::{AsyncReadExt, FutureExt};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

/// Most stdout kept from one run; smartctl's JSON for a disk with full logs is ~100 KiB.
pub const MAX_OUTPUT: u64 = 4 << 20;

/// How long a killed smartctl may take to be reaped before it is left to the reaper.
const REAP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum RunError {
    /// The program could not be started (not installed, not executable).
    Spawn(io::Error),
    /// Reading its output or waiting for it failed.
    Io(io::Error),
    /// It ran longer than the timeout and was killed.
    Timeout(Duration),
    /// It wrote more than [`MAX_OUTPUT`] bytes.
    TooLarge,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start it: {e}"),
            RunError::Io(e) => write!(f, "{e}"),
            RunError::Timeout(t) => write!(f, "no answer within {t:?}: killed"),
            RunError::TooLarge => write!(f, "more than {MAX_OUTPUT} bytes of output"),
        }
    }
}

/// Runs `program args…`, fills `out` with its stdout and returns its exit status.
///
/// The child gets its own process group so a timeout kills everything it started (a
/// wrapper script's children, too). While this runs it drives async-process's reaper
/// itself, so async-process never starts its background thread; see the README.
pub async fn run(
    program: &str,
    args: &[&str],
    timeout: Duration,
    out: &mut Vec<u8>,
) -> Result<ExitStatus, RunError> {
    // Polled first (`or` prefers its first future): the reaper is driven before the
    // child is registered, which is when async-process would start its thread.
    let drive_reaper = async {
        match smol::process::driver().await {}
    };
    drive_reaper.or(run_child(program, args, timeout, out)).await
}

async fn run_child(
    program: &str,
    args: &[&str],
    timeout: Duration,
    out: &mut Vec<u8>,
) -> Result<ExitStatus, RunError> {
    out.clear();
    let mut std_cmd = std::process::Command::new(program);
    std_cmd.args(args).process_group(0);
    let mut cmd = smol::process::Command::from(std_cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let Some(stdout) = child.stdout.take() else {
        return Err(RunError::Io(io::Error::other("no stdout pipe")));
    };
    let work = async {
        let n = stdout
            .take(MAX_OUTPUT + 1)
            .read_to_end(out)
            .await
            .map_err(RunError::Io)?;
        if n as u64 > MAX_OUTPUT {
            return Err(RunError::TooLarge);
        }
        child.status().await.map_err(RunError::Io)
    };
    let timer = async {
        smol::Timer::after(timeout).await;
        Err(RunError::Timeout(timeout))
    };
    let result = work.or(timer).await;
    if let Err(RunError::Timeout(_) | RunError::TooLarge) = result {
        kill_group(child.id());
        let reaped = async { child.status().await.ok() };
        let grace = async {
            smol::Timer::after(REAP_GRACE).await;
            None
        };
        if reaped.or(grace).await.is_none() {
            log::warn!(
                "smartctl: {program} (pid {}) did not exit after SIGKILL (stuck in the kernel on a failing disk?)",
                child.id()
            );
        }
    }
    result
}

fn kill_group(pid: u32) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    // The group's id is the child's pid (process_group(0)).
    if let Err(e) = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL) {
        log::debug!("smartctl: kill process group {pid}: {e}");
    }
}
