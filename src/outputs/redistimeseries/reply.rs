//! Booking the replies of a pipeline: what was created, which samples were taken or
//! refused, and which server errors concern the whole batch.

use super::{Created, Pipelined, RedisTimeSeries, DENIED_FOR};
use crate::core::metric::SeriesId;
use crate::core::{Sample, WriteReport};
use redis::{ServerError, Value};
use std::time::Instant;

impl RedisTimeSeries {
    /// Books the replies of the pipeline just sent. An error is for the whole batch.
    pub(super) fn book(
        &mut self,
        batch: &[Sample],
        values: Vec<Value>,
        first: bool,
        report: &mut WriteReport,
        addr: &str,
    ) -> Result<(), String> {
        if values.len() != self.pipelined.len() {
            return Err(format!(
                "{addr} sent {} replies for {} commands",
                values.len(),
                self.pipelined.len()
            ));
        }
        let slots = std::mem::take(&mut self.pipelined);
        let result = (|| {
            for (slot, value) in slots.iter().zip(values) {
                match *slot {
                    Pipelined::Create(id) => {
                        let created = match &value {
                            Value::ServerError(e) if self.redirect(e) => false,
                            Value::ServerError(e) if !already(e) => {
                                self.refused(id, e, "cannot create", addr)?;
                                false
                            }
                            _ => true,
                        };
                        if let Some(st) = self.series[id as usize].as_mut() {
                            st.created = if created { Created::Yes } else { Created::No };
                        }
                    }
                    Pipelined::Alter(id) | Pipelined::Rule(id) => {
                        if let Value::ServerError(e) = &value {
                            if !already(e) && !self.redirect(e) {
                                self.refused(id, e, "cannot set up", addr)?;
                            }
                        }
                    }
                    // An ASKING is answered OK; what it allows is booked with its command.
                    Pipelined::Asking => {}
                    #[cfg(feature = "cluster")]
                    Pipelined::Wait(wanted) => self.waited(wanted, &value, addr)?,
                    Pipelined::Madd(start, end) => self.book_madd(
                        batch,
                        start as usize,
                        end as usize,
                        value,
                        first,
                        report,
                        addr,
                    )?,
                }
            }
            Ok(())
        })();
        self.pipelined = slots;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn book_madd(
        &mut self,
        batch: &[Sample],
        start: usize,
        end: usize,
        value: Value,
        first: bool,
        report: &mut WriteReport,
        addr: &str,
    ) -> Result<(), String> {
        let items = match value {
            Value::Array(items) => items,
            Value::ServerError(e) => {
                if self.redirect(&e) {
                    let r = self.redirect_index();
                    for k in start..end {
                        self.redirected.push((self.order[k], r));
                    }
                    return Ok(());
                }
                if let Some(msg) = batch_error(&e, addr) {
                    return Err(msg);
                }
                if first {
                    // Refused as a whole: resend split by series to find out whose it is.
                    self.retry.extend_from_slice(&self.order[start..end]);
                } else {
                    for k in start..end {
                        let s = batch[self.order[k] as usize];
                        self.refused(s.series, &e, "cannot write", addr)?;
                        self.reject(s, &show(&e), report);
                    }
                }
                return Ok(());
            }
            other => {
                return Err(format!("{addr} answered TS.MADD with {other:?}"));
            }
        };
        let count = end - start;
        for (k, item) in items.iter().enumerate().take(count) {
            let i = self.order[start + k];
            let s = batch[i as usize];
            match item {
                Value::ServerError(e) => {
                    if let Some(msg) = batch_error(e, addr) {
                        return Err(msg);
                    }
                    let st = self.series[s.series as usize].as_mut().expect("planned");
                    if first && not_a_series(e) {
                        // Deleted since we created it (or its creation just failed): create
                        // again and resend every such sample, once.
                        st.created = Created::No;
                        self.retry.push(i);
                    } else {
                        self.reject(s, &show(e), report);
                    }
                }
                _ => report.written += 1,
            }
        }
        if items.len() < count {
            for k in start + items.len()..end {
                let s = batch[self.order[k] as usize];
                self.reject(s, "no reply for this sample", report);
            }
        }
        Ok(())
    }

    /// In a cluster, a MOVED or ASK: noted for `route.rs`, which sends the samples of the
    /// command where the reply says. Elsewhere no error is a redirect.
    #[cfg(feature = "cluster")]
    fn redirect(&mut self, e: &ServerError) -> bool {
        let Some(from) = self.route.addr_of(self.node) else {
            return false;
        };
        let Some(r) = crate::common::redis::cluster::Redirect::of(e, from) else {
            return false;
        };
        if self.redirects.last() != Some(&r) {
            self.redirects.push(r);
        }
        true
    }

    #[cfg(not(feature = "cluster"))]
    fn redirect(&mut self, _e: &ServerError) -> bool {
        false
    }

    /// The index of the redirect [`Self::redirect`] noted last.
    fn redirect_index(&self) -> u32 {
        #[cfg(feature = "cluster")]
        return self.redirects.len().saturating_sub(1) as u32;
        #[cfg(not(feature = "cluster"))]
        0
    }

    /// The reply to WAIT. Fewer replicas than asked for fails the batch: a failover now
    /// could promote a replica without these samples. It is sent again (the same samples,
    /// harmless) after the slot map has been read again: a replica that is gone leaves the
    /// map once the master has noticed, and is then no longer waited for.
    #[cfg(feature = "cluster")]
    fn waited(&mut self, wanted: u8, value: &Value, addr: &str) -> Result<(), String> {
        match value {
            Value::Int(n) if *n >= i64::from(wanted) => Ok(()),
            Value::Int(n) => {
                self.unreplicated += 1;
                self.route.mark_stale();
                Err(format!(
                    "only {n} of {wanted} replicas of {addr} acknowledged the write within 1s (wait_replicas); it is sent again"
                ))
            }
            Value::ServerError(e) => Err(format!(
                "{addr} refused WAIT ({}): allow it to the user, or set wait_replicas: 0",
                show(e)
            )),
            other => Err(format!("{addr} answered WAIT with {other:?}")),
        }
    }

    fn reject(&self, s: Sample, why: &str, report: &mut WriteReport) {
        report.rejected += 1;
        let key = self.series[s.series as usize]
            .as_ref()
            .map_or("?", |st| &st.key);
        log::debug!(
            "output {}: dropped sample {} at {} of {key}: {why}",
            self.name,
            s.value,
            s.ts_ms
        );
    }

    /// A command for one series was refused. Errors that concern the whole server fail
    /// the batch; NOPERM skips the series for a while; anything else is logged once.
    fn refused(
        &mut self,
        id: SeriesId,
        e: &ServerError,
        what: &str,
        addr: &str,
    ) -> Result<(), String> {
        if let Some(msg) = batch_error(e, addr) {
            return Err(msg);
        }
        let name = self.name.clone();
        let user = self.username.clone();
        let Some(st) = self.series[id as usize].as_mut() else {
            return Ok(());
        };
        if e.code() == "NOPERM" {
            if st.denied_until.is_none() {
                log::warn!(
                    "output {name}: no permission to write `{}` as ACL user `{user}` ({}); its samples are dropped, next try in {}s: allow the key in the user's key pattern or change key_format",
                    st.key,
                    show(e),
                    DENIED_FOR.as_secs()
                );
            }
            st.denied_until = Some(Instant::now() + DENIED_FOR);
        } else if !st.warned {
            st.warned = true;
            log::warn!("output {name}: {what} series `{}`: {}", st.key, show(e));
        } else {
            log::debug!("output {name}: {what} series `{}`: {}", st.key, show(e));
        }
        Ok(())
    }
}

/// The error as Redis sent it: `NOPERM No permissions to access a key`.
fn show(e: &ServerError) -> String {
    match e.details() {
        Some(d) => format!("{} {d}", e.code()),
        None => e.code().to_string(),
    }
}

/// "key already exists", "the destination key already has a src rule".
fn already(e: &ServerError) -> bool {
    e.details().is_some_and(|d| d.contains("already"))
}

/// TS.MADD on a key that does not exist (or holds something else).
fn not_a_series(e: &ServerError) -> bool {
    e.details()
        .is_some_and(|d| d.contains("not a TSDB key") || d.contains("does not exist"))
}

/// Errors that concern the server or the login, not one series: the batch stays queued.
fn batch_error(e: &ServerError, addr: &str) -> Option<String> {
    let detail = e.details().unwrap_or("");
    match e.code() {
        "NOAUTH" => Some(format!(
            "{addr} wants a password (NOAUTH): set `password` (and `username` for an ACL user)"
        )),
        "WRONGPASS" => Some(format!(
            "authentication failed at {addr} (WRONGPASS): check username and password"
        )),
        "ERR" if detail.starts_with("unknown command") && detail.to_ascii_uppercase().contains("'TS.") => {
            Some(format!(
                "{addr} has no RedisTimeSeries module ({detail}): this output needs Redis Stack, Redis 8 or later, or redis-server with redistimeseries.so loaded"
            ))
        }
        // Only a single-server output sees these as errors (cluster mode follows them).
        "MOVED" | "ASK" => Some(format!(
            "{addr} is a Redis Cluster node ({}): set `cluster: true`",
            show(e)
        )),
        "LOADING" | "BUSY" | "MASTERDOWN" | "READONLY" | "TRYAGAIN" | "CLUSTERDOWN" | "MISCONF"
        | "OOM" => Some(format!("{addr} cannot take writes now: {}", show(e))),
        _ => None,
    }
}
