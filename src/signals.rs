//! The process signals `run` answers: SIGTERM and SIGINT stop, SIGHUP reloads.
//!
//! Not a queue of signals but a flag per request, set by the handler, and one byte on a
//! non-blocking socket that wakes the executor. Two things follow. A SIGTERM is never lost:
//! a queue (async-signal writes one message per signal and drops what does not fit) filled
//! by a burst of SIGHUPs during a slow reload used to drop the SIGTERM behind them, and the
//! agent ran on. And any number of SIGHUPs that arrive while a reload runs is one more
//! reload, of the file as it is then.

use smol::io::AsyncReadExt;
use smol::Async;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the signals ask of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Stop,
    Reload,
}

#[derive(Default)]
struct Pending {
    stop: AtomicBool,
    reload: AtomicBool,
}

/// The installed handlers; dropping this removes them.
pub struct Signals {
    pending: Arc<Pending>,
    wake: Async<UnixStream>,
    ids: Vec<signal_hook_registry::SigId>,
}

impl Signals {
    /// Installs handlers for SIGTERM, SIGINT and SIGHUP.
    pub fn install() -> io::Result<Signals> {
        let (read, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        let pending: Arc<Pending> = Arc::default();
        let mut signals = Signals {
            pending: pending.clone(),
            wake: Async::new(read)?,
            ids: Vec::new(),
        };
        for (signal, request) in [
            (
                libc_signal(nix::sys::signal::Signal::SIGTERM),
                Request::Stop,
            ),
            (libc_signal(nix::sys::signal::Signal::SIGINT), Request::Stop),
            (
                libc_signal(nix::sys::signal::Signal::SIGHUP),
                Request::Reload,
            ),
        ] {
            let pending = pending.clone();
            let write = write.try_clone()?;
            let handler = move || {
                match request {
                    Request::Stop => pending.stop.store(true, Ordering::SeqCst),
                    Request::Reload => pending.reload.store(true, Ordering::SeqCst),
                }
                // A full socket already holds a wake-up: the flag is what counts.
                let _ = (&write).write(&[1]);
            };
            // SAFETY: the handler only stores to atomics and calls write(2), both
            // async-signal-safe, and touches no lock or allocation.
            let id = unsafe { signal_hook_registry::register(signal, handler) }?;
            signals.ids.push(id);
        }
        Ok(signals)
    }

    /// Waits for the next request. A stop wins over a reload, and stays pending.
    pub async fn next(&self) -> Request {
        self.wait(true).await
    }

    /// Waits until a stop is requested; reloads asked for meanwhile stay pending.
    pub async fn stopped(&self) {
        self.wait(false).await;
    }

    async fn wait(&self, take_reload: bool) -> Request {
        let mut drain = [0u8; 64];
        loop {
            if self.pending.stop.load(Ordering::SeqCst) {
                return Request::Stop;
            }
            if take_reload && self.pending.reload.swap(false, Ordering::SeqCst) {
                return Request::Reload;
            }
            if let Err(e) = (&self.wake).read(&mut drain).await {
                // The socket pair is ours alone; should a read ever fail, stopping is
                // the answer that cannot leave the agent deaf to SIGTERM.
                log::error!("signal wake-up socket: {e}; stopping");
                return Request::Stop;
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

fn libc_signal(signal: nix::sys::signal::Signal) -> std::os::raw::c_int {
    signal as std::os::raw::c_int
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{raise, Signal};

    // One test for the three signals: the handlers are process-wide, so two tests
    // installing them in parallel would take each other's signals.
    #[test]
    fn a_stop_behind_a_burst_of_reloads_is_seen_and_the_reloads_are_one() {
        let signals = Signals::install().expect("handlers install");
        smol::block_on(async {
            for _ in 0..2_000 {
                raise(Signal::SIGHUP).unwrap();
            }
            assert_eq!(signals.next().await, Request::Reload);
            raise(Signal::SIGHUP).unwrap();
            raise(Signal::SIGTERM).unwrap();
            assert_eq!(signals.next().await, Request::Stop, "stop first");
            assert_eq!(signals.next().await, Request::Stop, "and it stays");
            signals.stopped().await;
        });
        assert!(
            signals.pending.reload.load(Ordering::SeqCst),
            "the reload asked for before the stop is still pending"
        );
    }
}
