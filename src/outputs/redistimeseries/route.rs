//! Where the pipelines go: one server, or in a Redis Cluster the node that owns each key's
//! hash slot, with MOVED and ASK followed within the write.
//!
//! A cluster write groups the batch by node and sends each node one pipeline whose
//! `TS.MADD`s each hold keys of one slot (the default cluster key format puts all of a
//! host's keys on one). A node that fails does not stop the others: their samples are
//! written, and the failed node's are deferred (`Output::deferred`): the runner keeps them
//! on disk and offers them again at every flush, while later batches go on to the nodes
//! that are up. Only a cluster whose slot map cannot be read from any node fails the write
//! as a whole. A MOVED updates the slot map and sends the samples to the new owner in the
//! same write; an ASK sends them to the importing node with ASKING.

use super::{RedisTimeSeries, SeriesView};
#[cfg(feature = "cluster")]
use crate::common::redis::cluster::{Cluster, NodeAddr, NO_OWNER};
use crate::common::redis::{Connected, Endpoint, Session};
use crate::core::backoff::Backoff;
use crate::core::{OutputError, Sample, WriteReport};
use redis::{Pipeline, Value};
use std::time::Duration;

pub(super) enum Route {
    Single(Session),
    #[cfg(feature = "cluster")]
    Cluster(Cluster),
}

#[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
impl Route {
    /// A cluster when `seeds` are given, else the one server of `endpoint`.
    pub fn new(
        endpoint: Endpoint,
        seeds: Vec<(String, u16)>,
        who: String,
        backoff: (Duration, Duration),
    ) -> Route {
        #[cfg(feature = "cluster")]
        if !seeds.is_empty() {
            let seeds = seeds
                .into_iter()
                .map(|(host, port)| NodeAddr { host, port })
                .collect();
            return Route::Cluster(Cluster::new(endpoint, seeds, who, backoff));
        }
        let _ = seeds;
        Route::Single(Session::new(
            endpoint,
            who,
            Backoff::new(backoff.0, backoff.1),
        ))
    }

    pub fn is_cluster(&self) -> bool {
        !matches!(self, Route::Single(_))
    }

    pub fn addr(&self, node: usize) -> String {
        match self {
            Route::Single(s) => s.endpoint().target.addr(),
            #[cfg(feature = "cluster")]
            Route::Cluster(c) => c.addr(node).show(),
        }
    }

    /// The address of `node` in a cluster (where a MOVED without a host points).
    #[cfg(feature = "cluster")]
    pub fn addr_of(&self, node: usize) -> Option<&NodeAddr> {
        match self {
            Route::Cluster(c) => Some(c.addr(node)),
            Route::Single(_) => None,
        }
    }

    pub fn tls(&self) -> bool {
        match self {
            Route::Single(s) => s.endpoint().target.tls,
            #[cfg(feature = "cluster")]
            Route::Cluster(c) => c.tls(),
        }
    }

    pub async fn ensure(&mut self, node: usize) -> Result<Connected, String> {
        match self {
            Route::Single(s) => s.ensure().await,
            #[cfg(feature = "cluster")]
            Route::Cluster(c) => c.ensure(node).await,
        }
    }

    pub async fn send(&mut self, node: usize, pipe: &Pipeline) -> Result<Vec<Value>, String> {
        match self {
            Route::Single(s) => s.send(pipe).await,
            #[cfg(feature = "cluster")]
            Route::Cluster(c) => c.send(node, pipe).await,
        }
    }

    pub fn disconnect(&mut self, node: usize) {
        match self {
            Route::Single(s) => s.disconnect(),
            #[cfg(feature = "cluster")]
            Route::Cluster(c) => c.disconnect(node),
        }
    }

    pub fn disconnect_all(&mut self) {
        match self {
            Route::Single(s) => s.disconnect(),
            #[cfg(feature = "cluster")]
            Route::Cluster(c) => (0..c.node_count()).for_each(|n| c.disconnect(n)),
        }
    }

    /// A node failed: the cluster may have changed under us.
    pub fn mark_stale(&mut self) {
        #[cfg(feature = "cluster")]
        if let Route::Cluster(c) = self {
            c.mark_stale();
        }
    }
}

/// How often one write follows MOVED and ASK before it gives up and retries later.
#[cfg(feature = "cluster")]
const MAX_REDIRECTS: usize = 5;

impl RedisTimeSeries {
    #[cfg(not(feature = "cluster"))]
    pub(super) async fn write_cluster(
        &mut self,
        _batch: &[Sample],
        _view: &SeriesView<'_>,
    ) -> Result<WriteReport, OutputError> {
        Err(OutputError::Retry("built without cluster support".into()))
    }

    /// Writes the batch to the nodes that own its keys (see the module's doc).
    #[cfg(feature = "cluster")]
    pub(super) async fn write_cluster(
        &mut self,
        batch: &[Sample],
        view: &SeriesView<'_>,
    ) -> Result<WriteReport, OutputError> {
        let mut report = WriteReport::default();
        self.refresh_map().await.map_err(OutputError::Retry)?;
        let mut pending = std::mem::take(&mut self.pending);
        let mut groups = std::mem::take(&mut self.groups);
        pending.clear();
        pending.extend((0..batch.len() as u32).map(|i| (i, NO_OWNER)));
        let mut failed = None;
        for _ in 0..MAX_REDIRECTS {
            self.group_by_node(batch, view, &pending, &mut groups, &mut failed);
            for (k, only) in groups.iter().enumerate().filter(|(_, g)| !g.is_empty()) {
                let node = k / 2;
                self.asking = k % 2 == 1;
                self.wait = self.wait_for(node);
                let before = report;
                let r = self.write_to(node, batch, Some(only), view, &mut report).await;
                self.asking = false;
                if let Err(OutputError::Retry(e) | OutputError::Reject(e)) = r {
                    // All of them again later: what the node booked before failing (a
                    // WAIT that fell short comes last) is not counted twice.
                    report = before;
                    self.route.mark_stale();
                    self.deferred.extend_from_slice(only);
                    failed.get_or_insert(e);
                }
            }
            pending.clear();
            if self.redirected.is_empty() {
                break;
            }
            self.follow_redirects(&mut pending).await;
        }
        if !pending.is_empty() {
            self.deferred.extend(pending.iter().map(|&(i, _)| i));
            failed.get_or_insert_with(|| {
                format!("the cluster still redirected after {MAX_REDIRECTS} tries")
            });
        }
        self.pending = pending;
        self.groups = groups;
        self.redirected.clear();
        self.redirects.clear();
        if let Some(e) = failed {
            self.deferred_why = e;
        }
        Ok(report)
    }

    /// Reads the slot map when it is stale; the first time, says where the cluster is.
    #[cfg(feature = "cluster")]
    async fn refresh_map(&mut self) -> Result<(), String> {
        let Route::Cluster(c) = &mut self.route else {
            return Ok(());
        };
        let first = c.counters.refreshes == 0;
        c.ensure_map().await?;
        if first {
            log::info!(
                "output {}: connected to a Redis Cluster of {} masters ({} nodes known){}",
                self.name,
                c.masters(),
                c.node_count(),
                if c.tls() { " (TLS)" } else { "" }
            );
        }
        Ok(())
    }

    /// Puts each pending sample into the group of the node it goes to: `groups[2 * node]`
    /// for the slot's owner, `groups[2 * node + 1]` for a node that asked (ASK).
    #[cfg(feature = "cluster")]
    fn group_by_node(
        &mut self,
        batch: &[Sample],
        view: &SeriesView<'_>,
        pending: &[(u32, u16)],
        groups: &mut Vec<Vec<u32>>,
        failed: &mut Option<String>,
    ) {
        groups.iter_mut().for_each(Vec::clear);
        let mut stale = false;
        view.with(|t| {
            for &(i, ask) in pending {
                let slot = self.state(batch[i as usize].series, t).slot;
                let Route::Cluster(c) = &self.route else {
                    return;
                };
                let (node, asking) = match ask {
                    NO_OWNER => (c.owner(slot), false),
                    n => (n, true),
                };
                if node == NO_OWNER {
                    stale = true;
                    self.deferred.push(i);
                    failed.get_or_insert_with(|| {
                        format!("no node of the cluster serves slot {slot} (CLUSTERDOWN?)")
                    });
                    continue;
                }
                let g = 2 * node as usize + usize::from(asking);
                if groups.len() <= g {
                    groups.resize_with(g + 1, Vec::new);
                }
                groups[g].push(i);
            }
        });
        if stale {
            // A slot without a master: the map was read mid-failover; read it again.
            self.route.mark_stale();
        }
    }

    /// How many replicas a write to `node` waits for.
    #[cfg(feature = "cluster")]
    fn wait_for(&self, node: usize) -> u8 {
        match &self.route {
            Route::Cluster(c) => self.wait_replicas.min(c.replicas(node).min(255) as u8),
            Route::Single(_) => 0,
        }
    }

    /// Turns the MOVED and ASK replies of the last round into the next round's samples:
    /// a MOVED changes the slot's owner (and the map is read again), an ASK names the node
    /// for this write only.
    #[cfg(feature = "cluster")]
    async fn follow_redirects(&mut self, pending: &mut Vec<(u32, u16)>) {
        let Route::Cluster(c) = &mut self.route else {
            return;
        };
        let mut moved = false;
        let mut node_of = Vec::with_capacity(self.redirects.len());
        for r in &self.redirects {
            if r.ask {
                c.counters.asked += 1;
                node_of.push(c.node_index(&r.to) as u16);
            } else {
                c.moved(r.slot, &r.to);
                moved = true;
                node_of.push(NO_OWNER);
            }
        }
        pending.extend(self.redirected.iter().map(|&(i, r)| (i, node_of[r as usize])));
        self.redirected.clear();
        self.redirects.clear();
        if moved {
            if let Err(e) = c.ensure_map().await {
                // The MOVED entries themselves are in the map already.
                log::debug!("output {}: {e}", self.name);
            }
        }
    }
}

