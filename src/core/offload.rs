//! Blocking work off the executor thread: each job runs on a short-lived named thread of its
//! own and the executor awaits its result.
//!
//! Not smol's blocking pool (`smol::unblock`, and `smol::net::resolve` which uses it): in
//! blocking 1.7 an idle pool thread exits only when the pool is over its limit, so each use
//! leaves threads that live as long as the agent. Threads started here end with their job,
//! so between jobs the agent is back to its own two threads. A thread costs a spawn per job,
//! which is nothing beside what the jobs wait for (DNS, HTTP, a 1-wire conversion).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Name of the threads [`resolve`] starts (as `top -H` and /proc/<pid>/task show it).
pub const RESOLVE_THREAD: &str = "rtc-resolve";

/// Stack of a resolver thread: getaddrinfo and its NSS modules need far less; it is address
/// space, not memory, until touched.
const RESOLVE_STACK: usize = 512 * 1024;

/// Runs `f` on a new thread named `name` (15 bytes at most to show whole) with a stack of
/// `stack` bytes, and awaits what it returns. The thread ends when `f` does.
///
/// Dropping the returned future does not stop `f`: the thread runs on and its result is
/// dropped. Callers that must not start a second job while one runs hold an [`InFlight`]
/// claim inside `f`.
pub async fn on_thread<T: Send + 'static>(
    name: &'static str,
    stack: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = smol::channel::bounded(1);
    start_thread(name, stack, move || {
        // Fails only when the awaiting future is gone: nobody wants the result then.
        let _ = tx.try_send(f());
    })?;
    rx.recv()
        .await
        .map_err(|_| io::Error::other(format!("the {name} thread ended without an answer")))
}

/// Starts `f` on a new thread named `name`, for a caller that collects the results of
/// several jobs itself (through a channel `f` sends on).
pub fn start_thread(
    name: &'static str,
    stack: usize,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(stack)
        .spawn(f)
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start a {name} thread: {e}")))
}

/// The addresses of `host:port`. An IP address is taken as it is; a name is looked up with
/// the system resolver on a thread of its own (see [`on_thread`]).
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    resolve_with(host, port, system_lookup).await
}

type Lookup = fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

/// A lookup running this long is taken as hung: no further one of the same name starts
/// until it returns. Younger ones do not hold others up (several inverters behind one
/// gateway name are polled at once).
const LOOKUP_HUNG_AFTER: Duration = Duration::from_secs(5);

thread_local! {
    /// The oldest running lookup of each name and when it started. A resolver that never
    /// answers (a dead DNS server) then holds a few threads per name, not one more per
    /// connection attempt.
    static LOOKUPS: RefCell<HashMap<String, (InFlight, Instant)>> = RefCell::default();
}

async fn resolve_with(host: &str, port: u16, lookup: Lookup) -> io::Result<Vec<SocketAddr>> {
    let claim = LOOKUPS.with(|l| {
        let mut l = l.borrow_mut();
        let (flight, started) = l
            .entry(host.to_owned())
            .or_insert_with(|| (InFlight::default(), Instant::now()));
        match flight.try_claim() {
            Some(claim) => {
                *started = Instant::now();
                Ok(Some(claim))
            }
            None if started.elapsed() < LOOKUP_HUNG_AFTER => Ok(None),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the lookup of {host} started {}s ago has not returned (the resolver does not answer)",
                    started.elapsed().as_secs()
                ),
            )),
        }
    })?;
    let host = host.to_owned();
    on_thread(RESOLVE_THREAD, RESOLVE_STACK, move || {
        let addrs = lookup(&host, port);
        // Before the answer goes out, so that the next attempt may look up again at once.
        drop(claim);
        addrs
    })
    .await?
}

/// Marks a job as running, so a caller starts no second one beside it. The claim travels
/// with the job onto its thread and is released when the job ends, even when the future
/// that awaited it was dropped (a timeout) or the thread could not start.
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<AtomicBool>);

impl InFlight {
    /// A claim, or `None` while the previous job still runs.
    pub fn try_claim(&self) -> Option<Claim> {
        (!self.0.swap(true, Ordering::AcqRel)).then(|| Claim(self.0.clone()))
    }

    pub fn is_running(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Held while a job runs; see [`InFlight`].
#[derive(Debug)]
pub struct Claim(Arc<AtomicBool>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads of this process named `name`, from /proc/self/task/*/comm.
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    /// Polls until no thread is named `name`; false if one still is after 10 s (a hang
    /// bound, not a speed test: a thread that ended leaves /proc/self/task at once).
    fn all_ended(name: &str) -> bool {
        let give_up = Instant::now() + Duration::from_secs(10);
        while threads_named(name) > 0 {
            if Instant::now() > give_up {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn the_job_runs_on_its_named_thread_which_then_ends() {
        const NAME: &str = "rtc-test-job";
        assert_eq!(threads_named(NAME), 0);
        let got = smol::block_on(on_thread(NAME, 64 * 1024, || {
            let me = std::thread::current();
            (me.name().map(str::to_owned), threads_named(NAME))
        }))
        .unwrap();
        assert_eq!(got, (Some(NAME.to_owned()), 1));
        assert!(all_ended(NAME), "the job's thread is still there");
    }

    #[test]
    fn a_job_that_panics_is_an_error_not_a_hang() {
        let e = smol::block_on(on_thread("rtc-test-panic", 64 * 1024, || -> u8 {
            panic!("expected by the test")
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the rtc-test-panic thread ended without an answer"
        );
    }

    #[test]
    fn localhost_resolves_to_loopback_and_leaves_no_thread() {
        let addrs = smol::block_on(resolve("localhost", 80)).unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80),
            "{addrs:?}"
        );
        assert!(
            all_ended(RESOLVE_THREAD),
            "a resolver thread is still there"
        );
    }

    #[test]
    fn an_ip_address_needs_no_lookup() {
        let addrs = smol::block_on(resolve("::1", 6379)).unwrap();
        assert_eq!(addrs, vec!["[::1]:6379".parse().unwrap()]);
    }

    #[test]
    fn an_unknown_name_is_an_error() {
        // `.invalid` never resolves (RFC 2606).
        assert!(smol::block_on(resolve("no-such-host.invalid", 80)).is_err());
    }

    static RELEASE_LOOKUP: AtomicBool = AtomicBool::new(false);

    /// A resolver that answers only once the test lets it.
    fn held_lookup(_host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let give_up = Instant::now() + Duration::from_secs(30);
        while !RELEASE_LOOKUP.load(Ordering::Acquire) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(vec![SocketAddr::from(([192, 0, 2, 1], port))])
    }

    #[test]
    fn a_name_whose_lookup_hangs_is_not_looked_up_again_meanwhile() {
        let first = resolve_with("slow.test", 80, held_lookup);
        let mut first = Box::pin(first);
        // Started, then given up on as a connect timeout would.
        assert!(smol::block_on(futures_lite::future::poll_once(&mut first)).is_none());
        // A young lookup does not hold a second one up…
        let quick = smol::block_on(resolve_with("slow.test", 79, |_, p| {
            Ok(vec![SocketAddr::from(([192, 0, 2, 3], p))])
        }));
        assert_eq!(quick.unwrap(), vec!["192.0.2.3:79".parse().unwrap()]);
        // …a hung one does (its start moved back instead of waiting five seconds).
        LOOKUPS.with(|l| {
            let mut l = l.borrow_mut();
            let (_, started) = l.get_mut("slow.test").unwrap();
            *started = Instant::now() - LOOKUP_HUNG_AFTER;
        });
        let again = smol::block_on(resolve_with("slow.test", 80, held_lookup)).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::TimedOut);
        assert!(again.to_string().contains("slow.test"), "{again}");
        // Another name is not held up by it.
        let other = smol::block_on(resolve_with("other.test", 81, |_, p| {
            Ok(vec![SocketAddr::from(([192, 0, 2, 2], p))])
        }));
        assert_eq!(other.unwrap(), vec!["192.0.2.2:81".parse().unwrap()]);
        RELEASE_LOOKUP.store(true, Ordering::Release);
        assert_eq!(
            smol::block_on(first).unwrap(),
            vec!["192.0.2.1:80".parse().unwrap()]
        );
        let after = smol::block_on(resolve_with("slow.test", 82, held_lookup));
        assert_eq!(after.unwrap(), vec!["192.0.2.1:82".parse().unwrap()]);
    }

    #[test]
    fn a_claim_outlives_the_dropped_future_and_ends_with_the_job() {
        let flight = InFlight::default();
        let claim = flight.try_claim().unwrap();
        assert!(
            flight.try_claim().is_none(),
            "a second claim while one is held"
        );
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let job = on_thread("rtc-test-claim", 64 * 1024, move || {
            let _claim = claim;
            let _ = wait.recv();
        });
        // Start the thread, then give up on it as a timeout would.
        smol::block_on(futures_lite::future::poll_once(Box::pin(job)));
        assert!(flight.is_running());
        assert!(flight.try_claim().is_none());
        release.send(()).unwrap();
        let give_up = Instant::now() + Duration::from_secs(10);
        while flight.is_running() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(flight.try_claim().is_some(), "the claim ended with its job");
    }
}
