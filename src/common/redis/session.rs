//! A connection kept between uses: made when needed, dropped on any failure, and after a
//! failed attempt not tried again before a capped, doubling delay.

use super::{Conn, Endpoint};
use crate::core::backoff::Backoff;
use redis::{Pipeline, Value};
use std::time::Instant;

pub struct Session {
    endpoint: Endpoint,
    /// The plugin, for debug messages (`output redistimeseries`).
    who: String,
    conn: Option<Conn>,
    connected_before: bool,
    backoff: Backoff,
    next_attempt: Option<Instant>,
    last_error: String,
}

/// What [`Session::ensure`] found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connected {
    /// The connection of the last use, still open.
    Kept,
    /// The first connection of this session.
    First,
    /// A new connection after a lost or dropped one: the server may have restarted.
    Again,
}

impl Session {
    /// `backoff` paces attempts after a failure; one that starts at zero tries at every use.
    pub fn new(endpoint: Endpoint, who: String, backoff: Backoff) -> Session {
        Session {
            endpoint,
            who,
            conn: None,
            connected_before: false,
            backoff,
            next_attempt: None,
            last_error: String::new(),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Keeps the connection unless the server closed it, or connects; until the delay after
    /// a failed attempt has passed, fails at once with that attempt's error. The agent logs
    /// an outage once, so attempts log at debug level only.
    pub async fn ensure(&mut self) -> Result<Connected, String> {
        if let Some(c) = &mut self.conn {
            if !c.is_closed().await {
                return Ok(Connected::Kept);
            }
            log::debug!(
                "{}: {} closed the connection; reconnecting",
                self.who,
                self.endpoint.target.addr()
            );
            self.conn = None;
        }
        if self.next_attempt.is_some_and(|t| Instant::now() < t) {
            return Err(self.last_error.clone());
        }
        match self.endpoint.connect().await {
            Ok(conn) => {
                self.conn = Some(conn);
                self.backoff.reset();
                self.next_attempt = None;
                let first = !std::mem::replace(&mut self.connected_before, true);
                Ok(if first {
                    Connected::First
                } else {
                    Connected::Again
                })
            }
            Err(e) => {
                let wait = self.backoff.next_delay();
                log::debug!("{}: {e}; next attempt in {wait:?}", self.who);
                self.next_attempt = Some(Instant::now() + wait);
                self.last_error = e.clone();
                Err(e)
            }
        }
    }

    /// Sends `pipe` on the connection [`Self::ensure`] made and waits for every reply, at
    /// most the endpoint's reply timeout. Any error drops the connection.
    pub async fn send(&mut self, pipe: &Pipeline) -> Result<Vec<Value>, String> {
        let addr = self.endpoint.target.addr();
        let Some(conn) = self.conn.as_mut() else {
            return Err(format!("not connected to {addr}"));
        };
        let reply = conn.send(pipe, self.endpoint.write_timeout, &addr).await;
        if reply.is_err() {
            self.conn = None;
        }
        reply
    }

    /// Drops the connection: the next use connects again (without waiting for a delay).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }
}
