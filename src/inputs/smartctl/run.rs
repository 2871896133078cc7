//! Running smartctl through the inputs' shared runner ([`command`]): its own process
//! group killed at the timeout, output read up to a cap, no reaper thread.

use crate::inputs::support::command::{self, Captured, Limits, Outcome};
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// Most stdout kept from one run; smartctl's JSON for a disk with full logs is ~100 KiB.
pub const MAX_OUTPUT: usize = 4 << 20;

/// How long a killed smartctl may take to be reaped before it is left to the reaper.
const REAP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum RunError {
    /// The program could not be started (not installed, not executable).
    Spawn(io::Error),
    /// Waiting for it failed.
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

/// Runs `program args…`, fills `out` with its stdout and returns its exit status. Its
/// stderr goes nowhere: smartctl reports in its JSON.
pub async fn run(
    program: &str,
    args: &[&str],
    timeout: Duration,
    out: &mut Captured,
) -> Result<ExitStatus, RunError> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    let limits = Limits {
        timeout,
        stdout_cap: MAX_OUTPUT,
        stderr_cap: 0,
        reap_grace: REAP_GRACE,
    };
    match command::run(cmd, &limits, out).await {
        Outcome::Exited(_) if out.stdout_discarded > 0 => Err(RunError::TooLarge),
        Outcome::Exited(status) => Ok(status),
        Outcome::TimedOut { unreaped } => {
            if let Some(pid) = unreaped {
                log::warn!(
                    "smartctl: {program} (pid {pid}) did not exit after SIGKILL (stuck in the kernel on a failing disk?)"
                );
            }
            Err(RunError::Timeout(timeout))
        }
        Outcome::NotStarted(e) => Err(RunError::Spawn(e)),
        Outcome::WaitFailed(e) => Err(RunError::Io(e)),
    }
}
