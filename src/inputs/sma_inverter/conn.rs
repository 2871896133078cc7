//! One inverter's Modbus TCP connection: tokio-modbus's client codec over a smol TCP stream
//! (through `tokio_util::compat`, so no tokio runtime and no thread), every step bounded by
//! a smol timer, and a capped backoff between attempts after a failure.

use super::registers::UNIT_QUERY_REGISTER;
use crate::core::backoff::Backoff;
use crate::core::offload;
use futures_lite::FutureExt;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio_modbus::client::{tcp, Context, Reader};
use tokio_modbus::slave::{Slave, SlaveContext};
use tokio_modbus::ExceptionCode;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// The first retry after a failure waits this long; each further failure doubles it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between attempts: an inverter that wakes up is seen within a minute.
const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// Which Modbus function reads the registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// 0x03 Read Holding Registers (what pollect and evcc use for energy).
    #[default]
    Holding,
    /// 0x04 Read Input Registers.
    Input,
}

/// Why a connection could not be used. Any of these drops the connection: a late answer
/// to an abandoned request must not be taken for the answer to the next one.
#[derive(Debug)]
pub enum LinkError {
    Timeout(&'static str),
    Io(std::io::Error),
    Protocol(String),
    /// An exception where the device must answer (the unit-id query).
    Exception(&'static str, ExceptionCode),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Timeout(what) => write!(f, "no answer to {what} within the timeout"),
            LinkError::Io(e) => write!(f, "{e}"),
            LinkError::Protocol(e) => write!(f, "Modbus protocol error: {e}"),
            LinkError::Exception(what, code) => write!(f, "{what}: Modbus exception {code:?}"),
        }
    }
}

impl From<tokio_modbus::Error> for LinkError {
    fn from(e: tokio_modbus::Error) -> Self {
        match e {
            // tokio-modbus reports the end of the stream as the thread's last OS error,
            // which on a non-blocking socket is EAGAIN: say what happened instead.
            tokio_modbus::Error::Transport(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                LinkError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the inverter closed the connection",
                ))
            }
            tokio_modbus::Error::Transport(e) => LinkError::Io(e),
            tokio_modbus::Error::Protocol(e) => LinkError::Protocol(e.to_string()),
        }
    }
}

/// `f`, or `LinkError::Timeout(what)` when it takes longer than `limit`.
pub async fn bounded<T>(
    limit: Duration,
    what: &'static str,
    f: impl Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    f.or(async {
        smol::Timer::after(limit).await;
        Err(LinkError::Timeout(what))
    })
    .await
}

/// Connects to `host:port`. An IP address connects directly; a name is resolved on each
/// connect, on a short-lived thread of its own (`core::offload`).
pub async fn connect(host: &str, port: u16, limit: Duration) -> Result<Context, LinkError> {
    let stream = bounded(limit, "connect", async {
        let addrs = offload::resolve(host, port).await.map_err(LinkError::Io)?;
        let mut last = None;
        for addr in addrs {
            match smol::net::TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(LinkError::Io(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "the name resolves to no address")
        })))
    })
    .await?;
    // Small requests and answers: send each at once.
    let _ = stream.set_nodelay(true);
    Ok(tcp::attach_slave(stream.compat(), Slave(1)))
}

/// Reads `count` registers from `start`. `Ok(Err(code))` is the device's exception.
pub async fn read(
    ctx: &mut Context,
    function: Function,
    start: u16,
    count: u16,
    limit: Duration,
) -> Result<Result<Vec<u16>, ExceptionCode>, LinkError> {
    let words = bounded(limit, "a read request", async {
        let r = match function {
            Function::Holding => ctx.read_holding_registers(start, count).await,
            Function::Input => ctx.read_input_registers(start, count).await,
        };
        r.map_err(LinkError::from)
    })
    .await?;
    match words {
        Ok(w) if w.len() != count as usize => Err(LinkError::Protocol(format!(
            "asked for {count} registers at {start}, got {}",
            w.len()
        ))),
        other => Ok(other),
    }
}

/// The unit id the inverter announces in register 42109 (4 words: serial, SUSy id, unit id),
/// read on unit 1 as SMA documents; function 0x03 whatever `function` the input uses.
pub async fn query_unit_id(ctx: &mut Context, limit: Duration) -> Result<u8, LinkError> {
    ctx.set_slave(Slave(1));
    let words = read(ctx, Function::Holding, UNIT_QUERY_REGISTER, 4, limit)
        .await?
        .map_err(|code| LinkError::Exception("unit-id query (register 42109 on unit 1)", code))?;
    match u8::try_from(words[3]) {
        Ok(unit) if unit > 0 => Ok(unit),
        _ => Err(LinkError::Protocol(format!(
            "unit-id query (register 42109 on unit 1) answered unit id {}",
            words[3]
        ))),
    }
}

/// When to try again after consecutive failures: 1 s, 2 s, 4 s … capped at [`BACKOFF_CAP`].
#[derive(Debug)]
pub struct Retry {
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            backoff: Backoff::new(BACKOFF_FIRST, BACKOFF_CAP),
            retry_at: None,
        }
    }
}

impl Retry {
    /// Whether an attempt may be made at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// Notes a failure at `now` and returns the wait before the next attempt.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = self.backoff.next_delay();
        self.retry_at = Some(now + wait);
        wait
    }

    pub fn succeeded(&mut self) {
        self.backoff.reset();
        self.retry_at = None;
    }
}
